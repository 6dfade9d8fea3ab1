//! The Monte Carlo ES Hessian (ES-MAML Algorithm 4) and the first-order ES-MAML
//! direction `(I + αH) d₂` (Algorithm 5, line 9).
//!
//! ```text
//! ∇²f_σ(θ) = ( E[f(θ + σg) g gᵀ] − f_σ(θ) I ) / σ²                      (eq. 10)
//! Ĥ        = 1/(nσ²) Σ_i f(θ + σg_i) (g_i g_iᵀ − I)                      (Algorithm 4)
//! Ĥ v      = 1/(nσ²) Σ_i f(θ + σg_i) ((g_iᵀ v) g_i − v)
//! ```
//!
//! Algorithm 4's `(1/σ²)(H⁰ − v̄ I)` with `v̄ = (1/n) Σ f_i` is the same sum. The estimator
//! is unbiased but not translation-invariant: a constant `b` added to `f` adds the
//! zero-mean term `(b/(nσ²)) Σ (g_i g_iᵀ − I)`, so its variance grows with `(f/σ²)²`
//! (ES-MAML A.1.2 finds it "often harmful"). Subtracting from `f` a baseline estimated
//! independently of these evaluations keeps it unbiased and reduces that variance.
//!
//! Direction `i` and its evaluation generator are those of [`es_gradient`] with the
//! same seed, so an MC gradient and a Hessian from one seed share their evaluations
//! (use the `*_from_values` forms to evaluate once).
//!
//! [`es_gradient`]: super::es_gradient

use super::noise::{evaluate_perturbed, gaussian_perturbations};
use super::objective::Objective;

/// Dense ES Hessian estimate `Ĥ = 1/(nσ²) Σ_i f(θ + σg_i)(g_i g_iᵀ − I)` (Algorithm 4),
/// `d × d` row-major, from `n` Gaussian directions evaluated in parallel.
///
/// `O(n d²)` time and `d²` memory: only for small `d` (tests, low-dimensional policies);
/// use [`es_hessian_vector_product`] otherwise.
///
/// Panics unless `σ > 0` and `n ≥ 1`.
pub fn es_hessian<F>(f: &F, theta: &[f32], sigma: f32, n: usize, seed: u64) -> Vec<f32>
where
    F: Objective + ?Sized,
{
    assert!(n >= 1, "ES Hessian needs at least one direction");
    assert!(
        sigma > 0.0,
        "ES precision σ should be positive, got {sigma}"
    );
    let perturbations = gaussian_perturbations(theta.len(), n, seed, 0);
    let (values, _) = evaluate_perturbed(f, theta, &perturbations, sigma, &[1.0], seed, false);
    es_hessian_from_values(&perturbations, &values, sigma)
}

/// ES Hessian-vector product `Ĥv = 1/(nσ²) Σ_i f(θ + σg_i)((g_iᵀv) g_i − v)` without
/// forming `Ĥ`: `O(n d)` time and memory. Equal to [`es_hessian`]`(f, θ, σ, n, seed) · v`
/// for the same seed (same directions, same evaluations).
///
/// Panics unless `σ > 0`, `n ≥ 1` and `v` has `θ`'s length.
pub fn es_hessian_vector_product<F>(
    f: &F,
    theta: &[f32],
    v: &[f32],
    sigma: f32,
    n: usize,
    seed: u64,
) -> Vec<f32>
where
    F: Objective + ?Sized,
{
    assert!(n >= 1, "ES Hessian needs at least one direction");
    assert!(
        sigma > 0.0,
        "ES precision σ should be positive, got {sigma}"
    );
    assert_eq!(v.len(), theta.len(), "v should have θ's length");
    let perturbations = gaussian_perturbations(theta.len(), n, seed, 0);
    let (values, _) = evaluate_perturbed(f, theta, &perturbations, sigma, &[1.0], seed, false);
    es_hvp_from_values(&perturbations, &values, v, sigma)
}

/// `Ĥ = 1/(nσ²) Σ_i f_i (g_i g_iᵀ − I)` from given values `f_i = f(θ + σg_i)`, summed in
/// `f64`; `d × d` row-major.
///
/// Panics on a length mismatch or `σ ≤ 0`.
pub fn es_hessian_from_values(perturbations: &[Vec<f32>], values: &[f64], sigma: f32) -> Vec<f32> {
    assert!(
        sigma > 0.0,
        "ES precision σ should be positive, got {sigma}"
    );
    assert_eq!(perturbations.len(), values.len(), "one value per direction");
    let d = perturbations.first().map_or(0, Vec::len);
    let mut h = vec![0.0f64; d * d];
    for (g, &fi) in perturbations.iter().zip(values) {
        assert_eq!(g.len(), d, "all directions should have the same length");
        for (r, &gr) in g.iter().enumerate() {
            let row = &mut h[r * d..(r + 1) * d];
            let w = fi * f64::from(gr);
            for (hc, &gc) in row.iter_mut().zip(g) {
                *hc += w * f64::from(gc);
            }
            row[r] -= fi;
        }
    }
    let scale = perturbations.len() as f64 * f64::from(sigma).powi(2);
    h.into_iter().map(|x| (x / scale) as f32).collect()
}

