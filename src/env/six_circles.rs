//! Six goals on a circle, some of them correct and some forbidden: ES-MAML's
//! exploration benchmark ("six circles").
//!
//! Source: Song et al. 2020 (ES-MAML), `google-research/google-research`
//! `es_maml/task.py` `NavigationTaskCombo` (mission-anchors §2.4). The class defaults
//! (6 goals, 2 correct) are ours too; ES-MAML's `config.py` runs 4 goals with 1 correct.
//!
//! | | |
//! |---|---|
//! | observation | position `p = (x, y)` (the visited flags are hidden, as in the source) |
//! | action | 2-D displacement, each component clipped to `[-0.1, 0.1]` |
//! | dynamics | `p ← clip(p + clip(a), −5, 5)` per axis |
//! | start | the origin, no goal visited |
//! | goals | `n = 6` points `g_i = √8·(cos 2πi/n, sin 2πi/n)` |
//! | task | `k = 2` correct goals drawn without replacement ([`combo_task`]: parameters the sorted indices) |
//! | reward | `Σ_{i wrong} 10000·min(0, ‖p − g_i‖² − 4) + Σ_{i correct, not visited} (−4 + max(0, 4 − ‖p − g_i‖²))` |
//! | visiting | a correct goal is visited once `‖p − g_i‖² < 0.01`; from then on it contributes 0 |
//! | termination | never |
//! | horizon | 100 |
//! | success | every correct goal visited by the end of the episode |
//!
//! Order within a step, as in the source: move, then compute the reward with the visited
//! flags from *before* the step, then mark the goals reached by this move as visited. The
//! step that reaches a goal therefore still pays that goal's term (`−‖p − g_i‖²`, close
//! to 0); the following steps pay nothing for it.
//!
//! State: `[x, y, v_0, …, v_{k−1}]`, `v_j ∈ {0, 1}` the visited flag of the task's `j`-th
//! correct goal (in the task's sorted order).

use super::{Env, EnvSpec, Task};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// Squared radius of the region around a goal inside which its reward term varies: the
/// wrong-goal penalty and the correct-goal bonus are both zero outside `‖p − g‖² ≥ 4`.
pub const BOUNDARY: f32 = 4.0;

/// A correct goal is visited once the squared distance to it falls below this.
pub const VISIT_RADIUS_SQ: f32 = 0.01;

/// The six-circles family; [`Default`] gives the paper settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SixCircles {
    /// Number of goals on the circle. Paper: 6.
    pub num_goals: usize,
    /// Number of correct goals per task (the others are forbidden). Paper: 2.
    pub num_correct: usize,
    /// Weight of the wrong-goal penalty. Paper: 10000.
    pub wrong_goal_penalty: f32,
    /// Radius of the circle of goals. Paper: √8 (so the origin is just outside every
    /// goal's reward region).
    pub radius: f32,
    /// Largest displacement per axis and step; actions are clipped to ±this. Paper: 0.1.
    pub max_action: f32,
    /// Positions are clipped to ±this per axis. Paper: 5.
    pub position_limit: f32,
    spec: EnvSpec,
}

impl Default for SixCircles {
    fn default() -> Self {
        Self {
            num_goals: 6,
            num_correct: 2,
            wrong_goal_penalty: 10000.0,
            radius: 8f32.sqrt(),
            max_action: 0.1,
            position_limit: 5.0,
            spec: EnvSpec {
                name: "six-circles",
                obs_dim: 2,
                act_dim: 2,
                horizon: 100,
                summary: "2-D point, visit the 2 correct of 6 goals on a circle, avoid the others (ES-MAML)",
            },
        }
    }
}

impl SixCircles {
    /// The family with `num_correct` of `num_goals` goals correct, paper settings otherwise.
    /// Needs `1 ≤ num_correct ≤ num_goals`.
    pub fn new(num_goals: usize, num_correct: usize) -> Result<Self> {
        if num_goals == 0 {
            return Err(Error::invalid("num_goals", num_goals, "at least 1"));
        }
        if num_correct == 0 || num_correct > num_goals {
            return Err(Error::invalid(
                "num_correct",
                num_correct,
                format!("1..={num_goals} (at most num_goals)"),
            ));
        }
        Ok(Self {
            num_goals,
            num_correct,
            ..Self::default()
        })
    }

