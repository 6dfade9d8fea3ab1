//! ProMP's Fig. 6 (§7.4): meta-gradient ascent of a two-parameter policy on the 1-D goal
//! task under formulation I (DiCE, exact credit to the pre-update sampling distribution)
//! and formulation II (E-MAML: MAML's inner Hessian plus the term R̄′ ∇log π(τ_pre)), both
//! with vanilla policy-gradient outer steps, from the same start.
//!
//! The policy is the paper's: μ(s) = θ₀·s² + θ₁, σ = 1 fixed. It is a linear Gaussian
//! policy on the feature s², so the family is `goal-1d` observed through s² (the
//! dynamics, reward and tasks are goal-1d's; mission-anchors §2.5), and the log-std is
//! held at 0 in the inner step and never updated.
//!
//! One iteration, for each formulation (ProMP `run_1d_exp.py`'s sizes: 40 tasks per goal,
//! 100 trajectories per task, horizon 5):
//!
//! ```text
//! pre  ← 100 rollouts of π_θ per task                       (80 tasks, goals ±1)
//! θ′   ← θ + α ∇_θ J_inner(θ; pre)       I: DiCE weights    II: MAML weights
//! post ← 100 rollouts of π_θ′ per task
//! J    ← mean over tasks of the post surrogate at θ′(θ)     II: + R̄′ · (1/n) Σ log π_θ(pre)
//! θ    ← θ + β ∇_θ J                                         (autodiff through θ′)
//! ```
//!
//! Writes `<out>/fig6.csv` (iteration, formulation, seed, θ₀, θ₁, pre- and post-update
//! return, ‖∇J‖) and `<out>/fig6-theta.png` / `fig6-returns.png`.
//!
//! Advantages are not normalized. The meta-objective J(θ) itself is estimated on a grid
//! around the paths (`fig6-landscape.csv`), and its maximum is marked on the picture.
//!
//! `cargo run --release --example promp_fig6 -- [iterations] [seeds] [out] [alpha] [beta]`
//! (defaults 300, 3, `runs/promp-fig6`, α = 2, β = 2).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use burn::prelude::*;
use metarl::env::goal1d::Goal1d;
use metarl::env::{Env, EnvSpec, Task};
use metarl::nn::functional::{GaussianParams, MlpParams};
use metarl::nn::{to_vec, Activation};
use metarl::objective::{emaml_term, likelihood_ratio, standardize_returns, surrogate, Estimator};
use metarl::pg::{adapt, process, sample_tasks, MetaPgConfig, TaskBatch};
use metarl::plot::SeriesLabelPosition;
use metarl::rng::{substream, Rng};

/// ProMP's start, `run_1d_exp.py` (mission-anchors §2.5).
const THETA_INIT: [f32; 2] = [0.09, 0.05];
/// Tasks per goal and trajectories per task in one meta-batch.
const TASKS_PER_GOAL: usize = 40;
const ROLLOUTS: usize = 100;

/// goal-1d observed through the feature s²: a linear policy on it is μ = θ₀ s² + θ₁.
#[derive(Debug)]
struct SquaredState {
    inner: Goal1d,
    spec: EnvSpec,
}

impl SquaredState {
    fn new() -> Self {
        let inner = Goal1d::default();
        let spec = EnvSpec {
            name: "goal-1d-squared",
            summary: "goal-1d observed as s² (ProMP Fig. 6's policy features)",
            ..inner.spec().clone()
        };
        Self { inner, spec }
    }
}

impl Env for SquaredState {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }
    fn state_dim(&self) -> usize {
        self.inner.state_dim()
    }
    fn sample_task(&self, rng: &mut Rng) -> Task {
        self.inner.sample_task(rng)
    }
    fn reset(&self, task: &Task, state: &mut [f32], rng: &mut Rng) {
        self.inner.reset(task, state, rng)
    }
    fn step(&self, task: &Task, state: &mut [f32], action: &[f32]) -> (f32, bool) {
        self.inner.step(task, state, action)
    }
    fn observe(&self, _task: &Task, state: &[f32], obs: &mut [f32]) {
        obs[0] = state[0] * state[0];
    }
}

/// The two formulations of §7.4.
#[derive(Clone, Copy, Debug)]
enum Formulation {
    /// Formulation I: DiCE inner weights (unbiased Hessian), no extra term.
    Dice,
    /// Formulation II: MAML inner weights plus E-MAML's pre-update credit term.
    Emaml,
}

impl Formulation {
    fn name(self) -> &'static str {
        match self {
            Formulation::Dice => "I (DiCE)",
            Formulation::Emaml => "II (E-MAML)",
        }
    }
    fn estimator(self) -> Estimator {
        match self {
            Formulation::Dice => Estimator::Dice,
            Formulation::Emaml => Estimator::Maml,
        }
    }
}

