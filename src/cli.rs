//! Pieces shared by the command-line binaries: the common training flags and the
//! error-to-exit-code policy (bad input → one line on stderr and exit code 2).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::device::DeviceKind;
use crate::error::{Error, Result};

/// Flags every training binary accepts (DESIGN.md, "Common flags").
#[derive(Args, Clone, Debug, Default, PartialEq)]
pub struct CommonArgs {
    /// Environment (task family) name; see `metarl list-envs`.
    #[arg(long)]
    pub env: Option<String>,
    /// Root seed of every random stream.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of meta-iterations.
    #[arg(long)]
    pub iterations: Option<usize>,
    /// TOML config file (unknown keys are rejected); flags override its values.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run directory to create (default: runs/<bin>-<env>-s<seed>[-n]).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Backend: flex, ndarray or wgpu (default: $BURN_DEVICE, else flex).
    #[arg(long)]
    pub device: Option<String>,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Number of held-out tasks for the final evaluation.
    #[arg(long)]
    pub eval_tasks: Option<usize>,
    /// No progress bar or log lines.
    #[arg(long)]
    pub quiet: bool,
    /// Run as one rank of an MPI job: `mpirun -n N BIN --mpi …` (feature `mpi`; es-maml,
    /// es-ddpg, promp and pg-maml share their work between the ranks, with the results of
    /// one process).
    #[arg(long)]
    pub mpi: bool,
}

impl CommonArgs {
    /// The backend chosen by `--device`, else `BURN_DEVICE`, else the default.
    pub fn device_kind(&self) -> Result<DeviceKind> {
        DeviceKind::resolve(self.device.as_deref())
    }
}

/// The run a training binary works on: with `--resume DIR`, DIR's `config.toml` (with
/// `--iterations` applied) and its directory; otherwise the config built by `fresh` and a
/// new run directory for `bin`. The flag says whether it resumes.
pub fn open_or_create<C: crate::train::RunSpec>(
    common: &CommonArgs,
    bin: &str,
    fresh: impl FnOnce() -> Result<C>,
) -> Result<(C, crate::train::RunDir, bool)> {
    use crate::train::{load_toml, RunDir};
    let refuse_mpi = |cfg: &C| {
        if common.mpi && !cfg.distributes() {
            return Err(Error::invalid(
                "--mpi",
                "set",
                format!(
                    "absent for {bin}: es-maml (RL families), es-ddpg, promp and pg-maml share their work between MPI ranks"
                ),
            ));
        }
        Ok(())
    };
    let cluster = crate::dist::Cluster::current();
    match &common.resume {
        Some(path) => {
            let dir = RunDir::open(path)?;
            let mut cfg: C = load_toml(&dir.config_path())?;
            if let Some(n) = common.iterations {
                *cfg.iterations_mut() = n;
            }
            refuse_mpi(&cfg)?;
            Ok((cfg, dir, true))
        }
        None => {
            let cfg = fresh()?;
            refuse_mpi(&cfg)?;
            if !cluster.is_root() {
                // Rank 0 creates and writes the run directory.
                return Ok((cfg, RunDir::scratch(cluster.rank())?, false));
            }
            let dir = RunDir::create(
                common.out.as_deref(),
                bin,
                cfg.env_name(),
                cfg.schedule().seed,
            )?;
            Ok((cfg, dir, false))
        }
    }
}

/// Parses a binary's command line. Help and version print and exit 0 as usual; a bad
/// flag or value stops with the project's one line (`error: …`, naming the flag, the value
/// and what is allowed) and exit code 2.
pub fn parse_args<A: clap::Parser>() -> A {
    A::try_parse().unwrap_or_else(|e| {
        if !e.use_stderr() {
            e.exit()
        }
        eprintln!("{}", clap_error_line(&e));
        std::process::exit(2)
    })
}

/// The one-line form of a clap error: its first line, with the allowed values appended
/// where clap lists them on lines of their own.
fn clap_error_line(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    let text = e.render().to_string();
    let mut line = text
        .lines()
        .next()
        .unwrap_or("error: bad arguments")
        .to_string();
    if let Some(ContextValue::Strings(allowed)) = e.get(ContextKind::ValidValue) {
        line.push_str(&format!(" (allowed: {})", allowed.join(", ")));
    }
    line
}

