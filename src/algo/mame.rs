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
use std::time::Instant;

use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{load_module, load_optimizer, module_bytes, optimizer_bytes};
use crate::env::{Env, Task, TaskDistribution, HELD_OUT_SEED};
use crate::error::{Error, Result};
use crate::estimate::{discounted_returns, fit_per_task, gae, normalize_per_task};
use crate::learner::{Checkpoint, Evaluation, MetaLearner, Metrics};
use crate::nn::functional::{forward, input_grad, log_prob_at, GaussianParams, MlpParams};
pub use crate::nn::latent::{Latent, MameNets};
use crate::nn::{to_vec, to_vec_f64, Activation, GaussianPolicyConfig};
use crate::objective::{
    emaml_term, likelihood_ratio, magic_box, per_task_sum, standardize_returns, surrogate,
};
use crate::params::to_gradients;
use crate::pg::{
    before_after_evaluation, process, sample_task_batch, sample_tasks_with_context, task_chunks,
    task_major, time_major, MetaPgConfig, SamplerRngs, TaskBatch,
};
use crate::rng::{stream, Rng};
use crate::traj::Trajectories;

/// How z is adapted to a task from the exploration samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InnerLoss {
    /// Regression of M_{β,z}(s, a) on the self-supervision target (the method).
    SelfSupervised,
    /// Importance-weighted policy gradient of π_{θ,z} on the exploration samples
    /// (ablation "VPG inner loop").
    Vpg,
}

/// The self-supervision target M̄_t.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// Discounted return from step t (the method).
    Return,
    /// Reward at step t (ablation "reward self-supervision").
    Reward,
}

/// The exploration policy's gradient estimator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhiGradient {
    /// Eqs. 2–5: per-step rewards r^μ_t, linear baseline, GAE(λ) (the method).
    VarianceReduced,
    /// The exact gradient through the magic boxes (ablation "vanilla DiCE").
    Dice,
    /// Policy gradient of μ_φ with the task's post-update return (ablation "E-MAML").
    Emaml,
}

/// MAME's settings. Defaults: the paper's optimizer (§5: Adam 7e-4, 4e-5 for z), ProMP's
/// sampling and policy sizes; α, the latent size and λ are ours (the paper gives none).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MameConfig {
    /// Tasks per meta-batch.
    pub tasks: usize,
    /// Rollouts per task, for exploration and for exploitation.
    pub rollouts: usize,
    /// Inner step size α on z.
    pub inner_lr: f64,
    /// Size of the latent code z.
    pub latent_dim: usize,
    /// Inner loss.
    pub inner_loss: InnerLoss,
    /// Self-supervision target.
    pub target: Target,
    /// Standardize the targets over the whole meta-batch (one mean and standard deviation
    /// for all tasks, so differences between tasks survive), making α independent of
    /// the reward scale.
    pub normalize_target: bool,
    /// Estimator of ∇_φ.
    pub phi_gradient: PhiGradient,
    /// GAE λ of the exploration advantages A^μ (0: the paper's eq. 4; 1: return minus
    /// baseline, unbiased).
    pub explore_lambda: f64,
    /// Subtract the linear feature baseline from the exploration returns.
    pub explore_baseline: bool,
    /// Discount γ of returns and targets.
    pub gamma: f64,
    /// Normalize the exploitation (and VPG-inner) advantages per task.
    pub normalize_adv: bool,
    /// Adam step size of φ, θ and β.
    pub lr: f64,
    /// Adam step size of z.
    pub latent_lr: f64,
    /// Exploration policy μ_φ(s).
    pub explore: GaussianPolicyConfig,
    /// Exploitation policy π_{θ,z}(s) (its input is s ⊕ z).
    pub exploit: GaussianPolicyConfig,
    /// Hidden sizes of M_{β,z}(s, a) (input s ⊕ a ⊕ z, one output).
    pub ssl_hidden: Vec<usize>,
    /// Hidden nonlinearity of M_{β,z}.
    pub ssl_activation: Activation,
    /// Task chunks whose gradients are computed in parallel and summed (fixed, so results
    /// do not depend on the thread count).
    pub parallel_chunks: usize,
    /// Adam steps per batch of samples (the paper: 1; ProMP-style reuse with more).
    pub outer_steps: usize,
}

