//! A functional MLP whose backward pass is written as ordinary tensor ops, so that
//! autodiff can differentiate *through* a gradient step: the route to exact second-order
//! meta-gradients in Burn, whose public autodiff is first-order (burn-primer §4 (b)).
//!
//! Parameters are batched over tasks: layer `l` has `w[l]: [B, d_in, d_out]` and
//! `b[l]: [B, 1, d_out]`, where `B` is 1 for shared meta-parameters θ (broadcast over tasks)
//! or `M` for per-task adapted parameters θ'_i. Inputs are `[M, K, d_in]` (M tasks × K
//! points). With z_l = h_l W_l + b_l and h_{l+1} = σ(z_l) (no σ after the last layer):
//!
//! ```text
//! dz_L = ∂loss/∂out
//! dW_l = h_lᵀ dz_l            (per task: [M, d_in, d_out])
//! db_l = Σ_k dz_l             ([M, 1, d_out])
//! dz_{l−1} = (dz_l W_lᵀ) ⊙ σ'(z_{l−1}),   tanh' = 1 − h², relu' = 1[z > 0]
//! ```
//!
//! Every op is a differentiable Burn op (the ReLU mask is a constant, exact almost
//! everywhere), so `backward()` of a loss built on adapted parameters returns the exact
//! meta-gradient, Hessian-vector terms included.

use burn::prelude::*;

use super::{Activation, Mlp};

/// Parameters of an MLP as plain (possibly tracked) tensors, batched over tasks.
#[derive(Clone, Debug)]
pub struct MlpParams {
    /// Weights `[B, d_in, d_out]`, input layer first.
    pub w: Vec<Tensor<3>>,
    /// Biases `[B, 1, d_out]`.
    pub b: Vec<Tensor<3>>,
    /// Hidden nonlinearity.
    pub activation: Activation,
}

/// What the forward pass keeps for the backward pass.
#[derive(Clone, Debug)]
pub struct Cache {
    /// Input of every layer, `h[0] = x`, `[M, K, d_in_l]`.
    h: Vec<Tensor<3>>,
}

impl MlpParams {
    /// The module's parameters (tracked when the module is on an autodiff device), with a
    /// task dimension of 1.
    pub fn from_mlp(mlp: &Mlp) -> Self {
        let w = mlp
            .layers
            .iter()
            .map(|l| l.weight.val().unsqueeze::<3>())
            .collect();
        let b = mlp
            .layers
            .iter()
            .map(|l| {
                l.bias
                    .as_ref()
                    .expect("metarl MLP layers should have biases")
                    .val()
                    .unsqueeze::<3>()
            })
            .collect();
        Self {
            w,
            b,
            activation: mlp.activation,
        }
    }

    /// Parameters read from a flat vector in [`crate::params::flatten`] order (per layer:
    /// W row-major `[d_in, d_out]`, then b) for layer widths `sizes`, with a task dimension
    /// of 1; leaves that require gradients when `track`.
    pub fn from_flat(
        theta: &[f32],
        sizes: &[usize],
        activation: Activation,
        device: &Device,
        track: bool,
    ) -> Self {
        let (mut w, mut b, mut off) = (Vec::new(), Vec::new(), 0);
        let leaf = |v: &[f32], shape: [usize; 3]| {
            let t = Tensor::<3>::from_data(TensorData::new(v.to_vec(), shape), device);
            if track {
                t.require_grad()
            } else {
                t
            }
        };
        for s in sizes.windows(2) {
            w.push(leaf(&theta[off..off + s[0] * s[1]], [1, s[0], s[1]]));
            off += s[0] * s[1];
            b.push(leaf(&theta[off..off + s[1]], [1, 1, s[1]]));
            off += s[1];
        }
        assert_eq!(off, theta.len(), "theta must match the layer sizes");
        Self { w, b, activation }
    }

    /// All parameters as one flat vector (task dimension 1), the inverse of [`Self::from_flat`].
    pub fn to_flat(&self) -> Vec<f32> {
        let mut out = Vec::new();
        for (w, b) in self.w.iter().zip(&self.b) {
            out.extend(super::to_vec(w.clone()));
            out.extend(super::to_vec(b.clone()));
        }
        out
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.w.len()
    }

    /// θ − α·g, layer by layer (broadcasting a shared θ against per-task g).
    pub fn sub_scaled(&self, g: &MlpParams, alpha: f64) -> MlpParams {
        let step = |p: &[Tensor<3>], q: &[Tensor<3>]| -> Vec<Tensor<3>> {
            p.iter()
                .zip(q)
                .map(|(p, q)| p.clone() - q.clone().mul_scalar(alpha))
                .collect()
        };
        MlpParams {
            w: step(&self.w, &g.w),
            b: step(&self.b, &g.b),
            activation: self.activation,
        }
    }

    /// The same parameters cut from the autodiff graph (constants for the outer loss):
    /// first-order MAML treats inner gradients this way.
    pub fn detach(&self) -> MlpParams {
        MlpParams {
            w: self.w.iter().map(|t| t.clone().detach()).collect(),
            b: self.b.iter().map(|t| t.clone().detach()).collect(),
            activation: self.activation,
        }
    }
}

