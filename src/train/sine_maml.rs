//! Driver of the `sine-maml` binary: the run config, training through the harness, the
//! Finn evaluation protocol (600 held-out tasks, query MSE after 0…10 inner steps with
//! 95% confidence intervals) and `summary.json`.

use burn::module::Module;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{config::to_toml, resume_and_run, LoopConfig, RunDir};
use crate::algo::sine_maml::{mse_curve, SineBatch, SineMaml, SineMamlConfig};
use crate::device::DeviceKind;
use crate::env::sine::SineDistribution;
use crate::env::HELD_OUT_SEED;
use crate::error::{Error, Result};
use crate::nn::functional::MlpParams;
use crate::rng::stream;

/// Everything a sine-MAML run needs; written to `config.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SineMamlRun {
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
            seed: 0,
            iterations: 10_000,
            checkpoint_every: 1_000,
            eval_tasks: 600,
            eval_steps: 10,
            maml: SineMamlConfig::default(),
        }
    }
}

impl SineMamlRun {
    /// Validates every field once.
    pub fn validate(&self) -> Result<()> {
        if self.checkpoint_every == 0 {
            return Err(Error::invalid("checkpoint_every", 0, "≥ 1"));
        }
        if self.eval_tasks < 2 {
            return Err(Error::invalid(
                "eval_tasks",
                self.eval_tasks,
                "≥ 2 (a confidence interval needs two)",
            ));
        }
        self.maml.validate()
    }
}

/// Mean and 95% confidence half-width (1.96·std/√n, Finn's `test()`) of each row.
pub fn mean_ci95(rows: &[Vec<f32>]) -> (Vec<f64>, Vec<f64>) {
    rows.iter()
        .map(|r| {
            let n = r.len() as f64;
            let mean = r.iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = r.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
            (mean, 1.96 * var.sqrt() / n.sqrt())
        })
        .unzip()
}

/// Query MSE after 0…`steps` inner steps on the first `n` held-out tasks (fixed points
/// from a stream independent of the run's seed), with 95% confidence half-widths.
pub fn evaluate(learner: &SineMaml, n: usize, steps: usize) -> (Vec<f64>, Vec<f64>) {
    let plain = learner.model.valid();
    let device = plain.layers[0].weight.val().device();
    let dist = SineDistribution::default();
    let tasks = dist.held_out(n);
    let mut rng = stream(HELD_OUT_SEED, "sine-held-out-points");
    let batch = SineBatch::sample(&dist, &tasks, learner.cfg.shots, &mut rng, &device);
    mean_ci95(&mse_curve(
        &MlpParams::from_mlp(&plain),
        &batch,
        learner.cfg.inner_lr,
        steps,
    ))
}

/// Trains (or resumes) a run in `dir` and writes `eval.csv` and `summary.json`.
pub fn train(
    cfg: &SineMamlRun,
    dir: &RunDir,
    kind: DeviceKind,
    resume: bool,
    quiet: bool,
) -> Result<serde_json::Value> {
    cfg.validate()?;
    let device = kind.device()?.autodiff();
    let mut learner = SineMaml::new(
        cfg.maml.clone(),
        &mut stream(cfg.seed, "policy"),
        stream(cfg.seed, "tasks"),
        &device,
    );
    let lc = LoopConfig {
        iterations: cfg.iterations,
        checkpoint_every: cfg.checkpoint_every,
        quiet,
    };
    let (res, train_seconds) =
        resume_and_run(&mut learner, dir, resume, &to_toml(cfg)?, &lc, "sine-maml")?;
    let (mse, ci95) = evaluate(&learner, cfg.eval_tasks, cfg.eval_steps);
    let mut csv = String::from("step,mse,ci95\n");
    for (s, (m, c)) in mse.iter().zip(&ci95).enumerate() {
        csv.push_str(&format!("{s},{m},{c}\n"));
    }
    dir.write_file("eval.csv", csv.as_bytes())?;
    let summary = json!({
        "algo": "sine-maml",
        "env": "sine",
        "seed": cfg.seed,
        "iterations": cfg.iterations,
        "device": kind.name(),
        "hessian": cfg.maml.hessian,
        "inner_steps": cfg.maml.inner_steps,
        "shots": cfg.maml.shots,
        "threads": rayon::current_num_threads(),
        "train": {
            "wall_seconds": train_seconds,
            "step_seconds": res.step_seconds,
            "iterations_run": res.iterations_run,
            "meta_iterations_per_second": res.iterations_per_second(),
            "env_steps": 0,
        },
        "final": { "pre_mse": res.last.get("pre_mse"), "post_mse": [res.last.get("post_mse")] },
        "eval": { "tasks": cfg.eval_tasks, "mse": mse, "ci95": ci95 },
    });
    dir.write_summary(&summary)?;
    Ok(summary)
}

impl crate::cli::RunConfig for SineMamlRun {
    fn env_name(&self) -> &str {
        "sine"
    }

    fn seed(&self) -> u64 {
        self.seed
    }

    fn set_iterations(&mut self, n: usize) {
        self.iterations = n;
    }
}
