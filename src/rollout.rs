//! Batched sampling: every row of a meta-batch advances in lock-step, with one batched
//! policy forward per time step.

use burn::prelude::*;

use crate::env::{LaneTasks, VecEnv};
use crate::lanes::{self, Lanes, Simd, LANES};
use crate::nn::flat::{FlatPolicy, LaneScratch};
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
        rows_per_task > 0 && n.is_multiple_of(rows_per_task),
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
        velocity_error: vec![None; n],
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
        for (e, new) in tr.velocity_error.iter_mut().zip(&step.velocity_error) {
            if new.is_some() {
                *e = *new;
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
/// ES-MAML's global state normalization. Sums are kept in fixed point (2⁻²⁰ units, rounded to nearest; i128),
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
            // Rounding by arithmetic (f64 → i128 casts and `round` are libm calls that
            // showed up at 20% of ES profiles); i128 sums never overflow.
            self.sum[j] += to_fixed(x * FIXED) as i128;
            self.sumsq[j] += to_fixed(x * x * FIXED) as i128;
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

    /// [`Self::apply`] to observations in lanes (`obs[j][l]`: dimension `j` of lane `l`).
    #[inline(always)]
    pub fn apply_lanes(&self, obs: &mut [Lanes]) {
        for ((o, &m), &s) in obs.iter_mut().zip(&self.mean).zip(&self.std) {
            for x in o {
                *x = (*x - m) / s;
            }
        }
    }
}

/// `t` rounded to the nearest integer (ties to even) for `|t| < 2⁵¹`, in two operations that
/// vectorize: adding 1.5·2⁵² rounds `t` onto a binade where the spacing is 1, and the
/// mantissa bits then count from the bits of 1.5·2⁵² itself.
#[inline(always)]
fn round_small(t: f64) -> i64 {
    const M: f64 = 6_755_399_441_055_744.0; // 1.5 · 2⁵²
    (t + M).to_bits() as i64 - M.to_bits() as i64
}

/// A value in [`ObsStats`]' fixed-point units: `t` rounded to the nearest integer, or for
/// `|t| ≥ 2⁵¹` (or NaN) the saturating cast (NaN counts as 0).
#[inline(always)]
fn to_fixed(t: f64) -> i64 {
    if t.abs() < 2_251_799_813_685_248.0 {
        round_small(t)
    } else {
        t as i64
    }
}

/// Which lanes of a batch are still running: all ones or zero, so that selecting a lane's
/// value is a bitwise and (branch-free; an inactive lane's value, even NaN, becomes 0).
type Mask = [u32; LANES];

/// [`ObsStats`] of a batch of episodes in lanes: per-lane sums in `i64` of the same
/// fixed-point units, added to an [`ObsStats`] exactly ([`Self::flush_into`]). Values of
/// magnitude above [`LaneStats::LIMIT`] (never met by the families here) go straight to
/// `i128` sums; the `i64` sums are flushed every [`LaneStats::FLUSH`] pushes, so they cannot
/// overflow (|x|·2²⁰ ≤ 2³⁵ and x²·2²⁰ ≤ 2⁵⁰ per push).
struct LaneStats {
    count: u64,
    pushes: usize,
    sum: Vec<[i64; LANES]>,
    sumsq: Vec<[i64; LANES]>,
    wide: ObsStats,
}

impl LaneStats {
    const LIMIT: f32 = 32_768.0;
    const FLUSH: usize = 1024;

    fn new(d: usize) -> Self {
        Self {
            count: 0,
            pushes: 0,
            sum: vec![[0; LANES]; d],
            sumsq: vec![[0; LANES]; d],
            wide: ObsStats::new(d),
        }
    }

    /// Counts the observation of every active lane (mask all ones).
    #[inline(always)]
    fn push(&mut self, obs: &[Lanes], active: &Mask) {
        // A mask is all ones or all zeros: its top bit counts it (one vector sum).
        self.count += u64::from(active.iter().map(|&a| a >> 31).sum::<u32>());
        let mut outside = false;
        for ((o, s), q) in obs.iter().zip(&mut self.sum).zip(&mut self.sumsq) {
            // Staged so that each loop over lanes is one straight-line vector computation.
            let mut x = [0.0f64; LANES];
            let mut skipped = [false; LANES];
            for l in 0..LANES {
                let v = f32::from_bits(o[l].to_bits() & active[l]);
                let inside = v.abs() <= Self::LIMIT;
                skipped[l] = !inside;
                x[l] = if inside { f64::from(v) } else { 0.0 };
            }
            // Local copies: the compiler cannot tell that `s` and `q` do not overlap and
            // would otherwise update them one lane at a time.
            let (mut sl, mut ql) = (*s, *q);
            for l in 0..LANES {
                sl[l] += round_small(x[l] * FIXED);
                ql[l] += round_small(x[l] * x[l] * FIXED);
            }
            (*s, *q) = (sl, ql);
            outside |= skipped.contains(&true);
        }
        if outside {
            self.push_outside(obs, active);
        }
        self.pushes += 1;
        if self.pushes == Self::FLUSH {
            self.flush();
        }
    }

    /// The values [`Self::push`] left out, into the `i128` sums.
    #[cold]
    fn push_outside(&mut self, obs: &[Lanes], active: &Mask) {
        for (j, o) in obs.iter().enumerate() {
            for l in (0..LANES).filter(|&l| active[l] != 0) {
                let x = o[l];
                let inside = x.abs() <= Self::LIMIT; // false for NaN
                if !inside {
                    let x = x as f64;
                    self.wide.sum[j] += to_fixed(x * FIXED) as i128;
                    self.wide.sumsq[j] += to_fixed(x * x * FIXED) as i128;
                }
            }
        }
    }

    /// Moves the `i64` sums into the `i128` ones.
    fn flush(&mut self) {
        for j in 0..self.sum.len() {
            self.wide.sum[j] += self.sum[j].iter().map(|&v| v as i128).sum::<i128>();
            self.wide.sumsq[j] += self.sumsq[j].iter().map(|&v| v as i128).sum::<i128>();
            self.sum[j] = [0; LANES];
            self.sumsq[j] = [0; LANES];
        }
        self.pushes = 0;
    }

    /// Adds everything counted to `stats`.
    fn flush_into(mut self, stats: &mut ObsStats) {
        self.flush();
        self.wide.count = self.count;
        stats.merge(&self.wide);
    }
}

/// One episode of task `task` with the deterministic flat-vector policy `theta`: returns
/// the undiscounted return and adds every raw observation to `stats`. The env's start
/// state is drawn from the stream seeded by `seed`. See [`episode_flat`] for the success
/// verdict and the visited states too.
pub fn episode_return_flat(
    env: &std::sync::Arc<dyn crate::env::Env>,
    task: &crate::env::Task,
    policy: &FlatPolicy,
    theta: &[f32],
    norm: &ObsNorm,
    seed: u64,
    stats: &mut ObsStats,
) -> f64 {
    episode_flat(env, task, policy, theta, norm, seed, stats, |_| {}).0
}

/// The returns of `thetas.len()` episodes, [`FlatPolicy::batch_lanes`] (at most [`LANES`])
/// at a time in lock-step, one episode per SIMD lane ([`crate::lanes`]): episode `i` runs
/// task `tasks[i]` with the flat-vector policy `thetas[i]` from the start state of
/// `seeds[i]`. Each return, and what is added to
/// `stats`, is exactly what [`episode_return_flat`] gives for that episode alone (tested
/// for every family), so callers may batch episodes any way they like. Lanes whose episode
/// has terminated keep stepping with their results ignored until the batch is done.
///
/// Families that override [`Env::step_lanes`](crate::env::Env::step_lanes) (the point
/// families) run every step in vector registers; the others are stepped row by row inside
/// the batch, with the policy still batched.
pub fn episode_returns_lanes(
    env: &std::sync::Arc<dyn crate::env::Env>,
    tasks: &[&crate::env::Task],
    policy: &FlatPolicy,
    thetas: &[&[f32]],
    norm: &ObsNorm,
    seeds: &[u64],
    stats: &mut ObsStats,
) -> Vec<f64> {
    let e = env.as_ref();
    episode_returns_lanes_at(Simd::best(), e, tasks, policy, thetas, norm, seeds, stats)
}

/// [`episode_returns_lanes`] compiled for `simd` (tests compare the levels). Panics unless
/// the CPU supports it.
#[allow(clippy::too_many_arguments)] // episode_returns_lanes' arguments plus the level
pub fn episode_returns_lanes_at(
    simd: Simd,
    env: &dyn crate::env::Env,
    tasks: &[&crate::env::Task],
    policy: &FlatPolicy,
    thetas: &[&[f32]],
    norm: &ObsNorm,
    seeds: &[u64],
    stats: &mut ObsStats,
) -> Vec<f64> {
    let n = thetas.len();
    assert!(
        tasks.len() == n && seeds.len() == n,
        "one task and one seed per episode"
    );
    simd.assert_supported();
    if env.simulator_rows(&[]).is_some() {
        // Simulator rows have no lane form: one episode after another, same results.
        return (0..n)
            .map(|i| {
                episode_rows(
                    env,
                    tasks[i],
                    policy,
                    thetas[i],
                    norm,
                    seeds[i],
                    stats,
                    |_| {},
                )
                .0
            })
            .collect();
    }
    let args = (tasks, policy, thetas, norm, seeds);
    match simd {
        // SAFETY: the CPU supports the level, asserted just above.
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 => unsafe { returns_lanes_avx512(env, args, stats) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => unsafe { returns_lanes_avx2(env, args, stats) },
        _ => returns_lanes_body(simd, env, args, stats),
    }
}

/// What every episode of a lane batch is: its task, the policy and its parameters, the
/// observation normalizer and its start seed.
type LaneArgs<'a> = (
    &'a [&'a crate::env::Task],
    &'a FlatPolicy,
    &'a [&'a [f32]],
    &'a ObsNorm,
    &'a [u64],
);

