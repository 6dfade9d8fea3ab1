//! Gaussian MLP policy π(a|s) = N(μ_θ(s), diag σ²) with a learned, state-independent
//! log standard deviation — the policy of MAML-RL, ProMP and E-MAML (tanh hidden layers,
//! linear mean head, initial σ = 1, σ ≥ `min_std`; mission-anchors §3.1).

use std::f64::consts::PI;

use burn::module::Param;
use burn::prelude::*;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::{tensor2, to_vec, Activation, Init, Mlp};
use crate::rng::Rng;

/// Hyperparameters of [`GaussianPolicy`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GaussianPolicyConfig {
    /// Hidden layer sizes (ProMP: [64, 64]).
    pub hidden: Vec<usize>,
    /// Hidden nonlinearity (ProMP: tanh).
    pub activation: Activation,
    /// Initial standard deviation of every action dimension (ProMP: 1.0).
    pub init_std: f64,
    /// Lower bound on the standard deviation (ProMP: 1e-6).
    pub min_std: f64,
    /// Weight initialisation (ProMP: Xavier uniform, zero bias).
    pub init: Init,
}

impl Default for GaussianPolicyConfig {
    fn default() -> Self {
        Self {
            hidden: vec![64, 64],
            activation: Activation::Tanh,
            init_std: 1.0,
            min_std: 1e-6,
            init: Init::XavierUniform,
        }
    }
}

impl GaussianPolicyConfig {
    /// Checks every field; errors name the field (prefixed by `prefix`).
    pub fn validate(&self, prefix: &str) -> crate::Result<()> {
        if self.hidden.contains(&0) {
            return Err(crate::Error::invalid(
                format!("{prefix}hidden"),
                format!("{:?}", self.hidden),
                "sizes ≥ 1",
            ));
        }
        if !(self.init_std.is_finite() && self.init_std > 0.0) {
            return Err(crate::Error::invalid(
                format!("{prefix}init_std"),
                self.init_std,
                "> 0",
            ));
        }
        if !(self.min_std.is_finite() && self.min_std > 0.0 && self.min_std <= self.init_std) {
            return Err(crate::Error::invalid(
                format!("{prefix}min_std"),
                self.min_std,
                "0 < min_std ≤ init_std",
            ));
        }
        Ok(())
    }

    /// Builds a policy for `obs_dim → act_dim`, drawing weights from `rng`.
    pub fn init(
        &self,
        obs_dim: usize,
        act_dim: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> GaussianPolicy {
        let mean = Mlp::new(
            obs_dim,
            &self.hidden,
            act_dim,
            self.activation,
            self.init,
            rng,
            device,
        );
        let log_std = Tensor::full([act_dim], self.init_std.ln(), device);
        GaussianPolicy {
            mean,
            log_std: Param::from_tensor(log_std),
            min_log_std: self.min_std.ln(),
        }
    }
}

/// A diagonal Gaussian policy with an MLP mean and a learned log-std vector.
#[derive(Module, Debug)]
pub struct GaussianPolicy {
    /// The mean network μ_θ(s).
    pub mean: Mlp,
    /// Unclamped log standard deviation, `[act_dim]`.
    pub log_std: Param<Tensor<1>>,
    /// Floor applied to `log_std` (log of `min_std`).
    #[module(skip)]
    pub min_log_std: f64,
}

/// Actions drawn by [`GaussianPolicy::sample`], row-major `[B, act_dim]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampled {
    /// Sampled actions a = μ + σ·ε.
    pub actions: Vec<f32>,
    /// log π(a|s) of each row, `[B]`.
    pub log_prob: Vec<f32>,
    /// The means μ(s), `[B, act_dim]`.
    pub mean: Vec<f32>,
}

impl GaussianPolicy {
    /// Action size.
    pub fn act_dim(&self) -> usize {
        self.log_std.lazy_shape().as_slice()[0]
    }

    /// Means μ(s), `[B, obs_dim] → [B, act_dim]`.
    pub fn forward(&self, obs: Tensor<2>) -> Tensor<2> {
        self.mean.forward(obs)
    }

    /// The clamped log standard deviation, `[act_dim]`.
    pub fn log_std(&self) -> Tensor<1> {
        self.log_std.val().clamp_min(self.min_log_std)
    }

    /// log π(a|s) for each row, `[B]`.
    pub fn log_prob(&self, obs: Tensor<2>, act: Tensor<2>) -> Tensor<1> {
        gaussian_log_prob(self.forward(obs), self.log_std(), act)
    }

    /// Entropy of the action distribution (state-independent), a one-element tensor:
    /// H = Σ_j (log σ_j + ½ ln(2πe)).
    pub fn entropy(&self) -> Tensor<1> {
        let c = 0.5 * (1.0 + (2.0 * PI).ln());
        self.log_std().add_scalar(c).sum()
    }

