//! Surrogate objectives of policy-gradient meta-learning, as pure tensor functions.
//!
//! Shapes: per-task sample tensors are `[M, K, T]` (M tasks, K trajectories, T steps),
//! with `mask_t` 1 on real steps. Every surrogate is written against the *sampling*
//! log-probabilities `logp_old_t` instead of a stop-gradient of the current ones: at the
//! sampling parameters the values and all derivatives are the same (the magic box and
//! the likelihood ratio both equal 1 there), and the surrogate is an honest function of θ
//! that a finite difference can check.
//!
//! The inner step of every estimator is θ' = θ + α ∇_θ J_inner(θ) with
//! ∇J_inner = Σ_t w_t ∇ log π_θ(a_t|s_t), so an estimator is a choice of weights w_t
//! ([`inner_weights`]):
//!
//! ```text
//! maml  J = (1/n) Σ_t log π(a_t|s_t) A_t                     w_t = A_t / n          (no θ dependence)
//! lvc   J = (1/n) Σ_t π(a_t|s_t)/π_old(a_t|s_t) A_t          w_t = ρ_t A_t / n       (ProMP eq. 9 / J^LR eq. 12)
//! dice  J = (1/n) Σ_t □(C_t) r̃_t,  C_t = Σ_{t'≤t} log π    w_t = Σ_{t'≥t} □(C_t') r̃_t' / n
//! ```
//!
//! where □(C) = exp(C − C_old) is DiCE's magic box and r̃_t are per-step rewards adjusted
//! by the baseline (see [`crate::pg::process`]). Autodiff through the tracked weights gives
//! each estimator's Hessian: DiCE's is unbiased, LVC drops the cross-step terms
//! (H₁₂ + H₁₂ᵀ), MAML's keeps only Σ A ∇² log π.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// Inner-objective estimator of PG-MAML.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Estimator {
    /// Log-likelihood × advantage: no credit to the pre-update sampling distribution
    /// (the original MAML-RL implementation).
    Maml,
    /// DiCE magic box over cumulative log-probabilities (formulation I, unbiased).
    Dice,
    /// Low-variance curvature: likelihood ratio to the sampling policy per step.
    Lvc,
}

/// DiCE's magic box relative to the sampling point: □(x) = exp(x − x_old); equals 1 at the
/// sampling parameters, and ∇□(x) = □(x) ∇x.
pub fn magic_box<const D: usize>(x: Tensor<D>, x_old: Tensor<D>) -> Tensor<D> {
    (x - x_old).exp()
}

/// Σ_{t' ≥ t} x_{t'} along the last dimension.
pub fn reverse_cumsum(x: Tensor<3>) -> Tensor<3> {
    let total = x.clone().sum_dim(2);
    total - x.clone().cumsum(2) + x
}

/// The weights w_t of the inner gradient Σ_t w_t ∇ log π_θ(a_t|s_t) for `est` (module
/// docs). `logp_t` is log π_θ at the current (tracked) parameters, `logp_old_t` at the
/// sampling parameters; `adv_t` are (normalized) advantages, `dice_r_t` the adjusted
/// rewards; `n` `[M, 1, 1]` the number of real samples per task. All `[M, K, T]`.
pub fn inner_weights(
    est: Estimator,
    logp_t: Tensor<3>,
    logp_old_t: Tensor<3>,
    adv_t: Tensor<3>,
    dice_r_t: Tensor<3>,
    mask_t: Tensor<3>,
    n: Tensor<3>,
) -> Tensor<3> {
    assert_eq!(logp_t.dims(), logp_old_t.dims(), "logp shapes must agree");
    assert_eq!(logp_t.dims(), adv_t.dims(), "adv must be [M, K, T]");
    let w = match est {
        Estimator::Maml => adv_t * mask_t,
        Estimator::Lvc => magic_box(logp_t, logp_old_t) * adv_t * mask_t,
        Estimator::Dice => {
            let c = (logp_t * mask_t.clone()).cumsum(2);
            let c_old = (logp_old_t * mask_t.clone()).cumsum(2);
            reverse_cumsum(magic_box(c, c_old) * dice_r_t * mask_t.clone()) * mask_t
        }
    };
    w / n
}

