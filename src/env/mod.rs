//! Meta-RL environments: task families, task distributions and the batched [`VecEnv`].
//!
//! A task family ([`Env`]) is a stateless value that knows its dynamics and rewards; a
//! [`Task`] is per-row data (a goal, a corner, a sensor bias). One meta-batch of M tasks ×
//! K rollouts is one [`VecEnv`] of M·K rows stepped in lock-step, row `m·K + k` being
//! rollout `k` of task `m`. Each row has its own random stream, so a batch of N rows
//! produces exactly what N single-row environments with the same seeds produce.
//!
//! Episodes end by `terminated` (the task's own end, e.g. goal reached or pole fallen) or
//! `truncated` (the horizon); the two are reported separately. A finished row stays
//! finished until the next [`VecEnv::reset`]: its reward is 0 and its mask is off.

use std::fmt::Debug;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::lanes::{self, Lanes, LANES};
use crate::rng::{self, Rng};

pub mod cartpole;
pub mod es_corners;
pub mod goal1d;
#[cfg(feature = "mujoco")]
pub mod mujoco;
pub mod nav2d;
pub mod point;
pub mod point_corners;
pub mod registry;
pub mod rows;
pub mod sine;
pub mod six_circles;

pub use point::PointGoal;
pub use registry::Registry;
pub use rows::{FlatRows, Rows};

/// Static description of an environment family.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnvSpec {
    /// Name used by `--env`.
    pub name: &'static str,
    /// Observation size.
    pub obs_dim: usize,
    /// Action size.
    pub act_dim: usize,
    /// Episode length at which rows are truncated.
    pub horizon: usize,
    /// One-line description of the task family (shown by `metarl list-envs`).
    pub summary: &'static str,
}

/// One task's parameters: the per-row data that distinguishes tasks of a family (a goal,
/// a corner's index, a sensor bias, a gap's position). The family that samples a task
/// defines what its numbers mean and reads them back; the rest of the library only stores,
/// copies and prints them. Families outside this crate define their own (see
/// `examples/custom_task.rs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// The parameters, in the family's order.
    pub params: Vec<f32>,
}

impl Task {
    /// A task with these parameters.
    pub fn new(params: impl Into<Vec<f32>>) -> Self {
        Self {
            params: params.into(),
        }
    }

    /// Parameter `i`.
    ///
    /// # Panics
    /// If the task has fewer than `i + 1` parameters: a row of one family handed to
    /// another, a broken invariant.
    pub fn param(&self, i: usize) -> f32 {
        *self.params.get(i).unwrap_or_else(|| {
            panic!(
                "a task should carry parameter {i}, this one has {:?}",
                self.params
            )
        })
    }
}

