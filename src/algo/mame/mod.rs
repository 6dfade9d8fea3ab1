//! Model-Agnostic Meta-Exploration (MAME): a separate exploration policy μ_φ, an
//! exploitation policy π_{θ,z} conditioned on a latent code z, and a self-supervision
//! network M_{β,z} that shares z (Gurumurthy, Kumar and Yue 2019, Algorithm 1, eqs. 2–5).
//!
//! ```text
//! while not done:
//!     sample tasks T_i ~ ρ(T)
//!     for each task:
//!         τ_i  ~ μ_φ                                           (exploration)
//!         z'_i = z − α ∇_z (1/n) Σ_t □_t(φ) ℓ_t(z, β)           ℓ_t = (M_{β,z}(s_t, a_t) − M̄_t)²
//!         τ'_i ~ π_{θ,z'_i}                                     (exploitation)
//!     J = (1/M) Σ_i (1/n') Σ_t ρ'_t A'_t     on τ'_i, a function of θ and z'_i(z, β, φ)
//!     θ, β, z ← Adam(∇J)  (z with its own small step size)
//!     φ ← Adam(∇_φ J)  by one of:
//!         dice               the exact gradient through the magic boxes □_t
//!         variance-reduced   Σ_t ∇ log μ_φ(a_t|s_t) A^μ_t,   A^μ_t = r^μ_t + V_{t+1} − V_t   (eqs. 2–5)
//!         emaml              Σ_t ∇ log μ_φ(a_t|s_t) R̄'_i      (post-update return of the task)
//! ```
//!
//! □_t = exp(C_t − C_t^old), C_t = Σ_{t'≤t} log μ_φ(a_t'|s_t'), is DiCE's magic box; it
//! equals 1, so the inner step's value does not depend on φ, but its gradient credits
//! each exploration action with the self-supervised losses that follow it. Differentiating
//! J through z' gives, with g = ∇_{z'} J,
//!
//! ```text
//! ∇_φ J = Σ_t ∇ log μ_φ(a_t|s_t) R^μ_t,   R^μ_t = Σ_{t'≥t} r^μ_t',   r^μ_t = −(α/n) gᵀ ∇_z ℓ_t
//! ```
//!
//! which is eq. 3 — the paper drops the minus sign of the descent step, which we keep.
//! The variance-reduced estimator replaces R^μ_t by GAE(λ) advantages of the rewards
//! r^μ_t under a linear feature baseline fitted on R^μ_t (eq. 4 is λ = 0).
//!
//! Gradients take two backward passes: the outer surrogate at a leaf copy of z' gives
//! ∇_θ J and g; then gᵀ z'(z, β, φ) is differentiated through the inner step (explicit
//! tensor-op backward, [`crate::nn::functional::input_grad`]), exact to second order.
//!
//! Ablations (paper §5.3) are config values: `inner_loss = "vpg"` adapts z by an
//! importance-weighted policy gradient of π_{θ,z} on the exploration samples,
//! ℓ_t = −(π_{θ,z}(a_t|s_t)/μ_old(a_t|s_t)) A_t; `target = "reward"` regresses rewards
//! instead of returns; `phi_gradient = "dice" | "emaml"`.
//!
//! Deviations and choices where the paper is silent: the inner loss is a mean over all
//! n = K·T samples of a task (the paper sums over t and averages over trajectories, so our
//! α is the paper's α·T); targets are standardized over the meta-batch
//! (`normalize_target`); z ∈ ℝ⁸ starts at 0; α = 1.

use std::sync::Arc;

use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{load_module, load_optimizer, module_bytes, optimizer_bytes};
use crate::env::{Env, Task, TaskDistribution, HELD_OUT_SEED};
use crate::error::{Error, Result};
use crate::estimate::{discounted_returns, fit_per_task, gae, normalize_per_task};
use crate::learner::{Checkpoint, Evaluation, MetaLearner, Metrics, Phases};
use crate::nn::functional::{forward, input_grad, log_prob_at, GaussianParams, MlpParams};
pub use crate::nn::latent::{Latent, MameNets};
use crate::nn::{to_vec, to_vec_f64, Activation, GaussianPolicyConfig};
use crate::objective::{
    emaml_term, likelihood_ratio, magic_box, per_task_sum, standardize_returns, surrogate,
};
use crate::params::ascend;
use crate::pg::{
    before_after_evaluation, process, sample_task_batch, sample_tasks_with_context, task_chunks,
    task_major, time_major, MetaPgConfig, SamplerRngs, TaskBatch,
};
use crate::rng::{stream, Rng};
use crate::traj::Trajectories;

mod config;
mod episodes;
mod objective;
mod params;

pub use config::*;
pub use episodes::*;
pub use objective::*;
pub use params::*;

/// The MAME learner.
pub struct Mame {
    /// Settings.
    pub cfg: MameConfig,
    /// The task family.
    pub env: Arc<dyn Env>,
    /// φ, θ, β (autodiff device).
    pub nets: MameNets,
    /// z.
    pub latent: Latent,
    /// Adam state of the networks.
    pub optim: ModuleOptimizer,
    /// Adam state of z.
    pub latent_optim: ModuleOptimizer,
    /// Task stream.
    pub tasks_rng: Rng,
    /// Sampling streams.
    pub rngs: SamplerRngs,
    device: Device,
}

