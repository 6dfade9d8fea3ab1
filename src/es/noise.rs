//! Gaussian perturbations and evaluation generators, one random stream per index
//! (the per-perturbation seeds and shared noise table of Salimans et al. 2017).
//!
//! Perturbation `i` of seed `s` is `g_i ~ N(0, I_d)`: a window of `d` consecutive entries
//! of the [`noise_table`] (2²⁴ i.i.d. standard normals, the same in every run) at an
//! offset drawn from `rng::substream(s, PERTURBATION_STREAM, i)`. The `i`-th evaluation of
//! an estimator receives `rng::substream(s, EVALUATION_STREAM, i)`. Nothing depends on how
//! many other indices exist, on which thread runs them, or in which order.
//!
//! Reading a window instead of drawing `d` normals made ES-MAML's 32-32 MLP iterations
//! faster: drawing the 3.6 M normals of the K = 20 adaptation queries of 150 perturbations
//! took 19% of an iteration (`perf`). Two windows share entries only if their offsets are
//! closer than `d` (probability below 2d/2²⁴ ≈ 1.5e-4 per pair for d = 1 218), and then
//! at different coordinates, as in Salimans et al.'s design.

use std::sync::OnceLock;

use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::objective::{Objective, BATCH};
use crate::rng::{self, LazyRng, Rng};

/// Stream name of the perturbation directions `g_i`.
pub const PERTURBATION_STREAM: &str = "es-perturbation";
/// Stream name of the generators handed to the evaluations `f(θ + σ s g_i)`.
pub const EVALUATION_STREAM: &str = "es-evaluation";
/// Stream name of the generator handed to the centre evaluation `f(θ)` (forward-FD).
pub const CENTER_STREAM: &str = "es-center";

/// Stream name of the shared noise table's entries.
const NOISE_TABLE_STREAM: &str = "es-noise-table";
/// Root seed of the shared noise table: fixed, so every run reads the same table.
const NOISE_TABLE_SEED: u64 = 0x05ee_d0f7_ab1e;
/// Entries of the shared noise table (2²⁴ f32, 64 MiB).
pub const NOISE_TABLE_LEN: usize = 1 << 24;
/// Entries drawn from one generator when the table is built (in parallel, in any order).
const NOISE_TABLE_CHUNK: usize = 1 << 16;

/// The shared noise table: [`NOISE_TABLE_LEN`] i.i.d. `N(0, 1)` draws, chunk `c` of
/// [`NOISE_TABLE_CHUNK`] entries from `rng::substream(NOISE_TABLE_SEED, "es-noise-table",
/// c)`. Built once per process on first use (about 40 ms on 2 cores).
pub fn noise_table() -> &'static [f32] {
    static TABLE: OnceLock<Vec<f32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // Plain scoped threads, not rayon: this runs inside rayon tasks, and a rayon worker
        // waiting here could pick up another task that waits on the same `OnceLock`.
        let mut t = vec![0.0f32; NOISE_TABLE_LEN];
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per_worker = NOISE_TABLE_LEN
            .div_ceil(NOISE_TABLE_CHUNK)
            .div_ceil(workers);
        std::thread::scope(|scope| {
            for (w, part) in t.chunks_mut(per_worker * NOISE_TABLE_CHUNK).enumerate() {
                scope.spawn(move || {
                    for (j, chunk) in part.chunks_mut(NOISE_TABLE_CHUNK).enumerate() {
                        let c = (w * per_worker + j) as u64;
                        let mut rng = rng::substream(NOISE_TABLE_SEED, NOISE_TABLE_STREAM, c);
                        chunk
                            .iter_mut()
                            .for_each(|x| *x = StandardNormal.sample(&mut rng));
                    }
                });
            }
        });
        t
    })
}

/// One perturbation `g ~ N(0, I_d)`: the [`noise_table`] window at an offset drawn from
/// `rng::substream(seed, PERTURBATION_STREAM, index)`, so the same `(d, seed, index)`
/// always gives the same vector. Dimensions above 1/16 of the table are drawn from that
/// stream directly instead.
pub fn gaussian_perturbation(d: usize, seed: u64, index: u64) -> Vec<f32> {
    match table_offset(d, seed, index) {
        Ok(offset) => noise_table()[offset..offset + d].to_vec(),
        Err(mut rng) => (0..d).map(|_| StandardNormal.sample(&mut *rng)).collect(),
    }
}

