//! Batched sampling: every row of a meta-batch advances in lock-step, with one batched
//! policy forward per time step.

use burn::prelude::*;

use crate::env::VecEnv;
use crate::nn::{tensor2, to_vec, DeterministicPolicy, GaussianPolicy};
use crate::rng::Rng;
use crate::traj::Trajectories;

/// Something that picks actions for a batch of observations.
pub trait Actor {
    /// Actions `[B, act_dim]` and their log-probabilities `[B]` for observations
    /// `[B, obs_dim]` (row-major); randomness only from `rng`.
    fn act(&self, obs: Tensor<2>, rng: &mut Rng) -> (Vec<f32>, Vec<f32>);
}

impl Actor for GaussianPolicy {
    fn act(&self, obs: Tensor<2>, rng: &mut Rng) -> (Vec<f32>, Vec<f32>) {
        let s = self.sample(obs, rng);
        (s.actions, s.log_prob)
    }
}

impl Actor for DeterministicPolicy {
    fn act(&self, obs: Tensor<2>, _rng: &mut Rng) -> (Vec<f32>, Vec<f32>) {
        let b = obs.dims()[0];
        (to_vec(self.forward(obs)), vec![0.0; b])
    }
}

/// Runs one episode in every row of `env` (reset first) with `actor`, for at most the
/// horizon, and returns the trajectories. Pass a policy on a non-autodiff device
/// (`policy.valid()`); `rows_per_task` says how rows group into tasks.
pub fn sample<A: Actor>(
    actor: &A,
    env: &mut VecEnv,
    rows_per_task: usize,
    rng: &mut Rng,
    device: &Device,
) -> Trajectories {
    let n = env.num_rows();
    assert!(
        rows_per_task > 0 && n % rows_per_task == 0,
        "rows must group into whole tasks"
    );
    let spec = env.spec().clone();
    let (od, ad, h) = (spec.obs_dim, spec.act_dim, spec.horizon);
    let mut tr = Trajectories {
        rows: n,
        rows_per_task,
        obs_dim: od,
        act_dim: ad,
        success: vec![None; n],
        tasks: env.tasks().iter().step_by(rows_per_task).cloned().collect(),
        ..Default::default()
    };
    tr.obs.reserve(h * n * od);
    let mut obs = env.reset();
    if let Some(p) = env.positions() {
        tr.positions.extend(p);
    }
    while tr.steps < h && !env.all_done() {
        let (act, logp) = actor.act(tensor2(obs.clone(), n, od, device), rng);
        let step = env.step(&act);
        tr.obs.extend_from_slice(&obs);
        tr.act.extend_from_slice(&act);
        tr.logp.extend_from_slice(&logp);
        tr.reward.extend_from_slice(&step.reward);
        tr.mask
            .extend(step.active.iter().map(|&a| if a { 1.0 } else { 0.0 }));
        tr.terminated.extend_from_slice(&step.terminated);
        tr.truncated.extend_from_slice(&step.truncated);
        for (s, new) in tr.success.iter_mut().zip(&step.success) {
            if new.is_some() {
                *s = *new;
            }
        }
        obs = step.obs;
        if let Some(p) = env.positions() {
            tr.positions.extend(p);
        }
        tr.steps += 1;
    }
    tr.last_obs = obs;
    tr
}