impl Default for MameConfig {
    fn default() -> Self {
        Self {
            tasks: 40,
            rollouts: 20,
            inner_lr: 1.0,
            latent_dim: 8,
            inner_loss: InnerLoss::SelfSupervised,
            target: Target::Return,
            normalize_target: true,
            phi_gradient: PhiGradient::VarianceReduced,
            explore_lambda: 0.0,
            explore_baseline: true,
            gamma: 0.99,
            normalize_adv: true,
            lr: 7e-4,
            latent_lr: 4e-5,
            explore: GaussianPolicyConfig::default(),
            exploit: GaussianPolicyConfig::default(),
            ssl_hidden: vec![64, 64],
            ssl_activation: Activation::Tanh,
            parallel_chunks: 2,
            outer_steps: 1,
        }
    }
}

impl MameConfig {
    /// Validates every field; errors name it.
    pub fn validate(&self) -> Result<()> {
        for (f, v) in [
            ("mame.tasks", self.tasks),
            ("mame.latent_dim", self.latent_dim),
            ("mame.parallel_chunks", self.parallel_chunks),
            ("mame.outer_steps", self.outer_steps),
        ] {
            if v == 0 {
                return Err(Error::invalid(f, v, "≥ 1"));
            }
        }
        if self.rollouts < 2 {
            return Err(Error::invalid("mame.rollouts", self.rollouts, "≥ 2"));
        }
        for (f, v) in [
            ("mame.inner_lr", self.inner_lr),
            ("mame.lr", self.lr),
            ("mame.latent_lr", self.latent_lr),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(f, v, "a finite number ≥ 0"));
            }
        }
        for (f, v) in [
            ("mame.explore_lambda", self.explore_lambda),
            ("mame.gamma", self.gamma),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::invalid(f, v, "[0, 1]"));
            }
        }
        if self.ssl_hidden.contains(&0) {
            return Err(Error::invalid(
                "mame.ssl_hidden",
                format!("{:?}", self.ssl_hidden),
                "sizes ≥ 1",
            ));
        }
        self.explore.validate("mame.explore.")?;
        self.exploit.validate("mame.exploit.")
    }
}

/// MAME's parameters in functional form (leaves for gradients, or constants).
#[derive(Clone, Debug)]
pub struct MameParams {
    /// μ_φ.
    pub explore: GaussianParams,
    /// π_θ (input s ⊕ z).
    pub exploit: GaussianParams,
    /// M_β (input s ⊕ a ⊕ z).
    pub ssl: MlpParams,
    /// z, `[1, 1, latent_dim]`.
    pub z: Tensor<3>,
}

fn gaussian_parts(p: &GaussianParams) -> Vec<Tensor<3>> {
    let mut v = mlp_parts(&p.mean);
    v.push(p.log_std.clone());
    v
}

fn mlp_parts(p: &MlpParams) -> Vec<Tensor<3>> {
    p.w.iter()
        .zip(&p.b)
        .flat_map(|(w, b)| [w.clone(), b.clone()])
        .collect()
}

fn mlp_from(template: &MlpParams, it: &mut impl Iterator<Item = Tensor<3>>) -> MlpParams {
    let mut w = Vec::new();
    let mut b = Vec::new();
    for _ in 0..template.num_layers() {
        w.push(it.next().expect("enough parts"));
        b.push(it.next().expect("enough parts"));
    }
    MlpParams {
        w,
        b,
        activation: template.activation,
    }
}

impl MameParams {
    /// The modules' current values as fresh autodiff leaves.
    pub fn leaves(nets: &MameNets, latent: &Latent) -> Self {
        Self::constants(nets, latent).map(|t| t.require_grad())
    }

