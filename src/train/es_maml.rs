//! Driver of the `es-maml` binary: run config, training through the harness, held-out
//! evaluation and `summary.json`.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{config::to_toml, resume_and_run, LoopConfig, RunDir};
use crate::algo::es_maml::{EsMaml, EsMamlConfig};
use crate::algo::es_sine::{EsSine, EsSineConfig};
use crate::device::DeviceKind;
use crate::env;
use crate::error::{Error, Result};
use crate::rng::stream;

/// Everything an ES-MAML run needs; written to `config.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EsMamlRun {
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
    /// The algorithm (RL tasks).
    pub es: EsMamlConfig,
    /// The algorithm on `env = "sine"` (supervised, exact gradient adaptation).
    pub sine: EsSineConfig,
}

impl Default for EsMamlRun {
    fn default() -> Self {
        Self {
            env: "nav2d".into(),
            seed: 1,
            iterations: 200,
            checkpoint_every: 20,
            eval_tasks: 50,
            es: EsMamlConfig::default(),
            sine: EsSineConfig::default(),
        }
    }
}

impl EsMamlRun {
    /// Validates every field once.
    pub fn validate(&self) -> Result<()> {
        if self.env == "sine" {
            return self.sine.validate();
        }
        let envf = env::make(&self.env)?;
        if self.checkpoint_every == 0 {
            return Err(Error::invalid("checkpoint_every", 0, "≥ 1"));
        }
        if self.eval_tasks == 0 {
            return Err(Error::invalid("eval_tasks", 0, "≥ 1"));
        }
        self.es.validate_for(envf.as_ref())
    }
}

/// Trains (or resumes) a run in `dir`, evaluates it and writes `summary.json`.
pub fn train(
    cfg: &EsMamlRun,
    dir: &RunDir,
    kind: DeviceKind,
    resume: bool,
    quiet: bool,
) -> Result<serde_json::Value> {
    cfg.validate()?;
    if cfg.env == "sine" {
        return train_sine(cfg, dir, kind, resume, quiet);
    }
    // The optimizer steps autodiff parameters; ES itself never calls backward().
    let device = kind.device()?.autodiff();
    let envf = env::make(&cfg.env)?;
    let mut learner = EsMaml::new(
        cfg.es.clone(),
        envf,
        cfg.seed,
        &mut stream(cfg.seed, "policy"),
        &mut stream(cfg.seed, "tasks"),
        &device,
    );
    let lc = LoopConfig {
        iterations: cfg.iterations,
        checkpoint_every: cfg.checkpoint_every,
        quiet,
    };
    let (res, wall) = resume_and_run(&mut learner, dir, resume, &to_toml(cfg)?, &lc, "es-maml")?;
    let ev = learner.evaluate(cfg.eval_tasks);
    dir.write_file("trajectories.csv", ev.trajectories_csv.as_bytes())?;
    let (pre, post, success) = (ev.pre_return, ev.post_return, ev.success_rate);
    let summary = json!({
        "algo": "es-maml",
        "env": cfg.env,
        "seed": cfg.seed,
        "iterations": cfg.iterations,
        "device": kind.name(),
        "order": cfg.es.order,
        "operator": cfg.es.operator,
        "estimator": cfg.es.estimator,
        "policy": cfg.es.policy,
        "threads": rayon::current_num_threads(),
        "train": {
            "wall_seconds": wall,
            "seconds_per_iteration": res.seconds_per_iteration(),
            "meta_iterations_per_second": res.iterations_per_second(),
            "env_steps": res.env_steps,
            "env_steps_per_second": res.env_steps_per(res.step_seconds),
        },
        "final": { "pre_return": res.last.get("pre_return"), "post_return": [res.last.get("post_return_1")] },
        "eval": { "tasks": cfg.eval_tasks, "pre_return": pre, "post_return": [post], "success_rate": success },
    });
    dir.write_summary(&summary)?;
    Ok(summary)
}

/// ES-MAML on sine regression: trains, then evaluates with Finn's protocol (600 held-out
/// tasks, MSE after 0…10 gradient steps) as `sine-maml` does.
fn train_sine(
    cfg: &EsMamlRun,
    dir: &RunDir,
    kind: DeviceKind,
    resume: bool,
    quiet: bool,
) -> Result<serde_json::Value> {
    use burn::module::Module;
    let device = kind.device()?.autodiff();
    let mut learner = EsSine::new(
        cfg.sine.clone(),
        cfg.seed,
        &mut stream(cfg.seed, "policy"),
        &device,
    );
    let lc = LoopConfig {
        iterations: cfg.iterations,
        checkpoint_every: cfg.checkpoint_every,
        quiet,
    };
    let (res, wall) = resume_and_run(&mut learner, dir, resume, &to_toml(cfg)?, &lc, "es-maml")?;
    let plain = learner.model.valid();
    let dev = kind.device()?;
    let dist = crate::env::sine::SineDistribution::default();
    let tasks = dist.held_out(cfg.eval_tasks.max(2));
    let mut rng = stream(crate::env::HELD_OUT_SEED, "sine-held-out-points");
    let batch = crate::supervised::SineBatch::sample(&dist, &tasks, cfg.sine.shots, &mut rng, &dev);
    let curve = crate::supervised::mse_curve(
        &crate::nn::functional::MlpParams::from_mlp(&plain),
        &batch,
        cfg.sine.alpha,
        10,
    );
    let (mse, ci95) = super::sine_maml::mean_ci95(&curve);
    let summary = json!({
        "algo": "es-maml",
        "env": "sine",
        "seed": cfg.seed,
        "iterations": cfg.iterations,
        "device": kind.name(),
        "order": cfg.sine.order,
        "operator": "gradient",
        "train": {
            "wall_seconds": wall,
            "meta_iterations_per_second": res.iterations_per_second(),
            "env_steps": 0,
        },
        "final": { "post_mse": res.last.get("post_mse") },
        "eval": { "tasks": tasks.len(), "mse": mse, "ci95": ci95 },
    });
    dir.write_summary(&summary)?;
    Ok(summary)
}

crate::cli::run_config_from_fields!(EsMamlRun);
