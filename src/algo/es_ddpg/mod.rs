//! ES + DDPG: meta-RL with a distribution of exploration parameters learned by evolution
//! strategies and per-task adaptation by deterministic policy gradients.
//!
//! Reference: Shen, Yang, Yuan, Liu, "Meta Reinforcement Learning with Distribution of
//! Exploration Parameters Learned by Evolution Strategies" — Algorithm 1, eqs. 6–10.
//!
//! ```text
//! initialize P_actor = N(μ_a, σ_a²), P_critic = N(μ_c, σ_c²)
//! while not done:
//!   sample tasks T_i, i = 1..M
//!   for each worker i (in parallel):
//!     θ_i1 … θ_iK ~ P_actor,  φ_i ~ P_critic
//!     roll out each θ_ij once on T_i            → replay buffer B_i   (exploration)
//!     θ̄_i ← mean_j θ_ij                         (distributed N(μ_a, σ_a²/K))
//!     (θ̄_i', φ_i') ← DDPG(θ̄_i, φ_i, B_i)       (`ddpg.updates` updates)
//!     F_actor,i  = return of one episode of θ̄_i' on T_i
//!     F_critic,i = − mean_t (Q_φ_i'(s_t, a_t) − G_t)²  on that episode
//!   update (μ_a, σ_a) by eq. 10 with F_actor, (μ_c, σ_c) by eq. 8–9 with F_critic
//! ```
//!
//! The paper scores the adapted critic by "the negative of the squared error between the
//! adapted critic and the test set"; our test set is the adapted actor's own episode,
//! which none of the buffer's transitions come from, and the critic's target there is the
//! discounted return-to-go G_t = Σ_{k≥t} γ^{k−t} r_k: the Q value of the adapted actor
//! on its own trajectory (exact for deterministic dynamics, truncated at the horizon).
//!
//! `env_steps` counts the training workers' exploration and fitness episodes; the θ̄
//! episode that measures the pre-adaptation return and the held-out test window are
//! diagnostics and not counted.
//!
//! Actors act deterministically (tanh outputs; exploration is the parameter noise of the
//! K draws) on raw observations: the paper mentions no normalization.
//!
//! σ is parameterized by log σ (the optimizer steps log σ along σ ⊙ ∇_σ J), so it stays
//! positive by construction; `learn_sigma = false` keeps it at its initial value. Fitness
//! values are shaped across the M workers ([`FitnessShaping`]) before eq. 10. Every
//! random number of worker i comes from its own sub-stream of the iteration's seed, so
//! results do not depend on the rayon thread count, nor on the number of MPI ranks the
//! workers are shared between ([`crate::dist`]: only each worker's scalars travel; every
//! rank redraws the other workers' parameters from their streams).

use std::sync::Arc;

use burn::optim::ModuleOptimizer;
use burn::prelude::*;
use rand::RngCore;
use rayon::prelude::*;

use crate::checkpoint::{load_module, load_optimizer, module_bytes, optimizer_bytes};
use crate::ddpg::{Ddpg, Losses, ReplayBuffer};
use crate::dist::Cluster;
use crate::env::{Env, Task, TaskDistribution, VecEnv};
use crate::es::distribution::{draw, log_sigma_gradient, search_gradient, Draw};
use crate::es::FitnessShaping;
use crate::learner::{Checkpoint, EpisodeScore, Evaluation, MetaLearner, Metrics, Phases};
use crate::nn::critic::{Critic, CriticConfig};
use crate::nn::flat::{FlatPolicy, Scratch};
use crate::nn::{
    tensor2, to_vec, Activation, DeterministicPolicy, DeterministicPolicyConfig, Init,
};
use crate::params::{ascend, flatten, norm, unflatten};
use crate::rng::{next_seed, stream, substream, Rng};
use crate::Result;

mod config;
mod worker;

use worker::WorkerOut;

pub use config::EsDdpgConfig;

pub use crate::learner::EVAL_PATH_TASKS;

