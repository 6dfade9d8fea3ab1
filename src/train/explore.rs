//! The run config of the `meta-explore` binary: MAME (separate exploration policy, latent
//! exploitation policy, self-supervised z-update) or MAESN (latent exploration).

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RunSpec;
use crate::algo::maesn::{Maesn, MaesnConfig};
use crate::algo::mame::{InnerLoss, Mame, MameConfig, PhiGradient, Target};
use crate::env::Registry;
use crate::error::{Error, Result};
use crate::learner::MetaLearner;
use crate::pg::SamplerRngs;
use crate::rng::stream;

/// The meta-exploration method of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Model-agnostic meta-exploration (Gurumurthy et al. 2019).
    Mame,
    /// Latent exploration (Gupta et al. 2018).
    Maesn,
}

/// The ablations of the MAME paper (§5.3), as changes to a [`MameConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Ablation {
    /// The method as published.
    None,
    /// z adapted by an importance-weighted policy gradient instead of self-supervision.
    Vpg,
    /// Self-supervision regresses rewards instead of returns.
    Reward,
    /// φ's gradient by DiCE through the magic boxes.
    Dice,
    /// φ's gradient by E-MAML's post-update return credit.
    Emaml,
}

impl Ablation {
    /// Applies the ablation to `cfg`.
    pub fn apply(self, cfg: &mut MameConfig) {
        match self {
            Ablation::None => {}
            Ablation::Vpg => cfg.inner_loss = InnerLoss::Vpg,
            Ablation::Reward => cfg.target = Target::Reward,
            Ablation::Dice => cfg.phi_gradient = PhiGradient::Dice,
            Ablation::Emaml => cfg.phi_gradient = PhiGradient::Emaml,
        }
    }
}

/// Everything a meta-exploration run needs; written to `config.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExploreRun {
    /// The learner, `"meta-explore"`: the tag by which `metarl eval` recognises the run.
    pub algo: String,
    /// MAME or MAESN.
    pub method: Method,
    /// Environment name.
    pub env: String,
    /// Root seed.
    pub seed: u64,
    /// Meta-iterations.
    pub iterations: usize,
    /// Checkpoint cadence.
    pub checkpoint_every: usize,
    /// Held-out tasks in the final evaluation.
    pub eval_tasks: usize,
    /// MAME's settings (used when `method = "mame"`).
    pub mame: MameConfig,
    /// MAESN's settings (used when `method = "maesn"`).
    pub maesn: MaesnConfig,
}

impl Default for ExploreRun {
    fn default() -> Self {
        Self {
            algo: "meta-explore".into(),
            method: Method::Mame,
            env: "point-corners".into(),
            seed: 1,
            iterations: 100,
            checkpoint_every: 10,
            eval_tasks: 40,
            mame: MameConfig::default(),
            maesn: MaesnConfig::default(),
        }
    }
}

impl ExploreRun {
    /// The method's name as shown in summaries.
    pub fn method_name(&self) -> &'static str {
        match self.method {
            Method::Mame => "mame",
            Method::Maesn => "maesn",
        }
    }
}

impl RunSpec for ExploreRun {
    fn algo(&self) -> &'static str {
        "meta-explore"
    }

    fn env_name(&self) -> &str {
        &self.env
    }

    super::driver::schedule_from_fields!();

    /// Every field once, including the environment name.
    fn validate(&self, registry: &Registry) -> Result<()> {
        if self.algo != "meta-explore" {
            return Err(Error::invalid("algo", &self.algo, "meta-explore"));
        }
        registry.make(&self.env)?;
        self.schedule().validate(1)?;
        self.mame.validate()?;
        self.maesn.validate()
    }

    /// MAME or MAESN with streams `policy`, `tasks`, `env`, `action` (and MAESN's
    /// `train-tasks` and `latent`) of the seed.
    fn build(&self, registry: &Registry, device: &Device) -> Result<Box<dyn MetaLearner>> {
        let envf = registry.make(&self.env)?;
        let rngs = SamplerRngs {
            env: stream(self.seed, "env"),
            act: stream(self.seed, "action"),
        };
        let (init, tasks) = (&mut stream(self.seed, "policy"), stream(self.seed, "tasks"));
        Ok(match self.method {
            Method::Mame => Box::new(Mame::new(
                self.mame.clone(),
                envf,
                init,
                tasks,
                rngs,
                device,
            )),
            Method::Maesn => Box::new(Maesn::new(
                self.maesn.clone(),
                envf,
                init,
                &mut stream(self.seed, "train-tasks"),
                tasks,
                rngs,
                stream(self.seed, "latent"),
                device,
            )),
        })
    }

    fn variant(&self) -> serde_json::Value {
        let variant = match self.method {
            Method::Mame => json!({
                "inner_loss": self.mame.inner_loss,
                "target": self.mame.target,
                "phi_gradient": self.mame.phi_gradient,
            }),
            Method::Maesn => json!({ "kl_weight": self.maesn.kl_weight }),
        };
        json!({ "method": self.method_name(), "variant": variant })
    }
}
