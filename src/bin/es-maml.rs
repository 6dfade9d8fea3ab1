//! `es-maml`: zero-order and first-order ES-MAML (Song et al. 2020).

use std::process::ExitCode;

use clap::Parser;
use metarl::algo::es_maml::{Operator, Order, PolicyKind, QueryCount};
use metarl::cli::{main_with, open_or_create, parse_args, print_result, CommonArgs};
use metarl::env::Registry;
use metarl::es::EsEstimator;
use metarl::supervised::Hessian;
use metarl::train::es_maml::EsMamlRun;
use metarl::train::{load_toml, train_run, RunSpec};
use metarl::{Error, Result};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "es-maml",
    version,
    about = "ES-MAML: evolution-strategies MAML"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// zero (Algorithm 2/3) or first (Algorithm 5).
    #[arg(long, value_enum)]
    order: Option<Order>,
    /// Adaptation operator; `gradient` (the exact step) is the one operator on `--env sine`.
    #[arg(long, value_enum)]
    operator: Option<OperatorFlag>,
    /// Outer ES estimator.
    #[arg(long, value_enum)]
    estimator: Option<EsEstimator>,
    /// Policy.
    #[arg(long, value_enum)]
    policy: Option<PolicyKind>,
    /// First order: full (ES Hessian) or none.
    #[arg(long, value_enum)]
    hessian: Option<Hessian>,
    /// Adaptation queries K.
    #[arg(long)]
    queries: Option<usize>,
    /// What K counts: directions (the code's, K + 1 evaluations with forward-FD and hill
    /// climbing) or evaluations (the paper's K in all).
    #[arg(long, value_enum)]
    query_count: Option<QueryCount>,
    /// Evaluations of f(θ) averaged by the outer forward-FD estimator (paper: 150).
    #[arg(long)]
    current_evals: Option<usize>,
    /// Outer perturbations n (first order: tasks per iteration).
    #[arg(long)]
    perturbations: Option<usize>,
    /// Zero order: training tasks each perturbation is adapted and scored on.
    #[arg(long)]
    task_batch: Option<usize>,
    /// Episode length, when not the family's (ES-MAML A.7: 200).
    #[arg(long)]
    horizon: Option<usize>,
    /// Hidden layer widths of the MLP policy, e.g. `32` (the paper's "H") or `32,32`
    /// ("HH", the default).
    #[arg(long, value_delimiter = ',')]
    hidden: Option<Vec<usize>>,
}

/// `--operator`: the RL operators, and the exact gradient step of the sine family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OperatorFlag {
    EsGrad,
    HillClimb,
    Dpp,
    Gradient,
}

/// The RL operator a flag names; `gradient` is refused on an RL family.
fn rl_operator(flag: OperatorFlag) -> Result<Operator> {
    Ok(match flag {
        OperatorFlag::EsGrad => Operator::EsGrad,
        OperatorFlag::HillClimb => Operator::HillClimb,
        OperatorFlag::Dpp => Operator::Dpp,
        OperatorFlag::Gradient => {
            return Err(Error::invalid(
                "operator",
                "gradient",
                "es-grad, hill-climb, dpp (gradient is the sine family's operator)",
            ))
        }
    })
}

fn config(a: &Args) -> Result<EsMamlRun> {
    let mut c: EsMamlRun = match &a.common.config {
        Some(p) => load_toml(p)?,
        None => EsMamlRun::default(),
    };
    c.env = a.common.env.clone().unwrap_or(c.env);
    c.seed = a.common.seed.unwrap_or(c.seed);
    c.iterations = a.common.iterations.unwrap_or(c.iterations);
    c.eval_tasks = a.common.eval_tasks.unwrap_or(c.eval_tasks);
    c.horizon = a.horizon.or(c.horizon);
    let full = a.hessian.map(|h| h == Hessian::Full);
    if c.supervised() {
        let s = &mut c.sine;
        if let Some(op) = a.operator.filter(|&op| op != OperatorFlag::Gradient) {
            let op = format!("{op:?}").to_lowercase();
            return Err(Error::invalid("operator", op, "gradient (on --env sine)"));
        }
        (s.order, s.estimator) = (
            a.order.unwrap_or(s.order),
            a.estimator.unwrap_or(s.estimator),
        );
        s.hessian = full.unwrap_or(s.hessian);
        s.perturbations = a.perturbations.unwrap_or(s.perturbations);
    } else {
        let e = &mut c.es;
        (e.order, e.estimator) = (
            a.order.unwrap_or(e.order),
            a.estimator.unwrap_or(e.estimator),
        );
        e.operator = a
            .operator
            .map(rl_operator)
            .transpose()?
            .unwrap_or(e.operator);
        e.policy = a.policy.unwrap_or(e.policy);
        e.hessian = full.unwrap_or(e.hessian);
        e.queries = a.queries.unwrap_or(e.queries);
        e.query_count = a.query_count.unwrap_or(e.query_count);
        e.current_evals = a.current_evals.unwrap_or(e.current_evals);
        e.perturbations = a.perturbations.unwrap_or(e.perturbations);
        e.task_batch = a.task_batch.unwrap_or(e.task_batch);
        e.hidden = a.hidden.clone().unwrap_or_else(|| e.hidden.clone());
    }
    RunSpec::validate(&c, &Registry::builtin())?;
    Ok(c)
}

fn main() -> ExitCode {
    let args: Args = parse_args();
    main_with(|| {
        metarl::dist::run_job(args.common.mpi, metarl::cli::exit_status, || {
            let kind = args.common.device_kind()?;
            let (cfg, dir, resume) = open_or_create(&args.common, "es-maml", || config(&args))?;
            let registry = Registry::builtin();
            let s = train_run(&cfg, &registry, &dir, kind, resume, args.common.quiet)?;
            print_result(&dir, None, &s);
            Ok(())
        })
    })
}