    /// The modules' current values, untracked.
    pub fn constants(nets: &MameNets, latent: &Latent) -> Self {
        let p = Self {
            explore: GaussianParams::from_policy(&nets.explore),
            exploit: GaussianParams::from_policy(&nets.exploit),
            ssl: MlpParams::from_mlp(&nets.ssl),
            z: latent
                .z
                .val()
                .reshape([1, 1, latent.z.lazy_shape().as_slice()[0]]),
        };
        p.map(|t| t.detach())
    }

    /// Every tensor in [`crate::params::flatten`] order of (nets, latent): μ_φ's layers
    /// and log-std, π_θ's, M_β's layers, z.
    pub fn parts(&self) -> Vec<Tensor<3>> {
        let mut v = gaussian_parts(&self.explore);
        v.extend(gaussian_parts(&self.exploit));
        v.extend(mlp_parts(&self.ssl));
        v.push(self.z.clone());
        v
    }

    /// The same layout filled with `parts` (in [`Self::parts`] order).
    pub fn from_parts(&self, parts: Vec<Tensor<3>>) -> Self {
        let mut it = parts.into_iter();
        let explore = GaussianParams {
            mean: mlp_from(&self.explore.mean, &mut it),
            log_std: it.next().expect("enough parts"),
        };
        let exploit = GaussianParams {
            mean: mlp_from(&self.exploit.mean, &mut it),
            log_std: it.next().expect("enough parts"),
        };
        let ssl = mlp_from(&self.ssl, &mut it);
        let z = it.next().expect("enough parts");
        assert!(it.next().is_none(), "too many parts");
        Self {
            explore,
            exploit,
            ssl,
            z,
        }
    }

    /// Applies `f` to every tensor.
    pub fn map(&self, f: impl FnMut(Tensor<3>) -> Tensor<3>) -> Self {
        self.from_parts(self.parts().into_iter().map(f).collect())
    }

    /// All values as one flat vector (f64).
    pub fn to_flat(&self) -> Vec<f64> {
        self.parts().into_iter().flat_map(to_vec_f64).collect()
    }

    /// Gradients of every part from `g` as one flat vector (zeros where a part is unused).
    pub fn gradients(&self, g: &burn::tensor::Gradients) -> Vec<f64> {
        self.parts()
            .into_iter()
            .flat_map(|t| match t.grad(g) {
                Some(d) => to_vec_f64(d),
                None => vec![0.0; t.shape().num_elements()],
            })
            .collect()
    }

    /// Sizes of the (φ, θ, β, z) groups in the flat order.
    pub fn group_sizes(&self) -> [usize; 4] {
        let count = |v: Vec<Tensor<3>>| v.iter().map(|t| t.shape().num_elements()).sum();
        [
            count(gaussian_parts(&self.explore)),
            count(gaussian_parts(&self.exploit)),
            count(mlp_parts(&self.ssl)),
            self.z.shape().num_elements(),
        ]
    }
}

/// The exploration samples of a meta-batch, with self-supervision targets.
#[derive(Clone, Debug)]
pub struct ExploreBatch {
    /// Observations, actions, log μ_old, advantages and masks per task.
    pub batch: TaskBatch,
    /// Self-supervision targets M̄ `[M, K, T]`.
    pub target: Tensor<3>,
    /// Time-major observations `[T, N, obs_dim]` (for the baseline of r^μ).
    pub obs_t: Vec<f32>,
    /// Time-major mask `[T, N]`.
    pub mask_t: Vec<f32>,
}

impl ExploreBatch {
    /// Tasks `lo..hi` of the batch.
    pub fn tasks(&self, lo: usize, hi: usize) -> ExploreBatch {
        let b = &self.batch;
        let (k, t, n) = (b.k, b.t, b.m * b.k);
        let od = self.obs_t.len() / (t * n);
        let (r0, r1) = (lo * k, hi * k);
        let mut obs_t = Vec::with_capacity(t * (r1 - r0) * od);
        let mut mask_t = Vec::with_capacity(t * (r1 - r0));
        for s in 0..t {
            obs_t.extend_from_slice(&self.obs_t[(s * n + r0) * od..(s * n + r1) * od]);
            mask_t.extend_from_slice(&self.mask_t[s * n + r0..s * n + r1]);
        }
        ExploreBatch {
            batch: b.tasks(lo, hi),
            target: self.target.clone().narrow(0, lo, hi - lo),
            obs_t,
            mask_t,
        }
    }
}