impl Mame {
    /// A learner with fresh networks drawn from `init_rng` and z = 0.
    pub fn new(
        cfg: MameConfig,
        env: Arc<dyn Env>,
        init_rng: &mut Rng,
        tasks_rng: Rng,
        rngs: SamplerRngs,
        device: &Device,
    ) -> Self {
        let s = env.spec().clone();
        Self {
            nets: MameNets::init(
                &cfg.explore,
                &cfg.exploit,
                &cfg.ssl_hidden,
                cfg.ssl_activation,
                (s.obs_dim, s.act_dim, cfg.latent_dim),
                init_rng,
                device,
            ),
            latent: Latent::zeros(cfg.latent_dim, device),
            cfg,
            env,
            optim: AdamConfig::new().init(),
            latent_optim: AdamConfig::new().init(),
            tasks_rng,
            rngs,
            device: device.clone(),
        }
    }

    /// [`meta_gradient`] computed on task chunks in parallel (fresh leaves per chunk, so no
    /// autodiff node is shared between threads) and summed in chunk order.
    fn chunked_gradient(
        &self,
        pre: &ExploreBatch,
        post: &TaskBatch,
        rn: &[f32],
    ) -> Result<MetaGradient> {
        use rayon::prelude::*;
        let chunks = task_chunks(post.m, self.cfg.parallel_chunks);
        let parts: Vec<Result<MetaGradient>> = chunks
            .par_iter()
            .map(|&(lo, hi)| {
                let p = MameParams::leaves(&self.nets, &self.latent);
                meta_gradient_part(
                    &p,
                    &pre.tasks(lo, hi),
                    &post.tasks(lo, hi),
                    &self.cfg,
                    &rn[lo..hi],
                    post.m,
                )
            })
            .collect();
        let mut total: Option<MetaGradient> = None;
        for part in parts {
            let part = part?;
            total = Some(match total {
                None => part,
                Some(mut t) => {
                    t.grad.iter_mut().zip(&part.grad).for_each(|(a, b)| *a += b);
                    t.surrogate += part.surrogate;
                    t.inner_loss += part.inner_loss;
                    t
                }
            });
        }
        Ok(total.expect("at least one chunk"))
    }

    /// One meta-iteration: explore, adapt, exploit, update every parameter.
    fn iterate(&mut self, phases: &mut Phases) -> Result<Metrics> {
        phases.enter("sample");
        let tasks = sample_task_batch(&self.env, self.cfg.tasks, &mut self.tasks_rng);
        let values = MameParams::constants(&self.nets, &self.latent);
        let ep = run_episodes(
            &self.env,
            &tasks,
            &values,
            &self.cfg,
            self.cfg.rollouts,
            &mut self.rngs.env,
            &mut self.rngs.act,
            &self.device,
        )?;
        let post = process(
            &ep.exploit,
            &MetaPgConfig::for_advantages(self.cfg.gamma, self.cfg.normalize_adv),
            &self.device,
        )?;
        phases.enter("update");
        let rn = standardize_returns(&post.task_returns);
        let [nphi, ntheta, nbeta, _] = values.group_sizes();
        let nets_n = nphi + ntheta + nbeta;
        // The paper takes one step per batch; more steps reuse the samples (the outer
        // surrogate is a likelihood ratio to the sampling policy, the magic boxes are
        // relative to the sampling log-probabilities). Metrics are those of the first step.
        let mut first = None;
        for _ in 0..self.cfg.outer_steps {
            let mg = self.chunked_gradient(&ep.pre, &post, &rn)?;
            let g: Vec<f32> = mg.grad.iter().map(|g| *g as f32).collect();
            let (lr, dev) = (self.cfg.lr, &self.device);
            self.nets = ascend(&mut self.optim, lr, self.nets.clone(), &g[..nets_n], dev);
            let (lr, latent) = (self.cfg.latent_lr, self.latent.clone());
            self.latent = ascend(&mut self.latent_optim, lr, latent, &g[nets_n..], dev);
            first.get_or_insert(mg);
        }
        let mg = first.expect("outer_steps ≥ 1");
        let norm = |lo: usize, hi: usize| mg.grad[lo..hi].iter().map(|x| x * x).sum::<f64>().sqrt();
        let mut m = Metrics::new()
            .with("pre_return", ep.explore.mean_return())
            .with("post_return_1", ep.exploit.mean_return());
        if let (Some(a), Some(b)) = (ep.explore.success_rate(), ep.exploit.success_rate()) {
            m.push("pre_success", a);
            m.push("post_success", b);
        }
        m.push("inner_loss", mg.inner_loss);
        m.push("z_spread", spread(&ep.z, self.cfg.latent_dim));
        m.push("surrogate", mg.surrogate);
        m.push("grad_norm_phi", norm(0, nphi));
        m.push("grad_norm_theta", norm(nphi, nphi + ntheta));
        m.push("grad_norm_beta", norm(nphi + ntheta, nets_n));
        m.push("grad_norm_z", norm(nets_n, mg.grad.len()));
        m.push(
            "env_steps",
            (ep.explore.env_steps() + ep.exploit.env_steps()) as f64,
        );
        Ok(m)
    }
}

