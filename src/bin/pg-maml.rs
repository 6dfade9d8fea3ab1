//! `pg-maml`: MAML-VPG, MAML-TRPO and E-MAML with the MAML, DiCE or LVC estimator.

use std::process::ExitCode;

use clap::Parser;
use metarl::cli::{main_with, parse_args, run_pg, CommonArgs, PgFlags};
use metarl::env::Registry;
use metarl::train::pg::PgAlgo;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "pg-maml",
    version,
    about = "PG-MAML: MAML-VPG, MAML-TRPO, E-MAML"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    pg: PgFlags,
}

fn main() -> ExitCode {
    let a: Args = parse_args();
    main_with(|| run_pg(PgAlgo::PgMaml, &a.common, &a.pg, &Registry::builtin()))
}
