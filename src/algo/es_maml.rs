//! ES-MAML: zero-order and first-order evolution-strategies MAML.
//!
//! Reference: Song, Gao, Yang, Choromanski, Pacchiano, Tang, "ES-MAML: Simple Hessian-Free
//! Meta Learning", ICLR 2020 — Algorithms 2–5; code defaults from mission-anchors §3.4.
//!
//! ```text
//! Zero order (Algorithm 2, with Algorithm 3's ES-gradient operator as one choice of U):
//!   for t = 0, 1, …:
//!     sample n tasks T_i and directions g_i ~ N(0, I)
//!     v_i ← f^{T_i}(U(θ_t + σ g_i, T_i))                 (U: es-grad | hill-climb | dpp)
//!     θ_{t+1} ← θ_t + β ĝ,  ĝ = ESGRAD estimate from (g_i, v_i)   (mc | forward-fd | antithetic)
//!
//! First order (Algorithm 5):
//!   for each task T_i:  d1 = ESGRAD(f, θ, K, σ);  θ'_i = θ + α d1;  d2 = ESGRAD(f, θ'_i, K, σ)
//!                       H_i = ESHESS(f, θ, K, σ)               (Algorithm 4, hessian = full)
//!   θ ← θ + β/n Σ_i (I + α H_i) d2                 (hessian = none: θ ← θ + β/n Σ_i d2)
//! ```
//!
//! f^T(θ) is the undiscounted return of one episode of the deterministic policy θ (flat
//! vector, [`crate::nn::flat`]) on task T, with observations normalized by running
//! statistics gathered from every episode of the previous iterations (ES-MAML's global
//! state normalization). Each perturbation draws its task from a fixed set of training
//! tasks; held-out test tasks score pre- and post-adaptation returns. Randomness comes
//! only from per-index sub-streams, so results do not depend on the rayon thread count.
//! The ES estimate goes through a Burn SGD optimizer as a `GradientsParams` (negated:
//! optimizers descend).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use burn::optim::{ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use rand::{Rng as _, RngCore};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::env::{Env, Task, TaskDistribution};
use crate::error::{Error, Result};
pub use crate::es::Order;
use crate::es::{
    dpp_perturbations, es_gradient, es_gradient_lockstep, es_hvp_from_values,
    first_order_meta_direction, gaussian_perturbations, hill_climb_lockstep, standardize,
    EsEstimator, FitnessShaping, GradientProblem, Objective,
};
use crate::lanes::LANES;
use crate::learner::{Checkpoint, Evaluation, MetaLearner, Metrics, ReturnScores};
use crate::nn::flat::FlatPolicy;
use crate::nn::{Activation, DeterministicPolicy, DeterministicPolicyConfig, Init};
use crate::params::{flatten, to_gradients, unflatten};
use crate::rng::{substream, LazyRng, Rng};
use crate::rollout::{episode_return_flat, episode_returns_lanes, ObsNorm, ObsStats};

/// The adaptation operator U(θ, T).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operator {
    /// θ + α · ES gradient from K queries.
    EsGrad,
    /// K accept-if-better perturbations.
    HillClimb,
    /// θ + α · ES gradient over K DPP-selected directions.
    Dpp,
}

/// Linear or one-or-more-hidden-layer deterministic policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// No hidden layer, tanh output (ES-MAML's default).
    Linear,
    /// Hidden layers of `hidden` units, tanh.
    Mlp,
}

/// ES-MAML hyperparameters (paper A.7.2 and mission-anchors §3.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EsMamlConfig {
    /// Zero or first order.
    pub order: Order,
    /// Adaptation operator (zero order).
    pub operator: Operator,
    /// Outer ES estimator (forward-fd in the paper's table).
    pub estimator: EsEstimator,
    /// Estimator inside the ES-gradient and DPP operators, and of first order's d1, d2.
    pub adapt_estimator: EsEstimator,
    /// First order: include the ES Hessian term (FO-Hessian) or not (FO-NoHessian).
    pub hessian: bool,
    /// Outer perturbations n (150); first order: tasks per iteration.
    pub perturbations: usize,
    /// Adaptation queries K (20).
    pub queries: usize,
    /// Outer precision σ (0.1).
    pub sigma: f32,
    /// Adaptation precision σ (0.1).
    pub adapt_sigma: f32,
    /// Meta step size β (0.01).
    pub meta_lr: f64,
    /// Adaptation step size α (0.05).
    pub alpha: f32,
    /// Standardize f-values before forming estimates (reward normalization).
    pub normalize_rewards: bool,
    /// Normalize observations with running statistics.
    pub normalize_states: bool,
    /// Policy architecture.
    pub policy: PolicyKind,
    /// Hidden layer sizes for `policy = "mlp"` (width 32).
    pub hidden: Vec<usize>,
    /// DPP candidate pool = `dpp_pool_factor` × K (ES-MAML's dpp_rho: 5).
    pub dpp_pool_factor: usize,
    /// Fixed training tasks (50). A family with finitely many tasks (four corners) trains
    /// on all of them, each once, when this is at least their number (paper A.7.2's
    /// "(N, N, N)" setting).
    pub train_tasks: usize,
    /// Zero order: distinct training tasks each perturbation is adapted on and scored on;
    /// its f-value is their mean (paper A.7.2's task batch: 5, or all N of a finite
    /// family, "each worker performs adaptations on all possible tasks"). 1 draws one task
    /// per perturbation. First order ignores it: each of its `perturbations` is a task.
    pub task_batch: usize,
    /// Held-out test tasks evaluated each iteration (a rotating window of 10 of them).
    pub test_tasks: usize,
}