/// [`returns_lanes_body`] compiled with AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f")]
unsafe fn returns_lanes_avx512(
    env: &dyn crate::env::Env,
    args: LaneArgs,
    stats: &mut ObsStats,
) -> Vec<f64> {
    returns_lanes_body(Simd::Avx512, env, args, stats)
}

/// [`returns_lanes_body`] compiled with AVX2 (the lane loops over f64 returns and
/// statistics use 4-wide registers).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn returns_lanes_avx2(
    env: &dyn crate::env::Env,
    args: LaneArgs,
    stats: &mut ObsStats,
) -> Vec<f64> {
    returns_lanes_body(Simd::Avx2, env, args, stats)
}

#[inline(always)]
fn returns_lanes_body(
    simd: Simd,
    env: &dyn crate::env::Env,
    (tasks, policy, thetas, norm, seeds): LaneArgs,
    stats: &mut ObsStats,
) -> Vec<f64> {
    let spec = env.spec();
    let n = thetas.len();
    let mut returns = Vec::with_capacity(n);
    let mut theta = Vec::new();
    let mut scratch = LaneScratch::default();
    let mut row = vec![0.0f32; env.state_dim()];
    let mut state = vec![[0.0f32; LANES]; env.state_dim()];
    let mut obs = vec![[0.0f32; LANES]; spec.obs_dim];
    let mut act = vec![[0.0f32; LANES]; spec.act_dim];
    let (mut reward, mut terminated) = ([0.0f32; LANES], [false; LANES]);
    // A family whose start is fixed never reads the row's generator: it gets this one.
    let fixed_start = env.fixed_start();
    let mut unread = crate::rng::stream(0, "unread");
    let width = policy.batch_lanes();
    for start in (0..n).step_by(width) {
        let m = width.min(n - start);
        // Padding lanes (past the last episode) repeat the batch's first episode.
        let index = |l: usize| start + if l < m { l } else { 0 };
        policy.pack_lanes(&thetas[start..start + m], &mut theta);
        let lane_tasks = LaneTasks::new(env, std::array::from_fn(|l| tasks[index(l)]));
        for (l, task) in lane_tasks.rows.iter().enumerate() {
            if fixed_start {
                env.reset(task, &mut row, &mut unread);
            } else {
                let mut rng = crate::rng::substream(seeds[index(l)], "env-row", 0);
                env.reset(task, &mut row, &mut rng);
            }
            lanes::scatter(&row, l, &mut state);
        }
        let mut active: Mask = [0; LANES];
        active[..m].fill(u32::MAX);
        let mut ret = [0.0f64; LANES];
        let mut lane_stats = LaneStats::new(spec.obs_dim);
        for t in 0..spec.horizon {
            env.observe_lanes(&lane_tasks, &state, &mut obs);
            lane_stats.push(&obs, &active);
            norm.apply_lanes(&mut obs);
            policy.forward_lanes_at(simd, m, &theta, &obs, &mut act, &mut scratch);
            env.step_lanes(&lane_tasks, &mut state, &act, &mut reward, &mut terminated);
            // Separate straight-line loops over the lanes, so that each is one vector
            // computation (together, the returns were summed one lane at a time).
            for l in 0..LANES {
                // Adding 0.0 leaves a finished return unchanged (it is never −0.0).
                ret[l] += f64::from(f32::from_bits(reward[l].to_bits() & active[l]));
            }
            let running = if t + 1 == spec.horizon { 0 } else { u32::MAX };
            for l in 0..LANES {
                // A terminated lane's mask becomes 0 (`true as u32 − 1`), a running one's stays.
                active[l] &= running & u32::from(terminated[l]).wrapping_sub(1);
            }
            if active.iter().fold(0, |a, &b| a | b) == 0 {
                break;
            }
        }
        lane_stats.flush_into(stats);
        returns.extend_from_slice(&ret[..m]);
    }
    returns
}

