//! A point on a line whose action is its next position, rewarded for landing on a goal
//! at −1 or +1: ProMP's testbed for meta-gradient estimators.
//!
//! Source: Rothfuss et al. 2019 (ProMP), `jonasrothfuss/ProMP` branch `full_code`,
//! `experiments/1d_env/point_1d_hand_grads.py` and `run_1d_exp.py` (mission-anchors §2.5),
//! where DiCE and E-MAML-style gradients are compared with hand-derived ones.
//!
//! | | |
//! |---|---|
//! | observation | the state `s` (1-D) |
//! | action | 1-D, clipped to `[-2, 2]` |
//! | start | `s ~ U[-2, 2)` (drawn from the row's stream) |
//! | task | goal `∈ {−1, +1}`, uniformly ([`goal_task`]: parameters `[g]`) |
//! | dynamics | `s' = clip(a)` (the state is forgotten) |
//! | reward | `exp(−0.1·(clip(a) − goal)²)` |
//! | termination | never |
//! | horizon | 5 |
//! | success | none defined (the family is scored by its return) |
//!
//! The small horizon and closed-form reward make exact expected returns and their
//! gradients computable by hand for a simple policy (ProMP: `μ(s) = θ₀·s² + θ₁`, `σ = 1`).

use rand::Rng as _;

use super::{uniform, Env, EnvSpec, Task};
use crate::rng::Rng;

/// The 1-D goal family; [`Default`] gives the paper settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Goal1d {
    /// The start state is drawn from `U[start_range.0, start_range.1)`. Paper: (−2, 2).
    pub start_range: (f32, f32),
    /// Actions (and hence states) are clipped to ±this. Paper: 2.
    pub max_action: f32,
    /// The goal is `+goal_magnitude` or `−goal_magnitude` with equal probability. Paper: 1.
    pub goal_magnitude: f32,
    /// Sharpness `c` of the reward `exp(−c·(a − goal)²)`. Paper: 0.1.
    pub reward_sharpness: f32,
    spec: EnvSpec,
}

impl Default for Goal1d {
    fn default() -> Self {
        Self {
            start_range: (-2.0, 2.0),
            max_action: 2.0,
            goal_magnitude: 1.0,
            reward_sharpness: 0.1,
            spec: EnvSpec {
                name: "goal-1d",
                obs_dim: 1,
                act_dim: 1,
                horizon: 5,
                summary: "1-D point, next state = action, reward exp(-0.1 (a - goal)^2), goal +-1, 5 steps (ProMP)",
            },
        }
    }
}

impl Goal1d {
    /// The same family with episodes truncated after `horizon` steps.
    pub fn with_horizon(mut self, horizon: usize) -> Self {
        self.spec.horizon = horizon;
        self
    }
}

/// The goal of a goal-1d task.
fn goal(task: &Task) -> f32 {
    task.param(0)
}

/// The goal-1d task with goal `g`: parameters `[g]`.
pub fn goal_task(g: f32) -> Task {
    Task::new([g])
}

impl Env for Goal1d {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    /// `[s]`.
    fn state_dim(&self) -> usize {
        1
    }

    fn sample_task(&self, rng: &mut Rng) -> Task {
        let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
        goal_task(sign * self.goal_magnitude)
    }

    fn reset(&self, _task: &Task, state: &mut [f32], rng: &mut Rng) {
        state[0] = uniform(rng, self.start_range.0, self.start_range.1);
    }

    fn step(&self, task: &Task, state: &mut [f32], action: &[f32]) -> (f32, bool) {
        let a = action[0].clamp(-self.max_action, self.max_action);
        state[0] = a;
        let d = a - goal(task);
        ((-self.reward_sharpness * d * d).exp(), false)
    }

