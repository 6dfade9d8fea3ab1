//! ES gradient estimators: Monte Carlo (Algorithm 1), forward finite differences and
//! antithetic (mirrored) sampling (ES-MAML §3.1, `es_est_type`).

use serde::{Deserialize, Serialize};

use super::noise::{evaluate_perturbed_on, gaussian_perturbations, perturbed_evaluation};
use super::objective::Objective;
use super::shaping::FitnessShaping;
use crate::rng::LazyRng;

/// Estimator of the smoothed gradient `∇f_σ(θ) = E[f(θ + σg) g] / σ` from `n` Gaussian
/// directions `g_i`. All three are unbiased for raw f-values.
///
/// ```text
/// Mc          ĝ = 1/(nσ)  Σ_i  f(θ + σg_i) g_i                         n evaluations
/// ForwardFd   ĝ = 1/(nσ)  Σ_i (f(θ + σg_i) − f(θ)) g_i                 n + 1 evaluations
/// Antithetic  ĝ = 1/(2nσ) Σ_i (f(θ + σg_i) − f(θ − σg_i)) g_i          2n evaluations
/// ```
///
/// Forward-FD and antithetic are invariant to adding a constant to `f` (ES-MAML §3.1);
/// their variance does not grow with `|f(θ)|/σ` as MC's does. ES-MAML's code defaults
/// to antithetic; its paper table (A.7.2) lists forward-FD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EsEstimator {
    /// Plain Monte Carlo, Algorithm 1 `ESGrad`.
    Mc,
    /// Forward finite differences against one evaluation of the current point `f(θ)`.
    ForwardFd,
    /// Antithetic pairs `θ ± σg_i`; both members share one evaluation generator.
    Antithetic,
}

impl EsEstimator {
    /// Evaluations of `f` used for `n` directions: `n`, `n + 1` or `2n`.
    pub fn evaluations(self, n: usize) -> usize {
        match self {
            EsEstimator::Mc => n,
            EsEstimator::ForwardFd => n + 1,
            EsEstimator::Antithetic => 2 * n,
        }
    }

    /// Directions whose evaluations fit a budget of `evaluations` (the inverse of
    /// [`Self::evaluations`], rounded down): `k`, `k − 1` or `k / 2`.
    pub fn directions_within(self, evaluations: usize) -> usize {
        match self {
            EsEstimator::Mc => evaluations,
            EsEstimator::ForwardFd => evaluations.saturating_sub(1),
            EsEstimator::Antithetic => evaluations / 2,
        }
    }

    /// The signs each direction is evaluated with, and whether `f(θ)` is evaluated too.
    fn layout(self) -> (&'static [f32], bool) {
        match self {
            EsEstimator::Mc => (&[1.0], false),
            EsEstimator::ForwardFd => (&[1.0], true),
            EsEstimator::Antithetic => (&[1.0, -1.0], false),
        }
    }
}

/// An ES gradient estimate and the raw evaluations it was formed from.
#[derive(Clone, Debug, PartialEq)]
pub struct EsGradient {
    /// The estimate `ĝ`, length `d`.
    pub grad: Vec<f32>,
    /// Raw (unshaped) f-values, perturbation-major: `f(θ + σg_i)` at `i` for `Mc` and
    /// `ForwardFd`; `f(θ + σg_i)` at `2i` and `f(θ − σg_i)` at `2i + 1` for `Antithetic`.
    pub values: Vec<f64>,
    /// Raw `f(θ)` for `ForwardFd`; `None` for the others (they do not evaluate θ).
    pub f0: Option<f64>,
}

impl EsGradient {
    /// Mean of the perturbed values, `(1/m) Σ values`: an estimate of `f_σ(θ)`.
    pub fn mean_value(&self) -> f64 {
        self.values.iter().sum::<f64>() / self.values.len() as f64
    }
}