/// Processes exploration trajectories: advantages as in PG-MAML, targets M̄_t (discounted
/// returns or rewards).
pub fn explore_batch(tr: &Trajectories, cfg: &MameConfig, device: &Device) -> Result<ExploreBatch> {
    let batch = process(
        tr,
        &MetaPgConfig::for_advantages(cfg.gamma, cfg.normalize_adv),
        device,
    )?;
    let (t, n) = (tr.steps, tr.rows);
    let target_t = match cfg.target {
        Target::Return => discounted_returns(&tr.reward, &tr.mask, n, cfg.gamma as f32),
        Target::Reward => tr.reward.clone(),
    };
    let target_t = if cfg.normalize_target {
        // One group holding every row: a single mean and std for the meta-batch.
        normalize_per_task(&target_t, &tr.mask, n, n)
    } else {
        target_t
    };
    let target = Tensor::<3>::from_data(
        TensorData::new(task_major(&target_t, t, n, 1), [batch.m, batch.k, t]),
        device,
    );
    Ok(ExploreBatch {
        batch,
        target,
        obs_t: tr.obs.clone(),
        mask_t: tr.mask.clone(),
    })
}

/// The result of the inner step.
#[derive(Clone, Debug)]
pub struct Inner {
    /// Adapted codes z'_i, `[M, 1, latent_dim]`.
    pub z: Tensor<3>,
    /// ∇_z ℓ_t of every sample (masked), `[M, K·T, latent_dim]`.
    pub row_grads: Tensor<3>,
    /// Mean inner loss per task `[M]`.
    pub loss: Tensor<1>,
}

/// The inner step z'_i = z − α (1/n) Σ_t □_t ∇_z ℓ_t on each task's exploration samples.
/// With `dice` the magic boxes carry φ's gradient (exact), otherwise they are the constant 1.
pub fn inner_step(p: &MameParams, e: &ExploreBatch, cfg: &MameConfig, dice: bool) -> Inner {
    let b = &e.batch;
    let (m, r) = (b.m, b.k * b.t);
    let dz = p.z.dims()[2];
    let z_rows = p.z.clone().expand([m, r, dz]);
    let mask = b.mask.clone().reshape([m, r, 1]);
    let (row_grads, loss_rows) = match cfg.inner_loss {
        InnerLoss::SelfSupervised => {
            let od = b.obs.dims()[2];
            let ad = b.act.dims()[2];
            let x = Tensor::cat(vec![b.obs.clone(), b.act.clone(), z_rows], 2);
            let (out, cache) = forward(&p.ssl, x);
            let diff = out - e.target.clone().reshape([m, r, 1]);
            let dx = input_grad(&p.ssl, &cache, diff.clone().mul_scalar(2.0) * mask.clone());
            (dx.narrow(2, od + ad, dz), diff.powi_scalar(2))
        }
        InnerLoss::Vpg => {
            let od = b.obs.dims()[2];
            let x = Tensor::cat(vec![b.obs.clone(), z_rows], 2);
            let (mu, cache) = p.exploit.forward(x);
            let logp = log_prob_at(mu.clone(), p.exploit.log_std.clone(), b.act.clone());
            let w =
                likelihood_ratio(logp.reshape([m, b.k, b.t]), b.logp_old.clone()) * b.adv.clone();
            let w = w.reshape([m, r, 1]);
            let inv_var = p.exploit.log_std.clone().mul_scalar(-2.0).exp();
            // ℓ = −ρ A, ∂ℓ/∂μ = −ρ A (a − μ)/σ².
            let dmu = (b.act.clone() - mu) * inv_var * w.clone().neg() * mask.clone();
            let dx = input_grad(&p.exploit.mean, &cache, dmu);
            (dx.narrow(2, od, dz), w.neg())
        }
    };
    let weight = if dice {
        let logq = p
            .explore
            .log_prob(b.obs.clone(), b.act.clone())
            .reshape([m, b.k, b.t]);
        let c = (logq * b.mask.clone()).cumsum(2);
        let c_old = (b.logp_old.clone() * b.mask.clone()).cumsum(2);
        magic_box(c, c_old) / b.n.clone()
    } else {
        b.mask.clone() / b.n.clone()
    };
    let weight = weight.reshape([m, r, 1]);
    let g = (row_grads.clone() * weight).sum_dim(1);
    let loss = (loss_rows * mask).sum_dim(1).reshape([m, 1, 1]) / b.n.clone();
    Inner {
        z: p.z.clone() - g.mul_scalar(cfg.inner_lr),
        row_grads,
        loss: loss.reshape([m]),
    }
}

