//! The one driver of every training binary and of `metarl eval`: a run config
//! ([`RunSpec`]) names its learner and task family; [`train_run`] builds the learner,
//! runs or resumes it through [`super::run`], evaluates it on held-out tasks and writes
//! `summary.json` ([`summary`]); [`eval_run`] does the evaluation part for a saved run.

use std::path::Path;

use burn::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::{config::to_toml, load_toml, resume_and_run, LoopConfig, LoopResult, RunDir};
use crate::checkpoint::Checkpoint;
use crate::device::DeviceKind;
use crate::env::Registry;
use crate::error::{Error, Result};
use crate::learner::{Evaluation, MetaLearner, Scores};

/// A binary's run config: typed, written whole to `config.toml`, and able to build the
/// learner it describes. Every training binary, `--resume` and `metarl eval` go through it.
pub trait RunSpec: Serialize + DeserializeOwned {
    /// The learner's name: the binary, the run directory's prefix, `algo` in
    /// `config.toml` and `summary.json`.
    fn algo(&self) -> &'static str;
    /// The task family's name, resolved through a [`Registry`].
    fn env_name(&self) -> &str;
    /// Seed, iteration count, checkpoint cadence and held-out tasks.
    fn schedule(&self) -> Schedule;
    /// The total number of iterations, to change (`--iterations` extends a resumed run).
    fn iterations_mut(&mut self) -> &mut usize;
    /// Checks every field once (the family's name against `registry`).
    fn validate(&self, registry: &Registry) -> Result<()>;
    /// The learner this config describes, fresh from its seed, on an autodiff `device`.
    fn build(&self, registry: &Registry, device: &Device) -> Result<Box<dyn MetaLearner>>;
    /// The algorithm's variant settings shown at the top level of `summary.json`
    /// (estimator, method, operator, …); an object.
    fn variant(&self) -> Value {
        json!({})
    }
    /// Whether the learner shares its work between the ranks of an MPI job
    /// ([`crate::dist`]); the others refuse `--mpi`.
    fn distributes(&self) -> bool {
        false
    }
}

/// The fields every run config has, as [`RunSpec::schedule`] returns them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The root seed of every random stream.
    pub seed: u64,
    /// Total meta-iterations.
    pub iterations: usize,
    /// Checkpoint cadence in iterations.
    pub checkpoint_every: usize,
    /// Held-out tasks of the final evaluation.
    pub eval_tasks: usize,
}

impl Schedule {
    /// Checks the cadence (≥ 1) and the held-out task count (≥ `min_eval_tasks`).
    pub fn validate(&self, min_eval_tasks: usize) -> Result<()> {
        if self.checkpoint_every == 0 {
            return Err(Error::invalid("checkpoint_every", 0, "≥ 1"));
        }
        if self.eval_tasks < min_eval_tasks {
            return Err(Error::invalid(
                "eval_tasks",
                self.eval_tasks,
                format!("≥ {min_eval_tasks}"),
            ));
        }
        Ok(())
    }
}

/// Implements [`RunSpec::schedule`] and [`RunSpec::iterations_mut`] inside a `RunSpec`
/// impl for a run config with `seed`, `iterations`, `checkpoint_every` and `eval_tasks`
/// fields.
macro_rules! schedule_from_fields {
    () => {
        fn schedule(&self) -> $crate::train::Schedule {
            $crate::train::Schedule {
                seed: self.seed,
                iterations: self.iterations,
                checkpoint_every: self.checkpoint_every,
                eval_tasks: self.eval_tasks,
            }
        }

        fn iterations_mut(&mut self) -> &mut usize {
            &mut self.iterations
        }
    };
}
pub(crate) use schedule_from_fields;

/// The run config of any binary, told apart by its `algo` key.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyRun {
    /// `promp` or `pg-maml`.
    Pg(super::pg::PgRun),
    /// `meta-explore`.
    Explore(super::explore::ExploreRun),
    /// `es-maml`.
    EsMaml(super::es_maml::EsMamlRun),
    /// `es-ddpg`.
    EsDdpg(super::es_ddpg::EsDdpgRun),
    /// `sine-maml`.
    SineMaml(super::sine_maml::SineMamlRun),
}

