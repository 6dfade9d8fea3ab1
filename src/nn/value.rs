//! MLP state-value baseline V_ψ(s), an alternative to the linear feature baseline.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Activation, Init, Mlp};
use crate::rng::Rng;

/// Hyperparameters of [`MlpValue`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MlpValueConfig {
    /// Hidden layer sizes (garage's MAML examples: [32, 32]).
    pub hidden: Vec<usize>,
    /// Hidden nonlinearity.
    pub activation: Activation,
    /// Weight initialisation.
    pub init: Init,
}

impl Default for MlpValueConfig {
    fn default() -> Self {
        Self {
            hidden: vec![32, 32],
            activation: Activation::Tanh,
            init: Init::XavierUniform,
        }
    }
}

impl MlpValueConfig {
    /// Builds a value network for `obs_dim` inputs, drawing weights from `rng`.
    pub fn init(&self, obs_dim: usize, rng: &mut Rng, device: &Device) -> MlpValue {
        MlpValue {
            net: Mlp::new(
                obs_dim,
                &self.hidden,
                1,
                self.activation,
                self.init,
                rng,
                device,
            ),
        }
    }
}

/// A state-value network with a scalar output.
#[derive(Module, Debug)]
pub struct MlpValue {
    /// The network `obs_dim → … → 1`.
    pub net: Mlp,
}

impl MlpValue {
    /// Values `[B, obs_dim] → [B]`.
    pub fn forward(&self, obs: Tensor<2>) -> Tensor<1> {
        self.net.forward(obs).squeeze_dim::<1>(1)
    }
}