/// The outer surrogate per task `[M]`: (1/n') Σ_t ρ'_t A'_t for π_{θ,z'_i} on the
/// post-update samples.
pub fn outer_surrogate(exploit: &GaussianParams, z: Tensor<3>, post: &TaskBatch) -> Tensor<1> {
    let (m, r) = (post.m, post.k * post.t);
    let dz = z.dims()[2];
    let x = Tensor::cat(vec![post.obs.clone(), z.expand([m, r, dz])], 2);
    let logp = log_prob_at(exploit.mu(x), exploit.log_std.clone(), post.act.clone())
        .reshape([m, post.k, post.t]);
    surrogate(
        likelihood_ratio(logp, post.logp_old.clone()),
        post.adv.clone(),
        post.mask.clone(),
        post.n.clone(),
    )
}

/// J(φ, θ, β, z) = (1/M) Σ_i J_outer(θ, z'_i) with the inner step in the graph (exact
/// DiCE form): the objective whose gradient [`meta_gradient`] computes.
pub fn objective(
    p: &MameParams,
    pre: &ExploreBatch,
    post: &TaskBatch,
    cfg: &MameConfig,
) -> Tensor<1> {
    let inner = inner_step(p, pre, cfg, true);
    outer_surrogate(&p.exploit, inner.z, post).mean()
}

/// Exploration advantages A^μ `[T, N]` from per-step rewards r^μ `[T, N]` (eq. 4): GAE(λ)
/// with γ = 1 against a linear feature baseline fitted per task on R^μ_t = Σ_{t'≥t} r^μ_t'
/// (or no baseline). With λ = 1 and no baseline this is R^μ_t itself (the exact DiCE
/// gradient); with λ = 1 and the baseline it is unbiased up to the baseline being fitted on
/// the same samples (a (K − 1)/K shrinkage in the one-step case, `tests/meta_explore.rs`);
/// the paper's λ = 0 is also biased by V_{t+1} unless V is the true value of R^μ.
pub fn explore_advantages(
    r_t: &[f32],
    e: &ExploreBatch,
    obs_dim: usize,
    lambda: f64,
    baseline: bool,
) -> Result<Vec<f32>> {
    let (n, k) = (e.batch.m * e.batch.k, e.batch.k);
    let v = if baseline {
        let ret = discounted_returns(r_t, &e.mask_t, n, 1.0);
        fit_per_task(&e.obs_t, &ret, &e.mask_t, n, obs_dim, k)?
    } else {
        vec![0.0; r_t.len()]
    };
    Ok(gae(r_t, &v, &e.mask_t, n, 1.0, lambda as f32))
}

/// The meta-gradient and the values it came with.
#[derive(Clone, Debug)]
pub struct MetaGradient {
    /// ∇J (ascent) in [`MameParams::parts`] order.
    pub grad: Vec<f64>,
    /// Mean outer surrogate.
    pub surrogate: f64,
    /// Mean inner loss.
    pub inner_loss: f64,
}

