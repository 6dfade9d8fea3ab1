//! 2-D point navigation to a random goal with a dense reward: the MAML-RL benchmark.
//!
//! Source: Finn et al. 2017, `cbfinn/maml_rl` `maml_examples/point_env_randgoal.py`; the
//! same environment is `tristandeleu/pytorch-maml-rl` `maml_rl/envs/navigation.py` and
//! learn2learn `gym/envs/particles/particles_2d.py` (mission-anchors §2.2).
//!
//! | | |
//! |---|---|
//! | observation | position `p = (x, y)` |
//! | action | 2-D displacement, each component clipped to `[-0.1, 0.1]` |
//! | start | the origin |
//! | task | goal `g ~ U[-0.5, 0.5)²` ([`goal_task`]: parameters `[x, y]`) |
//! | dynamics | `p ← p + clip(a)`; the plane is unbounded |
//! | reward | `−‖p − g‖₂`, with `p` the position after the move |
//! | termination | `|x − g_x| < 0.01` and `|y − g_y| < 0.01` |
//! | horizon | 100 |
//! | success | final distance `‖p − g‖₂ < 0.1` |
//!
//! The anchors define no success; ours, distance below 0.1 at the end of the episode, is
//! the goal region of ES-MAML's NavigationTask2d (it ends episodes at squared distance
//! ≤ 0.01) and about one step's length. A terminated episode is always a success.

use super::{distance, uniform, EnvSpec, PointGoal, Task};
use crate::rng::Rng;

/// The 2-D navigation family; [`Default`] gives the paper settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Nav2d {
    /// Each goal coordinate is drawn from `U[goal_range.0, goal_range.1)`. Paper: (−0.5, 0.5).
    pub goal_range: (f32, f32),
    /// Largest displacement per axis and step; actions are clipped to ±this. Paper: 0.1.
    pub max_action: f32,
    /// The episode terminates when both coordinates are closer than this to the goal.
    /// Paper: 0.01.
    pub goal_tolerance: f32,
    /// An episode is a success when it ends closer than this (Euclidean) to the goal. Ours: 0.1.
    pub success_radius: f32,
    spec: EnvSpec,
}

impl Default for Nav2d {
    fn default() -> Self {
        Self {
            goal_range: (-0.5, 0.5),
            max_action: 0.1,
            goal_tolerance: 0.01,
            success_radius: 0.1,
            spec: EnvSpec {
                name: "nav2d",
                obs_dim: 2,
                act_dim: 2,
                horizon: 100,
                summary: "2-D point to a goal in U[-0.5,0.5]^2, reward -distance (MAML, Finn et al. 2017)",
            },
        }
    }
}

impl Nav2d {
    /// The same family with episodes truncated after `horizon` steps.
    pub fn with_horizon(mut self, horizon: usize) -> Self {
        self.spec.horizon = horizon;
        self
    }
}

/// The goal of a nav2d task.
fn goal(task: &Task) -> [f32; 2] {
    [task.param(0), task.param(1)]
}

/// The nav2d task with goal `(x, y)`: parameters `[x, y]`.
pub fn goal_task(x: f32, y: f32) -> Task {
    Task::new([x, y])
}

impl PointGoal for Nav2d {
    fn point_spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn draw_task(&self, rng: &mut Rng) -> Task {
        let (lo, hi) = self.goal_range;
        let x = uniform(rng, lo, hi);
        let y = uniform(rng, lo, hi);
        goal_task(x, y)
    }

    fn goal(&self, task: &Task) -> [f32; 2] {
        goal(task)
    }

    fn success_radius(&self) -> f32 {
        self.success_radius
    }

