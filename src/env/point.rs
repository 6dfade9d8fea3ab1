//! The core of the 2-D point families (nav2d, point-corners and its variants,
//! point-corners-es): a point whose state is its position, that starts at the origin or
//! uniformly in a small box, moves under a clipped displacement and is rewarded towards a
//! per-task goal. A family states its one step formula ([`PointGoal::advance`]) and its
//! task distribution; [`Env`] (rows and SIMD lanes, success, drawing) follows.

use std::fmt::Debug;

use super::{distance, goal_lanes, point_step_lanes, uniform, Env, EnvSpec, LaneTasks, Task};
use crate::lanes::{Lanes, LANES};
use crate::rng::Rng;

/// A 2-D point family towards one goal per task; implementing it implements [`Env`]. Its
/// methods are named apart from [`Env`]'s so that both traits can be in scope.
pub trait PointGoal: Send + Sync + Debug {
    /// The family's static description (`obs_dim = act_dim = 2`), its [`Env::spec`].
    fn point_spec(&self) -> &EnvSpec;
    /// Draws a task ([`Env::sample_task`]).
    fn draw_task(&self, rng: &mut Rng) -> Task;
    /// Every task, for families with finitely many ([`Env::finite_tasks`]).
    fn all_tasks(&self) -> Option<Vec<Task>> {
        None
    }
    /// The start: the origin (`None`), or each coordinate from `U[−r, r)`.
    fn start_range(&self) -> Option<f32> {
        None
    }
    /// Task `task`'s goal.
    fn goal(&self, task: &Task) -> [f32; 2];
    /// An episode is a success when it ends closer than this to the goal.
    fn success_radius(&self) -> f32;
    /// One step from position `p` under the unclipped action `a` towards goal `g`: the new
    /// position, the reward and termination. Rows and lanes both step through it, so they
    /// do the same arithmetic (IEEE, no fused multiply-add: the same bits at every SIMD
    /// level).
    fn advance(&self, p: [f32; 2], a: [f32; 2], g: [f32; 2]) -> ([f32; 2], f32, bool);
}

impl<T: PointGoal> Env for T {
    fn spec(&self) -> &EnvSpec {
        self.point_spec()
    }

    /// `[x, y]`.
    fn state_dim(&self) -> usize {
        2
    }

    fn sample_task(&self, rng: &mut Rng) -> Task {
        self.draw_task(rng)
    }

    fn finite_tasks(&self) -> Option<Vec<Task>> {
        self.all_tasks()
    }

    fn reset(&self, _task: &Task, state: &mut [f32], rng: &mut Rng) {
        match self.start_range() {
            None => state.fill(0.0),
            Some(r) => {
                state[0] = uniform(rng, -r, r);
                state[1] = uniform(rng, -r, r);
            }
        }
    }

    fn fixed_start(&self) -> bool {
        self.start_range().is_none()
    }

    fn step(&self, task: &Task, state: &mut [f32], action: &[f32]) -> (f32, bool) {
        let g = self.goal(task);
        let (p, reward, terminated) = self.advance([state[0], state[1]], [action[0], action[1]], g);
        state[..2].copy_from_slice(&p);
        (reward, terminated)
    }

    fn observe(&self, _task: &Task, state: &[f32], obs: &mut [f32]) {
        obs.copy_from_slice(&state[..2]);
    }

    /// The goal's x and y.
    fn task_constants(&self, tasks: &[&Task; LANES]) -> Vec<Lanes> {
        goal_lanes(tasks, |t| self.goal(t))
    }

    fn observe_lanes(&self, _tasks: &LaneTasks, state: &[Lanes], obs: &mut [Lanes]) {
        // Both lengths constant, so the copy is inlined (not a `memmove` call per step).
        obs[..2].copy_from_slice(&state[..2]);
    }

    /// [`PointGoal::advance`] lane by lane.
    fn step_lanes(
        &self,
        tasks: &LaneTasks,
        state: &mut [Lanes],
        action: &[Lanes],
        reward: &mut Lanes,
        terminated: &mut [bool; LANES],
    ) {
        point_step_lanes(tasks, state, action, reward, terminated, |p, a, g| {
            self.advance(p, a, g)
        });
    }

    fn success(&self, task: &Task, state: &[f32], _terminated: bool) -> Option<bool> {
        Some(distance([state[0], state[1]], self.goal(task)) < self.success_radius())
    }

    fn position(&self, state: &[f32]) -> Option<[f32; 2]> {
        Some([state[0], state[1]])
    }

    fn goals(&self, task: &Task) -> Vec<[f32; 2]> {
        vec![self.goal(task)]
    }
}