/// Where perturbation `index` starts in the [`noise_table`], or (for dimensions above 1/16
/// of the table) its stream, to draw from directly.
fn table_offset(d: usize, seed: u64, index: u64) -> Result<usize, Box<Rng>> {
    let mut rng = rng::substream(seed, PERTURBATION_STREAM, index);
    if in_table(d) {
        Ok(draw_offset(d, &mut rng))
    } else {
        Err(Box::new(rng))
    }
}

/// Whether perturbations of dimension `d` are windows of the [`noise_table`] (at most 1/16
/// of it), not drawn directly.
fn in_table(d: usize) -> bool {
    d <= NOISE_TABLE_LEN / 16
}

/// A window's offset in the [`noise_table`], drawn from the perturbation's generator.
fn draw_offset(d: usize, rng: &mut impl rand::Rng) -> usize {
    rng.random_range(0..=NOISE_TABLE_LEN - d)
}

/// Table entries below which [`gaussian_perturbations`] copies its windows on the calling
/// thread.
const PARALLEL_COPY: usize = 1 << 14;

/// `n` perturbations `g_i ~ N(0, I_d)`, `i = 0..n`, where `g_i` is
/// [`gaussian_perturbation`]`(d, seed, index_base + i)`.
///
/// Drawn in parallel; the result does not depend on the thread count. Disjoint index
/// ranges of the same seed give independent perturbations (e.g. a DPP candidate pool
/// and a second pool at `index_base = pool size`).
///
/// The offsets are drawn first (their substreams' first ChaCha blocks computed together,
/// [`rng::substream_heads`]) and the windows then read together: each window is a cache
/// miss somewhere in 64 MiB, and with the generator's work in between, misses were paid
/// one after another (12% of a linear-policy ES iteration).
pub fn gaussian_perturbations(d: usize, n: usize, seed: u64, index_base: u64) -> Vec<Vec<f32>> {
    let indices: Vec<u64> = (index_base..index_base + n as u64).collect();
    let offsets: Vec<Result<usize, Box<Rng>>> = if in_table(d) {
        // One ChaCha block per offset, the substreams side by side in SIMD lanes.
        rng::substream_heads(seed, PERTURBATION_STREAM, &indices)
            .into_iter()
            .zip(&indices)
            .map(|(head, &i)| {
                let mut rng = rng::HeadRng::new(head, seed, PERTURBATION_STREAM, i);
                Ok(draw_offset(d, &mut rng))
            })
            .collect()
    } else {
        indices
            .into_par_iter()
            .map(|i| table_offset(d, seed, i))
            .collect()
    };
    let table = noise_table();
    #[cfg(target_arch = "x86_64")]
    for o in offsets.iter().flatten() {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // The window's first and last cache lines (a short window's only ones; a long one
        // is then read sequentially, which the hardware prefetches by itself).
        for k in [*o, o + d.max(1) - 1] {
            // SAFETY: prefetching is only a hint and never faults; the address is inside
            // the table.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(table[k..].as_ptr().cast()) };
        }
    }
    let window = |o: Result<usize, Box<Rng>>| match o {
        Ok(offset) => table[offset..offset + d].to_vec(),
        Err(mut rng) => (0..d).map(|_| StandardNormal.sample(&mut *rng)).collect(),
    };
    // Copying a few small windows costs less than handing them to the pool (the linear
    // policy's adaptations read 20 windows of 6).
    if n * d < PARALLEL_COPY {
        offsets.into_iter().map(window).collect()
    } else {
        offsets.into_par_iter().map(window).collect()
    }
}

/// The generator of evaluation `index` of an estimator called with `seed`:
/// `rng::substream(seed, EVALUATION_STREAM, index)`.
pub fn evaluation_rng(seed: u64, index: u64) -> Rng {
    rng::substream(seed, EVALUATION_STREAM, index)
}

