//! ES-MAML's four-corners task: a 2-D point that must find which corner is rewarded, with
//! a reward that is flat (−4 per step) except within distance 2 of the goal corner.
//!
//! Source: Song et al. 2020 (ES-MAML) §4.1, `google-research/google-research`
//! `es_maml/task.py` `NavigationTask4corner` (mission-anchors §2.3, ES column). This is
//! the task behind the paper's Figure 1; it differs from ProMP's `point-corners` in every
//! row below except the corners, so results on the two are not comparable.
//!
//! | | |
//! |---|---|
//! | observation | position `p = (x, y)` |
//! | action | 2-D displacement, each component clipped to `[-0.1, 0.1]` |
//! | dynamics | `p ← clip(p + clip(a), −5, 5)` per axis |
//! | start | the origin |
//! | task | one of the corners `(±2, ±2)` ([`point_corners::corner_task`], index into [`point_corners::CORNERS`]) |
//! | reward | `−4 + max(0, 4 − ‖p' − g‖²)`: −4 per step outside distance 2 of the goal, 0 at it |
//! | termination | never |
//! | horizon | 100 |
//! | success | final distance `‖p − g‖ < 0.5` (ours; the source defines none) |
//!
//! The source maps task ids to corners by `id mod 4` in the order (2, 2), (−2, 2), (−2, −2),
//! (2, −2); here a task is a corner index drawn uniformly and [`Env::finite_tasks`] lists
//! all four, which is what ES-MAML trains on ("(N, N, N)" train/batch/test sets, A.7.2).
//! The start is the origin, from where every corner is √8 away: no reward differs from −4
//! until the point is within distance 2 of the goal, which takes at least 6 diagonal steps
//! of 0.1 per axis. Running straight to the goal and staying there returns −40.3, the
//! best possible.

use super::point_corners::{self, goal};
use super::{EnvSpec, PointGoal, Task};
use crate::rng::Rng;

/// Per-step reward outside the goal's reward region (ES-MAML's `alive_penalty`).
pub const ALIVE_PENALTY: f32 = -4.0;

/// Squared radius of the goal's reward region: the bonus `max(0, 4 − ‖p − g‖²)` is 0
/// outside it.
pub const REGION_SQ: f32 = 4.0;

/// ES-MAML's four-corners family; [`Default`] gives the paper settings.
#[derive(Clone, Debug, PartialEq)]
pub struct EsCorners {
    /// Largest displacement per axis and step; actions are clipped to ±this. Paper: 0.1.
    pub max_action: f32,
    /// Positions are clipped to ±this per axis. Paper: 5.
    pub position_limit: f32,
    /// An episode is a success when it ends closer than this to the goal. Ours: 0.5.
    pub success_radius: f32,
    spec: EnvSpec,
}

impl Default for EsCorners {
    fn default() -> Self {
        Self {
            max_action: 0.1,
            position_limit: 5.0,
            success_radius: 0.5,
            spec: EnvSpec {
                name: "point-corners-es",
                obs_dim: 2,
                act_dim: 2,
                horizon: 100,
                summary: "2-D point from the origin, goal one of 4 corners, reward -4 + max(0, 4 - dist^2) (ES-MAML)",
            },
        }
    }
}

impl PointGoal for EsCorners {
    fn point_spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn draw_task(&self, rng: &mut Rng) -> Task {
        point_corners::sample_corner(rng)
    }

    fn all_tasks(&self) -> Option<Vec<Task>> {
        Some(point_corners::all_corners())
    }

    fn goal(&self, task: &Task) -> [f32; 2] {
        goal(task)
    }

    fn success_radius(&self) -> f32 {
        self.success_radius
    }