impl Default for EsMamlConfig {
    fn default() -> Self {
        Self {
            order: Order::Zero,
            operator: Operator::EsGrad,
            estimator: EsEstimator::ForwardFd,
            adapt_estimator: EsEstimator::ForwardFd,
            hessian: false,
            perturbations: 150,
            queries: 20,
            sigma: 0.1,
            adapt_sigma: 0.1,
            meta_lr: 0.01,
            alpha: 0.05,
            normalize_rewards: true,
            normalize_states: true,
            policy: PolicyKind::Linear,
            hidden: vec![32, 32],
            dpp_pool_factor: 5,
            train_tasks: 50,
            task_batch: 1,
            test_tasks: 50,
        }
    }
}

impl EsMamlConfig {
    /// Validates every field.
    pub fn validate(&self) -> Result<()> {
        for (f, v) in [
            ("es.perturbations", self.perturbations),
            ("es.queries", self.queries),
            ("es.dpp_pool_factor", self.dpp_pool_factor),
            ("es.train_tasks", self.train_tasks),
            ("es.task_batch", self.task_batch),
            ("es.test_tasks", self.test_tasks),
        ] {
            if v == 0 {
                return Err(Error::invalid(f, v, "≥ 1"));
            }
        }
        for (f, v) in [
            ("es.sigma", self.sigma as f64),
            ("es.adapt_sigma", self.adapt_sigma as f64),
            ("es.meta_lr", self.meta_lr),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(f, v, "> 0"));
            }
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(Error::invalid("es.alpha", self.alpha, "≥ 0"));
        }
        if self.task_batch > self.train_tasks {
            return Err(Error::invalid(
                "es.task_batch",
                self.task_batch,
                format!("1..={} (at most es.train_tasks)", self.train_tasks),
            ));
        }
        if self.policy == PolicyKind::Mlp && (self.hidden.is_empty() || self.hidden.contains(&0)) {
            return Err(Error::invalid(
                "es.hidden",
                format!("{:?}", self.hidden),
                "sizes ≥ 1",
            ));
        }
        Ok(())
    }

    /// Validates the fields that depend on the task family: `task_batch` cannot exceed
    /// the number of distinct training tasks.
    pub fn validate_for(&self, env: &dyn Env) -> Result<()> {
        self.validate()?;
        let n = self
            .train_set(env, &mut crate::rng::stream(0, "validate"))
            .len();
        if self.task_batch > n {
            return Err(Error::invalid(
                "es.task_batch",
                self.task_batch,
                format!(
                    "1..={n} (the distinct training tasks of {})",
                    env.spec().name
                ),
            ));
        }
        Ok(())
    }

    /// The fixed training tasks: every task of a finite family when `train_tasks` covers
    /// them, else `train_tasks` draws from `rng`.
    fn train_set(&self, env: &dyn Env, rng: &mut Rng) -> Vec<Task> {
        match env.finite_tasks() {
            Some(all) if self.train_tasks >= all.len() => all,
            _ => (0..self.train_tasks)
                .map(|_| env.sample_task(rng))
                .collect(),
        }
    }

    fn shaping(&self) -> FitnessShaping {
        self.normalize_rewards.into()
    }
}

/// The ES-MAML learner.
pub struct EsMaml {
    /// Hyperparameters.
    pub cfg: EsMamlConfig,
    /// Task family.
    pub env: Arc<dyn Env>,
    /// θ as a Burn module (the parameter store the optimizer updates).
    pub policy: DeterministicPolicy,
    /// SGD (ES-MAML's plain ascent θ ← θ + β ĝ).
    pub optim: ModuleOptimizer,
    /// Running observation statistics.
    pub stats: ObsStats,
    flat: FlatPolicy,
    train: Vec<Task>,
    test: Vec<Task>,
    seed: u64,
    device: Device,
}