    /// ES-MAML's `config.py` default: 4 goals, 1 correct (`four-circles`). With the wrong
    /// goals penalized by 10000 per unit of squared distance inside radius 2, this is the
    /// "heavily penalized" four-goal task of ES-MAML §4.1; its goals `√8·(cos, sin)(πi/2)`
    /// are the four corners of ProMP's task turned by 45°.
    pub fn four_circles() -> Self {
        let mut e = Self::new(4, 1).expect("1 of 4 goals is a valid split");
        e.spec.name = "four-circles";
        e.spec.summary =
            "2-D point, reach the 1 correct of 4 goals on a circle, wrong goals heavily penalized (ES-MAML config)";
        e
    }

    /// The task of ES-MAML §4.1's text and Fig. 2: six targets on the circle, every one
    /// correct, each charging `−4 + max(0, 4 − ‖p − g‖²)` per step until the agent reaches
    /// it and "deactivates" it (`six-circles-visit`). In the source's terms this is
    /// `NavigationTaskCombo` with all six goals correct, so there is one task and no
    /// forbidden goal; the paper does not say what else would differ between tasks. The
    /// meta-policy must learn a route past all six, and adaptation (hill climbing with K
    /// queries in Fig. 2) improves that route.
    pub fn visit_all() -> Self {
        let mut e = Self::new(6, 6).expect("6 of 6 goals is a valid split");
        e.spec.name = "six-circles-visit";
        e.spec.summary =
            "2-D point, reach all 6 goals on a circle, each charges until reached (ES-MAML §4.1, Fig. 2)";
        e
    }

    /// The same family with episodes truncated after `horizon` steps.
    pub fn with_horizon(mut self, horizon: usize) -> Self {
        self.spec.horizon = horizon;
        self
    }

    /// Position of goal `i` on the circle: `radius·(cos 2πi/n, sin 2πi/n)`.
    pub fn goal(&self, i: usize) -> [f32; 2] {
        let angle = std::f64::consts::TAU * i as f64 / self.num_goals as f64;
        let r = f64::from(self.radius);
        [(r * angle.cos()) as f32, (r * angle.sin()) as f32]
    }

    /// The correct goals of a six-circles task (goal indices as numbers), checked against
    /// the config.
    fn correct<'t>(&self, task: &'t Task) -> &'t [f32] {
        assert_eq!(
            task.params.len(),
            self.num_correct,
            "a six-circles task should name num_correct goals, got {task:?}"
        );
        &task.params
    }
}

/// The task whose correct goals are `correct` (sorted indices into the circle):
/// parameters `correct` as numbers.
pub fn combo_task(correct: &[usize]) -> Task {
    Task::new(correct.iter().map(|&i| i as f32).collect::<Vec<_>>())
}

/// The correct goal indices of a [`combo_task`].
pub fn combo_indices(task: &Task) -> Vec<usize> {
    task.params.iter().map(|&i| i as usize).collect()
}

fn squared_distance(p: [f32; 2], g: [f32; 2]) -> f32 {
    let (dx, dy) = (p[0] - g[0], p[1] - g[1]);
    dx * dx + dy * dy
}

impl Env for SixCircles {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    /// `[x, y]` and one visited flag per correct goal.
    fn state_dim(&self) -> usize {
        2 + self.num_correct
    }

    fn sample_task(&self, rng: &mut Rng) -> Task {
        assert!(
            self.num_correct <= self.num_goals,
            "num_correct ({}) should not exceed num_goals ({})",
            self.num_correct,
            self.num_goals
        );
        let mut correct =
            rand::seq::index::sample(rng, self.num_goals, self.num_correct).into_vec();
        correct.sort_unstable();
        combo_task(&correct)
    }

    /// Every `num_correct`-subset of the goals, in lexicographic order.
    fn finite_tasks(&self) -> Option<Vec<Task>> {
        fn extend(from: usize, n: usize, k: usize, cur: &mut Vec<usize>, out: &mut Vec<Task>) {
            if cur.len() == k {
                out.push(combo_task(cur));
                return;
            }
            for i in from..n {
                cur.push(i);
                extend(i + 1, n, k, cur, out);
                cur.pop();
            }
        }
        let mut out = Vec::new();
        extend(
            0,
            self.num_goals,
            self.num_correct,
            &mut Vec::new(),
            &mut out,
        );
        Some(out)
    }

    fn reset(&self, task: &Task, state: &mut [f32], _rng: &mut Rng) {
        self.correct(task);
        state.fill(0.0);
    }

