//! MAESN: meta-reinforcement learning of structured exploration strategies (Gupta et al.
//! 2018). A policy π_θ(a | s, z) conditioned on a latent z drawn once per episode from a
//! task-specific Gaussian N(μ_i, σ_i²); adaptation is a policy-gradient step on (μ_i, log σ_i)
//! with learned per-dimension step sizes, and a KL penalty keeps the pre-update latent
//! distributions near the prior N(0, I), which is where a new task starts.
//!
//! ```text
//! training tasks T_1..T_P fixed, each with latent parameters (μ_i, log σ_i)
//! while not done:
//!     sample a meta-batch of training tasks i
//!     for each: ε_k ~ N(0, I), z_k = μ_i + σ_i ⊙ ε_k, τ_k ~ π_θ(·|·, z_k)          (pre-update)
//!         μ'_i     = μ_i     + α_μ ⊙ ∇_{μ_i}     J_i,    J_i = (1/K) Σ_{k,t} log π_θ(a_t|s_t, z_k) Â_t
//!         log σ'_i = log σ_i + α_σ ⊙ ∇_{log σ_i} J_i                                (through z_k = μ_i + σ_i ε_k)
//!         ε'_k ~ N(0, I), z'_k = μ'_i + σ'_i ⊙ ε'_k, τ'_k ~ π_θ(·|·, z'_k)          (post-update)
//!     L = (1/M) Σ_i [(1/n') Σ ρ'_t Â'_t − w_KL · KL(N(μ_i, σ_i²) ‖ N(0, I))]
//!     θ, μ, log σ, α_μ, α_σ ← Adam(∇L)       (exact: autodiff through the latent step)
//! at test time: (μ, log σ) = (0, 0), one latent step with the learned α.
//! (`latent_objective = "sample"`: J_i = (1/n) Σ_{k,t} … over the n real steps instead.)
//! ```
//!
//! The latent gradient is the pathwise one given the episode's noise ε (the action
//! log-likelihood depends on (μ, σ) through the policy input z), computed by the explicit
//! input-gradient of the policy network, so the outer gradient differentiates it exactly.
//! Deviations: Adam instead of TRPO for the outer step (one optimizer for every method of
//! `meta-explore`), and the policy-gradient step uses per-task normalized advantages.

use std::sync::Arc;

use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::prelude::*;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{load_module, load_optimizer, module_bytes, optimizer_bytes};
use crate::env::{Env, Task, TaskDistribution, HELD_OUT_SEED};
use crate::error::{Error, Result};
use crate::learner::{Checkpoint, Evaluation, MetaLearner, Metrics, Phases};
use crate::nn::functional::{input_grad, log_prob_at, GaussianParams};
pub use crate::nn::latent::MaesnModel;
use crate::nn::{to_vec, to_vec_f64, Activation, GaussianPolicyConfig};
use crate::objective::{likelihood_ratio, surrogate};
use crate::params::flatten;
use crate::pg::{
    before_after_evaluation, process, sample_tasks_with_context, MetaPgConfig, SamplerRngs,
    TaskBatch,
};
use crate::rng::{stream, Rng};
use crate::traj::Trajectories;

mod config;
mod episodes;
mod latent;

pub use config::*;
pub use episodes::*;
pub use latent::*;

/// The MAESN learner.
pub struct Maesn {
    /// Settings.
    pub cfg: MaesnConfig,
    /// The task family.
    pub env: Arc<dyn Env>,
    /// The training tasks (fixed by the seed).
    pub train_tasks: Vec<Task>,
    /// Learned parameters (autodiff device).
    pub model: MaesnModel,
    /// Adam state.
    pub optim: ModuleOptimizer,
    /// Meta-batch stream.
    pub tasks_rng: Rng,
    /// Sampling streams.
    pub rngs: SamplerRngs,
    /// Latent noise stream.
    pub latent_rng: Rng,
    device: Device,
}