impl AnyRun {
    /// Reads a `config.toml`, choosing the config type by its `algo` key. Runs written
    /// before the key existed are recognised by their `method` key (meta-explore).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| Error::ConfigFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let algo = table.get("algo").and_then(|v| v.as_str());
        Ok(match algo {
            Some("promp" | "pg-maml") => AnyRun::Pg(load_toml(path)?),
            Some("meta-explore") => AnyRun::Explore(load_toml(path)?),
            None if table.contains_key("method") => AnyRun::Explore(load_toml(path)?),
            Some("es-maml") => AnyRun::EsMaml(load_toml(path)?),
            Some("es-ddpg") => AnyRun::EsDdpg(load_toml(path)?),
            Some("sine-maml") => AnyRun::SineMaml(load_toml(path)?),
            other => {
                return Err(Error::invalid(
                    "algo",
                    other.unwrap_or("(missing)"),
                    "promp, pg-maml, meta-explore, es-maml, es-ddpg, sine-maml",
                ))
            }
        })
    }
}

/// Trains (or resumes) the run `cfg` describes in `dir`, evaluates it on held-out tasks,
/// writes `trajectories.csv` (or `eval.csv` for supervised tasks) and `summary.json`, and
/// returns the summary.
pub fn train_run<C: RunSpec>(
    cfg: &C,
    registry: &Registry,
    dir: &RunDir,
    kind: DeviceKind,
    resume: bool,
    quiet: bool,
) -> Result<Value> {
    cfg.validate(registry)?;
    let device = kind.device()?.autodiff();
    let mut learner = cfg.build(registry, &device)?;
    // In an MPI job every rank runs the loop; rank 0 alone writes the run directory.
    let cluster = crate::dist::Cluster::current();
    let out = if cluster.is_root() {
        dir.clone()
    } else {
        RunDir::scratch(cluster.rank())?
    };
    let lc = LoopConfig {
        iterations: cfg.schedule().iterations,
        checkpoint_every: cfg.schedule().checkpoint_every,
        quiet: quiet || !cluster.is_root(),
    };
    let ran = resume_and_run(
        learner.as_mut(),
        dir,
        &out,
        resume,
        &to_toml(cfg)?,
        &lc,
        cfg.algo(),
    );
    let done = ran.and_then(|(res, wall)| {
        let ev = learner.evaluate(cfg.schedule().eval_tasks)?;
        write_evaluation_files(&out, &ev)?;
        let summary = summary(cfg, kind, &res, wall, &ev);
        out.write_summary(&summary)?;
        Ok(summary)
    });
    out.remove_if_scratch();
    dir.remove_if_scratch();
    done
}

/// `metarl eval RUN_DIR`: rebuilds the run's learner from its `config.toml` and last
/// checkpoint, evaluates it on `n` held-out tasks (default: the run's `eval_tasks`) and
/// writes `eval.json` and `trajectories.csv`. Supervised runs are refused (their MSE curve
/// is part of `summary.json`).
pub fn eval_run(
    registry: &Registry,
    dir: &RunDir,
    n: Option<usize>,
    kind: DeviceKind,
) -> Result<Evaluation> {
    match AnyRun::load(&dir.config_path())? {
        AnyRun::Pg(c) => eval_with(&c, registry, dir, n, kind),
        AnyRun::Explore(c) => eval_with(&c, registry, dir, n, kind),
        AnyRun::EsMaml(c) if !c.supervised() => eval_with(&c, registry, dir, n, kind),
        AnyRun::EsDdpg(c) => eval_with(&c, registry, dir, n, kind),
        AnyRun::EsMaml(_) | AnyRun::SineMaml(_) => Err(Error::RunDir {
            path: dir.path().to_path_buf(),
            message: "is a supervised sine run, not a promp, pg-maml or meta-explore run (or es-maml on an RL family); `metarl eval` adapts policies, and a sine run's held-out MSE curve is in its summary.json".into(),
        }),
    }
}

