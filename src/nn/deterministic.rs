//! Deterministic policy a = f_θ(s): linear when it has no hidden layer, optionally
//! squashed by tanh — the policy of ES-MAML (linear or one hidden layer of 32, tanh
//! output; He-normal weights and zero biases as in ES-MAML's `DeterministicNumpyPolicy`).

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Activation, Init, Mlp};
use crate::rng::Rng;

/// Hyperparameters of [`DeterministicPolicy`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeterministicPolicyConfig {
    /// Hidden layer sizes; empty gives a linear policy (ES-MAML default: empty).
    pub hidden: Vec<usize>,
    /// Hidden nonlinearity.
    pub activation: Activation,
    /// Squash the output with tanh (ES-MAML: yes).
    pub tanh_output: bool,
    /// Weight initialisation.
    pub init: Init,
}

impl Default for DeterministicPolicyConfig {
    fn default() -> Self {
        Self {
            hidden: Vec::new(),
            activation: Activation::Tanh,
            tanh_output: true,
            init: Init::HeNormal,
        }
    }
}

impl DeterministicPolicyConfig {
    /// Builds a policy for `obs_dim → act_dim`, drawing weights from `rng`.
    pub fn init(
        &self,
        obs_dim: usize,
        act_dim: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> DeterministicPolicy {
        DeterministicPolicy {
            net: Mlp::new(
                obs_dim,
                &self.hidden,
                act_dim,
                self.activation,
                self.init,
                rng,
                device,
            ),
            tanh_output: self.tanh_output,
        }
    }
}

/// A deterministic policy network.
#[derive(Module, Debug)]
pub struct DeterministicPolicy {
    /// The network; a single layer when the policy is linear.
    pub net: Mlp,
    /// Whether the output is squashed by tanh.
    #[module(skip)]
    pub tanh_output: bool,
}

impl DeterministicPolicy {
    /// Actions `[B, obs_dim] → [B, act_dim]`.
    pub fn forward(&self, obs: Tensor<2>) -> Tensor<2> {
        let out = self.net.forward(obs);
        if self.tanh_output {
            out.tanh()
        } else {
            out
        }
    }

    /// True when the policy has no hidden layer.
    pub fn is_linear(&self) -> bool {
        self.net.layers.len() == 1
    }
}
