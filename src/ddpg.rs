//! Deep deterministic policy gradient (Lillicrap et al. 2015, Algorithm 1): a replay
//! buffer, the critic's TD regression, the deterministic policy gradient through the
//! critic, and soft target updates. The ES + DDPG meta-learner
//! ([`crate::algo::es_ddpg`]) adapts each task with a few of these updates; the pieces are
//! plain functions so that each is tested against its closed form (`tests/ddpg.rs`).
//!
//! ```text
//! one update on a batch (s, a, r, s', d):
//!   y      = r + γ (1 − d) Q_φ'(s', μ_θ'(s'))          TD target (targets θ', φ' fixed)
//!   L_Q(φ) = mean (Q_φ(s, a) − y)²                      critic step on ∇_φ L_Q
//!   L_μ(θ) = − mean Q_φ(s, μ_θ(s))                      actor step on ∇_θ L_μ (the DPG, eq. 3)
//!   θ' ← τ θ + (1 − τ) θ',   φ' ← τ φ + (1 − τ) φ'     soft target update
//! ```
//!
//! `d` is 1 only where the episode *terminated*; a truncated episode's last transition
//! bootstraps like any other. The critic is updated first and the actor then ascends the
//! updated critic (the order of Spinning Up's DDPG; Lillicrap's algorithm does not fix it).

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nn::critic::Critic;
use crate::nn::{tensor2, to_vec, DeterministicPolicy};
use crate::params::{flatten, unflatten};
use crate::rng::Rng;

/// A first-in-first-out store of transitions `(s, a, r, s', terminated)`, sampled
/// uniformly with replacement.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayBuffer {
    obs_dim: usize,
    act_dim: usize,
    capacity: usize,
    /// Index where the next transition is written (wraps at `capacity`).
    next: usize,
    len: usize,
    obs: Vec<f32>,
    act: Vec<f32>,
    rew: Vec<f32>,
    next_obs: Vec<f32>,
    done: Vec<f32>,
}

/// Transitions in row-major arrays: `obs`, `next_obs` `[n, obs_dim]`, `act` `[n, act_dim]`,
/// `rew`, `done` `[n]` (`done` is 1.0 for a terminal transition).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// Number of transitions.
    pub n: usize,
    /// Observations s.
    pub obs: Vec<f32>,
    /// Actions a.
    pub act: Vec<f32>,
    /// Rewards r.
    pub rew: Vec<f32>,
    /// Next observations s'.
    pub next_obs: Vec<f32>,
    /// 1.0 where the episode terminated at s' (no bootstrap), else 0.0.
    pub done: Vec<f32>,
}

impl ReplayBuffer {
    /// An empty buffer holding at most `capacity` transitions (at least one).
    pub fn new(capacity: usize, obs_dim: usize, act_dim: usize) -> Self {
        assert!(
            capacity > 0,
            "a replay buffer holds at least one transition"
        );
        Self {
            obs_dim,
            act_dim,
            capacity,
            next: 0,
            len: 0,
            obs: vec![0.0; capacity * obs_dim],
            act: vec![0.0; capacity * act_dim],
            rew: vec![0.0; capacity],
            next_obs: vec![0.0; capacity * obs_dim],
            done: vec![0.0; capacity],
        }
    }

    /// Transitions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most transitions it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Stores one transition; when full, it replaces the oldest.
    pub fn push(&mut self, obs: &[f32], act: &[f32], rew: f32, next_obs: &[f32], terminated: bool) {
        let (od, ad, i) = (self.obs_dim, self.act_dim, self.next);
        self.obs[i * od..(i + 1) * od].copy_from_slice(obs);
        self.act[i * ad..(i + 1) * ad].copy_from_slice(act);
        self.next_obs[i * od..(i + 1) * od].copy_from_slice(next_obs);
        self.rew[i] = rew;
        self.done[i] = if terminated { 1.0 } else { 0.0 };
        self.next = (i + 1) % self.capacity;
        self.len = (self.len + 1).min(self.capacity);
    }

    /// The transitions at storage slots `idx`, in that order.
    pub fn gather(&self, idx: &[usize]) -> Batch {
        let (od, ad) = (self.obs_dim, self.act_dim);
        let mut b = Batch {
            n: idx.len(),
            ..Batch::default()
        };
        for &i in idx {
            assert!(i < self.len, "slot {i} is empty (len {})", self.len);
            b.obs.extend_from_slice(&self.obs[i * od..(i + 1) * od]);
            b.act.extend_from_slice(&self.act[i * ad..(i + 1) * ad]);
            b.next_obs
                .extend_from_slice(&self.next_obs[i * od..(i + 1) * od]);
            b.rew.push(self.rew[i]);
            b.done.push(self.done[i]);
        }
        b
    }