fn eval_with<C: RunSpec>(
    cfg: &C,
    registry: &Registry,
    dir: &RunDir,
    n: Option<usize>,
    kind: DeviceKind,
) -> Result<Evaluation> {
    let mut learner = cfg.build(registry, &kind.device()?.autodiff())?;
    let ck = Checkpoint::load(&dir.checkpoint_path())?;
    learner.restore(&ck)?;
    let ev = learner.evaluate(n.unwrap_or(cfg.schedule().eval_tasks))?;
    if let Some(csv) = &ev.trajectories_csv {
        dir.write_file("trajectories.csv", csv.as_bytes())?;
    }
    let mut j = ev.to_json();
    if let Some(map) = j.as_object_mut() {
        map.insert("iteration".into(), json!(ck.iteration));
        if let Some(more) = cfg.variant().as_object() {
            map.extend(more.clone());
        }
    }
    dir.write_json("eval.json", &j)?;
    Ok(ev)
}

/// `trajectories.csv` for a return evaluation, `eval.csv` (step, mse, ci95) for an MSE
/// curve.
fn write_evaluation_files(dir: &RunDir, ev: &Evaluation) -> Result<()> {
    if let Some(csv) = &ev.trajectories_csv {
        dir.write_file("trajectories.csv", csv.as_bytes())?;
    }
    if let Scores::Mse { mse, ci95 } = &ev.scores {
        let mut csv = String::from("step,mse,ci95\n");
        for (s, (m, c)) in mse.iter().zip(ci95).enumerate() {
            csv.push_str(&format!("{s},{m},{c}\n"));
        }
        dir.write_file("eval.csv", csv.as_bytes())?;
    }
    Ok(())
}

/// The `summary.json` of every binary (README, "Run contract"): `algo`, `env`, `seed`,
/// `iterations`, `device`, `threads`, `ranks` (MPI processes) and the variant settings at the top level; `train`
/// (wall and step seconds, iterations per second, environment steps and steps per second
/// of step time); `final` (the last iteration's `pre_return` and `post_return`, a list
/// with one entry per inner step, or `pre_mse` and `post_mse` for supervised tasks);
/// `eval` ([`Evaluation::to_json`]).
pub fn summary<C: RunSpec>(
    cfg: &C,
    kind: DeviceKind,
    res: &LoopResult,
    wall: f64,
    ev: &Evaluation,
) -> Value {
    let last = &res.last;
    let fin = match last.get("pre_return") {
        Some(pre) => {
            let mut f = json!({ "pre_return": pre, "post_return": last.numbered("post_return") });
            if let Some(s) = last.get("post_success") {
                f["post_success"] = json!(s);
            }
            f
        }
        None => json!({ "pre_mse": last.get("pre_mse"), "post_mse": last.numbered("post_mse") }),
    };
    let mut s = json!({
        "algo": cfg.algo(),
        "env": cfg.env_name(),
        "seed": cfg.schedule().seed,
        "iterations": cfg.schedule().iterations,
        "device": kind.name(),
        "threads": rayon::current_num_threads(),
        "ranks": crate::dist::Cluster::current().size(),
        "communication": {
            "rank0_bytes_sent": crate::dist::traffic().bytes_sent,
            "rank0_seconds": crate::dist::traffic().seconds,
        },
        "train": {
            "wall_seconds": wall,
            "step_seconds": res.step_seconds,
            "iterations_run": res.iterations_run,
            "seconds_per_iteration": res.seconds_per_iteration(),
            "meta_iterations_per_second": res.iterations_per_second(),
            "env_steps": res.env_steps,
            "env_steps_per_second": res.env_steps_per(res.step_seconds),
        },
        "final": fin,
        "eval": ev.to_json(),
    });
    if let (Some(map), Some(more)) = (s.as_object_mut(), cfg.variant().as_object()) {
        for (k, v) in more {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    s
}