/// [`evaluation_rng`]`(seed, index)`, built when first used: what the evaluation receives.
pub fn lazy_evaluation_rng(seed: u64, index: u64) -> LazyRng {
    LazyRng::new(seed, EVALUATION_STREAM, index)
}

/// The generator of centre evaluation `c` of `f(θ)` of an estimator called with `seed`
/// (`rng::substream(seed, CENTER_STREAM, c)`), built when first used. An estimator that
/// evaluates the centre once uses `c = 0`.
pub(crate) fn center_rng(seed: u64, c: u64) -> LazyRng {
    LazyRng::new(seed, CENTER_STREAM, c)
}

/// The point `θ + scale · g`, computed in `f32`.
pub(crate) fn perturbed(theta: &[f32], g: &[f32], scale: f32) -> Vec<f32> {
    let mut point = Vec::with_capacity(theta.len());
    push_perturbed(theta, g, scale, &mut point);
    point
}

/// [`perturbed`] appended to `points`.
fn push_perturbed(theta: &[f32], g: &[f32], scale: f32, points: &mut Vec<f32>) {
    assert_eq!(theta.len(), g.len(), "perturbation should have θ's length");
    points.extend(theta.iter().zip(g).map(|(&t, &gi)| t + scale * gi));
}

/// Evaluates `f(θ + σ s g_i)` for every perturbation `i` and every sign `s` in `signs`,
/// and, with `center`, `f(θ)` itself, in parallel batches of [`BATCH`] handed to
/// [`Objective::values`]. Evaluation `(i, s)` receives [`evaluation_rng`]`(seed, i)`: all
/// signs of one perturbation share a generator (common random numbers for antithetic
/// pairs); the centre receives [`center_rng`]`(seed, 0)`.
///
/// Returns the values perturbation-major (entry `i · signs.len() + k` is
/// `f(θ + σ signs[k] g_i)`) and the centre's value.
pub(crate) fn evaluate_perturbed<F>(
    f: &F,
    theta: &[f32],
    perturbations: &[Vec<f32>],
    sigma: f32,
    signs: &[f32],
    seed: u64,
    center: bool,
) -> (Vec<f64>, Option<f64>)
where
    F: Objective + ?Sized,
{
    evaluate_perturbed_on(
        &crate::dist::Cluster::single(),
        f,
        theta,
        perturbations,
        sigma,
        signs,
        seed,
        usize::from(center),
    )
}

/// [`evaluate_perturbed`] shared between the ranks of an MPI job, with `centers`
/// evaluations of `f(θ)` (0, 1, or more to average: ES-MAML A.7.2's "# Current Evals"),
/// centre `c` with [`center_rng`]`(seed, c)`; the centre value returned is their mean.
/// Evaluation `j` is made by rank `j mod size`, which runs its own evaluations in batches
/// of [`BATCH`]; an all-gather gives every rank all values, in order. An objective's value
/// does not depend on how evaluations are batched ([`Objective::values`]' contract), so
/// the values are those of one process.
#[allow(clippy::too_many_arguments)] // evaluate_perturbed's arguments and the cluster
pub(crate) fn evaluate_perturbed_on<F>(
    cluster: &crate::dist::Cluster,
    f: &F,
    theta: &[f32],
    perturbations: &[Vec<f32>],
    sigma: f32,
    signs: &[f32],
    seed: u64,
    centers: usize,
) -> (Vec<f64>, Option<f64>)
where
    F: Objective + ?Sized,
{
    let n = perturbations.len() * signs.len() + centers;
    let local: Vec<f64> = cluster
        .owned(n)
        .par_chunks(BATCH)
        .flat_map_iter(|chunk| {
            // The chunk's points in one buffer, each θ's length.
            let mut buf = Vec::with_capacity(chunk.len() * theta.len());
            let mut rngs: Vec<LazyRng> = chunk
                .iter()
                .map(|&j| {
                    perturbed_evaluation(theta, perturbations, sigma, signs, seed, j, &mut buf)
                })
                .collect();
            let d = theta.len();
            let points: Vec<&[f32]> = (0..chunk.len()).map(|q| &buf[q * d..(q + 1) * d]).collect();
            f.values(&points, &mut rngs)
        })
        .collect();
    let mut values = cluster.gather(n, 1, &local);
    let f0 = (centers > 0).then(|| {
        let c = values.split_off(n - centers);
        c.iter().sum::<f64>() / centers as f64
    });
    (values, f0)
}