    /// `p' = p + clip(a)`, reward `−‖p' − g‖`, terminated within `goal_tolerance` per axis.
    #[inline(always)]
    fn advance(&self, p: [f32; 2], a: [f32; 2], g: [f32; 2]) -> ([f32; 2], f32, bool) {
        let (m, tol) = (self.max_action, self.goal_tolerance);
        let p = [p[0] + a[0].clamp(-m, m), p[1] + a[1].clamp(-m, m)];
        let terminated = (p[0] - g[0]).abs() < tol && (p[1] - g[1]).abs() < tol;
        (p, -distance(p, g), terminated)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::env::{Env, VecEnv};
    use crate::rng;

    const TOL: f32 = 1e-6;

    fn reset_row(env: &Nav2d, task: &Task) -> Vec<f32> {
        let mut state = vec![f32::NAN; env.state_dim()];
        env.reset(task, &mut state, &mut rng::stream(0, "test"));
        state
    }

    #[test]
    fn reset_puts_the_point_at_the_origin() {
        let env = Nav2d::default();
        let task = goal_task(0.3, -0.2);
        let state = reset_row(&env, &task);
        let mut obs = [f32::NAN; 2];
        env.observe(&task, &state, &mut obs);
        assert_eq!(obs, [0.0, 0.0]);
        assert_eq!(env.position(&state), Some([0.0, 0.0]));
    }

    #[test]
    fn step_moves_by_the_action_and_rewards_minus_distance_after_the_move() {
        let env = Nav2d::default();
        let task = goal_task(0.3, 0.4);
        let mut state = reset_row(&env, &task);
        // p = (0, 0) + (0.06, 0.08) = (0.06, 0.08); p − g = (−0.24, −0.32);
        // ‖p − g‖ = sqrt(0.0576 + 0.1024) = sqrt(0.16) = 0.4.
        let (r, term) = env.step(&task, &mut state, &[0.06, 0.08]);
        assert!((state[0] - 0.06).abs() < TOL && (state[1] - 0.08).abs() < TOL);
        assert!((r - (-0.4)).abs() < TOL, "reward {r}");
        assert!(!term);
    }

    #[test]
    fn actions_are_clipped_to_a_tenth_per_axis() {
        let env = Nav2d::default();
        let task = goal_task(-0.5, 0.5);
        let mut state = reset_row(&env, &task);
        // clip(5, −3) = (0.1, −0.1); p − g = (0.6, −0.6); ‖p − g‖ = 0.6·√2 = 0.848528.
        let (r, _) = env.step(&task, &mut state, &[5.0, -3.0]);
        assert!((state[0] - 0.1).abs() < TOL && (state[1] + 0.1).abs() < TOL);
        assert!((r + 0.848_528).abs() < 1e-5, "reward {r}");
    }

    #[test]
    fn terminates_only_when_both_coordinates_are_within_a_hundredth() {
        let env = Nav2d::default();
        let task = goal_task(0.1, 0.1);
        // x misses by 0.015 (≥ 0.01), y exact: no termination.
        let mut state = reset_row(&env, &task);
        let (_, term) = env.step(&task, &mut state, &[0.085, 0.1]);
        assert!(!term);
        // Both miss by 0.005 (< 0.01): terminated; reward −0.005·√2 = −0.0070711.
        let mut state = reset_row(&env, &task);
        let (r, term) = env.step(&task, &mut state, &[0.095, 0.095]);
        assert!(term);
        assert!((r + 0.007_071_1).abs() < 1e-5, "reward {r}");
        assert_eq!(env.success(&task, &state, true), Some(true));
    }

    #[test]
    fn success_means_final_distance_below_a_tenth() {
        let env = Nav2d::default();
        let task = goal_task(0.5, 0.0);
        assert_eq!(env.success(&task, &[0.41, 0.0], false), Some(true));
        assert_eq!(env.success(&task, &[0.39, 0.0], false), Some(false));
        assert_eq!(env.success(&task, &[0.5, 0.2], false), Some(false));
    }

    #[test]
    fn goals_are_drawn_from_the_half_unit_square() {
        let env = Nav2d::default();
        let mut rng = rng::stream(3, "tasks");
        let goals: Vec<[f32; 2]> = (0..2000)
            .map(|_| goal(&env.sample_task(&mut rng)))
            .collect();
        for g in &goals {
            assert!(g.iter().all(|c| (-0.5..0.5).contains(c)), "goal {g:?}");
        }
        // The range is covered, not a corner of it.
        let max_x = goals.iter().map(|g| g[0]).fold(f32::MIN, f32::max);
        let min_y = goals.iter().map(|g| g[1]).fold(f32::MAX, f32::min);
        assert!(max_x > 0.45 && min_y < -0.45);
    }

    #[test]
    fn vec_env_truncates_exactly_at_the_horizon() {
        let env = Arc::new(Nav2d::default());
        let horizon = env.spec().horizon;
        assert_eq!(horizon, 100);
        let task = goal_task(0.4, 0.4);
        let mut venv = VecEnv::new(env, vec![task], &[7]);
        let obs = venv.reset();
        assert_eq!(obs.len(), 2);
        for t in 1..=horizon {
            // Away from the goal: the episode can only end by truncation.
            let step = venv.step(&[-1.0, -1.0]);
            assert_eq!(step.obs.len(), 2);
            assert!(step.active[0] && !step.terminated[0]);
            assert_eq!(step.truncated[0], t == horizon, "step {t}");
            assert_eq!(venv.all_done(), t == horizon);
            assert_eq!(step.success[0].is_some(), t == horizon);
        }
        let after = venv.step(&[0.1, 0.1]);
        assert!(!after.active[0]);
        assert_eq!(after.reward[0], 0.0);
    }

    #[test]
    fn vec_env_reports_termination_with_success() {
        let env = Arc::new(Nav2d::default());
        let mut venv = VecEnv::new(env, vec![goal_task(0.1, -0.1)], &[1]);
        venv.reset();
        let step = venv.step(&[0.1, -0.1]);
        assert!(step.terminated[0] && !step.truncated[0]);
        assert_eq!(step.success[0], Some(true));
        assert!(venv.all_done());
    }
}