    /// `p' = clip(p + clip(a), ±limit)`, reward `−4 + max(0, 4 − ‖p' − g‖²)`; episodes
    /// never terminate.
    #[inline(always)]
    fn advance(&self, p: [f32; 2], a: [f32; 2], g: [f32; 2]) -> ([f32; 2], f32, bool) {
        let (m, lim) = (self.max_action, self.position_limit);
        let mut next = [0.0; 2];
        let mut sq = 0.0;
        for axis in 0..2 {
            next[axis] = (p[axis] + a[axis].clamp(-m, m)).clamp(-lim, lim);
            sq += (next[axis] - g[axis]).powi(2);
        }
        (next, ALIVE_PENALTY + (REGION_SQ - sq).max(0.0), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::point_corners::corner_task;
    use crate::env::Env;
    use crate::rng;

    /// Corner (2, 2).
    fn ne() -> Task {
        corner_task(3)
    }

    #[test]
    fn starts_at_the_origin_and_pays_minus_four_far_from_the_goal() {
        let env = EsCorners::default();
        let mut state = [f32::NAN; 2];
        env.reset(&ne(), &mut state, &mut rng::stream(0, "test"));
        assert_eq!(state, [0.0, 0.0]);
        // p' = (0.1, 0.1): ‖p' − (2, 2)‖² = 2·1.9² = 7.22 ≥ 4, so the bonus is 0.
        let (r, term) = env.step(&ne(), &mut state, &[0.1, 0.1]);
        assert_eq!(r, -4.0);
        assert!(!term);
        assert_eq!(state, [0.1, 0.1]);
    }

    #[test]
    fn inside_distance_two_the_bonus_is_four_minus_the_squared_distance() {
        let env = EsCorners::default();
        // p = (1.0, 1.5) + (0.1, 0.1) = (1.1, 1.6): ‖p' − (2, 2)‖² = 0.81 + 0.16 = 0.97,
        // reward −4 + (4 − 0.97) = −0.97.
        let mut state = [1.0, 1.5];
        let (r, _) = env.step(&ne(), &mut state, &[0.1, 0.1]);
        assert!((r - (-0.97)).abs() < 1e-5, "reward {r}");
        // At the corner itself the reward is 0, the maximum.
        let mut state = [1.95, 2.0];
        let (r, _) = env.step(&ne(), &mut state, &[0.05, 0.0]);
        assert!(r.abs() < 1e-6, "reward {r}");
        // The wrong corners pay nothing extra: near (−2, −2) with goal ne() it is −4.
        let mut state = [-1.9, -1.9];
        let (r, _) = env.step(&ne(), &mut state, &[-0.1, -0.1]);
        assert_eq!(r, -4.0);
    }

    #[test]
    fn running_straight_to_the_goal_returns_minus_40_point_3() {
        // Diagonal steps of 0.1: after step t ≤ 20, ‖p − g‖² = 2(2 − 0.1t)², which is ≥ 4
        // for t ≤ 5 (reward −4 each, −20) and then pays −2(2 − 0.1t)²: 3.92 + 3.38 + 2.88 +
        // 2.42 + 2.00 + 1.62 + 1.28 + 0.98 + 0.72 + 0.50 + 0.32 + 0.18 + 0.08 + 0.02 = 20.3
        // for t = 6…19, 0 at t = 20 and after (the actions are clipped to 0.1, so
        // overshooting is impossible; staying costs 0). Total −40.3.
        let env = EsCorners::default();
        let mut state = [0.0, 0.0];
        let mut ret = 0.0f64;
        for t in 0..100 {
            let a = if t < 20 { [1.0, 1.0] } else { [0.0, 0.0] };
            ret += f64::from(env.step(&ne(), &mut state, &a).0);
        }
        assert!((ret + 40.3).abs() < 1e-4, "return {ret}");
        assert_eq!(env.success(&ne(), &state, false), Some(true));
    }

    #[test]
    fn actions_and_positions_are_clipped() {
        let env = EsCorners::default();
        let mut state = [0.0, 0.0];
        env.step(&ne(), &mut state, &[3.0, -0.05]);
        assert!((state[0] - 0.1).abs() < 1e-7 && (state[1] + 0.05).abs() < 1e-7);
        let mut state = [4.95, -4.98];
        env.step(&ne(), &mut state, &[0.1, -0.1]);
        assert_eq!(state, [5.0, -5.0]);
    }

    #[test]
    fn success_is_ending_within_half_a_unit_of_the_goal() {
        let env = EsCorners::default();
        assert_eq!(env.success(&ne(), &[1.7, 1.7], false), Some(true)); // 0.424 away
        assert_eq!(env.success(&ne(), &[1.6, 1.6], false), Some(false)); // 0.566 away
        assert_eq!(
            env.success(&corner_task(0), &[-2.0, -2.0], false),
            Some(true)
        );
    }

    #[test]
    fn the_finite_task_set_is_the_four_corners_once_each() {
        let env = EsCorners::default();
        let all = env.finite_tasks().expect("four corners is a finite family");
        let goals: Vec<[f32; 2]> = all.iter().map(goal).collect();
        assert_eq!(goals, point_corners::CORNERS.to_vec());
    }
}