/// ES gradient of `f` at `θ` from `n` fresh Gaussian directions (ES-MAML Algorithm 1
/// and §3.1); see [`EsEstimator`] for the three formulas.
///
/// Direction `g_i` is [`gaussian_perturbation`](super::gaussian_perturbation)`(d, seed, i)`;
/// the evaluations of direction `i` receive [`evaluation_rng`](super::evaluation_rng)`(seed,
/// i)` (both signs of an antithetic pair: common random numbers) and `f(θ)` its own
/// stream. Evaluations run in parallel on the current rayon pool; the result is
/// bit-identical for any thread count.
///
/// `shaping` (a [`FitnessShaping`] or a `bool`, `true` = ES-MAML's mean/std
/// normalization) transforms all f-values of the estimate, `f(θ)` included, before
/// they are combined; any shaping rescales the estimate (see [`FitnessShaping`]).
///
/// Panics unless `σ > 0` and `n ≥ 1`.
pub fn es_gradient<F>(
    f: &F,
    theta: &[f32],
    sigma: f32,
    n: usize,
    estimator: EsEstimator,
    seed: u64,
    shaping: impl Into<FitnessShaping>,
) -> EsGradient
where
    F: Objective + ?Sized,
{
    es_gradient_on(
        &crate::dist::Cluster::single(),
        f,
        theta,
        sigma,
        n,
        estimator,
        1,
        seed,
        shaping,
    )
}

/// [`es_gradient`] with its evaluations shared between the ranks of an MPI job
/// ([`crate::dist`]): each rank evaluates its share, every rank receives every value
/// and forms the same estimate — the one a single process forms. Every rank must call it
/// with the same arguments.
///
/// `center_evals` (≥ 1) is how many evaluations of `f(θ)` `ForwardFd` averages into its
/// `f(θ)`, each with its own generator (ES-MAML A.7.2's "# Current Evals": 150; 1 is
/// [`es_gradient`]'s single evaluation). The other estimators do not evaluate `θ` and
/// ignore it.
#[allow(clippy::too_many_arguments)] // es_gradient's arguments, the centre's evaluations and the cluster
pub fn es_gradient_on<F>(
    cluster: &crate::dist::Cluster,
    f: &F,
    theta: &[f32],
    sigma: f32,
    n: usize,
    estimator: EsEstimator,
    center_evals: usize,
    seed: u64,
    shaping: impl Into<FitnessShaping>,
) -> EsGradient
where
    F: Objective + ?Sized,
{
    assert!(center_evals >= 1, "f(θ) needs at least one evaluation");
    let perturbations = gaussian_perturbations(theta.len(), n, seed, 0);
    gradient_with_perturbations_on(
        cluster,
        f,
        theta,
        &perturbations,
        sigma,
        estimator,
        center_evals,
        seed,
        shaping.into(),
    )
}

/// [`es_gradient`] with caller-supplied directions `g_i` (e.g. [`dpp_perturbations`]
/// for DPP-ES, ES-MAML §3.3.1). The directions are used as given (not rescaled by σ
/// inside: the evaluated points are `θ ± σ g_i`); `seed` only picks the evaluation
/// generators.
///
/// [`dpp_perturbations`]: super::dpp_perturbations
///
/// Panics unless `σ > 0`, there is at least one direction and each has `θ`'s length.
pub fn es_gradient_with_perturbations<F>(
    f: &F,
    theta: &[f32],
    perturbations: &[Vec<f32>],
    sigma: f32,
    estimator: EsEstimator,
    seed: u64,
    shaping: impl Into<FitnessShaping>,
) -> EsGradient
where
    F: Objective + ?Sized,
{
    gradient_with_perturbations_on(
        &crate::dist::Cluster::single(),
        f,
        theta,
        perturbations,
        sigma,
        estimator,
        1,
        seed,
        shaping.into(),
    )
}