/// ∇J with respect to every parameter (module docs): θ and g = ∇_{z'} J from the outer
/// surrogate, then z, β (and φ for `dice`) through the inner step, and φ by the configured
/// estimator. `post_returns`: the tasks' post-update returns normalized over the
/// meta-batch (E-MAML variant only).
pub fn meta_gradient(
    p: &MameParams,
    pre: &ExploreBatch,
    post: &TaskBatch,
    cfg: &MameConfig,
    post_returns: &[f32],
) -> Result<MetaGradient> {
    meta_gradient_part(p, pre, post, cfg, post_returns, post.m)
}

/// The share of [`meta_gradient`] of a chunk of tasks (`pre`, `post` and `post_returns`
/// cut to it) in a meta-batch of `total` tasks: chunks' results add up to the whole.
pub fn meta_gradient_part(
    p: &MameParams,
    pre: &ExploreBatch,
    post: &TaskBatch,
    cfg: &MameConfig,
    post_returns: &[f32],
    total: usize,
) -> Result<MetaGradient> {
    let total = total as f64;
    let dice = cfg.phi_gradient == PhiGradient::Dice;
    let inner = inner_step(p, pre, cfg, dice);
    let inner_loss = to_vec_f64(inner.loss.clone().sum())[0] / total;
    // Stage 1: the outer surrogate at a leaf copy of z'.
    let z_leaf = inner.z.clone().detach().require_grad();
    let j = outer_surrogate(&p.exploit, z_leaf.clone(), post)
        .sum()
        .div_scalar(total);
    let surrogate_value = to_vec_f64(j.clone())[0];
    let g1 = j.backward();
    let mut grad = p.gradients(&g1);
    let g_z = z_leaf.grad(&g1).expect("z' is used").detach();
    // Stage 2: gᵀ z'(z, β, φ) through the inner step, plus φ's estimator.
    let b = &pre.batch;
    let mut j2 = (inner.z.clone() * g_z.clone()).sum();
    match cfg.phi_gradient {
        PhiGradient::Dice => {}
        PhiGradient::VarianceReduced => {
            let (m, k, t) = (b.m, b.k, b.t);
            // r^μ_t = −(α/n) gᵀ ∇_z ℓ_t.
            let r = (inner.row_grads.clone().detach() * g_z)
                .sum_dim(2)
                .reshape([m, k, t])
                .mul_scalar(-cfg.inner_lr)
                / b.n.clone();
            let r_t = time_major(&to_vec(r), t, m * k, 1);
            let obs_dim = b.obs.dims()[2];
            let a_t =
                explore_advantages(&r_t, pre, obs_dim, cfg.explore_lambda, cfg.explore_baseline)?;
            let a = Tensor::<3>::from_data(
                TensorData::new(task_major(&a_t, t, m * k, 1), [m, k, t]),
                &b.obs.device(),
            );
            let logq = p
                .explore
                .log_prob(b.obs.clone(), b.act.clone())
                .reshape([m, k, t]);
            j2 = j2 + per_task_sum(logq * a * b.mask.clone()).sum();
        }
        PhiGradient::Emaml => {
            let rn = Tensor::<1>::from_data(
                TensorData::new(post_returns.to_vec(), [post_returns.len()]),
                &b.obs.device(),
            );
            let logq = p
                .explore
                .log_prob(b.obs.clone(), b.act.clone())
                .reshape([b.m, b.k, b.t]);
            j2 = j2
                + emaml_term(logq, b.mask.clone(), b.n.clone(), rn)
                    .sum()
                    .div_scalar(total);
        }
    }
    let g2 = j2.backward();
    for (x, y) in grad.iter_mut().zip(p.gradients(&g2)) {
        *x += y;
    }
    Ok(MetaGradient {
        grad,
        surrogate: surrogate_value,
        inner_loss,
    })
}

/// Repeats each task's code `[M, dz]` for its `k` rows: `[M·k, dz]`.
pub fn rows_of(z: &[f32], dz: usize, k: usize) -> Vec<f32> {
    z.chunks(dz)
        .flat_map(|c| std::iter::repeat_n(c, k).flatten().copied())
        .collect()
}

