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

use crate::dist::Cluster;
use crate::env::{Env, Task, TaskDistribution};
use crate::error::{Error, Result};
pub use crate::es::Order;
use crate::es::{
    dpp_perturbations, es_gradient, es_gradient_lockstep, es_gradient_on, es_hvp_from_values,
    first_order_meta_direction, gaussian_perturbations, hill_climb_lockstep, spread, standardize,
    EsEstimator, FitnessShaping, GradientProblem, Objective,
};
use crate::learner::{Checkpoint, EpisodeScore, Evaluation, MetaLearner, Metrics, Phases};
use crate::nn::flat::FlatPolicy;
use crate::nn::{Activation, DeterministicPolicy, DeterministicPolicyConfig, Init};
use crate::params::{ascend, flatten, unflatten};
use crate::rng::{substream, LazyRng, Rng};
use crate::rollout::{episode_return_flat, episode_returns_lanes, ObsNorm, ObsStats};

mod config;
mod evaluator;

pub use crate::learner::EVAL_PATH_TASKS;
pub use config::{EsMamlConfig, HessianValues, Operator, PolicyKind, QueryCount};
use evaluator::{AdaptedReturn, Counter};

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
    /// The MPI job this process is part of (one process when not distributed).
    cluster: Cluster,
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
            cluster: Cluster::current(),
        }
    }

    /// θ as a flat vector.
    pub fn theta(&self) -> Vec<f32> {
        flatten(&self.policy)
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
        let policy = self.policy.clone();
        self.policy = ascend(
            &mut self.optim,
            self.cfg.meta_lr,
            policy,
            &grad,
            &self.device,
        );
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
        // This rank's evaluations count into `mine`; every rank's are added to `c` below.
        let (_, mine) = self.context();
        let big_f = AdaptedReturn {
            es: self,
            norm,
            c: &mine,
        };
        let est = es_gradient_on(
            &self.cluster,
            &big_f,
            theta,
            self.cfg.sigma,
            self.cfg.perturbations,
            self.cfg.estimator,
            self.cfg.current_evals,
            seed,
            self.cfg.shaping(),
        );
        self.add_every_rank(&mine, c);
        let mean = est.mean_value();
        (est.grad, mean)
    }

    /// ĝ for Algorithm 5: mean over tasks of (I + αĤ) d2 (or d2 without the Hessian).
    fn first_order(
        &self,
        theta: &[f32],
        norm: &ObsNorm,
        seed: u64,
        counter: &Counter,
    ) -> (Vec<f32>, f64) {
        let cfg = &self.cfg;
        let (_, mine) = self.context();
        let c = &mine;
        // Each rank adapts its share of the tasks; the directions are gathered in order.
        let owned = self.cluster.owned(cfg.perturbations);
        let k = cfg.adapt_directions(Operator::EsGrad);
        let local: Vec<(Vec<f32>, f64)> = owned
            .into_par_iter()
            .map(|i| {
                let i = i as u64;
                let mut r = substream(seed, "es-first-order-task", i);
                let task = &self.train[self.task_indices(1, &mut r)[0]];
                let f = self.task_return(task, norm, c);
                let (s1, s2, s3) = (r.next_u64(), r.next_u64(), r.next_u64());
                let d1 = es_gradient(
                    &f,
                    theta,
                    cfg.adapt_sigma,
                    k,
                    cfg.adapt_estimator,
                    s1,
                    cfg.shaping(),
                );
                let adapted = self.gradient_step(theta, &d1.grad);
                let d2 = es_gradient(
                    &f,
                    &adapted,
                    cfg.adapt_sigma,
                    k,
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
        let d = theta.len();
        let flat: Vec<f32> = local.iter().flat_map(|(g, _)| g.iter().copied()).collect();
        let vals: Vec<f64> = local.iter().map(|(_, v)| *v).collect();
        let all_dirs = self.cluster.gather(cfg.perturbations, d, &flat);
        let all_vals = self.cluster.gather(cfg.perturbations, 1, &vals);
        self.add_every_rank(&mine, counter);
        let dirs: Vec<(Vec<f32>, f64)> = all_dirs
            .chunks(d)
            .map(<[f32]>::to_vec)
            .zip(all_vals)
            .collect();
        let n = dirs.len() as f32;
        let mut g = vec![0.0f32; theta.len()];
        for (d, _) in &dirs {
            g.iter_mut().zip(d).for_each(|(a, b)| *a += b / n);
        }
        let value = dirs.iter().map(|(_, v)| v).sum::<f64>() / dirs.len() as f64;
        (g, value)
    }

    /// Ĥ v by Algorithm 4, (1/(Kσ²)) Σ f̃_i (g_i g_iᵀ − I) v. With `hessian_values =
    /// shaped` (default) f̃ are the f-values standardized (or only mean-centred without
    /// reward normalization): a control variate that puts Ĥ in the same units as the
    /// normalized gradients d1, d2 (the Jacobian of θ + α d1 is I + α ∇d1 ≈ I + α H/std f);
    /// with raw returns of size ~10² the raw estimate's variance (~f²/σ⁴) swamps the step.
    /// `raw` uses the returns themselves, as the paper's Algorithm 4 is written; `scaled`
    /// divides them by their spread without centring them (A.7.1's reward normalization).
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
        let values = match cfg.hessian_values {
            HessianValues::Raw => est.values.clone(),
            HessianValues::Scaled => {
                let s = spread(&est.values);
                let scale = if s > 0.0 { 1.0 / s } else { 0.0 };
                est.values.iter().map(|x| x * scale).collect()
            }
            HessianValues::Shaped if cfg.normalize_rewards => standardize(&est.values),
            HessianValues::Shaped => {
                let m = est.mean_value();
                est.values.iter().map(|x| x - m).collect()
            }
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

    /// Restores θ from a flat vector (checkpoints).
    pub fn set_theta(&mut self, theta: &[f32]) {
        self.policy = unflatten(self.policy.clone(), theta);
    }
}

impl MetaLearner for EsMaml {
    fn step(&mut self, iteration: usize, _phases: &mut Phases) -> Result<Metrics> {
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
mod tests;
