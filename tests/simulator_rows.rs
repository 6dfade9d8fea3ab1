//! A family whose rows are simulator objects ([`Rows`], as a physics engine's data per row
//! will be) works everywhere a stateless one does: `VecEnv` and the sampler, the ES
//! episode paths (one episode at a time and in lane batches), and a whole training run.
//! `SimNav` keeps nav2d's dynamics in per-row structs, so every result must equal nav2d's
//! bit for bit.

use std::sync::Arc;

use metarl::device::DeviceKind;
use metarl::env::nav2d::Nav2d;
use metarl::env::{
    Env, EnvSpec, Registry, Rows, ScaledActions, Task, TaskDistribution, VecEnv, WithHorizon,
};
use metarl::nn::flat::FlatPolicy;
use metarl::rng::{stream, Rng};
use metarl::rollout::{episode_return_flat, episode_returns_lanes, sample, ObsNorm, ObsStats};
use metarl::train::pg::PgRun;
use metarl::train::{train_run, RunDir};

/// nav2d, with its rows held as structs by the family instead of `f32` slices by `VecEnv`.
#[derive(Debug)]
struct SimNav {
    spec: EnvSpec,
    inner: Nav2d,
}

impl Default for SimNav {
    fn default() -> Self {
        let inner = Nav2d::default();
        let mut spec = inner.spec().clone();
        spec.name = "sim-nav";
        Self { spec, inner }
    }
}

/// One row: the point and its task's goal.
struct Point {
    p: [f32; 2],
    g: [f32; 2],
}

struct Points(Vec<Point>);

impl Rows for Points {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn reset(&mut self, i: usize, _rng: &mut Rng) {
        self.0[i].p = [0.0, 0.0];
    }
    fn step(&mut self, i: usize, a: &[f32]) -> (f32, bool) {
        let row = &mut self.0[i];
        row.p = [
            row.p[0] + a[0].clamp(-0.1, 0.1),
            row.p[1] + a[1].clamp(-0.1, 0.1),
        ];
        let (dx, dy) = (row.p[0] - row.g[0], row.p[1] - row.g[1]);
        let done = dx.abs() < 0.01 && dy.abs() < 0.01;
        (-(dx * dx + dy * dy).sqrt(), done)
    }
    fn observe(&self, i: usize, obs: &mut [f32]) {
        obs.copy_from_slice(&self.0[i].p);
    }
    fn success(&self, i: usize, _terminated: bool) -> Option<bool> {
        let row = &self.0[i];
        let (dx, dy) = (row.p[0] - row.g[0], row.p[1] - row.g[1]);
        Some((dx * dx + dy * dy).sqrt() < 0.1)
    }
    fn position(&self, i: usize) -> Option<[f32; 2]> {
        Some(self.0[i].p)
    }
}

impl Env for SimNav {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }
    fn sample_task(&self, rng: &mut Rng) -> Task {
        self.inner.sample_task(rng)
    }
    fn fixed_start(&self) -> bool {
        true
    }
    fn simulator_rows(&self, tasks: &[Task]) -> Option<Box<dyn Rows>> {
        let rows = tasks.iter().map(|t| Point {
            p: [0.0, 0.0],
            g: [t.param(0), t.param(1)],
        });
        Some(Box::new(Points(rows.collect())))
    }
    fn goals(&self, task: &Task) -> Vec<[f32; 2]> {
        self.inner.goals(task)
    }
}

fn families() -> (Arc<dyn Env>, Arc<dyn Env>) {
    (Arc::new(Nav2d::default()), Arc::new(SimNav::default()))
}

#[test]
fn the_sampler_gives_nav2d_trajectories_bit_for_bit() {
    let (flat, sim) = families();
    let device = DeviceKind::Flex.device().unwrap();
    let tasks = TaskDistribution::new(flat.clone()).held_out(5);
    let policy =
        metarl::nn::GaussianPolicyConfig::default().init(2, 2, &mut stream(3, "p"), &device);
    let run = |env: &Arc<dyn Env>| {
        let mut venv = VecEnv::for_tasks(env.clone(), &tasks, 4, &mut stream(3, "env"));
        sample(&policy, &mut venv, 4, &mut stream(3, "act"), &device)
    };
    let (a, b) = (run(&flat), run(&sim));
    assert_eq!(a.obs, b.obs);
    assert_eq!(a.reward, b.reward);
    assert_eq!(a.mask, b.mask);
    assert_eq!(a.terminated, b.terminated);
    assert_eq!(a.truncated, b.truncated);
    assert_eq!(a.success, b.success);
    assert_eq!(a.positions, b.positions);
    assert!(!a.reward.is_empty());
}

