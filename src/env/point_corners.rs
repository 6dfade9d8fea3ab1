//! A 2-D point that must find which of four corners is rewarded: ProMP's sparse-reward
//! exploration benchmark.
//!
//! Source: Rothfuss et al. 2019 (ProMP), `jonasrothfuss/ProMP`
//! `meta_policy_search/envs/point_envs/point_env_2d_corner.py` (`MetaPointEnvCorner`, the
//! default of `run_scripts/pro-mp_run_point_mass.py`; mission-anchors §2.3, PM column).
//!
//! | | |
//! |---|---|
//! | observation | position `p = (x, y)`, unbounded |
//! | action | 2-D displacement, each component clipped to `[-0.2, 0.2]` |
//! | start | `p ~ U[-0.2, 0.2)²` (drawn from the row's stream) |
//! | task | one of the corners `(±2, ±2)`, uniformly ([`corner_task`]: parameters `[index]`, index into [`CORNERS`]) |
//! | dynamics | `p' = p + clip(a)` |
//! | reward, sparse (default) | 0 if `‖p'‖₁ < 0.5`; else, if the goal is the nearest corner to `p'` (ties count as nearest), `‖p − g‖₂ − ‖p' − g‖₂` (the decrease in distance this step); else 0 |
//! | reward, fixed (`point-corners-fixed`, ours) | as sparse, but also paid when `p` (not only `p'`) is in the goal's region: leaving it is charged, closing the loophole below |
//! | reward, dense | `−‖p' − g‖₂` |
//! | reward, radius (`point-corners-radius`, ProMP paper D.2) | `max(R − ‖p' − g‖₂, 0)`, R = 0.5: paid only within R of the goal, more the closer |
//! | termination | never |
//! | horizon | 100 |
//! | success | final distance `‖p − g‖₂ < 0.5` |
//!
//! Corner indices follow ProMP's list: 0 → (−2, −2), 1 → (2, −2), 2 → (−2, 2), 3 → (2, 2).
//!
//! The anchor defines no success. Ours, ending within 0.5 of the rewarded corner, is the
//! goal region of the sparse reward that ProMP's file leaves commented out
//! (`max(sparse_reward_radius − goal_distance, 0)`, radius 0.5). Any radius below 2 implies
//! that the goal is the nearest corner, since corners are 4 apart.
//!
//! The paper's own text (Appendix D.2) describes a third reward: "the agent only
//! experiences a reward when within a certain radius of the goal, and the magnitude of the
//! reward is equal to the distance to the goal". Read literally (−distance inside the
//! radius, 0 outside) it would punish entering the region, so `point-corners-radius` takes
//! the line of ProMP's file that matches the text's shape, the commented-out
//! `max(sparse_reward_radius − goal_distance, 0)` with its radius 0.5: zero outside the
//! goal's disc, and inside it a reward whose size is set by the distance to the goal. The
//! paper gives no radius; Figure 5's translucent regions look about that size.

use rand::Rng as _;

use super::{distance, EnvSpec, PointGoal, Task};
use crate::rng::Rng;

/// The four corners, indexed by a [`corner_task`]'s parameter (ProMP's order).
pub const CORNERS: [[f32; 2]; 4] = [[-2.0, -2.0], [2.0, -2.0], [-2.0, 2.0], [2.0, 2.0]];

/// How a step is rewarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RewardType {
    /// Progress towards the goal, paid only outside the start region and inside the goal's
    /// quadrant (ProMP's default `sparse`).
    Sparse,
    /// Minus the distance to the goal (ProMP's `dense`).
    Dense,
    /// `max(R − ‖p' − g‖, 0)` with R = [`PointCorners::goal_radius`]: reward only within R
    /// of the goal (the ProMP paper's Appendix D.2 text; `point-corners-radius`).
    Radius,
}

