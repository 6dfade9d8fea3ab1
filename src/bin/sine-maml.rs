//! `sine-maml`: supervised MAML on sine regression, exact second order (`--hessian full`)
//! or first order (`--hessian none`).

use std::process::ExitCode;

use clap::Parser;
use metarl::algo::sine_maml::Hessian;
use metarl::cli::{main_with, open_or_create, parse_args, print_result, CommonArgs};
use metarl::env::Registry;
use metarl::nn::Activation;
use metarl::train::sine_maml::SineMamlRun;
use metarl::train::{load_toml, train_run, RunSpec};
use metarl::{Error, Result};

#[derive(Parser, Debug)]
#[command(
    name = "sine-maml",
    version,
    about = "MAML on sine regression (Finn et al. 2017)"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Inner gradient steps during meta-training.
    #[arg(long)]
    inner_steps: Option<usize>,
    /// Support (and query) points K per task.
    #[arg(long)]
    shots: Option<usize>,
    /// Inner step size α.
    #[arg(long, allow_negative_numbers = true)]
    inner_lr: Option<f64>,
    /// Outer (Adam) step size β.
    #[arg(long, allow_negative_numbers = true)]
    meta_lr: Option<f64>,
    /// Tasks per meta-batch.
    #[arg(long)]
    meta_batch: Option<usize>,
    /// full (exact second order) or none (first-order MAML).
    #[arg(long, value_enum)]
    hessian: Option<Hessian>,
    /// Hidden activation.
    #[arg(long, value_enum)]
    activation: Option<Activation>,
}

fn config(a: &Args) -> Result<SineMamlRun> {
    let mut c: SineMamlRun = match &a.common.config {
        Some(p) => load_toml(p)?,
        None => SineMamlRun::default(),
    };
    if let Some(env) = &a.common.env {
        if env != "sine" {
            return Err(Error::invalid("env", env, "sine"));
        }
    }
    c.seed = a.common.seed.unwrap_or(c.seed);
    c.iterations = a.common.iterations.unwrap_or(c.iterations);
    c.eval_tasks = a.common.eval_tasks.unwrap_or(c.eval_tasks);
    let m = &mut c.maml;
    m.inner_steps = a.inner_steps.unwrap_or(m.inner_steps);
    m.shots = a.shots.unwrap_or(m.shots);
    m.inner_lr = a.inner_lr.unwrap_or(m.inner_lr);
    m.meta_lr = a.meta_lr.unwrap_or(m.meta_lr);
    m.meta_batch = a.meta_batch.unwrap_or(m.meta_batch);
    m.hessian = a.hessian.unwrap_or(m.hessian);
    m.activation = a.activation.unwrap_or(m.activation);
    RunSpec::validate(&c, &Registry::builtin())?;
    Ok(c)
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Args = parse_args();
    main_with(|| {
        let kind = args.common.device_kind()?;
        let (cfg, dir, resume) = open_or_create(&args.common, "sine-maml", || config(&args))?;
        let s = train_run(
            &cfg,
            &Registry::builtin(),
            &dir,
            kind,
            resume,
            args.common.quiet,
        )?;
        print_result(&dir, None, &s);
        Ok(())
    })
}