/// A task family: dynamics, rewards and task sampling, stepped one row at a time by
/// [`VecEnv`].
///
/// A family is one of two kinds. A *stateless* family implements [`Self::state_dim`],
/// [`Self::reset`], [`Self::step`] and [`Self::observe`] over a short `f32` state vector
/// per row, which [`VecEnv`] owns ([`FlatRows`]); evolution strategies then also step it
/// in SIMD lanes. A *simulator* family (one engine object per row) implements
/// [`Self::simulator_rows`] instead and keeps its rows itself ([`Rows`]); the `f32`
/// methods are then never called.
pub trait Env: Send + Sync + Debug {
    /// The family's static description.
    fn spec(&self) -> &EnvSpec;
    /// Length of one row's internal state vector (may exceed `obs_dim`); 0 for a simulator
    /// family.
    fn state_dim(&self) -> usize {
        0
    }
    /// Draws a task from the family's task distribution.
    fn sample_task(&self, rng: &mut Rng) -> Task;
    /// Every task of a family with finitely many (four corners: the 4 corners), each once,
    /// for algorithms that train on the whole set (ES-MAML's "(N, N, N)" task sets);
    /// `None` for continuous task distributions.
    fn finite_tasks(&self) -> Option<Vec<Task>> {
        None
    }
    /// Writes the initial state of one row for `task`.
    fn reset(&self, task: &Task, state: &mut [f32], rng: &mut Rng) {
        let _ = (task, state, rng);
        panic!(
            "{} keeps simulator rows and has no f32 reset",
            self.spec().name
        )
    }
    /// Whether [`Self::reset`] never reads its generator (the start depends on the task
    /// alone), so a rollout need not build the row's generator (ES builds one per episode:
    /// 3% of a linear-policy iteration). Default `false`; tested for every family.
    fn fixed_start(&self) -> bool {
        false
    }
    /// Advances one row by one step under `action` (unclipped; the family clips) and
    /// returns `(reward, terminated)`. Deterministic given `state` and `action`.
    fn step(&self, task: &Task, state: &mut [f32], action: &[f32]) -> (f32, bool) {
        let _ = (task, state, action);
        panic!(
            "{} keeps simulator rows and has no f32 step",
            self.spec().name
        )
    }
    /// Writes the observation of one row.
    fn observe(&self, task: &Task, state: &[f32], obs: &mut [f32]) {
        let _ = (task, state, obs);
        panic!(
            "{} keeps simulator rows and has no f32 observe",
            self.spec().name
        )
    }
    /// The rows of a simulator family for `tasks`, one per task (`None`, the default, for
    /// a stateless family). Must answer `Some` for every slice, the empty one included:
    /// that is how the episode paths ask which kind a family is.
    fn simulator_rows(&self, tasks: &[Task]) -> Option<Box<dyn Rows>> {
        let _ = tasks;
        None
    }
    /// Constants of a batch's tasks in lanes, for this family's [`Self::step_lanes`] (nav2d:
    /// the goal's x and y), computed once per batch by [`LaneTasks::new`]. Default: none.
    fn task_constants(&self, tasks: &[&Task; LANES]) -> Vec<Lanes> {
        let _ = tasks;
        Vec::new()
    }
    /// [`Self::observe`] for [`LANES`] rows in lock-step, structure-of-arrays: `state[i][l]`
    /// is component `i` of row `l`'s state, `obs[j][l]` its observation; row `l` has task
    /// `tasks.rows[l]`. The default gathers each row and calls [`Self::observe`]; families
    /// on ES's hot path override it with loops over lanes. Must equal the default exactly.
    fn observe_lanes(&self, tasks: &LaneTasks, state: &[Lanes], obs: &mut [Lanes]) {
        let (mut s_buf, mut o_buf) = (RowBuf::new(state.len()), RowBuf::new(obs.len()));
        let (s, o) = (s_buf.get(), o_buf.get());
        for (l, task) in tasks.rows.iter().enumerate() {
            lanes::gather(state, l, s);
            self.observe(task, s, o);
            lanes::scatter(o, l, obs);
        }
    }
    /// [`Self::step`] for [`LANES`] rows in lock-step (layout of [`Self::observe_lanes`]):
    /// writes each row's reward and termination. Every lane is stepped, also those whose
    /// episode has ended (the caller ignores them). The default steps each row with
    /// [`Self::step`]; overrides must give exactly its results.
    fn step_lanes(
        &self,
        tasks: &LaneTasks,
        state: &mut [Lanes],
        action: &[Lanes],
        reward: &mut Lanes,
        terminated: &mut [bool; LANES],
    ) {
        let (mut s_buf, mut a_buf) = (RowBuf::new(state.len()), RowBuf::new(action.len()));
        let (s, a) = (s_buf.get(), a_buf.get());
        for (l, task) in tasks.rows.iter().enumerate() {
            lanes::gather(state, l, s);
            lanes::gather(action, l, a);
            (reward[l], terminated[l]) = self.step(task, s, a);
            lanes::scatter(s, l, state);
        }
    }
    /// Whether a finished episode counts as a success, for families that define one.
    /// Called once per row when its episode ends (`terminated` says how it ended).
    fn success(&self, task: &Task, state: &[f32], terminated: bool) -> Option<bool> {
        let _ = (task, state, terminated);
        None
    }
    /// The 2-D position of a row, for point environments that can be drawn by `metarl plot`.
    fn position(&self, state: &[f32]) -> Option<[f32; 2]> {
        let _ = state;
        None
    }
    /// The goal points of `task` (drawn by `metarl plot`); empty when the task has none.
    fn goals(&self, task: &Task) -> Vec<[f32; 2]> {
        let _ = task;
        Vec::new()
    }
    /// A task's one-number target, for families whose task is one (the direction d or the
    /// velocity v* of the locomotion families): `metarl plot` names it in the task's panel.
    fn target(&self, task: &Task) -> Option<f32> {
        let _ = task;
        None
    }
}

