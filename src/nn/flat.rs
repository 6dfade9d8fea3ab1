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
    /// `theta`.
    pub fn forward(&self, theta: &[f32], obs: &[f32], b: usize) -> Vec<f32> {
        let mut out = vec![0.0; b * self.sizes[self.sizes.len() - 1]];
        self.forward_into(theta, obs, b, &mut out, &mut Scratch::default());
        out
    }

    /// [`Self::forward`] into `out` `[B, act_dim]`, reusing `scratch` between calls. Loops
    /// run over the batch (or the outputs) innermost so the compiler vectorizes them; on
    /// x86-64 CPUs with AVX2 the same code is compiled a second time for AVX2 and chosen at
    /// run time. Both versions do the same f32 operations in the same order (no fused
    /// multiply-add), so results are identical.
    pub fn forward_into(
        &self,
        theta: &[f32],
        obs: &[f32],
        b: usize,
        out: &mut [f32],
        scratch: &mut Scratch,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            // Layers narrower than a block gain nothing from AVX2 and lose the inlining
            // (the linear 2 → 2 policy ran 14% slower through the AVX2 call).
            let wide = self.sizes.iter().any(|&d| d >= BLOCK);
            if wide && std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                unsafe { self.forward_avx2(theta, obs, b, out, scratch) };
                return;
            }
        }
        self.forward_body(theta, obs, b, out, scratch)
    }

    /// [`Self::forward_body`] compiled with AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn forward_avx2(
        &self,
        theta: &[f32],
        obs: &[f32],
        b: usize,
        out: &mut [f32],
        scratch: &mut Scratch,
    ) {
        self.forward_body(theta, obs, b, out, scratch)
    }

    #[inline(always)]
    fn forward_body(
        &self,
        theta: &[f32],
        obs: &[f32],
        b: usize,
        out: &mut [f32],
        scratch: &mut Scratch,
    ) {
        assert_eq!(
            theta.len(),
            self.num_params(),
            "theta must match the architecture"
        );
        assert_eq!(obs.len(), b * self.sizes[0], "obs must be [B, obs_dim]");
        let last = self.sizes.len() - 2;
        let (h, z) = (&mut scratch.h, &mut scratch.z);
        // Activations kept feature-major [d, B] so the inner loop is over the batch.
        h.clear();
        if b == 1 {
            h.extend_from_slice(obs);
        } else {
            h.extend(
                (0..self.sizes[0]).flat_map(|j| (0..b).map(move |i| obs[i * self.sizes[0] + j])),
            );
        }
        let mut off = 0;
        for (l, w) in self.sizes.windows(2).enumerate() {
            let (din, dout) = (w[0], w[1]);
            let wt = &theta[off..off + din * dout];
            let bias = &theta[off + din * dout..off + din * dout + dout];
            off += din * dout + dout;
            z.clear();
            if b == 1 {
                // One row: z = b + Σ_k h_k W[k, ·], contiguous over the outputs.
                z.extend_from_slice(bias);
                matvec_rows(h, wt, z);
            } else {
                z.resize(dout * b, 0.0);
                for o in 0..dout {
                    let zo = &mut z[o * b..(o + 1) * b];
                    zo.fill(bias[o]);
                    for k in 0..din {
                        let wko = wt[k * dout + o];
                        for (zi, hi) in zo.iter_mut().zip(&h[k * b..(k + 1) * b]) {
                            *zi += wko * hi;
                        }
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
                a.apply_slice(z);
            }
            std::mem::swap(h, z);
        }
        let ad = self.sizes[self.sizes.len() - 1];
        assert_eq!(out.len(), b * ad, "out must be [B, act_dim]");
        for i in 0..b {
            for o in 0..ad {
                out[i * ad + o] = h[o * b + i];
            }
        }
    }
}

/// `z[o] += Σ_k h[k] · w[k·dout + o]` (`w` row-major `[din, dout]`). Outputs go in blocks
/// of [`BLOCK`] held in a fixed-size accumulator, which the compiler keeps in vector
/// registers across the whole sum over k (instead of loading and storing `z` for every k);
/// the last `dout mod BLOCK` outputs one at a time. The summation order of every output
/// is fixed by the layer sizes alone, so results do not depend on the CPU's vector width.
#[inline(always)]
fn matvec_rows(h: &[f32], w: &[f32], z: &mut [f32]) {
    let dout = z.len();
    let full = dout - dout % BLOCK;
    for o in (0..full).step_by(BLOCK) {
        let mut acc = [0.0f32; BLOCK];
        acc.copy_from_slice(&z[o..o + BLOCK]);
        for (k, hk) in h.iter().enumerate() {
            let row = &w[k * dout + o..k * dout + o + BLOCK];
            for j in 0..BLOCK {
                acc[j] += hk * row[j];
            }
        }
        z[o..o + BLOCK].copy_from_slice(&acc);
    }
    // The remaining (few) outputs, e.g. a 2-D action: one dot product each, split into
    // LANES partial sums over k (k mod LANES) so the adds do not form one serial chain.
    const LANES: usize = 8;
    for o in full..dout {
        let mut part = [0.0f32; LANES];
        let chunks = h.len() / LANES;
        for c in 0..chunks {
            for (j, p) in part.iter_mut().enumerate() {
                let k = c * LANES + j;
                *p += h[k] * w[k * dout + o];
            }
        }
        let mut acc = z[o] + part.iter().sum::<f32>();
        for k in chunks * LANES..h.len() {
            acc += h[k] * w[k * dout + o];
        }
        z[o] = acc;
    }
}

/// Outputs per accumulator block of [`matvec_rows`] (32 f32 = eight SSE or four AVX registers,
/// independent add chains that hide the add latency).
const BLOCK: usize = 32;

/// Reusable buffers of [`FlatPolicy::forward_into`].
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    h: Vec<f32>,
    z: Vec<f32>,
}
