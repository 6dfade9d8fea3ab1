//! `es-ddpg`: meta-RL with an ES-learned distribution of exploration parameters and DDPG
//! adaptation (Shen et al.).

use std::process::ExitCode;

use clap::Parser;
use metarl::cli::{main_with, open_or_create, parse_args, print_result, CommonArgs};
use metarl::ddpg::Optimizer;
use metarl::env::Registry;
use metarl::train::es_ddpg::EsDdpgRun;
use metarl::train::{load_toml, train_run, RunSpec};
use metarl::Result;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "es-ddpg",
    version,
    about = "ES-learned distribution of exploration parameters with DDPG adaptation"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Workers M per meta-iteration.
    #[arg(long)]
    workers: Option<usize>,
    /// Actor draws K per worker (one exploration episode each).
    #[arg(long)]
    draws: Option<usize>,
    /// DDPG updates in each adaptation.
    #[arg(long)]
    ddpg_updates: Option<usize>,
    /// Learned or fixed σ of the search distributions.
    #[arg(long, value_enum)]
    sigma: Option<Sigma>,
    /// Episode length, when not the family's (the paper: 200 on MuJoCo).
    #[arg(long)]
    horizon: Option<usize>,
    /// Optimizer of μ and σ (the paper: sgd).
    #[arg(long, value_enum)]
    meta_optimizer: Option<Optimizer>,
}

/// `--sigma`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Sigma {
    Learned,
    Fixed,
}

fn config(a: &Args) -> Result<EsDdpgRun> {
    let mut c: EsDdpgRun = match &a.common.config {
        Some(p) => load_toml(p)?,
        None => EsDdpgRun::default(),
    };
    c.env = a.common.env.clone().unwrap_or(c.env);
    c.seed = a.common.seed.unwrap_or(c.seed);
    c.iterations = a.common.iterations.unwrap_or(c.iterations);
    c.eval_tasks = a.common.eval_tasks.unwrap_or(c.eval_tasks);
    c.horizon = a.horizon.or(c.horizon);
    let e = &mut c.es_ddpg;
    e.workers = a.workers.unwrap_or(e.workers);
    e.draws = a.draws.unwrap_or(e.draws);
    e.ddpg.updates = a.ddpg_updates.unwrap_or(e.ddpg.updates);
    e.learn_sigma = a
        .sigma
        .map(|s| s == Sigma::Learned)
        .unwrap_or(e.learn_sigma);
    e.meta_optimizer = a.meta_optimizer.unwrap_or(e.meta_optimizer);
    RunSpec::validate(&c, &Registry::builtin())?;
    Ok(c)
}

fn main() -> ExitCode {
    let args: Args = parse_args();
    main_with(|| {
        metarl::dist::run_job(args.common.mpi, metarl::cli::exit_status, || {
            let kind = args.common.device_kind()?;
            let (cfg, dir, resume) = open_or_create(&args.common, "es-ddpg", || config(&args))?;
            let registry = Registry::builtin();
            let s = train_run(&cfg, &registry, &dir, kind, resume, args.common.quiet)?;
            print_result(&dir, None, &s);
            Ok(())
        })
    })
}
