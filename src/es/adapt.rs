//! Adaptation operators `U(θ, T)` of zero-order ES-MAML on a flat θ: the ES gradient
//! step of Algorithm 3 and hill climbing (§3.3.2). Both return a new θ (modules are
//! values); the task is whatever the objective `f` closes over.

use super::estimators::{es_gradient, EsEstimator, EsGradient};
use super::noise::{gaussian_perturbation, lazy_evaluation_rng, perturbed};
use super::objective::Objective;
use super::shaping::FitnessShaping;
use crate::rng::LazyRng;

/// Result of [`es_grad_step`]: the adapted parameters and the estimate that moved them.
#[derive(Clone, Debug, PartialEq)]
pub struct EsGradStep {
    /// `θ' = θ + α ĝ`.
    pub theta: Vec<f32>,
    /// The gradient estimate `ĝ` and the evaluations it used (pre-adaptation values).
    pub estimate: EsGradient,
}

/// One ES gradient-ascent adaptation step (Algorithm 3, lines 4–5):
///
/// ```text
/// ĝ  = ESGrad(f, θ, K, σ)        (estimator and shaping as in es_gradient)
/// θ' = θ + α ĝ
/// ```
///
/// `k` is the number of directions (ES-MAML `num_queries`, default 20): `K`, `K + 1`
/// or `2K` evaluations for MC, forward-FD or antithetic ([`EsEstimator::evaluations`]).
/// ES-MAML's adapter uses α = 0.05, σ = 0.1 and normalized f-values. For DPP-ES,
/// combine [`es_gradient_with_perturbations`](super::es_gradient_with_perturbations)
/// with [`dpp_perturbations`](super::dpp_perturbations) the same way.
///
/// Panics unless `σ > 0` and `k ≥ 1`.
#[allow(clippy::too_many_arguments)] // the arguments of ESGrad plus the step size α
pub fn es_grad_step<F>(
    f: &F,
    theta: &[f32],
    alpha: f32,
    sigma: f32,
    k: usize,
    estimator: EsEstimator,
    seed: u64,
    shaping: impl Into<FitnessShaping>,
) -> EsGradStep
where
    F: Objective + ?Sized,
{
    let estimate = es_gradient(f, theta, sigma, k, estimator, seed, shaping);
    let theta = theta
        .iter()
        .zip(&estimate.grad)
        .map(|(&t, &g)| t + alpha * g)
        .collect();
    EsGradStep { theta, estimate }
}

/// Result of [`hill_climb`].
#[derive(Clone, Debug, PartialEq)]
pub struct HillClimb {
    /// The best parameters found (the start θ if no proposal was accepted).
    pub theta: Vec<f32>,
    /// The evaluated value of `theta` (the evaluation that made it the best).
    pub value: f64,
    /// Best value so far after each evaluation: `K + 1` entries, non-decreasing,
    /// `history[0]` = the start value, `history[K]` = `value`.
    pub history: Vec<f64>,
    /// Number of accepted proposals.
    pub accepted: usize,
}

/// Hill-climbing adaptation operator (ES-MAML §3.3.2; code `HillClimbAdaptation`,
/// `parallel_alg = "average"` with one evaluation per candidate):
///
/// ```text
/// θ* ← θ,  v* ← f(θ)
/// for j = 1..K:
///     θ_j ← θ* + σ g_j,   g_j ~ N(0, I)
///     v_j ← f(θ_j)
///     if v_j > v*:  θ* ← θ_j,  v* ← v_j
/// return θ*
/// ```
///
/// Proposals perturb the best point so far (not the start), as in the paper ("perturbing
/// the best observed policy") and the code. Uses `K + 1` evaluations, sequentially
/// (each proposal depends on the previous acceptances). `g_j` is
/// [`gaussian_perturbation`]`(d, seed, j − 1)` and evaluation `j` (0 = the start)
/// receives [`evaluation_rng`](super::evaluation_rng)`(seed, j)`.
///
/// **Monotone on the evaluations made, not in expectation**: the returned `value` is never
/// below the start's evaluated value, but with a stochastic `f` it is the maximum of
/// noisy evaluations and therefore biased upwards (winner's curse); the true expected
/// value of the returned θ can be lower than the start's. Averaging several
/// evaluations inside `f` reduces this.
///
/// Panics unless `σ > 0`.
pub fn hill_climb<F>(f: &F, theta: &[f32], sigma: f32, k: usize, seed: u64) -> HillClimb
where
    F: Objective + ?Sized,
{
    hill_climb_lockstep(&[theta], sigma, k, &[seed], |_, points, rngs| {
        f.values(points, rngs)
    })
    .remove(0)
}

