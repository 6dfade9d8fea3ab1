//! Structure-of-arrays layout for evaluating several episodes in lock-step, one episode per
//! SIMD lane: every quantity of a batch (a state component, a policy parameter, a reward)
//! is stored as `[f32; LANES]`, one value per episode, so the loops over lanes vectorize.
//! Evolution strategies evaluate thousands of independent episodes per iteration with
//! different parameter vectors; this is how they share the vector units
//! ([`crate::rollout::episode_returns_lanes`]).

/// Most episodes stepped together: four AVX-512 registers of f32. Several registers per
/// quantity give every step independent dependency chains, and a small policy's per-step
/// costs (calls, loop set-up, the environment's and statistics' passes) are shared by
/// more episodes. Measured (`cargo bench --bench es_episodes`, 64 nav2d episodes): the
/// linear policy's episodes ran 1.5× faster with 16 lanes than with 8, and 2.2× faster
/// again with 64 (437 M env steps/s against 196 M, same session); a linear ES-MAML nav2d
/// iteration took 1.76–1.79 ms with 64 lanes against 2.25–2.27 ms with 16 (1 thread).
/// Large policies use fewer ([`crate::nn::flat::FlatPolicy::batch_lanes`]) and run their
/// forward in blocks of 8 ([`crate::nn::flat::BLOCK_LANES`]).
pub const LANES: usize = 64;

/// One value per lane (episode).
pub type Lanes = [f32; LANES];

/// The instruction sets the lane kernels ([`crate::nn::flat::FlatPolicy::forward_lanes`],
/// [`crate::rollout::episode_returns_lanes`]) are compiled for, chosen at run time. Every
/// level computes the same f32 operations in the same order (no fused multiply-add), so
/// results are bit-identical across levels (`tests/lanes.rs` compares every level the CPU
/// has). AVX-512 is not for its width (lanes are processed 8 at a time by the large
/// policies' forward) but for its 32 vector registers: the 32-32 policy's episodes ran
/// 1.28× faster than with AVX2 (`cargo bench --bench es_episodes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Simd {
    /// The target's baseline (SSE2 on x86-64).
    Baseline,
    /// AVX2.
    Avx2,
    /// AVX-512 (foundation).
    Avx512,
}

impl Simd {
    /// The highest level this CPU supports (detection is cached by the standard library).
    pub fn best() -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Simd::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Simd::Avx2;
            }
        }
        Simd::Baseline
    }

    /// Every level this CPU supports, lowest first.
    pub fn available() -> Vec<Simd> {
        let best = Simd::best();
        [Simd::Baseline, Simd::Avx2, Simd::Avx512]
            .into_iter()
            .filter(|&s| s <= best)
            .collect()
    }

    /// Panics unless the CPU supports this level (what makes the kernels' `unsafe`
    /// dispatch sound for a caller-chosen level).
    pub fn assert_supported(self) {
        assert!(
            self <= Simd::best(),
            "this CPU does not support {self:?} (best: {:?})",
            Simd::best()
        );
    }
}

/// Lane `l` of a structure-of-arrays vector (`rows[i][l]` for every `i`) copied into `out`.
pub fn gather(rows: &[Lanes], l: usize, out: &mut [f32]) {
    for (o, r) in out.iter_mut().zip(rows) {
        *o = r[l];
    }
}

/// `row` written into lane `l` of a structure-of-arrays vector.
pub fn scatter(row: &[f32], l: usize, rows: &mut [Lanes]) {
    for (r, x) in rows.iter_mut().zip(row) {
        r[l] = *x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_and_scatter_round_trip() {
        let mut rows = vec![[0.0; LANES]; 3];
        scatter(&[1.0, 2.0, 3.0], 0, &mut rows);
        scatter(&[4.0, 5.0, 6.0], 1, &mut rows);
        assert_eq!(rows[1][0], 2.0);
        assert_eq!(rows[1][1], 5.0);
        let mut out = [0.0; 3];
        gather(&rows, 1, &mut out);
        assert_eq!(out, [4.0, 5.0, 6.0]);
        scatter(&[7.0, 8.0, 9.0], 2, &mut rows);
        gather(&rows, 2, &mut out);
        assert_eq!(out, [7.0, 8.0, 9.0]);
    }
}