/// The tasks of a batch of [`LANES`] rows stepped in lock-step, with the family's
/// per-task constants in lanes ([`Env::task_constants`]).
#[derive(Clone, Debug)]
pub struct LaneTasks<'a> {
    /// Row `l`'s task.
    pub rows: [&'a Task; LANES],
    /// The family's constants, `constants[i][l]` for row `l`.
    pub constants: Vec<Lanes>,
}

impl<'a> LaneTasks<'a> {
    /// The batch of `rows` for `env`.
    pub fn new(env: &dyn Env, rows: [&'a Task; LANES]) -> Self {
        let constants = env.task_constants(&rows);
        Self { rows, constants }
    }
}

/// A 2-D goal per lane as two rows, x then y: the [`Env::task_constants`] of the point
/// families whose lane step needs only the goal.
pub(crate) fn goal_lanes(tasks: &[&Task; LANES], goal: impl Fn(&Task) -> [f32; 2]) -> Vec<Lanes> {
    let g = tasks.map(goal);
    vec![g.map(|g| g[0]), g.map(|g| g[1])]
}

/// The [`Env::step_lanes`] of a 2-D point family with [`goal_lanes`] constants, the point
/// in state components 0 and 1: `advance(point, action, goal) → (point', reward,
/// terminated)`, the family's one step formula, lane by lane (so rows and lanes share it).
///
/// Compiled with AVX-512 where the CPU has it: `step_lanes` is reached through `dyn Env`,
/// so it does not inherit the lane kernel's level, and at the baseline (SSE2) the loop
/// over lanes takes four passes. IEEE arithmetic (no fused multiply-add) gives the same
/// bits at every level.
#[inline(always)]
pub(crate) fn point_step_lanes(
    tasks: &LaneTasks,
    state: &mut [Lanes],
    action: &[Lanes],
    reward: &mut Lanes,
    terminated: &mut [bool; LANES],
    advance: impl Fn([f32; 2], [f32; 2], [f32; 2]) -> ([f32; 2], f32, bool),
) {
    #[cfg(target_arch = "x86_64")]
    if lanes::Simd::best() == lanes::Simd::Avx512 {
        // SAFETY: the CPU supports AVX-512F, checked just above.
        unsafe { point_step_lanes_avx512(tasks, state, action, reward, terminated, advance) };
        return;
    }
    point_step_lanes_body(tasks, state, action, reward, terminated, advance);
}

/// [`point_step_lanes_body`] compiled with AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f")]
unsafe fn point_step_lanes_avx512(
    tasks: &LaneTasks,
    state: &mut [Lanes],
    action: &[Lanes],
    reward: &mut Lanes,
    terminated: &mut [bool; LANES],
    advance: impl Fn([f32; 2], [f32; 2], [f32; 2]) -> ([f32; 2], f32, bool),
) {
    point_step_lanes_body(tasks, state, action, reward, terminated, advance);
}

#[inline(always)]
fn point_step_lanes_body(
    tasks: &LaneTasks,
    state: &mut [Lanes],
    action: &[Lanes],
    reward: &mut Lanes,
    terminated: &mut [bool; LANES],
    advance: impl Fn([f32; 2], [f32; 2], [f32; 2]) -> ([f32; 2], f32, bool),
) {
    let g = &tasks.constants;
    for l in 0..LANES {
        let (p, r, t) = advance(
            [state[0][l], state[1][l]],
            [action[0][l], action[1][l]],
            [g[0][l], g[1][l]],
        );
        (state[0][l], state[1][l]) = (p[0], p[1]);
        (reward[l], terminated[l]) = (r, t);
    }
}

/// One row's state, observation or action, gathered out of lanes: on the stack up to 32
/// entries (every family here), on the heap beyond.
enum RowBuf {
    Stack([f32; 32], usize),
    Heap(Vec<f32>),
}

impl RowBuf {
    fn new(n: usize) -> Self {
        if n <= 32 {
            RowBuf::Stack([0.0; 32], n)
        } else {
            RowBuf::Heap(vec![0.0; n])
        }
    }

