//! Driver of the `promp` and `pg-maml` binaries and of `metarl eval`: the run config,
//! training through the harness, held-out evaluation (pre- and post-adaptation returns
//! per inner step, success rate, trajectories for `metarl plot`) and `summary.json`.

use std::sync::Arc;

use burn::module::Module;
use burn::optim::AdamConfig;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    config::to_toml, load_module, load_optimizer, module_bytes, optimizer_bytes, resume_and_run,
    Checkpoint, LoopConfig, Metrics, RunDir, Trainable,
};
use crate::algo::pg_maml::{PgMaml, PgMamlConfig};
use crate::algo::promp::{ProMp, ProMpConfig};
use crate::device::DeviceKind;
use crate::env::{self, Env, TaskDistribution, VecEnv, HELD_OUT_SEED};
use crate::error::{Error, Result};
use crate::nn::functional::GaussianParams;
use crate::nn::GaussianPolicy;
use crate::params::flatten;
use crate::pg::{adapt, process, sample_tasks, MetaPgConfig, SamplerRngs, TaskPolicies};
use crate::rng::stream;
use crate::rollout::sample;
use crate::traj::positions_csv;

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
    /// Validates every field once (including the environment name).
    pub fn validate(&self) -> Result<()> {
        self.make_env()?;
        if self.checkpoint_every == 0 {
            return Err(Error::invalid("checkpoint_every", 0, "≥ 1"));
        }
        if self.eval_tasks == 0 {
            return Err(Error::invalid("eval_tasks", 0, "≥ 1"));
        }
        self.meta.validate()?;
        self.pg_maml.validate()?;
        self.promp.validate()
    }

    /// The task family this run trains on (`env` with `action_scale` applied).
    pub fn make_env(&self) -> Result<Arc<dyn env::Env>> {
        env::make_scaled(&self.env, self.action_scale)
    }
}

/// ProMP or PG-MAML behind one interface for the harness.
pub enum Learner {
    /// A ProMP learner.
    Promp(ProMp),
    /// A PG-MAML learner.
    PgMaml(PgMaml),
}

impl Learner {
    /// Builds the learner a run config names, on an autodiff `device`.
    pub fn new(cfg: &PgRun, device: &Device) -> Result<Self> {
        let envf = cfg.make_env()?;
        let rngs = SamplerRngs {
            env: stream(cfg.seed, "env"),
            act: stream(cfg.seed, "action"),
        };
        let (init, tasks) = (&mut stream(cfg.seed, "policy"), stream(cfg.seed, "tasks"));
        Ok(match cfg.algo {
            PgAlgo::Promp => Learner::Promp(ProMp::new(
                cfg.meta.clone(),
                cfg.promp.clone(),
                envf,
                init,
                tasks,
                rngs,
                device,
            )),
            PgAlgo::PgMaml => Learner::PgMaml(PgMaml::new(
                cfg.meta.clone(),
                cfg.pg_maml.clone(),
                envf,
                init,
                tasks,
                rngs,
                device,
            )),
        })
    }

    /// The meta-policy.
    pub fn policy(&self) -> &GaussianPolicy {
        match self {
            Learner::Promp(l) => &l.policy,
            Learner::PgMaml(l) => &l.policy,
        }
    }
}

impl Trainable for Learner {
    fn step(&mut self, _iteration: usize) -> Result<Metrics> {
        match self {
            Learner::Promp(l) => l.step(),
            Learner::PgMaml(l) => l.step(),
        }
    }

    fn parameters_finite(&self) -> bool {
        flatten(self.policy()).iter().all(|x| x.is_finite())
    }

    fn checkpoint(&self) -> Result<Checkpoint> {
        let (optim, tasks, rngs, kl) = match self {
            Learner::Promp(l) => (&l.optim, &l.tasks_rng, &l.rngs, l.kl_coef),
            Learner::PgMaml(l) => (&l.optim, &l.tasks_rng, &l.rngs, 0.0),
        };
        let mut ck = Checkpoint::default()
            .with_file("policy.bpk", module_bytes(self.policy())?)
            .with_file("adam.bpk", optimizer_bytes(optim)?)
            .with_rng("tasks", tasks)
            .with_rng("env", &rngs.env)
            .with_rng("action", &rngs.act);
        ck.extra = json!({ "kl_coef": kl });
        Ok(ck)
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        let policy = load_module(self.policy().clone(), ck.file("policy.bpk")?)?;
        let optim = load_optimizer(AdamConfig::new().init(), ck.file("adam.bpk")?)?;
        let rngs = SamplerRngs {
            env: ck.rng("env")?,
            act: ck.rng("action")?,
        };
        match self {
            Learner::Promp(l) => {
                (l.policy, l.optim, l.tasks_rng, l.rngs) = (policy, optim, ck.rng("tasks")?, rngs);
                l.kl_coef = ck.extra["kl_coef"].as_f64().unwrap_or(l.cfg.kl_coef);
            }
            Learner::PgMaml(l) => {
                (l.policy, l.optim, l.tasks_rng, l.rngs) = (policy, optim, ck.rng("tasks")?, rngs)
            }
        }
        Ok(())
    }
}