/// The ES + DDPG learner: four parameter groups (the means and log standard deviations
/// of the actor and critic distributions), each a Burn module of the network's shape with
/// its own optimizer.
pub struct EsDdpg {
    /// Hyperparameters.
    pub cfg: EsDdpgConfig,
    /// Task family.
    pub env: Arc<dyn Env>,
    /// μ_a: the actor distribution's mean.
    pub actor_mu: DeterministicPolicy,
    /// log σ_a, one entry per actor parameter.
    pub actor_log_sigma: DeterministicPolicy,
    /// μ_c: the critic distribution's mean.
    pub critic_mu: Critic,
    /// log σ_c, one entry per critic parameter.
    pub critic_log_sigma: Critic,
    /// Optimizers of μ_a, log σ_a, μ_c, log σ_c.
    optims: [ModuleOptimizer; 4],
    flat: FlatPolicy,
    test: Vec<Task>,
    seed: u64,
    device: Device,
    /// The MPI job this process is part of (one process when not distributed).
    cluster: Cluster,
}

/// The four distribution parameters as flat vectors, σ exponentiated.
struct Dists {
    actor_mu: Vec<f32>,
    actor_sigma: Vec<f32>,
    critic_mu: Vec<f32>,
    critic_sigma: Vec<f32>,
}

impl EsDdpg {
    /// A learner with μ_a and μ_c drawn from `init_rng` (Xavier weights, zero biases).
    pub fn new(
        cfg: EsDdpgConfig,
        env: Arc<dyn Env>,
        seed: u64,
        init_rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let s = env.spec().clone();
        let actor_cfg = DeterministicPolicyConfig {
            hidden: cfg.hidden.clone(),
            activation: Activation::Relu,
            tanh_output: true,
            init: Init::XavierUniform,
        };
        let critic_cfg = CriticConfig {
            hidden1: cfg.hidden[0],
            hidden2: cfg.hidden[1],
            ..CriticConfig::default()
        };
        let actor_mu = actor_cfg.init(s.obs_dim, s.act_dim, init_rng, device);
        let critic_mu = critic_cfg.init(s.obs_dim, s.act_dim, init_rng, device);
        // Fresh modules (their own parameter ids) holding log σ everywhere.
        let constant = |n: usize, sigma: f32| vec![sigma.ln(); n];
        let zero_rng = &mut stream(0, "log-sigma-shape");
        let actor_log_sigma = actor_cfg.init(s.obs_dim, s.act_dim, zero_rng, device);
        let actor_log_sigma = unflatten(
            actor_log_sigma,
            &constant(actor_mu.num_params(), cfg.actor_sigma),
        );
        let critic_log_sigma = critic_cfg.init(s.obs_dim, s.act_dim, zero_rng, device);
        let critic_log_sigma = unflatten(
            critic_log_sigma,
            &constant(critic_mu.num_params(), cfg.critic_sigma),
        );
        let o = cfg.meta_optimizer;
        Self {
            flat: FlatPolicy::of(&actor_mu),
            test: TaskDistribution::new(env.clone()).held_out(cfg.test_tasks),
            optims: [o.init(), o.init(), o.init(), o.init()],
            actor_mu,
            actor_log_sigma,
            critic_mu,
            critic_log_sigma,
            cfg,
            env,
            seed,
            device: device.clone(),
            cluster: Cluster::current(),
        }
    }

    fn dists(&self) -> Dists {
        let exp = |v: Vec<f32>| v.into_iter().map(f32::exp).collect();
        Dists {
            actor_mu: flatten(&self.actor_mu),
            actor_sigma: exp(flatten(&self.actor_log_sigma)),
            critic_mu: flatten(&self.critic_mu),
            critic_sigma: exp(flatten(&self.critic_log_sigma)),
        }
    }