    fn get(&mut self) -> &mut [f32] {
        match self {
            RowBuf::Stack(b, n) => &mut b[..*n],
            RowBuf::Heap(v) => v,
        }
    }
}

/// Names of the MuJoCo locomotion families (`env::mujoco`, cargo feature `mujoco`); a
/// build without the feature answers them with how to install MuJoCo.
pub const MUJOCO_ENV_NAMES: &[&str] = &[
    "half-cheetah-dir",
    "half-cheetah-vel",
    "ant-dir",
    "ant-dir-forward",
    "ant-dir-2d",
    "ant-goal",
    "ant-vel",
    "walker-dir",
    "walker-vel",
    "walker-params",
    "hopper-params",
    "swimmer-vel",
    "humanoid-dir",
];

/// Names of the built-in point, cart-pole and 1-D families ([`Registry::builtin`] also has
/// [`MUJOCO_ENV_NAMES`] in a build with the `mujoco` feature), in display order.
pub const ENV_NAMES: &[&str] = &[
    "nav2d",
    "point-corners",
    "point-corners-dense",
    "point-corners-radius",
    "point-corners-penalized",
    "point-corners-fixed",
    "point-corners-es",
    "six-circles",
    "four-circles",
    "six-circles-visit",
    "goal-1d",
    "cartpole-biased",
];

/// Builds the built-in task family called `name` with its default (paper) settings
/// ([`Registry::builtin`]`.make(name)`).
pub fn make(name: &str) -> Result<Arc<dyn Env>> {
    Registry::builtin().make(name)
}

/// A family whose actions are multiplied by `scale` before the wrapped family sees (and
/// clips) them; everything else is the wrapped family's.
///
/// This is ProMP's `normalize` wrapper (`normalization_scale` s, symmetric bounds ±b: the
/// env receives `a · b / s`) for a policy that acts in a wider space than the env: with
/// ProMP's point-corners settings (s = 10, b = 0.2) the scale is 0.02, so a unit-variance
/// Gaussian policy moves the point by about 0.02 per step of noise, not by the full 0.2.
#[derive(Debug)]
pub struct ScaledActions {
    inner: Arc<dyn Env>,
    scale: f32,
}

impl ScaledActions {
    /// `inner` with its actions multiplied by `scale` (finite and > 0).
    pub fn new(inner: Arc<dyn Env>, scale: f32) -> Self {
        assert!(scale.is_finite() && scale > 0.0, "action scale must be > 0");
        Self { inner, scale }
    }
}

impl Env for ScaledActions {
    fn spec(&self) -> &EnvSpec {
        self.inner.spec()
    }
    fn state_dim(&self) -> usize {
        self.inner.state_dim()
    }
    fn sample_task(&self, rng: &mut Rng) -> Task {
        self.inner.sample_task(rng)
    }
    fn reset(&self, task: &Task, state: &mut [f32], rng: &mut Rng) {
        self.inner.reset(task, state, rng)
    }
    fn fixed_start(&self) -> bool {
        self.inner.fixed_start()
    }
    fn step(&self, task: &Task, state: &mut [f32], action: &[f32]) -> (f32, bool) {
        let mut a = [0.0f32; 8];
        let scaled: Vec<f32>;
        let a: &[f32] = if action.len() <= a.len() {
            for (x, y) in a.iter_mut().zip(action) {
                *x = y * self.scale;
            }
            &a[..action.len()]
        } else {
            scaled = action.iter().map(|y| y * self.scale).collect();
            &scaled
        };
        self.inner.step(task, state, a)
    }
    fn observe(&self, task: &Task, state: &[f32], obs: &mut [f32]) {
        self.inner.observe(task, state, obs)
    }
    /// A simulator family's rows, with every action scaled before they step.
    fn simulator_rows(&self, tasks: &[Task]) -> Option<Box<dyn Rows>> {
        let inner = self.inner.simulator_rows(tasks)?;
        Some(Box::new(ScaledRows {
            inner,
            scale: self.scale,
            buf: Vec::new(),
        }))
    }
    fn success(&self, task: &Task, state: &[f32], terminated: bool) -> Option<bool> {
        self.inner.success(task, state, terminated)
    }
    fn position(&self, state: &[f32]) -> Option<[f32; 2]> {
        self.inner.position(state)
    }
    fn goals(&self, task: &Task) -> Vec<[f32; 2]> {
        self.inner.goals(task)
    }
    fn target(&self, task: &Task) -> Option<f32> {
        self.inner.target(task)
    }
}

/// [`ScaledActions`] for a simulator family: its rows, stepped with scaled actions.
struct ScaledRows {
    inner: Box<dyn Rows>,
    scale: f32,
    buf: Vec<f32>,
}

impl ScaledRows {
    fn scaled(&mut self, action: &[f32]) -> Vec<f32> {
        let mut b = std::mem::take(&mut self.buf);
        b.clear();
        b.extend(action.iter().map(|a| a * self.scale));
        b
    }
}

impl Rows for ScaledRows {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn reset(&mut self, i: usize, rng: &mut Rng) {
        self.inner.reset(i, rng)
    }
    fn step(&mut self, i: usize, action: &[f32]) -> (f32, bool) {
        let a = self.scaled(action);
        let out = self.inner.step(i, &a);
        self.buf = a;
        out
    }
    fn observe(&self, i: usize, obs: &mut [f32]) {
        self.inner.observe(i, obs)
    }
    fn step_active(
        &mut self,
        actions: &[f32],
        active: &[bool],
        reward: &mut [f32],
        terminated: &mut [bool],
    ) {
        let a = self.scaled(actions);
        self.inner.step_active(&a, active, reward, terminated);
        self.buf = a;
    }
    fn observe_all(&self, obs: &mut [f32]) {
        self.inner.observe_all(obs)
    }
    fn success(&self, i: usize, terminated: bool) -> Option<bool> {
        self.inner.success(i, terminated)
    }
    fn position(&self, i: usize) -> Option<[f32; 2]> {
        self.inner.position(i)
    }
    fn velocity_error(&self, i: usize) -> Option<f64> {
        self.inner.velocity_error(i)
    }
}

/// A family with its episodes truncated at another horizon; everything else (tasks,
/// dynamics, rewards, termination, simulator rows, SIMD lanes) is the wrapped family's.
/// Papers differ in episode length for the same task (the ES + DDPG paper runs MAML's
/// MuJoCo tasks for 200 steps, ProMP's scripts for 100); this lets a run choose without a
/// new family.
#[derive(Debug)]
pub struct WithHorizon {
    inner: Arc<dyn Env>,
    spec: EnvSpec,
}

impl WithHorizon {
    /// `inner`, truncated at `horizon` (≥ 1) steps.
    pub fn new(inner: Arc<dyn Env>, horizon: usize) -> Self {
        assert!(horizon >= 1, "a horizon is at least one step");
        let spec = EnvSpec {
            horizon,
            ..inner.spec().clone()
        };
        Self { inner, spec }
    }