impl Maesn {
    /// A learner with fresh parameters; the training tasks are drawn from `train_rng`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: MaesnConfig,
        env: Arc<dyn Env>,
        init_rng: &mut Rng,
        train_rng: &mut Rng,
        tasks_rng: Rng,
        rngs: SamplerRngs,
        latent_rng: Rng,
        device: &Device,
    ) -> Self {
        let s = env.spec().clone();
        let train_tasks = TaskDistribution::new(env.clone()).sample(cfg.train_tasks, train_rng);
        Self {
            model: MaesnModel::init(
                &cfg.policy,
                (s.obs_dim, s.act_dim),
                (cfg.train_tasks, cfg.latent_dim),
                cfg.inner_lr,
                init_rng,
                device,
            ),
            train_tasks,
            cfg,
            env,
            optim: AdamConfig::new().init(),
            tasks_rng,
            rngs,
            latent_rng,
            device: device.clone(),
        }
    }

    /// One meta-iteration.
    fn iterate(&mut self, phases: &mut Phases) -> Result<Metrics> {
        use rand::seq::index::sample as choose;
        phases.enter("sample");
        let idx: Vec<usize> =
            choose(&mut self.tasks_rng, self.cfg.train_tasks, self.cfg.tasks).into_vec();
        let tasks: Vec<Task> = idx.iter().map(|&i| self.train_tasks[i].clone()).collect();
        let (s, tr_pre, tr_post) = run_episodes(
            &self.env,
            &tasks,
            &MaesnParams::of(&self.model, &idx),
            &self.cfg,
            &mut self.rngs.env,
            &mut self.rngs.act,
            &mut self.latent_rng,
            &self.device,
        )?;
        phases.enter("update");
        let p = MaesnParams::of(&self.model, &idx);
        let l = objective(&p, &s, &self.cfg);
        let value = to_vec_f64(l.clone())[0];
        let grads = burn::optim::GradientsParams::from_grads(l.neg().backward(), &self.model);
        let before = flatten(&self.model);
        self.model = self.optim.step(self.cfg.lr, self.model.clone(), grads);
        let moved = flatten(&self.model)
            .iter()
            .zip(&before)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        let kl = to_vec_f64(kl_to_prior(&p.mean, &p.log_std).mean())[0];
        let mut m = Metrics::new()
            .with("pre_return", tr_pre.mean_return())
            .with("post_return_1", tr_post.mean_return());
        if let (Some(a), Some(b)) = (tr_pre.success_rate(), tr_post.success_rate()) {
            m.push("pre_success", a);
            m.push("post_success", b);
        }
        m.push("objective", value);
        m.push("kl_prior", kl);
        m.push("step_norm", moved);
        m.push("latent_mean_shift", s.latent_shift[0]);
        m.push("latent_log_std_shift", s.latent_shift[1]);
        m.push(
            "env_steps",
            (tr_pre.env_steps() + tr_post.env_steps()) as f64,
        );

        Ok(m)
    }
}

impl MetaLearner for Maesn {
    fn step(&mut self, _iteration: usize, phases: &mut Phases) -> Result<Metrics> {
        self.iterate(phases)
    }

    fn parameters_finite(&self) -> bool {
        flatten(&self.model).iter().all(|x| x.is_finite())
    }

    fn checkpoint(&self) -> Result<Checkpoint> {
        let ck = Checkpoint::default()
            .with_file("model.bpk", module_bytes(&self.model)?)
            .with_file("adam.bpk", optimizer_bytes(&self.optim)?)
            .with_rng("tasks", &self.tasks_rng)
            .with_rng("latent", &self.latent_rng);
        Ok(self.rngs.save(ck))
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        self.model = load_module(self.model.clone(), ck.file("model.bpk")?)?;
        self.optim = load_optimizer(AdamConfig::new().init(), ck.file("adam.bpk")?)?;
        self.tasks_rng = ck.rng("tasks")?;
        self.latent_rng = ck.rng("latent")?;
        self.rngs = SamplerRngs::restore(ck)?;
        Ok(())
    }

    /// Latents from the prior N(0, I) (phase "pre"), then one latent step ("post-1"), on
    /// the held-out tasks from fixed sampling streams.
    fn evaluate(&self, n: usize) -> Result<Evaluation> {
        let tasks = TaskDistribution::new(self.env.clone()).held_out(n);
        let p = MaesnParams::prior(&self.model, n);
        let (_, pre, post) = run_episodes(
            &self.env,
            &tasks,
            &p,
            &self.cfg,
            &mut stream(HELD_OUT_SEED, "eval-env"),
            &mut stream(HELD_OUT_SEED, "eval-action"),
            &mut stream(HELD_OUT_SEED, "eval-latent"),
            &self.device,
        )?;
        Ok(before_after_evaluation(
            &self.env,
            &tasks,
            (&pre, &post),
            self.cfg.rollouts,
            ("pre", "post-1"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_bad_field() {
        assert!(MaesnConfig::default().validate().is_ok());
        let mut c = MaesnConfig {
            tasks: 30,
            train_tasks: 20,
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("maesn.tasks"));
        c = MaesnConfig {
            kl_weight: -1.0,
            ..Default::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("maesn.kl_weight"));
    }

    #[test]
    fn kl_to_the_prior_by_hand() {
        let d = crate::device::DeviceKind::Flex.device().unwrap();
        // Per dimension ½(σ² + μ² − 1) − ln σ. μ = (1, 0), σ = (1, 2):
        // ½(1 + 1 − 1) − 0 + ½(4 + 0 − 1) − ln 2 = 0.5 + 1.5 − ln 2 = 2 − ln 2.
        let mean = Tensor::<3>::from_data(TensorData::new(vec![1.0f32, 0.0], [1, 1, 2]), &d);
        let log_std =
            Tensor::<3>::from_data(TensorData::new(vec![0.0f32, 2.0f32.ln()], [1, 1, 2]), &d);
        let kl = crate::nn::to_vec(kl_to_prior(&mean, &log_std))[0];
        assert!((kl - (2.0 - 2.0f32.ln())).abs() < 1e-6, "{kl}");
    }
}
