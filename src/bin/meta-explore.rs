//! `meta-explore`: meta-exploration — MAME (a separate exploration policy, a
//! latent-conditioned exploitation policy and a self-supervised z-update; Gurumurthy et
//! al. 2019) or MAESN (latent exploration; Gupta et al. 2018). Trains on sparse
//! point-corners by default.

use std::process::ExitCode;

use clap::Parser;
use metarl::cli::{main_with, open_or_create, parse_args, print_result, CommonArgs};
use metarl::env::Registry;
use metarl::error::{Error, Result};
use metarl::train::explore::{Ablation, ExploreRun, Method};
use metarl::train::{load_toml, train_run, RunSpec};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "meta-explore",
    version,
    about = "Meta-exploration: MAME (separate exploration policy, latent exploitation policy, self-supervised z) and MAESN"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Method.
    #[arg(long, value_enum)]
    method: Option<Method>,
    /// MAME ablation (paper §5.3): vpg (policy-gradient inner loop), reward (reward
    /// self-supervision), dice (vanilla DiCE for φ), emaml (E-MAML-style φ update).
    #[arg(long, value_enum)]
    ablation: Option<Ablation>,
    /// Tasks per meta-batch.
    #[arg(long)]
    tasks: Option<usize>,
    /// Rollouts per task (exploration and exploitation each).
    #[arg(long)]
    rollouts: Option<usize>,
    /// Inner step size (MAME: α on z; MAESN: initial latent step sizes).
    #[arg(long, allow_negative_numbers = true)]
    inner_lr: Option<f64>,
    /// Latent size.
    #[arg(long)]
    latent_dim: Option<usize>,
}

impl Args {
    fn config(&self) -> Result<ExploreRun> {
        let c = &self.common;
        let mut cfg: ExploreRun = match &c.config {
            Some(p) => load_toml(p)?,
            None => ExploreRun::default(),
        };
        cfg.method = self.method.unwrap_or(cfg.method);
        cfg.env = c.env.clone().unwrap_or(cfg.env);
        cfg.seed = c.seed.unwrap_or(cfg.seed);
        cfg.iterations = c.iterations.unwrap_or(cfg.iterations);
        cfg.eval_tasks = c.eval_tasks.unwrap_or(cfg.eval_tasks);
        if let Some(a) = self.ablation {
            if cfg.method != Method::Mame && a != Ablation::None {
                return Err(Error::invalid(
                    "ablation",
                    format!("{a:?}").to_lowercase(),
                    "none with --method maesn",
                ));
            }
            a.apply(&mut cfg.mame);
        }
        let (mame, maesn) = (&mut cfg.mame, &mut cfg.maesn);
        if let Some(v) = self.tasks {
            mame.tasks = v;
            maesn.tasks = v;
        }
        if let Some(v) = self.rollouts {
            mame.rollouts = v;
            maesn.rollouts = v;
        }
        if let Some(v) = self.inner_lr {
            mame.inner_lr = v;
            maesn.inner_lr = v;
        }
        if let Some(v) = self.latent_dim {
            mame.latent_dim = v;
            maesn.latent_dim = v;
        }
        RunSpec::validate(&cfg, &Registry::builtin())?;
        Ok(cfg)
    }
}

fn run(a: &Args) -> Result<()> {
    let kind = a.common.device_kind()?;
    let (cfg, dir, resume) = open_or_create(&a.common, "meta-explore", || a.config())?;
    let s = train_run(
        &cfg,
        &Registry::builtin(),
        &dir,
        kind,
        resume,
        a.common.quiet,
    )?;
    print_result(&dir, Some(cfg.method_name()), &s);
    Ok(())
}

fn main() -> ExitCode {
    let a: Args = parse_args();
    main_with(|| run(&a))
}