    /// `n` transitions drawn uniformly with replacement (each slot with probability
    /// 1/len per draw), from `rng` only.
    pub fn sample(&self, n: usize, rng: &mut Rng) -> Batch {
        assert!(!self.is_empty(), "cannot sample an empty replay buffer");
        let idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..self.len)).collect();
        self.gather(&idx)
    }

    /// Every transition held, in storage order.
    pub fn all(&self) -> Batch {
        self.gather(&(0..self.len).collect::<Vec<_>>())
    }
}

/// A [`Batch`] as tensors on one device.
#[derive(Clone, Debug)]
pub struct BatchTensors {
    /// `[n, obs_dim]`.
    pub obs: Tensor<2>,
    /// `[n, act_dim]`.
    pub act: Tensor<2>,
    /// `[n]`.
    pub rew: Tensor<1>,
    /// `[n, obs_dim]`.
    pub next_obs: Tensor<2>,
    /// `[n]`.
    pub done: Tensor<1>,
}

impl Batch {
    /// The batch on `device`.
    pub fn tensors(&self, device: &Device) -> BatchTensors {
        let od = self.obs.len() / self.n.max(1);
        let ad = self.act.len() / self.n.max(1);
        let t1 = |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [self.n]), device);
        BatchTensors {
            obs: tensor2(self.obs.clone(), self.n, od, device),
            act: tensor2(self.act.clone(), self.n, ad, device),
            rew: t1(&self.rew),
            next_obs: tensor2(self.next_obs.clone(), self.n, od, device),
            done: t1(&self.done),
        }
    }
}

/// The TD targets `y = r + γ (1 − d) q'` of a batch, from the target networks' values
/// `q' = Q_φ'(s', μ_θ'(s'))`.
pub fn td_targets(rew: Tensor<1>, done: Tensor<1>, next_q: Tensor<1>, gamma: f32) -> Tensor<1> {
    rew + done.neg().add_scalar(1.0) * next_q.mul_scalar(gamma)
}

/// The critic's loss `mean (Q_φ(s, a) − y)²` against targets from the target networks
/// (no gradient flows into them).
pub fn critic_loss(
    critic: &Critic,
    target_actor: &DeterministicPolicy,
    target_critic: &Critic,
    b: &BatchTensors,
    gamma: f32,
) -> Tensor<1> {
    let next_a = target_actor.forward(b.next_obs.clone()).detach();
    let next_q = target_critic.forward(b.next_obs.clone(), next_a).detach();
    let y = td_targets(b.rew.clone(), b.done.clone(), next_q, gamma);
    (critic.forward(b.obs.clone(), b.act.clone()) - y)
        .powi_scalar(2)
        .mean()
}

/// The actor's loss `−mean Q_φ(s, μ_θ(s))`; its gradient in θ is the deterministic
/// policy gradient `−mean ∇_θ μ_θ(s) ∇_a Q_φ(s, a)|_{a = μ_θ(s)}` (paper eq. 3).
pub fn actor_loss(actor: &DeterministicPolicy, critic: &Critic, obs: Tensor<2>) -> Tensor<1> {
    critic.forward(obs.clone(), actor.forward(obs)).mean().neg()
}

/// `τ · online + (1 − τ) · target`, coordinate by coordinate (flat parameter vectors).
pub fn soft_update(target: &[f32], online: &[f32], tau: f32) -> Vec<f32> {
    assert_eq!(
        target.len(),
        online.len(),
        "target and online differ in size"
    );
    target
        .iter()
        .zip(online)
        .map(|(t, o)| tau * o + (1.0 - tau) * t)
        .collect()
}

/// The optimizer of the adaptation's actor and critic steps (fresh for each adaptation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Optimizer {
    /// Plain gradient descent.
    Sgd,
    /// Adam with Burn's defaults (β₁ 0.9, β₂ 0.999, ε 1e-5).
    Adam,
}

impl Optimizer {
    /// A fresh optimizer of this kind.
    pub fn init(self) -> ModuleOptimizer {
        match self {
            Optimizer::Sgd => SgdConfig::new().init(),
            Optimizer::Adam => AdamConfig::new().init(),
        }
    }
}

/// Hyperparameters of a DDPG adaptation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DdpgConfig {
    /// Gradient updates (each: one critic step, one actor step, one soft target update).
    pub updates: usize,
    /// Transitions per update, drawn uniformly with replacement; absent: every
    /// transition in the buffer, in order (a full-batch step).
    pub batch_size: Option<usize>,
    /// Discount γ.
    pub gamma: f32,
    /// Soft target update rate τ.
    pub tau: f32,
    /// Actor step size.
    pub actor_lr: f64,
    /// Critic step size.
    pub critic_lr: f64,
    /// Optimizer of both steps.
    pub optimizer: Optimizer,
}