    /// KL(self ‖ other) at each observation, `[B]`.
    pub fn kl(&self, other: &GaussianPolicy, obs: Tensor<2>) -> Tensor<1> {
        diag_gaussian_kl(
            self.forward(obs.clone()),
            self.log_std(),
            other.forward(obs),
            other.log_std(),
        )
    }

    /// Samples one action per row with noise from `rng` (row-major ε ~ N(0, I)).
    /// Runs on whatever device `obs` lives on; rollouts pass a `valid()` policy.
    pub fn sample(&self, obs: Tensor<2>, rng: &mut Rng) -> Sampled {
        let mean = to_vec(self.forward(obs));
        let log_std = to_vec(self.log_std());
        let ad = log_std.len();
        let std: Vec<f32> = log_std.iter().map(|l| l.exp()).collect();
        let norm = 0.5 * (2.0 * PI).ln() as f32;
        let mut actions = Vec::with_capacity(mean.len());
        let mut log_prob = Vec::with_capacity(mean.len() / ad.max(1));
        for row in mean.chunks(ad) {
            let mut lp = 0.0f32;
            for j in 0..ad {
                let eps: f32 = StandardNormal.sample(rng);
                actions.push(row[j] + std[j] * eps);
                lp += -0.5 * eps * eps - log_std[j] - norm;
            }
            log_prob.push(lp);
        }
        Sampled {
            actions,
            log_prob,
            mean,
        }
    }

    /// Convenience: [`Self::sample`] from row-major observations `[B, obs_dim]`.
    pub fn sample_rows(&self, obs: Vec<f32>, rng: &mut Rng, device: &Device) -> Sampled {
        let d = self.mean.d_in();
        let b = obs.len() / d;
        self.sample(tensor2(obs, b, d, device), rng)
    }
}

/// The diagonal-Gaussian log-density of every policy representation here (this module's
/// `[B, A]` batches, [`crate::nn::functional`]'s `[M, R, A]` task batches), any rank:
/// log N(a; μ, σ²) = Σ_j [−½ ((a_j − μ_j)/σ_j)² − log σ_j − ½ ln 2π], summed over the
/// last (action) axis, which is kept with size 1. `log_std` broadcasts against `mu`
/// (`[1, A]`, `[M, 1, A]`, …).
pub fn diag_log_prob<const D: usize>(
    mu: Tensor<D>,
    log_std: Tensor<D>,
    act: Tensor<D>,
) -> Tensor<D> {
    let a = mu.dims()[D - 1];
    assert_eq!(act.dims(), mu.dims(), "act must match mu's shape");
    let z = (act - mu) / log_std.clone().exp();
    (z.powi_scalar(2).mul_scalar(-0.5) - log_std)
        .sum_dim(D - 1)
        .sub_scalar(a as f64 * 0.5 * (2.0 * PI).ln())
}

/// KL(p ‖ q) of diagonal Gaussians, any rank, summed over the last axis (kept, size 1):
/// Σ_j [log σ_q − log σ_p + (σ_p² + (μ_p − μ_q)²)/(2σ_q²) − ½]. Log-stds broadcast
/// against the means.
pub fn diag_kl<const D: usize>(
    mu_p: Tensor<D>,
    log_std_p: Tensor<D>,
    mu_q: Tensor<D>,
    log_std_q: Tensor<D>,
) -> Tensor<D> {
    assert_eq!(mu_q.dims(), mu_p.dims(), "mu_q must match mu_p");
    let var_p = log_std_p.clone().mul_scalar(2.0).exp();
    let var_q = log_std_q.clone().mul_scalar(2.0).exp();
    let num = (mu_p - mu_q).powi_scalar(2) + var_p;
    (log_std_q - log_std_p + num / var_q.mul_scalar(2.0))
        .sub_scalar(0.5)
        .sum_dim(D - 1)
}

/// [`diag_log_prob`] of a `[B, A]` batch with a state-independent `log_std: [A]` → `[B]`.
pub fn gaussian_log_prob(mu: Tensor<2>, log_std: Tensor<1>, act: Tensor<2>) -> Tensor<1> {
    let [_, a] = mu.dims();
    assert_eq!(log_std.dims(), [a], "log_std must be [A]");
    diag_log_prob(mu, log_std.unsqueeze::<2>(), act).squeeze_dim::<1>(1)
}

/// [`diag_kl`] of `[B, A]` batches with state-independent log-stds `[A]` → `[B]`.
pub fn diag_gaussian_kl(
    mu_p: Tensor<2>,
    log_std_p: Tensor<1>,
    mu_q: Tensor<2>,
    log_std_q: Tensor<1>,
) -> Tensor<1> {
    let (lp, lq) = (log_std_p.unsqueeze::<2>(), log_std_q.unsqueeze::<2>());
    diag_kl(mu_p, lp, mu_q, lq).squeeze_dim::<1>(1)
}