    /// `inner` itself when `horizon` is `None` or its own horizon, else wrapped.
    pub fn wrap(inner: Arc<dyn Env>, horizon: Option<usize>) -> Arc<dyn Env> {
        match horizon {
            Some(h) if h != inner.spec().horizon => Arc::new(Self::new(inner, h)),
            _ => inner,
        }
    }
}

impl Env for WithHorizon {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }
    fn state_dim(&self) -> usize {
        self.inner.state_dim()
    }
    fn sample_task(&self, rng: &mut Rng) -> Task {
        self.inner.sample_task(rng)
    }
    fn finite_tasks(&self) -> Option<Vec<Task>> {
        self.inner.finite_tasks()
    }
    fn reset(&self, task: &Task, state: &mut [f32], rng: &mut Rng) {
        self.inner.reset(task, state, rng)
    }
    fn fixed_start(&self) -> bool {
        self.inner.fixed_start()
    }
    fn step(&self, task: &Task, state: &mut [f32], action: &[f32]) -> (f32, bool) {
        self.inner.step(task, state, action)
    }
    fn observe(&self, task: &Task, state: &[f32], obs: &mut [f32]) {
        self.inner.observe(task, state, obs)
    }
    fn simulator_rows(&self, tasks: &[Task]) -> Option<Box<dyn Rows>> {
        self.inner.simulator_rows(tasks)
    }
    fn task_constants(&self, tasks: &[&Task; LANES]) -> Vec<Lanes> {
        self.inner.task_constants(tasks)
    }
    fn observe_lanes(&self, tasks: &LaneTasks, state: &[Lanes], obs: &mut [Lanes]) {
        self.inner.observe_lanes(tasks, state, obs)
    }
    fn step_lanes(
        &self,
        tasks: &LaneTasks,
        state: &mut [Lanes],
        action: &[Lanes],
        reward: &mut Lanes,
        terminated: &mut [bool; LANES],
    ) {
        self.inner
            .step_lanes(tasks, state, action, reward, terminated)
    }
    fn success(&self, task: &Task, state: &[f32], terminated: bool) -> Option<bool> {
        self.inner.success(task, state, terminated)
    }
    fn position(&self, state: &[f32]) -> Option<[f32; 2]> {
        self.inner.position(state)
    }
    fn goals(&self, task: &Task) -> Vec<[f32; 2]> {
        self.inner.goals(task)
    }
    fn target(&self, task: &Task) -> Option<f32> {
        self.inner.target(task)
    }
}