/// What evaluations of f add up during one iteration: env steps and observation
/// statistics (both sums, so the result does not depend on evaluation order).
struct Counter {
    steps: AtomicU64,
    stats: Mutex<ObsStats>,
}

impl Counter {
    /// Adds what some episodes observed.
    fn add(&self, local: &ObsStats) {
        self.steps.fetch_add(local.count, Ordering::Relaxed);
        self.stats
            .lock()
            .expect("stats lock should not be poisoned")
            .merge(local);
    }
}

/// f^T(θ) of one task as an ES objective: one episode's return ([`EsMaml::f`]), the
/// episode's start drawn from the evaluation's generator. Batches run in SIMD lanes.
struct TaskReturn<'a> {
    es: &'a EsMaml,
    task: &'a Task,
    norm: &'a ObsNorm,
    c: &'a Counter,
}

impl Objective for TaskReturn<'_> {
    fn value(&self, theta: &[f32], rng: &mut Rng) -> f64 {
        let seed = self.es.episode_seed(|| rng);
        self.es.f(self.task, theta, self.norm, seed, self.c)
    }

    fn values(&self, points: &[&[f32]], rngs: &mut [LazyRng]) -> Vec<f64> {
        let seeds = self.es.episode_seeds(rngs);
        let tasks = vec![self.task; points.len()];
        self.es.f_batch(&tasks, points, self.norm, &seeds, self.c)
    }
}

/// Algorithm 2's objective of a perturbed θ: the mean over a batch of training tasks T
/// (drawn from the evaluation's generator) of f^T(U(θ, T)). A batch of points adapts every
/// (point, task) pair (hill climbing: all pairs in lock-step, so each round's episodes run
/// in lanes) and then runs all the post-adaptation episodes together in lanes; the
/// generator is read in the same order as for one point alone (per task: the operator's
/// seed, then the episode's), so the values are the same.
struct AdaptedReturn<'a> {
    es: &'a EsMaml,
    norm: &'a ObsNorm,
    c: &'a Counter,
}

impl Objective for AdaptedReturn<'_> {
    fn value(&self, theta: &[f32], rng: &mut Rng) -> f64 {
        self.values_with(&[theta], &mut [rng])[0]
    }

    fn values(&self, points: &[&[f32]], rngs: &mut [LazyRng]) -> Vec<f64> {
        let mut rngs: Vec<&mut Rng> = rngs.iter_mut().map(LazyRng::get).collect();
        self.values_with(points, &mut rngs)
    }
}

impl AdaptedReturn<'_> {
    /// [`Objective::values`] with the generators built (every one is read).
    fn values_with(&self, points: &[&[f32]], rngs: &mut [&mut Rng]) -> Vec<f64> {
        let (es, cfg) = (self.es, &self.es.cfg);
        // Every (point, task) pair, point by point (`task_batch` pairs each): its operator
        // seed, then its episode seed.
        let (mut starts, mut tasks) = (Vec::new(), Vec::new());
        let (mut adapt_seeds, mut seeds) = (Vec::new(), Vec::new());
        for (p, r) in points.iter().zip(rngs.iter_mut()) {
            for t in es.task_indices(cfg.task_batch, r) {
                starts.push(*p);
                tasks.push(&es.train[t]);
                adapt_seeds.push(r.next_u64());
                seeds.push(r.next_u64());
            }
        }
        let adapted = es.adapt_batch(
            cfg.operator,
            &starts,
            &tasks,
            &adapt_seeds,
            self.norm,
            self.c,
        );
        let thetas: Vec<&[f32]> = adapted.iter().map(Vec::as_slice).collect();
        let returns = es.f_batch(&tasks, &thetas, self.norm, &seeds, self.c);
        returns
            .chunks(cfg.task_batch)
            .map(|mine| mine.iter().sum::<f64>() / mine.len() as f64)
            .collect()
    }
}

impl EsMaml {
    /// A learner with θ drawn from `init_rng` and a fixed training-task set from `tasks_rng`.
    pub fn new(
        cfg: EsMamlConfig,
        env: Arc<dyn Env>,
        seed: u64,
        init_rng: &mut Rng,
        tasks_rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let s = env.spec().clone();
        let pc = DeterministicPolicyConfig {
            hidden: if cfg.policy == PolicyKind::Linear {
                vec![]
            } else {
                cfg.hidden.clone()
            },
            activation: Activation::Tanh,
            tanh_output: true,
            init: Init::HeNormal,
        };
        let policy = pc.init(s.obs_dim, s.act_dim, init_rng, device);
        // Build the shared noise table (64 MiB, one-off) now, with the learner, rather than
        // inside the first timed iteration.
        crate::es::noise::noise_table();
        let dist = TaskDistribution::new(env.clone());
        Self {
            flat: FlatPolicy::of(&policy),
            train: cfg.train_set(env.as_ref(), tasks_rng),
            test: dist.held_out(cfg.test_tasks),
            stats: ObsStats::new(s.obs_dim),
            optim: SgdConfig::new().init(),
            policy,
            cfg,
            env,
            seed,
            device: device.clone(),
        }
    }