/// The wrappers pass a simulator family's rows through: scaled actions
/// ([`ScaledActions`], ProMP's normalization) and another horizon ([`WithHorizon`]) give
/// the trajectories they give on nav2d's f32 rows.
#[test]
fn action_scaling_and_horizon_wrappers_keep_simulator_rows_equal_to_nav2d() {
    let (flat, sim) = families();
    let device = DeviceKind::Flex.device().unwrap();
    let tasks = TaskDistribution::new(flat.clone()).held_out(3);
    let policy =
        metarl::nn::GaussianPolicyConfig::default().init(2, 2, &mut stream(4, "p"), &device);
    let wrap = |env: &Arc<dyn Env>| -> Arc<dyn Env> {
        let scaled: Arc<dyn Env> = Arc::new(ScaledActions::new(env.clone(), 0.25));
        WithHorizon::wrap(scaled, Some(37))
    };
    let run = |env: Arc<dyn Env>| {
        let mut venv = VecEnv::for_tasks(env, &tasks, 2, &mut stream(4, "env"));
        sample(&policy, &mut venv, 2, &mut stream(4, "act"), &device)
    };
    let (a, b) = (run(wrap(&flat)), run(wrap(&sim)));
    assert_eq!(a.steps, 37);
    assert_eq!(a.obs, b.obs);
    assert_eq!(a.reward, b.reward);
    assert_eq!(a.positions, b.positions);
    // The scale reached the dynamics: unscaled nav2d moves differently.
    assert_ne!(
        run(flat.clone()).positions[..a.positions.len()],
        a.positions[..]
    );
}

#[test]
#[should_panic(expected = "keeps simulator rows")]
fn asking_a_simulator_family_for_an_f32_row_state_panics_with_its_name() {
    let (_, sim) = families();
    let venv = VecEnv::new(sim, vec![Task::new([0.1, 0.2])], &[1]);
    let _ = venv.row_state(0);
}

#[test]
fn es_episodes_one_at_a_time_and_in_lane_batches_equal_nav2d() {
    let (flat, sim) = families();
    let policy = FlatPolicy {
        sizes: vec![2, 8, 2],
        activation: metarl::nn::Activation::Tanh,
        tanh_output: true,
    };
    let mut rng = stream(5, "theta");
    let thetas: Vec<Vec<f32>> = (0..20)
        .map(|_| {
            use rand_distr::Distribution;
            (0..policy.num_params())
                .map(|_| {
                    let x: f32 = rand_distr::StandardNormal.sample(&mut rng);
                    0.5 * x
                })
                .collect::<Vec<f32>>()
        })
        .collect();
    let tasks = TaskDistribution::new(flat.clone()).held_out(20);
    let task_refs: Vec<&Task> = tasks.iter().collect();
    let theta_refs: Vec<&[f32]> = thetas.iter().map(Vec::as_slice).collect();
    let seeds: Vec<u64> = (0..20).collect();
    let norm = ObsNorm {
        mean: vec![0.05, -0.02],
        std: vec![0.5, 0.75],
    };
    let lanes = |env: &Arc<dyn Env>| {
        let mut st = ObsStats::new(2);
        let r = episode_returns_lanes(
            env,
            &task_refs,
            &policy,
            &theta_refs,
            &norm,
            &seeds,
            &mut st,
        );
        (r, st)
    };
    let one = |env: &Arc<dyn Env>, i: usize| {
        let mut st = ObsStats::new(2);
        let r = episode_return_flat(
            env, &tasks[i], &policy, &thetas[i], &norm, seeds[i], &mut st,
        );
        (r, st)
    };
    assert_eq!(lanes(&flat), lanes(&sim));
    for i in 0..20 {
        assert_eq!(one(&flat, i), one(&sim, i), "episode {i}");
    }
}

#[test]
fn a_promp_run_on_the_simulator_family_writes_nav2d_progress_rows() {
    let mut registry = Registry::builtin();
    registry.register("sim-nav", || Arc::new(SimNav::default()));
    let d = tempfile::tempdir().unwrap();
    let rows = |env: &str| {
        let cfg = PgRun {
            env: env.into(),
            iterations: 2,
            eval_tasks: 3,
            meta: metarl::pg::MetaPgConfig {
                tasks: 3,
                rollouts: 4,
                ..Default::default()
            },
            ..Default::default()
        };
        let dir = RunDir::create(Some(&d.path().join(env)), "promp", env, 1).unwrap();
        let s = train_run(&cfg, &registry, &dir, DeviceKind::Flex, false, true).unwrap();
        let text = std::fs::read_to_string(dir.progress_path()).unwrap();
        let header: Vec<String> = text
            .lines()
            .next()
            .unwrap()
            .split(',')
            .map(String::from)
            .collect();
        let keep: Vec<usize> = (0..header.len())
            .filter(|&i| !header[i].contains("seconds"))
            .collect();
        let rows: Vec<Vec<String>> = text
            .lines()
            .map(|l| {
                let cells: Vec<&str> = l.split(',').collect();
                keep.iter().map(|&i| cells[i].to_string()).collect()
            })
            .collect();
        (rows, s["eval"].clone())
    };
    assert_eq!(rows("nav2d"), rows("sim-nav"));
}