/// Exit code for an error: 2 for bad input, 1 otherwise.
pub fn exit_code(err: &Error) -> ExitCode {
    ExitCode::from(exit_status(err) as u8)
}

/// [`exit_code`] as a number: 2 for bad input, 1 for other failures.
pub fn exit_status(err: &Error) -> i32 {
    if err.is_user_error() {
        2
    } else {
        1
    }
}

/// Runs a binary's body and turns its result into an exit code, printing one line
/// `error: …` on failure.
pub fn main_with(body: impl FnOnce() -> Result<()>) -> ExitCode {
    // The main thread is one of rayon's workers (`RAYON_NUM_THREADS` of them in all, as
    // before): parallel work started from it runs on it instead of being handed to a pool
    // thread while it sleeps. At one thread there is no other thread at all; a linear
    // ES-MAML iteration (1.3 ms, one hand-off each) had spent 3–4% of its CPU time on the
    // two context switches and more wall time waiting for the wake-up. Fails only if the
    // global pool already exists, and then that pool is used.
    let _ = rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build_global();
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            exit_code(&e)
        }
    }
}

/// Checks that a count is at least 1, naming the field otherwise.
pub fn require_positive(field: &str, value: usize) -> Result<usize> {
    if value == 0 {
        Err(Error::invalid(field, value, "≥ 1"))
    } else {
        Ok(value)
    }
}

/// Flags of the policy-gradient meta-learners (`promp`, `pg-maml`); each overrides the
/// config file's value.
#[derive(Args, Clone, Debug, Default, PartialEq)]
pub struct PgFlags {
    /// Tasks per meta-batch.
    #[arg(long)]
    pub tasks: Option<usize>,
    /// Rollouts per task and inner step.
    #[arg(long)]
    pub rollouts: Option<usize>,
    /// Inner step size α.
    #[arg(long, allow_negative_numbers = true)]
    pub inner_lr: Option<f64>,
    /// Inner adaptation steps (fresh samples after each).
    #[arg(long)]
    pub inner_steps: Option<usize>,
    /// Inner estimator.
    #[arg(long, value_enum)]
    pub estimator: Option<crate::objective::Estimator>,
    /// full (differentiate through the inner step) or none (first order).
    #[arg(long, value_enum)]
    pub hessian: Option<crate::supervised::Hessian>,
    /// Outer optimizer of pg-maml.
    #[arg(long, value_enum)]
    pub outer: Option<crate::algo::pg_maml::Outer>,
    /// Add E-MAML's pre-update credit term (pg-maml).
    #[arg(long)]
    pub emaml: bool,
    /// ProMP outer steps per batch.
    #[arg(long)]
    pub outer_steps: Option<usize>,
    /// ProMP KL-penalty coefficient η.
    #[arg(long, allow_negative_numbers = true)]
    pub kl_coef: Option<f64>,
    /// Adapt ProMP's η towards its target KL.
    #[arg(long)]
    pub adaptive_kl: bool,
    /// ProMP's collapse guard: shorten (or undo) an outer step that moves the policy further
    /// than this KL from the sampling policy (default 0.05; `inf`: off).
    #[arg(long)]
    pub outer_kl_limit: Option<f64>,
    /// Task chunks of the meta-batch (`promp.parallel_chunks` / `pg_maml.parallel_chunks`):
    /// the units sampled and differentiated in parallel, by threads and by MPI ranks.
    #[arg(long)]
    pub chunks: Option<usize>,
}

impl PgFlags {
    /// Applies the common flags and these to a run config, then validates it against
    /// `registry`.
    pub fn apply(
        &self,
        common: &CommonArgs,
        c: &mut crate::train::pg::PgRun,
        registry: &crate::env::Registry,
    ) -> Result<()> {
        c.env = common.env.clone().unwrap_or(c.env.clone());
        c.seed = common.seed.unwrap_or(c.seed);
        c.iterations = common.iterations.unwrap_or(c.iterations);
        c.eval_tasks = common.eval_tasks.unwrap_or(c.eval_tasks);
        let m = &mut c.meta;
        m.tasks = self.tasks.unwrap_or(m.tasks);
        m.rollouts = self.rollouts.unwrap_or(m.rollouts);
        m.inner_lr = self.inner_lr.unwrap_or(m.inner_lr);
        m.inner_steps = self.inner_steps.unwrap_or(m.inner_steps);
        m.estimator = self.estimator.unwrap_or(m.estimator);
        if let Some(h) = self.hessian {
            m.second_order = h == crate::supervised::Hessian::Full;
        }
        c.pg_maml.outer = self.outer.unwrap_or(c.pg_maml.outer);
        c.pg_maml.emaml |= self.emaml;
        c.promp.outer_steps = self.outer_steps.unwrap_or(c.promp.outer_steps);
        c.promp.kl_coef = self.kl_coef.unwrap_or(c.promp.kl_coef);
        c.promp.adaptive_kl |= self.adaptive_kl;
        c.promp.outer_kl_limit = self.outer_kl_limit.unwrap_or(c.promp.outer_kl_limit);
        if let Some(n) = self.chunks {
            c.promp.parallel_chunks = n;
            c.pg_maml.parallel_chunks = n;
        }
        crate::train::RunSpec::validate(c, registry)
    }
}

