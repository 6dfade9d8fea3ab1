//! The black box that evolution strategies maximize, with an optional batched evaluation.

use crate::rng::{LazyRng, Rng};

/// An objective `f : ℝ^d → ℝ` for evolution strategies, **maximized**. The generator an
/// evaluation receives lets a stochastic `f` (a rollout, a sampled task) draw its own noise.
///
/// Every closure `Fn(&[f32], &mut Rng) -> f64 + Sync` is an objective. Types that can
/// evaluate several points faster together (episodes in SIMD lanes,
/// [`crate::rollout::episode_returns_lanes`]) also implement [`Self::values`]; the
/// estimators hand them their evaluations in batches of [`BATCH`].
pub trait Objective: Sync {
    /// `f(θ)`, drawing any noise from `rng`.
    fn value(&self, theta: &[f32], rng: &mut Rng) -> f64;

    /// `f` at every point, point `i` with generator `rngs[i]`. Must return exactly what
    /// [`Self::value`] returns for each point on its own, and leave each generator where
    /// that call leaves it: batching is a speed-up, never a change of results. A
    /// generator is only built if it is used ([`LazyRng::get`]).
    fn values(&self, points: &[&[f32]], rngs: &mut [LazyRng]) -> Vec<f64> {
        assert_eq!(points.len(), rngs.len(), "one generator per point");
        points
            .iter()
            .zip(rngs)
            .map(|(p, r)| self.value(p, r.get()))
            .collect()
    }
}

impl<F> Objective for F
where
    F: Fn(&[f32], &mut Rng) -> f64 + Sync + ?Sized,
{
    fn value(&self, theta: &[f32], rng: &mut Rng) -> f64 {
        self(theta, rng)
    }
}

/// Evaluations the estimators hand to [`Objective::values`] at once: one batch of lanes.
pub const BATCH: usize = crate::lanes::LANES;