/// The four-corners family; [`Default`] gives the paper settings (sparse reward).
#[derive(Clone, Debug, PartialEq)]
pub struct PointCorners {
    /// Sparse (paper) or dense reward; fixed at construction since it names the family.
    reward_type: RewardType,
    /// Largest displacement per axis and step; actions are clipped to ±this. Paper: 0.2.
    pub max_action: f32,
    /// Each start coordinate is drawn from `U[-start_range, start_range)`. Paper: 0.2.
    pub start_range: f32,
    /// No sparse reward while the new position's L1 norm is below this. Paper: 0.5.
    pub sparse_reward_radius: f32,
    /// The radius R of the goal's disc for [`RewardType::Radius`]. ProMP's commented-out
    /// line: 0.5.
    pub goal_radius: f32,
    /// An episode is a success when it ends closer than this (Euclidean) to the goal. Ours: 0.5.
    pub success_radius: f32,
    /// Per-step penalty near a wrong corner: `−penalty · max(0, 1 − ‖p' − c‖²/4)` for each
    /// wrong corner c (felt within distance 2, strongest at the corner). 0 in the paper's
    /// task; `point-corners-penalized` uses 100 (ES-MAML §4.1 "heavily penalized" wrong
    /// goals, after its NavigationTaskCombo penalty shape).
    pub wrong_corner_penalty: f32,
    /// Also pay the (negative) progress of a move that *leaves* the goal's rewarded region
    /// (`point-corners-fixed`). ProMP's reward pays nothing then, so stepping back and forth
    /// across the region's boundary earns reward forever without reaching the goal; with
    /// this set, the rewards of a visit to the region telescope to the distance gained
    /// between entering and leaving it.
    pub charge_exit: bool,
    spec: EnvSpec,
}

impl Default for PointCorners {
    fn default() -> Self {
        Self::new(RewardType::Sparse)
    }
}

impl PointCorners {
    /// The family with `reward_type` and the paper settings otherwise. Its name is
    /// `point-corners` (sparse), `point-corners-dense` or `point-corners-radius`.
    pub fn new(reward_type: RewardType) -> Self {
        let (name, summary) = match reward_type {
            RewardType::Sparse => (
                "point-corners",
                "2-D point, goal one of 4 corners (+-2,+-2), sparse progress reward (ProMP)",
            ),
            RewardType::Dense => (
                "point-corners-dense",
                "2-D point, goal one of 4 corners (+-2,+-2), reward -distance (ProMP dense)",
            ),
            RewardType::Radius => (
                "point-corners-radius",
                "2-D point, goal one of 4 corners (+-2,+-2), reward max(0.5 - distance, 0) near the goal only (ProMP paper D.2)",
            ),
        };
        Self {
            reward_type,
            max_action: 0.2,
            start_range: 0.2,
            sparse_reward_radius: 0.5,
            goal_radius: 0.5,
            success_radius: 0.5,
            wrong_corner_penalty: 0.0,
            charge_exit: false,
            spec: EnvSpec {
                name,
                obs_dim: 2,
                act_dim: 2,
                horizon: 100,
                summary,
            },
        }
    }

    /// The same family with episodes truncated after `horizon` steps.
    pub fn with_horizon(mut self, horizon: usize) -> Self {
        self.spec.horizon = horizon;
        self
    }

    /// The sparse family with wrong corners penalized (`point-corners-penalized`).
    pub fn penalized(penalty: f32) -> Self {
        let mut e = Self::new(RewardType::Sparse);
        e.wrong_corner_penalty = penalty;
        e.spec.name = "point-corners-penalized";
        e.spec.summary =
            "point-corners with a heavy per-step penalty near the 3 wrong corners (ES-MAML 4.1)";
        e
    }

    /// The sparse family without ProMP's oscillation loophole (`point-corners-fixed`, ours):
    /// a move pays its progress when it starts *or* ends in the goal's rewarded region.
    pub fn fixed() -> Self {
        let mut e = Self::new(RewardType::Sparse);
        e.charge_exit = true;
        e.spec.name = "point-corners-fixed";
        e.spec.summary =
            "point-corners whose sparse reward also charges leaving the goal region (no oscillation loophole; ours)";
        e
    }

    /// The wrong-corner penalty at position `p` for goal `g` (≤ 0).
    fn penalty(&self, p: [f32; 2], g: [f32; 2]) -> f32 {
        if self.wrong_corner_penalty == 0.0 {
            return 0.0;
        }
        CORNERS
            .iter()
            .filter(|&&c| c != g)
            .map(|&c| -self.wrong_corner_penalty * (1.0 - distance(p, c).powi(2) / 4.0).max(0.0))
            .sum()
    }

    /// The reward type.
    pub fn reward_type(&self) -> RewardType {
        self.reward_type
    }

    /// Whether `p` is in goal `g`'s rewarded region: outside the start region's L1 ball and
    /// nearest to `g` (ties count as nearest).
    fn rewarded(&self, p: [f32; 2], g: [f32; 2]) -> bool {
        if p[0].abs() + p[1].abs() < self.sparse_reward_radius {
            return false;
        }
        let nearest = CORNERS
            .iter()
            .map(|&c| distance(p, c))
            .fold(f32::INFINITY, f32::min);
        distance(p, g) <= nearest
    }