/// [`episode_return_flat`], also returning the family's success verdict and calling
/// `visit` after the reset and after every step (`len + 1` calls for an episode of `len`
/// steps) with a function that gives the row's 2-D position, e.g. to record a point env's
/// path. Steps the family directly (no [`VecEnv`] bookkeeping) with reused buffers: this
/// is the inner loop of evolution strategies, where `visit` is a no-op the compiler
/// removes. Start states come from the same stream [`VecEnv`] gives a row seeded with
/// `seed`, so both paths see the same episode. A simulator family runs through its
/// [`crate::env::Rows`] instead, with the same contract.
#[allow(clippy::too_many_arguments)] // episode_return_flat's arguments plus the visitor
pub fn episode_flat(
    env: &std::sync::Arc<dyn crate::env::Env>,
    task: &crate::env::Task,
    policy: &FlatPolicy,
    theta: &[f32],
    norm: &ObsNorm,
    seed: u64,
    stats: &mut ObsStats,
    mut visit: impl FnMut(&dyn Fn() -> Option<[f32; 2]>),
) -> (f64, Option<bool>) {
    if env.simulator_rows(&[]).is_some() {
        return episode_rows(env.as_ref(), task, policy, theta, norm, seed, stats, visit);
    }
    let spec = env.spec();
    let mut rng = crate::rng::substream(seed, "env-row", 0);
    let mut state = vec![0.0f32; env.state_dim()];
    let mut obs = vec![0.0f32; spec.obs_dim];
    let mut act = vec![0.0f32; spec.act_dim];
    let mut scratch = crate::nn::flat::Scratch::default();
    env.reset(task, &mut state, &mut rng);
    visit(&|| env.position(&state));
    let mut ret = 0.0;
    for t in 0..spec.horizon {
        env.observe(task, &state, &mut obs);
        stats.push(&obs);
        norm.apply(&mut obs);
        policy.forward_into(theta, &obs, 1, &mut act, &mut scratch);
        let (r, terminated) = env.step(task, &mut state, &act);
        visit(&|| env.position(&state));
        ret += r as f64;
        if terminated || t + 1 == spec.horizon {
            return (ret, env.success(task, &state, terminated));
        }
    }
    (ret, None)
}

