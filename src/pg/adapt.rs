//! The differentiable inner adaptation step θ' = θ + α ∇ J(θ) on each task's samples,
//! and its recomputation from stored batches for the outer steps.

use super::*;

/// One inner step θ' = θ + α Σ_t w_t ∇ log π_θ(a_t|s_t) on each task's samples, with the
/// estimator's weights ([`inner_weights`]). With `second_order` the result stays in the
/// autodiff graph of θ (exact meta-gradients); otherwise the step is a constant.
pub fn adapt(
    theta: &GaussianParams,
    b: &TaskBatch,
    est: Estimator,
    alpha: f64,
    second_order: bool,
) -> GaussianParams {
    adapt_with_mean(theta, b, est, alpha, second_order).0
}

/// [`adapt`], also returning the policy means at θ on the batch, `[M, K·T, A]` (one
/// forward pass serves the inner gradient and, e.g., ProMP's KL penalty).
pub fn adapt_with_mean(
    theta: &GaussianParams,
    b: &TaskBatch,
    est: Estimator,
    alpha: f64,
    second_order: bool,
) -> (GaussianParams, Tensor<3>) {
    let (mu, cache) = theta.forward(b.obs.clone());
    let logp =
        log_prob_at(mu.clone(), theta.log_std.clone(), b.act.clone()).reshape([b.m, b.k, b.t]);
    let w = inner_weights(
        est,
        logp,
        b.logp_old.clone(),
        b.adv.clone(),
        b.dice_r.clone(),
        b.mask.clone(),
        b.n.clone(),
    );
    let g = theta.grad_weighted_log_prob(
        mu.clone(),
        &cache,
        b.act.clone(),
        w.reshape([b.m, b.k * b.t]),
    );
    let g = if second_order { g } else { g.detach() };
    (theta.add_scaled(&g, alpha), mu)
}

/// θ' recomputed from θ on stored pre-update batches (ProMP's outer steps, TRPO's line
/// search): the same chain of inner steps, now as a function of the current θ. Also
/// returns the means of π_θ on the first batch.
pub fn readapt(
    theta: &GaussianParams,
    pre: &[TaskBatch],
    cfg: &MetaPgConfig,
) -> (GaussianParams, Tensor<3>) {
    let (mut p, mu0) = adapt_with_mean(
        theta,
        &pre[0],
        cfg.estimator,
        cfg.inner_lr,
        cfg.second_order,
    );
    for b in &pre[1..] {
        p = adapt(&p, b, cfg.estimator, cfg.inner_lr, cfg.second_order);
    }
    (p, mu0)
}
