//! The training harness shared by every binary: configs, the run directory, the
//! iteration loop with its cadence, progress reporting, `progress.csv`, `summary.json` and
//! atomic checkpoints with exact resume.
//!
//! An algorithm implements [`MetaLearner`] (defined below this layer, in
//! [`crate::learner`]): `step()` does one meta-iteration and returns its [`Metrics`]; it
//! never touches files or the terminal. [`run`] owns those, and [`train_run`] is the one
//! driver every binary goes through: build the learner a [`RunSpec`] names, run or resume
//! it, evaluate it on held-out tasks and write `summary.json` ([`summary`]).

use std::path::Path;
use std::time::Instant;

use crate::error::{Error, Result};

pub mod config;
pub mod driver;
pub mod es_ddpg;
pub mod es_maml;
pub mod explore;
pub mod pg;
pub mod progress;
pub mod reporter;
pub mod run_dir;
pub mod sine_maml;

pub use crate::checkpoint::{
    load_module, load_optimizer, module_bytes, optimizer_bytes, Checkpoint, RngState,
};
pub use crate::learner::{MetaLearner, Metrics, Phases};
pub use config::{load_toml, to_toml};
pub use driver::{eval_run, summary, train_run, AnyRun, RunSpec, Schedule};
pub use progress::ProgressCsv;
pub use reporter::Reporter;
pub use run_dir::RunDir;

/// Cadence and limits of a training run.
#[derive(Clone, Debug, PartialEq)]
pub struct LoopConfig {
    /// Total meta-iterations.
    pub iterations: usize,
    /// Write a checkpoint every this many iterations (and at the end).
    pub checkpoint_every: usize,
    /// Suppress the progress bar and log lines.
    pub quiet: bool,
}

/// What [`run`] measured over the iterations it executed.
#[derive(Clone, Debug, PartialEq)]
pub struct LoopResult {
    /// Metrics of the last iteration.
    pub last: Metrics,
    /// Iterations executed by this call (fewer than requested when resuming).
    pub iterations_run: usize,
    /// Wall-clock seconds spent in `step()` by this call.
    pub step_seconds: f64,
    /// Total environment steps, including those before a resume.
    pub env_steps: f64,
    /// Environment steps taken by this call's iterations.
    pub env_steps_run: f64,
}

impl LoopResult {
    /// `step_seconds / iterations_run`; `None` when this call ran no iteration.
    pub fn seconds_per_iteration(&self) -> Option<f64> {
        (self.iterations_run > 0).then(|| self.step_seconds / self.iterations_run as f64)
    }

    /// `iterations_run / step_seconds`; `None` when this call ran no iteration.
    pub fn iterations_per_second(&self) -> Option<f64> {
        (self.iterations_run > 0).then(|| self.iterations_run as f64 / self.step_seconds.max(1e-12))
    }

    /// This call's environment steps per second of `seconds` (its step time, or its wall
    /// time); `None` when it ran no iteration. Steps taken before a resume are not
    /// counted, since their time is not in `seconds`.
    pub fn env_steps_per(&self, seconds: f64) -> Option<f64> {
        (self.iterations_run > 0).then(|| self.env_steps_run / seconds.max(1e-12))
    }
}

/// Runs `algo` from its current iteration to `cfg.iterations`, appending one row per
/// iteration to `progress.csv`, checkpointing atomically, and stopping with
/// [`Error::NonFinite`] (after the last good checkpoint is on disk) when a metric or
/// parameter stops being finite. `start` is the first iteration to run (0, or the
/// checkpoint's iteration when resuming).
pub fn run<T: MetaLearner + ?Sized>(
    algo: &mut T,
    run_dir: &RunDir,
    cfg: &LoopConfig,
    start: usize,
    label: &str,
) -> Result<LoopResult> {
    let mut csv = ProgressCsv::open(&run_dir.progress_path(), start)?;
    let mut reporter = Reporter::new(label, start, cfg.iterations, cfg.quiet);
    let before = csv.column_sum("env_steps");
    let mut env_steps = before;
    let (mut step_seconds, mut last) = (0.0, Metrics::new());
    let t0 = Instant::now();
    for it in start..cfg.iterations {
        let ts = Instant::now();
        let mut phases = Phases::new();
        let mut m = algo.step(it, &mut phases)?;
        step_seconds += ts.elapsed().as_secs_f64();
        m.0.extend(phases.finish().0);
        if let Some(name) = m.first_non_finite() {
            return Err(Error::NonFinite {
                iteration: it,
                quantity: name.to_string(),
            });
        }
        if !algo.parameters_finite() {
            return Err(Error::NonFinite {
                iteration: it,
                quantity: "parameters".into(),
            });
        }
        env_steps += m.get("env_steps").unwrap_or(0.0);
        let mut row = Metrics::new().with("iteration", it as f64);
        row.0.append(&mut m.0);
        row.push("total_env_steps", env_steps);
        row.push("wall_seconds", t0.elapsed().as_secs_f64());
        csv.append(&row)?;
        reporter.update(it, &row);
        let done = it + 1;
        if done % cfg.checkpoint_every.max(1) == 0 || done == cfg.iterations {
            let mut ck = algo.checkpoint()?;
            ck.iteration = done;
            ck.save(&run_dir.checkpoint_path())?;
        }
        last = row;
    }
    reporter.finish();
    Ok(LoopResult {
        last,
        iterations_run: cfg.iterations.saturating_sub(start),
        step_seconds,
        env_steps,
        env_steps_run: env_steps - before,
    })
}

/// Prepares a run: restores `learner` from the directory's checkpoint when resuming, or
/// writes `config.toml` for a new run. Returns the first iteration to run.
fn resume_or_init<T: MetaLearner + ?Sized>(
    learner: &mut T,
    dir: &RunDir,
    out: &RunDir,
    resume: bool,
    config_toml: &str,
) -> Result<usize> {
    if resume {
        let ck = Checkpoint::load(&dir.checkpoint_path())?;
        learner.restore(&ck)?;
        Ok(ck.iteration)
    } else {
        out.write_config(config_toml)?;
        Ok(0)
    }
}

/// The drivers' common path: restore `learner` from `dir`'s checkpoint when resuming (or
/// write `config.toml` for a new run), then [`run`] to `cfg.iterations`, writing into
/// `out` (`dir` itself, or an MPI rank's scratch directory). Also returns the wall-clock
/// seconds the loop took.
pub fn resume_and_run<T: MetaLearner + ?Sized>(
    learner: &mut T,
    dir: &RunDir,
    out: &RunDir,
    resume: bool,
    config_toml: &str,
    cfg: &LoopConfig,
    label: &str,
) -> Result<(LoopResult, f64)> {
    let start = resume_or_init(learner, dir, out, resume, config_toml)?;
    let t0 = Instant::now();
    let res = run(learner, out, cfg, start, label)?;
    Ok((res, t0.elapsed().as_secs_f64()))
}

/// The git commit of the working directory, when it can be read.
pub fn git_commit(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
