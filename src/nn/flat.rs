//! A plain-Rust forward pass of [`super::DeterministicPolicy`] over its flat parameter
//! vector (the layout of [`crate::params::flatten`]: per layer, W row-major `[d_in, d_out]`
//! then b). Evolution strategies evaluate thousands of perturbed policies per iteration;
//! this avoids building a Burn module per perturbation. `tests/flat_policy.rs` proves it
//! equals the module's forward.

use super::{Activation, DeterministicPolicy};

/// The architecture of a deterministic MLP policy, without its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct FlatPolicy {
    /// Layer widths, input first: `[obs_dim, hidden…, act_dim]`.
    pub sizes: Vec<usize>,
    /// Hidden nonlinearity.
    pub activation: Activation,
    /// Squash the output with tanh.
    pub tanh_output: bool,
}

impl FlatPolicy {
    /// The architecture of a Burn deterministic policy.
    pub fn of(p: &DeterministicPolicy) -> Self {
        let mut sizes = vec![p.net.d_in()];
        sizes.extend(
            p.net
                .layers
                .iter()
                .map(|l| l.weight.lazy_shape().as_slice()[1]),
        );
        Self {
            sizes,
            activation: p.net.activation,
            tanh_output: p.tanh_output,
        }
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.sizes.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
    }

    /// Actions `[B, act_dim]` for observations `[B, obs_dim]` (row-major) under parameters
    /// `theta`. Loops run over the batch innermost so the compiler vectorizes them.
    pub fn forward(&self, theta: &[f32], obs: &[f32], b: usize) -> Vec<f32> {
        assert_eq!(
            theta.len(),
            self.num_params(),
            "theta must match the architecture"
        );
        assert_eq!(obs.len(), b * self.sizes[0], "obs must be [B, obs_dim]");
        let last = self.sizes.len() - 2;
        // Activations kept feature-major [d, B] so the inner loop is over the batch.
        let mut h: Vec<f32> = (0..self.sizes[0])
            .flat_map(|j| (0..b).map(move |i| obs[i * self.sizes[0] + j]))
            .collect();
        let mut off = 0;
        for (l, w) in self.sizes.windows(2).enumerate() {
            let (din, dout) = (w[0], w[1]);
            let (wt, bias) = (
                &theta[off..off + din * dout],
                &theta[off + din * dout..off + din * dout + dout],
            );
            off += din * dout + dout;
            let mut z = vec![0.0f32; dout * b];
            for o in 0..dout {
                let zo = &mut z[o * b..(o + 1) * b];
                zo.fill(bias[o]);
                for k in 0..din {
                    let wko = wt[k * dout + o];
                    let hk = &h[k * b..(k + 1) * b];
                    for (zi, hi) in zo.iter_mut().zip(hk) {
                        *zi += wko * hi;
                    }
                }
            }
            let act = if l < last {
                Some(self.activation)
            } else if self.tanh_output {
                Some(Activation::Tanh)
            } else {
                None
            };
            if let Some(a) = act {
                z.iter_mut().for_each(|x| *x = a.apply_scalar(*x));
            }
            h = z;
        }
        let ad = *self.sizes.last().expect("at least one layer");
        (0..b)
            .flat_map(|i| (0..ad).map(move |o| (i, o)))
            .map(|(i, o)| h[o * b + i])
            .collect()
    }
}
