//! A learned Gaussian search distribution N(μ, diag σ²) over a parameter vector, and its
//! score-function (NES) gradient when each fitness depends on K independent draws — the
//! outer loop of the ES + DDPG meta-learner (Shen et al., eqs. 7–10).
//!
//! ```text
//! worker i draws θ_ij = μ + σ ⊙ ε_ij, ε_ij ~ N(0, I), j = 1..K, and returns F_i
//!   ∇_μ J ≈ (1/M) Σ_i F_i Σ_j (θ_ij − μ) / σ²            = (1/M) Σ_i F_i Σ_j ε_ij / σ
//!   ∇_σ J ≈ (1/M) Σ_i F_i Σ_j ((θ_ij − μ)² − σ²) / σ³     = (1/M) Σ_i F_i Σ_j (ε_ij² − 1) / σ
//! ```
//!
//! (eq. 10; K = 1 is the critic's eq. 8–9). A worker keeps only the two sums
//! Σ_j ε_ij and Σ_j (ε_ij² − 1) ([`Draw`]), so the gradient needs no stored noise. The
//! learner parameterizes log σ, whose gradient is σ ⊙ ∇_σ J, so σ stays positive by
//! construction.

use rand_distr::{Distribution, StandardNormal};

use crate::rng::Rng;

/// The K draws of one worker and the sums its share of the gradient needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Draw {
    /// θ_j = μ + σ ⊙ ε_j, j = 1..K.
    pub thetas: Vec<Vec<f32>>,
    /// The draws' mean θ̄ = μ + σ ⊙ (Σ_j ε_j)/K, distributed N(μ, σ²/K).
    pub mean: Vec<f32>,
    /// Σ_j ε_j.
    pub eps_sum: Vec<f32>,
    /// Σ_j (ε_j² − 1).
    pub eps_sq_sum: Vec<f32>,
}

impl Draw {
    /// The draw without its parameter vectors: the sums (and mean) the gradient needs,
    /// once the draws have been used.
    pub fn sums_only(self) -> Draw {
        Draw {
            thetas: Vec::new(),
            ..self
        }
    }
}

/// K draws from N(μ, diag σ²), noise from `rng` only (coordinate-major within a draw).
pub fn draw(mu: &[f32], sigma: &[f32], k: usize, rng: &mut Rng) -> Draw {
    assert_eq!(mu.len(), sigma.len(), "μ and σ differ in size");
    assert!(k >= 1, "a worker draws at least one parameter vector");
    let d = mu.len();
    let (mut eps_sum, mut eps_sq_sum) = (vec![0.0f32; d], vec![0.0f32; d]);
    let thetas = (0..k)
        .map(|_| {
            (0..d)
                .map(|c| {
                    let e: f32 = StandardNormal.sample(rng);
                    eps_sum[c] += e;
                    eps_sq_sum[c] += e * e - 1.0;
                    mu[c] + sigma[c] * e
                })
                .collect()
        })
        .collect();
    let mean = (0..d)
        .map(|c| mu[c] + sigma[c] * eps_sum[c] / k as f32)
        .collect();
    Draw {
        thetas,
        mean,
        eps_sum,
        eps_sq_sum,
    }
}

/// The eq. 10 estimates `(∇_μ J, ∇_σ J)` from every worker's [`Draw`] sums and its
/// (shaped) fitness; sums in f64, workers in the given order.
pub fn search_gradient(sigma: &[f32], draws: &[&Draw], fitness: &[f64]) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(draws.len(), fitness.len(), "one fitness per worker");
    assert!(!draws.is_empty(), "at least one worker");
    let d = sigma.len();
    let (mut gm, mut gs) = (vec![0.0f64; d], vec![0.0f64; d]);
    for (w, &f) in draws.iter().zip(fitness) {
        for c in 0..d {
            gm[c] += f * w.eps_sum[c] as f64;
            gs[c] += f * w.eps_sq_sum[c] as f64;
        }
    }
    let m = draws.len() as f64;
    let scale = |g: Vec<f64>| -> Vec<f32> {
        g.iter()
            .zip(sigma)
            .map(|(g, &s)| (g / (m * s as f64)) as f32)
            .collect()
    };
    (scale(gm), scale(gs))
}

