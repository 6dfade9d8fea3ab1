//! The maths of one meta-iteration: exploration samples with self-supervision targets,
//! the inner z-step, the outer surrogate and the meta-gradient through the inner step.

use super::*;

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
    let mut j2 = (inner.z.clone() * g_z.clone()).sum();
    if let Some(phi) = phi_term(p, pre, cfg, &inner, g_z, post_returns, total)? {
        j2 = j2 + phi;
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

/// The term of φ's estimator added to stage 2 of [`meta_gradient_part`] (`g_z` = ∇_{z'} J):
/// none for DiCE (the magic boxes in the inner loss carry it), the score function with
/// GAE advantages of r^μ_t = −(α/n) gᵀ ∇_z ℓ_t for the variance-reduced estimator (eqs.
/// 2–5), or E-MAML's post-update-return credit.
fn phi_term(
    p: &MameParams,
    pre: &ExploreBatch,
    cfg: &MameConfig,
    inner: &Inner,
    g_z: Tensor<3>,
    post_returns: &[f32],
    total: f64,
) -> Result<Option<Tensor<1>>> {
    let b = &pre.batch;
    let (m, k, t) = (b.m, b.k, b.t);
    let logq = || {
        p.explore
            .log_prob(b.obs.clone(), b.act.clone())
            .reshape([m, k, t])
    };
    Ok(Some(match cfg.phi_gradient {
        PhiGradient::Dice => return Ok(None),
        PhiGradient::VarianceReduced => {
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
            per_task_sum(logq() * a * b.mask.clone()).sum()
        }
        PhiGradient::Emaml => {
            let rn = Tensor::<1>::from_data(
                TensorData::new(post_returns.to_vec(), [post_returns.len()]),
                &b.obs.device(),
            );
            emaml_term(logq(), b.mask.clone(), b.n.clone(), rn)
                .sum()
                .div_scalar(total)
        }
    }))
}

/// Repeats each task's code `[M, dz]` for its `k` rows: `[M·k, dz]`.
pub fn rows_of(z: &[f32], dz: usize, k: usize) -> Vec<f32> {
    z.chunks(dz)
        .flat_map(|c| std::iter::repeat_n(c, k).flatten().copied())
        .collect()
}