/// `Ĥv = 1/(nσ²) Σ_i f_i ((g_iᵀv) g_i − v)` from given values `f_i = f(θ + σg_i)`,
/// summed in `f64`.
///
/// Panics on a length mismatch or `σ ≤ 0`.
pub fn es_hvp_from_values(
    perturbations: &[Vec<f32>],
    values: &[f64],
    v: &[f32],
    sigma: f32,
) -> Vec<f32> {
    assert!(
        sigma > 0.0,
        "ES precision σ should be positive, got {sigma}"
    );
    assert_eq!(perturbations.len(), values.len(), "one value per direction");
    let mut hv = vec![0.0f64; v.len()];
    let mut sum_f = 0.0f64;
    for (g, &fi) in perturbations.iter().zip(values) {
        assert_eq!(
            g.len(),
            v.len(),
            "directions and v should have the same length"
        );
        let gv: f64 = g
            .iter()
            .zip(v)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum();
        for (h, &gj) in hv.iter_mut().zip(g) {
            *h += fi * gv * f64::from(gj);
        }
        sum_f += fi;
    }
    let scale = perturbations.len() as f64 * f64::from(sigma).powi(2);
    hv.iter()
        .zip(v)
        .map(|(&h, &vj)| ((h - sum_f * f64::from(vj)) / scale) as f32)
        .collect()
}

/// First-order ES-MAML direction for one task (Algorithm 5, line 9):
///
/// ```text
/// (I + αĤ) d₂ = d₂ + α · (Ĥ d₂)
/// ```
///
/// with `d₂ = ESGrad(f, θ + α d₁)` the gradient at the adapted point and `h_d2 = Ĥ d₂`
/// from [`es_hessian_vector_product`] at θ (Ĥ is symmetric, so `d₂ᵀ(I + αĤ)` of eq. 9 is
/// the same vector). Passing `h_d2 = 0` gives ES-MAML's "FO-NoHessian" variant.
///
/// Panics unless both vectors have the same length.
pub fn first_order_meta_direction(d2: &[f32], h_d2: &[f32], alpha: f32) -> Vec<f32> {
    assert_eq!(
        d2.len(),
        h_d2.len(),
        "d₂ and Ĥd₂ should have the same length"
    );
    d2.iter()
        .zip(h_d2)
        .map(|(&g, &hg)| g + alpha * hg)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::es::testing::{quadratic, C};

    /// `∇²f_σ = −2I` exactly for `f = −‖θ − c‖²`. θ is 0.1 away from c: with a large
    /// `|f(θ)|` Algorithm 4's variance grows like `(f/σ²)²` (see the module docs) and a
    /// few thousand seeds could not resolve the mean.
    #[test]
    fn mean_dense_hessian_matches_minus_two_identity_within_standard_errors() {
        let (d, sigma, n, reps) = (3usize, 0.1f32, 20usize, 1000u64);
        let theta: Vec<f32> = C[..d]
            .iter()
            .zip([0.05f32, -0.1, 0.08])
            .map(|(c, e)| c + e)
            .collect();
        let estimates: Vec<Vec<f32>> = (0..reps)
            .map(|r| es_hessian(&quadratic, &theta, sigma, n, 500 + r))
            .collect();
        let r = reps as f64;
        for k in 0..d * d {
            let mean = estimates.iter().map(|h| f64::from(h[k])).sum::<f64>() / r;
            let var = estimates
                .iter()
                .map(|h| (f64::from(h[k]) - mean).powi(2))
                .sum::<f64>()
                / (r - 1.0);
            let se = (var / r).sqrt();
            let truth = if k % (d + 1) == 0 { -2.0 } else { 0.0 };
            // 4 SE: nine entries at a family-wise two-sided level below 0.1%.
            assert!(
                (mean - truth).abs() < 4.0 * se,
                "entry {k}: mean {mean} vs {truth} (SE {se})"
            );
            assert!(
                se < 0.2,
                "entry {k}: SE {se} too large for a meaningful check"
            );
        }
    }

    #[test]
    fn hessian_vector_product_equals_dense_hessian_times_v_for_the_same_seed() {
        let theta = [0.2f32, -0.3, 0.9, 1.5];
        let v = [1.0f32, -2.0, 0.5, 0.25];
        for seed in 0..5 {
            let h = es_hessian(&quadratic, &theta, 0.1, 30, seed);
            let hv = es_hessian_vector_product(&quadratic, &theta, &v, 0.1, 30, seed);
            for (r, &hv_r) in hv.iter().enumerate() {
                let dense: f64 = (0..4)
                    .map(|c| f64::from(h[r * 4 + c]) * f64::from(v[c]))
                    .sum();
                let scale: f64 = (0..4)
                    .map(|c| (f64::from(h[r * 4 + c]) * f64::from(v[c])).abs())
                    .sum();
                // Both are exact f64 sums rounded once to f32 (relative 6e-8 per entry).
                assert!(
                    (f64::from(hv_r) - dense).abs() <= 1e-6 * scale.max(1.0),
                    "seed {seed} row {r}: {hv_r} vs {dense}"
                );
            }
        }
    }

    #[test]
    fn first_order_direction_with_exact_hessian_scales_d2_by_one_minus_two_alpha() {
        // Ĥ = −2I ⇒ (I + αĤ) d₂ = (1 − 2α) d₂.
        let d2 = [1.0f32, -2.0, 4.0];
        let h_d2: Vec<f32> = d2.iter().map(|x| -2.0 * x).collect();
        let out = first_order_meta_direction(&d2, &h_d2, 0.05);
        for (o, x) in out.iter().zip(&d2) {
            assert!((o - 0.9 * x).abs() < 1e-6);
        }
    }
}