    /// One meta-iteration of Algorithm 1.
    fn iterate(&mut self, iteration: usize, phases: &mut Phases) -> Result<Metrics> {
        let it_seed = substream(self.seed, "es-ddpg-iteration", iteration as u64).next_u64();
        let d = self.dists();
        phases.enter("workers");
        let dist = TaskDistribution::new(self.env.clone());
        let m = self.cfg.workers;
        let n_test = self.cfg.test_workers.min(self.test.len());
        // Worker i's stream: its tasks, then its draws, then its episodes and minibatches.
        let train_stream = |i: usize| {
            let mut r = substream(it_seed, "es-ddpg-worker", i as u64);
            let tasks = dist.sample(self.cfg.task_batch, &mut r);
            (tasks, r)
        };
        let test_stream = |j: usize| {
            let task = self.test[(iteration * n_test + j) % self.test.len()].clone();
            (vec![task], substream(it_seed, "es-ddpg-test", j as u64))
        };
        // This rank's workers (all of them in a single process), then everyone's results.
        let c = self.cluster;
        let run = |(tasks, mut r): (Vec<Task>, Rng)| self.worker(&d, &tasks, &mut r, false);
        let (train, test): (Vec<WorkerOut>, Vec<WorkerOut>) = rayon::join(
            || {
                c.owned(m)
                    .into_par_iter()
                    .map(|i| run(train_stream(i)))
                    .collect()
            },
            || {
                c.owned(n_test)
                    .into_par_iter()
                    .map(|j| run(test_stream(j)))
                    .collect()
            },
        );
        let train = self.gather_workers(m, train, |i| self.draws(&d, train_stream(i).1));
        // The test window's draws are not needed (no update uses them).
        let test = self.gather_workers(n_test, test, |_| Default::default());
        phases.enter("update");
        let grad_mu = self.update(&d, &train);
        let mean = |f: &dyn Fn(&WorkerOut) -> f64, ws: &[WorkerOut]| {
            ws.iter().map(f).sum::<f64>() / ws.len() as f64
        };
        let after = self.dists();
        let (sa, sc) = (spread(&after.actor_sigma), spread(&after.critic_sigma));
        let steps: u64 = train.iter().map(|w| w.steps).sum();
        Ok(Metrics::new()
            .with("pre_return", mean(&|w| w.pre, &test))
            .with("post_return_1", mean(&|w| w.post, &test))
            .with("train_explore_return", mean(&|w| w.explore, &train))
            .with("train_pre_return", mean(&|w| w.pre, &train))
            .with("train_post_return", mean(&|w| w.post, &train))
            .with("critic_error", mean(&|w| w.critic_error, &train))
            .with("critic_loss", mean(&|w| w.losses.critic, &train))
            .with("actor_loss", mean(&|w| w.losses.actor, &train))
            .with("actor_sigma_mean", sa.0)
            .with("actor_sigma_min", sa.1 as f64)
            .with("actor_sigma_max", sa.2 as f64)
            .with("critic_sigma_mean", sc.0)
            .with("grad_norm", grad_mu)
            .with("env_steps", steps as f64))
    }

    /// Eq. 10 for the actor (fitness: the adapted return), eq. 8–9 for the critic
    /// (fitness: minus its squared error), one optimizer step per group; returns the norm
    /// of the μ_a gradient.
    fn update(&mut self, d: &Dists, ws: &[WorkerOut]) -> f64 {
        let shaping: FitnessShaping = self.cfg.shaping;
        let fa = shaping.apply(&ws.iter().map(|w| w.post).collect::<Vec<_>>());
        let fc = shaping.apply(&ws.iter().map(|w| -w.critic_error).collect::<Vec<_>>());
        let actor: Vec<&Draw> = ws.iter().map(|w| &w.actor).collect();
        let critic: Vec<&Draw> = ws.iter().map(|w| &w.critic).collect();
        let (gma, gsa) = search_gradient(&d.actor_sigma, &actor, &fa);
        let (gmc, gsc) = search_gradient(&d.critic_sigma, &critic, &fc);
        let c = &self.cfg;
        let dev = &self.device;
        let [oam, oas, ocm, ocs] = &mut self.optims;
        self.actor_mu = ascend(oam, c.actor_mu_lr, self.actor_mu.clone(), &gma, dev);
        self.critic_mu = ascend(ocm, c.critic_mu_lr, self.critic_mu.clone(), &gmc, dev);
        if c.learn_sigma {
            let gla = log_sigma_gradient(&d.actor_sigma, &gsa);
            let glc = log_sigma_gradient(&d.critic_sigma, &gsc);
            self.actor_log_sigma = ascend(
                oas,
                c.actor_sigma_lr,
                self.actor_log_sigma.clone(),
                &gla,
                dev,
            );
            self.critic_log_sigma = ascend(
                ocs,
                c.critic_sigma_lr,
                self.critic_log_sigma.clone(),
                &glc,
                dev,
            );
        }
        norm(&gma)
    }

