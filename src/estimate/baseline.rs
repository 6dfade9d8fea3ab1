//! The linear feature baseline of rllab / ProMP, fitted per task by ridge regression.
//!
//! Reference: rllab `baselines/linear_feature_baseline.py`, reused unchanged by ProMP
//! (`meta_policy_search/baselines/linear_baseline.py`) and garage. Per real step
//! `(t, i)` the features are
//!
//! ```text
//! x = [ clip(o, −10, 10),  clip(o, −10, 10)²,  t̃,  t̃²,  t̃³,  1 ]     t̃ = t / 100
//! ```
//!
//! (`2·obs_dim + 4` numbers; the square is elementwise). `t` is the step index
//! *within the episode*: every row starts at `t = 0`, so it is the time index of the
//! `[T, N]` layout — not the position in the flattened batch, which is cherry's bug.
//! The weights solve the ridge system over the real (masked) steps
//!
//! ```text
//! (Fᵀ F + reg · I) w = Fᵀ G
//! ```
//!
//! in `f64` by Cholesky; on failure (a non-positive pivot or a non-finite solution)
//! `reg` is multiplied by 10 and the solve retried, at most 5 tries in all (rllab's
//! `reg_coeff *= 10` loop, which starts at `1e-5`).
//!
//! Deviation: rllab solves with `np.linalg.lstsq` and only retries on NaN; a Cholesky
//! solve also fails on a numerically singular matrix (pivot ≤ d·ε·max diagonal), and
//! then the larger ridge makes it solvable. After 5 failed tries rllab keeps the NaN
//! weights; here [`LinearFeatureBaseline::fit`] returns an error.

use std::ops::Range;

use super::horizon;
use crate::{Error, Result};

/// Initial ridge coefficient (rllab / ProMP `reg_coeff`).
pub const DEFAULT_REG_COEFF: f64 = 1e-5;

/// Number of solves tried, multiplying the ridge by 10 after each failure.
const MAX_TRIES: usize = 5;

/// Observations are clipped to `[−OBS_CLIP, OBS_CLIP]` before featurization.
const OBS_CLIP: f64 = 10.0;

/// Number of features for observations of size `obs_dim`: `2·obs_dim + 4`.
pub fn feature_dim(obs_dim: usize) -> usize {
    2 * obs_dim + 4
}

/// Writes the features of one step into `x` (`[2·obs_dim + 4]`): `[o_c, o_c², t̃, t̃², t̃³, 1]`
/// with `o_c = clip(o, −10, 10)` and `t̃ = step / 100`.
fn write_features(o: &[f32], step: usize, x: &mut [f64]) {
    let d = o.len();
    debug_assert_eq!(x.len(), feature_dim(d));
    for (j, &o_j) in o.iter().enumerate() {
        let c = f64::from(o_j).clamp(-OBS_CLIP, OBS_CLIP);
        x[j] = c;
        x[d + j] = c * c;
    }
    let tt = step as f64 / 100.0;
    x[2 * d..].copy_from_slice(&[tt, tt * tt, tt * tt * tt, 1.0]);
}

/// Features of one observation `o` (`[obs_dim]`) at step `step` of its episode:
///
/// ```text
/// [clip(o, −10, 10), clip(o, −10, 10)², t̃, t̃², t̃³, 1],   t̃ = step / 100
/// ```
///
/// Returns `[2·obs_dim + 4]` numbers.
pub fn linear_features(o: &[f32], step: usize) -> Vec<f64> {
    let mut x = vec![0.0; feature_dim(o.len())];
    write_features(o, step, &mut x);
    x
}

/// Checks `obs_t` (`[T, N, obs_dim]`) against `mask_t` (`[T, N]`) and returns `T`.
fn check_shapes(obs_t: &[f32], mask_t: &[f32], n: usize, obs_dim: usize) -> usize {
    let horizon = horizon(mask_t.len(), n);
    assert!(obs_dim > 0, "obs_dim should be positive");
    assert_eq!(
        obs_t.len(),
        mask_t.len() * obs_dim,
        "obs_t should be [T, N, obs_dim] = [{horizon}, {n}, {obs_dim}]"
    );
    horizon
}

