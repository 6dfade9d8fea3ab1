//! Where a batch's per-row state lives: [`Rows`].
//!
//! Most families here are *stateless* [`Env`] values whose whole row state is a short
//! `f32` vector ([`Env::state_dim`]); [`FlatRows`] keeps those vectors in one slice and
//! steps them through the family's `reset` / `step` / `observe`. A family whose rows are
//! simulator objects (a physics engine's data per row, a per-task model) instead returns
//! its own [`Rows`] from [`Env::simulator_rows`]; [`super::VecEnv`], the sampler and the ES
//! episode paths then step those objects and never ask for an `f32` state.

use std::sync::Arc;

use super::{Env, Task};
use crate::rng::Rng;

/// The state of a batch of rows, one per (task, rollout) pair, stepped by index.
///
/// Contract (the same as the stateless path): `reset(i)` starts row `i`'s episode from
/// its generator; `step(i, a)` advances it under the unclipped action `a` and returns
/// `(reward, terminated)`, deterministically; `observe(i)` writes its observation.
pub trait Rows: Send {
    /// Number of rows.
    fn len(&self) -> usize;
    /// Whether there are no rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Starts a new episode in row `i`, drawing the start from `rng`.
    fn reset(&mut self, i: usize, rng: &mut Rng);
    /// Advances row `i` by one step under `action`; returns `(reward, terminated)`.
    fn step(&mut self, i: usize, action: &[f32]) -> (f32, bool);
    /// Writes row `i`'s observation.
    fn observe(&self, i: usize, obs: &mut [f32]);
    /// Steps every row `i` with `active[i]` under its action (`actions` is `[N, act_dim]`)
    /// and writes its reward and termination. The default steps them one after another;
    /// a simulator may step them in parallel, with the same results.
    fn step_active(
        &mut self,
        actions: &[f32],
        active: &[bool],
        reward: &mut [f32],
        terminated: &mut [bool],
    ) {
        let ad = if active.is_empty() {
            0
        } else {
            actions.len() / active.len()
        };
        for i in 0..active.len() {
            if active[i] {
                (reward[i], terminated[i]) = self.step(i, &actions[i * ad..(i + 1) * ad]);
            }
        }
    }
    /// Writes every row's observation into `obs` (`[N, obs_dim]`). The default observes
    /// the rows one after another; a simulator may observe them in parallel.
    fn observe_all(&self, obs: &mut [f32]) {
        let od = if self.is_empty() {
            0
        } else {
            obs.len() / self.len()
        };
        for (i, o) in obs.chunks_mut(od.max(1)).enumerate().take(self.len()) {
            self.observe(i, o);
        }
    }
    /// Whether row `i`'s finished episode counts as a success, for families that define one.
    fn success(&self, i: usize, terminated: bool) -> Option<bool>;
    /// Row `i`'s 2-D position, for families that `metarl plot` can draw.
    fn position(&self, i: usize) -> Option<[f32; 2]>;
    /// For families whose task is a target velocity v*: row `i`'s mean |v − v*| per step
    /// over its episode so far (the speed the task asks for, missed by how much). Read
    /// when the episode ends.
    fn velocity_error(&self, i: usize) -> Option<f64> {
        let _ = i;
        None
    }
    /// Row `i`'s `f32` state vector, where rows are kept as such ([`FlatRows`]).
    fn flat_state(&self, i: usize) -> Option<&[f32]> {
        let _ = i;
        None
    }
}

/// The rows of a stateless family: one `f32` state vector per row, in one slice.
#[derive(Debug)]
pub struct FlatRows {
    env: Arc<dyn Env>,
    tasks: Arc<[Task]>,
    state: Vec<f32>,
}

impl FlatRows {
    /// One row per task of `tasks` (shared with the caller, not copied), states zero until
    /// reset.
    pub fn new(env: Arc<dyn Env>, tasks: Arc<[Task]>) -> Self {
        let state = vec![0.0; tasks.len() * env.state_dim()];
        Self { env, tasks, state }
    }

    fn range(&self, i: usize) -> std::ops::Range<usize> {
        let sd = self.env.state_dim();
        i * sd..(i + 1) * sd
    }
}

impl Rows for FlatRows {
    fn len(&self) -> usize {
        self.tasks.len()
    }

    fn reset(&mut self, i: usize, rng: &mut Rng) {
        let r = self.range(i);
        self.env.reset(&self.tasks[i], &mut self.state[r], rng);
    }

    fn step(&mut self, i: usize, action: &[f32]) -> (f32, bool) {
        let r = self.range(i);
        self.env.step(&self.tasks[i], &mut self.state[r], action)
    }

    fn observe(&self, i: usize, obs: &mut [f32]) {
        self.env
            .observe(&self.tasks[i], &self.state[self.range(i)], obs);
    }

    fn success(&self, i: usize, terminated: bool) -> Option<bool> {
        self.env
            .success(&self.tasks[i], &self.state[self.range(i)], terminated)
    }

    fn position(&self, i: usize) -> Option<[f32; 2]> {
        self.env.position(&self.state[self.range(i)])
    }

    fn flat_state(&self, i: usize) -> Option<&[f32]> {
        Some(&self.state[self.range(i)])
    }
}

/// The rows `env` keeps for `tasks`: its simulator rows if it has them, else [`FlatRows`].
pub fn rows_for(env: &Arc<dyn Env>, tasks: Arc<[Task]>) -> Box<dyn Rows> {
    match env.simulator_rows(&tasks) {
        Some(rows) => rows,
        None => Box::new(FlatRows::new(env.clone(), tasks)),
    }
}
