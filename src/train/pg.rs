//! The run config of the `promp` and `pg-maml` binaries.

use std::sync::Arc;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::RunSpec;
use crate::algo::pg_maml::{PgMaml, PgMamlConfig};
use crate::algo::promp::{ProMp, ProMpConfig};
use crate::env::{self, Registry};
use crate::error::Result;
use crate::learner::MetaLearner;
use crate::pg::{MetaPgConfig, SamplerRngs};
use crate::rng::stream;

/// Which policy-gradient meta-learner a run trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PgAlgo {
    /// Proximal Meta-Policy Search.
    Promp,
    /// MAML-VPG / MAML-TRPO / E-MAML.
    PgMaml,
}

impl PgAlgo {
    /// The binary's name.
    pub fn name(self) -> &'static str {
        match self {
            PgAlgo::Promp => "promp",
            PgAlgo::PgMaml => "pg-maml",
        }
    }
}

/// Everything a PG meta-learning run needs; written to `config.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PgRun {
    /// The learner.
    pub algo: PgAlgo,
    /// Environment name.
    pub env: String,
    /// The policy's actions are multiplied by this before the environment clips them
    /// (1: none). ProMP runs its point environments through `normalize` with
    /// `normalization_scale = 10`, i.e. 0.2 / 10 = 0.02 on point-corners (see
    /// [`env::ScaledActions`]).
    pub action_scale: f64,
    /// Root seed.
    pub seed: u64,
    /// Meta-iterations.
    pub iterations: usize,
    /// Checkpoint cadence.
    pub checkpoint_every: usize,
    /// Held-out tasks in the final evaluation.
    pub eval_tasks: usize,
    /// Sampling, inner step and policy.
    pub meta: MetaPgConfig,
    /// PG-MAML's outer loop (used when `algo = "pg-maml"`).
    pub pg_maml: PgMamlConfig,
    /// ProMP's outer loop (used when `algo = "promp"`).
    pub promp: ProMpConfig,
}

impl Default for PgRun {
    fn default() -> Self {
        Self {
            algo: PgAlgo::Promp,
            env: "nav2d".into(),
            action_scale: 1.0,
            seed: 1,
            iterations: 100,
            checkpoint_every: 10,
            eval_tasks: 40,
            meta: MetaPgConfig::default(),
            pg_maml: PgMamlConfig::default(),
            promp: ProMpConfig::default(),
        }
    }
}

impl PgRun {
    /// The task family this run trains on (`env` from `registry`, with `action_scale`
    /// applied).
    pub fn make_env(&self, registry: &Registry) -> Result<Arc<dyn env::Env>> {
        registry.make_scaled(&self.env, self.action_scale)
    }

    /// The number of task chunks of the learner this run trains.
    pub fn chunks(&self) -> usize {
        match self.algo {
            PgAlgo::Promp => self.promp.parallel_chunks,
            PgAlgo::PgMaml => self.pg_maml.parallel_chunks,
        }
    }
}

impl RunSpec for PgRun {
    fn algo(&self) -> &'static str {
        self.algo.name()
    }

    fn env_name(&self) -> &str {
        &self.env
    }

    super::driver::schedule_from_fields!();

    /// Every field once, including the environment name.
    fn validate(&self, registry: &Registry) -> Result<()> {
        self.make_env(registry)?;
        self.schedule().validate(1)?;
        self.meta.validate()?;
        self.pg_maml.validate()?;
        self.promp.validate()
    }

    /// ProMP or PG-MAML with streams `policy`, `tasks`, `env` and `action` of the seed.
    fn build(&self, registry: &Registry, device: &Device) -> Result<Box<dyn MetaLearner>> {
        let envf = self.make_env(registry)?;
        let rngs = SamplerRngs {
            env: stream(self.seed, "env"),
            act: stream(self.seed, "action"),
        };
        let (init, tasks) = (&mut stream(self.seed, "policy"), stream(self.seed, "tasks"));
        let (meta, device) = (self.meta.clone(), device);
        Ok(match self.algo {
            PgAlgo::Promp => Box::new(ProMp::new(
                meta,
                self.promp.clone(),
                envf,
                init,
                tasks,
                rngs,
                device,
            )),
            PgAlgo::PgMaml => Box::new(PgMaml::new(
                meta,
                self.pg_maml.clone(),
                envf,
                init,
                tasks,
                rngs,
                device,
            )),
        })
    }

    fn variant(&self) -> serde_json::Value {
        serde_json::json!({ "estimator": self.meta.estimator })
    }

    /// The task chunks of the meta-batch are shared between the ranks
    /// ([`crate::pg::sample_chunked`]).
    fn distributes(&self) -> bool {
        true
    }
}