    /// The observation normalizer frozen for this iteration and a fresh counter.
    fn context(&self) -> (ObsNorm, Counter) {
        let d = self.env.spec().obs_dim;
        let norm = if self.cfg.normalize_states {
            self.stats.normalizer()
        } else {
            ObsStats::new(d).normalizer()
        };
        let c = Counter {
            steps: AtomicU64::new(0),
            stats: Mutex::new(ObsStats::new(d)),
        };
        (norm, c)
    }

    /// θ as a flat vector.
    pub fn theta(&self) -> Vec<f32> {
        flatten(&self.policy)
    }

    /// f^T(θ): one episode's return, observations counted.
    fn f(&self, task: &Task, theta: &[f32], norm: &ObsNorm, seed: u64, c: &Counter) -> f64 {
        let mut local = ObsStats::new(self.env.spec().obs_dim);
        let r = episode_return_flat(&self.env, task, &self.flat, theta, norm, seed, &mut local);
        c.add(&local);
        r
    }

    /// [`Self::f`] for episode `i` = (`tasks[i]`, `thetas[i]`, `seeds[i]`) of a batch, with
    /// exactly the same results: batches that fill more than half of the SIMD lanes run
    /// in lock-step ([`episode_returns_lanes`]), the rest one episode at a time (a lane batch
    /// costs the same however few lanes it fills). Batches run in parallel.
    fn f_batch(
        &self,
        tasks: &[&Task],
        thetas: &[&[f32]],
        norm: &ObsNorm,
        seeds: &[u64],
        c: &Counter,
    ) -> Vec<f64> {
        let starts: Vec<usize> = (0..thetas.len()).step_by(LANES).collect();
        let chunks: Vec<Vec<f64>> = starts
            .par_iter()
            .map(|&start| {
                let end = thetas.len().min(start + LANES);
                let (t, p, s) = (&tasks[start..end], &thetas[start..end], &seeds[start..end]);
                let mut local = ObsStats::new(self.env.spec().obs_dim);
                let out = if end - start > LANES / 2 {
                    episode_returns_lanes(&self.env, t, &self.flat, p, norm, s, &mut local)
                } else {
                    (0..t.len())
                        .map(|i| {
                            episode_return_flat(
                                &self.env, t[i], &self.flat, p[i], norm, s[i], &mut local,
                            )
                        })
                        .collect()
                };
                c.add(&local);
                out
            })
            .collect();
        chunks.concat()
    }