/// θ = (θ₀, θ₁) as the linear policy's weight and bias (leaves when `track`), σ = 1.
fn policy(theta: [f32; 2], device: &Device, track: bool) -> GaussianParams {
    GaussianParams {
        mean: MlpParams::from_flat(&theta, &[1, 1], Activation::Tanh, device, track),
        log_std: Tensor::<3>::zeros([1, 1, 1], device),
    }
}

/// One meta-iteration: returns ∇J, the pre- and the post-update mean return.
fn meta_gradient(
    f: Formulation,
    theta: [f32; 2],
    env: &Arc<dyn Env>,
    tasks: &[Task],
    cfg: &MetaPgConfig,
    rngs: &mut [Rng; 4],
    device: &Device,
) -> metarl::Result<([f32; 2], f64, f64)> {
    let [env_pre, act_pre, env_post, act_post] = rngs;
    let p = policy(theta, device, true);
    let sample =
        |params: &GaussianParams, er: &mut Rng, ar: &mut Rng| -> metarl::Result<TaskBatch> {
            let tr = sample_tasks(env, tasks, &params.detach(), ROLLOUTS, er, ar, device);
            process(&tr, cfg, device)
        };
    let pre = sample(&p, env_pre, act_pre)?;
    let stepped = adapt(&p, &pre, f.estimator(), cfg.inner_lr, true);
    // σ stays 1: only the mean parameters take the inner step.
    let adapted = GaussianParams {
        mean: stepped.mean,
        log_std: p.log_std.clone(),
    };
    let post = sample(&adapted, env_post, act_post)?;
    let ratio = likelihood_ratio(post.log_prob(&adapted), post.logp_old.clone());
    let mut j = surrogate(ratio, post.adv.clone(), post.mask.clone(), post.n.clone()).mean();
    if let Formulation::Emaml = f {
        let rn = standardize_returns(&post.task_returns);
        let rn = Tensor::<1>::from_data(TensorData::new(rn.clone(), [rn.len()]), device);
        j = j + emaml_term(pre.log_prob(&p), pre.mask.clone(), pre.n.clone(), rn).mean();
    }
    let grads = j.backward();
    let g0 = to_vec(p.mean.w[0].grad(&grads).expect("θ₀ is a leaf"))[0];
    let g1 = to_vec(p.mean.b[0].grad(&grads).expect("θ₁ is a leaf"))[0];
    Ok(([g0, g1], pre.mean_return(), post.mean_return()))
}

