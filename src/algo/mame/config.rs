//! MAME's settings: the inner loss, the self-supervision target, the φ-gradient
//! estimator and the hyperparameters.

use super::*;

/// How z is adapted to a task from the exploration samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InnerLoss {
    /// Regression of M_{β,z}(s, a) on the self-supervision target (the method).
    SelfSupervised,
    /// Importance-weighted policy gradient of π_{θ,z} on the exploration samples
    /// (ablation "VPG inner loop").
    Vpg,
}

/// The self-supervision target M̄_t.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// Discounted return from step t (the method).
    Return,
    /// Reward at step t (ablation "reward self-supervision").
    Reward,
}

/// The exploration policy's gradient estimator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhiGradient {
    /// Eqs. 2–5: per-step rewards r^μ_t, linear baseline, GAE(λ) (the method).
    VarianceReduced,
    /// The exact gradient through the magic boxes (ablation "vanilla DiCE").
    Dice,
    /// Policy gradient of μ_φ with the task's post-update return (ablation "E-MAML").
    Emaml,
}

/// MAME's settings. Defaults: the paper's optimizer (§5: Adam 7e-4, 4e-5 for z), ProMP's
/// sampling and policy sizes; α, the latent size and λ are ours (the paper gives none).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MameConfig {
    /// Tasks per meta-batch. Default 40 (ProMP's); the paper's, from the MAML repository:
    /// 20 (`experiments/meta-explore/mame-paper.toml`).
    pub tasks: usize,
    /// Rollouts per task, for exploration and for exploitation (20, also the paper's).
    pub rollouts: usize,
    /// Inner step size α on z.
    pub inner_lr: f64,
    /// Size of the latent code z.
    pub latent_dim: usize,
    /// Inner loss.
    pub inner_loss: InnerLoss,
    /// Self-supervision target.
    pub target: Target,
    /// Standardize the targets over the whole meta-batch (one mean and standard deviation
    /// for all tasks, so differences between tasks survive), making α independent of
    /// the reward scale.
    pub normalize_target: bool,
    /// Estimator of ∇_φ.
    pub phi_gradient: PhiGradient,
    /// GAE λ of the exploration advantages A^μ (0: the paper's eq. 4; 1: return minus
    /// baseline, unbiased).
    pub explore_lambda: f64,
    /// Subtract the linear feature baseline from the exploration returns.
    pub explore_baseline: bool,
    /// Discount γ of returns and targets.
    pub gamma: f64,
    /// Normalize the exploitation (and VPG-inner) advantages per task.
    pub normalize_adv: bool,
    /// Adam step size of φ, θ and β.
    pub lr: f64,
    /// Adam step size of z.
    pub latent_lr: f64,
    /// Exploration policy μ_φ(s). Default ProMP's (64, 64) tanh; the paper's (all three
    /// networks): Finn et al.'s policy, two hidden layers of 100 ReLU (`mame-paper.toml`).
    pub explore: GaussianPolicyConfig,
    /// Exploitation policy π_{θ,z}(s) (its input is s ⊕ z); default and paper as `explore`.
    pub exploit: GaussianPolicyConfig,
    /// Hidden sizes of M_{β,z}(s, a) (input s ⊕ a ⊕ z, one output). Default (64, 64);
    /// the paper's (100, 100).
    pub ssl_hidden: Vec<usize>,
    /// Hidden nonlinearity of M_{β,z}. Default tanh; the paper's ReLU.
    pub ssl_activation: Activation,
    /// Task chunks whose gradients are computed in parallel and summed (fixed, so results
    /// do not depend on the thread count).
    pub parallel_chunks: usize,
    /// Adam steps per batch of samples (the paper: 1; ProMP-style reuse with more).
    pub outer_steps: usize,
}

impl Default for MameConfig {
    fn default() -> Self {
        Self {
            tasks: 40,
            rollouts: 20,
            inner_lr: 1.0,
            latent_dim: 8,
            inner_loss: InnerLoss::SelfSupervised,
            target: Target::Return,
            normalize_target: true,
            phi_gradient: PhiGradient::VarianceReduced,
            explore_lambda: 0.0,
            explore_baseline: true,
            gamma: 0.99,
            normalize_adv: true,
            lr: 7e-4,
            latent_lr: 4e-5,
            explore: GaussianPolicyConfig::default(),
            exploit: GaussianPolicyConfig::default(),
            ssl_hidden: vec![64, 64],
            ssl_activation: Activation::Tanh,
            parallel_chunks: 2,
            outer_steps: 1,
        }
    }
}

impl MameConfig {
    /// Validates every field; errors name it.
    pub fn validate(&self) -> Result<()> {
        for (f, v) in [
            ("mame.tasks", self.tasks),
            ("mame.latent_dim", self.latent_dim),
            ("mame.parallel_chunks", self.parallel_chunks),
            ("mame.outer_steps", self.outer_steps),
        ] {
            if v == 0 {
                return Err(Error::invalid(f, v, "≥ 1"));
            }
        }
        if self.rollouts < 2 {
            return Err(Error::invalid("mame.rollouts", self.rollouts, "≥ 2"));
        }
        for (f, v) in [
            ("mame.inner_lr", self.inner_lr),
            ("mame.lr", self.lr),
            ("mame.latent_lr", self.latent_lr),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(f, v, "a finite number ≥ 0"));
            }
        }
        for (f, v) in [
            ("mame.explore_lambda", self.explore_lambda),
            ("mame.gamma", self.gamma),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::invalid(f, v, "[0, 1]"));
            }
        }
        if self.ssl_hidden.contains(&0) {
            return Err(Error::invalid(
                "mame.ssl_hidden",
                format!("{:?}", self.ssl_hidden),
                "sizes ≥ 1",
            ));
        }
        self.explore.validate("mame.explore.")?;
        self.exploit.validate("mame.exploit.")
    }
}
