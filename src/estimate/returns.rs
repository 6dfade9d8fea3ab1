//! Discounted returns-to-go.

use super::{horizon, mask_tp1};

/// Discounted return-to-go of every step, computed backwards in `f64`:
///
/// ```text
/// G_t = r_t + γ · mask_{t+1} · G_{t+1}      (G_T = 0, mask_T = 0)
/// G_t = 0                                    where mask_t = 0
/// ```
///
/// Shapes: `r_t`, `mask_t` and the result are `[T, N]` time-major (index `t * n + i`).
/// An episode that ends — terminated or truncated at the horizon — is not
/// bootstrapped: its return stops at its last real step.
///
/// Panics unless `r_t.len() == mask_t.len()` and `n` divides it.
pub fn discounted_returns(r_t: &[f32], mask_t: &[f32], n: usize, gamma: f32) -> Vec<f32> {
    assert_eq!(
        r_t.len(),
        mask_t.len(),
        "r_t and mask_t should both be [T, N]"
    );
    let horizon = horizon(r_t.len(), n);
    let gamma = f64::from(gamma);
    let mut g_t = vec![0.0f32; r_t.len()];
    for i in 0..n {
        let mut g_tp1 = 0.0f64;
        for t in (0..horizon).rev() {
            let k = t * n + i;
            let g = if mask_t[k] > 0.0 {
                f64::from(r_t[k]) + gamma * mask_tp1(mask_t, t, i, n, horizon) * g_tp1
            } else {
                0.0
            };
            g_t[k] = g as f32;
            g_tp1 = g;
        }
    }
    g_t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two rows, T = 3, γ = 0.5; row 1 ends after step 1 (mask 1, 1, 0).
    /// Row 0: r = (1, 2, 4) → G_2 = 4, G_1 = 2 + 0.5·4 = 4, G_0 = 1 + 0.5·4 = 3.
    /// Row 1: r = (8, 16, 32) with step 2 masked → G_2 = 0, G_1 = 16, G_0 = 8 + 0.5·16 = 16.
    #[test]
    fn discounted_returns_match_hand_computation_with_a_short_row() {
        let n = 2;
        // time-major: [t0: row0,row1, t1: row0,row1, t2: row0,row1]
        let r_t = [1.0, 8.0, 2.0, 16.0, 4.0, 32.0];
        let mask_t = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0];
        let g_t = discounted_returns(&r_t, &mask_t, n, 0.5);
        assert_eq!(g_t, vec![3.0, 16.0, 4.0, 16.0, 4.0, 0.0]);
    }

    /// With γ = 1 the return at t = 0 is the plain sum of the row's real rewards.
    #[test]
    fn discounted_returns_with_gamma_one_sum_the_real_rewards() {
        let n = 3;
        let horizon = 5;
        let lengths = [5, 2, 0];
        let r_t: Vec<f32> = (0..horizon * n).map(|k| (k as f32) * 0.25 - 1.0).collect();
        let mask_t: Vec<f32> = (0..horizon * n)
            .map(|k| if k / n < lengths[k % n] { 1.0 } else { 0.0 })
            .collect();
        let g_t = discounted_returns(&r_t, &mask_t, n, 1.0);
        for (i, &len) in lengths.iter().enumerate() {
            let sum: f32 = (0..len).map(|t| r_t[t * n + i]).sum();
            assert!((g_t[i] - sum).abs() < 1e-6, "row {i}: {} vs {sum}", g_t[i]);
            for t in len..horizon {
                assert_eq!(g_t[t * n + i], 0.0, "masked entry ({t}, {i}) should be 0");
            }
        }
    }

    #[test]
    #[should_panic(expected = "r_t and mask_t should both be [T, N]")]
    fn discounted_returns_reject_mismatched_lengths() {
        discounted_returns(&[1.0, 2.0], &[1.0], 1, 0.9);
    }
}