/// [`make`], with the actions multiplied by `action_scale` ([`ScaledActions`]) unless it
/// is 1 ([`Registry::make_scaled`] on the built-in families).
pub fn make_scaled(name: &str, action_scale: f64) -> Result<Arc<dyn Env>> {
    Registry::builtin().make_scaled(name, action_scale)
}

/// Euclidean distance between two points of the plane (point environments).
pub(crate) fn distance(p: [f32; 2], g: [f32; 2]) -> f32 {
    let (dx, dy) = (p[0] - g[0], p[1] - g[1]);
    (dx * dx + dy * dy).sqrt()
}

/// A draw from `U[low, high)`. Unlike `random_range`, the degenerate range `low == high`
/// is allowed and gives `low`, so a config can pin a parameter.
///
/// # Panics
/// If `low > high` or either is NaN (a misconfigured range).
pub(crate) fn uniform(rng: &mut Rng, low: f32, high: f32) -> f32 {
    use rand::Rng as _;
    if low < high {
        rng.random_range(low..high)
    } else {
        assert!(
            low == high,
            "a sampling range should have low <= high, got {low}..{high}"
        );
        low
    }
}

/// Samples tasks of one family: fresh tasks for training, and a fixed held-out set
/// (the same for every run and seed) for evaluation.
#[derive(Clone, Debug)]
pub struct TaskDistribution {
    env: Arc<dyn Env>,
}

/// Root seed of the held-out evaluation tasks; fixed so that every run is scored on the
/// same tasks (Finn et al. fix theirs with `np.random.seed(1)`).
pub const HELD_OUT_SEED: u64 = 1;

impl TaskDistribution {
    /// The task distribution of `env`.
    pub fn new(env: Arc<dyn Env>) -> Self {
        Self { env }
    }

    /// Draws `n` training tasks from `rng`.
    pub fn sample(&self, n: usize, rng: &mut Rng) -> Vec<Task> {
        (0..n).map(|_| self.env.sample_task(rng)).collect()
    }

    /// The first `n` tasks of the fixed held-out set: independent of any run's seed, and
    /// a prefix of the set for a larger `n`.
    pub fn held_out(&self, n: usize) -> Vec<Task> {
        let mut rng = rng::stream(HELD_OUT_SEED, "held-out-tasks");
        self.sample(n, &mut rng)
    }
}

/// What one lock-step [`VecEnv::step`] returns, one entry per row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    /// Observations after the step, `[N, obs_dim]` row-major.
    pub obs: Vec<f32>,
    /// Rewards; 0 for rows that had already finished.
    pub reward: Vec<f32>,
    /// The task ended this step (goal reached, failure).
    pub terminated: Vec<bool>,
    /// The horizon was reached this step without termination.
    pub truncated: Vec<bool>,
    /// The row was still running before this step (its transition is real data).
    pub active: Vec<bool>,
    /// For rows that finished this step: the family's success verdict, if it defines one.
    pub success: Vec<Option<bool>>,
    /// For rows that finished this step, in velocity-target families: the episode's mean
    /// |v − v*| ([`Rows::velocity_error`]).
    pub velocity_error: Vec<Option<f64>>,
}

/// A batch of rows, each a (task, rollout) pair, stepped in lock-step.
pub struct VecEnv {
    env: Arc<dyn Env>,
    tasks: Arc<[Task]>,
    rngs: Vec<Rng>,
    rows: Box<dyn Rows>,
    t: Vec<usize>,
    done: Vec<bool>,
}

