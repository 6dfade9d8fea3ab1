//! Gaussian perturbations and evaluation generators, one random stream per index
//! (the per-perturbation seeds of Salimans et al. 2017).
//!
//! Perturbation `i` of seed `s` is `g_i ~ N(0, I_d)` drawn from
//! `rng::substream(s, PERTURBATION_STREAM, i)`; the `i`-th evaluation of an estimator
//! receives `rng::substream(s, EVALUATION_STREAM, i)`. Nothing depends on how many other
//! indices exist, on which thread runs them, or in which order.

use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::rng::{self, Rng};

/// Stream name of the perturbation directions `g_i`.
pub const PERTURBATION_STREAM: &str = "es-perturbation";
/// Stream name of the generators handed to the evaluations `f(θ + σ s g_i)`.
pub const EVALUATION_STREAM: &str = "es-evaluation";
/// Stream name of the generator handed to the centre evaluation `f(θ)` (forward-FD).
pub const CENTER_STREAM: &str = "es-center";

/// One perturbation `g ~ N(0, I_d)`, drawn from `rng::substream(seed,
/// PERTURBATION_STREAM, index)`: the same `(d, seed, index)` always gives the same vector.
pub fn gaussian_perturbation(d: usize, seed: u64, index: u64) -> Vec<f32> {
    let mut rng = rng::substream(seed, PERTURBATION_STREAM, index);
    (0..d).map(|_| StandardNormal.sample(&mut rng)).collect()
}

/// `n` perturbations `g_i ~ N(0, I_d)`, `i = 0..n`, where `g_i` is
/// [`gaussian_perturbation`]`(d, seed, index_base + i)`.
///
/// Drawn in parallel; the result does not depend on the thread count. Disjoint index
/// ranges of the same seed give independent perturbations (e.g. a DPP candidate pool
/// and a second pool at `index_base = pool size`).
pub fn gaussian_perturbations(d: usize, n: usize, seed: u64, index_base: u64) -> Vec<Vec<f32>> {
    (0..n as u64)
        .into_par_iter()
        .map(|i| gaussian_perturbation(d, seed, index_base + i))
        .collect()
}

/// The generator of evaluation `index` of an estimator called with `seed`:
/// `rng::substream(seed, EVALUATION_STREAM, index)`.
pub fn evaluation_rng(seed: u64, index: u64) -> Rng {
    rng::substream(seed, EVALUATION_STREAM, index)
}

/// The generator of the centre evaluation `f(θ)` of an estimator called with `seed`.
pub(crate) fn center_rng(seed: u64) -> Rng {
    rng::substream(seed, CENTER_STREAM, 0)
}

/// The point `θ + scale · g`, computed in `f32`.
pub(crate) fn perturbed(theta: &[f32], g: &[f32], scale: f32) -> Vec<f32> {
    assert_eq!(theta.len(), g.len(), "perturbation should have θ's length");
    theta
        .iter()
        .zip(g)
        .map(|(&t, &gi)| t + scale * gi)
        .collect()
}

/// Evaluates `f(θ + σ s g_i)` for every perturbation `i` and every sign `s` in `signs`,
/// in parallel. Evaluation `(i, s)` receives [`evaluation_rng`]`(seed, i)`: all signs of
/// one perturbation share a generator (common random numbers for antithetic pairs).
///
/// Returns the values perturbation-major: entry `i · signs.len() + k` is
/// `f(θ + σ signs[k] g_i)`.
pub(crate) fn evaluate_perturbed<F>(
    f: &F,
    theta: &[f32],
    perturbations: &[Vec<f32>],
    sigma: f32,
    signs: &[f32],
    seed: u64,
) -> Vec<f64>
where
    F: Fn(&[f32], &mut Rng) -> f64 + Sync + ?Sized,
{
    let m = signs.len();
    (0..perturbations.len() * m)
        .into_par_iter()
        .map(|j| {
            let (i, k) = (j / m, j % m);
            let point = perturbed(theta, &perturbations[i], sigma * signs[k]);
            f(&point, &mut evaluation_rng(seed, i as u64))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