/// [`es_gradient_with_perturbations`] with the evaluations shared between `cluster`'s
/// ranks ([`evaluate_perturbed_on`]) and `center_evals` evaluations of `f(θ)` averaged
/// when the estimator uses it.
#[allow(clippy::too_many_arguments)] // es_gradient_with_perturbations' arguments, the centre's evaluations and the cluster
fn gradient_with_perturbations_on<F>(
    cluster: &crate::dist::Cluster,
    f: &F,
    theta: &[f32],
    perturbations: &[Vec<f32>],
    sigma: f32,
    estimator: EsEstimator,
    center_evals: usize,
    seed: u64,
    shaping: FitnessShaping,
) -> EsGradient
where
    F: Objective + ?Sized,
{
    assert!(
        sigma > 0.0,
        "ES precision σ should be positive, got {sigma}"
    );
    assert!(!perturbations.is_empty(), "ES needs at least one direction");
    let (signs, center) = estimator.layout();
    let centers = if center { center_evals } else { 0 };
    let (values, f0) = evaluate_perturbed_on(
        cluster,
        f,
        theta,
        perturbations,
        sigma,
        signs,
        seed,
        centers,
    );
    let grad = es_gradient_from_values(perturbations, &values, f0, sigma, estimator, shaping);
    EsGradient { grad, values, f0 }
}

/// One problem of [`es_gradient_lockstep`]: the point `θ`, its directions `g_i` and the
/// seed of its evaluation generators (as in [`es_gradient_with_perturbations`]).
#[derive(Clone, Debug)]
pub struct GradientProblem<'a> {
    /// The point `θ` the gradient is estimated at.
    pub theta: &'a [f32],
    /// The directions `g_i`, each of `θ`'s length.
    pub perturbations: Vec<Vec<f32>>,
    /// Picks the evaluation generators.
    pub seed: u64,
}

/// [`es_gradient_with_perturbations`] for several independent problems whose evaluations
/// are made together, so that they can share batches (ES-MAML adapts every (perturbation,
/// task) pair of a batch this way, and all their episodes fill SIMD lanes).
///
/// `eval(problems, points, rngs)` is called once with every evaluation of every problem,
/// problem by problem in [`es_gradient_with_perturbations`]'s order, each with the
/// generator that function would give it; `problems[i]` says which problem `points[i]`
/// belongs to. Problem `p`'s estimate is exactly `es_gradient_with_perturbations` of that
/// problem alone, whose objective is whatever `eval` computes for `p`'s points.
///
/// Panics unless `σ > 0` and every problem has at least one direction of its `θ`'s length.
pub fn es_gradient_lockstep<E>(
    problems: &[GradientProblem],
    sigma: f32,
    estimator: EsEstimator,
    shaping: impl Into<FitnessShaping>,
    eval: E,
) -> Vec<EsGradient>
where
    E: FnOnce(&[usize], &[&[f32]], &mut [LazyRng]) -> Vec<f64>,
{
    assert!(
        sigma > 0.0,
        "ES precision σ should be positive, got {sigma}"
    );
    let (signs, center) = estimator.layout();
    let shaping = shaping.into();
    let total = problems
        .iter()
        .map(|p| estimator.evaluations(p.perturbations.len()))
        .sum();
    let mut owners = Vec::with_capacity(total);
    // Every point in one buffer (thousands of small vectors cost more to allocate than to
    // fill), each ending at `ends[q]`.
    let mut points = Vec::with_capacity(total * problems.first().map_or(0, |p| p.theta.len()));
    let mut ends = Vec::with_capacity(total);
    let mut rngs = Vec::with_capacity(total);
    for (p, problem) in problems.iter().enumerate() {
        assert!(
            !problem.perturbations.is_empty(),
            "ES needs at least one direction"
        );
        let (th, g) = (problem.theta, &problem.perturbations);
        for j in 0..estimator.evaluations(g.len()) {
            let rng = perturbed_evaluation(th, g, sigma, signs, problem.seed, j, &mut points);
            owners.push(p);
            ends.push(points.len());
            rngs.push(rng);
        }
    }
    let refs: Vec<&[f32]> = std::iter::once(0)
        .chain(ends.iter().copied())
        .zip(&ends)
        .map(|(a, &b)| &points[a..b])
        .collect();
    let all = eval(&owners, &refs, &mut rngs);
    assert_eq!(
        all.len(),
        refs.len(),
        "eval should return one value per point"
    );
    let mut rest = all.as_slice();
    problems
        .iter()
        .map(|problem| {
            let g = &problem.perturbations;
            let (mine, tail) = rest.split_at(estimator.evaluations(g.len()));
            rest = tail;
            let (values, f0) = mine.split_at(g.len() * signs.len());
            let f0 = center.then(|| f0[0]);
            let grad = es_gradient_from_values(g, values, f0, sigma, estimator, shaping);
            EsGradient {
                grad,
                values: values.to_vec(),
                f0,
            }
        })
        .collect()
}

