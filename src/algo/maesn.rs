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
//!         μ'_i     = μ_i     + α_μ ⊙ ∇_{μ_i}     J_i,    J_i = (1/n) Σ_{k,t} log π_θ(a_t|s_t, z_k) Â_t
//!         log σ'_i = log σ_i + α_σ ⊙ ∇_{log σ_i} J_i                                (through z_k = μ_i + σ_i ε_k)
//!         ε'_k ~ N(0, I), z'_k = μ'_i + σ'_i ⊙ ε'_k, τ'_k ~ π_θ(·|·, z'_k)          (post-update)
//!     L = (1/M) Σ_i [(1/n') Σ ρ'_t Â'_t − w_KL · KL(N(μ_i, σ_i²) ‖ N(0, I))]
//!     θ, μ, log σ, α_μ, α_σ ← Adam(∇L)       (exact: autodiff through the latent step)
//! at test time: (μ, log σ) = (0, 0), one latent step with the learned α.
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

/// MAESN's settings (mission-anchors §3.6, with ProMP's sampling sizes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaesnConfig {
    /// Tasks per meta-batch (MAESN: 20).
    pub tasks: usize,
    /// Rollouts per task, before and after the latent step (MAESN: 20 or 50).
    pub rollouts: usize,
    /// Training tasks, each with its own latent distribution (MAESN: 100).
    pub train_tasks: usize,
    /// Latent size (MAESN: 2).
    pub latent_dim: usize,
    /// Initial value of the learned latent step sizes α_μ, α_σ (MAESN: 0.5 or 1).
    pub inner_lr: f64,
    /// Weight of KL(N(μ_i, σ_i²) ‖ N(0, I)) (MAESN: 0.1 or 0.5).
    pub kl_weight: f64,
    /// Adam step size of every parameter.
    pub lr: f64,
    /// Discount γ.
    pub gamma: f64,
    /// Normalize advantages per task.
    pub normalize_adv: bool,
    /// The policy (input s ⊕ z; MAESN: (100, 100) ReLU).
    pub policy: GaussianPolicyConfig,
}

impl Default for MaesnConfig {
    fn default() -> Self {
        Self {
            tasks: 20,
            rollouts: 20,
            train_tasks: 100,
            latent_dim: 2,
            inner_lr: 1.0,
            kl_weight: 0.1,
            lr: 1e-3,
            gamma: 0.99,
            normalize_adv: true,
            policy: GaussianPolicyConfig {
                hidden: vec![100, 100],
                activation: Activation::Relu,
                ..GaussianPolicyConfig::default()
            },
        }
    }
}

impl MaesnConfig {
    /// Validates every field; errors name it.
    pub fn validate(&self) -> Result<()> {
        for (f, v) in [
            ("maesn.tasks", self.tasks),
            ("maesn.train_tasks", self.train_tasks),
            ("maesn.latent_dim", self.latent_dim),
        ] {
            if v == 0 {
                return Err(Error::invalid(f, v, "≥ 1"));
            }
        }
        if self.tasks > self.train_tasks {
            return Err(Error::invalid(
                "maesn.tasks",
                self.tasks,
                format!("≤ maesn.train_tasks = {}", self.train_tasks),
            ));
        }
        if self.rollouts < 2 {
            return Err(Error::invalid("maesn.rollouts", self.rollouts, "≥ 2"));
        }
        for (f, v) in [
            ("maesn.inner_lr", self.inner_lr),
            ("maesn.kl_weight", self.kl_weight),
            ("maesn.lr", self.lr),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(f, v, "a finite number ≥ 0"));
            }
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return Err(Error::invalid("maesn.gamma", self.gamma, "[0, 1]"));
        }
        self.policy.validate("maesn.policy.")
    }
}

/// MAESN's parameters in functional form for a meta-batch of tasks.
#[derive(Clone, Debug)]
pub struct MaesnParams {
    /// π_θ.
    pub policy: GaussianParams,
    /// Latent means of the batch's tasks `[M, 1, d]`.
    pub mean: Tensor<3>,
    /// Latent log-stds of the batch's tasks `[M, 1, d]`.
    pub log_std: Tensor<3>,
    /// α_μ `[1, 1, d]`.
    pub step_mean: Tensor<3>,
    /// α_σ `[1, 1, d]`.
    pub step_log_std: Tensor<3>,
}

