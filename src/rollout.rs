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

/// Running observation statistics (count, per-dimension sum and sum of squares), for
/// ES-MAML's global state normalization. Sums are kept in fixed point (2⁻²⁰ units, truncated; i128),
/// so merging workers' statistics is exact and independent of order and thread count.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObsStats {
    /// Observations counted.
    pub count: u64,
    /// Per-dimension sums, in units of 2⁻²⁰ (decimal text in JSON).
    pub sum: Vec<i128>,
    /// Per-dimension sums of squares, in units of 2⁻²⁰.
    pub sumsq: Vec<i128>,
}

const FIXED: f64 = (1u64 << 20) as f64;

impl ObsStats {
    /// Empty statistics for `d`-dimensional observations.
    pub fn new(d: usize) -> Self {
        Self {
            count: 0,
            sum: vec![0; d],
            sumsq: vec![0; d],
        }
    }

    /// Adds one observation.
    pub fn push(&mut self, o: &[f32]) {
        self.count += 1;
        for (j, &x) in o.iter().enumerate() {
            let x = x as f64;
            // Truncation to i64 is one instruction (f64 → i128 and `round` are libm calls
            // that showed up at 20% of ES profiles); i128 sums never overflow.
            self.sum[j] += (x * FIXED) as i64 as i128;
            self.sumsq[j] += (x * x * FIXED) as i64 as i128;
        }
    }

    /// Adds another worker's statistics (exact, order-independent).
    pub fn merge(&mut self, other: &ObsStats) {
        self.count += other.count;
        for j in 0..self.sum.len() {
            self.sum[j] += other.sum[j];
            self.sumsq[j] += other.sumsq[j];
        }
    }

    /// The normalizer (s − mean)/std; identity before any data, std floored at 1e-2
    /// where a dimension barely varies.
    pub fn normalizer(&self) -> ObsNorm {
        let d = self.sum.len();
        if self.count < 2 {
            return ObsNorm {
                mean: vec![0.0; d],
                std: vec![1.0; d],
            };
        }
        let n = self.count as f64;
        let mean: Vec<f64> = self.sum.iter().map(|&s| s as f64 / FIXED / n).collect();
        let std = (0..d)
            .map(|j| {
                ((self.sumsq[j] as f64 / FIXED / n - mean[j] * mean[j])
                    .max(0.0)
                    .sqrt()
                    .max(1e-2)) as f32
            })
            .collect();
        ObsNorm {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            std,
        }
    }
}

/// A fixed observation normalizer `(s − mean) / std`.
#[derive(Clone, Debug, PartialEq)]
pub struct ObsNorm {
    /// Per-dimension mean.
    pub mean: Vec<f32>,
    /// Per-dimension standard deviation.
    pub std: Vec<f32>,
}

impl ObsNorm {
    /// Normalizes rows of observations in place.
    pub fn apply(&self, obs: &mut [f32]) {
        let d = self.mean.len();
        for (k, x) in obs.iter_mut().enumerate() {
            let j = k % d;
            *x = (*x - self.mean[j]) / self.std[j];
        }
    }
}

/// One episode of task `task` with the deterministic flat-vector policy `theta`: returns
/// the undiscounted return and adds every raw observation to `stats`. The env's start
/// state is drawn from the stream seeded by `seed`. See [`episode_flat`] for the success
/// verdict and the visited states too.
pub fn episode_return_flat(
    env: &std::sync::Arc<dyn crate::env::Env>,
    task: &crate::env::Task,
    policy: &crate::nn::flat::FlatPolicy,
    theta: &[f32],
    norm: &ObsNorm,
    seed: u64,
    stats: &mut ObsStats,
) -> f64 {
    episode_flat(env, task, policy, theta, norm, seed, stats, |_| {}).0
}

/// [`episode_return_flat`], also returning the family's success verdict and calling
/// `visit` with the env state after the reset and after every step (`len + 1` calls for an
/// episode of `len` steps), e.g. to record a point env's path. Steps the family directly
/// (no [`VecEnv`] bookkeeping) with reused buffers: this is the inner loop of evolution
/// strategies, where `visit` is a no-op the compiler removes. Start states come from the
/// same stream [`VecEnv`] gives a row seeded with `seed`, so both paths see the same
/// episode.
#[allow(clippy::too_many_arguments)] // episode_return_flat's arguments plus the visitor
pub fn episode_flat(
    env: &std::sync::Arc<dyn crate::env::Env>,
    task: &crate::env::Task,
    policy: &crate::nn::flat::FlatPolicy,
    theta: &[f32],
    norm: &ObsNorm,
    seed: u64,
    stats: &mut ObsStats,
    mut visit: impl FnMut(&[f32]),
) -> (f64, Option<bool>) {
    let spec = env.spec();
    let mut rng = crate::rng::substream(seed, "env-row", 0);
    let mut state = vec![0.0f32; env.state_dim()];
    let mut obs = vec![0.0f32; spec.obs_dim];
    let mut act = vec![0.0f32; spec.act_dim];
    let mut scratch = crate::nn::flat::Scratch::default();
    env.reset(task, &mut state, &mut rng);
    visit(&state);
    let mut ret = 0.0;
    for t in 0..spec.horizon {
        env.observe(task, &state, &mut obs);
        stats.push(&obs);
        norm.apply(&mut obs);
        policy.forward_into(theta, &obs, 1, &mut act, &mut scratch);
        let (r, terminated) = env.step(task, &mut state, &act);
        visit(&state);
        ret += r as f64;
        if terminated || t + 1 == spec.horizon {
            return (ret, env.success(task, &state, terminated));
        }
    }
    (ret, None)
}