/// The inner objective's value (for logging), `[M]`: (1/n) Σ_t log π A_t for `maml`,
/// (1/n) Σ_t ρ_t A_t for `lvc`, (1/n) Σ_t □(C_t) r̃_t for `dice`.
pub fn inner_objective(
    est: Estimator,
    logp_t: Tensor<3>,
    logp_old_t: Tensor<3>,
    adv_t: Tensor<3>,
    dice_r_t: Tensor<3>,
    mask_t: Tensor<3>,
    n: Tensor<3>,
) -> Tensor<1> {
    let j = match est {
        Estimator::Maml => logp_t * adv_t * mask_t,
        Estimator::Lvc => magic_box(logp_t, logp_old_t) * adv_t * mask_t,
        Estimator::Dice => {
            let c = (logp_t * mask_t.clone()).cumsum(2);
            let c_old = (logp_old_t * mask_t.clone()).cumsum(2);
            magic_box(c, c_old) * dice_r_t * mask_t
        }
    };
    per_task_sum(j / n)
}

/// Σ over K and T of `[M, K, T]` → `[M]`.
pub fn per_task_sum(x: Tensor<3>) -> Tensor<1> {
    let m = x.dims()[0];
    x.sum_dim(2).sum_dim(1).reshape([m])
}

/// Likelihood ratio ρ_t = π_θ(a_t|s_t) / π_old(a_t|s_t) from log-probabilities.
pub fn likelihood_ratio(logp_t: Tensor<3>, logp_old_t: Tensor<3>) -> Tensor<3> {
    (logp_t - logp_old_t).exp()
}

/// Policy-gradient surrogate per task `[M]`: (1/n) Σ_t ρ_t A_t (its gradient at the
/// sampling point is the vanilla policy gradient).
pub fn surrogate(
    ratio_t: Tensor<3>,
    adv_t: Tensor<3>,
    mask_t: Tensor<3>,
    n: Tensor<3>,
) -> Tensor<1> {
    per_task_sum(ratio_t * adv_t * mask_t / n)
}

/// PPO's clipped surrogate per task `[M]` (ProMP J^CLIP):
/// (1/n) Σ_t min(ρ_t A_t, clip(ρ_t, 1 − ε, 1 + ε) A_t).
pub fn clipped_surrogate(
    ratio_t: Tensor<3>,
    adv_t: Tensor<3>,
    eps: f64,
    mask_t: Tensor<3>,
    n: Tensor<3>,
) -> Tensor<1> {
    let unclipped = ratio_t.clone() * adv_t.clone();
    let clipped = ratio_t.clamp(1.0 - eps, 1.0 + eps) * adv_t;
    per_task_sum(unclipped.min_pair(clipped) * mask_t / n)
}

/// E-MAML's pre-update term (ProMP §4, eq. 3) per task `[M]`: R̄'_m · (1/n) Σ_t log π_θ(a_t|s_t)
/// over the pre-update samples, with `post_return` `[M]` the post-update returns
/// normalized over the meta-batch. Its gradient is R̄' ∇ log π(τ).
pub fn emaml_term(
    logp_t: Tensor<3>,
    mask_t: Tensor<3>,
    n: Tensor<3>,
    post_return: Tensor<1>,
) -> Tensor<1> {
    per_task_sum(logp_t * mask_t / n) * post_return
}

/// Post-update returns standardized over the meta-batch, `(R − mean) / (std + 1e-8)`
/// (population std): the R̄' of [`emaml_term`], as in ProMP's `meta_sample_processor`.
pub fn standardize_returns(returns: &[f64]) -> Vec<f32> {
    let n = returns.len().max(1) as f64;
    let mean = returns.iter().sum::<f64>() / n;
    let std = (returns.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt() + 1e-8;
    returns.iter().map(|x| ((x - mean) / std) as f32).collect()
}

/// Mean over samples of a per-sample quantity `[M, K, T]` → `[M]` (e.g. the KL penalty).
pub fn masked_mean(x: Tensor<3>, mask_t: Tensor<3>, n: Tensor<3>) -> Tensor<1> {
    per_task_sum(x * mask_t / n)
}