impl Debug for VecEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VecEnv")
            .field("env", &self.env)
            .field("rows", &self.tasks.len())
            .finish()
    }
}

impl VecEnv {
    /// One row per entry of `tasks`; row `i` draws its initial states from its own
    /// stream, sub-stream `seeds[i]`-seeded.
    pub fn new(env: Arc<dyn Env>, tasks: Vec<Task>, seeds: &[u64]) -> Self {
        assert_eq!(tasks.len(), seeds.len(), "one seed per row");
        let n = tasks.len();
        let tasks: Arc<[Task]> = tasks.into();
        Self {
            rngs: seeds
                .iter()
                .map(|&s| rng::substream(s, "env-row", 0))
                .collect(),
            rows: rows::rows_for(&env, tasks.clone()),
            env,
            tasks,
            t: vec![0; n],
            done: vec![true; n],
        }
    }

    /// `tasks.len() × rollouts` rows, row `m·rollouts + k` running task `m`; row seeds are
    /// drawn from `rng`.
    pub fn for_tasks(env: Arc<dyn Env>, tasks: &[Task], rollouts: usize, rng: &mut Rng) -> Self {
        let rows: Vec<Task> = tasks
            .iter()
            .flat_map(|t| std::iter::repeat_n(t.clone(), rollouts))
            .collect();
        let seeds: Vec<u64> = (0..rows.len()).map(|_| rng::next_seed(rng)).collect();
        Self::new(env, rows, &seeds)
    }

    /// The family's description.
    pub fn spec(&self) -> &EnvSpec {
        self.env.spec()
    }

    /// The family.
    pub fn env(&self) -> &Arc<dyn Env> {
        &self.env
    }

    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.tasks.len()
    }

    /// The task of every row.
    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// Internal state of row `i`, for a stateless family.
    ///
    /// # Panics
    /// For a simulator family, whose rows are not `f32` vectors.
    pub fn row_state(&self, i: usize) -> &[f32] {
        self.rows.flat_state(i).unwrap_or_else(|| {
            panic!(
                "{} keeps simulator rows: no f32 row state",
                self.env.spec().name
            )
        })
    }

    /// Starts a new episode in every row and returns the observations `[N, obs_dim]`.
    pub fn reset(&mut self) -> Vec<f32> {
        for i in 0..self.num_rows() {
            self.rows.reset(i, &mut self.rngs[i]);
            self.t[i] = 0;
            self.done[i] = false;
        }
        self.observe()
    }

    /// Observations of every row, `[N, obs_dim]`.
    pub fn observe(&self) -> Vec<f32> {
        let od = self.env.spec().obs_dim;
        let mut obs = vec![0.0; self.num_rows() * od];
        self.rows.observe_all(&mut obs);
        obs
    }

    /// Steps every running row with its action (`actions` is `[N, act_dim]`).
    pub fn step(&mut self, actions: &[f32]) -> Step {
        let n = self.num_rows();
        let ad = self.env.spec().act_dim;
        let horizon = self.env.spec().horizon;
        assert_eq!(actions.len(), n * ad, "actions must be [N, act_dim]");
        let mut out = Step {
            obs: Vec::new(),
            reward: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
            active: vec![false; n],
            success: vec![None; n],
            velocity_error: vec![None; n],
        };
        for i in 0..n {
            out.active[i] = !self.done[i];
        }
        self.rows
            .step_active(actions, &out.active, &mut out.reward, &mut out.terminated);
        for i in (0..n).filter(|&i| out.active[i]) {
            self.t[i] += 1;
            let term = out.terminated[i];
            out.truncated[i] = !term && self.t[i] >= horizon;
            if term || out.truncated[i] {
                self.done[i] = true;
                out.success[i] = self.rows.success(i, term);
                out.velocity_error[i] = self.rows.velocity_error(i);
            }
        }
        out.obs = self.observe();
        out
    }

    /// The 2-D position of every row, `[N, 2]`, for point environments.
    pub fn positions(&self) -> Option<Vec<f32>> {
        (0..self.num_rows())
            .map(|i| self.rows.position(i))
            .collect::<Option<Vec<[f32; 2]>>>()
            .map(|v| v.into_iter().flatten().collect())
    }

    /// True when every row has finished its episode.
    pub fn all_done(&self) -> bool {
        self.done.iter().all(|&d| d)
    }
}