/// [`episode_flat`] for a simulator family: one row of its [`crate::env::Rows`], the same
/// start stream, statistics, policy and end-of-episode rules.
#[allow(clippy::too_many_arguments)] // episode_flat's arguments
fn episode_rows(
    env: &dyn crate::env::Env,
    task: &crate::env::Task,
    policy: &FlatPolicy,
    theta: &[f32],
    norm: &ObsNorm,
    seed: u64,
    stats: &mut ObsStats,
    mut visit: impl FnMut(&dyn Fn() -> Option<[f32; 2]>),
) -> (f64, Option<bool>) {
    let spec = env.spec();
    let mut rows = env
        .simulator_rows(std::slice::from_ref(task))
        .expect("a simulator family gives rows for any tasks");
    let mut rng = crate::rng::substream(seed, "env-row", 0);
    let mut obs = vec![0.0f32; spec.obs_dim];
    let mut act = vec![0.0f32; spec.act_dim];
    let mut scratch = crate::nn::flat::Scratch::default();
    rows.reset(0, &mut rng);
    visit(&|| rows.position(0));
    let mut ret = 0.0;
    for t in 0..spec.horizon {
        rows.observe(0, &mut obs);
        stats.push(&obs);
        norm.apply(&mut obs);
        policy.forward_into(theta, &obs, 1, &mut act, &mut scratch);
        let (r, terminated) = rows.step(0, &act);
        visit(&|| rows.position(0));
        ret += r as f64;
        if terminated || t + 1 == spec.horizon {
            return (ret, rows.success(0, terminated));
        }
    }
    (ret, None)
}