/// Combines given f-values into an ES gradient (the formulas of [`EsEstimator`]), in
/// `f64`, after applying `shaping` jointly to `values` and `f0`.
///
/// `values` is laid out as in [`EsGradient::values`] (`n` entries, or `2n` interleaved
/// `+, −` for `Antithetic`). `f0` is required for `ForwardFd`; for the other estimators
/// it is optional and, when given, only enters the shaping statistics (ES-MAML also
/// normalizes with the current point's value there).
///
/// Panics on a length mismatch, `σ ≤ 0`, or `ForwardFd` without `f0`.
pub fn es_gradient_from_values(
    perturbations: &[Vec<f32>],
    values: &[f64],
    f0: Option<f64>,
    sigma: f32,
    estimator: EsEstimator,
    shaping: FitnessShaping,
) -> Vec<f32> {
    let n = perturbations.len();
    assert!(
        sigma > 0.0,
        "ES precision σ should be positive, got {sigma}"
    );
    assert_eq!(
        values.len(),
        estimator.evaluations(n) - usize::from(estimator == EsEstimator::ForwardFd),
        "values should hold one f-value per evaluated perturbed point"
    );
    let mut all = values.to_vec();
    all.extend(f0);
    let shaped = shaping.apply(&all);
    let (fs, center) = shaped.split_at(values.len());
    let sigma = f64::from(sigma);
    let (weights, denominator): (Vec<f64>, f64) = match estimator {
        EsEstimator::Mc => (fs.to_vec(), n as f64 * sigma),
        EsEstimator::ForwardFd => {
            let c = *center.first().expect("forward-FD should be given f(θ)");
            (fs.iter().map(|v| v - c).collect(), n as f64 * sigma)
        }
        EsEstimator::Antithetic => (
            fs.chunks_exact(2).map(|p| p[0] - p[1]).collect(),
            2.0 * n as f64 * sigma,
        ),
    };
    weighted_sum(perturbations, &weights)
        .into_iter()
        .map(|s| (s / denominator) as f32)
        .collect()
}

