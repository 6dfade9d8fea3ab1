//! `promp`: Proximal Meta-Policy Search (Rothfuss et al. 2019). Trains on nav2d by default.

use std::process::ExitCode;

use clap::Parser;
use metarl::cli::{main_with, parse_args, run_pg, CommonArgs, PgFlags};
use metarl::env::Registry;
use metarl::train::pg::PgAlgo;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "promp", version, about = "ProMP: Proximal Meta-Policy Search")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    pg: PgFlags,
}

fn main() -> ExitCode {
    let a: Args = parse_args();
    main_with(|| run_pg(PgAlgo::Promp, &a.common, &a.pg, &Registry::builtin()))
}
