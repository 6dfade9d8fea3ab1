//! The run config of the `sine-maml` binary (evaluated with Finn's protocol: 600 held-out
//! tasks, query MSE after 0…10 inner steps with 95% confidence intervals).

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RunSpec;
use crate::algo::sine_maml::{SineMaml, SineMamlConfig};
use crate::env::Registry;
use crate::error::{Error, Result};
use crate::learner::MetaLearner;
use crate::rng::stream;

/// Everything a sine-MAML run needs; written to `config.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SineMamlRun {
    /// The learner, `"sine-maml"`: the tag by which `metarl eval` recognises the run.
    pub algo: String,
    /// Root seed.
    pub seed: u64,
    /// Meta-iterations.
    pub iterations: usize,
    /// Checkpoint cadence in iterations.
    pub checkpoint_every: usize,
    /// Held-out tasks for the final evaluation (Finn: 600).
    pub eval_tasks: usize,
    /// Inner steps evaluated after training (Finn: 10).
    pub eval_steps: usize,
    /// The algorithm's hyperparameters.
    pub maml: SineMamlConfig,
}

impl Default for SineMamlRun {
    fn default() -> Self {
        Self {
            algo: "sine-maml".into(),
            seed: 0,
            iterations: 10_000,
            checkpoint_every: 1_000,
            eval_tasks: 600,
            eval_steps: 10,
            maml: SineMamlConfig::default(),
        }
    }
}

impl RunSpec for SineMamlRun {
    fn algo(&self) -> &'static str {
        "sine-maml"
    }

    fn env_name(&self) -> &str {
        "sine"
    }

    super::driver::schedule_from_fields!();

    /// Every field once (the family is always `sine`; the registry is not consulted).
    fn validate(&self, _registry: &Registry) -> Result<()> {
        if self.algo != "sine-maml" {
            return Err(Error::invalid("algo", &self.algo, "sine-maml"));
        }
        // A confidence interval needs two tasks.
        self.schedule().validate(2)?;
        self.maml.validate()
    }

    /// [`SineMaml`] with θ from stream `policy` and tasks from stream `tasks` of the seed,
    /// evaluated after `eval_steps` inner steps.
    fn build(&self, _registry: &Registry, device: &Device) -> Result<Box<dyn MetaLearner>> {
        let mut learner = SineMaml::new(
            self.maml.clone(),
            &mut stream(self.seed, "policy"),
            stream(self.seed, "tasks"),
            device,
        );
        learner.eval_steps = self.eval_steps;
        Ok(Box::new(learner))
    }

    fn variant(&self) -> serde_json::Value {
        json!({
            "hessian": self.maml.hessian,
            "inner_steps": self.maml.inner_steps,
            "shots": self.maml.shots,
        })
    }
}
