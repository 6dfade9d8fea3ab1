//! Cart-pole balancing with a biased pole-angle sensor: each task is a constant offset
//! added to the observed angle, which a policy must discover and correct for.
//!
//! Dynamics: Barto, Sutton & Anderson 1983, with the constants and explicit Euler
//! integration of Gym's `CartPole-v1` (`gym/envs/classic_control/cartpole.py`). No
//! meta-RL anchor defines this family (mission-anchors §2.6); the task distribution, the
//! continuous action and the success definition below are ours.
//!
//! | | |
//! |---|---|
//! | state | `(x, ẋ, θ, θ̇)`, θ = 0 upright, θ > 0 leaning towards +x |
//! | observation | `(x, ẋ, θ + bias, θ̇)` |
//! | action | 1-D `a`; force `F = 10·clip(a, −1, 1)` newtons on the cart |
//! | start | each state variable `~ U[-0.05, 0.05)` (drawn from the row's stream) |
//! | task | `bias ~ U[-0.15, 0.15)` radians ([`bias_task`]: parameters `[bias]`) |
//! | dynamics | Gym's equations, gravity 9.8, cart 1.0 kg, pole 0.1 kg, half-length 0.5 m, Euler step τ = 0.02 s |
//! | reward | +1 every step, including the step that terminates (as Gym) |
//! | termination | `|x| > 2.4` or `|θ| > 12°` (0.2094 rad), on the true angle |
//! | horizon | 500 (as `CartPole-v1`) |
//! | success | the episode reaches the horizon without terminating |
//!
//! Continuous action: Gym's `CartPole` pushes with ±10 N (two discrete actions). The
//! Gaussian policies of the meta-RL algorithms here emit real actions, so the force is
//! the action clipped to `[-1, 1]`, scaled by `force_mag`; the bang-bang controller is the
//! special case `a = ±1`.
//!
//! Bias range: `±0.15` rad (8.6°) is below the 12° failure angle, so a pole that is
//! upright is observed within the failure band and a policy can still balance it once it
//! has corrected its reading. It is large enough that the bias matters: a linear
//! controller `a = k_x·x + k_ẋ·ẋ + k_θ·θ_obs + k_θ̇·θ̇` can only rest (pole upright, cart
//! still, `a = 0`) where `k_x·x + k_θ·bias = 0`, so it drives the cart towards
//! `x = −k_θ·bias/k_x`; for the balancing gains of the tests (`k_x = 0.5`, `k_θ = 10`)
//! that is off the track (`|x| > 2.4`) once `|bias| > 0.12`. The same controller
//! balances for the full 500 steps when it subtracts the bias.

use super::{uniform, Env, EnvSpec, Task};
use crate::rng::Rng;

/// The biased-sensor cart-pole family; [`Default`] gives the Gym constants and our task
/// distribution.
#[derive(Clone, Debug, PartialEq)]
pub struct CartpoleBiased {
    /// Gravitational acceleration (m/s²). Gym: 9.8.
    pub gravity: f32,
    /// Mass of the cart (kg). Gym: 1.0.
    pub masscart: f32,
    /// Mass of the pole (kg). Gym: 0.1.
    pub masspole: f32,
    /// Half the pole's length (m). Gym: 0.5.
    pub length: f32,
    /// Force (N) of a full action `a = ±1`. Gym: 10.
    pub force_mag: f32,
    /// Integration step (s). Gym: 0.02.
    pub tau: f32,
    /// The episode terminates when `|x|` exceeds this (m). Gym: 2.4.
    pub x_threshold: f32,
    /// The episode terminates when `|θ|` exceeds this (rad). Gym: 12° = 0.2094.
    pub theta_threshold: f32,
    /// Each initial state variable is drawn from `U[-reset_range, reset_range)`. Gym: 0.05.
    pub reset_range: f32,
    /// The sensor bias of a task is drawn from `U[bias_range.0, bias_range.1)` (rad).
    /// Ours: (−0.15, 0.15); see the module docs.
    pub bias_range: (f32, f32),
    spec: EnvSpec,
}

impl Default for CartpoleBiased {
    fn default() -> Self {
        Self {
            gravity: 9.8,
            masscart: 1.0,
            masspole: 0.1,
            length: 0.5,
            force_mag: 10.0,
            tau: 0.02,
            x_threshold: 2.4,
            theta_threshold: 12.0 * 2.0 * std::f32::consts::PI / 360.0,
            reset_range: 0.05,
            bias_range: (-0.15, 0.15),
            spec: EnvSpec {
                name: "cartpole-biased",
                obs_dim: 4,
                act_dim: 1,
                horizon: 500,
                summary: "cart-pole (Gym v1 physics, force 10*clip(a,-1,1)), pole-angle sensor bias U[-0.15,0.15] rad",
            },
        }
    }
}