/// `x [M, K, d_in] → out [M, K, d_out]`, keeping what [`backward`] needs.
pub fn forward(p: &MlpParams, x: Tensor<3>) -> (Tensor<3>, Cache) {
    let last = p.num_layers() - 1;
    let mut h = vec![x];
    for l in 0..last {
        let z = layer(p, l, h[l].clone());
        h.push(p.activation.apply(z));
    }
    let out = layer(p, last, h[last].clone());
    (out, Cache { h })
}

/// Forward pass only.
pub fn predict(p: &MlpParams, x: Tensor<3>) -> Tensor<3> {
    forward(p, x).0
}

fn layer(p: &MlpParams, l: usize, h: Tensor<3>) -> Tensor<3> {
    times(h, p.w[l].clone()) + p.b[l].clone()
}

/// `x [M, K, r] · w → [M, K, c]` for shared `w: [1, r, c]` (one flat 2-D matmul over all
/// M·K rows, no copies of w) or per-task `w: [M, r, c]` (a batched matmul).
fn times(x: Tensor<3>, w: Tensor<3>) -> Tensor<3> {
    let [m, k, r] = x.dims();
    let [bw, rw, c] = w.dims();
    assert_eq!(r, rw, "inner dimensions must agree");
    if bw == m {
        super::fused::matmul(x, w)
    } else {
        assert_eq!(
            bw, 1,
            "weights must be shared [1, ·, ·] or per task [M, ·, ·]"
        );
        super::fused::matmul(x.reshape([m * k, r]), w.reshape([r, c])).reshape([m, k, c])
    }
}

/// Gradients of a loss with respect to every parameter, per task (`[M, ·, ·]`), given
/// `dout = ∂loss/∂out` of shape `[M, K, d_out]`. Written in differentiable tensor ops.
pub fn backward(p: &MlpParams, cache: &Cache, dout: Tensor<3>) -> MlpParams {
    let n = p.num_layers();
    let mut gw = Vec::with_capacity(n);
    let mut gb = Vec::with_capacity(n);
    let mut dz = dout;
    for l in (0..n).rev() {
        let h = cache.h[l].clone();
        gw.push(super::fused::matmul(h.clone().swap_dims(1, 2), dz.clone()));
        gb.push(dz.clone().sum_dim(1));
        if l > 0 {
            let dh = times(dz, p.w[l].clone().swap_dims(1, 2));
            dz = times_activation_grad(p.activation, dh, h);
        } else {
            break;
        }
    }
    gw.reverse();
    gb.reverse();
    MlpParams {
        w: gw,
        b: gb,
        activation: p.activation,
    }
}

/// The gradient of a loss with respect to the network's *input*, `[M, K, d_in]`, given
/// `dout = ∂loss/∂out` `[M, K, d_out]`: the backward pass continued through the first
/// layer, `dx = dz_0 W_0ᵀ`. Written in differentiable tensor ops, so a step on an input
/// (a latent code concatenated to the state) can be differentiated again.
pub fn input_grad(p: &MlpParams, cache: &Cache, dout: Tensor<3>) -> Tensor<3> {
    let mut dz = dout;
    for l in (0..p.num_layers()).rev() {
        let dh = times(dz, p.w[l].clone().swap_dims(1, 2));
        if l == 0 {
            return dh;
        }
        dz = times_activation_grad(p.activation, dh, cache.h[l].clone());
    }
    unreachable!("an MLP has at least one layer")
}

/// dh ⊙ σ'(z), with σ'(z) expressed through the layer output h = σ(z).
fn times_activation_grad(a: Activation, dh: Tensor<3>, h: Tensor<3>) -> Tensor<3> {
    match a {
        // dh ⊙ (1 − h²), one fused (and differentiable) op on Flex.
        Activation::Tanh => super::fused::tanh_grad_mul(dh, h),
        // h = max(z, 0) > 0 exactly where z > 0; the mask is a constant.
        Activation::Relu => dh * h.greater_elem(0.0).float().detach(),
        Activation::Identity => dh,
    }
}

/// Mean squared error per task, `[M]`: L_i = (1/K) Σ_k (y_ik − t_ik)² (summed over output
/// dimensions), and its gradient with respect to `y`, `2 (y − t) / K`.
pub fn mse_and_grad(y: Tensor<3>, t: Tensor<3>) -> (Tensor<1>, Tensor<3>) {
    let [_, k, _] = y.dims();
    let diff = y - t;
    let loss = diff
        .clone()
        .powi_scalar(2)
        .sum_dim(2)
        .mean_dim(1)
        .flatten::<1>(0, 2);
    (loss, diff.mul_scalar(2.0 / k as f64))
}

/// A Gaussian policy in functional form: an MLP mean and a log-std, batched over tasks.
/// `log_std: [B, 1, A]`, with `B` = 1 (shared θ) or M (per-task θ'_i).
#[derive(Clone, Debug)]
pub struct GaussianParams {
    /// The mean network.
    pub mean: MlpParams,
    /// Log standard deviation `[B, 1, A]` (unclamped).
    pub log_std: Tensor<3>,
}

