//! Sine-wave regression: the supervised few-shot family of MAML.
//!
//! Source: Finn et al. 2017, `cbfinn/maml` `data_generator.py` (mission-anchors §2.1).
//! This is not an [`Env`](super::Env): a task is a function to regress, and a data set
//! is `k` points drawn from it.
//!
//! | | |
//! |---|---|
//! | task | amplitude `A ~ U[0.1, 5.0)`, phase `φ ~ U[0, π)` |
//! | input | `x ~ U[-5, 5)` |
//! | target | `y = A·sin(x − φ)` |
//! | loss | mean squared error (applied by the learner) |
//!
//! Finn et al. draw `2k` points per task, the first `k` for adaptation and the last `k`
//! for the meta-loss; [`SineDistribution::sample_points`] draws one set, so call it twice.
//! Held-out tasks come from a fixed stream ([`SineDistribution::held_out`]), as the
//! original fixes its test tasks with `np.random.seed(1)`.

use serde::{Deserialize, Serialize};

use super::{uniform, HELD_OUT_SEED};
use crate::rng::{self, Rng};

/// One sine function `x ↦ A·sin(x − φ)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SineTask {
    /// Amplitude `A`.
    pub amplitude: f32,
    /// Phase `φ` in radians.
    pub phase: f32,
}

impl SineTask {
    /// The target at `x`: `A·sin(x − φ)`.
    pub fn eval(&self, x: f32) -> f32 {
        self.amplitude * (x - self.phase).sin()
    }
}

/// The distribution of sine tasks and of their inputs; [`Default`] gives the paper ranges.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SineDistribution {
    /// Amplitudes are drawn from `U[amplitude.0, amplitude.1)`. Paper: (0.1, 5.0).
    pub amplitude: (f32, f32),
    /// Phases are drawn from `U[phase.0, phase.1)`. Paper: (0, π).
    pub phase: (f32, f32),
    /// Inputs are drawn from `U[x.0, x.1)`. Paper: (−5, 5).
    pub x: (f32, f32),
}

impl Default for SineDistribution {
    fn default() -> Self {
        Self {
            amplitude: (0.1, 5.0),
            phase: (0.0, std::f32::consts::PI),
            x: (-5.0, 5.0),
        }
    }
}

impl SineDistribution {
    /// Draws one task (amplitude first, then phase).
    pub fn sample_task(&self, rng: &mut Rng) -> SineTask {
        let amplitude = uniform(rng, self.amplitude.0, self.amplitude.1);
        let phase = uniform(rng, self.phase.0, self.phase.1);
        SineTask { amplitude, phase }
    }

    /// Draws `k` inputs and returns them with their targets: `(x, y)`, each of length `k`.
    pub fn sample_points(&self, task: &SineTask, k: usize, rng: &mut Rng) -> (Vec<f32>, Vec<f32>) {
        let xs: Vec<f32> = (0..k).map(|_| uniform(rng, self.x.0, self.x.1)).collect();
        let ys = xs.iter().map(|&x| task.eval(x)).collect();
        (xs, ys)
    }

    /// The first `n` tasks of the fixed held-out set: the same for every run and seed, and
    /// a prefix of the set for a larger `n`.
    pub fn held_out(&self, n: usize) -> Vec<SineTask> {
        let mut rng = rng::stream(HELD_OUT_SEED, "sine-held-out");
        (0..n).map(|_| self.sample_task(&mut rng)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_is_amplitude_times_sine_of_shifted_input() {
        let task = SineTask {
            amplitude: 2.0,
            phase: std::f32::consts::FRAC_PI_2,
        };
        // 2·sin(π/2 − π/2) = 0; 2·sin(π − π/2) = 2; 2·sin(0 − π/2) = −2.
        assert!(task.eval(std::f32::consts::FRAC_PI_2).abs() < 1e-6);
        assert!((task.eval(std::f32::consts::PI) - 2.0).abs() < 1e-6);
        assert!((task.eval(0.0) + 2.0).abs() < 1e-6);
    }

    #[test]
    fn tasks_and_points_lie_in_the_paper_ranges() {
        let dist = SineDistribution::default();
        let mut rng = rng::stream(0, "tasks");
        for _ in 0..1000 {
            let task = dist.sample_task(&mut rng);
            assert!((0.1..5.0).contains(&task.amplitude), "{task:?}");
            assert!(
                (0.0..std::f32::consts::PI).contains(&task.phase),
                "{task:?}"
            );
            let (xs, ys) = dist.sample_points(&task, 10, &mut rng);
            assert_eq!((xs.len(), ys.len()), (10, 10));
            for (x, y) in xs.iter().zip(&ys) {
                assert!((-5.0..5.0).contains(x));
                assert!((task.eval(*x) - y).abs() < 1e-6);
                assert!(y.abs() <= task.amplitude + 1e-6);
            }
        }
    }

    #[test]
    fn zero_points_give_empty_sets() {
        let dist = SineDistribution::default();
        let mut rng = rng::stream(0, "points");
        let task = dist.sample_task(&mut rng);
        assert_eq!(dist.sample_points(&task, 0, &mut rng), (vec![], vec![]));
    }

    #[test]
    fn held_out_tasks_are_fixed_and_prefix_closed() {
        let dist = SineDistribution::default();
        let ten = dist.held_out(10);
        assert_eq!(ten.len(), 10);
        assert_eq!(ten, dist.held_out(10));
        assert_eq!(ten[..4], dist.held_out(4)[..]);
        assert_ne!(ten[0], ten[1]);
    }

    #[test]
    fn the_same_stream_gives_the_same_tasks_and_points() {
        let dist = SineDistribution::default();
        let draw = |seed| {
            let mut rng = rng::stream(seed, "sine");
            let task = dist.sample_task(&mut rng);
            (task, dist.sample_points(&task, 5, &mut rng))
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }
}