/// `Σ_i w_i g_i` in `f64`, summed in index order (deterministic).
pub(crate) fn weighted_sum(perturbations: &[Vec<f32>], weights: &[f64]) -> Vec<f64> {
    assert_eq!(
        perturbations.len(),
        weights.len(),
        "one weight per direction"
    );
    let d = perturbations.first().map_or(0, Vec::len);
    let mut sum = vec![0.0f64; d];
    for (g, &w) in perturbations.iter().zip(weights) {
        assert_eq!(g.len(), d, "all directions should have the same length");
        for (s, &gj) in sum.iter_mut().zip(g) {
            *s += w * f64::from(gj);
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use rand_distr::{Distribution, StandardNormal};

    use super::*;
    use crate::es::testing::{noisy_quadratic, noisy_quadratics, quadratic, C};
    use crate::rng::Rng;

    const ESTIMATORS: [EsEstimator; 3] = [
        EsEstimator::Mc,
        EsEstimator::ForwardFd,
        EsEstimator::Antithetic,
    ];

    /// Per-coordinate mean and variance of `R` estimates.
    fn moments(estimates: &[Vec<f32>]) -> (Vec<f64>, Vec<f64>) {
        let r = estimates.len() as f64;
        let d = estimates[0].len();
        let mean: Vec<f64> = (0..d)
            .map(|j| estimates.iter().map(|e| f64::from(e[j])).sum::<f64>() / r)
            .collect();
        let var: Vec<f64> = (0..d)
            .map(|j| {
                let ss: f64 = estimates
                    .iter()
                    .map(|e| (f64::from(e[j]) - mean[j]).powi(2))
                    .sum();
                ss / (r - 1.0)
            })
            .collect();
        (mean, var)
    }

    /// On `f(θ) = −‖θ − c‖²` at θ = 0 (d = 5, σ = 0.1, n = 10, R = 2000 seeds), the smoothed
    /// gradient is exactly `−2(θ − c) = 2c`. Mean check: per coordinate within a
    /// Bonferroni bound of 3.75 SE (15 comparisons, family-wise two-sided level ≈ 0.3%,
    /// the level of one 3-SE test) and, on the fixed projection u = 2c/‖2c‖, within 3 SE.
    ///
    /// Closed-form variance traces (δ = θ − c, a = −2δ, A = −‖δ‖²/σ, per direction):
    /// antithetic `(aᵀg)g`: `(d+1)‖a‖²`; forward-FD `(aᵀg − σ‖g‖²)g`: `(d+1)‖a‖² +
    /// σ²d(d+2)(d+4)`; MC `f g/σ = Ag + (aᵀg)g − σ‖g‖²g`: `A²d + (d+1)‖a‖² + σ²d(d+2)(d+4)
    /// − 2Aσd(d+2)`. Here ≈ 17813 (MC), 144.2 (FD), 141 (antithetic) per direction.
    #[test]
    fn estimators_are_unbiased_on_a_quadratic_and_fd_and_antithetic_beat_mc_variance() {
        let (d, sigma, n, reps) = (5usize, 0.1f32, 10usize, 2000u64);
        let theta = vec![0.0f32; d];
        let truth: Vec<f64> = C.iter().map(|&c| 2.0 * f64::from(c)).collect();
        let norm = truth.iter().map(|t| t * t).sum::<f64>().sqrt();
        let u: Vec<f64> = truth.iter().map(|t| t / norm).collect();

        let delta_sq: f64 = C.iter().map(|&c| f64::from(c).powi(2)).sum();
        let (df, s) = (d as f64, f64::from(sigma));
        let a_sq = 4.0 * delta_sq;
        let big_a = -delta_sq / s;
        let cubic = s * s * df * (df + 2.0) * (df + 4.0);
        let closed_anti = (df + 1.0) * a_sq;
        let closed_fd = closed_anti + cubic;
        let closed_mc =
            big_a * big_a * df + closed_anti + cubic - 2.0 * big_a * s * df * (df + 2.0);

        let mut traces = Vec::new();
        for estimator in ESTIMATORS {
            let estimates: Vec<Vec<f32>> = (0..reps)
                .map(|r| es_gradient(&quadratic, &theta, sigma, n, estimator, 1000 + r, false).grad)
                .collect();
            let (mean, var) = moments(&estimates);
            for j in 0..d {
                let se = (var[j] / reps as f64).sqrt();
                assert!(
                    (mean[j] - truth[j]).abs() < 3.75 * se,
                    "{estimator:?} coordinate {j}: mean {} vs {} (SE {se})",
                    mean[j],
                    truth[j]
                );
            }
            let proj: Vec<f64> = estimates
                .iter()
                .map(|e| e.iter().zip(&u).map(|(&x, &uj)| f64::from(x) * uj).sum())
                .collect();
            let pm = proj.iter().sum::<f64>() / reps as f64;
            let pv = proj.iter().map(|p| (p - pm).powi(2)).sum::<f64>() / (reps as f64 - 1.0);
            let pse = (pv / reps as f64).sqrt();
            assert!(
                (pm - norm).abs() < 3.0 * pse,
                "{estimator:?}: projection {pm} vs {norm}"
            );
            // Trace of the covariance, per direction (× n undoes the 1/n averaging).
            traces.push(var.iter().sum::<f64>() * n as f64);
        }
        let closed = [closed_mc, closed_fd, closed_anti];
        for (k, estimator) in ESTIMATORS.iter().enumerate() {
            println!(
                "{estimator:?}: tr Var per direction {:.1} (closed form {:.1})",
                traces[k], closed[k]
            );
            assert!((traces[k] / closed[k] - 1.0).abs() < 0.25);
        }
        let (fd_ratio, anti_ratio) = (traces[0] / traces[1], traces[0] / traces[2]);
        println!("variance ratio MC/forward-FD = {fd_ratio:.1}, MC/antithetic = {anti_ratio:.1} (equal n = {n} directions)");
        assert!(fd_ratio > 10.0 && anti_ratio > 10.0);
    }

    #[test]
    fn same_seed_gives_identical_estimates_on_one_and_two_threads() {
        // A stochastic objective: each evaluation draws observation noise from its Rng.
        let noisy = |x: &[f32], rng: &mut Rng| {
            let eps: f64 = StandardNormal.sample(rng);
            quadratic(x, rng) + 0.3 * eps
        };
        let theta = [0.1f32, -0.2, 0.3, 0.0, 1.0];
        let run = |threads: usize, estimator: EsEstimator| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| es_gradient(&noisy, &theta, 0.1, 64, estimator, 42, true))
        };
        for estimator in ESTIMATORS {
            assert_eq!(run(1, estimator), run(2, estimator), "{estimator:?}");
        }
    }

    #[test]
    fn forward_fd_and_antithetic_are_invariant_to_adding_a_constant() {
        let theta = [0.3f32, 0.1, -0.4];
        let shifted = |x: &[f32], rng: &mut Rng| quadratic(x, rng) + 1e3;
        for estimator in [EsEstimator::ForwardFd, EsEstimator::Antithetic] {
            let a = es_gradient(&quadratic, &theta, 0.1, 16, estimator, 7, false).grad;
            let b = es_gradient(&shifted, &theta, 0.1, 16, estimator, 7, false).grad;
            for (x, y) in a.iter().zip(&b) {
                // f-values of magnitude 1e3 carry f64 rounding ~1e-13 relative.
                assert!((x - y).abs() < 1e-6, "{estimator:?}: {x} vs {y}");
            }
        }
        let a = es_gradient(&quadratic, &theta, 0.1, 16, EsEstimator::Mc, 7, false).grad;
        let b = es_gradient(&shifted, &theta, 0.1, 16, EsEstimator::Mc, 7, false).grad;
        assert_ne!(a, b, "MC is not translation-invariant");
    }

    #[test]
    fn standardized_antithetic_estimate_is_the_raw_estimate_over_the_value_std() {
        // (f − μ)/s: μ cancels in each pair difference, so ĝ_norm = ĝ_raw / s exactly.
        let theta = [0.3f32, 0.1, -0.4, 0.7];
        let raw = es_gradient(
            &quadratic,
            &theta,
            0.1,
            12,
            EsEstimator::Antithetic,
            3,
            false,
        );
        let norm = es_gradient(
            &quadratic,
            &theta,
            0.1,
            12,
            EsEstimator::Antithetic,
            3,
            true,
        );
        let m = raw.values.len() as f64;
        let mu = raw.values.iter().sum::<f64>() / m;
        let std = (raw.values.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / m).sqrt();
        assert_eq!(raw.values, norm.values, "values are returned unshaped");
        for (r, z) in raw.grad.iter().zip(&norm.grad) {
            let expected = f64::from(*r) / std;
            assert!((f64::from(*z) - expected).abs() < 1e-5 * expected.abs().max(1.0));
        }
    }

    #[test]
    fn antithetic_pairs_share_evaluation_noise() {
        // f = pure noise from the evaluation Rng: with common random numbers f(θ+σg_i) and
        // f(θ−σg_i) are equal, so every pair difference and the estimate are exactly 0.
        let noise = |_: &[f32], rng: &mut Rng| -> f64 { StandardNormal.sample(rng) };
        let est = es_gradient(&noise, &[0.0; 3], 0.1, 8, EsEstimator::Antithetic, 9, false);
        assert!(est.grad.iter().all(|&g| g == 0.0));
        assert!(est.values.chunks_exact(2).all(|p| p[0] == p[1]));
        assert!(
            est.values[0] != est.values[2],
            "different pairs get different noise"
        );
    }

    /// ES-MAML's "# Current Evals": forward-FD's f(θ) is the mean of `m` evaluations of θ,
    /// evaluation `c` with the centre generator `c`; the perturbed values are unchanged, the
    /// estimate is the forward-FD formula with that mean, and `m = 1` is [`es_gradient`].
    #[test]
    fn forward_fd_averages_its_current_evaluations() {
        let noisy = |x: &[f32], rng: &mut Rng| {
            let eps: f64 = StandardNormal.sample(rng);
            quadratic(x, rng) + 0.5 * eps
        };
        let (theta, sigma, n, seed) = ([0.3f32, -0.1, 0.2], 0.1f32, 6usize, 17u64);
        let single = crate::dist::Cluster::single();
        let est = |m| {
            es_gradient_on(
                &single,
                &noisy,
                &theta,
                sigma,
                n,
                EsEstimator::ForwardFd,
                m,
                seed,
                false,
            )
        };
        assert_eq!(
            est(1),
            es_gradient(
                &noisy,
                &theta,
                sigma,
                n,
                EsEstimator::ForwardFd,
                seed,
                false
            )
        );
        let m = 7;
        let many = est(m);
        let centre: Vec<f64> = (0..m as u64)
            .map(|c| noisy(&theta, crate::es::noise::center_rng(seed, c).get()))
            .collect();
        let mean = centre.iter().sum::<f64>() / m as f64;
        assert_ne!(
            centre[0], centre[1],
            "each centre evaluation has its own noise"
        );
        assert_eq!(many.f0, Some(mean));
        assert_eq!(many.values, est(1).values);
        let g = gaussian_perturbations(theta.len(), n, seed, 0);
        for j in 0..theta.len() {
            let expected: f64 = (0..n)
                .map(|i| (many.values[i] - mean) * f64::from(g[i][j]))
                .sum::<f64>()
                / (n as f64 * f64::from(sigma));
            assert!((f64::from(many.grad[j]) - expected).abs() < 1e-5 * expected.abs().max(1.0));
        }
    }

    #[test]
    fn estimate_records_its_evaluations() {
        let theta = [1.0f32, 2.0];
        for estimator in ESTIMATORS {
            let est = es_gradient(&quadratic, &theta, 0.1, 5, estimator, 1, false);
            let f0 = usize::from(est.f0.is_some());
            assert_eq!(est.values.len() + f0, estimator.evaluations(5));
            assert_eq!(est.f0.is_some(), estimator == EsEstimator::ForwardFd);
        }
    }

    #[test]
    fn lockstep_gradients_equal_independent_ones() {
        // Three problems with different noisy objectives, points, direction counts and
        // seeds, estimated together with one eval call: each equals its own estimate.
        let thetas = [[0.0f32; 5], [0.5; 5], [-1.0; 5]];
        let shifts = [0.0, 2.0, -7.0];
        let (seeds, counts) = ([3, 14, 15], [4, 7, 5]);
        for estimator in ESTIMATORS {
            for shaping in [FitnessShaping::Raw, FitnessShaping::Standardize] {
                let problems: Vec<GradientProblem> = (0..3)
                    .map(|p| GradientProblem {
                        theta: &thetas[p],
                        perturbations: gaussian_perturbations(5, counts[p], seeds[p], 0),
                        seed: seeds[p],
                    })
                    .collect();
                let mut calls = 0;
                let together =
                    es_gradient_lockstep(&problems, 0.2, estimator, shaping, |owners, xs, rngs| {
                        calls += 1;
                        let per: Vec<usize> = (0..3)
                            .map(|p| owners.iter().filter(|&&o| o == p).count())
                            .collect();
                        assert_eq!(per, counts.map(|n| estimator.evaluations(n)));
                        assert!(owners.windows(2).all(|w| w[0] <= w[1]));
                        noisy_quadratics(&shifts, owners, xs, rngs)
                    });
                assert_eq!(calls, 1);
                for p in 0..3 {
                    let alone = es_gradient(
                        &noisy_quadratic(shifts[p]),
                        &thetas[p],
                        0.2,
                        counts[p],
                        estimator,
                        seeds[p],
                        shaping,
                    );
                    assert_eq!(together[p], alone, "{estimator:?} {shaping:?} problem {p}");
                }
            }
        }
    }
}