impl MaesnParams {
    /// The model's values for training tasks `idx` (tracked if the model is on an autodiff
    /// device and not detached).
    pub fn of(model: &MaesnModel, idx: &[usize]) -> Self {
        let device = model.latent_mean.device();
        let d = model.step_mean.lazy_shape().as_slice()[0];
        let ids = Tensor::<1, Int>::from_data(
            TensorData::new(idx.iter().map(|&i| i as i64).collect(), [idx.len()]),
            &device,
        );
        let pick = |t: Tensor<2>| t.select(0, ids.clone()).reshape([idx.len(), 1, d]);
        Self {
            policy: GaussianParams::from_policy(&model.policy),
            mean: pick(model.latent_mean.val()),
            log_std: pick(model.latent_log_std.val()),
            step_mean: model.step_mean.val().reshape([1, 1, d]),
            step_log_std: model.step_log_std.val().reshape([1, 1, d]),
        }
    }

    /// The prior N(0, I) for `m` new tasks, with the model's policy and step sizes.
    pub fn prior(model: &MaesnModel, m: usize) -> Self {
        let device = model.latent_mean.device();
        let d = model.step_mean.lazy_shape().as_slice()[0];
        Self {
            policy: GaussianParams::from_policy(&model.policy),
            mean: Tensor::zeros([m, 1, d], &device),
            log_std: Tensor::zeros([m, 1, d], &device),
            step_mean: model.step_mean.val().reshape([1, 1, d]),
            step_log_std: model.step_log_std.val().reshape([1, 1, d]),
        }
    }

    /// Cut from the autodiff graph.
    pub fn detach(&self) -> Self {
        Self {
            policy: self.policy.detach(),
            mean: self.mean.clone().detach(),
            log_std: self.log_std.clone().detach(),
            step_mean: self.step_mean.clone().detach(),
            step_log_std: self.step_log_std.clone().detach(),
        }
    }
}

/// z = μ + σ ⊙ ε per episode, `[M, K, d]`, from `[M, 1, d]` latent parameters and noise
/// `eps` `[M, K, d]`.
pub fn latents(mean: &Tensor<3>, log_std: &Tensor<3>, eps: &Tensor<3>) -> Tensor<3> {
    mean.clone() + log_std.clone().exp() * eps.clone()
}

/// Each episode's latent repeated over its T steps: `[M, K, d]` → `[M, K·T, d]`.
fn per_step(z: Tensor<3>, t: usize) -> Tensor<3> {
    let [m, k, d] = z.dims();
    z.unsqueeze_dim::<4>(2)
        .expand([m, k, t, d])
        .reshape([m, k * t, d])
}

/// The latent step: (μ', log σ') = (μ, log σ) + (α_μ, α_σ) ⊙ ∇ (1/n) Σ_{k,t} log π_θ(a_t|s_t, z_k) Â_t
/// on the pre-update batch `b` drawn with noise `eps`. Exact tensor ops: differentiable in
/// θ, μ, log σ and the step sizes.
pub fn adapt_latent(p: &MaesnParams, eps: &Tensor<3>, b: &TaskBatch) -> (Tensor<3>, Tensor<3>) {
    let (m, k, t) = (b.m, b.k, b.t);
    let d = p.mean.dims()[2];
    let od = b.obs.dims()[2];
    let z = latents(&p.mean, &p.log_std, eps);
    let x = Tensor::cat(vec![b.obs.clone(), per_step(z, t)], 2);
    let (mu, cache) = p.policy.forward(x);
    let inv_var = p.policy.log_std.clone().mul_scalar(-2.0).exp();
    let w = (b.adv.clone() * b.mask.clone() / b.n.clone()).reshape([m, k * t, 1]);
    let dmu = (b.act.clone() - mu) * inv_var * w;
    let dz = input_grad(&p.policy.mean, &cache, dmu)
        .narrow(2, od, d)
        .reshape([m, k, t, d])
        .sum_dim(2)
        .reshape([m, k, d]);
    let g_mean = dz.clone().sum_dim(1);
    let g_log_std = (dz * eps.clone() * p.log_std.clone().exp()).sum_dim(1);
    (
        p.mean.clone() + p.step_mean.clone() * g_mean,
        p.log_std.clone() + p.step_log_std.clone() * g_log_std,
    )
}

/// KL(N(μ, σ²) ‖ N(0, I)) per task `[M]` from `[M, 1, d]` parameters.
pub fn kl_to_prior(mean: &Tensor<3>, log_std: &Tensor<3>) -> Tensor<1> {
    let m = mean.dims()[0];
    let var = log_std.clone().mul_scalar(2.0).exp();
    ((var + mean.clone().powi_scalar(2)).mul_scalar(0.5) - log_std.clone())
        .sub_scalar(0.5)
        .sum_dim(2)
        .reshape([m])
}