/// The normal equations `(FᵀF, FᵀG)` (`[d, d]` row-major and `[d]`) over the masked
/// steps of rows `rows`.
fn normal_equations(
    obs_t: &[f32],
    g_t: &[f32],
    mask_t: &[f32],
    n: usize,
    obs_dim: usize,
    rows: Range<usize>,
) -> (Vec<f64>, Vec<f64>) {
    let d = feature_dim(obs_dim);
    let (mut ftf, mut ftg) = (vec![0.0; d * d], vec![0.0; d]);
    let mut x = vec![0.0; d];
    for t in 0..mask_t.len() / n {
        for i in rows.clone() {
            let k = t * n + i;
            if mask_t[k] <= 0.0 {
                continue;
            }
            write_features(&obs_t[k * obs_dim..(k + 1) * obs_dim], t, &mut x);
            let g = f64::from(g_t[k]);
            for a in 0..d {
                ftg[a] += x[a] * g;
                for b in 0..=a {
                    ftf[a * d + b] += x[a] * x[b];
                }
            }
        }
    }
    for a in 0..d {
        for b in 0..a {
            ftf[b * d + a] = ftf[a * d + b];
        }
    }
    (ftf, ftg)
}

/// Solves `A x = b` for symmetric `A` (`[d, d]` row-major, `b`: `[d]`) by Cholesky
/// `A = L Lᵀ`, forward then back substitution. `None` when `A` is not numerically
/// positive definite (a pivot ≤ `d·ε·max_j A_jj`, or non-finite) or `x` is not finite.
fn cholesky_solve(a: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    let d = b.len();
    assert_eq!(a.len(), d * d, "A should be [d, d] for b of length {d}");
    let max_diag = (0..d).map(|j| a[j * d + j]).fold(0.0f64, f64::max);
    let tol = d as f64 * f64::EPSILON * max_diag;
    let mut l = vec![0.0; d * d];
    for j in 0..d {
        let pivot = a[j * d + j] - (0..j).map(|k| l[j * d + k] * l[j * d + k]).sum::<f64>();
        if !(pivot > tol && pivot.is_finite()) {
            return None;
        }
        let l_jj = pivot.sqrt();
        l[j * d + j] = l_jj;
        for r in j + 1..d {
            let s = a[r * d + j] - (0..j).map(|k| l[r * d + k] * l[j * d + k]).sum::<f64>();
            l[r * d + j] = s / l_jj;
        }
    }
    let mut y = vec![0.0; d];
    for r in 0..d {
        y[r] = (b[r] - (0..r).map(|k| l[r * d + k] * y[k]).sum::<f64>()) / l[r * d + r];
    }
    let mut x = vec![0.0; d];
    for r in (0..d).rev() {
        x[r] = (y[r] - (r + 1..d).map(|k| l[k * d + r] * x[k]).sum::<f64>()) / l[r * d + r];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Solves `(FᵀF + reg·I) w = FᵀG`, multiplying `reg` by 10 after each failed solve, at
/// most [`MAX_TRIES`] times. Returns `(w, reg used, tries)`.
fn solve_ridge_with_retries(
    ftf: &[f64],
    ftg: &[f64],
    reg_coeff: f64,
) -> Result<(Vec<f64>, f64, usize)> {
    let d = ftg.len();
    let mut reg = reg_coeff;
    for tries in 1..=MAX_TRIES {
        let mut a = ftf.to_vec();
        for j in 0..d {
            a[j * d + j] += reg;
        }
        if let Some(w) = cholesky_solve(&a, ftg) {
            return Ok((w, reg, tries));
        }
        reg *= 10.0;
    }
    Err(Error::Other(format!(
        "linear feature baseline: ridge system not solvable after {MAX_TRIES} tries \
         (reg_coeff {reg_coeff:e} up to {:e}); are observations or returns non-finite?",
        reg / 10.0
    )))
}

/// The rllab / ProMP linear feature baseline: `v̂(o, t) = wᵀ x(o, t)` with the features of
/// [`linear_features`]. A fitted value; refit it (per task) on each new batch.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearFeatureBaseline {
    /// Weights `w`, `[2·obs_dim + 4]`.
    weights: Vec<f64>,
    /// Observation size the weights were fitted for.
    obs_dim: usize,
    /// Ridge coefficient of the successful solve.
    reg_coeff: f64,
    /// Number of solves it took (1 when the first ridge sufficed).
    tries: usize,
}

impl LinearFeatureBaseline {
    /// Fits the weights to the returns of all `n` rows by ridge regression over the real
    /// steps: `(FᵀF + reg·I) w = Fᵀ G` in `f64`, starting at `reg = reg_coeff` (rllab:
    /// [`DEFAULT_REG_COEFF`]) and retrying with `reg × 10` on failure, 5 tries in all.
    /// A start of 0 cannot grow; use a positive one.
    ///
    /// Shapes: `obs_t` is `[T, N, obs_dim]`, `g_t` and `mask_t` are `[T, N]`. Entries
    /// where `mask_t` is 0 are ignored, whatever they hold.
    ///
    /// Errors with [`Error::Other`] when all 5 solves fail (non-finite data). Panics on
    /// inconsistent shapes.
    pub fn fit(
        obs_t: &[f32],
        g_t: &[f32],
        mask_t: &[f32],
        n: usize,
        obs_dim: usize,
        reg_coeff: f64,
    ) -> Result<Self> {
        check_shapes(obs_t, mask_t, n, obs_dim);
        assert_eq!(
            g_t.len(),
            mask_t.len(),
            "g_t and mask_t should both be [T, N]"
        );
        Self::fit_rows(obs_t, g_t, mask_t, n, obs_dim, 0..n, reg_coeff)
    }

    /// [`Self::fit`] on the rows `rows` only (shapes already checked).
    fn fit_rows(
        obs_t: &[f32],
        g_t: &[f32],
        mask_t: &[f32],
        n: usize,
        obs_dim: usize,
        rows: Range<usize>,
        reg_coeff: f64,
    ) -> Result<Self> {
        let (ftf, ftg) = normal_equations(obs_t, g_t, mask_t, n, obs_dim, rows);
        let (weights, reg_coeff, tries) = solve_ridge_with_retries(&ftf, &ftg, reg_coeff)?;
        Ok(Self {
            weights,
            obs_dim,
            reg_coeff,
            tries,
        })
    }

    /// Predicted values `v̂_t = wᵀ x(o_t, t)`, `[T, N]`, 0 where `mask_t` is 0.
    ///
    /// Shapes: `obs_t` is `[T, N, obs_dim]`, `mask_t` is `[T, N]`; panics unless
    /// `obs_dim` is the one the baseline was fitted for.
    pub fn predict(&self, obs_t: &[f32], mask_t: &[f32], n: usize, obs_dim: usize) -> Vec<f32> {
        check_shapes(obs_t, mask_t, n, obs_dim);
        let mut v_t = vec![0.0; mask_t.len()];
        self.predict_rows(obs_t, mask_t, n, obs_dim, 0..n, &mut v_t);
        v_t
    }

    /// Writes the predictions for rows `rows` into `v_t` (`[T, N]`), leaving the other
    /// rows and the unmasked entries untouched.
    fn predict_rows(
        &self,
        obs_t: &[f32],
        mask_t: &[f32],
        n: usize,
        obs_dim: usize,
        rows: Range<usize>,
        v_t: &mut [f32],
    ) {
        assert_eq!(
            obs_dim, self.obs_dim,
            "predict should get the obs_dim the baseline was fitted for"
        );
        let mut x = vec![0.0; feature_dim(obs_dim)];
        for t in 0..mask_t.len() / n {
            for i in rows.clone() {
                let k = t * n + i;
                if mask_t[k] > 0.0 {
                    write_features(&obs_t[k * obs_dim..(k + 1) * obs_dim], t, &mut x);
                    let v: f64 = x.iter().zip(&self.weights).map(|(x, w)| x * w).sum();
                    v_t[k] = v as f32;
                }
            }
        }
    }

    /// The fitted weights `w`, `[2·obs_dim + 4]`, in feature order `[o, o², t̃, t̃², t̃³, 1]`.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The ridge coefficient of the successful solve (`reg_coeff · 10^(tries − 1)`).
    pub fn reg_coeff(&self) -> f64 {
        self.reg_coeff
    }

    /// How many solves the fit took (1 unless the ridge had to grow).
    pub fn tries(&self) -> usize {
        self.tries
    }
}

/// Fits one [`LinearFeatureBaseline`] per task (ProMP fits per task, on that task's
/// discounted returns) with the default ridge [`DEFAULT_REG_COEFF`] and returns each
/// task's predictions on its own rows: `v̂_t`, `[T, N]`, 0 where `mask_t` is 0.
///
/// Task `k` owns rows `k·rows_per_task .. (k+1)·rows_per_task`. Shapes: `obs_t` is
/// `[T, N, obs_dim]`, `g_t` and `mask_t` are `[T, N]`.
///
/// Errors when a task's fit fails (see [`LinearFeatureBaseline::fit`]); panics on
/// inconsistent shapes or when `rows_per_task` does not divide `n`.
pub fn fit_per_task(
    obs_t: &[f32],
    g_t: &[f32],
    mask_t: &[f32],
    n: usize,
    obs_dim: usize,
    rows_per_task: usize,
) -> Result<Vec<f32>> {
    check_shapes(obs_t, mask_t, n, obs_dim);
    assert_eq!(
        g_t.len(),
        mask_t.len(),
        "g_t and mask_t should both be [T, N]"
    );
    assert!(
        rows_per_task > 0 && n.is_multiple_of(rows_per_task),
        "rows_per_task = {rows_per_task} should be positive and divide n = {n}"
    );
    let mut v_t = vec![0.0; mask_t.len()];
    for first in (0..n).step_by(rows_per_task) {
        let rows = first..first + rows_per_task;
        let baseline = LinearFeatureBaseline::fit_rows(
            obs_t,
            g_t,
            mask_t,
            n,
            obs_dim,
            rows.clone(),
            DEFAULT_REG_COEFF,
        )?;
        baseline.predict_rows(obs_t, mask_t, n, obs_dim, rows, &mut v_t);
    }
    Ok(v_t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng as _, SeedableRng};

    /// A random batch: observations `[T, N, obs_dim]` uniform in `±obs_scale`, a prefix
    /// mask with row lengths in `1..=T` (row 0 full), and random returns.
    struct Batch {
        obs_t: Vec<f32>,
        g_t: Vec<f32>,
        mask_t: Vec<f32>,
        horizon: usize,
        n: usize,
        obs_dim: usize,
    }

    fn random_batch(horizon: usize, n: usize, obs_dim: usize, obs_scale: f32, seed: u64) -> Batch {
        let mut rng = crate::rng::Rng::seed_from_u64(seed);
        let lengths: Vec<usize> = (0..n)
            .map(|i| {
                if i == 0 {
                    horizon
                } else {
                    rng.random_range(1..=horizon)
                }
            })
            .collect();
        Batch {
            obs_t: (0..horizon * n * obs_dim)
                .map(|_| rng.random_range(-obs_scale..obs_scale))
                .collect(),
            g_t: (0..horizon * n)
                .map(|_| rng.random_range(-5.0..5.0))
                .collect(),
            mask_t: (0..horizon * n)
                .map(|k| if k / n < lengths[k % n] { 1.0 } else { 0.0 })
                .collect(),
            horizon,
            n,
            obs_dim,
        }
    }

    /// The feature matrix built by hand, independently of `write_features`: one row per
    /// masked step in (t, i) order, `[clip(o), clip(o)², t/100, (t/100)², (t/100)³, 1]`.
    fn feature_matrix(b: &Batch) -> Vec<Vec<f64>> {
        let mut f = Vec::new();
        for t in 0..b.horizon {
            for i in 0..b.n {
                if b.mask_t[t * b.n + i] == 0.0 {
                    continue;
                }
                let o = &b.obs_t[(t * b.n + i) * b.obs_dim..][..b.obs_dim];
                let clipped: Vec<f64> =
                    o.iter().map(|&v| f64::from(v).clamp(-10.0, 10.0)).collect();
                let mut row = clipped.clone();
                row.extend(clipped.iter().map(|c| c.powi(2)));
                let tt = t as f64 / 100.0;
                row.extend([tt, tt.powi(2), tt.powi(3), 1.0]);
                f.push(row);
            }
        }
        f
    }

    /// Gaussian elimination with partial pivoting on a dense copy of `[A | b]`.
    fn gauss_solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
        let d = b.len();
        for c in 0..d {
            let p = (c..d)
                .max_by(|&r, &s| a[r][c].abs().total_cmp(&a[s][c].abs()))
                .unwrap();
            a.swap(c, p);
            b.swap(c, p);
            let (upper, lower) = a.split_at_mut(c + 1);
            let (pivot_row, b_c) = (&upper[c], b[c]);
            for (row, b_r) in lower.iter_mut().zip(&mut b[c + 1..]) {
                let f = row[c] / pivot_row[c];
                for (a_rk, a_ck) in row[c..].iter_mut().zip(&pivot_row[c..]) {
                    *a_rk -= f * a_ck;
                }
                *b_r -= f * b_c;
            }
        }
        let mut x = vec![0.0; d];
        for r in (0..d).rev() {
            x[r] = (b[r] - (r + 1..d).map(|k| a[r][k] * x[k]).sum::<f64>()) / a[r][r];
        }
        x
    }

    /// `F w` for each masked step, scattered back to `[T, N]` (0 elsewhere).
    fn linear_targets(b: &Batch, w: &[f64]) -> Vec<f32> {
        let mut rows = feature_matrix(b).into_iter();
        (0..b.horizon * b.n)
            .map(|k| {
                if b.mask_t[k] == 0.0 {
                    return 0.0;
                }
                let x = rows.next().unwrap();
                x.iter().zip(w).map(|(x, w)| x * w).sum::<f64>() as f32
            })
            .collect()
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    /// Largest prediction error relative to the largest target.
    fn max_rel_error(v_t: &[f32], g_t: &[f32]) -> f32 {
        max_abs_diff(v_t, g_t) / g_t.iter().fold(0.0f32, |m, g| m.max(g.abs()))
    }

    /// t̃ = t/100 for t = 0..T (the episode's own step, not a batch position), and an
    /// observation of 25 (−25) gives features 10 (−10) and 100.
    #[test]
    fn features_use_per_episode_time_and_clip_observations_at_ten() {
        for t in 0..=200 {
            let x = linear_features(&[25.0, -3.0, -25.0], t);
            let tt = t as f64 / 100.0;
            assert_eq!(x.len(), feature_dim(3));
            assert_eq!(&x[..6], &[10.0, -3.0, -10.0, 100.0, 9.0, 100.0]);
            assert_eq!(&x[6..], &[tt, tt * tt, tt * tt * tt, 1.0]);
        }
    }

    /// The Cholesky solve agrees with Gaussian elimination on the explicitly built
    /// `(FᵀF + 1e-5·I) w = FᵀG`; 300 masked steps of 8 rows with ragged lengths.
    #[test]
    fn baseline_weights_equal_closed_form_ridge_solution() {
        let b = random_batch(50, 8, 3, 12.0, 11); // |o| up to 12: some clipping
        let fit = LinearFeatureBaseline::fit(
            &b.obs_t,
            &b.g_t,
            &b.mask_t,
            b.n,
            b.obs_dim,
            DEFAULT_REG_COEFF,
        )
        .unwrap();
        assert_eq!(fit.tries(), 1);
        assert_eq!(fit.reg_coeff(), DEFAULT_REG_COEFF);

        let f = feature_matrix(&b);
        let g: Vec<f64> = (0..b.horizon * b.n)
            .filter(|&k| b.mask_t[k] > 0.0)
            .map(|k| f64::from(b.g_t[k]))
            .collect();
        let d = feature_dim(b.obs_dim);
        let a: Vec<Vec<f64>> = (0..d)
            .map(|r| {
                (0..d)
                    .map(|c| {
                        f.iter().map(|x| x[r] * x[c]).sum::<f64>()
                            + if r == c { DEFAULT_REG_COEFF } else { 0.0 }
                    })
                    .collect()
            })
            .collect();
        let rhs: Vec<f64> = (0..d)
            .map(|r| f.iter().zip(&g).map(|(x, g)| x[r] * g).sum())
            .collect();
        let w_ref = gauss_solve(a, rhs);

        let norm = w_ref.iter().map(|w| w * w).sum::<f64>().sqrt();
        let err = fit
            .weights()
            .iter()
            .zip(&w_ref)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(
            err / norm < 1e-9,
            "relative error {:e}: {:?} vs {w_ref:?}",
            err / norm,
            fit.weights()
        );
    }

    /// Targets that are an exact linear function of the features are reproduced up to
    /// the small bias of the 1e-5 ridge.
    #[test]
    fn baseline_exactly_fits_a_linear_function_of_the_features() {
        let b = random_batch(40, 6, 2, 15.0, 12);
        let w_true = [0.5, -1.0, 0.03, -0.02, 4.0, -3.0, 2.0, 1.5];
        let g_t = linear_targets(&b, &w_true);
        let fit = LinearFeatureBaseline::fit(
            &b.obs_t,
            &g_t,
            &b.mask_t,
            b.n,
            b.obs_dim,
            DEFAULT_REG_COEFF,
        )
        .unwrap();
        let v_t = fit.predict(&b.obs_t, &b.mask_t, b.n, b.obs_dim);
        assert!(
            max_rel_error(&v_t, &g_t) < 1e-4,
            "relative error {}",
            max_rel_error(&v_t, &g_t)
        );
    }

    /// Whatever sits outside the mask (here NaN) neither enters the fit nor the prediction.
    #[test]
    fn baseline_ignores_entries_outside_the_mask() {
        let b = random_batch(20, 5, 2, 3.0, 13);
        let clean = LinearFeatureBaseline::fit(
            &b.obs_t,
            &b.g_t,
            &b.mask_t,
            b.n,
            b.obs_dim,
            DEFAULT_REG_COEFF,
        )
        .unwrap();
        let (mut obs_t, mut g_t) = (b.obs_t.clone(), b.g_t.clone());
        for k in (0..b.horizon * b.n).filter(|&k| b.mask_t[k] == 0.0) {
            g_t[k] = f32::NAN;
            obs_t[k * b.obs_dim..(k + 1) * b.obs_dim].fill(f32::NAN);
        }
        let dirty =
            LinearFeatureBaseline::fit(&obs_t, &g_t, &b.mask_t, b.n, b.obs_dim, DEFAULT_REG_COEFF)
                .unwrap();
        assert_eq!(clean, dirty);
        let v_t = dirty.predict(&obs_t, &b.mask_t, b.n, b.obs_dim);
        for (v, m) in v_t.iter().zip(&b.mask_t) {
            assert!(v.is_finite());
            if *m == 0.0 {
                assert_eq!(*v, 0.0);
            }
        }
    }

    /// A batch whose F is rank deficient: observation 0 is binary (so the o and o²
    /// columns are identical) and observation 1 is always 0 (two zero columns).
    fn rank_deficient_batch() -> Batch {
        let mut b = random_batch(100, 4, 2, 1.0, 14);
        for (k, o) in b.obs_t.iter_mut().enumerate() {
            *o = if k % 2 == 1 {
                0.0
            } else if *o > 0.0 {
                1.0
            } else {
                0.0
            };
        }
        b
    }

    /// FᵀF is singular, yet the default ridge makes it positive definite: one solve,
    /// finite weights, and a target in the span of F is still reproduced.
    #[test]
    fn baseline_with_duplicate_and_zero_feature_columns_still_solves_thanks_to_ridge() {
        let b = rank_deficient_batch();
        let g_t = linear_targets(&b, &[2.0, 1.0, 0.0, 0.0, 3.0, -1.0, 0.5, -2.0]);
        let fit = LinearFeatureBaseline::fit(
            &b.obs_t,
            &g_t,
            &b.mask_t,
            b.n,
            b.obs_dim,
            DEFAULT_REG_COEFF,
        )
        .unwrap();
        assert_eq!(fit.tries(), 1);
        assert!(fit.weights().iter().all(|w| w.is_finite()));
        // ridge splits the weight of the duplicate pair evenly (minimum-norm) and zeroes the
        // weights of the zero columns
        assert!(
            (fit.weights()[0] - fit.weights()[2]).abs() < 1e-6,
            "{:?}",
            fit.weights()
        );
        assert_eq!((fit.weights()[1], fit.weights()[3]), (0.0, 0.0));
        let v_t = fit.predict(&b.obs_t, &b.mask_t, b.n, b.obs_dim);
        assert!(
            max_rel_error(&v_t, &g_t) < 1e-4,
            "relative error {}",
            max_rel_error(&v_t, &g_t)
        );
    }

    /// Started from a ridge (1e-15) too small to lift the zero pivots of the zero and
    /// duplicate columns (≈ reg and ≈ 2·reg) above the round-off level d·ε·max diag
    /// (≈ 4e-13 here: 8 features, ≈ 250 real steps), the Cholesky solve fails and the
    /// ridge grows ×10 per try until it succeeds (at 1e-12, the 4th try).
    #[test]
    fn baseline_retries_with_ten_times_the_ridge_when_the_system_is_singular() {
        let b = rank_deficient_batch();
        let g_t = linear_targets(&b, &[2.0, 1.0, 0.0, 0.0, 3.0, -1.0, 0.5, -2.0]);
        let start = 1e-15;
        let fit =
            LinearFeatureBaseline::fit(&b.obs_t, &g_t, &b.mask_t, b.n, b.obs_dim, start).unwrap();
        assert_eq!(fit.tries(), 4, "1e-15, 1e-14 and 1e-13 should have failed");
        let expected_reg = start * 10f64.powi(3);
        assert!(
            (fit.reg_coeff() / expected_reg - 1.0).abs() < 1e-12,
            "{} vs {expected_reg}",
            fit.reg_coeff()
        );
        assert!(fit.weights().iter().all(|w| w.is_finite()));
        let v_t = fit.predict(&b.obs_t, &b.mask_t, b.n, b.obs_dim);
        assert!(
            max_rel_error(&v_t, &g_t) < 1e-4,
            "relative error {}",
            max_rel_error(&v_t, &g_t)
        );
    }

    /// A ridge of 0 cannot grow, and a non-finite return poisons every try: both end in an
    /// error after 5 tries instead of NaN weights.
    #[test]
    fn baseline_fit_errors_when_no_ridge_makes_the_system_solvable() {
        let b = rank_deficient_batch();
        let from_zero =
            LinearFeatureBaseline::fit(&b.obs_t, &b.g_t, &b.mask_t, b.n, b.obs_dim, 0.0);
        assert!(matches!(from_zero, Err(Error::Other(_))), "{from_zero:?}");

        let b = random_batch(10, 3, 2, 1.0, 15);
        let mut g_t = b.g_t.clone();
        g_t[0] = f32::INFINITY; // row 0 is never masked out
        let poisoned = LinearFeatureBaseline::fit(
            &b.obs_t,
            &g_t,
            &b.mask_t,
            b.n,
            b.obs_dim,
            DEFAULT_REG_COEFF,
        );
        assert!(matches!(poisoned, Err(Error::Other(_))), "{poisoned:?}");
    }

    /// Two tasks of 3 rows whose returns follow different linear functions of the
    /// features: one fit per task reproduces both, where a single fit could not.
    #[test]
    fn fit_per_task_fits_two_tasks_with_different_linear_targets_exactly() {
        let b = random_batch(30, 6, 2, 5.0, 16);
        let targets = [
            linear_targets(&b, &[1.0, -2.0, 0.1, 0.0, 5.0, 0.0, -3.0, 10.0]),
            linear_targets(&b, &[-0.5, 0.0, -0.2, 0.3, -4.0, 6.0, 0.0, -7.0]),
        ];
        let g_t: Vec<f32> = (0..b.horizon * b.n)
            .map(|k| targets[(k % b.n) / 3][k])
            .collect();
        let v_t = fit_per_task(&b.obs_t, &g_t, &b.mask_t, b.n, b.obs_dim, 3).unwrap();
        assert!(
            max_rel_error(&v_t, &g_t) < 1e-4,
            "relative error {}",
            max_rel_error(&v_t, &g_t)
        );

        let pooled = LinearFeatureBaseline::fit(
            &b.obs_t,
            &g_t,
            &b.mask_t,
            b.n,
            b.obs_dim,
            DEFAULT_REG_COEFF,
        )
        .unwrap();
        let v_pooled = pooled.predict(&b.obs_t, &b.mask_t, b.n, b.obs_dim);
        assert!(
            max_rel_error(&v_pooled, &g_t) > 1e-2,
            "a single fit should not match both tasks"
        );
    }
}
