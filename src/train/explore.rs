//! Driver of the `meta-explore` binary: MAME (separate exploration policy, latent
//! exploitation policy, self-supervised z-update) or MAESN (latent exploration), trained
//! through the harness, evaluated on held-out tasks, `summary.json`.

use std::sync::Arc;

use burn::optim::AdamConfig;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::pg::Evaluation;
use super::{
    config::to_toml, load_module, load_optimizer, module_bytes, optimizer_bytes, resume_and_run,
    Checkpoint, LoopConfig, Metrics, RunDir, Trainable,
};
use crate::algo::maesn::{self, Maesn, MaesnConfig, MaesnParams};
use crate::algo::mame::{self, InnerLoss, Mame, MameConfig, MameParams, PhiGradient, Target};
use crate::device::DeviceKind;
use crate::env::{self, Env, TaskDistribution, HELD_OUT_SEED};
use crate::error::{Error, Result};
use crate::params::flatten;
use crate::pg::SamplerRngs;
use crate::rng::stream;
use crate::traj::{positions_csv, Trajectories};

/// The meta-exploration method of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Model-agnostic meta-exploration (Gurumurthy et al. 2019).
    Mame,
    /// Latent exploration (Gupta et al. 2018).
    Maesn,
}

impl Method {
    /// Parses `mame` or `maesn`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "mame" => Ok(Method::Mame),
            "maesn" => Ok(Method::Maesn),
            _ => Err(Error::invalid("method", s, "mame, maesn")),
        }
    }
}

/// The ablations of the MAME paper (§5.3), as changes to a [`MameConfig`].
pub const ABLATIONS: &[&str] = &["none", "vpg", "reward", "dice", "emaml"];

/// Applies ablation `name` (one of [`ABLATIONS`]) to `cfg`.
pub fn apply_ablation(cfg: &mut MameConfig, name: &str) -> Result<()> {
    match name {
        "none" => {}
        "vpg" => cfg.inner_loss = InnerLoss::Vpg,
        "reward" => cfg.target = Target::Reward,
        "dice" => cfg.phi_gradient = PhiGradient::Dice,
        "emaml" => cfg.phi_gradient = PhiGradient::Emaml,
        _ => return Err(Error::invalid("ablation", name, ABLATIONS.join(", "))),
    }
    Ok(())
}

/// Everything a meta-exploration run needs; written to `config.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExploreRun {
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
    /// Validates every field once (including the environment name).
    pub fn validate(&self) -> Result<()> {
        env::make(&self.env)?;
        if self.checkpoint_every == 0 {
            return Err(Error::invalid("checkpoint_every", 0, "≥ 1"));
        }
        if self.eval_tasks == 0 {
            return Err(Error::invalid("eval_tasks", 0, "≥ 1"));
        }
        self.mame.validate()?;
        self.maesn.validate()
    }

    /// The method's name as shown in summaries.
    pub fn method_name(&self) -> &'static str {
        match self.method {
            Method::Mame => "mame",
            Method::Maesn => "maesn",
        }
    }
}

crate::cli::run_config_from_fields!(ExploreRun);

/// MAME or MAESN behind one interface for the harness.
pub enum Learner {
    /// A MAME learner.
    Mame(Box<Mame>),
    /// A MAESN learner.
    Maesn(Box<Maesn>),
}

impl Learner {
    /// Builds the learner a run config names, on an autodiff `device`.
    pub fn new(cfg: &ExploreRun, device: &Device) -> Result<Self> {
        let envf = env::make(&cfg.env)?;
        let rngs = SamplerRngs {
            env: stream(cfg.seed, "env"),
            act: stream(cfg.seed, "action"),
        };
        let (init, tasks) = (&mut stream(cfg.seed, "policy"), stream(cfg.seed, "tasks"));
        Ok(match cfg.method {
            Method::Mame => Learner::Mame(Box::new(Mame::new(
                cfg.mame.clone(),
                envf,
                init,
                tasks,
                rngs,
                device,
            ))),
            Method::Maesn => Learner::Maesn(Box::new(Maesn::new(
                cfg.maesn.clone(),
                envf,
                init,
                &mut stream(cfg.seed, "train-tasks"),
                tasks,
                rngs,
                stream(cfg.seed, "latent"),
                device,
            ))),
        })
    }
}

