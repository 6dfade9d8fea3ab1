//! Your own task family, outside the crate: a point robot must reach a goal behind a wall
//! whose gap moves from task to task. It is registered under the name `wall-gap` through
//! the public API, meta-trained with ProMP and with ES-MAML, evaluated on held-out tasks
//! and plotted, through the same library calls the built-in binaries make.
//!
//! ```bash
//! cargo run --release --example custom_task -- --iterations 30 --out runs/wall-gap
//! ```
//!
//! | | |
//! |---|---|
//! | observation | position `p = (x, y)` |
//! | action | 2-D displacement, each component clipped to `[-0.1, 0.1]` |
//! | start | `(0, -0.5)` |
//! | task | the gap's centre `c ~ U[-0.6, 0.6)`: parameters `[c]` |
//! | wall | the line `y = 0`, open only for `|x − c| < 0.15` |
//! | dynamics | `p' = p + clip(a)`; a move that would cross the wall outside the gap is cut at the wall (`y` stays on its side) |
//! | reward | `−‖p' − g‖₂` with the goal `g = (0, 0.5)` |
//! | horizon | 60; no termination |
//! | success | final distance to the goal below 0.1 |
//!
//! Nothing here is private to metarl: the family implements [`Env`], its task is a
//! [`Task`] parameter vector, and the run configs name it by the registry name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use metarl::device::DeviceKind;
use metarl::env::{Env, EnvSpec, Registry, Task};
use metarl::rng::Rng;
use metarl::train::es_maml::EsMamlRun;
use metarl::train::pg::{PgAlgo, PgRun};
use metarl::train::{eval_run, train_run, RunDir, RunSpec};

/// The goal, the same for every task: what changes is the way through the wall.
pub const GOAL: [f32; 2] = [0.0, 0.5];
/// Half the width of the gap.
pub const HALF_GAP: f32 = 0.15;

/// The wall-with-a-moving-gap family.
#[derive(Debug)]
pub struct WallGap {
    spec: EnvSpec,
}

impl Default for WallGap {
    fn default() -> Self {
        Self {
            spec: EnvSpec {
                name: "wall-gap",
                obs_dim: 2,
                act_dim: 2,
                horizon: 60,
                summary: "point to (0, 0.5) through a gap in the wall y = 0 whose centre moves per task (examples/custom_task.rs)",
            },
        }
    }
}

/// The task whose gap is centred at `x = c`.
pub fn gap_task(c: f32) -> Task {
    Task::new([c])
}

/// One step from `p` under `a` for a gap centred at `c`: the new position.
pub fn advance(p: [f32; 2], a: [f32; 2], c: f32) -> [f32; 2] {
    let a = [a[0].clamp(-0.1, 0.1), a[1].clamp(-0.1, 0.1)];
    let q = [p[0] + a[0], p[1] + a[1]];
    if (p[1] < 0.0) == (q[1] < 0.0) {
        return q;
    }
    // The move crosses y = 0 at x = p_x + a_x · (−p_y / a_y).
    let x_cross = p[0] + a[0] * (-p[1] / a[1]);
    if (x_cross - c).abs() < HALF_GAP {
        q
    } else {
        // Blocked: slide along x, stay on the starting side of the wall.
        [q[0], p[1]]
    }
}

impl Env for WallGap {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn state_dim(&self) -> usize {
        2
    }

    fn sample_task(&self, rng: &mut Rng) -> Task {
        use rand::Rng as _;
        gap_task(rng.random_range(-0.6..0.6))
    }

    fn reset(&self, _task: &Task, state: &mut [f32], _rng: &mut Rng) {
        state.copy_from_slice(&[0.0, -0.5]);
    }

    fn fixed_start(&self) -> bool {
        true
    }

    fn step(&self, task: &Task, state: &mut [f32], action: &[f32]) -> (f32, bool) {
        let q = advance([state[0], state[1]], [action[0], action[1]], task.param(0));
        state.copy_from_slice(&q);
        let (dx, dy) = (q[0] - GOAL[0], q[1] - GOAL[1]);
        (-(dx * dx + dy * dy).sqrt(), false)
    }