    /// f^T as an ES objective.
    fn task_return<'a>(
        &'a self,
        task: &'a Task,
        norm: &'a ObsNorm,
        c: &'a Counter,
    ) -> TaskReturn<'a> {
        TaskReturn {
            es: self,
            task,
            norm,
            c,
        }
    }

    /// U(θ_q, T_q) for every pair `q` of start `starts[q]` and task `tasks[q]`, with the
    /// operator's randomness fixed by `seeds[q]`: each result is exactly the pair's
    /// adaptation on its own, but all pairs' episodes run together in lanes (hill climbing
    /// in lock-step round by round; `es-grad` and `dpp` all queries at once). An episode's
    /// start is drawn from its evaluation generator, as in [`TaskReturn`].
    fn adapt_batch(
        &self,
        operator: Operator,
        starts: &[&[f32]],
        tasks: &[&Task],
        seeds: &[u64],
        norm: &ObsNorm,
        c: &Counter,
    ) -> Vec<Vec<f32>> {
        let cfg = &self.cfg;
        let eval = |pairs: &[usize], pts: &[&[f32]], rs: &mut [LazyRng]| {
            let ts: Vec<&Task> = pairs.iter().map(|&q| tasks[q]).collect();
            let ss = self.episode_seeds(rs);
            self.f_batch(&ts, pts, norm, &ss, c)
        };
        match operator {
            Operator::HillClimb => {
                hill_climb_lockstep(starts, cfg.adapt_sigma, cfg.queries, seeds, eval)
                    .into_iter()
                    .map(|hc| hc.theta)
                    .collect()
            }
            Operator::EsGrad | Operator::Dpp => {
                // In parallel: a DPP selection costs as much as many episodes.
                let problems: Vec<GradientProblem> = starts
                    .par_iter()
                    .zip(seeds)
                    .map(|(&theta, &seed)| GradientProblem {
                        theta,
                        perturbations: self.adaptation_directions(operator, theta.len(), seed),
                        seed,
                    })
                    .collect();
                let shaping = cfg.shaping();
                es_gradient_lockstep(
                    &problems,
                    cfg.adapt_sigma,
                    cfg.adapt_estimator,
                    shaping,
                    eval,
                )
                .iter()
                .zip(starts)
                .map(|(est, theta)| self.gradient_step(theta, &est.grad))
                .collect()
            }
        }
    }

    /// The start seed of an episode whose evaluation generator (`rng()`) is not read
    /// again: its next draw, or 0 without touching it when the family's start is fixed
    /// (the seed is then never used, and the generator is never built or refilled).
    fn episode_seed<'r>(&self, rng: impl FnOnce() -> &'r mut Rng) -> u64 {
        if self.env.fixed_start() {
            0
        } else {
            rng().next_u64()
        }
    }

    /// [`Self::episode_seed`] of every generator of a batch.
    fn episode_seeds(&self, rngs: &mut [LazyRng]) -> Vec<u64> {
        rngs.iter_mut()
            .map(|r| self.episode_seed(|| r.get()))
            .collect()
    }

    /// The K query directions of a gradient-type adaptation with seed `seed`: i.i.d.
    /// Gaussian ([`es_gradient`]'s) for `es-grad`, chosen by the DPP for `dpp`.
    fn adaptation_directions(&self, operator: Operator, d: usize, seed: u64) -> Vec<Vec<f32>> {
        let cfg = &self.cfg;
        match operator {
            Operator::Dpp => {
                dpp_perturbations(d, cfg.queries, cfg.dpp_pool_factor, (d as f64).sqrt(), seed)
            }
            _ => gaussian_perturbations(d, cfg.queries, seed, 0),
        }
    }

    /// The adaptation step θ + α ĝ (Algorithm 3, line 5).
    fn gradient_step(&self, theta: &[f32], grad: &[f32]) -> Vec<f32> {
        theta
            .iter()
            .zip(grad)
            .map(|(t, g)| t + self.cfg.alpha * g)
            .collect()
    }

    /// One meta-iteration (Algorithm 2 or 5).
    fn iterate(&mut self, iteration: usize) -> Result<Metrics> {
        let it_seed = substream(self.seed, "es-iteration", iteration as u64).next_u64();
        let (norm, c) = self.context();
        let theta = self.theta();
        // All of the iteration's episodes on the rayon pool: its many nested parallel calls
        // then split work between workers instead of each waking the pool from outside and
        // blocking (context switches were 15% of a linear-policy iteration).
        let ((grad, train_value), (pre, post)) = rayon::scope(|_| {
            let learner = &*self;
            let g = match learner.cfg.order {
                Order::Zero => learner.zero_order(&theta, &norm, it_seed, &c),
                Order::First => learner.first_order(&theta, &norm, it_seed, &c),
            };
            (
                g,
                learner.test_returns(&theta, iteration, &norm, it_seed, &c),
            )
        });
        let neg: Vec<f32> = grad.iter().map(|g| -g).collect();
        let gp = to_gradients(&self.policy, &neg, &self.device);
        self.policy = self.optim.step(self.cfg.meta_lr, self.policy.clone(), gp);
        let c_stats = c
            .stats
            .into_inner()
            .expect("stats lock should not be poisoned");
        self.stats.merge(&c_stats);
        let norm2 = grad.iter().map(|g| (*g as f64).powi(2)).sum::<f64>().sqrt();
        Ok(Metrics::new()
            .with("pre_return", pre)
            .with("post_return_1", post)
            .with("train_value", train_value)
            .with("env_steps", c.steps.load(Ordering::Relaxed) as f64)
            .with("grad_norm", norm2))
    }

    /// `k` distinct training-task indices from `r` (one uniform draw when `k = 1`).
    fn task_indices(&self, k: usize, r: &mut Rng) -> Vec<usize> {
        if k == 1 {
            vec![r.random_range(0..self.train.len())]
        } else {
            rand::seq::index::sample(r, self.train.len(), k).into_vec()
        }
    }

    /// ĝ for Algorithm 2: f_i = mean over a batch of training tasks T of f^T(U(θ + σ g_i, T)),
    /// tasks (distinct) and operator randomness from each evaluation's stream (antithetic
    /// pairs share theirs).
    fn zero_order(&self, theta: &[f32], norm: &ObsNorm, seed: u64, c: &Counter) -> (Vec<f32>, f64) {
        let big_f = AdaptedReturn { es: self, norm, c };
        let est = es_gradient(
            &big_f,
            theta,
            self.cfg.sigma,
            self.cfg.perturbations,
            self.cfg.estimator,
            seed,
            self.cfg.shaping(),
        );
        let mean = est.mean_value();
        (est.grad, mean)
    }

    /// ĝ for Algorithm 5: mean over tasks of (I + αĤ) d2 (or d2 without the Hessian).
    fn first_order(
        &self,
        theta: &[f32],
        norm: &ObsNorm,
        seed: u64,
        c: &Counter,
    ) -> (Vec<f32>, f64) {
        let cfg = &self.cfg;
        let dirs: Vec<(Vec<f32>, f64)> = (0..cfg.perturbations as u64)
            .into_par_iter()
            .map(|i| {
                let mut r = substream(seed, "es-first-order-task", i);
                let task = &self.train[self.task_indices(1, &mut r)[0]];
                let f = self.task_return(task, norm, c);
                let (s1, s2, s3) = (r.next_u64(), r.next_u64(), r.next_u64());
                let d1 = es_gradient(
                    &f,
                    theta,
                    cfg.adapt_sigma,
                    cfg.queries,
                    cfg.adapt_estimator,
                    s1,
                    cfg.shaping(),
                );
                let adapted = self.gradient_step(theta, &d1.grad);
                let d2 = es_gradient(
                    &f,
                    &adapted,
                    cfg.adapt_sigma,
                    cfg.queries,
                    cfg.adapt_estimator,
                    s2,
                    cfg.shaping(),
                );
                let value = d2.mean_value();
                let dir = if cfg.hessian {
                    let hv = self.hessian_vector(&f, theta, &d2.grad, s3);
                    first_order_meta_direction(&d2.grad, &hv, cfg.alpha)
                } else {
                    d2.grad
                };
                (dir, value)
            })
            .collect();
        let n = dirs.len() as f32;
        let mut g = vec![0.0f32; theta.len()];
        for (d, _) in &dirs {
            g.iter_mut().zip(d).for_each(|(a, b)| *a += b / n);
        }
        let value = dirs.iter().map(|(_, v)| v).sum::<f64>() / dirs.len() as f64;
        (g, value)
    }

    /// Ĥ v by Algorithm 4 with ES-MAML's control variate: the f-values are standardized
    /// (or only mean-centred without reward normalization) before forming
    /// (1/(Kσ²)) Σ f̃_i (g_i g_iᵀ − I) v. Standardizing puts Ĥ in the same units as the
    /// normalized gradients d1, d2 (the Jacobian of θ + α d1 is I + α ∇d1 ≈ I + α H/std f);
    /// with raw returns of size ~10² the raw estimate's variance (~f²/σ⁴) swamps the step.
    fn hessian_vector<F>(&self, f: &F, theta: &[f32], v: &[f32], seed: u64) -> Vec<f32>
    where
        F: Objective,
    {
        let cfg = &self.cfg;
        let est = es_gradient(
            f,
            theta,
            cfg.adapt_sigma,
            cfg.queries,
            EsEstimator::Mc,
            seed,
            FitnessShaping::Raw,
        );
        let values = if cfg.normalize_rewards {
            standardize(&est.values)
        } else {
            let m = est.mean_value();
            est.values.iter().map(|x| x - m).collect()
        };
        let g = gaussian_perturbations(theta.len(), cfg.queries, seed, 0);
        es_hvp_from_values(&g, &values, v, cfg.adapt_sigma)
    }

    /// Mean pre- and post-adaptation return on a rotating window of 10 held-out tasks.
    fn test_returns(
        &self,
        theta: &[f32],
        iteration: usize,
        norm: &ObsNorm,
        seed: u64,
        c: &Counter,
    ) -> (f64, f64) {
        let n = self.test.len().min(10);
        let tasks: Vec<&Task> = (0..n)
            .map(|j| &self.test[(iteration * n + j) % self.test.len()])
            .collect();
        // Per task: the pre-adaptation episode's seed, the operator's, the adapted episode's.
        let [pre_seeds, adapt_seeds, post_seeds] =
            self.seed_triples(n, |j| substream(seed, "es-test", j));
        let starts = vec![theta; n];
        let pre = self.f_batch(&tasks, &starts, norm, &pre_seeds, c);
        let adapted =
            self.adapt_batch(self.test_operator(), &starts, &tasks, &adapt_seeds, norm, c);
        let adapted: Vec<&[f32]> = adapted.iter().map(Vec::as_slice).collect();
        let post = self.f_batch(&tasks, &adapted, norm, &post_seeds, c);
        let m = n as f64;
        (pre.iter().sum::<f64>() / m, post.iter().sum::<f64>() / m)
    }

    /// The adaptation test and held-out returns measure: the configured operator in zero
    /// order; in first order the ES gradient step its meta-gradient differentiates.
    fn test_operator(&self) -> Operator {
        match self.cfg.order {
            Order::Zero => self.cfg.operator,
            Order::First => Operator::EsGrad,
        }
    }

    /// Three seeds for each of `n` tasks, the `j`-th triple the first three draws of
    /// `rng(j)`, returned as the three lists.
    fn seed_triples(&self, n: usize, rng: impl Fn(u64) -> Rng) -> [Vec<u64>; 3] {
        let mut out = [
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        ];
        for j in 0..n {
            let mut r = rng(j as u64);
            for list in &mut out {
                list.push(r.next_u64());
            }
        }
        out
    }

    /// Restores θ from a flat vector (checkpoints).
    pub fn set_theta(&mut self, theta: &[f32]) {
        self.policy = unflatten(self.policy.clone(), theta);
    }

    /// Held-out evaluation on the first `n` test tasks (fixed evaluation streams): mean
    /// return before and after adaptation, the success rate after adaptation, and for
    /// point envs the paths of the first [`EVAL_PATH_TASKS`] tasks' two episodes.
    fn held_out(&self, n: usize) -> Evaluation {
        let (norm, c) = self.context();
        let theta = self.theta();
        let tasks = TaskDistribution::new(self.env.clone()).held_out(n);
        let env = &self.env;
        let episode = |task: &Task, p: &[f32], seed: u64, path: &mut Vec<[f32; 2]>| {
            let mut st = ObsStats::new(env.spec().obs_dim);
            crate::rollout::episode_flat(env, task, &self.flat, p, &norm, seed, &mut st, |s| {
                path.extend(env.position(s))
            })
        };
        let [pre_seeds, adapt_seeds, post_seeds] =
            self.seed_triples(n, |j| substream(crate::env::HELD_OUT_SEED, "es-eval", j));
        let task_refs: Vec<&Task> = tasks.iter().collect();
        let starts = vec![theta.as_slice(); n];
        let adapted = self.adapt_batch(
            self.test_operator(),
            &starts,
            &task_refs,
            &adapt_seeds,
            &norm,
            &c,
        );
        type Out = (f64, f64, Option<bool>, Vec<[f32; 2]>, Vec<[f32; 2]>);
        let out: Vec<Out> = tasks
            .par_iter()
            .enumerate()
            .map(|(j, task)| {
                let (mut pre_path, mut post_path) = (Vec::new(), Vec::new());
                let (pre, _) = episode(task, &theta, pre_seeds[j], &mut pre_path);
                let (post, ok) = episode(task, &adapted[j], post_seeds[j], &mut post_path);
                (pre, post, ok, pre_path, post_path)
            })
            .collect();
        let m = out.len() as f64;
        let oks: Vec<bool> = out.iter().filter_map(|o| o.2).collect();
        let sr =
            (!oks.is_empty()).then(|| oks.iter().filter(|&&b| b).count() as f64 / oks.len() as f64);
        let mut csv = String::from("phase,task,rollout,t,x,y,goal_x,goal_y\n");
        for (j, (task, o)) in tasks.iter().zip(&out).take(EVAL_PATH_TASKS).enumerate() {
            let (gx, gy) = match self.env.goals(task).first() {
                Some([x, y]) => (x.to_string(), y.to_string()),
                None => (String::new(), String::new()),
            };
            for (phase, path) in [("pre", &o.3), ("post-1", &o.4)] {
                for (t, [x, y]) in path.iter().enumerate() {
                    csv.push_str(&format!("{phase},{j},0,{t},{x},{y},{gx},{gy}\n"));
                }
            }
        }
        let scores = ReturnScores {
            pre_return: out.iter().map(|o| o.0).sum::<f64>() / m,
            post_return: vec![out.iter().map(|o| o.1).sum::<f64>() / m],
            success_rate: sr,
            mean_action: None,
        };
        Evaluation::returns(n, scores, csv)
    }
}

