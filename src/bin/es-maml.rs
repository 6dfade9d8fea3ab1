//! `es-maml`: zero-order and first-order ES-MAML (Song et al. 2020).

use std::process::ExitCode;

use clap::Parser;
use metarl::algo::es_maml::{Operator, Order, PolicyKind};
use metarl::cli::{main_with, open_or_create, CommonArgs};
use metarl::env::Registry;
use metarl::es::EsEstimator;
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
    #[arg(long)]
    order: Option<String>,
    /// Adaptation operator: es-grad, hill-climb or dpp; gradient (exact) for --env sine.
    #[arg(long)]
    operator: Option<String>,
    /// Outer ES estimator: mc, forward-fd or antithetic.
    #[arg(long)]
    estimator: Option<String>,
    /// Policy: linear or mlp.
    #[arg(long)]
    policy: Option<String>,
    /// First order: full (ES Hessian) or none.
    #[arg(long)]
    hessian: Option<String>,
    /// Adaptation queries K.
    #[arg(long)]
    queries: Option<usize>,
    /// Outer perturbations n (first order: tasks per iteration).
    #[arg(long)]
    perturbations: Option<usize>,
    /// Zero order: training tasks each perturbation is adapted and scored on.
    #[arg(long)]
    task_batch: Option<usize>,
}

fn pick<T: Copy>(
    field: &str,
    v: &Option<String>,
    options: &[(&str, T)],
    into: &mut T,
) -> Result<()> {
    if let Some(s) = v {
        *into = options
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                Error::invalid(
                    field,
                    s,
                    options
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            })?;
    }
    Ok(())
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
    let ests = [
        ("mc", EsEstimator::Mc),
        ("forward-fd", EsEstimator::ForwardFd),
        ("antithetic", EsEstimator::Antithetic),
    ];
    let orders = [("zero", Order::Zero), ("first", Order::First)];
    if c.env == "sine" {
        let s = &mut c.sine;
        pick("order", &a.order, &orders, &mut s.order)?;
        pick("operator", &a.operator, &[("gradient", ())], &mut ())?;
        pick("estimator", &a.estimator, &ests, &mut s.estimator)?;
        pick(
            "hessian",
            &a.hessian,
            &[("full", true), ("none", false)],
            &mut s.hessian,
        )?;
        s.perturbations = a.perturbations.unwrap_or(s.perturbations);
        RunSpec::validate(&c, &Registry::builtin())?;
        return Ok(c);
    }
    let e = &mut c.es;
    pick(
        "order",
        &a.order,
        &[("zero", Order::Zero), ("first", Order::First)],
        &mut e.order,
    )?;
    pick(
        "operator",
        &a.operator,
        &[
            ("es-grad", Operator::EsGrad),
            ("hill-climb", Operator::HillClimb),
            ("dpp", Operator::Dpp),
        ],
        &mut e.operator,
    )?;
    let ests = [
        ("mc", EsEstimator::Mc),
        ("forward-fd", EsEstimator::ForwardFd),
        ("antithetic", EsEstimator::Antithetic),
    ];
    pick("estimator", &a.estimator, &ests, &mut e.estimator)?;
    pick(
        "policy",
        &a.policy,
        &[("linear", PolicyKind::Linear), ("mlp", PolicyKind::Mlp)],
        &mut e.policy,
    )?;
    pick(
        "hessian",
        &a.hessian,
        &[("full", true), ("none", false)],
        &mut e.hessian,
    )?;
    e.queries = a.queries.unwrap_or(e.queries);
    e.perturbations = a.perturbations.unwrap_or(e.perturbations);
    e.task_batch = a.task_batch.unwrap_or(e.task_batch);
    RunSpec::validate(&c, &Registry::builtin())?;
    Ok(c)
}

fn main() -> ExitCode {
    let args = Args::parse();
    main_with(|| {
        let kind = args.common.device_kind()?;
        let (cfg, dir, resume) = open_or_create(&args.common, "es-maml", || config(&args))?;
        let s = train_run(
            &cfg,
            &Registry::builtin(),
            &dir,
            kind,
            resume,
            args.common.quiet,
        )?;
        if cfg.env == "sine" {
            let mse = &s["eval"]["mse"];
            println!(
                "{}: held-out MSE after 0 steps {:.3}, 1 step {:.3}, 10 steps {:.3}",
                dir.path().display(),
                mse[0].as_f64().unwrap_or(f64::NAN),
                mse[1].as_f64().unwrap_or(f64::NAN),
                mse[10].as_f64().unwrap_or(f64::NAN)
            );
            return Ok(());
        }
        print!(
            "{}: held-out return pre {:.2}, post {:.2}",
            dir.path().display(),
            s["eval"]["pre_return"].as_f64().unwrap_or(f64::NAN),
            s["eval"]["post_return"][0].as_f64().unwrap_or(f64::NAN)
        );
        if let Some(sr) = s["eval"]["success_rate"].as_f64() {
            print!(", success rate {sr:.2}");
        }
        println!(
            "; {:.3} s per iteration, {:.2e} env steps/s",
            s["train"]["seconds_per_iteration"].as_f64().unwrap_or(0.0),
            s["train"]["env_steps_per_second"].as_f64().unwrap_or(0.0)
        );
        Ok(())
    })
}
