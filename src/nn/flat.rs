//! A plain-Rust forward pass of [`super::DeterministicPolicy`] over its flat parameter
//! vector (the layout of [`crate::params::flatten`]: per layer, W row-major `[d_in, d_out]`
//! then b). Evolution strategies evaluate thousands of perturbed policies per iteration;
//! this avoids building a Burn module per perturbation. `tests/flat_policy.rs` proves it
//! equals the module's forward.

use super::{Activation, DeterministicPolicy};
use crate::lanes::{Lanes, Simd, LANES};

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

    /// Episodes a lane batch of this policy should hold: all [`LANES`] when its packed
    /// parameters fit [`WIDE_PACK_BYTES`] (the per-step costs of a batch are then shared
    /// by more episodes), fewer for a policy run in blocks, whose forward costs the same
    /// per episode in any batch while a wider batch's parameters leave the cache.
    pub fn batch_lanes(&self) -> usize {
        if lane_blocks(self.num_params()) == 1 {
            LANES
        } else {
            BLOCKED_BATCH_LANES
        }
    }

    /// The parameter vectors of up to [`LANES`] episodes, one per lane, packed for
    /// [`Self::forward_lanes`]: per layer, the weights in the order the lane forward reads
    /// them (blocks of [`LANE_BLOCK`] outputs, input by input; then the narrow outputs,
    /// one column each), then the biases. Lanes past `thetas.len()` repeat the first
    /// vector (their results are discarded), except that blocks of [`BLOCK_LANES`] wholly
    /// past them are not packed at all. Packing costs one pass over the parameters;
    /// the forward then streams them front to back at every step.
    ///
    /// Parameters go [`LANES`] values at a time (one per episode) when they fit
    /// [`WIDE_PACK_BYTES`] that way; larger policies go in blocks of [`BLOCK_LANES`]
    /// episodes, one block's whole vector after the other, so the forward runs block by
    /// block on a smaller working set (32-32 policy: 39 KB per block of 8, not 78 KB).
    pub fn pack_lanes(&self, thetas: &[&[f32]], out: &mut Vec<Lanes>) {
        assert!(
            !thetas.is_empty() && thetas.len() <= LANES,
            "1 to {LANES} parameter vectors per batch"
        );
        let d = self.num_params();
        assert!(
            thetas.iter().all(|t| t.len() == d),
            "theta must match the architecture"
        );
        let lane: [&[f32]; LANES] = std::array::from_fn(|l| *thetas.get(l).unwrap_or(&thetas[0]));
        let order = self.packed_order();
        let width = LANES / lane_blocks(d);
        out.clear();
        out.resize(d, [0.0; LANES]);
        let mut packed = out.as_flattened_mut().iter_mut();
        // Blocks past the last episode are left unpacked (the forward skips them).
        for block in lane.chunks_exact(width).take(thetas.len().div_ceil(width)) {
            for &p in &order {
                // `block` first: it ends the zip without taking an extra slot.
                for (theta, x) in block.iter().zip(packed.by_ref()) {
                    *x = theta[p];
                }
            }
        }
    }

    /// The flat-vector index of every parameter in the order [`Self::forward_lanes`]
    /// reads them (see [`Self::pack_lanes`]).
    fn packed_order(&self) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.num_params());
        let mut off = 0;
        for w in self.sizes.windows(2) {
            let (din, dout) = (w[0], w[1]);
            let full = dout - dout % SEQ_BLOCK;
            for ob in (0..full).step_by(LANE_BLOCK) {
                for k in 0..din {
                    order.extend((ob..ob + LANE_BLOCK).map(|o| off + k * dout + o));
                }
            }
            for o in full..dout {
                order.extend((0..din).map(|k| off + k * dout + o));
            }
            order.extend(off + din * dout..off + din * dout + dout);
            off += din * dout + dout;
        }
        order
    }

    /// The forward pass of [`LANES`] episodes at once, each with its own parameters
    /// (`theta` from [`Self::pack_lanes`]): `obs[i][l]` is episode `l`'s observation and
    /// `out[o][l]` its action. Every lane gets exactly the
    /// action [`Self::forward_into`] computes for that episode alone (the same f32
    /// operations in the same order; tested), while the loops over lanes run in vector
    /// registers. Compiled for each [`Simd`] level, the CPU's best chosen at run time.
    pub fn forward_lanes(
        &self,
        theta: &[Lanes],
        obs: &[Lanes],
        out: &mut [Lanes],
        scratch: &mut LaneScratch,
    ) {
        self.forward_lanes_at(Simd::best(), LANES, theta, obs, out, scratch)
    }

    /// [`Self::forward_lanes`] compiled for `simd` (tests compare the levels), for episodes
    /// in lanes `0..live` only: a policy run in blocks of [`BLOCK_LANES`] skips the blocks
    /// wholly past them (their outputs are left as they were). Panics unless the CPU
    /// supports the level.
    pub fn forward_lanes_at(
        &self,
        simd: Simd,
        live: usize,
        theta: &[Lanes],
        obs: &[Lanes],
        out: &mut [Lanes],
        scratch: &mut LaneScratch,
    ) {
        simd.assert_supported();
        match simd {
            // SAFETY: the CPU supports the level, asserted just above.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => unsafe { self.forward_lanes_avx512(live, theta, obs, out, scratch) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { self.forward_lanes_avx2(live, theta, obs, out, scratch) },
            _ => self.forward_lanes_body(live, theta, obs, out, scratch),
        }
    }

    /// [`Self::forward_lanes_body`] compiled with AVX-512.
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,avx512f")]
    unsafe fn forward_lanes_avx512(
        &self,
        live: usize,
        theta: &[Lanes],
        obs: &[Lanes],
        out: &mut [Lanes],
        scratch: &mut LaneScratch,
    ) {
        self.forward_lanes_body(live, theta, obs, out, scratch)
    }

    /// [`Self::forward_lanes_body`] compiled with AVX2.
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn forward_lanes_avx2(
        &self,
        live: usize,
        theta: &[Lanes],
        obs: &[Lanes],
        out: &mut [Lanes],
        scratch: &mut LaneScratch,
    ) {
        self.forward_lanes_body(live, theta, obs, out, scratch)
    }

    #[inline(always)]
    fn forward_lanes_body(
        &self,
        live: usize,
        theta: &[Lanes],
        obs: &[Lanes],
        out: &mut [Lanes],
        scratch: &mut LaneScratch,
    ) {
        let d = self.num_params();
        assert_eq!(theta.len(), d, "theta must match the architecture");
        assert_eq!(obs.len(), self.sizes[0], "obs must be [obs_dim] lanes");
        assert_eq!(
            out.len(),
            self.sizes[self.sizes.len() - 1],
            "out must be [act_dim] lanes"
        );
        if lane_blocks(d) == 1 {
            return self.forward_block(theta, obs, out, &mut scratch.wide);
        }
        // Block by block: each block's observations in, its actions out.
        let (theta, _) = theta.as_flattened().as_chunks::<BLOCK_LANES>();
        let LaneScratch {
            narrow,
            block_obs,
            block_out,
            ..
        } = scratch;
        for (b, params) in theta
            .chunks_exact(d)
            .enumerate()
            .take(live.div_ceil(BLOCK_LANES))
        {
            let lanes = b * BLOCK_LANES..(b + 1) * BLOCK_LANES;
            block_obs.clear();
            block_obs.extend(obs.iter().map(|o| {
                <[f32; BLOCK_LANES]>::try_from(&o[lanes.clone()]).expect("one block of lanes")
            }));
            block_out.resize(out.len(), [0.0; BLOCK_LANES]);
            self.forward_block(params, block_obs, block_out, narrow);
            for (o, a) in out.iter_mut().zip(block_out.iter()) {
                o[lanes.clone()].copy_from_slice(a);
            }
        }
    }

    /// The lane forward of `W` episodes whose parameters are packed `W` at a time.
    #[inline(always)]
    fn forward_block<const W: usize>(
        &self,
        theta: &[[f32; W]],
        obs: &[[f32; W]],
        out: &mut [[f32; W]],
        scratch: &mut LaneBuffers<W>,
    ) {
        let last = self.sizes.len() - 2;
        // Hidden activations ping-pong between two buffers; the first layer reads `obs` and
        // the last writes `out` directly (no copies: for the linear policy they were 8% of
        // an episode).
        let widest = self.sizes.iter().copied().max().unwrap_or(0);
        for buf in [&mut scratch.h, &mut scratch.z] {
            if buf.len() < widest {
                buf.resize(widest, [0.0; W]);
            }
        }
        for (l, (din, dout, wt, bias)) in self.layers(theta).enumerate() {
            let (a, b) = if l % 2 == 0 {
                (&mut scratch.h, &mut scratch.z)
            } else {
                (&mut scratch.z, &mut scratch.h)
            };
            let input: &[[f32; W]] = if l == 0 { obs } else { &a[..din] };
            let output: &mut [[f32; W]] = if l == last { &mut *out } else { &mut b[..dout] };
            matvec_lanes(input, wt, bias, output);
            if let Some(act) = self.layer_activation(l, last) {
                act.apply_slice(output.as_flattened_mut());
            }
        }
    }

    /// Each layer's `(d_in, d_out, weights, bias)` in a parameter vector of
    /// [`Self::num_params`] entries: per layer `d_in · d_out` weights, then `d_out` biases
    /// (the order of [`crate::params::flatten`] and, with the weights permuted, of
    /// [`Self::pack_lanes`]).
    fn layers<'a, T>(
        &'a self,
        theta: &'a [T],
    ) -> impl Iterator<Item = (usize, usize, &'a [T], &'a [T])> + 'a {
        let mut off = 0;
        self.sizes.windows(2).map(move |w| {
            let (din, dout) = (w[0], w[1]);
            let (wt, rest) = theta[off..].split_at(din * dout);
            off += din * dout + dout;
            (din, dout, wt, &rest[..dout])
        })
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
        for (l, (din, dout, wt, bias)) in self.layers(theta).enumerate() {
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

/// `z[o] += Σ_k h[k] · w[k·dout + o]` (`w` row-major `[din, dout]`) for one episode.
///
/// The summation order of every output depends on the layer sizes alone (never on the
/// CPU's vector width), and [`matvec_lanes`] follows it exactly, so an episode gets
/// bit-identical actions alone or in a batch of lanes:
/// * outputs below the last multiple of [`SEQ_BLOCK`] sum sequentially over `k`, starting
///   from the bias. They go in blocks held in a fixed-size accumulator, which the compiler
///   keeps in vector registers across the whole sum over `k` (instead of loading and
///   storing `z` for every `k`);
/// * the last `dout mod SEQ_BLOCK` outputs (e.g. a 2-D action) are one dot product each,
///   split into [`PARTS`] partial sums over `k mod PARTS` so the adds do not form one
///   serial chain: `z[o] + (p₀ + p₁ + … + p₇)` (no partial sums when there are fewer
///   than `PARTS` inputs), then the inputs past the last whole group of `PARTS`, one by
///   one.
#[inline(always)]
fn matvec_rows(h: &[f32], w: &[f32], z: &mut [f32]) {
    let dout = z.len();
    let full = dout - dout % SEQ_BLOCK;
    for o in (0..full).step_by(SEQ_BLOCK) {
        let mut acc = [0.0f32; SEQ_BLOCK];
        acc.copy_from_slice(&z[o..o + SEQ_BLOCK]);
        for (k, hk) in h.iter().enumerate() {
            let row = &w[k * dout + o..k * dout + o + SEQ_BLOCK];
            for (a, wj) in acc.iter_mut().zip(row) {
                *a += hk * wj;
            }
        }
        z[o..o + SEQ_BLOCK].copy_from_slice(&acc);
    }
    let chunks = h.len() / PARTS;
    for o in full..dout {
        let mut part = [0.0f32; PARTS];
        for c in 0..chunks {
            for (j, p) in part.iter_mut().enumerate() {
                let k = c * PARTS + j;
                *p += h[k] * w[k * dout + o];
            }
        }
        let mut acc = z[o];
        if chunks > 0 {
            acc += part[1..].iter().fold(part[0], |s, p| s + p);
        }
        for k in chunks * PARTS..h.len() {
            acc += h[k] * w[k * dout + o];
        }
        z[o] = acc;
    }
}

/// `z = bias + hᵀW` as [`matvec_rows`] computes it, for `W` episodes at once: every
/// element is `[f32; W]` (lane `l` only meets lane `l`) and `w` is in the packed order
/// of [`FlatPolicy::pack_lanes`], read front to back, exactly once, in the order the sums
/// use it. Each lane's sums are [`matvec_rows`]'s, term by term.
#[inline(always)]
fn matvec_lanes<const W: usize>(
    h: &[[f32; W]],
    w: &[[f32; W]],
    bias: &[[f32; W]],
    z: &mut [[f32; W]],
) {
    let (din, dout) = (h.len(), z.len());
    let full = dout - dout % SEQ_BLOCK;
    let (seq, rest) = w.split_at(full * din);
    // Blocks and columns by index: `chunks_exact(din · …)` costs an integer division per
    // layer and step, which showed in the linear policy's profile.
    for o in (0..full).step_by(LANE_BLOCK) {
        let wb = &seq[o * din..(o + LANE_BLOCK) * din];
        let mut acc = [[0.0f32; W]; LANE_BLOCK];
        acc.copy_from_slice(&bias[o..o + LANE_BLOCK]);
        for (hk, row) in h.iter().zip(wb.chunks_exact(LANE_BLOCK)) {
            for (a, wr) in acc.iter_mut().zip(row) {
                for l in 0..W {
                    a[l] += hk[l] * wr[l];
                }
            }
        }
        z[o..o + LANE_BLOCK].copy_from_slice(&acc);
    }
    let chunks = din / PARTS;
    for o in full..dout {
        let wo = &rest[(o - full) * din..(o - full + 1) * din];
        let mut acc = bias[o];
        if chunks > 0 {
            // Only here: zeroing PARTS partial sums W lanes wide for a narrow input (the
            // linear policy's two) was 4% of an ES-MAML iteration.
            let mut part = [[0.0f32; W]; PARTS];
            for c in 0..chunks {
                for (j, p) in part.iter_mut().enumerate() {
                    let k = c * PARTS + j;
                    for l in 0..W {
                        p[l] += h[k][l] * wo[k][l];
                    }
                }
            }
            for l in 0..W {
                acc[l] += part[1..].iter().fold(part[0][l], |s, p| s + p[l]);
            }
        }
        for k in chunks * PARTS..din {
            for l in 0..W {
                acc[l] += h[k][l] * wo[k][l];
            }
        }
        z[o] = acc;
    }
}

/// Outputs summed sequentially, per block of this many, in [`matvec_rows`] (32 f32 = eight
/// SSE or four AVX registers: independent add chains that hide the add latency).
const SEQ_BLOCK: usize = 32;

/// Partial sums of a narrow output in [`matvec_rows`].
const PARTS: usize = 8;

/// Outputs per register block of [`matvec_lanes`] (8 outputs × 8 lanes: eight AVX2
/// accumulators); divides [`SEQ_BLOCK`].
const LANE_BLOCK: usize = 8;
const _: () = assert!(
    SEQ_BLOCK.is_multiple_of(LANE_BLOCK),
    "register blocks must tile SEQ_BLOCK"
);

/// Lanes per block of a policy whose [`LANES`]-wide packed parameters would exceed
/// [`WIDE_PACK_BYTES`] ([`FlatPolicy::pack_lanes`]); divides [`LANES`].
pub const BLOCK_LANES: usize = 8;
const _: () = assert!(
    LANES.is_multiple_of(BLOCK_LANES),
    "blocks must tile the lanes"
);

/// Largest packed parameter set run [`LANES`] episodes wide: half a 32 KiB L1 data cache,
/// streamed at every step. Measured (`cargo bench --bench es_episodes`, 16 lanes): the
/// linear policy (384 B packed) ran 1.5× faster 16 wide than in blocks of 8, the 32-32
/// policy (78 KB) 12% slower.
pub const WIDE_PACK_BYTES: usize = 16 * 1024;

/// Episodes per lane batch of a policy run in blocks ([`FlatPolicy::batch_lanes`]).
/// Measured (nav2d ES-MAML, 32-32 policy, 1 thread): 25.3–26.1 ms per iteration with
/// batches of 16, 28.2–29.3 ms with all 64 lanes.
const BLOCKED_BATCH_LANES: usize = 16;
const _: () = assert!(
    BLOCKED_BATCH_LANES.is_multiple_of(BLOCK_LANES) && BLOCKED_BATCH_LANES <= LANES,
    "a blocked batch is whole blocks of lanes"
);

/// Blocks the lane forward splits the [`LANES`] episodes of a policy with `num_params`
/// parameters into: 1 when their packed parameters fit [`WIDE_PACK_BYTES`], else blocks of
/// [`BLOCK_LANES`].
fn lane_blocks(num_params: usize) -> usize {
    if num_params * LANES * std::mem::size_of::<f32>() <= WIDE_PACK_BYTES {
        1
    } else {
        LANES / BLOCK_LANES
    }
}

/// Reusable buffers of [`FlatPolicy::forward_lanes`].
#[derive(Clone, Debug, Default)]
pub struct LaneScratch {
    wide: LaneBuffers<LANES>,
    narrow: LaneBuffers<BLOCK_LANES>,
    block_obs: Vec<[f32; BLOCK_LANES]>,
    block_out: Vec<[f32; BLOCK_LANES]>,
}

/// The two activation buffers of a `W`-lane forward.
#[derive(Clone, Debug, Default)]
struct LaneBuffers<const W: usize> {
    h: Vec<[f32; W]>,
    z: Vec<[f32; W]>,
}

/// Reusable buffers of [`FlatPolicy::forward_into`].
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    h: Vec<f32>,
    z: Vec<f32>,
}