impl CartpoleBiased {
    /// The same family with episodes truncated after `horizon` steps.
    pub fn with_horizon(mut self, horizon: usize) -> Self {
        self.spec.horizon = horizon;
        self
    }
}

/// The sensor bias of a cartpole-biased task.
fn bias(task: &Task) -> f32 {
    task.param(0)
}

/// The cartpole-biased task with sensor bias `b` radians: parameters `[b]`.
pub fn bias_task(b: f32) -> Task {
    Task::new([b])
}

impl Env for CartpoleBiased {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    /// `[x, ẋ, θ, θ̇]` (true, unbiased).
    fn state_dim(&self) -> usize {
        4
    }

    fn sample_task(&self, rng: &mut Rng) -> Task {
        bias_task(uniform(rng, self.bias_range.0, self.bias_range.1))
    }

    fn reset(&self, _task: &Task, state: &mut [f32], rng: &mut Rng) {
        for s in state.iter_mut() {
            *s = uniform(rng, -self.reset_range, self.reset_range);
        }
    }

    /// Gym's `CartPole-v1` step with `force = force_mag·clip(a, −1, 1)`.
    fn step(&self, _task: &Task, state: &mut [f32], action: &[f32]) -> (f32, bool) {
        let [x, x_dot, theta, theta_dot] = [state[0], state[1], state[2], state[3]];
        let force = self.force_mag * action[0].clamp(-1.0, 1.0);
        let total_mass = self.masscart + self.masspole;
        let polemass_length = self.masspole * self.length;
        let (sin, cos) = theta.sin_cos();
        let temp = (force + polemass_length * theta_dot * theta_dot * sin) / total_mass;
        let theta_acc = (self.gravity * sin - cos * temp)
            / (self.length * (4.0 / 3.0 - self.masspole * cos * cos / total_mass));
        let x_acc = temp - polemass_length * theta_acc * cos / total_mass;
        // Explicit Euler, positions first from the old velocities (Gym's "euler").
        state[0] = x + self.tau * x_dot;
        state[1] = x_dot + self.tau * x_acc;
        state[2] = theta + self.tau * theta_dot;
        state[3] = theta_dot + self.tau * theta_acc;
        let terminated = state[0].abs() > self.x_threshold || state[2].abs() > self.theta_threshold;
        (1.0, terminated)
    }

    fn observe(&self, task: &Task, state: &[f32], obs: &mut [f32]) {
        obs.copy_from_slice(&state[..4]);
        obs[2] += bias(task);
    }