/// Held-out evaluation of a meta-policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Tasks evaluated.
    pub tasks: usize,
    /// Mean return before adaptation.
    pub pre_return: f64,
    /// Mean return after each inner step.
    pub post_return: Vec<f64>,
    /// Success rate after the last inner step, for families that define success.
    pub success_rate: Option<f64>,
    /// The adapted policy acting with its mean action (no sampling noise), on the same
    /// tasks after the last inner step; `None` where not measured.
    pub mean_action: Option<MeanActionScore>,
    /// Positions of the first tasks' episodes, phases `pre`, `post-1`, … (point envs).
    pub trajectories_csv: String,
}

/// Return and success of an adapted Gaussian policy acting with its mean action μ(s).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanActionScore {
    /// Mean return.
    pub post_return: f64,
    /// Success rate, for families that define success.
    pub success_rate: Option<f64>,
}

impl Evaluation {
    /// `metarl eval`'s outputs: `trajectories.csv` and `eval.json` (tasks, the checkpoint's
    /// `iteration`, pre/post returns, success rate, plus the fields of `extra`).
    pub fn write_eval(
        &self,
        dir: &RunDir,
        iteration: usize,
        extra: serde_json::Value,
    ) -> Result<()> {
        dir.write_file("trajectories.csv", self.trajectories_csv.as_bytes())?;
        let mut j = json!({ "tasks": self.tasks, "iteration": iteration, "pre_return": self.pre_return, "post_return": self.post_return, "success_rate": self.success_rate });
        if let (Some(map), Some(m)) = (j.as_object_mut(), self.mean_action) {
            map.insert("mean_action".into(), m.to_json());
        }
        if let (Some(map), Some(more)) = (j.as_object_mut(), extra.as_object()) {
            map.extend(more.clone());
        }
        dir.write_json("eval.json", &j)
    }
}

impl MeanActionScore {
    /// `{"post_return": …, "success_rate": …}`.
    pub fn to_json(&self) -> serde_json::Value {
        json!({ "post_return": self.post_return, "success_rate": self.success_rate })
    }
}

/// Samples the first `n` held-out tasks (fixed for every run), adapts the meta-policy with
/// the run's inner step (first order: no meta-gradient is needed) and measures returns.
/// Sampling noise comes from fixed streams, so two runs are scored on the same draws.
/// The adapted policy is also scored acting with its mean action (`mean_action`), after
/// the stochastic batches, so those draws do not depend on it.
pub fn evaluate(
    envf: &Arc<dyn Env>,
    policy: &GaussianPolicy,
    meta: &MetaPgConfig,
    n: usize,
    device: &Device,
) -> Result<Evaluation> {
    let tasks = TaskDistribution::new(envf.clone()).held_out(n);
    let (mut env_rng, mut act_rng) = (
        stream(HELD_OUT_SEED, "eval-env"),
        stream(HELD_OUT_SEED, "eval-action"),
    );
    let goals: Vec<_> = tasks
        .iter()
        .map(|t| envf.goals(t).first().copied())
        .collect();
    let shown = n.min(4) * meta.rollouts;
    let mut p = GaussianParams::from_policy(&policy.valid());
    let mut csv = String::new();
    let mut returns = Vec::new();
    let mut success = None;
    for s in 0..=meta.inner_steps {
        let tr = sample_tasks(
            envf,
            &tasks,
            &p,
            meta.rollouts,
            &mut env_rng,
            &mut act_rng,
            device,
        );
        let phase = if s == 0 {
            "pre".to_string()
        } else {
            format!("post-{s}")
        };
        csv.push_str(&positions_csv(
            &tr.select_rows(0, shown),
            &phase,
            &goals,
            s == 0,
        ));
        returns.push(tr.mean_return());
        success = tr.success_rate();
        if s < meta.inner_steps {
            let b = process(&tr, meta, device)?;
            p = adapt(&p, &b, meta.estimator, meta.inner_lr, false);
        }
    }
    let mut venv = VecEnv::for_tasks(envf.clone(), &tasks, meta.rollouts, &mut env_rng);
    let actor = TaskPolicies::new(&p, meta.rollouts).mean_actions();
    let mean = sample(&actor, &mut venv, meta.rollouts, &mut act_rng, device);
    Ok(Evaluation {
        tasks: n,
        pre_return: returns[0],
        post_return: returns[1..].to_vec(),
        success_rate: success,
        mean_action: Some(MeanActionScore {
            post_return: mean.mean_return(),
            success_rate: mean.success_rate(),
        }),
        trajectories_csv: csv,
    })
}

