//! What the policy-gradient meta-learners (PG-MAML, ProMP) share: sampling a meta-batch,
//! turning trajectories into per-task tensors with advantages, the differentiable inner
//! adaptation step, and per-task policies for post-update sampling.

mod adapt;
mod batch;
mod evaluate;
mod host;
mod parallel;
mod sampler;

pub use adapt::*;
pub use batch::*;
pub use evaluate::{before_after_evaluation, evaluate, policy_checkpoint, restore_policy};
#[cfg(test)]
pub(crate) use host::testing;
pub use host::{host_path_applies, meta_pg, HostSamples, Outer};
pub use parallel::*;
pub use sampler::*;

use std::sync::Arc;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::env::{Env, Task, TaskDistribution, VecEnv};
use crate::error::{Error, Result};
use crate::estimate::{discounted_returns, fit_per_task, gae, normalize_per_task};
use crate::learner::Phases;
use crate::nn::functional::{log_prob_at, GaussianParams};
use crate::nn::{to_vec, GaussianPolicyConfig};
use crate::objective::{inner_weights, Estimator};
use crate::rng::Rng;
use crate::rollout::{sample, Actor};
use crate::traj::Trajectories;

/// Sampling, inner-step and advantage settings shared by PG-MAML and ProMP; defaults are
/// ProMP's (mission-anchors §3.1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetaPgConfig {
    /// Tasks per meta-batch (ProMP: 40).
    pub tasks: usize,
    /// Rollouts per task and per inner step (ProMP: 20).
    pub rollouts: usize,
    /// Inner step size α. Default 0.1, ProMP's code; the ProMP paper's Table 1 gives 0.01
    /// (0.05 for the RandParams tasks), which did worse on nav2d
    /// (`experiments/promp/nav2d-alpha0.01.toml`: −16.4…−19.3 against −14.6…−15.7).
    pub inner_lr: f64,
    /// Inner adaptation steps, each with fresh samples (ProMP: 1; its point env, D.2: 3).
    pub inner_steps: usize,
    /// Inner-objective estimator.
    pub estimator: Estimator,
    /// Differentiate through the inner step (`true`) or first-order (`false`).
    pub second_order: bool,
    /// Discount γ (0.99).
    pub gamma: f64,
    /// GAE λ (1.0).
    pub gae_lambda: f64,
    /// Normalize advantages per task (true).
    pub normalize_adv: bool,
    /// The Gaussian MLP policy.
    pub policy: GaussianPolicyConfig,
}

impl Default for MetaPgConfig {
    fn default() -> Self {
        Self {
            tasks: 40,
            rollouts: 20,
            inner_lr: 0.1,
            inner_steps: 1,
            estimator: Estimator::Lvc,
            second_order: true,
            gamma: 0.99,
            gae_lambda: 1.0,
            normalize_adv: true,
            policy: GaussianPolicyConfig::default(),
        }
    }
}

impl MetaPgConfig {
    /// The settings [`process`] reads (γ, GAE λ = 1, per-task normalization), for learners
    /// that share PG batch processing but not PG-MAML's inner step.
    pub fn for_advantages(gamma: f64, normalize_adv: bool) -> Self {
        Self {
            gamma,
            gae_lambda: 1.0,
            normalize_adv,
            ..Self::default()
        }
    }

    /// Validates every field; errors name it.
    pub fn validate(&self) -> Result<()> {
        for (f, v) in [
            ("tasks", self.tasks),
            ("rollouts", self.rollouts),
            ("inner_steps", self.inner_steps),
        ] {
            if v == 0 {
                return Err(Error::invalid(f, v, "≥ 1"));
            }
        }
        if self.rollouts < 2 && self.normalize_adv {
            return Err(Error::invalid(
                "rollouts",
                self.rollouts,
                "≥ 2 when normalize_adv is on",
            ));
        }
        if !(self.inner_lr.is_finite() && self.inner_lr >= 0.0) {
            return Err(Error::invalid(
                "inner_lr",
                self.inner_lr,
                "a finite number ≥ 0",
            ));
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return Err(Error::invalid("gamma", self.gamma, "[0, 1]"));
        }
        if !(0.0..=1.0).contains(&self.gae_lambda) {
            return Err(Error::invalid("gae_lambda", self.gae_lambda, "[0, 1]"));
        }
        self.policy.validate("policy.")
    }
}