impl Trainable for Learner {
    fn step(&mut self, _iteration: usize) -> Result<Metrics> {
        match self {
            Learner::Mame(l) => l.step(),
            Learner::Maesn(l) => l.step(),
        }
    }

    fn parameters_finite(&self) -> bool {
        match self {
            Learner::Mame(l) => flatten(&l.nets)
                .iter()
                .chain(flatten(&l.latent).iter())
                .all(|x| x.is_finite()),
            Learner::Maesn(l) => flatten(&l.model).iter().all(|x| x.is_finite()),
        }
    }

    fn checkpoint(&self) -> Result<Checkpoint> {
        Ok(match self {
            Learner::Mame(l) => Checkpoint::default()
                .with_file("nets.bpk", module_bytes(&l.nets)?)
                .with_file("latent.bpk", module_bytes(&l.latent)?)
                .with_file("adam.bpk", optimizer_bytes(&l.optim)?)
                .with_file("adam-latent.bpk", optimizer_bytes(&l.latent_optim)?)
                .with_rng("tasks", &l.tasks_rng)
                .with_rng("env", &l.rngs.env)
                .with_rng("action", &l.rngs.act),
            Learner::Maesn(l) => Checkpoint::default()
                .with_file("model.bpk", module_bytes(&l.model)?)
                .with_file("adam.bpk", optimizer_bytes(&l.optim)?)
                .with_rng("tasks", &l.tasks_rng)
                .with_rng("env", &l.rngs.env)
                .with_rng("action", &l.rngs.act)
                .with_rng("latent", &l.latent_rng),
        })
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        let rngs = SamplerRngs {
            env: ck.rng("env")?,
            act: ck.rng("action")?,
        };
        match self {
            Learner::Mame(l) => {
                l.nets = load_module(l.nets.clone(), ck.file("nets.bpk")?)?;
                l.latent = load_module(l.latent.clone(), ck.file("latent.bpk")?)?;
                l.optim = load_optimizer(AdamConfig::new().init(), ck.file("adam.bpk")?)?;
                l.latent_optim =
                    load_optimizer(AdamConfig::new().init(), ck.file("adam-latent.bpk")?)?;
                l.tasks_rng = ck.rng("tasks")?;
                l.rngs = rngs;
            }
            Learner::Maesn(l) => {
                l.model = load_module(l.model.clone(), ck.file("model.bpk")?)?;
                l.optim = load_optimizer(AdamConfig::new().init(), ck.file("adam.bpk")?)?;
                l.tasks_rng = ck.rng("tasks")?;
                l.latent_rng = ck.rng("latent")?;
                l.rngs = rngs;
            }
        }
        Ok(())
    }
}