/// [`hill_climb`] on several independent problems in lock-step, so that each round's
/// proposals can be evaluated together (ES-MAML runs the episodes of a batch of
/// perturbations' hill climbs in SIMD lanes). Problem `p` starts at `starts[p]` with
/// seed `seeds[p]`; round `j` (0 = the starts) calls `eval(problems, points, rngs)` once
/// with every problem's point and its generator [`evaluation_rng`](super::evaluation_rng)`(seeds[p], j)`, and
/// `problems[i]` says which problem `points[i]` belongs to. Problem `p`'s result is exactly
/// `hill_climb` of that problem alone, whose objective is whatever `eval` computes for
/// `p`'s points.
///
/// Panics unless `σ > 0` and there is one seed per start.
pub fn hill_climb_lockstep<E>(
    starts: &[&[f32]],
    sigma: f32,
    k: usize,
    seeds: &[u64],
    mut eval: E,
) -> Vec<HillClimb>
where
    E: FnMut(&[usize], &[&[f32]], &mut [LazyRng]) -> Vec<f64>,
{
    assert!(
        sigma > 0.0,
        "hill-climbing radius σ should be positive, got {sigma}"
    );
    assert_eq!(starts.len(), seeds.len(), "one seed per start");
    let problems: Vec<usize> = (0..starts.len()).collect();
    let mut round = |j: u64, points: &[&[f32]]| {
        let mut rngs: Vec<LazyRng> = seeds.iter().map(|&s| lazy_evaluation_rng(s, j)).collect();
        eval(&problems, points, &mut rngs)
    };
    let values = round(0, starts);
    let mut out: Vec<HillClimb> = starts
        .iter()
        .zip(values)
        .map(|(s, v)| {
            let mut history = Vec::with_capacity(k + 1);
            history.push(v);
            HillClimb {
                theta: s.to_vec(),
                value: v,
                history,
                accepted: 0,
            }
        })
        .collect();
    for j in 1..=k as u64 {
        let candidates: Vec<Vec<f32>> = out
            .iter()
            .zip(seeds)
            .map(|(hc, &seed)| {
                let g = gaussian_perturbation(hc.theta.len(), seed, j - 1);
                perturbed(&hc.theta, &g, sigma)
            })
            .collect();
        let points: Vec<&[f32]> = candidates.iter().map(Vec::as_slice).collect();
        let values = round(j, &points);
        for ((hc, candidate), v) in out.iter_mut().zip(candidates).zip(values) {
            if v > hc.value {
                hc.theta = candidate;
                hc.value = v;
                hc.accepted += 1;
            }
            hc.history.push(hc.value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use rand_distr::{Distribution, StandardNormal};

    use super::*;
    use crate::es::testing::{neg_sq_dist, noisy_quadratic, noisy_quadratics, quadratic, C};
    use crate::rng::Rng;

    #[test]
    fn hill_climb_never_returns_a_value_below_the_start_evaluation() {
        // Heavy observation noise: acceptances are mostly noise, yet on the evaluations
        // made the result is never worse than the start.
        let noisy = |x: &[f32], rng: &mut Rng| {
            let eps: f64 = StandardNormal.sample(rng);
            quadratic(x, rng) + eps
        };
        let theta = [0.0f32; 5];
        for seed in 0..200 {
            let hc = hill_climb(&noisy, &theta, 0.1, 20, seed);
            assert!(hc.value >= hc.history[0], "seed {seed}");
            assert!(hc.history.windows(2).all(|w| w[1] >= w[0]));
            assert_eq!(hc.history.len(), 21);
            assert_eq!(hc.value, *hc.history.last().unwrap());
            if hc.accepted == 0 {
                assert_eq!(hc.theta, theta);
            }
        }
    }

    #[test]
    fn lockstep_hill_climbs_equal_independent_ones() {
        // Three problems with different objectives (shifted, noisy quadratics), starts and
        // seeds, climbed together: each equals its own hill_climb.
        let starts = [[0.0f32; 5], [0.5; 5], [-1.0; 5]];
        let shifts = [0.0, 2.0, -7.0];
        let seeds = [3, 14, 15];
        let refs: Vec<&[f32]> = starts.iter().map(|s| s.as_slice()).collect();
        let mut calls = 0;
        let together = hill_climb_lockstep(&refs, 0.2, 12, &seeds, |problems, points, rngs| {
            calls += 1;
            assert_eq!(problems, [0, 1, 2]);
            noisy_quadratics(&shifts, problems, points, rngs)
        });
        assert_eq!(calls, 13);
        for p in 0..3 {
            let alone = hill_climb(&noisy_quadratic(shifts[p]), &starts[p], 0.2, 12, seeds[p]);
            assert_eq!(together[p], alone, "problem {p}");
            assert!(alone.accepted > 0);
        }
    }

    #[test]
    fn hill_climb_improves_a_noiseless_quadratic() {
        // From θ = 0 (‖θ − c‖² = 5.875) a σ = 0.1 proposal improves with probability
        // ≈ 1/2 (the linear term dominates), so 20 rounds fail to improve w.p. ≈ 2⁻²⁰.
        let theta = [0.0f32; 5];
        for seed in 0..50 {
            let hc = hill_climb(&quadratic, &theta, 0.1, 20, seed);
            assert!(hc.accepted > 0, "seed {seed}");
            assert!(hc.value > hc.history[0]);
            // Noiseless: the reported value is the true value of the returned θ.
            assert_eq!(hc.value, neg_sq_dist(&hc.theta, &C));
        }
    }

    #[test]
    fn es_grad_step_moves_theta_by_alpha_times_the_estimate_toward_the_optimum() {
        let theta = [0.0f32; 5];
        let step = es_grad_step(
            &quadratic,
            &theta,
            0.05,
            0.1,
            20,
            EsEstimator::Antithetic,
            4,
            false,
        );
        for ((t1, t0), g) in step.theta.iter().zip(&theta).zip(&step.estimate.grad) {
            assert_eq!(*t1, t0 + 0.05 * g);
        }
        // Antithetic on a quadratic has no f(θ)/σ noise term, so 20 directions are
        // enough for one step to improve f.
        assert!(neg_sq_dist(&step.theta, &C) > neg_sq_dist(&theta, &C));
    }
}