    fn fixed_start(&self) -> bool {
        true
    }

    fn step(&self, task: &Task, state: &mut [f32], action: &[f32]) -> (f32, bool) {
        let correct = self.correct(task);
        let (m, lim) = (self.max_action, self.position_limit);
        for axis in 0..2 {
            state[axis] = (state[axis] + action[axis].clamp(-m, m)).clamp(-lim, lim);
        }
        let p = [state[0], state[1]];
        let mut reward = 0.0;
        for i in 0..self.num_goals {
            let sq = squared_distance(p, self.goal(i));
            match correct.iter().position(|&c| c as usize == i) {
                None => reward += self.wrong_goal_penalty * (sq - BOUNDARY).min(0.0),
                Some(j) => {
                    let visited = &mut state[2 + j];
                    if *visited == 0.0 {
                        reward += -BOUNDARY + (BOUNDARY - sq).max(0.0);
                        if sq < VISIT_RADIUS_SQ {
                            *visited = 1.0;
                        }
                    }
                }
            }
        }
        (reward, false)
    }

    fn observe(&self, _task: &Task, state: &[f32], obs: &mut [f32]) {
        obs.copy_from_slice(&state[..2]);
    }

    fn success(&self, task: &Task, state: &[f32], _terminated: bool) -> Option<bool> {
        let k = self.correct(task).len();
        Some(state[2..2 + k].iter().all(|&v| v == 1.0))
    }

    fn position(&self, state: &[f32]) -> Option<[f32; 2]> {
        Some([state[0], state[1]])
    }