/// Evaluation `j` of [`evaluate_perturbed`]'s layout: its point appended to `points` (so
/// that many points share one buffer), and its generator. `j < n · signs.len()` is
/// `θ + σ signs[j % m] g_{j / m}` with [`evaluation_rng`]`(seed, j / m)`,
/// `j = n · signs.len() + c` the centre `θ` with [`center_rng`]`(seed, c)`.
pub(crate) fn perturbed_evaluation(
    theta: &[f32],
    perturbations: &[Vec<f32>],
    sigma: f32,
    signs: &[f32],
    seed: u64,
    j: usize,
    points: &mut Vec<f32>,
) -> LazyRng {
    let m = signs.len();
    if j >= perturbations.len() * m {
        let c = j - perturbations.len() * m;
        points.extend_from_slice(theta);
        center_rng(seed, c as u64)
    } else {
        let (i, k) = (j / m, j % m);
        push_perturbed(theta, &perturbations[i], sigma * signs[k], points);
        lazy_evaluation_rng(seed, i as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batched_perturbations_are_the_single_ones() {
        // The batch draws its offsets from substream heads computed in SIMD lanes; one
        // perturbation alone from its ChaCha substream.
        for d in [1, 6, 1_218] {
            let batch = gaussian_perturbations(d, 37, 3, 100);
            for (i, g) in batch.iter().enumerate() {
                assert_eq!(
                    *g,
                    gaussian_perturbation(d, 3, 100 + i as u64),
                    "d {d}, i {i}"
                );
            }
        }
    }

    #[test]
    fn perturbation_i_does_not_depend_on_how_many_are_drawn() {
        let few = gaussian_perturbations(4, 3, 11, 0);
        let many = gaussian_perturbations(4, 10, 11, 0);
        let shifted = gaussian_perturbations(4, 5, 11, 2);
        assert_eq!(few[..], many[..3]);
        assert_eq!(shifted[..], many[2..7]);
        assert_ne!(many[0], many[1]);
        assert_ne!(gaussian_perturbations(4, 1, 12, 0)[0], many[0]);
    }

    #[test]
    fn perturbation_moments_match_standard_normal() {
        // 2000 × 8 draws: mean 0 ± 3·(1/√16000) = ±0.024, variance 1 ± 3·√(2/16000) = ±0.034.
        let g = gaussian_perturbations(8, 2000, 5, 0);
        let all: Vec<f64> = g.iter().flatten().map(|&x| f64::from(x)).collect();
        let n = all.len() as f64;
        let mean = all.iter().sum::<f64>() / n;
        let var = all.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        assert!(mean.abs() < 0.024, "mean {mean}");
        assert!((var - 1.0).abs() < 0.034, "variance {var}");
    }

    #[test]
    fn noise_table_is_standard_normal_and_large_dimensions_fall_back_to_direct_draws() {
        // The whole table: mean 0 ± 3/√N ≈ ±7.3e-4, variance 1 ± 3·√(2/N) ≈ ±1.0e-3, and
        // the share beyond 2 standard deviations 0.0455 ± 3·√(p(1−p)/N) ≈ ±1.5e-4.
        let t = noise_table();
        let n = t.len() as f64;
        let mean = t.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = t
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / n;
        let tail = t.iter().filter(|x| x.abs() > 2.0).count() as f64 / n;
        assert!(mean.abs() < 7.3e-4, "mean {mean}");
        assert!((var - 1.0).abs() < 1.0e-3, "variance {var}");
        assert!((tail - 0.045_500_26).abs() < 1.5e-4, "tail share {tail}");
        // A window is a slice of the table; a huge dimension is drawn directly.
        let g = gaussian_perturbation(5, 3, 7);
        assert!(t.windows(5).any(|w| w == &g[..]));
        let big = gaussian_perturbation(NOISE_TABLE_LEN / 16 + 1, 3, 7);
        assert_eq!(big.len(), NOISE_TABLE_LEN / 16 + 1);
        assert_ne!(&big[..5], &g[..]);
    }
}
