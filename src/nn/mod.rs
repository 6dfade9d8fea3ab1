//! Burn modules shared by every algorithm: MLPs, the Gaussian policy, the deterministic
//! policy and the MLP value baseline.
//!
//! Parameters are initialised from an explicit [`Rng`] (never Burn's global generator),
//! so the same seed gives the same network on every backend.

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use rand_distr::{Distribution, Normal, Uniform};
use serde::{Deserialize, Serialize};

use crate::rng::Rng;

pub mod critic;
pub mod dense;
pub mod dense_pg;
pub mod deterministic;
pub mod fastmath;
pub mod flat;
pub mod functional;
pub mod fused;
pub mod gaussian;
pub mod latent;
pub mod value;

pub use deterministic::{DeterministicPolicy, DeterministicPolicyConfig};
pub use gaussian::{GaussianPolicy, GaussianPolicyConfig};
pub use value::{MlpValue, MlpValueConfig};

/// Element-wise nonlinearity of hidden layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// Hyperbolic tangent (ProMP, ES-MAML policies).
    Tanh,
    /// Rectified linear unit (Finn's sine network).
    Relu,
    /// No nonlinearity.
    Identity,
}

impl Activation {
    /// Applies the nonlinearity. Tanh is [`fused::tanh`]: one fused pass on Flex, whose
    /// backward pass uses the stored output (the composed form 2/(1 + e^(−2x)) − 1 on
    /// other backends).
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Tanh => fused::tanh(x),
            Activation::Relu => burn::tensor::activation::relu(x),
            Activation::Identity => x,
        }
    }

    /// Applies the nonlinearity to one scalar (plain-Rust forwards, e.g. ES populations).
    /// Tanh uses the same exp form as [`Self::apply`] with the branch-free
    /// [`fastmath::exp`], so loops over slices vectorize.
    pub fn apply_scalar(self, x: f32) -> f32 {
        match self {
            Activation::Tanh => fastmath::tanh(x),
            Activation::Relu => x.max(0.0),
            Activation::Identity => x,
        }
    }
}

/// How the weights of a layer are drawn (biases start at zero in every scheme).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Init {
    /// Glorot/Xavier uniform, U(±√(6/(fan_in+fan_out))) (rllab and ProMP policies).
    XavierUniform,
    /// He normal, N(0, 2/fan_in) (ES-MAML's numpy policies).
    HeNormal,
    /// Normal with the given standard deviation, truncated at two standard deviations
    /// (Finn's sine network uses 0.01).
    TruncatedNormal {
        /// Standard deviation before truncation.
        std: f32,
    },
    /// All zeros.
    Zeros,
}

impl Init {
    fn sample(self, fan_in: usize, fan_out: usize, n: usize, rng: &mut Rng) -> Vec<f32> {
        match self {
            Init::XavierUniform => {
                let a = (6.0 / (fan_in + fan_out) as f32).sqrt();
                let u = Uniform::new_inclusive(-a, a).expect("finite bounds");
                (0..n).map(|_| u.sample(rng)).collect()
            }
            Init::HeNormal => {
                let d = Normal::new(0.0, (2.0 / fan_in as f32).sqrt()).expect("finite std");
                (0..n).map(|_| d.sample(rng)).collect()
            }
            Init::TruncatedNormal { std } => {
                let d = Normal::new(0.0f32, 1.0).expect("unit normal");
                (0..n)
                    .map(|_| loop {
                        let z = d.sample(rng);
                        if z.abs() <= 2.0 {
                            break z * std;
                        }
                    })
                    .collect()
            }
            Init::Zeros => vec![0.0; n],
        }
    }
}

/// A fully connected layer `x W + b` with `W: [d_in, d_out]` drawn by `init` from `rng`.
pub fn linear(d_in: usize, d_out: usize, init: Init, rng: &mut Rng, device: &Device) -> Linear {
    let w = init.sample(d_in, d_out, d_in * d_out, rng);
    Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [d_in, d_out]), device)),
        bias: Some(Param::from_tensor(Tensor::zeros([d_out], device))),
    }
}

/// A multilayer perceptron: hidden layers with one activation, a linear output layer.
#[derive(Module, Debug)]
pub struct Mlp {
    /// Layers, input first; the last one is the output layer.
    pub layers: Vec<Linear>,
    /// Nonlinearity after every hidden layer.
    #[module(skip)]
    pub activation: Activation,
}

impl Mlp {
    /// An MLP `d_in → hidden… → d_out`; `init` draws every layer's weights.
    pub fn new(
        d_in: usize,
        hidden: &[usize],
        d_out: usize,
        activation: Activation,
        init: Init,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let sizes: Vec<usize> = std::iter::once(d_in)
            .chain(hidden.iter().copied())
            .chain(std::iter::once(d_out))
            .collect();
        let layers = sizes
            .windows(2)
            .map(|w| linear(w[0], w[1], init, rng, device))
            .collect();
        Self { layers, activation }
    }

    /// Forward pass over a batch `[B, d_in] → [B, d_out]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(x, |h, (i, layer)| {
            let z = layer.forward(h);
            if i < last {
                self.activation.apply(z)
            } else {
                z
            }
        })
    }

    /// Input size.
    pub fn d_in(&self) -> usize {
        self.layers[0].weight.lazy_shape().as_slice()[0]
    }

    /// Output size.
    pub fn d_out(&self) -> usize {
        self.layers[self.layers.len() - 1]
            .weight
            .lazy_shape()
            .as_slice()[1]
    }
}

/// A `[rows, cols]` tensor from row-major `f32` data on `device` (in the device's float
/// type).
pub fn tensor2(data: Vec<f32>, rows: usize, cols: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(data, [rows, cols]), device)
}

/// Reads any float tensor back as a flat `Vec<f32>`.
pub fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.try_into_vec_as::<f32>()
        .expect("a float tensor should read back as f32")
}

/// Reads any float tensor back as a flat `Vec<f64>` (gradient checks).
pub fn to_vec_f64<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.try_into_vec_as::<f64>()
        .expect("a float tensor should read back as f64")
}

impl Activation {
    /// Applies the nonlinearity to every element of a slice, in place (the match is
    /// outside the loop, so each arm vectorizes).
    #[inline(always)]
    pub fn apply_slice(self, xs: &mut [f32]) {
        match self {
            // Always the branch-free tanh, even for short slices where glibc's expf was
            // faster for one episode: an episode must get the same actions alone
            // (`FlatPolicy::forward_into`) as in a batch of lanes (`forward_lanes`).
            Activation::Tanh => fastmath::tanh_in_place(xs),
            Activation::Relu => xs.iter_mut().for_each(|x| *x = x.max(0.0)),
            Activation::Identity => {}
        }
    }
}