impl GaussianParams {
    /// The parameters of a [`super::GaussianPolicy`] (tracked on an autodiff device),
    /// with a task dimension of 1. The log-std floor is not applied here: the functional
    /// form is for gradients, where the floor is inactive at ProMP's 1e-6.
    pub fn from_policy(p: &super::GaussianPolicy) -> Self {
        Self {
            mean: MlpParams::from_mlp(&p.mean),
            log_std: p.log_std.val().unsqueeze::<3>(),
        }
    }

    /// θ + α·g for ascent (`alpha` may be negative for descent).
    pub fn add_scaled(&self, g: &GaussianParams, alpha: f64) -> GaussianParams {
        GaussianParams {
            mean: self.mean.sub_scaled(&g.mean, -alpha),
            log_std: self.log_std.clone() + g.log_std.clone().mul_scalar(alpha),
        }
    }

    /// Tasks `lo..hi` of per-task parameters (shared `[1, ·, ·]` tensors are kept whole).
    pub fn tasks(&self, lo: usize, hi: usize) -> GaussianParams {
        let cut = |t: &Tensor<3>| {
            if t.dims()[0] == 1 {
                t.clone()
            } else {
                t.clone().narrow(0, lo, hi - lo)
            }
        };
        GaussianParams {
            mean: MlpParams {
                w: self.mean.w.iter().map(cut).collect(),
                b: self.mean.b.iter().map(cut).collect(),
                activation: self.mean.activation,
            },
            log_std: cut(&self.log_std),
        }
    }

    /// Cut from the autodiff graph.
    pub fn detach(&self) -> GaussianParams {
        GaussianParams {
            mean: self.mean.detach(),
            log_std: self.log_std.clone().detach(),
        }
    }

    /// Means `[M, R, A]` at observations `[M, R, obs_dim]`.
    pub fn mu(&self, obs: Tensor<3>) -> Tensor<3> {
        predict(&self.mean, obs)
    }

    /// log π(a|s) `[M, R]` at observations `[M, R, obs_dim]` and actions `[M, R, A]`:
    /// Σ_j [−½ ((a_j − μ_j)/σ_j)² − log σ_j − ½ ln 2π].
    pub fn log_prob(&self, obs: Tensor<3>, act: Tensor<3>) -> Tensor<2> {
        log_prob_at(self.mu(obs), self.log_std.clone(), act)
    }

    /// Means `[M, R, A]` and the cache for [`Self::grad_weighted_log_prob`].
    pub fn forward(&self, obs: Tensor<3>) -> (Tensor<3>, Cache) {
        forward(&self.mean, obs)
    }

    /// ∇_θ Σ_r w_r log π(a_r|s_r) per task, `w: [M, R]` (possibly tracked: autodiff then
    /// differentiates through the weights too), from a forward pass `(mu, cache)` at θ.
    /// With μ = f(s), the mean part is the MLP backward of `∂/∂μ = w (a − μ)/σ²`; the
    /// log-std part is `Σ_r w_r ((a − μ)²/σ² − 1)`.
    pub fn grad_weighted_log_prob(
        &self,
        mu: Tensor<3>,
        cache: &Cache,
        act: Tensor<3>,
        w: Tensor<2>,
    ) -> GaussianParams {
        let inv_var = self.log_std.clone().mul_scalar(-2.0).exp();
        let w3 = w.unsqueeze_dim::<3>(2);
        let diff = act - mu;
        let dmu = diff.clone() * inv_var.clone() * w3.clone();
        let dlog_std = ((diff.powi_scalar(2) * inv_var).sub_scalar(1.0) * w3).sum_dim(1);
        GaussianParams {
            mean: backward(&self.mean, cache, dmu),
            log_std: dlog_std,
        }
    }

    /// KL(self ‖ other) `[M, R]` at observations `[M, R, obs_dim]`.
    pub fn kl(&self, other: &GaussianParams, obs: Tensor<3>) -> Tensor<2> {
        let (mp, mq) = (self.mu(obs.clone()), other.mu(obs));
        kl_at(mp, self.log_std.clone(), mq, other.log_std.clone())
    }
}

/// Diagonal Gaussian log-density `[M, R]` from means `[M, R, A]`, log-std `[B, 1, A]`
/// and actions `[M, R, A]`.
pub fn log_prob_at(mu: Tensor<3>, log_std: Tensor<3>, act: Tensor<3>) -> Tensor<2> {
    crate::nn::gaussian::diag_log_prob(mu, log_std, act).squeeze_dim::<2>(2)
}

/// KL(p ‖ q) `[M, R]` of diagonal Gaussians from their means `[M, R, A]` and log-stds
/// `[B, 1, A]`: Σ_j [log σ_q − log σ_p + (σ_p² + (μ_p − μ_q)²)/(2σ_q²) − ½].
pub fn kl_at(mp: Tensor<3>, lp: Tensor<3>, mq: Tensor<3>, lq: Tensor<3>) -> Tensor<2> {
    crate::nn::gaussian::diag_kl(mp, lp, mq, lq).squeeze_dim::<2>(2)
}
