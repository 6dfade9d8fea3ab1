//! Modules of the meta-exploration methods: MAME's exploration policy μ_φ(s),
//! latent-conditioned exploitation policy π_{θ,z}(s ⊕ z) and self-supervision network
//! M_{β,z}(s ⊕ a ⊕ z) with their shared latent code z; MAESN's latent-conditioned policy
//! with per-task latent Gaussians and learned latent step sizes. The policies are the same
//! [`GaussianPolicy`] every PG method uses, with the latent concatenated to the state.

use burn::module::Param;
use burn::prelude::*;

use super::{Activation, GaussianPolicy, GaussianPolicyConfig, Init, Mlp};
use crate::rng::Rng;

/// The networks φ, θ and β.
#[derive(Module, Debug)]
pub struct MameNets {
    /// Exploration policy μ_φ(s).
    pub explore: GaussianPolicy,
    /// Exploitation policy π_{θ,z}(s ⊕ z).
    pub exploit: GaussianPolicy,
    /// Self-supervision network M_{β,z}(s ⊕ a ⊕ z).
    pub ssl: Mlp,
}

/// The shared latent code z (its own module, for its own step size).
#[derive(Module, Debug)]
pub struct Latent {
    /// z, `[latent_dim]`.
    pub z: Param<Tensor<1>>,
}

impl MameNets {
    /// Fresh networks for an environment with `obs_dim` and `act_dim` and a latent of
    /// `latent_dim`, drawn from `rng` in the order μ_φ, π_θ, M_β.
    #[allow(clippy::too_many_arguments)]
    pub fn init(
        explore: &GaussianPolicyConfig,
        exploit: &GaussianPolicyConfig,
        ssl_hidden: &[usize],
        ssl_activation: Activation,
        (obs_dim, act_dim, latent_dim): (usize, usize, usize),
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let dz = latent_dim;
        Self {
            explore: explore.init(obs_dim, act_dim, rng, device),
            exploit: exploit.init(obs_dim + dz, act_dim, rng, device),
            ssl: Mlp::new(
                obs_dim + act_dim + dz,
                ssl_hidden,
                1,
                ssl_activation,
                Init::XavierUniform,
                rng,
                device,
            ),
        }
    }
}

impl Latent {
    /// z = 0.
    pub fn zeros(dim: usize, device: &Device) -> Self {
        Self {
            z: Param::from_tensor(Tensor::zeros([dim], device)),
        }
    }
}

/// MAESN's learned parameters.
#[derive(Module, Debug)]
pub struct MaesnModel {
    /// π_θ(a | s ⊕ z).
    pub policy: GaussianPolicy,
    /// Latent means of the training tasks `[P, latent_dim]`.
    pub latent_mean: Param<Tensor<2>>,
    /// Latent log-stds of the training tasks `[P, latent_dim]`.
    pub latent_log_std: Param<Tensor<2>>,
    /// Step sizes of the latent means `[latent_dim]`.
    pub step_mean: Param<Tensor<1>>,
    /// Step sizes of the latent log-stds `[latent_dim]`.
    pub step_log_std: Param<Tensor<1>>,
}

impl MaesnModel {
    /// A fresh model for `tasks` training tasks: latents at the prior (μ = 0, σ = 1),
    /// step sizes at `step_size`.
    pub fn init(
        policy: &GaussianPolicyConfig,
        (obs_dim, act_dim): (usize, usize),
        (tasks, latent_dim): (usize, usize),
        step_size: f64,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let (p, d) = (tasks, latent_dim);
        Self {
            policy: policy.init(obs_dim + d, act_dim, rng, device),
            latent_mean: Param::from_tensor(Tensor::zeros([p, d], device)),
            latent_log_std: Param::from_tensor(Tensor::zeros([p, d], device)),
            step_mean: Param::from_tensor(Tensor::full([d], step_size, device)),
            step_log_std: Param::from_tensor(Tensor::full([d], step_size, device)),
        }
    }
}