/// One task batch's exploration and exploitation samples.
pub struct Episodes {
    /// Exploration trajectories (μ_φ).
    pub explore: Trajectories,
    /// Processed exploration samples.
    pub pre: ExploreBatch,
    /// Adapted codes, `[M, dz]`.
    pub z: Vec<f32>,
    /// Exploitation trajectories (π_{θ,z'}).
    pub exploit: Trajectories,
}

/// Explores, adapts z (values only) and exploits on `tasks`.
#[allow(clippy::too_many_arguments)]
pub fn run_episodes(
    env: &Arc<dyn Env>,
    tasks: &[Task],
    p: &MameParams,
    cfg: &MameConfig,
    rollouts: usize,
    env_rng: &mut Rng,
    act_rng: &mut Rng,
    device: &Device,
) -> Result<Episodes> {
    let explore = sample_tasks_with_context(
        env, tasks, &p.explore, None, rollouts, env_rng, act_rng, device,
    );
    let pre = explore_batch(&explore, cfg, device)?;
    let dz = cfg.latent_dim;
    let z = to_vec(inner_step(p, &pre, cfg, false).z);
    let ctx = rows_of(&z, dz, rollouts);
    let exploit = sample_tasks_with_context(
        env,
        tasks,
        &p.exploit,
        Some((ctx, dz)),
        rollouts,
        env_rng,
        act_rng,
        device,
    );
    Ok(Episodes {
        explore,
        pre,
        z,
        exploit,
    })
}

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
    fn iterate(&mut self) -> Result<Metrics> {
        let t0 = Instant::now();
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
        let sample_seconds = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let rn = standardize_returns(&post.task_returns);
        let [nphi, ntheta, nbeta, _] = values.group_sizes();
        let nets_n = nphi + ntheta + nbeta;
        // The paper takes one step per batch; more steps reuse the samples (the outer
        // surrogate is a likelihood ratio to the sampling policy, the magic boxes are
        // relative to the sampling log-probabilities). Metrics are those of the first step.
        let mut first = None;
        for _ in 0..self.cfg.outer_steps {
            let mg = self.chunked_gradient(&ep.pre, &post, &rn)?;
            let neg: Vec<f32> = mg.grad.iter().map(|g| -*g as f32).collect();
            let grads = to_gradients(&self.nets, &neg[..nets_n], &self.device);
            self.nets = self.optim.step(self.cfg.lr, self.nets.clone(), grads);
            let grads = to_gradients(&self.latent, &neg[nets_n..], &self.device);
            self.latent = self
                .latent_optim
                .step(self.cfg.latent_lr, self.latent.clone(), grads);
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
        m.push("sample_seconds", sample_seconds);
        m.push("update_seconds", t1.elapsed().as_secs_f64());
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
    fn step(&mut self, _iteration: usize) -> Result<Metrics> {
        self.iterate()
    }

    fn parameters_finite(&self) -> bool {
        crate::params::flatten(&self.nets)
            .iter()
            .chain(crate::params::flatten(&self.latent).iter())
            .all(|x| x.is_finite())
    }

    fn checkpoint(&self) -> Result<Checkpoint> {
        Ok(Checkpoint::default()
            .with_file("nets.bpk", module_bytes(&self.nets)?)
            .with_file("latent.bpk", module_bytes(&self.latent)?)
            .with_file("adam.bpk", optimizer_bytes(&self.optim)?)
            .with_file("adam-latent.bpk", optimizer_bytes(&self.latent_optim)?)
            .with_rng("tasks", &self.tasks_rng)
            .with_rng("env", &self.rngs.env)
            .with_rng("action", &self.rngs.act))
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        self.nets = load_module(self.nets.clone(), ck.file("nets.bpk")?)?;
        self.latent = load_module(self.latent.clone(), ck.file("latent.bpk")?)?;
        self.optim = load_optimizer(AdamConfig::new().init(), ck.file("adam.bpk")?)?;
        self.latent_optim = load_optimizer(AdamConfig::new().init(), ck.file("adam-latent.bpk")?)?;
        self.tasks_rng = ck.rng("tasks")?;
        self.rngs = SamplerRngs {
            env: ck.rng("env")?,
            act: ck.rng("action")?,
        };
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
