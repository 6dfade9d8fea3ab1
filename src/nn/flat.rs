//! A plain-Rust forward pass of [`super::DeterministicPolicy`] over its flat parameter
//! vector (the layout of [`crate::params::flatten`]: per layer, W row-major `[d_in, d_out]`
//! then b). Evolution strategies evaluate thousands of perturbed policies per iteration;
//! this avoids building a Burn module per perturbation. `tests/flat_policy.rs` proves it
//! equals the module's forward.

use super::{Activation, DeterministicPolicy};
use crate::lanes::{Lanes, LANES};

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
            let wide = self.sizes.iter().any(|&d| d >= SEQ_BLOCK);
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

    /// The forward pass of [`LANES`] episodes at once, each with its own parameters:
    /// `theta[p][l]` is parameter `p` of episode `l` (see [`crate::lanes::interleave`]),
    /// `obs[i][l]` its observation and `out[o][l]` its action. Every lane gets exactly the
    /// action [`Self::forward_into`] computes for that episode alone (the same f32
    /// operations in the same order; tested), while the loops over lanes run in vector
    /// registers. Compiled a second time for AVX2, chosen at run time.
    pub fn forward_lanes(
        &self,
        theta: &[Lanes],
        obs: &[Lanes],
        out: &mut [Lanes],
        scratch: &mut LaneScratch,
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2, checked just above.
                unsafe { self.forward_lanes_avx2(theta, obs, out, scratch) };
                return;
            }
        }
        self.forward_lanes_body(theta, obs, out, scratch)
    }

    /// [`Self::forward_lanes_body`] compiled with AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn forward_lanes_avx2(
        &self,
        theta: &[Lanes],
        obs: &[Lanes],
        out: &mut [Lanes],
        scratch: &mut LaneScratch,
    ) {
        self.forward_lanes_body(theta, obs, out, scratch)
    }

    #[inline(always)]
    fn forward_lanes_body(
        &self,
        theta: &[Lanes],
        obs: &[Lanes],
        out: &mut [Lanes],
        scratch: &mut LaneScratch,
    ) {
        assert_eq!(
            theta.len(),
            self.num_params(),
            "theta must match the architecture"
        );
        assert_eq!(obs.len(), self.sizes[0], "obs must be [obs_dim] lanes");
        let last = self.sizes.len() - 2;
        let (h, z) = (&mut scratch.h, &mut scratch.z);
        h.clear();
        h.extend_from_slice(obs);
        let mut off = 0;
        for (l, w) in self.sizes.windows(2).enumerate() {
            let (din, dout) = (w[0], w[1]);
            let wt = &theta[off..off + din * dout];
            let bias = &theta[off + din * dout..off + din * dout + dout];
            off += din * dout + dout;
            z.clear();
            z.extend_from_slice(bias);
            matvec_rows::<LANES, LANE_BLOCK>(h, wt, z);
            if let Some(a) = self.layer_activation(l, last) {
                a.apply_slice(z.as_flattened_mut());
            }
            std::mem::swap(h, z);
        }
        out.copy_from_slice(h);
    }

    /// The nonlinearity after layer `l` of `last + 1` (the last one is the output's).
    fn layer_activation(&self, l: usize, last: usize) -> Option<Activation> {
        if l < last {
            Some(self.activation)
        } else if self.tanh_output {
            Some(Activation::Tanh)
        } else {
            None
        }
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
                matvec_rows::<1, SEQ_BLOCK>(h.as_chunks().0, wt.as_chunks().0, z.as_chunks_mut().0);
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
            if let Some(a) = self.layer_activation(l, last) {
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

/// `z[o] += Σ_k h[k] · w[k·dout + o]` (`w` row-major `[din, dout]`), lane by lane: every
/// element is `[f32; L]`, one value per episode, and lane `l` only ever meets lane `l`
/// (`L = 1` is a plain matrix-vector product).
///
/// The summation order of every output depends on the layer sizes alone, never on `L`, the
/// register block `B` or the CPU's vector width, so an episode gets bit-identical actions
/// alone or in a batch:
/// * outputs below the last multiple of [`SEQ_BLOCK`] sum sequentially over `k`, starting
///   from the bias. They go in blocks of `B` outputs held in a fixed-size accumulator,
///   which the compiler keeps in vector registers across the whole sum over `k` instead of
///   loading and storing `z` for every `k`;
/// * the last `dout mod SEQ_BLOCK` outputs (e.g. a 2-D action) are one dot product each,
///   split into [`PARTS`] partial sums over `k mod PARTS` so the adds do not form one
///   serial chain; `z[o] + (p₀ + p₁ + … + p₇)`, then the inputs past the last whole
///   group of `PARTS`.
#[inline(always)]
fn matvec_rows<const L: usize, const B: usize>(h: &[[f32; L]], w: &[[f32; L]], z: &mut [[f32; L]]) {
    const { assert!(SEQ_BLOCK % B == 0, "register blocks must tile SEQ_BLOCK") };
    let dout = z.len();
    let full = dout - dout % SEQ_BLOCK;
    for o in (0..full).step_by(B) {
        let mut acc = [[0.0f32; L]; B];
        acc.copy_from_slice(&z[o..o + B]);
        for (k, hk) in h.iter().enumerate() {
            let row = &w[k * dout + o..k * dout + o + B];
            for (a, wr) in acc.iter_mut().zip(row) {
                for l in 0..L {
                    a[l] += hk[l] * wr[l];
                }
            }
        }
        z[o..o + B].copy_from_slice(&acc);
    }
    let chunks = h.len() / PARTS;
    for o in full..dout {
        let mut part = [[0.0f32; L]; PARTS];
        for c in 0..chunks {
            for (j, p) in part.iter_mut().enumerate() {
                let k = c * PARTS + j;
                for l in 0..L {
                    p[l] += h[k][l] * w[k * dout + o][l];
                }
            }
        }
        let mut sum = part[0];
        for p in &part[1..] {
            for l in 0..L {
                sum[l] += p[l];
            }
        }
        let mut acc = z[o];
        for l in 0..L {
            acc[l] += sum[l];
        }
        for k in chunks * PARTS..h.len() {
            for l in 0..L {
                acc[l] += h[k][l] * w[k * dout + o][l];
            }
        }
        z[o] = acc;
    }
}

/// Outputs summed sequentially per block in [`matvec_rows`] (32 f32 = eight SSE or four AVX
/// registers for one episode: independent add chains that hide the add latency).
const SEQ_BLOCK: usize = 32;

/// Partial sums of a narrow output in [`matvec_rows`].
const PARTS: usize = 8;

/// Outputs per register block when [`LANES`] episodes run together (8 outputs × 8 lanes:
/// eight AVX2 accumulators).
const LANE_BLOCK: usize = 8;

/// Reusable buffers of [`FlatPolicy::forward_lanes`].
#[derive(Clone, Debug, Default)]
pub struct LaneScratch {
    h: Vec<Lanes>,
    z: Vec<Lanes>,
}

/// Reusable buffers of [`FlatPolicy::forward_into`].
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    h: Vec<f32>,
    z: Vec<f32>,
}