/// One meta-batch of MAESN samples.
#[derive(Clone, Debug)]
pub struct MaesnSamples {
    /// Pre-update batch.
    pub pre: TaskBatch,
    /// Its latent noise `[M, K, d]`.
    pub eps_pre: Tensor<3>,
    /// Post-update batch.
    pub post: TaskBatch,
    /// Its latent noise `[M, K, d]`.
    pub eps_post: Tensor<3>,
}

/// The outer objective L (module docs) on stored samples, a function of every parameter.
pub fn objective(p: &MaesnParams, s: &MaesnSamples, cfg: &MaesnConfig) -> Tensor<1> {
    let (mean2, log_std2) = adapt_latent(p, &s.eps_pre, &s.pre);
    let b = &s.post;
    let z = latents(&mean2, &log_std2, &s.eps_post);
    let x = Tensor::cat(vec![b.obs.clone(), per_step(z, b.t)], 2);
    let logp = log_prob_at(p.policy.mu(x), p.policy.log_std.clone(), b.act.clone())
        .reshape([b.m, b.k, b.t]);
    let j = surrogate(
        likelihood_ratio(logp, b.logp_old.clone()),
        b.adv.clone(),
        b.mask.clone(),
        b.n.clone(),
    );
    (j - kl_to_prior(&p.mean, &p.log_std).mul_scalar(cfg.kl_weight)).mean()
}

/// Standard normal noise `[M, K, d]`.
fn noise(m: usize, k: usize, d: usize, rng: &mut Rng, device: &Device) -> Tensor<3> {
    let v: Vec<f32> = (0..m * k * d)
        .map(|_| StandardNormal.sample(&mut *rng))
        .collect();
    Tensor::from_data(TensorData::new(v, [m, k, d]), device)
}

/// Pre-update sampling, the latent step (values only) and post-update sampling.
#[allow(clippy::too_many_arguments)]
pub fn run_episodes(
    env: &Arc<dyn Env>,
    tasks: &[Task],
    p: &MaesnParams,
    cfg: &MaesnConfig,
    env_rng: &mut Rng,
    act_rng: &mut Rng,
    latent_rng: &mut Rng,
    device: &Device,
) -> Result<(MaesnSamples, Trajectories, Trajectories)> {
    let (m, k, d) = (tasks.len(), cfg.rollouts, cfg.latent_dim);
    let p = p.detach();
    let advantages = MetaPgConfig::for_advantages(cfg.gamma, cfg.normalize_adv);
    let eps_pre = noise(m, k, d, latent_rng, device);
    let z = to_vec(latents(&p.mean, &p.log_std, &eps_pre));
    let tr_pre = sample_tasks_with_context(
        env,
        tasks,
        &p.policy,
        Some((z, d)),
        k,
        env_rng,
        act_rng,
        device,
    );
    let pre = process(&tr_pre, &advantages, device)?;
    let (mean2, log_std2) = adapt_latent(&p, &eps_pre, &pre);
    let eps_post = noise(m, k, d, latent_rng, device);
    let z2 = to_vec(latents(&mean2, &log_std2, &eps_post));
    let tr_post = sample_tasks_with_context(
        env,
        tasks,
        &p.policy,
        Some((z2, d)),
        k,
        env_rng,
        act_rng,
        device,
    );
    let post = process(&tr_post, &advantages, device)?;
    Ok((
        MaesnSamples {
            pre,
            eps_pre,
            post,
            eps_post,
        },
        tr_pre,
        tr_post,
    ))
}

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
        Ok(Checkpoint::default()
            .with_file("model.bpk", module_bytes(&self.model)?)
            .with_file("adam.bpk", optimizer_bytes(&self.optim)?)
            .with_rng("tasks", &self.tasks_rng)
            .with_rng("env", &self.rngs.env)
            .with_rng("action", &self.rngs.act)
            .with_rng("latent", &self.latent_rng))
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        self.model = load_module(self.model.clone(), ck.file("model.bpk")?)?;
        self.optim = load_optimizer(AdamConfig::new().init(), ck.file("adam.bpk")?)?;
        self.tasks_rng = ck.rng("tasks")?;
        self.latent_rng = ck.rng("latent")?;
        self.rngs = SamplerRngs {
            env: ck.rng("env")?,
            act: ck.rng("action")?,
        };
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