    fn goals(&self, task: &Task) -> Vec<[f32; 2]> {
        self.correct(task)
            .iter()
            .map(|&i| self.goal(i as usize))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::env::VecEnv;
    use crate::rng;

    fn task_0_3() -> Task {
        combo_task(&[0, 3])
    }

    #[test]
    fn goals_lie_on_the_circle_of_radius_root_eight() {
        let env = SixCircles::default();
        let g = env.goal(0);
        assert!((g[0] - 2.828_427).abs() < 1e-6 && g[1].abs() < 1e-6);
        // g_1 = √8·(cos 60°, sin 60°) = (√2, √6) = (1.4142136, 2.4494897).
        let g = env.goal(1);
        assert!((g[0] - std::f32::consts::SQRT_2).abs() < 1e-6);
        assert!((g[1] - 6f32.sqrt()).abs() < 1e-6);
        for i in 0..6 {
            let r2 = squared_distance(env.goal(i), [0.0, 0.0]);
            assert!((r2 - 8.0).abs() < 1e-5, "goal {i}: r² = {r2}");
        }
    }

    #[test]
    fn first_step_from_the_origin_pays_minus_four_per_correct_goal() {
        let env = SixCircles::default();
        let task = task_0_3();
        let mut state = vec![f32::NAN; env.state_dim()];
        env.reset(&task, &mut state, &mut rng::stream(0, "test"));
        assert_eq!(state, vec![0.0; 4]);
        // p = (0.1, 0): ‖p − g_0‖² = 2.7284271² = 7.444 ≥ 4, ‖p − g_3‖² = 2.9284271² = 8.576 ≥ 4,
        // so each correct goal pays −4 + 0; wrong goals are ≥ 7.7 away (squared): no penalty.
        let (r, term) = env.step(&task, &mut state, &[0.1, 0.0]);
        assert!((r - (-8.0)).abs() < 1e-6, "reward {r}");
        assert!(!term);
        assert_eq!(state[2..], [0.0, 0.0]);
    }

    #[test]
    fn coming_near_a_wrong_goal_costs_ten_thousand_per_unit_of_squared_distance() {
        let env = SixCircles::default();
        let task = task_0_3();
        let mut state = vec![1.4, 2.4, 0.0, 0.0];
        // p = (1.4, 2.4), g_1 = (1.4142136, 2.4494897): ‖p − g_1‖² = 0.0142136² + 0.0494897²
        // = 0.00265126; penalty 10000·(0.00265126 − 4) = −39973.487. g_2 (7.92), g_4, g_5 are
        // farther than 4 (squared): 0. Correct g_0 (7.80) and g_3 (23.6): −4 each.
        // Total −39981.487.
        let (r, _) = env.step(&task, &mut state, &[0.0, 0.0]);
        assert!((r - (-39_981.49)).abs() < 0.05, "reward {r}");
    }

    #[test]
    fn reaching_a_goal_pays_its_term_on_that_step_and_nothing_after() {
        let env = SixCircles::default();
        let task = task_0_3();
        let g0 = env.goal(0);
        let mut state = vec![g0[0] - 0.15, 0.0, 0.0, 0.0];
        // p = g_0 − (0.05, 0): ‖p − g_0‖² = 0.0025 < 0.01. The reward uses the flags from
        // before the move, so g_0 still pays −4 + (4 − 0.0025) = −0.0025; g_3 pays −4;
        // wrong g_1, g_5 are 8 − (small) > 4 away: 0. Total −4.0025; then g_0 is visited.
        let (r, _) = env.step(&task, &mut state, &[0.1, 0.0]);
        assert!((r - (-4.0025)).abs() < 1e-4, "reward {r}");
        assert_eq!(state[2..], [1.0, 0.0]);
        // Staying: g_0 now contributes 0 (unvisited it would pay −0.0025); only g_3's −4.
        let (r, _) = env.step(&task, &mut state, &[0.0, 0.0]);
        assert!((r - (-4.0)).abs() < 1e-6, "reward {r}");
    }

    #[test]
    fn a_goal_farther_than_a_tenth_is_not_visited() {
        let env = SixCircles::default();
        let task = task_0_3();
        let g0 = env.goal(0);
        // ‖p − g_0‖² = 0.11² = 0.0121 ≥ 0.01; reward −0.0121 − 4 = −4.0121.
        let mut state = vec![g0[0] - 0.21, 0.0, 0.0, 0.0];
        let (r, _) = env.step(&task, &mut state, &[0.1, 0.0]);
        assert!((r - (-4.0121)).abs() < 1e-4, "reward {r}");
        assert_eq!(state[2..], [0.0, 0.0]);
    }

    #[test]
    fn actions_and_positions_are_clipped() {
        let env = SixCircles::default();
        let task = task_0_3();
        let mut state = vec![0.0; 4];
        env.step(&task, &mut state, &[3.0, -0.05]);
        assert!((state[0] - 0.1).abs() < 1e-6 && (state[1] + 0.05).abs() < 1e-6);
        let mut state = vec![4.95, -4.98, 0.0, 0.0];
        env.step(&task, &mut state, &[0.1, -0.1]);
        assert_eq!(state[..2], [5.0, -5.0]);
    }

    #[test]
    fn success_needs_every_correct_goal_visited() {
        let env = SixCircles::default();
        let task = task_0_3();
        assert_eq!(env.success(&task, &[0.0, 0.0, 1.0, 1.0], false), Some(true));
        assert_eq!(
            env.success(&task, &[0.0, 0.0, 1.0, 0.0], false),
            Some(false)
        );
        assert_eq!(
            env.success(&task, &[0.0, 0.0, 0.0, 0.0], false),
            Some(false)
        );
    }

    #[test]
    fn tasks_are_sorted_distinct_goals_covering_all_indices() {
        let env = SixCircles::default();
        let mut rng = rng::stream(4, "tasks");
        let mut seen = [0usize; 6];
        for _ in 0..600 {
            let correct = combo_indices(&env.sample_task(&mut rng));
            assert_eq!(correct.len(), 2);
            assert!(correct[0] < correct[1] && correct[1] < 6, "{correct:?}");
            for i in correct {
                seen[i] += 1;
            }
        }
        // Each index is correct in about a third of the tasks (200 of 600).
        assert!(seen.iter().all(|&c| (140..260).contains(&c)), "{seen:?}");
    }

    #[test]
    fn new_rejects_more_correct_goals_than_goals() {
        assert!(matches!(
            SixCircles::new(4, 5),
            Err(Error::InvalidConfig { .. })
        ));
        assert!(matches!(
            SixCircles::new(4, 0),
            Err(Error::InvalidConfig { .. })
        ));
        let env = SixCircles::new(4, 1).expect("4 goals, 1 correct should be valid");
        assert_eq!(env.state_dim(), 3);
    }

    #[test]
    fn vec_env_truncates_exactly_at_the_horizon() {
        let env = Arc::new(SixCircles::default());
        let horizon = env.spec().horizon;
        assert_eq!(horizon, 100);
        let mut venv = VecEnv::new(env, vec![task_0_3()], &[3]);
        assert_eq!(venv.reset(), vec![0.0, 0.0]);
        for t in 1..=horizon {
            let step = venv.step(&[0.1, 0.0]);
            assert!(step.active[0] && !step.terminated[0]);
            assert_eq!(step.truncated[0], t == horizon, "step {t}");
            assert_eq!(venv.all_done(), t == horizon);
            if t == horizon {
                // g_0 was passed (visited at step 28), g_3 never: not a success.
                assert_eq!(venv.row_state(0)[2..], [1.0, 0.0]);
                assert_eq!(step.success[0], Some(false));
            }
        }
    }

    #[test]
    fn finite_tasks_are_every_subset_once() {
        let all = SixCircles::default().finite_tasks().expect("finite family");
        // C(6, 2) = 15 sorted pairs, all distinct, each a valid task.
        assert_eq!(all.len(), 15);
        assert_eq!(all[0], combo_task(&[0, 1]));
        assert_eq!(all[14], combo_task(&[4, 5]));
        for (i, a) in all.iter().enumerate() {
            let correct = combo_indices(a);
            assert!(correct[0] < correct[1] && correct[1] < 6);
            assert!(all[i + 1..].iter().all(|b| b != a), "{a:?} repeats");
        }
    }

    #[test]
    fn visit_all_charges_every_goal_until_it_is_reached_and_has_one_task() {
        let env = SixCircles::visit_all();
        assert_eq!(env.spec().name, "six-circles-visit");
        let tasks = env.finite_tasks().unwrap();
        assert_eq!(tasks, vec![combo_task(&[0, 1, 2, 3, 4, 5])]);
        let task = &tasks[0];
        let mut rng = crate::rng::stream(0, "t");
        let mut s = vec![0.0; env.state_dim()];
        env.reset(task, &mut s, &mut rng);
        // From the origin every goal is √8 away (‖p − g‖² = 8 > 4): −4 each, −24 in all.
        let (r, done) = env.step(task, &mut s, &[0.0, 0.0]);
        assert_eq!((r, done), (-24.0, false));
        // Put the point next to goal 0 at (√8, 0) and step onto it.
        let g0 = env.goal(0);
        s[0] = g0[0] - 0.05;
        s[1] = 0.0;
        let (r, _) = env.step(task, &mut s, &[0.05, 0.0]);
        let sq: Vec<f32> = (0..6)
            .map(|i| squared_distance([s[0], s[1]], env.goal(i)))
            .collect();
        let want: f32 = sq.iter().map(|&d| -4.0 + (4.0 - d).max(0.0)).sum();
        assert!((r - want).abs() < 1e-5, "{r} vs {want}");
        assert_eq!(s[2], 1.0, "goal 0 deactivated");
        assert_eq!(env.success(task, &s, false), Some(false), "five goals left");
        // Staying there: goal 0 no longer charges; goals 1 and 5 (at distance √8) still
        // charge −4 each, the others too.
        let (r2, _) = env.step(task, &mut s, &[0.0, 0.0]);
        let want2: f32 = sq[1..].iter().map(|&d| -4.0 + (4.0 - d).max(0.0)).sum();
        assert!((r2 - want2).abs() < 1e-5, "{r2} vs {want2}");
        // Every flag set: success, and the reward is 0.
        s[2..].fill(1.0);
        assert_eq!(env.success(task, &s, false), Some(true));
        assert_eq!(env.step(task, &mut s, &[0.0, 0.0]).0, 0.0);
    }

    #[test]
    fn four_circles_is_one_of_four_goals_on_the_diagonals_turned_by_45_degrees() {
        let env = SixCircles::four_circles();
        assert_eq!(env.spec().name, "four-circles");
        let all = env.finite_tasks().expect("finite family");
        let want: Vec<Task> = (0..4).map(|i| combo_task(&[i])).collect();
        assert_eq!(all, want);
        // g_1 = √8·(cos 90°, sin 90°) = (0, 2.828).
        let g = env.goal(1);
        assert!(g[0].abs() < 1e-6 && (g[1] - 2.828_427).abs() < 1e-6);
        // One step from the origin towards g_0 = (2.83, 0), the correct goal of task [0]:
        // ‖p − g_0‖² = 2.728² = 7.44 ≥ 4 and every other goal is farther: reward −4.
        let task = combo_task(&[0]);
        let mut state = vec![0.0; env.state_dim()];
        let (r, _) = env.step(&task, &mut state, &[0.1, 0.0]);
        assert!((r - (-4.0)).abs() < 1e-6, "reward {r}");
    }
}