    fn observe(&self, _task: &Task, state: &[f32], obs: &mut [f32]) {
        obs.copy_from_slice(state);
    }

    fn success(&self, _task: &Task, state: &[f32], _terminated: bool) -> Option<bool> {
        let (dx, dy) = (state[0] - GOAL[0], state[1] - GOAL[1]);
        Some((dx * dx + dy * dy).sqrt() < 0.1)
    }

    fn position(&self, state: &[f32]) -> Option<[f32; 2]> {
        Some([state[0], state[1]])
    }

    fn goals(&self, _task: &Task) -> Vec<[f32; 2]> {
        vec![GOAL]
    }
}

/// The built-in families plus `wall-gap`.
pub fn registry() -> Registry {
    let mut r = Registry::builtin();
    r.register("wall-gap", || Arc::new(WallGap::default()));
    r
}

/// What [`run`] measured: held-out returns before and after adaptation, per learner.
#[derive(Debug)]
pub struct Outcome {
    /// `(learner, pre-update return, post-update return after the last inner step)`.
    pub returns: Vec<(&'static str, f64, f64)>,
    /// The PNG files `metarl plot` would draw.
    pub plots: Vec<PathBuf>,
}

/// Meta-trains ProMP and ES-MAML on `wall-gap` for `iterations` each under `out`
/// (`out/promp`, `out/es-maml`), evaluates both on 10 held-out tasks as `metarl eval`
/// does and plots both runs as `metarl plot` does.
pub fn run(out: &Path, iterations: usize, quiet: bool) -> metarl::Result<Outcome> {
    let registry = registry();
    let kind = DeviceKind::Flex;
    let promp = PgRun {
        algo: PgAlgo::Promp,
        env: "wall-gap".into(),
        iterations,
        eval_tasks: 10,
        meta: metarl::pg::MetaPgConfig {
            tasks: 10,
            rollouts: 10,
            ..Default::default()
        },
        ..Default::default()
    };
    let es = EsMamlRun {
        env: "wall-gap".into(),
        iterations,
        eval_tasks: 10,
        ..Default::default()
    };
    let mut returns = Vec::new();
    let mut dirs = Vec::new();
    for (name, spec) in [("promp", &promp as &dyn Train), ("es-maml", &es)] {
        let dir = RunDir::create(Some(&out.join(name)), name, "wall-gap", 1)?;
        spec.train(&registry, &dir, kind, quiet)?;
        let ev = eval_run(&registry, &dir, None, kind)?;
        let r = ev.return_scores().expect("an RL family");
        let post = *r.post_return.last().expect("one inner step at least");
        returns.push((name, r.pre_return, post));
        dirs.push(dir.path().to_path_buf());
    }
    let plots = metarl::plot::plot_runs(&dirs)?;
    Ok(Outcome { returns, plots })
}

/// [`train_run`] behind one object type, so both run configs go through one loop.
trait Train {
    fn train(
        &self,
        r: &Registry,
        dir: &RunDir,
        kind: DeviceKind,
        quiet: bool,
    ) -> metarl::Result<()>;
}

impl<C: RunSpec> Train for C {
    fn train(
        &self,
        r: &Registry,
        dir: &RunDir,
        kind: DeviceKind,
        quiet: bool,
    ) -> metarl::Result<()> {
        train_run(self, r, dir, kind, false, quiet).map(|_| ())
    }
}

#[allow(dead_code)] // the test includes this file as a module and calls `run` itself
fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut iterations, mut out) = (30, PathBuf::from("runs/wall-gap"));
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--iterations", Some(v)) => iterations = v.parse().unwrap_or(iterations),
            ("--out", Some(v)) => out = PathBuf::from(v),
            _ => {
                eprintln!("usage: custom_task [--iterations N] [--out DIR]");
                return std::process::ExitCode::from(2);
            }
        }
    }
    metarl::cli::main_with(|| {
        let o = run(&out, iterations, false)?;
        for (name, pre, post) in &o.returns {
            println!("{name}: held-out return pre {pre:.2}, post {post:.2}");
        }
        for p in &o.plots {
            println!("{}", p.display());
        }
        Ok(())
    })
}