#[cfg(test)]
mod tests {
    use rand::Rng as _;

    use super::*;

    #[test]
    fn to_fixed_rounds_to_nearest_even_and_saturates_beyond_2_pow_51() {
        let mut rng = crate::rng::stream(1, "round");
        let edge = [
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.499_999_999,
            -0.500_000_001,
            3.0,
            -3.0,
            1e-300,
            -1e-300,
            2f64.powi(50) + 0.5,
            -(2f64.powi(50) + 1.5),
            2f64.powi(51) - 1.0,
            -(2f64.powi(51) - 1.0),
        ];
        let random = (0..100_000).map(|i| {
            let u: f64 = rng.random();
            (u - 0.5) * 2f64.powi(i % 52)
        });
        for t in edge.into_iter().chain(random) {
            assert_eq!(to_fixed(t), t.round_ties_even() as i64, "{t:e}");
        }
        assert_eq!(to_fixed(1e30), i64::MAX);
        assert_eq!(to_fixed(-1e30), i64::MIN);
        assert_eq!(to_fixed(f64::NAN), 0);
        assert_eq!(to_fixed(2f64.powi(51)), 1 << 51);
    }

    #[test]
    fn lane_statistics_equal_row_statistics_including_huge_and_nan_values() {
        // Values beyond LaneStats::LIMIT take the i128 path; NaN counts as 0 in both; the
        // inactive lane is not counted; 2 500 pushes cross the i64 flush twice.
        let values = [
            0.5f32,
            -3.25,
            1e5,
            -7e12,
            f32::NAN,
            32_768.0,
            -32_768.5,
            1e-9,
        ];
        let mut want = ObsStats::new(2);
        let mut lane = LaneStats::new(2);
        let mut active: Mask = [u32::MAX; LANES];
        active[3] = 0;
        for t in 0..2_500 {
            let obs: Vec<Lanes> = (0..2)
                .map(|j| {
                    std::array::from_fn(|l| values[(l + j + t) % values.len()] * (t % 3) as f32)
                })
                .collect();
            lane.push(&obs, &active);
            for l in (0..LANES).filter(|&l| active[l] != 0) {
                want.push(&[obs[0][l], obs[1][l]]);
            }
        }
        let mut got = ObsStats::new(2);
        lane.flush_into(&mut got);
        assert_eq!(got, want);
        assert_eq!(got.count, 2_500 * (LANES as u64 - 1));
    }
}