    /// Sparse reward of the move `p → p_next` towards goal `g`: the decrease in distance
    /// when `p_next` is in the rewarded region (or, with `charge_exit`, `p` is), else 0.
    fn sparse_reward(&self, p: [f32; 2], p_next: [f32; 2], g: [f32; 2]) -> f32 {
        if self.rewarded(p_next, g) || (self.charge_exit && self.rewarded(p, g)) {
            distance(p, g) - distance(p_next, g)
        } else {
            0.0
        }
    }
}

/// The goal corner of a corner task (this family and `point-corners-es`).
pub(crate) fn goal(task: &Task) -> [f32; 2] {
    let index = corner_index(task);
    *CORNERS
        .get(index)
        .unwrap_or_else(|| panic!("corner index should be below 4, got {index}"))
}

/// The corner task with index `index` into [`CORNERS`]: parameters `[index]`.
pub fn corner_task(index: usize) -> Task {
    Task::new([index as f32])
}

/// The index into [`CORNERS`] of a corner task.
pub fn corner_index(task: &Task) -> usize {
    task.param(0) as usize
}

/// A corner drawn uniformly.
pub(crate) fn sample_corner(rng: &mut Rng) -> Task {
    corner_task(rng.random_range(0..CORNERS.len()))
}

/// The four corner tasks, each once, in [`CORNERS`] order.
pub(crate) fn all_corners() -> Vec<Task> {
    (0..CORNERS.len()).map(corner_task).collect()
}

impl PointGoal for PointCorners {
    fn point_spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn draw_task(&self, rng: &mut Rng) -> Task {
        sample_corner(rng)
    }

    fn all_tasks(&self) -> Option<Vec<Task>> {
        Some(all_corners())
    }

    fn start_range(&self) -> Option<f32> {
        Some(self.start_range)
    }

    fn goal(&self, task: &Task) -> [f32; 2] {
        goal(task)
    }

    fn success_radius(&self) -> f32 {
        self.success_radius
    }

    /// `p' = p + clip(a)`; the sparse or dense reward of the move plus the wrong-corner
    /// penalty at `p'`; episodes never terminate.
    fn advance(&self, p: [f32; 2], a: [f32; 2], g: [f32; 2]) -> ([f32; 2], f32, bool) {
        let m = self.max_action;
        let p_next = [p[0] + a[0].clamp(-m, m), p[1] + a[1].clamp(-m, m)];
        let reward = match self.reward_type {
            RewardType::Sparse => self.sparse_reward(p, p_next, g),
            RewardType::Dense => -distance(p_next, g),
            RewardType::Radius => (self.goal_radius - distance(p_next, g)).max(0.0),
        };
        (p_next, reward + self.penalty(p_next, g), false)
    }
}

#[cfg(test)]
mod penalty_tests {
    use super::*;
    use crate::env::Env;

    #[test]
    fn radius_reward_is_paid_only_near_the_goal() {
        let e = PointCorners::new(RewardType::Radius);
        assert_eq!(e.spec().name, "point-corners-radius");
        let goal_ne = corner_task(3); // (2, 2)
                                      // (1.7, 1.9) + (0.1, 0.0) → (1.8, 1.9): distance √(0.04 + 0.01) = 0.22361, so the
                                      // reward is 0.5 − 0.22361 = 0.27639.
        let mut st = [1.7, 1.9];
        let (r, done) = e.step(&goal_ne, &mut st, &[0.1, 0.0]);
        assert!((r - 0.276_393).abs() < 1e-5, "{r}");
        assert!(!done);
        assert!((st[0] - 1.8).abs() < 1e-6 && (st[1] - 1.9).abs() < 1e-6);
        // An action beyond ±0.2 is clipped: (1.2, 2.0) + (0.5, 0) → (1.4, 2.0), distance
        // 0.6 > 0.5: nothing.
        let mut st = [1.2, 2.0];
        let (r, _) = e.step(&goal_ne, &mut st, &[0.5, 0.0]);
        assert_eq!(r, 0.0);
        assert!((st[0] - 1.4).abs() < 1e-6);
        // Near a wrong corner (−2, −2), nothing either.
        let mut st = [-1.9, -2.0];
        let (r, _) = e.step(&goal_ne, &mut st, &[-0.1, 0.0]);
        assert_eq!(r, 0.0);
        // Exactly at the goal: the full 0.5.
        let mut st = [1.9, 2.0];
        let (r, _) = e.step(&goal_ne, &mut st, &[0.1, 0.0]);
        assert!((r - 0.5).abs() < 1e-6, "{r}");
    }

