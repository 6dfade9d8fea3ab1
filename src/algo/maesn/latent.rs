//! MAESN's latent space in functional form: per-task latent distributions, the latent
//! adaptation step, the KL to the prior and the outer objective.

use super::*;

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
pub(super) fn per_step(z: Tensor<3>, t: usize) -> Tensor<3> {
    let [m, k, d] = z.dims();
    z.unsqueeze_dim::<4>(2)
        .expand([m, k, t, d])
        .reshape([m, k * t, d])
}

/// The latent step: (μ', log σ') = (μ, log σ) + (α_μ, α_σ) ⊙ ∇ J_i on the pre-update
/// batch `b` drawn with noise `eps`, J_i = (1/K) Σ_{k,t} log π_θ(a_t|s_t, z_k) Â_t
/// ([`LatentObjective::Episode`]) or (1/n) Σ_{k,t} … over the n real steps
/// ([`LatentObjective::Sample`]). Exact tensor ops: differentiable in θ, μ, log σ and the
/// step sizes.
pub fn adapt_latent(
    p: &MaesnParams,
    eps: &Tensor<3>,
    b: &TaskBatch,
    objective: LatentObjective,
) -> (Tensor<3>, Tensor<3>) {
    let (m, k, t) = (b.m, b.k, b.t);
    let d = p.mean.dims()[2];
    let od = b.obs.dims()[2];
    let z = latents(&p.mean, &p.log_std, eps);
    let x = Tensor::cat(vec![b.obs.clone(), per_step(z, t)], 2);
    let (mu, cache) = p.policy.forward(x);
    let inv_var = p.policy.log_std.clone().mul_scalar(-2.0).exp();
    let w = match objective {
        LatentObjective::Episode => (b.adv.clone() * b.mask.clone()).div_scalar(k as f64),
        LatentObjective::Sample => b.adv.clone() * b.mask.clone() / b.n.clone(),
    }
    .reshape([m, k * t, 1]);
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
    /// How far the latent step moved each task's distribution, averaged over the tasks:
    /// ‖μ' − μ‖₂ and ‖log σ' − log σ‖₂ (the prior's σ is 1, so shifts well below 1 leave
    /// the post-update latents nearly where the pre-update ones were).
    pub latent_shift: [f64; 2],
}

/// The outer objective L (module docs) on stored samples, a function of every parameter.
pub fn objective(p: &MaesnParams, s: &MaesnSamples, cfg: &MaesnConfig) -> Tensor<1> {
    let (mean2, log_std2) = adapt_latent(p, &s.eps_pre, &s.pre, cfg.latent_objective);
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
pub(super) fn noise(m: usize, k: usize, d: usize, rng: &mut Rng, device: &Device) -> Tensor<3> {
    let v: Vec<f32> = (0..m * k * d)
        .map(|_| StandardNormal.sample(&mut *rng))
        .collect();
    Tensor::from_data(TensorData::new(v, [m, k, d]), device)
}
