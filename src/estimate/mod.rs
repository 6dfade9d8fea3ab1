//! Return and advantage estimation on batched trajectories: discounted returns, GAE,
//! the linear feature baseline and per-task advantage normalization.
//!
//! # Data layout (shared by the whole crate)
//!
//! A batch holds `N` rows (one episode of one task each; the rows of one task are
//! contiguous, `rows_per_task` of them) over `T` time steps, stored **time-major** as
//! flat `&[f32]` slices:
//!
//! | quantity      | shape               | index of (t, i[, j])          |
//! |---------------|---------------------|-------------------------------|
//! | `r_t`, `v_t`  | `[T, N]`            | `t * n + i`                   |
//! | `mask_t`      | `[T, N]`            | `t * n + i`                   |
//! | observations  | `[T, N, obs_dim]`   | `(t * n + i) * obs_dim + j`   |
//!
//! `mask_t` is 1.0 while the episode of row `i` is running (the transition at `t` is
//! real) and 0.0 after it ended. Every row starts at `t = 0`, so `t` is also the step
//! index within the episode. Every output is 0 where the mask is 0.
//!
//! **No bootstrapping.** An episode that ends — terminated, or truncated at the
//! horizon `T` — is not bootstrapped with a value estimate: its return simply stops
//! (the value after the last real step is taken as 0). This is what ProMP, MAML and
//! rllab do on their fixed-horizon benchmarks.

pub mod baseline;
pub mod gae;
pub mod returns;

pub use baseline::{fit_per_task, linear_features, LinearFeatureBaseline, DEFAULT_REG_COEFF};
pub use gae::{gae, normalize_per_task};
pub use returns::discounted_returns;

/// Number of time steps `T` of a `[T, N]` slice of length `len`; panics unless `n > 0`
/// and `n` divides `len`.
pub(crate) fn horizon(len: usize, n: usize) -> usize {
    assert!(n > 0, "the number of rows n should be positive");
    assert!(
        len.is_multiple_of(n),
        "a [T, N] slice of length {len} should be divisible by n = {n}"
    );
    len / n
}

/// Mask at step `t + 1` of row `i`: 0.0 past the horizon (`t + 1 == T`).
#[inline]
pub(crate) fn mask_tp1(mask_t: &[f32], t: usize, i: usize, n: usize, horizon: usize) -> f64 {
    if t + 1 < horizon {
        f64::from(mask_t[(t + 1) * n + i])
    } else {
        0.0
    }
}