/// Held-out evaluation: the first `n` held-out tasks (the same for every run) and fixed
/// sampling streams. MAME: explore with μ_φ (trajectory phase "pre-explore"), adapt z,
/// exploit with π_{θ,z'} ("post-exploit"). MAESN: latents from the prior N(0, I) ("pre"),
/// one latent step ("post-1").
pub fn evaluate(
    learner: &Learner,
    envf: &Arc<dyn Env>,
    n: usize,
    device: &Device,
) -> Result<Evaluation> {
    let tasks = TaskDistribution::new(envf.clone()).held_out(n);
    let (mut env_rng, mut act_rng) = (
        stream(HELD_OUT_SEED, "eval-env"),
        stream(HELD_OUT_SEED, "eval-action"),
    );
    let (pre, post, k): (Trajectories, Trajectories, usize) = match learner {
        Learner::Mame(l) => {
            let p = MameParams::constants(&l.nets, &l.latent);
            let ep = mame::run_episodes(
                envf,
                &tasks,
                &p,
                &l.cfg,
                l.cfg.rollouts,
                &mut env_rng,
                &mut act_rng,
                device,
            )?;
            (ep.explore, ep.exploit, l.cfg.rollouts)
        }
        Learner::Maesn(l) => {
            let p = MaesnParams::prior(&l.model, n);
            let (_, a, b) = maesn::run_episodes(
                envf,
                &tasks,
                &p,
                &l.cfg,
                &mut env_rng,
                &mut act_rng,
                &mut stream(HELD_OUT_SEED, "eval-latent"),
                device,
            )?;
            (a, b, l.cfg.rollouts)
        }
    };
    let goals: Vec<_> = tasks
        .iter()
        .map(|t| envf.goals(t).first().copied())
        .collect();
    let shown = n.min(4) * k;
    let (pre_phase, post_phase) = match learner {
        Learner::Mame(_) => ("pre-explore", "post-exploit"),
        Learner::Maesn(_) => ("pre", "post-1"),
    };
    let mut csv = positions_csv(&pre.select_rows(0, shown), pre_phase, &goals, true);
    csv.push_str(&positions_csv(
        &post.select_rows(0, shown),
        post_phase,
        &goals,
        false,
    ));
    Ok(Evaluation {
        tasks: n,
        pre_return: pre.mean_return(),
        post_return: vec![post.mean_return()],
        success_rate: post.success_rate(),
        mean_action: None,
        trajectories_csv: csv,
    })
}

/// Trains (or resumes) a run in `dir`, evaluates it and writes `summary.json`.
pub fn train(
    cfg: &ExploreRun,
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
        "meta-explore",
    )?;
    let envf = env::make(&cfg.env)?;
    let ev = evaluate(&learner, &envf, cfg.eval_tasks, &device)?;
    dir.write_file("trajectories.csv", ev.trajectories_csv.as_bytes())?;
    let variant = match cfg.method {
        Method::Mame => json!({
            "inner_loss": cfg.mame.inner_loss,
            "target": cfg.mame.target,
            "phi_gradient": cfg.mame.phi_gradient,
        }),
        Method::Maesn => json!({ "kl_weight": cfg.maesn.kl_weight }),
    };
    let summary = json!({
        "algo": "meta-explore",
        "method": cfg.method_name(),
        "variant": variant,
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
        "final": {
            "pre_return": res.last.get("pre_return"),
            "post_return": res.last.get("post_return_1"),
            "post_success": res.last.get("post_success"),
        },
        "eval": { "tasks": ev.tasks, "pre_return": ev.pre_return, "post_return": ev.post_return, "success_rate": ev.success_rate },
    });
    dir.write_summary(&summary)?;
    Ok(summary)
}

/// Whether the run in `dir` is a `meta-explore` run (its config names a `method`).
pub fn is_explore_run(dir: &RunDir) -> bool {
    std::fs::read_to_string(dir.config_path())
        .map(|t| t.lines().any(|l| l.starts_with("method = ")))
        .unwrap_or(false)
}

/// `metarl eval RUN_DIR` for a `meta-explore` run: loads its config and last checkpoint,
/// evaluates on `n` held-out tasks and writes `eval.json` and `trajectories.csv`.
pub fn eval_run(dir: &RunDir, n: Option<usize>, kind: DeviceKind) -> Result<Evaluation> {
    let cfg: ExploreRun = super::load_toml(&dir.config_path())?;
    let device = kind.device()?;
    let mut learner = Learner::new(&cfg, &device)?;
    let ck = Checkpoint::load(&dir.checkpoint_path())?;
    learner.restore(&ck)?;
    let envf = env::make(&cfg.env)?;
    let ev = evaluate(&learner, &envf, n.unwrap_or(cfg.eval_tasks), &device)?;
    ev.write_eval(dir, ck.iteration, json!({ "method": cfg.method_name() }))?;
    Ok(ev)
}