    /// μ_a as a flat vector.
    pub fn actor_mean(&self) -> Vec<f32> {
        flatten(&self.actor_mu)
    }
}

impl MetaLearner for EsDdpg {
    fn step(&mut self, iteration: usize, phases: &mut Phases) -> Result<Metrics> {
        self.iterate(iteration, phases)
    }

    fn parameters_finite(&self) -> bool {
        let d = self.dists();
        [d.actor_mu, d.actor_sigma, d.critic_mu, d.critic_sigma]
            .iter()
            .all(|v| v.iter().all(|x| x.is_finite()))
    }

    fn checkpoint(&self) -> Result<Checkpoint> {
        let [a, b, c, e] = &self.optims;
        Ok(Checkpoint::default()
            .with_file("actor_mu.bpk", module_bytes(&self.actor_mu)?)
            .with_file("actor_log_sigma.bpk", module_bytes(&self.actor_log_sigma)?)
            .with_file("critic_mu.bpk", module_bytes(&self.critic_mu)?)
            .with_file(
                "critic_log_sigma.bpk",
                module_bytes(&self.critic_log_sigma)?,
            )
            .with_file("optim_actor_mu.bpk", optimizer_bytes(a)?)
            .with_file("optim_actor_log_sigma.bpk", optimizer_bytes(b)?)
            .with_file("optim_critic_mu.bpk", optimizer_bytes(c)?)
            .with_file("optim_critic_log_sigma.bpk", optimizer_bytes(e)?))
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        self.actor_mu = load_module(self.actor_mu.clone(), ck.file("actor_mu.bpk")?)?;
        self.actor_log_sigma = load_module(
            self.actor_log_sigma.clone(),
            ck.file("actor_log_sigma.bpk")?,
        )?;
        self.critic_mu = load_module(self.critic_mu.clone(), ck.file("critic_mu.bpk")?)?;
        self.critic_log_sigma = load_module(
            self.critic_log_sigma.clone(),
            ck.file("critic_log_sigma.bpk")?,
        )?;
        let o = self.cfg.meta_optimizer;
        let names = [
            "optim_actor_mu.bpk",
            "optim_actor_log_sigma.bpk",
            "optim_critic_mu.bpk",
            "optim_critic_log_sigma.bpk",
        ];
        for (slot, name) in self.optims.iter_mut().zip(names) {
            *slot = load_optimizer(o.init(), ck.file(name)?)?;
        }
        Ok(())
    }

    /// Mean return on the held-out tasks of θ̄ (the mean of K draws) before and of θ̄'
    /// after the DDPG adaptation, the success rate after it, and the paths of the first
    /// [`EVAL_PATH_TASKS`] tasks' two episodes (fixed evaluation streams).
    fn evaluate(&self, tasks: usize) -> Result<Evaluation> {
        Ok(self.held_out(tasks))
    }
}

/// Mean, minimum and maximum of a vector (the σ statistics of `progress.csv`).
fn spread(v: &[f32]) -> (f64, f32, f32) {
    let (lo, hi) = v
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
    (mean, lo, hi)
}