impl Default for DdpgConfig {
    fn default() -> Self {
        Self {
            updates: 1,
            batch_size: None,
            gamma: 0.99,
            tau: 0.01,
            actor_lr: 1e-3,
            critic_lr: 1e-3,
            optimizer: Optimizer::Adam,
        }
    }
}

impl DdpgConfig {
    /// Checks every field; `prefix` names the table (`"ddpg"`).
    pub fn validate(&self, prefix: &str) -> Result<()> {
        if self.updates == 0 {
            return Err(Error::invalid(format!("{prefix}.updates"), 0, "≥ 1"));
        }
        if self.batch_size == Some(0) {
            return Err(Error::invalid(
                format!("{prefix}.batch_size"),
                0,
                "≥ 1 (or absent: the whole buffer)",
            ));
        }
        if !(self.gamma.is_finite() && (0.0..=1.0).contains(&self.gamma)) {
            return Err(Error::invalid(
                format!("{prefix}.gamma"),
                self.gamma,
                "0..=1",
            ));
        }
        if !(self.tau.is_finite() && (0.0..=1.0).contains(&self.tau)) {
            return Err(Error::invalid(format!("{prefix}.tau"), self.tau, "0..=1"));
        }
        for (f, v) in [("actor_lr", self.actor_lr), ("critic_lr", self.critic_lr)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(format!("{prefix}.{f}"), v, "≥ 0"));
            }
        }
        Ok(())
    }
}

/// Losses of the last update of an adaptation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Losses {
    /// Critic TD loss before its step.
    pub critic: f64,
    /// Actor loss `−mean Q` before its step.
    pub actor: f64,
}

/// A DDPG agent: actor, critic, their target copies and optimizers, on an autodiff
/// device.
pub struct Ddpg {
    /// μ_θ.
    pub actor: DeterministicPolicy,
    /// Q_φ.
    pub critic: Critic,
    /// μ_θ'.
    pub target_actor: DeterministicPolicy,
    /// Q_φ'.
    pub target_critic: Critic,
    actor_optim: ModuleOptimizer,
    critic_optim: ModuleOptimizer,
    cfg: DdpgConfig,
}

impl Ddpg {
    /// An agent starting from `actor` and `critic`, with targets equal to them and fresh
    /// optimizers.
    pub fn new(actor: DeterministicPolicy, critic: Critic, cfg: DdpgConfig) -> Self {
        Self {
            target_actor: actor.clone(),
            target_critic: critic.clone(),
            actor_optim: cfg.optimizer.init(),
            critic_optim: cfg.optimizer.init(),
            actor,
            critic,
            cfg,
        }
    }

    /// One update on `batch` (critic step, actor step against the updated critic, soft
    /// target update); returns the losses before the steps.
    pub fn update(&mut self, batch: &BatchTensors) -> Losses {
        let lc = critic_loss(
            &self.critic,
            &self.target_actor,
            &self.target_critic,
            batch,
            self.cfg.gamma,
        );
        let critic_value = to_vec(lc.clone())[0] as f64;
        let g = GradientsParams::from_grads(lc.backward(), &self.critic);
        self.critic = self
            .critic_optim
            .step(self.cfg.critic_lr, self.critic.clone(), g);
        let la = actor_loss(&self.actor, &self.critic, batch.obs.clone());
        let actor_value = to_vec(la.clone())[0] as f64;
        let g = GradientsParams::from_grads(la.backward(), &self.actor);
        self.actor = self
            .actor_optim
            .step(self.cfg.actor_lr, self.actor.clone(), g);
        let tau = self.cfg.tau;
        let ta = soft_update(&flatten(&self.target_actor), &flatten(&self.actor), tau);
        self.target_actor = unflatten(self.target_actor.clone(), &ta);
        let tc = soft_update(&flatten(&self.target_critic), &flatten(&self.critic), tau);
        self.target_critic = unflatten(self.target_critic.clone(), &tc);
        Losses {
            critic: critic_value,
            actor: actor_value,
        }
    }

    /// [`DdpgConfig::updates`] updates on batches from `buffer` (minibatches drawn with
    /// `rng`, or the whole buffer); returns the last update's losses.
    pub fn adapt(&mut self, buffer: &ReplayBuffer, rng: &mut Rng, device: &Device) -> Losses {
        let whole = self
            .cfg
            .batch_size
            .is_none()
            .then(|| buffer.all().tensors(device));
        let mut last = Losses::default();
        for _ in 0..self.cfg.updates {
            last = match (&whole, self.cfg.batch_size) {
                (Some(b), _) => self.update(b),
                (None, Some(n)) => self.update(&buffer.sample(n, rng).tensors(device)),
                (None, None) => unreachable!("the whole buffer is used when no size is set"),
            };
        }
        last
    }
}