/// Mean over dimensions of the standard deviation across tasks of codes `[M, d]`: how
/// much the inner step tells tasks apart.
pub fn spread(z: &[f32], d: usize) -> f64 {
    let m = (z.len() / d).max(1) as f64;
    (0..d)
        .map(|j| {
            let col: Vec<f64> = z.iter().skip(j).step_by(d).map(|x| *x as f64).collect();
            let mean = col.iter().sum::<f64>() / m;
            (col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / m).sqrt()
        })
        .sum::<f64>()
        / d as f64
}

impl MetaLearner for Mame {
    fn step(&mut self, _iteration: usize, phases: &mut Phases) -> Result<Metrics> {
        self.iterate(phases)
    }

    fn parameters_finite(&self) -> bool {
        crate::params::flatten(&self.nets)
            .iter()
            .chain(crate::params::flatten(&self.latent).iter())
            .all(|x| x.is_finite())
    }

    fn checkpoint(&self) -> Result<Checkpoint> {
        let ck = Checkpoint::default()
            .with_file("nets.bpk", module_bytes(&self.nets)?)
            .with_file("latent.bpk", module_bytes(&self.latent)?)
            .with_file("adam.bpk", optimizer_bytes(&self.optim)?)
            .with_file("adam-latent.bpk", optimizer_bytes(&self.latent_optim)?)
            .with_rng("tasks", &self.tasks_rng);
        Ok(self.rngs.save(ck))
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        self.nets = load_module(self.nets.clone(), ck.file("nets.bpk")?)?;
        self.latent = load_module(self.latent.clone(), ck.file("latent.bpk")?)?;
        self.optim = load_optimizer(AdamConfig::new().init(), ck.file("adam.bpk")?)?;
        self.latent_optim = load_optimizer(AdamConfig::new().init(), ck.file("adam-latent.bpk")?)?;
        self.tasks_rng = ck.rng("tasks")?;
        self.rngs = SamplerRngs::restore(ck)?;
        Ok(())
    }

    /// Explore with μ_φ (phase "pre-explore"), adapt z, exploit with π_{θ,z'}
    /// ("post-exploit") on the held-out tasks, from fixed sampling streams.
    fn evaluate(&self, n: usize) -> Result<Evaluation> {
        let tasks = TaskDistribution::new(self.env.clone()).held_out(n);
        let p = MameParams::constants(&self.nets, &self.latent);
        let ep = run_episodes(
            &self.env,
            &tasks,
            &p,
            &self.cfg,
            self.cfg.rollouts,
            &mut stream(HELD_OUT_SEED, "eval-env"),
            &mut stream(HELD_OUT_SEED, "eval-action"),
            &self.device,
        )?;
        Ok(before_after_evaluation(
            &self.env,
            &tasks,
            (&ep.explore, &ep.exploit),
            self.cfg.rollouts,
            ("pre-explore", "post-exploit"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_bad_field() {
        type Setter = Box<dyn Fn(&mut MameConfig)>;
        let bad: Vec<(&str, Setter)> = vec![
            ("mame.tasks", Box::new(|c| c.tasks = 0)),
            ("mame.rollouts", Box::new(|c| c.rollouts = 1)),
            ("mame.latent_dim", Box::new(|c| c.latent_dim = 0)),
            ("mame.parallel_chunks", Box::new(|c| c.parallel_chunks = 0)),
            ("mame.outer_steps", Box::new(|c| c.outer_steps = 0)),
            ("mame.inner_lr", Box::new(|c| c.inner_lr = f64::NAN)),
            ("mame.explore_lambda", Box::new(|c| c.explore_lambda = 1.5)),
            ("mame.ssl_hidden", Box::new(|c| c.ssl_hidden = vec![0])),
        ];
        assert!(MameConfig::default().validate().is_ok());
        for (field, set) in bad {
            let mut c = MameConfig::default();
            set(&mut c);
            let e = c.validate().expect_err(field).to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
    }

    #[test]
    fn spread_and_standardize_by_hand() {
        // Two tasks, d = 1: codes 1 and 3 → std 1.
        assert!((spread(&[1.0, 3.0], 1) - 1.0).abs() < 1e-12);
        // Masked entries are ignored and set to 0; the rest has mean 2, std 1.
        // (explore_batch's target standardization: one group of all N = 3 rows, T = 1.)
        let s = normalize_per_task(&[1.0, 3.0, 100.0], &[1.0, 1.0, 0.0], 3, 3);
        assert!((s[0] + 1.0).abs() < 1e-6 && (s[1] - 1.0).abs() < 1e-6 && s[2] == 0.0);
        // Rows of codes: [M, d] → [M·k, d].
        assert_eq!(
            rows_of(&[1.0, 2.0, 3.0, 4.0], 2, 2),
            vec![1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0]
        );
    }
}