    fn success(&self, _task: &Task, _state: &[f32], terminated: bool) -> Option<bool> {
        Some(!terminated)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::env::VecEnv;
    use crate::rng;

    const TOL: f32 = 1e-5;
    fn unbiased() -> Task {
        bias_task(0.0)
    }

    fn assert_close(got: &[f32], want: &[f32], tol: f32) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < tol, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn full_push_from_rest_matches_the_hand_computed_gym_step() {
        let env = CartpoleBiased::default();
        let mut state = [0.0; 4];
        // F = 10, θ = 0: temp = 10/1.1 = 9.0909091;
        // θ̈ = (0 − 9.0909091)/(0.5·(4/3 − 0.1/1.1)) = −9.0909091/0.6212121 = −14.634146;
        // ẍ = 9.0909091 − 0.05·(−14.634146)/1.1 = 9.7560976.
        // Euler: x = 0, ẋ = 0.02·9.7560976 = 0.1951220, θ = 0, θ̇ = 0.02·(−14.634146) = −0.2926829.
        let (r, term) = env.step(&unbiased(), &mut state, &[1.0]);
        assert_close(&state, &[0.0, 0.195_122, 0.0, -0.292_682_9], TOL);
        assert_eq!((r, term), (1.0, false));
    }

    #[test]
    fn half_push_on_a_leaning_pole_matches_the_hand_computed_gym_step() {
        let env = CartpoleBiased::default();
        let mut state = [0.1, 0.2, 0.05, -0.1];
        // F = 5; sin 0.05 = 0.0499792, cos 0.05 = 0.9987503;
        // temp = (5 + 0.05·0.01·0.0499792)/1.1 = 4.5454773;
        // denominator 0.5·(4/3 − 0.1·0.9975021/1.1) = 0.6213257;
        // θ̈ = (9.8·0.0499792 − 0.9987503·4.5454773)/0.6213257 = −6.5183220;
        // ẍ = 4.5454773 + 0.05·6.5183220·0.9987503/1.1 = 4.8413943.
        // Euler: x = 0.1 + 0.02·0.2 = 0.104, ẋ = 0.2 + 0.02·4.8413943 = 0.2968279,
        // θ = 0.05 − 0.02·0.1 = 0.048, θ̇ = −0.1 − 0.02·6.5183220 = −0.2303664.
        env.step(&unbiased(), &mut state, &[0.5]);
        assert_close(&state, &[0.104, 0.296_827_9, 0.048, -0.230_366_4], TOL);
    }

    #[test]
    fn actions_beyond_one_push_with_the_full_force() {
        let env = CartpoleBiased::default();
        let mut clipped = [0.1, 0.2, 0.05, -0.1];
        let mut full = clipped;
        env.step(&unbiased(), &mut clipped, &[-3.0]);
        env.step(&unbiased(), &mut full, &[-1.0]);
        assert_eq!(clipped, full);
        // F = −10: ẋ = 0.2 + 0.02·(−9.7900777) = 0.0041984, θ̇ = −0.1 + 0.02·15.401458 = 0.2080292.
        assert_close(&clipped, &[0.104, 0.004_198_4, 0.048, 0.208_029_2], TOL);
    }

    #[test]
    fn observation_adds_the_bias_to_the_angle_only() {
        let env = CartpoleBiased::default();
        let task = bias_task(0.1);
        let mut obs = [f32::NAN; 4];
        env.observe(&task, &[0.5, -0.25, 0.02, 0.3], &mut obs);
        assert_close(&obs, &[0.5, -0.25, 0.12, 0.3], 1e-7);
    }

    #[test]
    fn terminates_past_the_track_end_or_twelve_degrees() {
        let env = CartpoleBiased::default();
        // x = 2.39 + 0.02·1 = 2.41 > 2.4.
        let (r, term) = env.step(&unbiased(), &mut [2.39, 1.0, 0.0, 0.0], &[0.0]);
        assert_eq!((r, term), (1.0, true));
        // θ = 0.2 + 0.02·1 = 0.22 > 0.2094; and to the other side.
        assert!(env.step(&unbiased(), &mut [0.0, 0.0, 0.2, 1.0], &[0.0]).1);
        assert!(env.step(&unbiased(), &mut [0.0, 0.0, -0.2, -1.0], &[0.0]).1);
        // θ = 0.2 + 0.02·0.4 = 0.208 < 0.2094: still running.
        assert!(!env.step(&unbiased(), &mut [0.0, 0.0, 0.2, 0.4], &[0.0]).1);
        // The threshold is on the true angle, not the biased reading.
        let biased = bias_task(0.15);
        assert!(!env.step(&biased, &mut [0.0, 0.0, 0.1, 0.0], &[0.0]).1);
    }

    #[test]
    fn reset_and_bias_are_drawn_from_their_ranges() {
        let env = CartpoleBiased::default();
        let mut rng = rng::stream(9, "tasks");
        let biases: Vec<f32> = (0..2000)
            .map(|_| bias(&env.sample_task(&mut rng)))
            .collect();
        assert!(biases.iter().all(|b| (-0.15..0.15).contains(b)));
        assert!(biases.iter().any(|&b| b > 0.14) && biases.iter().any(|&b| b < -0.14));
        let mut state = [0.0; 4];
        for _ in 0..500 {
            env.reset(&unbiased(), &mut state, &mut rng);
            assert!(state.iter().all(|s| (-0.05..0.05).contains(s)), "{state:?}");
        }
    }

    /// A linear balancing controller reading the observation, minus its estimate of the
    /// sensor bias.
    fn controller(obs: &[f32], bias_estimate: f32) -> f32 {
        0.5 * obs[0] + 1.0 * obs[1] + 10.0 * (obs[2] - bias_estimate) + 2.0 * obs[3]
    }

    /// Runs one row under the controller; returns the last step and its number.
    fn run(task: Task, bias_estimate: f32, seed: u64) -> (crate::env::Step, usize) {
        let env = Arc::new(CartpoleBiased::default());
        let mut venv = VecEnv::new(env, vec![task], &[seed]);
        let mut obs = venv.reset();
        assert_eq!(obs.len(), 4);
        for t in 1.. {
            let step = venv.step(&[controller(&obs, bias_estimate)]);
            assert_eq!(step.reward[0], 1.0);
            if venv.all_done() {
                return (step, t);
            }
            assert!(!step.terminated[0] && !step.truncated[0] && step.success[0].is_none());
            obs = step.obs;
        }
        unreachable!("the loop returns when the row is done")
    }

    #[test]
    fn corrected_controller_is_truncated_exactly_at_the_horizon_with_success() {
        let bias = 0.15;
        for seed in 0..5 {
            let (last, t) = run(bias_task(bias), bias, seed);
            assert_eq!(t, 500, "seed {seed}");
            assert!(last.truncated[0] && !last.terminated[0]);
            assert_eq!(last.success[0], Some(true));
        }
    }

    #[test]
    fn uncorrected_controller_fails_under_the_largest_bias() {
        for seed in 0..5 {
            let (last, t) = run(bias_task(0.15), 0.0, seed);
            assert!(t < 500, "seed {seed}");
            assert!(last.terminated[0] && !last.truncated[0]);
            assert_eq!(last.success[0], Some(false));
        }
    }
}
