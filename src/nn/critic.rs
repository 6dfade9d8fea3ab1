//! The state-action value network Q_φ(s, a) of DDPG (Lillicrap et al. 2015, §7): the
//! observation goes through the first hidden layer alone and the action joins at the
//! second, `Q = W₃ relu(W₂ [relu(W₁ s + b₁), a] + b₂) + b₃`. The ES + DDPG meta-learner
//! (Shen et al., "Implementation and Details") uses it with two hidden layers of 100 ReLU
//! units and Xavier weights.

use burn::nn::Linear;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{linear, Activation, Init};
use crate::rng::Rng;

/// Hyperparameters of [`Critic`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CriticConfig {
    /// Width of the observation-only first hidden layer.
    pub hidden1: usize,
    /// Width of the second hidden layer, which also reads the action.
    pub hidden2: usize,
    /// Hidden nonlinearity.
    pub activation: Activation,
    /// Weight initialisation (biases start at zero).
    pub init: Init,
}

impl Default for CriticConfig {
    fn default() -> Self {
        Self {
            hidden1: 100,
            hidden2: 100,
            activation: Activation::Relu,
            init: Init::XavierUniform,
        }
    }
}

impl CriticConfig {
    /// A critic for `obs_dim` observations and `act_dim` actions, weights from `rng`.
    pub fn init(&self, obs_dim: usize, act_dim: usize, rng: &mut Rng, device: &Device) -> Critic {
        Critic {
            obs_layer: linear(obs_dim, self.hidden1, self.init, rng, device),
            joint_layer: linear(self.hidden1 + act_dim, self.hidden2, self.init, rng, device),
            out: linear(self.hidden2, 1, self.init, rng, device),
            activation: self.activation,
        }
    }
}

/// Q_φ(s, a) with the action entering at the second layer.
#[derive(Module, Debug)]
pub struct Critic {
    /// `obs_dim → hidden1`.
    pub obs_layer: Linear,
    /// `hidden1 + act_dim → hidden2` (the action's weights are the last `act_dim` rows).
    pub joint_layer: Linear,
    /// `hidden2 → 1`.
    pub out: Linear,
    /// Hidden nonlinearity.
    #[module(skip)]
    pub activation: Activation,
}

impl Critic {
    /// Values `[B]` of observations `[B, obs_dim]` and actions `[B, act_dim]`.
    pub fn forward(&self, obs: Tensor<2>, act: Tensor<2>) -> Tensor<1> {
        let h1 = self.activation.apply(self.obs_layer.forward(obs));
        let h2 = self
            .activation
            .apply(self.joint_layer.forward(Tensor::cat(vec![h1, act], 1)));
        self.out.forward(h2).squeeze_dim::<1>(1)
    }
}