/// The gradient in log σ of an objective whose gradient in σ is `grad_sigma`:
/// `σ ⊙ ∇_σ J`.
pub fn log_sigma_gradient(sigma: &[f32], grad_sigma: &[f32]) -> Vec<f32> {
    sigma.iter().zip(grad_sigma).map(|(s, g)| s * g).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::substream;

    /// Mean and standard error of each coordinate of per-worker vectors.
    fn mean_se(rows: &[Vec<f32>]) -> (Vec<f64>, Vec<f64>) {
        let m = rows.len() as f64;
        let d = rows[0].len();
        let mean: Vec<f64> = (0..d)
            .map(|c| rows.iter().map(|r| r[c] as f64).sum::<f64>() / m)
            .collect();
        let se = (0..d)
            .map(|c| {
                let v = rows
                    .iter()
                    .map(|r| (r[c] as f64 - mean[c]).powi(2))
                    .sum::<f64>()
                    / (m - 1.0);
                (v / m).sqrt()
            })
            .collect();
        (mean, se)
    }

    /// Eq. 10 on quadratic fitness functions whose Gaussian smoothing has a closed form:
    /// every coordinate of the Monte-Carlo estimate (200 000 workers) lies within 3
    /// standard errors of the exact gradient in μ and in σ.
    ///
    /// * F = −Σ_c a_c (θ̄_c − t_c)², θ̄ ~ N(μ, σ²/K): E F = −Σ_c a_c ((μ_c − t_c)² + σ_c²/K),
    ///   ∇_μ = −2a(μ − t), ∇_σ = −2aσ/K.
    /// * F = −(1/K) Σ_j Σ_c a_c (θ_jc − t_c)²: E F = −Σ_c a_c ((μ_c − t_c)² + σ_c²),
    ///   ∇_μ = −2a(μ − t), ∇_σ = −2aσ.
    ///
    /// Twelve comparisons at 3 standard errors fail together by chance about once in 60
    /// seeds; the seed is fixed (8). Calibration over seeds 10–29 (240 z-scores): mean
    /// 0.10, standard deviation 0.93, 2 beyond 3 — the estimator is unbiased (seed 7 puts
    /// one coordinate at 3.2).
    #[test]
    fn eq10_gradient_matches_the_closed_form_of_gaussian_smoothing() {
        // Targets near μ keep |F| small, so 200 000 workers pin the estimate down to a few
        // per cent of each exact value (checked below).
        let mu = [0.3f32, -0.5, 1.0];
        let sigma = [0.2f32, 0.3, 0.25];
        let a = [1.0f64, 2.0, 0.5];
        let t = [0.1f64, -0.3, 1.2];
        let k = 5;
        let m = 200_000;
        let of_mean = |dr: &Draw| -> f64 {
            -(0..3)
                .map(|c| a[c] * (dr.mean[c] as f64 - t[c]).powi(2))
                .sum::<f64>()
        };
        let of_each = |dr: &Draw| -> f64 {
            -dr.thetas
                .iter()
                .map(|th| {
                    (0..3)
                        .map(|c| a[c] * (th[c] as f64 - t[c]).powi(2))
                        .sum::<f64>()
                })
                .sum::<f64>()
                / k as f64
        };
        type Fitness<'a> = &'a dyn Fn(&Draw) -> f64;
        let cases: [(Fitness, f64); 2] = [(&of_mean, 1.0 / k as f64), (&of_each, 1.0)];
        for (case, (f, sigma_factor)) in cases.into_iter().enumerate() {
            let (mut gm, mut gs) = (Vec::new(), Vec::new());
            for i in 0..m {
                let dr = draw(&mu, &sigma, k, &mut substream(8, "eq10", i));
                // One worker's term of the estimate: the estimate with M = 1.
                let (a_mu, a_sigma) = search_gradient(&sigma, &[&dr], &[f(&dr)]);
                gm.push(a_mu);
                gs.push(a_sigma);
            }
            let (em, sem) = mean_se(&gm);
            let (es, ses) = mean_se(&gs);
            // The estimate of all M workers at once is the mean of their terms.
            for c in 0..3 {
                let want_mu = -2.0 * a[c] * (mu[c] as f64 - t[c]);
                let want_sigma = -2.0 * a[c] * sigma[c] as f64 * sigma_factor;
                assert!(
                    (em[c] - want_mu).abs() < 3.0 * sem[c],
                    "case {case} ∇μ[{c}]: {} vs {want_mu} (se {})",
                    em[c],
                    sem[c]
                );
                assert!(
                    (es[c] - want_sigma).abs() < 3.0 * ses[c],
                    "case {case} ∇σ[{c}]: {} vs {want_sigma} (se {})",
                    es[c],
                    ses[c]
                );
                // The standard errors are small enough for the check to mean something.
                assert!(sem[c] < 0.1 * want_mu.abs(), "se {} of ∇μ[{c}]", sem[c]);
                assert!(ses[c] < 0.2 * want_sigma.abs(), "se {} of ∇σ[{c}]", ses[c]);
            }
        }
    }

    #[test]
    fn all_workers_at_once_equal_the_mean_of_single_worker_estimates() {
        let (mu, sigma) = ([0.1f32, 0.2], [0.3f32, 0.4]);
        let draws: Vec<Draw> = (0..4)
            .map(|i| draw(&mu, &sigma, 3, &mut substream(1, "w", i)))
            .collect();
        let f = [1.0, -2.0, 0.5, 3.0];
        let refs: Vec<&Draw> = draws.iter().collect();
        let (gm, gs) = search_gradient(&sigma, &refs, &f);
        for c in 0..2 {
            let (mut m, mut s) = (0.0f64, 0.0f64);
            for (dr, &fi) in draws.iter().zip(&f) {
                let (a, b) = search_gradient(&sigma, &[dr], &[fi]);
                m += a[c] as f64 / 4.0;
                s += b[c] as f64 / 4.0;
            }
            assert!((gm[c] as f64 - m).abs() < 1e-6 && (gs[c] as f64 - s).abs() < 1e-6);
        }
        // The draws' mean is the mean of the draws; σ ⊙ ∇σ is the log-σ gradient.
        for dr in &draws {
            for c in 0..2 {
                let m = dr.thetas.iter().map(|t| t[c]).sum::<f32>() / 3.0;
                assert!((dr.mean[c] - m).abs() < 1e-6);
            }
        }
        assert_eq!(
            log_sigma_gradient(&[2.0, 0.5], &[3.0, -4.0]),
            vec![6.0, -2.0]
        );
    }
}
