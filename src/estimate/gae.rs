//! Generalized advantage estimation and per-task advantage normalization.

use super::{horizon, mask_tp1};

/// Generalized advantage estimates (Schulman et al. 2016), computed backwards in `f64`:
///
/// ```text
/// δ_t = r_t + γ · mask_{t+1} · v_{t+1} − v_t
/// A_t = δ_t + γλ · mask_{t+1} · A_{t+1}      (v_T = 0, A_T = 0, mask_T = 0)
/// A_t = 0                                     where mask_t = 0
/// ```
///
/// Shapes: `r_t`, `v_t`, `mask_t` and the result are `[T, N]` time-major (index
/// `t * n + i`). The value after an episode's last real step is 0: episodes that end,
/// terminated or truncated at the horizon, are not bootstrapped. With λ = 1 the
/// advantage is `G_t − v_t` (see [`super::discounted_returns`]); with λ = 0 it is the
/// one-step TD error δ_t.
///
/// Panics unless the three slices have the same length and `n` divides it.
pub fn gae(
    r_t: &[f32],
    v_t: &[f32],
    mask_t: &[f32],
    n: usize,
    gamma: f32,
    lambda: f32,
) -> Vec<f32> {
    assert_eq!(r_t.len(), v_t.len(), "r_t and v_t should both be [T, N]");
    assert_eq!(
        r_t.len(),
        mask_t.len(),
        "r_t and mask_t should both be [T, N]"
    );
    let horizon = horizon(r_t.len(), n);
    let (gamma, lambda) = (f64::from(gamma), f64::from(lambda));
    let mut adv_t = vec![0.0f32; r_t.len()];
    for i in 0..n {
        let mut a_tp1 = 0.0f64;
        let mut v_tp1 = 0.0f64;
        for t in (0..horizon).rev() {
            let k = t * n + i;
            let v = f64::from(v_t[k]);
            let a = if mask_t[k] > 0.0 {
                let m_tp1 = mask_tp1(mask_t, t, i, n, horizon);
                let delta = f64::from(r_t[k]) + gamma * m_tp1 * v_tp1 - v;
                delta + gamma * lambda * m_tp1 * a_tp1
            } else {
                0.0
            };
            adv_t[k] = a as f32;
            a_tp1 = a;
            v_tp1 = v;
        }
    }
    adv_t
}

