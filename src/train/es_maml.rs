//! The run config of the `es-maml` binary.

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RunSpec;
use crate::algo::es_maml::{EsMaml, EsMamlConfig};
use crate::algo::es_sine::{EsSine, EsSineConfig};
use crate::env::{Registry, WithHorizon};
use crate::error::{Error, Result};
use crate::learner::MetaLearner;
use crate::rng::stream;

/// The supervised family's name: `env = "sine"` trains ES-MAML on sine regression.
pub const SINE: &str = "sine";

/// Everything an ES-MAML run needs; written to `config.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EsMamlRun {
    /// The learner, `"es-maml"`: the tag by which `metarl eval` recognises the run.
    pub algo: String,
    /// Environment name (an RL family, or `sine`).
    pub env: String,
    /// Root seed.
    pub seed: u64,
    /// Meta-iterations.
    pub iterations: usize,
    /// Checkpoint cadence.
    pub checkpoint_every: usize,
    /// Held-out tasks in the final evaluation.
    pub eval_tasks: usize,
    /// Episode length of an RL family, when not the family's own. ES-MAML A.7 runs every
    /// RL experiment for 200 steps; our families keep their references' horizons (100 for
    /// the point tasks and ProMP's MuJoCo tasks) unless this is set. Absent: the family's.
    pub horizon: Option<usize>,
    /// The algorithm (RL tasks).
    pub es: EsMamlConfig,
    /// The algorithm on `env = "sine"` (supervised, exact gradient adaptation).
    pub sine: EsSineConfig,
}

impl Default for EsMamlRun {
    fn default() -> Self {
        Self {
            algo: "es-maml".into(),
            env: "nav2d".into(),
            seed: 1,
            iterations: 200,
            checkpoint_every: 20,
            eval_tasks: 50,
            horizon: None,
            es: EsMamlConfig::default(),
            sine: EsSineConfig::default(),
        }
    }
}

impl EsMamlRun {
    /// Whether the run is on the supervised sine family (`env = "sine"`), which ES-MAML
    /// adapts with the exact gradient step ([`EsSine`]); the one place that tells it apart.
    pub fn supervised(&self) -> bool {
        self.env == SINE
    }
}

impl RunSpec for EsMamlRun {
    fn algo(&self) -> &'static str {
        "es-maml"
    }

    fn env_name(&self) -> &str {
        &self.env
    }

    super::driver::schedule_from_fields!();

    /// Every field once; `env = "sine"` checks the supervised settings only.
    fn validate(&self, registry: &Registry) -> Result<()> {
        if self.algo != "es-maml" {
            return Err(Error::invalid("algo", &self.algo, "es-maml"));
        }
        if self.supervised() {
            return self.sine.validate();
        }
        if self.horizon == Some(0) {
            return Err(Error::invalid(
                "horizon",
                0,
                "≥ 1 (or absent: the family's)",
            ));
        }
        let envf = WithHorizon::wrap(registry.make(&self.env)?, self.horizon);
        self.schedule().validate(1)?;
        self.es.validate_for(envf.as_ref())
    }

    /// [`EsMaml`] on an RL family, [`EsSine`] on `sine` (the one place the supervised
    /// family is told apart), θ from stream `policy` of the seed.
    fn build(&self, registry: &Registry, device: &Device) -> Result<Box<dyn MetaLearner>> {
        let init = &mut stream(self.seed, "policy");
        if self.supervised() {
            return Ok(Box::new(EsSine::new(
                self.sine.clone(),
                self.seed,
                init,
                device,
            )));
        }
        Ok(Box::new(EsMaml::new(
            self.es.clone(),
            WithHorizon::wrap(registry.make(&self.env)?, self.horizon),
            self.seed,
            init,
            &mut stream(self.seed, "tasks"),
            device,
        )))
    }

    /// The RL learner shares its population between MPI ranks; sine runs do not.
    fn distributes(&self) -> bool {
        !self.supervised()
    }

    fn variant(&self) -> serde_json::Value {
        if self.supervised() {
            return json!({ "order": self.sine.order, "operator": "gradient" });
        }
        json!({
            "order": self.es.order,
            "operator": self.es.operator,
            "estimator": self.es.estimator,
            "policy": self.es.policy,
        })
    }
}
