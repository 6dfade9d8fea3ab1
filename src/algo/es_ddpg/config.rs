//! The ES + DDPG learner's settings: the search distributions, the outer optimizers and
//! the DDPG adaptation.

use serde::{Deserialize, Serialize};

use crate::ddpg::{DdpgConfig, Optimizer};
use crate::error::{Error, Result};
use crate::es::FitnessShaping;

/// ES + DDPG hyperparameters. The paper (Shen et al., "Environments" and
/// "Implementation and Details") fixes the networks (two hidden layers of 100 ReLU,
/// Xavier weights), M ∈ {16, 64} workers, K ∈ {20, 40} draws per worker, plain SGD for
/// the four parameter groups, and 1 or 3 DDPG updates; it gives no step sizes, initial
/// σ, discount or target rate, so those defaults are ours (experiments/es-ddpg).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EsDdpgConfig {
    /// Workers M per meta-iteration (the paper: 16 or 64).
    pub workers: usize,
    /// Actor draws K per worker, one exploration episode each (the paper: 20; 40 on the
    /// ant direction task).
    pub draws: usize,
    /// Tasks each worker adapts on with the same draws; its fitness is the mean over
    /// them (Algorithm 1's "for each task"; 1 = a fresh task per worker).
    pub task_batch: usize,
    /// Hidden widths of the actor (the critic's two layers take the same widths).
    pub hidden: Vec<usize>,
    /// Initial σ of every actor parameter.
    pub actor_sigma: f32,
    /// Initial σ of every critic parameter.
    pub critic_sigma: f32,
    /// Learn σ (the paper's method) or keep it at its initial value (Fig. 2 left).
    pub learn_sigma: bool,
    /// Optimizer of the four groups μ_a, σ_a, μ_c, σ_c (the paper: SGD; it reports that
    /// Adam does not help ES).
    pub meta_optimizer: Optimizer,
    /// Step size of μ_a.
    pub actor_mu_lr: f64,
    /// Step size of log σ_a. At the default (1e-3) σ moves by well under 1% in 200
    /// iterations of 64 workers; 0.05 spreads it over about 0.5–2× its start
    /// (`experiments/es-ddpg/nav2d-sigma-lr.toml`).
    pub actor_sigma_lr: f64,
    /// Step size of μ_c.
    pub critic_mu_lr: f64,
    /// Step size of log σ_c.
    pub critic_sigma_lr: f64,
    /// Transform of the M fitness values before eq. 10 (as ES-MAML's learner).
    pub shaping: FitnessShaping,
    /// Held-out tasks (fixed) from which a rotating window of `test_workers` is adapted
    /// and scored each iteration.
    pub test_tasks: usize,
    /// Held-out tasks adapted and scored per iteration.
    pub test_workers: usize,
    /// The DDPG adaptation of each worker.
    pub ddpg: DdpgConfig,
}

impl Default for EsDdpgConfig {
    fn default() -> Self {
        Self {
            workers: 64,
            draws: 20,
            task_batch: 1,
            hidden: vec![100, 100],
            actor_sigma: 0.02,
            critic_sigma: 0.02,
            learn_sigma: true,
            meta_optimizer: Optimizer::Sgd,
            actor_mu_lr: 1e-4,
            actor_sigma_lr: 0.001,
            critic_mu_lr: 1e-4,
            critic_sigma_lr: 0.001,
            shaping: FitnessShaping::CenteredRanks,
            test_tasks: 50,
            test_workers: 10,
            ddpg: DdpgConfig::default(),
        }
    }
}

impl EsDdpgConfig {
    /// Validates every field.
    pub fn validate(&self) -> Result<()> {
        for (f, v) in [
            ("es_ddpg.workers", self.workers),
            ("es_ddpg.draws", self.draws),
            ("es_ddpg.task_batch", self.task_batch),
            ("es_ddpg.test_tasks", self.test_tasks),
            ("es_ddpg.test_workers", self.test_workers),
        ] {
            if v == 0 {
                return Err(Error::invalid(f, v, "≥ 1"));
            }
        }
        if self.workers < 2 {
            return Err(Error::invalid(
                "es_ddpg.workers",
                self.workers,
                "≥ 2 (fitness shaping compares workers)",
            ));
        }
        if self.hidden.len() != 2 || self.hidden.contains(&0) {
            return Err(Error::invalid(
                "es_ddpg.hidden",
                format!("{:?}", self.hidden),
                "two sizes ≥ 1 (the critic's action joins at the second layer)",
            ));
        }
        for (f, v) in [
            ("es_ddpg.actor_sigma", self.actor_sigma as f64),
            ("es_ddpg.critic_sigma", self.critic_sigma as f64),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(f, v, "> 0"));
            }
        }
        for (f, v) in [
            ("es_ddpg.actor_mu_lr", self.actor_mu_lr),
            ("es_ddpg.actor_sigma_lr", self.actor_sigma_lr),
            ("es_ddpg.critic_mu_lr", self.critic_mu_lr),
            ("es_ddpg.critic_sigma_lr", self.critic_sigma_lr),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(f, v, "≥ 0"));
            }
        }
        self.ddpg.validate("es_ddpg.ddpg")
    }
}