/// Held-out tasks whose pre- and post-adaptation paths [`MetaLearner::evaluate`] records.
pub const EVAL_PATH_TASKS: usize = 6;

impl MetaLearner for EsMaml {
    fn step(&mut self, iteration: usize) -> Result<Metrics> {
        self.iterate(iteration)
    }

    fn parameters_finite(&self) -> bool {
        self.theta().iter().all(|x| x.is_finite())
    }

    fn checkpoint(&self) -> Result<Checkpoint> {
        let mut ck = Checkpoint::default()
            .with_file("policy.bpk", crate::checkpoint::module_bytes(&self.policy)?);
        ck.extra = serde_json::to_value(&self.stats).map_err(|e| Error::Other(e.to_string()))?;
        Ok(ck)
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        self.policy = crate::checkpoint::load_module(self.policy.clone(), ck.file("policy.bpk")?)?;
        self.stats = serde_json::from_value(ck.extra.clone())
            .map_err(|e| Error::Other(format!("checkpoint statistics: {e}")))?;
        Ok(())
    }

    /// Mean return on the held-out tasks before and after the test-time adaptation
    /// operator, the success rate after it, and the paths of the first
    /// [`EVAL_PATH_TASKS`] tasks' two episodes (fixed evaluation streams).
    fn evaluate(&self, tasks: usize) -> Result<Evaluation> {
        Ok(self.held_out(tasks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::es::gaussian_perturbation;
    use crate::es::noise::perturbed;
    use crate::es::{evaluation_rng, lazy_evaluation_rng};
    use crate::rng::stream;

    fn learner(env: &str, cfg: EsMamlConfig) -> EsMaml {
        let device = crate::device::DeviceKind::Flex.device().unwrap().autodiff();
        EsMaml::new(
            cfg,
            crate::env::make(env).unwrap(),
            5,
            &mut stream(5, "policy"),
            &mut stream(5, "tasks"),
            &device,
        )
    }

    /// Batched evaluation (episodes in lanes) returns bit for bit what one evaluation at a
    /// time returns, counts the same observations, and leaves the generators in the
    /// same state.
    #[test]
    fn batched_objectives_equal_one_point_at_a_time() {
        for (env, policy, operator, task_batch) in [
            ("nav2d", PolicyKind::Mlp, Operator::EsGrad, 1),
            ("nav2d", PolicyKind::Linear, Operator::HillClimb, 2),
            ("cartpole-biased", PolicyKind::Linear, Operator::EsGrad, 1),
            ("point-corners-es", PolicyKind::Mlp, Operator::Dpp, 1),
        ] {
            let cfg = EsMamlConfig {
                policy,
                operator,
                task_batch,
                queries: 6,
                hidden: vec![8, 8],
                ..EsMamlConfig::default()
            };
            let es = learner(env, cfg);
            let theta = es.theta();
            // 11 points: a full batch of lanes and a partial one.
            let points: Vec<Vec<f32>> = (0..11u64)
                .map(|i| perturbed(&theta, &gaussian_perturbation(theta.len(), 9, i), 0.3))
                .collect();
            let refs: Vec<&[f32]> = points.iter().map(Vec::as_slice).collect();
            let (norm, c1) = es.context();
            let (_, c2) = es.context();
            let task = es.train[0].clone();
            for big in [false, true] {
                let one_by_one = |c: &Counter| -> (Vec<u64>, Vec<u64>) {
                    let mut rngs: Vec<Rng> = (0..11).map(|i| evaluation_rng(4, i)).collect();
                    let v: Vec<u64> = refs
                        .iter()
                        .zip(&mut rngs)
                        .map(|(p, r)| {
                            if big {
                                AdaptedReturn {
                                    es: &es,
                                    norm: &norm,
                                    c,
                                }
                                .value(p, r)
                            } else {
                                es.task_return(&task, &norm, c).value(p, r)
                            }
                            .to_bits()
                        })
                        .collect();
                    (v, rngs.iter_mut().map(|r| r.next_u64()).collect())
                };
                let batched = |c: &Counter| -> (Vec<u64>, Vec<u64>) {
                    let mut rngs: Vec<LazyRng> =
                        (0..11).map(|i| lazy_evaluation_rng(4, i)).collect();
                    let v = if big {
                        AdaptedReturn {
                            es: &es,
                            norm: &norm,
                            c,
                        }
                        .values(&refs, &mut rngs)
                    } else {
                        es.task_return(&task, &norm, c).values(&refs, &mut rngs)
                    };
                    let v = v.iter().map(|x| x.to_bits()).collect();
                    (v, rngs.iter_mut().map(|r| r.get().next_u64()).collect())
                };
                assert_eq!(
                    batched(&c2),
                    one_by_one(&c1),
                    "{env} {operator:?} big {big}"
                );
                assert_eq!(
                    c1.steps.load(Ordering::Relaxed),
                    c2.steps.load(Ordering::Relaxed)
                );
                assert_eq!(*c1.stats.lock().unwrap(), *c2.stats.lock().unwrap());
            }
        }
    }
}
