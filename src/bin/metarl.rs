//! `metarl`: list environments, run an untrained policy, plot runs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use metarl::cli::{main_with, parse_args, require_positive};
use metarl::env::{Registry, TaskDistribution, VecEnv};
use metarl::nn::GaussianPolicyConfig;
use metarl::rng::stream;
use metarl::train::{load_toml, RunDir};
use metarl::traj::positions_csv;
use metarl::{plot, rollout, Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Parser, Debug)]
#[command(
    name = "metarl",
    version,
    about = "metarl: meta-reinforcement learning on Burn"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the environments: name, observation and action sizes, horizon, spec.
    ListEnvs,
    /// Run the untrained Gaussian policy on sampled tasks and print the returns.
    Rollout {
        /// Environment name (see list-envs).
        #[arg(long)]
        env: Option<String>,
        /// Number of tasks to sample.
        #[arg(long)]
        tasks: Option<usize>,
        /// Episodes (rollouts) per task.
        #[arg(long)]
        episodes: Option<usize>,
        /// Root seed.
        #[arg(long)]
        seed: Option<u64>,
        /// TOML file with any of the keys env, tasks, episodes, seed and a [policy] table;
        /// flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Backend: flex, ndarray or wgpu.
        #[arg(long)]
        device: Option<String>,
        /// Also write trajectories.csv (point environments) into this directory.
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// Adapt a saved meta-policy (promp / pg-maml / meta-explore / es-maml run) on held-out tasks and report pre-
    /// and post-adaptation returns and the success rate; writes eval.json and
    /// trajectories.csv into the run directory.
    Eval {
        /// Run directory.
        run: PathBuf,
        /// Number of held-out tasks (default: the run's eval_tasks).
        #[arg(long)]
        tasks: Option<usize>,
        /// Backend: flex, ndarray or wgpu.
        #[arg(long)]
        device: Option<String>,
    },
    /// Draw learning curves (progress.csv) and trajectories (trajectories.csv) as PNG.
    Plot {
        /// Run directories.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
    },
}

fn list_envs() -> Result<()> {
    println!(
        "{:<20} {:>4} {:>4} {:>8}  spec",
        "name", "obs", "act", "horizon"
    );
    let registry = Registry::builtin();
    for name in registry.names() {
        // A family that cannot be built here (a MuJoCo model not installed) is listed with
        // the reason instead of ending the listing.
        match registry.make(name) {
            Ok(e) => {
                let s = e.spec();
                println!(
                    "{:<20} {:>4} {:>4} {:>8}  {}",
                    name, s.obs_dim, s.act_dim, s.horizon, s.summary
                );
            }
            Err(err) => println!(
                "{name:<20} {:>4} {:>4} {:>8}  unavailable: {err}",
                "-", "-", "-"
            ),
        }
    }
    for name in metarl::env::MUJOCO_ENV_NAMES
        .iter()
        .filter(|n| !registry.contains(n))
    {
        println!(
            "{name:<20} {:>4} {:>4} {:>8}  MuJoCo: `bash scripts/install-mujoco.sh`, then build with `--features mujoco`",
            "-", "-", "-"
        );
    }
    println!(
        "{:<20} {:>4} {:>4} {:>8}  supervised sine regression: y = A·sin(x − φ), A ~ U[0.1, 5], φ ~ U[0, π], x ~ U[-5, 5] (sine-maml)",
        "sine", 1, 1, "-"
    );
    Ok(())
}

/// What `metarl rollout` runs; every key optional in the TOML file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RolloutConfig {
    /// Environment name.
    env: String,
    /// Tasks to sample.
    tasks: usize,
    /// Episodes per task.
    episodes: usize,
    /// Root seed.
    seed: u64,
    /// The (untrained) policy.
    policy: GaussianPolicyConfig,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        Self {
            env: "point-corners".into(),
            tasks: 4,
            episodes: 2,
            seed: 1,
            policy: GaussianPolicyConfig::default(),
        }
    }
}

impl RolloutConfig {
    fn validate(&self) -> Result<()> {
        require_positive("tasks", self.tasks)?;
        require_positive("episodes", self.episodes)?;
        self.policy.validate("policy.")
    }
}

