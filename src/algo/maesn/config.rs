//! MAESN's settings.

use super::*;

/// How the latent step's policy-gradient objective is averaged ([`MaesnConfig::latent_objective`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LatentObjective {
    /// (1/K) Σ_k Σ_t log π(a_t|s_t, z_k) Â_t: per-episode sums, averaged over episodes.
    Episode,
    /// (1/n) Σ_{k,t} log π(a_t|s_t, z_k) Â_t: the mean over all n real steps.
    Sample,
}

/// MAESN's settings (mission-anchors §3.6, with ProMP's sampling sizes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaesnConfig {
    /// Tasks per meta-batch (MAESN: 20).
    pub tasks: usize,
    /// Rollouts per task, before and after the latent step (MAESN: 20 or 50).
    pub rollouts: usize,
    /// Training tasks, each with its own latent distribution (MAESN: 100).
    pub train_tasks: usize,
    /// Latent size (MAESN: 2).
    pub latent_dim: usize,
    /// Initial value of the learned latent step sizes α_μ, α_σ (MAESN: 0.5 or 1).
    pub inner_lr: f64,
    /// The latent step's objective: `episode` (default; MAESN's J = E_τ[Σ_t …], the sum
    /// over an episode's steps averaged over episodes) or `sample` (the mean over every
    /// step, rllab's TRPO surrogate, which makes the step T times smaller; with normalized
    /// advantages and α ≈ 1 it moved μ by ≈ 0.004 per step, against the prior's σ = 1).
    pub latent_objective: LatentObjective,
    /// Weight of KL(N(μ_i, σ_i²) ‖ N(0, I)) (MAESN: 0.1 or 0.5).
    pub kl_weight: f64,
    /// Adam step size of every parameter.
    pub lr: f64,
    /// Discount γ.
    pub gamma: f64,
    /// Normalize advantages per task.
    pub normalize_adv: bool,
    /// The policy (input s ⊕ z; MAESN: (100, 100) ReLU).
    pub policy: GaussianPolicyConfig,
}

impl Default for MaesnConfig {
    fn default() -> Self {
        Self {
            tasks: 20,
            rollouts: 20,
            train_tasks: 100,
            latent_dim: 2,
            inner_lr: 1.0,
            latent_objective: LatentObjective::Episode,
            kl_weight: 0.1,
            lr: 1e-3,
            gamma: 0.99,
            normalize_adv: true,
            policy: GaussianPolicyConfig {
                hidden: vec![100, 100],
                activation: Activation::Relu,
                ..GaussianPolicyConfig::default()
            },
        }
    }
}

impl MaesnConfig {
    /// Validates every field; errors name it.
    pub fn validate(&self) -> Result<()> {
        for (f, v) in [
            ("maesn.tasks", self.tasks),
            ("maesn.train_tasks", self.train_tasks),
            ("maesn.latent_dim", self.latent_dim),
        ] {
            if v == 0 {
                return Err(Error::invalid(f, v, "≥ 1"));
            }
        }
        if self.tasks > self.train_tasks {
            return Err(Error::invalid(
                "maesn.tasks",
                self.tasks,
                format!("≤ maesn.train_tasks = {}", self.train_tasks),
            ));
        }
        if self.rollouts < 2 {
            return Err(Error::invalid("maesn.rollouts", self.rollouts, "≥ 2"));
        }
        for (f, v) in [
            ("maesn.inner_lr", self.inner_lr),
            ("maesn.kl_weight", self.kl_weight),
            ("maesn.lr", self.lr),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(f, v, "a finite number ≥ 0"));
            }
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return Err(Error::invalid("maesn.gamma", self.gamma, "[0, 1]"));
        }
        self.policy.validate("maesn.policy.")
    }
}