    fn observe(&self, _task: &Task, state: &[f32], obs: &mut [f32]) {
        obs[0] = state[0];
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::env::VecEnv;
    use crate::rng;

    fn up() -> Task {
        goal_task(1.0)
    }
    fn down() -> Task {
        goal_task(-1.0)
    }

    #[test]
    fn next_state_is_the_action_and_reward_is_a_gaussian_bump_at_the_goal() {
        let env = Goal1d::default();
        let mut state = [1.7];
        // a = 0.5, goal 1: exp(−0.1·0.25) = exp(−0.025) = 0.9753099.
        let (r, term) = env.step(&up(), &mut state, &[0.5]);
        assert_eq!(state, [0.5]);
        assert!((r - 0.975_309_9).abs() < 1e-6, "reward {r}");
        assert!(!term);
        // On the goal the reward is exp(0) = 1.
        let (r, _) = env.step(&down(), &mut state, &[-1.0]);
        assert!((r - 1.0).abs() < 1e-6, "reward {r}");
    }

    #[test]
    fn actions_are_clipped_to_two_before_moving_and_rewarding() {
        let env = Goal1d::default();
        let mut state = [0.0];
        // clip(7) = 2, goal −1: exp(−0.1·9) = exp(−0.9) = 0.4065697.
        let (r, _) = env.step(&down(), &mut state, &[7.0]);
        assert_eq!(state, [2.0]);
        assert!((r - 0.406_569_7).abs() < 1e-6, "reward {r}");
        env.step(&down(), &mut state, &[-7.0]);
        assert_eq!(state, [-2.0]);
    }

    #[test]
    fn start_is_uniform_on_minus_two_two_and_observed_as_is() {
        let env = Goal1d::default();
        let mut rng = rng::stream(8, "env");
        let mut state = [0.0];
        let mut starts = Vec::new();
        for _ in 0..1000 {
            env.reset(&up(), &mut state, &mut rng);
            assert!((-2.0..2.0).contains(&state[0]), "start {state:?}");
            starts.push(state[0]);
        }
        assert!(starts.iter().any(|&s| s > 1.9) && starts.iter().any(|&s| s < -1.9));
        let mut obs = [f32::NAN];
        env.observe(&up(), &state, &mut obs);
        assert_eq!(obs, state);
    }

    #[test]
    fn goals_are_plus_or_minus_one_evenly() {
        let env = Goal1d::default();
        let mut rng = rng::stream(1, "tasks");
        let mut ups = 0;
        for _ in 0..2000 {
            let g = goal(&env.sample_task(&mut rng));
            assert!(g == 1.0 || g == -1.0, "goal {g}");
            if g == 1.0 {
                ups += 1;
            }
        }
        // 1000 ± 6 standard deviations (√500 ≈ 22).
        assert!((866..1134).contains(&ups), "{ups} of 2000 goals at +1");
    }

    #[test]
    fn defines_no_success() {
        assert_eq!(Goal1d::default().success(&up(), &[1.0], false), None);
        assert_eq!(Goal1d::default().position(&[1.0]), None);
    }

    #[test]
    fn vec_env_truncates_exactly_at_the_horizon() {
        let env = Arc::new(Goal1d::default());
        let horizon = env.spec().horizon;
        assert_eq!(horizon, 5);
        let mut venv = VecEnv::new(env, vec![up(), down()], &[1, 2]);
        assert_eq!(venv.reset().len(), 2);
        for t in 1..=horizon {
            let step = venv.step(&[1.0, 1.0]);
            assert_eq!(step.obs, vec![1.0, 1.0]);
            // Row 0 sits on its goal (reward 1), row 1 is 2 away: exp(−0.4) = 0.6703200.
            assert!((step.reward[0] - 1.0).abs() < 1e-6);
            assert!((step.reward[1] - 0.670_32).abs() < 1e-6);
            assert_eq!(step.terminated, vec![false, false]);
            assert_eq!(step.truncated, vec![t == horizon; 2], "step {t}");
            assert_eq!(venv.all_done(), t == horizon);
            assert_eq!(step.success, vec![None, None]);
        }
    }
}