/// Ends a printed line with `, success rate …` for families that define success.
fn end_line_with_success(rate: Option<f64>) {
    match rate {
        Some(s) => println!(", success rate {s:.3}"),
        None => println!(),
    }
}

fn run_rollout(cfg: &RolloutConfig, device: Option<&str>, save: Option<PathBuf>) -> Result<()> {
    cfg.validate()?;
    let (name, tasks, episodes, seed) = (cfg.env.as_str(), cfg.tasks, cfg.episodes, cfg.seed);
    let family = Registry::builtin().make(name)?;
    let device = metarl::device::DeviceKind::resolve(device)?.device()?;
    let spec = family.spec().clone();
    let policy = cfg.policy.init(
        spec.obs_dim,
        spec.act_dim,
        &mut stream(seed, "policy"),
        &device,
    );
    let task_list = TaskDistribution::new(family.clone()).sample(tasks, &mut stream(seed, "tasks"));
    let mut venv = VecEnv::for_tasks(
        family.clone(),
        &task_list,
        episodes,
        &mut stream(seed, "env"),
    );
    let traj = rollout::sample(
        &policy,
        &mut venv,
        episodes,
        &mut stream(seed, "action"),
        &device,
    );
    for (m, (task, ret)) in task_list.iter().zip(traj.task_returns()).enumerate() {
        println!("task {m:>3} {task:?}: mean return {ret:.4}");
    }
    print!(
        "{name}: {} episodes, {} env steps, mean return {:.4}",
        traj.rows,
        traj.env_steps(),
        traj.mean_return()
    );
    end_line_with_success(traj.success_rate());
    if let Some(dir) = save {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let goals: Vec<_> = task_list
            .iter()
            .map(|t| family.goals(t).first().copied())
            .collect();
        let path = dir.join("trajectories.csv");
        std::fs::write(&path, positions_csv(&traj, "pre", &goals, None, true))
            .map_err(|e| Error::io(&path, e))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli: Cli = parse_args();
    main_with(|| match cli.command {
        Command::ListEnvs => list_envs(),
        Command::Rollout {
            env,
            tasks,
            episodes,
            seed,
            config,
            device,
            save,
        } => {
            let mut cfg: RolloutConfig = match &config {
                Some(path) => load_toml(path)?,
                None => RolloutConfig::default(),
            };
            cfg.env = env.unwrap_or(cfg.env);
            cfg.tasks = tasks.unwrap_or(cfg.tasks);
            cfg.episodes = episodes.unwrap_or(cfg.episodes);
            cfg.seed = seed.unwrap_or(cfg.seed);
            run_rollout(&cfg, device.as_deref(), save)
        }
        Command::Eval { run, tasks, device } => {
            let dir = RunDir::open(&run)?;
            let kind = metarl::device::DeviceKind::resolve(device.as_deref())?;
            let ev = metarl::train::eval_run(&Registry::builtin(), &dir, tasks, kind)?;
            let r = ev
                .return_scores()
                .expect("eval_run refuses supervised runs");
            let post: Vec<String> = r.post_return.iter().map(|r| format!("{r:.3}")).collect();
            print!(
                "{}: {} held-out tasks, return pre {:.3}, post [{}]",
                run.display(),
                ev.tasks,
                r.pre_return,
                post.join(", ")
            );
            end_line_with_success(r.success_rate);
            if let Some(m) = r.mean_action {
                print!(
                    "  mean action after adaptation: return {:.3}",
                    m.post_return
                );
                end_line_with_success(m.success_rate);
            }
            if let Some(v) = r.velocity_error {
                println!(
                    "  mean |v - v*| per step: pre {:.3}, post {:.3} ({:+.1}%)",
                    v.pre,
                    v.post,
                    100.0 * (v.post - v.pre) / v.pre
                );
            }
            Ok(())
        }
        Command::Plot { runs } => {
            for p in plot::plot_runs(&runs)? {
                println!("{}", p.display());
            }
            Ok(())
        }
    })
}