/// The body of the `promp` and `pg-maml` binaries: new run or `--resume`, train,
/// evaluate, print one summary line. `registry` resolves `--env` (the binaries pass
/// [`crate::env::Registry::builtin`]; a program with task families of its own passes a
/// registry that has them).
pub fn run_pg(
    algo: crate::train::pg::PgAlgo,
    common: &CommonArgs,
    flags: &PgFlags,
    registry: &crate::env::Registry,
) -> Result<()> {
    // An MPI job (`--mpi`) shares the meta-batch's task chunks between its ranks.
    crate::dist::run_job(common.mpi, exit_status, || {
        use crate::train::pg::PgRun;
        use crate::train::{load_toml, train_run};
        let kind = common.device_kind()?;
        let (cfg, dir, resume) = open_or_create(common, algo.name(), || {
            let mut cfg: PgRun = match &common.config {
                Some(p) => load_toml(p)?,
                None => PgRun::default(),
            };
            cfg.algo = algo;
            flags.apply(common, &mut cfg, registry)?;
            Ok(cfg)
        })?;
        let cluster = crate::dist::Cluster::current();
        let busy = crate::pg::task_chunks(cfg.meta.tasks, cfg.chunks()).len();
        if cluster.is_root() && cluster.size() > busy {
            eprintln!(
                "note: {} ranks share {busy} task chunks, so {} of them stay idle; --chunks sets the number of chunks",
                cluster.size(),
                cluster.size() - busy
            );
        }
        let s = train_run(&cfg, registry, &dir, kind, resume, common.quiet)?;
        print_result(&dir, None, &s);
        Ok(())
    })
}

/// Prints a training binary's one-line result from its `summary.json` value, after the run
/// directory and an optional label: the held-out return before adaptation and after the
/// last inner step, the success rate (when the family defines success), seconds per
/// iteration and environment steps per second; or, for a supervised run, the held-out MSE
/// after 0, 1 and the last number of steps.
pub fn print_result(dir: &crate::train::RunDir, label: Option<&str>, s: &serde_json::Value) {
    if !crate::dist::Cluster::current().is_root() {
        return;
    }
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let last = |v: &serde_json::Value| v.as_array().and_then(|a| a.last()).map_or(f64::NAN, num);
    print!("{}: ", dir.path().display());
    if let Some(l) = label {
        print!("{l} ");
    }
    let ev = &s["eval"];
    if let Some(mse) = ev["mse"].as_array() {
        let n = mse.len().saturating_sub(1);
        print!(
            "held-out MSE after 0 steps {:.3}, 1 step {:.3}, {n} steps {:.3}",
            num(&mse[0]),
            num(&mse[1]),
            last(&ev["mse"])
        );
    } else {
        print!(
            "held-out return pre {:.2}, post {:.2}",
            num(&ev["pre_return"]),
            last(&ev["post_return"])
        );
        if let Some(sr) = ev["success_rate"].as_f64() {
            print!(", success rate {sr:.2}");
        }
        if let Some(v) = ev.get("velocity_error") {
            print!(
                ", mean |v - v*| pre {:.3}, post {:.3}",
                num(&v["pre"]),
                num(&v["post"])
            );
        }
    }
    let t = &s["train"];
    print!(
        "; {:.3} s per iteration",
        t["seconds_per_iteration"].as_f64().unwrap_or(0.0)
    );
    match t["env_steps_per_second"].as_f64() {
        Some(e) if e > 0.0 => println!(", {e:.3e} env steps/s"),
        _ => println!(),
    }
}