    #[test]
    fn wrong_corner_penalty_matches_the_formula_and_spares_the_goal() {
        let e = PointCorners::penalized(100.0);
        let goal_ne = corner_task(3);
        // At (−1.5, −2) (near the wrong SW corner (−2,−2)): distance² to SW = 0.25, so the
        // penalty is −100·(1 − 0.25/4) = −93.75; the other wrong corners are > 2 away.
        let mut st = [-1.5 + 0.1, -2.0];
        let (r, _) = e.step(&goal_ne, &mut st, &[-0.1, 0.0]);
        assert!((r - (-93.75)).abs() < 1e-3, "{r}");
        // Next to the goal corner there is no penalty: the sparse progress reward only.
        let mut st = [1.9, 1.9];
        let (r, _) = e.step(&goal_ne, &mut st, &[0.05, 0.05]);
        let want = distance([1.9, 1.9], [2.0, 2.0]) - distance([1.95, 1.95], [2.0, 2.0]);
        assert!((r - want).abs() < 1e-5, "{r} vs {want}");
        assert_eq!(PointCorners::default().wrong_corner_penalty, 0.0);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::env::{Env, VecEnv};
    use crate::rng;

    const TOL: f32 = 1e-5;
    /// Corner (2, 2).
    fn ne() -> Task {
        corner_task(3)
    }

    #[test]
    fn corner_indices_follow_promp_order() {
        assert_eq!(goal(&corner_task(0)), [-2.0, -2.0]);
        assert_eq!(goal(&corner_task(1)), [2.0, -2.0]);
        assert_eq!(goal(&corner_task(2)), [-2.0, 2.0]);
        assert_eq!(goal(&ne()), [2.0, 2.0]);
    }

    #[test]
    fn the_finite_task_set_is_the_four_corners_once_each() {
        let all = PointCorners::default()
            .finite_tasks()
            .expect("finite family");
        let goals: Vec<[f32; 2]> = all.iter().map(goal).collect();
        assert_eq!(goals, CORNERS.to_vec());
    }

    #[test]
    fn names_follow_the_reward_type() {
        assert_eq!(PointCorners::default().spec().name, "point-corners");
        assert_eq!(PointCorners::default().reward_type(), RewardType::Sparse);
        assert_eq!(
            PointCorners::new(RewardType::Dense).spec().name,
            "point-corners-dense"
        );
    }

    #[test]
    fn reset_draws_the_start_from_the_small_square_and_never_terminates() {
        let env = PointCorners::default();
        let mut rng = rng::stream(5, "env");
        let mut state = [0.0; 2];
        let mut starts = Vec::new();
        for _ in 0..500 {
            env.reset(&ne(), &mut state, &mut rng);
            assert!(
                state.iter().all(|c| (-0.2..0.2).contains(c)),
                "start {state:?}"
            );
            starts.push(state);
            let (_, term) = env.step(&ne(), &mut state, &[0.2, 0.2]);
            assert!(!term);
        }
        // Starts are random, not fixed.
        assert_ne!(starts[0], starts[1]);
    }

    #[test]
    fn sparse_reward_is_zero_inside_the_l1_ball() {
        let env = PointCorners::default();
        let mut state = [0.1, 0.1];
        // p' = (0.3, 0.15): ‖p'‖₁ = 0.45 < 0.5, so 0 although the move approaches (2, 2).
        let (r, _) = env.step(&ne(), &mut state, &[0.2, 0.05]);
        assert!((state[0] - 0.3).abs() < TOL && (state[1] - 0.15).abs() < TOL);
        assert_eq!(r, 0.0);
    }

    #[test]
    fn sparse_reward_is_the_distance_decrease_in_the_goal_quadrant() {
        let env = PointCorners::default();
        let mut state = [1.0, 1.0];
        // p = (1, 1), p' = (1.2, 1.2); ‖p − g‖ = √2 = 1.4142136, ‖p' − g‖ = 0.8·√2 = 1.1313708;
        // reward = 0.2·√2 = 0.2828427.
        let (r, _) = env.step(&ne(), &mut state, &[0.2, 0.2]);
        assert!((r - 0.282_842_7).abs() < TOL, "reward {r}");
        // Moving away, still nearest to (2, 2): p' = (1.0, 1.2), ‖p' − g‖ = √(1 + 0.64) = 1.2806248;
        // reward = 1.1313708 − 1.2806248 = −0.1492540 (negative progress is paid too).
        let (r, _) = env.step(&ne(), &mut state, &[-0.2, 0.0]);
        assert!((r + 0.149_254).abs() < TOL, "reward {r}");
    }

    #[test]
    fn fixed_variant_charges_leaving_the_goal_region_so_oscillation_earns_nothing() {
        // Goal (2, 2). p0 = (1.9, −0.1) is nearest to (2, −2); p1 = (1.9, 0.1) is in the
        // goal's quadrant. ‖p0 − g‖ = √(0.01 + 4.41) = 2.1023796, ‖p1 − g‖ = √(0.01 + 3.61)
        // = 1.9026298: entering pays 0.1997498 in both variants.
        for (env, exit) in [
            (PointCorners::default(), 0.0),
            (PointCorners::fixed(), -0.199_749_8),
        ] {
            let mut state = [1.9, -0.1];
            let (r_in, _) = env.step(&ne(), &mut state, &[0.0, 0.2]);
            assert!((r_in - 0.199_749_8).abs() < TOL, "reward {r_in}");
            // Leaving again: ProMP pays 0 (the loophole), the fixed variant charges −0.1997498.
            let (r_out, _) = env.step(&ne(), &mut state, &[0.0, -0.2]);
            assert!((r_out - exit).abs() < TOL, "reward {r_out}");
        }
        assert_eq!(PointCorners::fixed().spec().name, "point-corners-fixed");
    }

    #[test]
    fn sparse_reward_is_zero_when_another_corner_is_nearer() {
        let env = PointCorners::default();
        // Goal (2, 2); p' = (−1.2, 1.0) is nearest to (−2, 2) and outside the L1 ball.
        let mut state = [-1.0, 1.0];
        let (r, _) = env.step(&ne(), &mut state, &[-0.2, 0.0]);
        assert_eq!(r, 0.0);
        // The same move pays its progress when (−2, 2) is the goal: p = (−1, 1), p' = (−1.2, 1);
        // √2 − √(0.64 + 1) = 1.4142136 − 1.2806248 = 0.1335888.
        let mut state = [-1.0, 1.0];
        let (r, _) = env.step(&corner_task(2), &mut state, &[-0.2, 0.0]);
        assert!((r - 0.133_588_8).abs() < TOL, "reward {r}");
    }

    #[test]
    fn actions_are_clipped_to_a_fifth_per_axis() {
        let env = PointCorners::new(RewardType::Dense);
        let mut state = [0.0, 0.0];
        // clip(9, −9) = (0.2, −0.2); dense reward −‖(0.2, −0.2) − (2, 2)‖ = −√(3.24 + 4.84) = −2.8425341.
        let (r, term) = env.step(&ne(), &mut state, &[9.0, -9.0]);
        assert!((state[0] - 0.2).abs() < TOL && (state[1] + 0.2).abs() < TOL);
        assert!((r + 2.842_534).abs() < TOL, "reward {r}");
        assert!(!term);
    }

    #[test]
    fn success_means_ending_within_half_a_unit_of_the_goal_corner() {
        let env = PointCorners::default();
        assert_eq!(env.success(&ne(), &[1.7, 1.7], false), Some(true)); // 0.42 away
        assert_eq!(env.success(&ne(), &[1.6, 1.6], false), Some(false)); // 0.57 away
        assert_eq!(env.success(&ne(), &[-2.0, -2.0], false), Some(false)); // wrong corner
        assert_eq!(env.position(&[1.6, -0.3]), Some([1.6, -0.3]));
    }

    #[test]
    fn tasks_cover_all_four_corners_evenly() {
        let env = PointCorners::default();
        let mut rng = rng::stream(2, "tasks");
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            counts[corner_index(&env.sample_task(&mut rng))] += 1;
        }
        // Each near 1000; 6 standard deviations (√(4000·¼·¾) ≈ 27) of slack.
        assert!(
            counts.iter().all(|&c| (840..1160).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn vec_env_truncates_exactly_at_the_horizon() {
        let env = Arc::new(PointCorners::default());
        let horizon = env.spec().horizon;
        assert_eq!(horizon, 100);
        let mut venv = VecEnv::new(env, vec![ne()], &[11]);
        assert_eq!(venv.reset().len(), 2);
        for t in 1..=horizon {
            let step = venv.step(&[0.2, 0.2]);
            assert!(step.active[0] && !step.terminated[0]);
            assert_eq!(step.truncated[0], t == horizon, "step {t}");
            assert_eq!(venv.all_done(), t == horizon);
            if t == horizon {
                // 100 steps of (0.2, 0.2) end far past the corner: not a success.
                assert_eq!(step.success[0], Some(false));
                assert!(venv.row_state(0)[0] > 19.0);
            }
        }
    }
}