/// The meta-objective itself, J(θ) = E[post-update return], estimated on a grid: at each
/// point `reps` meta-batches of the training size (common random numbers across the
/// grid), each adapted by one inner step (its value does not depend on the estimator)
/// and scored by its post-update return. Returns `(θ₀, θ₁, J)` for every grid point.
fn landscape(
    env: &Arc<dyn Env>,
    tasks: &[Task],
    cfg: &MetaPgConfig,
    grid: (&[f32], &[f32]),
    reps: u64,
    plain: &Device,
) -> metarl::Result<Vec<(f32, f32, f64)>> {
    let mut out = Vec::new();
    for &t0 in grid.0 {
        for &t1 in grid.1 {
            let p = policy([t0, t1], plain, false);
            let mut total = 0.0;
            for r in 0..reps {
                let [mut e1, mut a1, mut e2, mut a2] =
                    ["env-pre", "action-pre", "env-post", "action-post"]
                        .map(|s| substream(1_000 + r, s, 0));
                let tr = sample_tasks(env, tasks, &p, ROLLOUTS, &mut e1, &mut a1, plain);
                let pre = process(&tr, cfg, plain)?;
                let stepped = adapt(&p, &pre, Estimator::Maml, cfg.inner_lr, false);
                let adapted = GaussianParams {
                    mean: stepped.mean,
                    log_std: p.log_std.clone(),
                };
                let tr = sample_tasks(env, tasks, &adapted, ROLLOUTS, &mut e2, &mut a2, plain);
                total += process(&tr, cfg, plain)?.mean_return();
            }
            out.push((t0, t1, total / reps as f64));
        }
    }
    Ok(out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let iterations: usize = arg(1, "300").parse().expect("iterations: a whole number");
    let seeds: u64 = arg(2, "3").parse().expect("seeds: a whole number");
    let out = PathBuf::from(arg(3, "runs/promp-fig6"));
    let alpha: f64 = arg(4, "2").parse().expect("alpha: a number");
    let beta: f32 = arg(5, "2").parse().expect("beta: a number");
    std::fs::create_dir_all(&out)?;

    let plain = metarl::device::DeviceKind::Flex.device()?;
    let device = plain.clone().autodiff();
    let env: Arc<dyn Env> = Arc::new(SquaredState::new());
    let cfg = MetaPgConfig {
        tasks: 2 * TASKS_PER_GOAL,
        rollouts: ROLLOUTS,
        inner_lr: alpha,
        // Raw advantages: the inner objective stays a sum over samples, which is what
        // DiCE's magic box differentiates exactly (a batch normalization is not).
        normalize_adv: false,
        ..Default::default()
    };
    let tasks: Vec<Task> = [1.0f32, -1.0]
        .iter()
        .flat_map(|&g| std::iter::repeat_n(metarl::env::goal1d::goal_task(g), TASKS_PER_GOAL))
        .collect();

    let mut csv = std::fs::File::create(out.join("fig6.csv"))?;
    writeln!(
        csv,
        "iteration,formulation,seed,theta_0,theta_1,pre_return,post_return,grad_norm"
    )?;
    let mut theta_curves = Vec::new();
    let mut return_curves = Vec::new();
    for f in [Formulation::Dice, Formulation::Emaml] {
        for seed in 1..=seeds {
            let mut theta = THETA_INIT;
            let (mut t0, mut t1, mut its, mut post_curve) = (vec![], vec![], vec![], vec![]);
            for it in 0..iterations {
                // Fresh samples each iteration; both formulations get the same streams.
                let mut rngs = ["env-pre", "action-pre", "env-post", "action-post"]
                    .map(|s| substream(seed, s, it as u64));
                let (g, pre_r, post_r) =
                    meta_gradient(f, theta, &env, &tasks, &cfg, &mut rngs, &device)?;
                let norm = (g[0] * g[0] + g[1] * g[1]).sqrt();
                writeln!(
                    csv,
                    "{it},{},{seed},{},{},{pre_r},{post_r},{norm}",
                    f.name(),
                    theta[0],
                    theta[1]
                )?;
                t0.push(f64::from(theta[0]));
                t1.push(f64::from(theta[1]));
                its.push(it as f64);
                post_curve.push(post_r);
                theta = [theta[0] + beta * g[0], theta[1] + beta * g[1]];
            }
            t0.push(f64::from(theta[0]));
            t1.push(f64::from(theta[1]));
            println!(
                "{} seed {seed}: θ {:?} → ({:.3}, {:.3}); post-update return {:.3} → {:.3}",
                f.name(),
                THETA_INIT,
                theta[0],
                theta[1],
                post_curve[0],
                post_curve[iterations - 1]
            );
            let label = format!("{} s{seed}", f.name());
            // The θ picture shows seed 1 of each formulation, as the paper's one path each.
            if seed == 1 {
                theta_curves.push((label.clone(), t0, t1));
            }
            return_curves.push((label, its, post_curve));
        }
    }
    // Where the meta-objective is highest, on a grid around the paths.
    let (lo0, hi0, lo1, hi1) = theta_curves.iter().fold(
        (f64::MAX, f64::MIN, f64::MAX, f64::MIN),
        |(a, b, c, d), (_, x, y)| {
            let (xl, xh) = x.iter().fold((a, b), |(l, h), &v| (l.min(v), h.max(v)));
            let (yl, yh) = y.iter().fold((c, d), |(l, h), &v| (l.min(v), h.max(v)));
            (xl, xh, yl, yh)
        },
    );
    let axis = |lo: f64, hi: f64| -> Vec<f32> {
        let (lo, hi) = (lo - 0.1 * (hi - lo) - 0.02, hi + 0.1 * (hi - lo) + 0.02);
        (0..=12)
            .map(|i| (lo + (hi - lo) * i as f64 / 12.0) as f32)
            .collect()
    };
    let (g0, g1) = (axis(lo0, hi0), axis(lo1, hi1));
    let grid = landscape(&env, &tasks, &cfg, (&g0, &g1), 4, &plain)?;
    let mut land = std::fs::File::create(out.join("fig6-landscape.csv"))?;
    writeln!(land, "theta_0,theta_1,post_return")?;
    for (a, b, j) in &grid {
        writeln!(land, "{a},{b},{j}")?;
    }
    let best = grid
        .iter()
        .cloned()
        .fold((0.0, 0.0, f64::MIN), |m, p| if p.2 > m.2 { p } else { m });
    println!(
        "grid maximum of J: θ = ({:.3}, {:.3}), post-update return {:.4} (at the start: {:.4})",
        best.0,
        best.1,
        best.2,
        landscape(
            &env,
            &tasks,
            &cfg,
            (&[THETA_INIT[0]], &[THETA_INIT[1]]),
            4,
            &plain
        )?[0]
            .2
    );
    theta_curves.push((
        "grid maximum of J".into(),
        vec![f64::from(best.0)],
        vec![f64::from(best.1)],
    ));
    metarl::plot::plot_curves(
        &out.join("fig6-theta.png"),
        (
            "Meta-gradient ascent from (0.09, 0.05)",
            "θ₀ (coefficient of s²)",
            "θ₁ (offset)",
        ),
        &theta_curves,
        SeriesLabelPosition::UpperRight,
    )?;
    metarl::plot::plot_curves(
        &out.join("fig6-returns.png"),
        ("Post-update return (5 steps, max 5)", "iteration", "return"),
        &return_curves,
        SeriesLabelPosition::LowerLeft,
    )?;
    println!("wrote {}", out.display());
    Ok(())
}
