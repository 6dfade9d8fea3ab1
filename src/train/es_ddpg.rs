//! The run config of the `es-ddpg` binary.

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RunSpec;
use crate::algo::es_ddpg::{EsDdpg, EsDdpgConfig};
use crate::env::{Registry, WithHorizon};
use crate::error::{Error, Result};
use crate::learner::MetaLearner;
use crate::rng::stream;

/// Everything an ES + DDPG run needs; written to `config.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EsDdpgRun {
    /// The learner, `"es-ddpg"`: the tag by which `metarl eval` recognises the run.
    pub algo: String,
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
    /// Episode length, when not the family's own (the paper: 200 on its MuJoCo tasks,
    /// where the suite's ProMP definitions use 100); absent: the family's.
    pub horizon: Option<usize>,
    /// The algorithm.
    pub es_ddpg: EsDdpgConfig,
}

impl Default for EsDdpgRun {
    fn default() -> Self {
        Self {
            algo: "es-ddpg".into(),
            env: "nav2d".into(),
            seed: 1,
            iterations: 200,
            checkpoint_every: 20,
            eval_tasks: 50,
            horizon: None,
            es_ddpg: EsDdpgConfig::default(),
        }
    }
}

impl RunSpec for EsDdpgRun {
    fn algo(&self) -> &'static str {
        "es-ddpg"
    }

    fn env_name(&self) -> &str {
        &self.env
    }

    super::driver::schedule_from_fields!();

    fn validate(&self, registry: &Registry) -> Result<()> {
        if self.algo != "es-ddpg" {
            return Err(Error::invalid("algo", &self.algo, "es-ddpg"));
        }
        registry.make(&self.env)?;
        if self.horizon == Some(0) {
            return Err(Error::invalid(
                "horizon",
                0,
                "≥ 1 (or absent: the family's)",
            ));
        }
        self.schedule().validate(1)?;
        self.es_ddpg.validate()
    }

    /// μ_a and μ_c from stream `policy` of the seed.
    fn build(&self, registry: &Registry, device: &Device) -> Result<Box<dyn MetaLearner>> {
        Ok(Box::new(EsDdpg::new(
            self.es_ddpg.clone(),
            WithHorizon::wrap(registry.make(&self.env)?, self.horizon),
            self.seed,
            &mut stream(self.seed, "policy"),
            device,
        )))
    }

    fn distributes(&self) -> bool {
        true
    }

    fn variant(&self) -> serde_json::Value {
        let c = &self.es_ddpg;
        json!({
            "workers": c.workers,
            "draws": c.draws,
            "learn_sigma": c.learn_sigma,
            "ddpg_updates": c.ddpg.updates,
            "meta_optimizer": c.meta_optimizer,
        })
    }
}