/// Per-task advantage normalization (ProMP `normalize_adv`), in `f64`:
///
/// ```text
/// Â = (A − mean_task(A)) / (std_task(A) + 1e-8)
/// ```
///
/// where mean and (population, `ddof = 0`) std run over the masked entries of the
/// task's rows only. Task `k` owns rows `k·rows_per_task .. (k+1)·rows_per_task`.
/// Shapes: `adv_t`, `mask_t` and the result are `[T, N]`. Unmasked entries are 0; a
/// task without masked entries is all 0.
///
/// Panics unless `adv_t.len() == mask_t.len()`, `n` divides it and `rows_per_task`
/// divides `n`.
pub fn normalize_per_task(
    adv_t: &[f32],
    mask_t: &[f32],
    n: usize,
    rows_per_task: usize,
) -> Vec<f32> {
    assert_eq!(
        adv_t.len(),
        mask_t.len(),
        "adv_t and mask_t should both be [T, N]"
    );
    let horizon = horizon(adv_t.len(), n);
    assert!(
        rows_per_task > 0 && n.is_multiple_of(rows_per_task),
        "rows_per_task = {rows_per_task} should be positive and divide n = {n}"
    );
    let mut out = vec![0.0f32; adv_t.len()];
    for first in (0..n).step_by(rows_per_task) {
        let masked: Vec<usize> = (0..horizon)
            .flat_map(|t| (first..first + rows_per_task).map(move |i| t * n + i))
            .filter(|&k| mask_t[k] > 0.0)
            .collect();
        if masked.is_empty() {
            continue;
        }
        let count = masked.len() as f64;
        let mean = masked.iter().map(|&k| f64::from(adv_t[k])).sum::<f64>() / count;
        let var = masked
            .iter()
            .map(|&k| (f64::from(adv_t[k]) - mean).powi(2))
            .sum::<f64>()
            / count;
        let scale = 1.0 / (var.sqrt() + 1e-8);
        for &k in &masked {
            out[k] = ((f64::from(adv_t[k]) - mean) * scale) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estimate::discounted_returns;
    use rand::{Rng as _, SeedableRng};

    /// Random `[T, N]` rewards, values and a prefix mask with row lengths spread over
    /// `0..=T` (row 0 runs the full horizon, one row is empty).
    fn random_batch(horizon: usize, n: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut rng = crate::rng::Rng::seed_from_u64(seed);
        let lengths: Vec<usize> = (0..n)
            .map(|i| match i {
                0 => horizon,
                1 => 0,
                _ => rng.random_range(1..=horizon),
            })
            .collect();
        let r_t = (0..horizon * n)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let v_t = (0..horizon * n)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let mask_t = (0..horizon * n)
            .map(|k| if k / n < lengths[k % n] { 1.0 } else { 0.0 })
            .collect();
        (r_t, v_t, mask_t)
    }

    /// Σ_k (γλ)^k δ_{t+k} telescopes to G_t − v_t at λ = 1 (the value terms cancel and
    /// the value after the last real step is 0).
    #[test]
    fn gae_with_lambda_one_equals_returns_minus_baseline() {
        let (horizon, n, gamma) = (40, 7, 0.97);
        let (r_t, v_t, mask_t) = random_batch(horizon, n, 1);
        let adv_t = gae(&r_t, &v_t, &mask_t, n, gamma, 1.0);
        let g_t = discounted_returns(&r_t, &mask_t, n, gamma);
        for k in 0..horizon * n {
            let expected = mask_t[k] * (g_t[k] - v_t[k]);
            assert!(
                (adv_t[k] - expected).abs() < 1e-5,
                "entry {k}: {} vs {expected}",
                adv_t[k]
            );
        }
    }

    /// At λ = 0 only δ_t survives: r_t + γ·mask_{t+1}·v_{t+1} − v_t.
    #[test]
    fn gae_with_lambda_zero_equals_one_step_td_error() {
        let (horizon, n, gamma) = (25, 5, 0.9);
        let (r_t, v_t, mask_t) = random_batch(horizon, n, 2);
        let adv_t = gae(&r_t, &v_t, &mask_t, n, gamma, 0.0);
        for t in 0..horizon {
            for i in 0..n {
                let k = t * n + i;
                let v_tp1 = if t + 1 < horizon {
                    mask_t[k + n] * v_t[k + n]
                } else {
                    0.0
                };
                let delta = mask_t[k] * (r_t[k] + gamma * v_tp1 - v_t[k]);
                assert!(
                    (adv_t[k] - delta).abs() < 1e-6,
                    "({t}, {i}): {} vs {delta}",
                    adv_t[k]
                );
            }
        }
    }

    /// Hand check, one row, T = 2, γ = 0.5, λ = 0.5: r = (1, 2), v = (4, 8).
    /// δ_1 = 2 − 8 = −6, δ_0 = 1 + 0.5·8 − 4 = 1; A_1 = −6, A_0 = 1 + 0.25·(−6) = −0.5.
    #[test]
    fn gae_matches_hand_computation() {
        let adv_t = gae(&[1.0, 2.0], &[4.0, 8.0], &[1.0, 1.0], 1, 0.5, 0.5);
        assert_eq!(adv_t, vec![-0.5, -6.0]);
    }

    #[test]
    fn normalization_gives_zero_mean_unit_std_per_task_over_masked_entries() {
        let (horizon, n, rows_per_task) = (30, 8, 4);
        let (mut adv_t, _, mut mask_t) = random_batch(horizon, n, 3);
        // give the two tasks very different scales and offsets
        for (k, a) in adv_t.iter_mut().enumerate() {
            if k % n >= rows_per_task {
                *a = 50.0 * *a + 7.0;
            }
        }
        // make sure task 1 has a short row too
        for t in 10..horizon {
            mask_t[t * n + 6] = 0.0;
        }
        let out = normalize_per_task(&adv_t, &mask_t, n, rows_per_task);
        for task in 0..n / rows_per_task {
            let vals: Vec<f64> = (0..horizon * n)
                .filter(|&k| (k % n) / rows_per_task == task && mask_t[k] > 0.0)
                .map(|k| f64::from(out[k]))
                .collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let std =
                (vals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / vals.len() as f64).sqrt();
            assert!(mean.abs() < 1e-6, "task {task}: mean {mean}");
            assert!((std - 1.0).abs() < 1e-6, "task {task}: std {std}");
        }
        for k in 0..horizon * n {
            if mask_t[k] == 0.0 {
                assert_eq!(out[k], 0.0, "unmasked entry {k} should be 0");
            }
        }
    }
}