/// Trains (or resumes) a run in `dir`, evaluates it and writes `summary.json`.
pub fn train(
    cfg: &PgRun,
    dir: &RunDir,
    kind: DeviceKind,
    resume: bool,
    quiet: bool,
) -> Result<serde_json::Value> {
    cfg.validate()?;
    let device = kind.device()?.autodiff();
    let mut learner = Learner::new(cfg, &device)?;
    let lc = LoopConfig {
        iterations: cfg.iterations,
        checkpoint_every: cfg.checkpoint_every,
        quiet,
    };
    let (res, wall) = resume_and_run(
        &mut learner,
        dir,
        resume,
        &to_toml(cfg)?,
        &lc,
        cfg.algo.name(),
    )?;
    let envf = cfg.make_env()?;
    let ev = evaluate(
        &envf,
        learner.policy(),
        &cfg.meta,
        cfg.eval_tasks,
        &kind.device()?,
    )?;
    dir.write_file("trajectories.csv", ev.trajectories_csv.as_bytes())?;
    let post_final: Vec<Option<f64>> = (1..=cfg.meta.inner_steps)
        .map(|k| res.last.get(&format!("post_return_{k}")))
        .collect();
    let summary = json!({
        "algo": cfg.algo.name(),
        "estimator": cfg.meta.estimator,
        "env": cfg.env,
        "seed": cfg.seed,
        "iterations": cfg.iterations,
        "device": kind.name(),
        "threads": rayon::current_num_threads(),
        "train": {
            "wall_seconds": wall,
            "seconds_per_iteration": res.seconds_per_iteration(),
            "meta_iterations_per_second": res.iterations_per_second(),
            "env_steps": res.env_steps,
            "env_steps_per_second": res.env_steps_per(wall),
        },
        "final": { "pre_return": res.last.get("pre_return"), "post_return": post_final },
        "eval": { "tasks": ev.tasks, "pre_return": ev.pre_return, "post_return": ev.post_return, "success_rate": ev.success_rate, "mean_action": ev.mean_action.map(|m| m.to_json()) },
    });
    dir.write_summary(&summary)?;
    Ok(summary)
}

/// `metarl eval RUN_DIR`: loads a run's config and last checkpoint, evaluates the
/// meta-policy on `n` held-out tasks and writes `eval.json` and `trajectories.csv`.
pub fn eval_run(dir: &RunDir, n: Option<usize>, kind: DeviceKind) -> Result<Evaluation> {
    let text =
        std::fs::read_to_string(dir.config_path()).map_err(|e| Error::io(dir.config_path(), e))?;
    let is_pg = text
        .lines()
        .any(|l| l.starts_with("algo = \"promp\"") || l.starts_with("algo = \"pg-maml\""));
    if !is_pg {
        return Err(Error::RunDir {
            path: dir.path().to_path_buf(),
            message: "is not a promp, pg-maml or meta-explore run; `metarl eval` adapts Gaussian meta-policies (sine-maml and es-maml runs are evaluated at the end of training, see summary.json)".into(),
        });
    }
    let cfg: PgRun = super::load_toml(&dir.config_path())?;
    let device = kind.device()?;
    let envf = cfg.make_env()?;
    let s = envf.spec().clone();
    let fresh = cfg.meta.policy.init(
        s.obs_dim,
        s.act_dim,
        &mut stream(cfg.seed, "policy"),
        &device,
    );
    let ck = Checkpoint::load(&dir.checkpoint_path())?;
    let policy = load_module(fresh, ck.file("policy.bpk")?)?;
    let ev = evaluate(
        &envf,
        &policy,
        &cfg.meta,
        n.unwrap_or(cfg.eval_tasks),
        &device,
    )?;
    ev.write_eval(dir, ck.iteration, json!({}))?;
    Ok(ev)
}

crate::cli::run_config_from_fields!(PgRun);
