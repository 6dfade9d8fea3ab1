//! Properties every environment family must have, checked for each name in
//! [`ENV_NAMES`]: seeded determinism, a batch of rows behaving exactly like independent
//! single rows, the documented shapes, and a typed error for unknown names.

use std::sync::Arc;

use metarl::env::{self, Env, Step, Task, TaskDistribution, VecEnv, ENV_NAMES};
use metarl::rng::{self, Rng};
use metarl::Error;
use rand::Rng as _;

/// `(name, obs_dim, act_dim, horizon)` as documented in each family's module.
const SPECS: &[(&str, usize, usize, usize)] = &[
    ("nav2d", 2, 2, 100),
    ("point-corners", 2, 2, 100),
    ("point-corners-dense", 2, 2, 100),
    ("point-corners-radius", 2, 2, 100),
    ("point-corners-penalized", 2, 2, 100),
    ("point-corners-fixed", 2, 2, 100),
    ("point-corners-es", 2, 2, 100),
    ("six-circles", 2, 2, 100),
    ("four-circles", 2, 2, 100),
    ("six-circles-visit", 2, 2, 100),
    ("goal-1d", 1, 1, 5),
    ("cartpole-biased", 4, 1, 500),
];

/// Rows per batch.
const N: usize = 6;

fn family(name: &str) -> Arc<dyn Env> {
    env::make(name).unwrap_or_else(|e| panic!("`{name}` should be a known env: {e}"))
}

fn tasks_and_seeds(env: &Arc<dyn Env>) -> (Vec<Task>, Vec<u64>) {
    let tasks = TaskDistribution::new(env.clone()).sample(N, &mut rng::stream(5, "tasks"));
    let seeds = (0..N as u64).map(|i| 1000 + 17 * i).collect();
    (tasks, seeds)
}

/// One action generator per row: a deterministic pseudo-random sequence, uniform in
/// `[-3, 3)`, beyond every family's clipping bound.
fn action_streams() -> Vec<Rng> {
    (0..N as u64)
        .map(|i| rng::substream(42, "test-actions", i))
        .collect()
}

fn next_action(stream: &mut Rng, act_dim: usize) -> Vec<f32> {
    (0..act_dim)
        .map(|_| stream.random_range(-3.0..3.0))
        .collect()
}

/// Resets `venv` and steps it with the rows' action streams until every row is done;
/// returns the reset observations and every step.
fn rollout(venv: &mut VecEnv) -> (Vec<f32>, Vec<Step>) {
    let (act_dim, horizon) = (venv.spec().act_dim, venv.spec().horizon);
    let mut streams = action_streams();
    let first = venv.reset();
    let mut steps = Vec::new();
    while !venv.all_done() {
        assert!(
            steps.len() < horizon,
            "every row should be done by the horizon"
        );
        let actions: Vec<f32> = streams
            .iter_mut()
            .flat_map(|s| next_action(s, act_dim))
            .collect();
        steps.push(venv.step(&actions));
    }
    (first, steps)
}

#[test]
fn the_spec_table_lists_every_env_name_in_order() {
    let names: Vec<&str> = SPECS.iter().map(|s| s.0).collect();
    assert_eq!(names, ENV_NAMES);
}

#[test]
fn same_seeds_and_actions_give_identical_rollouts() {
    for &name in ENV_NAMES {
        let env = family(name);
        let (tasks, seeds) = tasks_and_seeds(&env);
        let a = rollout(&mut VecEnv::new(env.clone(), tasks.clone(), &seeds));
        let b = rollout(&mut VecEnv::new(env.clone(), tasks.clone(), &seeds));
        assert!(!a.1.is_empty(), "{name}");
        assert_eq!(a, b, "{name}: two runs with the same seeds differ");
    }
}

#[test]
fn a_batch_of_rows_equals_single_row_envs_with_the_same_seeds() {
    for &name in ENV_NAMES {
        let env = family(name);
        let (od, ad) = (env.spec().obs_dim, env.spec().act_dim);
        let (tasks, seeds) = tasks_and_seeds(&env);
        let mut batch = VecEnv::new(env.clone(), tasks.clone(), &seeds);
        let mut singles: Vec<VecEnv> = (0..N)
            .map(|i| VecEnv::new(env.clone(), vec![tasks[i].clone()], &[seeds[i]]))
            .collect();
        let obs = batch.reset();
        for (i, single) in singles.iter_mut().enumerate() {
            assert_eq!(
                single.reset(),
                obs[i * od..(i + 1) * od],
                "{name} row {i} reset"
            );
        }
        let mut streams = action_streams();
        let mut t = 0;
        while !batch.all_done() {
            t += 1;
            let actions: Vec<Vec<f32>> = streams.iter_mut().map(|s| next_action(s, ad)).collect();
            let step = batch.step(&actions.concat());
            for (i, single) in singles.iter_mut().enumerate() {
                let one = single.step(&actions[i]);
                let at = format!("{name} row {i} step {t}");
                assert_eq!(one.obs, step.obs[i * od..(i + 1) * od], "{at}: obs");
                assert_eq!(one.reward[0], step.reward[i], "{at}: reward");
                assert_eq!(one.terminated[0], step.terminated[i], "{at}: terminated");
                assert_eq!(one.truncated[0], step.truncated[i], "{at}: truncated");
                assert_eq!(one.active[0], step.active[i], "{at}: active");
                assert_eq!(one.success[0], step.success[i], "{at}: success");
                assert_eq!(single.row_state(0), batch.row_state(i), "{at}: state");
            }
        }
        assert!(singles.iter().all(VecEnv::all_done), "{name}");
    }
}

#[test]
fn observations_and_steps_have_the_documented_shapes() {
    for &(name, obs_dim, act_dim, horizon) in SPECS {
        let env = family(name);
        let spec = env.spec();
        assert_eq!(spec.name, name);
        assert_eq!(
            (spec.obs_dim, spec.act_dim, spec.horizon),
            (obs_dim, act_dim, horizon),
            "{name}"
        );
        assert!(!spec.summary.is_empty());
        assert!(env.state_dim() >= 1, "{name}");

        let (tasks, seeds) = tasks_and_seeds(&env);
        let mut venv = VecEnv::new(env.clone(), tasks, &seeds);
        assert_eq!(venv.num_rows(), N);
        let (first, steps) = rollout(&mut venv);
        assert_eq!(first.len(), N * obs_dim, "{name}");
        let mut ended = [false; N];
        for (t, step) in steps.iter().enumerate() {
            assert_eq!(step.obs.len(), N * obs_dim, "{name}");
            let lens = [
                step.reward.len(),
                step.terminated.len(),
                step.truncated.len(),
                step.active.len(),
                step.success.len(),
            ];
            assert_eq!(lens, [N; 5], "{name}");
            assert!(
                step.obs.iter().chain(&step.reward).all(|v| v.is_finite()),
                "{name}"
            );
            for (i, ended) in ended.iter_mut().enumerate() {
                // A row is active until the step where it ends, and ends exactly once.
                assert_eq!(step.active[i], !*ended, "{name} row {i} step {}", t + 1);
                assert!(!(step.terminated[i] && step.truncated[i]));
                if step.truncated[i] {
                    assert_eq!(t + 1, horizon, "{name}: truncated before the horizon");
                }
                *ended |= step.terminated[i] || step.truncated[i];
            }
        }
        assert!(ended.iter().all(|&e| e), "{name}");
    }
}

#[test]
fn families_with_a_fixed_start_never_read_the_reset_generator() {
    // `fixed_start` lets rollouts skip building a row's generator, so it must mean that
    // reset neither draws (the generator is left where it was) nor depends on the draws.
    let mut fixed = Vec::new();
    for &name in ENV_NAMES {
        let env = family(name);
        let (tasks, _) = tasks_and_seeds(&env);
        for task in &tasks {
            let (mut r1, mut r2) = (rng::stream(1, "reset"), rng::stream(2, "reset"));
            let (before1, before2) = (r1.clone(), r2.clone());
            let mut s1 = vec![f32::NAN; env.state_dim()];
            let mut s2 = vec![f32::NAN; env.state_dim()];
            env.reset(task, &mut s1, &mut r1);
            env.reset(task, &mut s2, &mut r2);
            let drew = r1 != before1 || r2 != before2;
            let same = s1.iter().zip(&s2).all(|(a, b)| a.to_bits() == b.to_bits());
            if env.fixed_start() {
                assert!(!drew && same, "{name}: reset should not use its generator");
            } else {
                assert!(drew, "{name}: a family whose reset draws should say so");
            }
        }
        if env.fixed_start() {
            fixed.push(name);
        }
    }
    assert_eq!(
        fixed,
        [
            "nav2d",
            "point-corners-es",
            "six-circles",
            "four-circles",
            "six-circles-visit"
        ]
    );
}

#[test]
fn unknown_names_are_a_typed_error() {
    match env::make("nosuch") {
        Err(Error::UnknownEnv { name, allowed }) => {
            assert_eq!(name, "nosuch");
            assert_eq!(allowed, ENV_NAMES.join(", "));
        }
        other => panic!("make(\"nosuch\") should be UnknownEnv, got {other:?}"),
    }
    let err = env::make("nosuch").expect_err("nosuch should not be an env");
    assert!(err.is_user_error());
    // The supervised family has a name but is no RL environment.
    assert!(matches!(
        env::make("sine"),
        Err(Error::InvalidConfig { .. })
    ));
}

#[test]
fn scaled_actions_reach_the_family_multiplied_then_clipped() {
    // ProMP's normalize wrapper on point-corners: s = 10, bounds ±0.2 → scale 0.02.
    let env = env::make_scaled("point-corners-dense", 0.02).unwrap();
    let goal = metarl::env::point_corners::corner_task(3); // (2, 2)
    let mut state = vec![0.3f32, 0.4];
    // (5, −20) · 0.02 = (0.1, −0.4), clipped to (0.1, −0.2): p' = (0.4, 0.2).
    let (r, done) = env.step(&goal, &mut state, &[5.0, -20.0]);
    assert!((state[0] - 0.4).abs() < 1e-6 && (state[1] - 0.2).abs() < 1e-6);
    // Dense reward −‖p' − g‖ = −√(1.6² + 1.8²) = −√5.8.
    assert!((r + 5.8f32.sqrt()).abs() < 1e-5, "reward {r}");
    assert!(!done);
    // Everything else is the family's own.
    let plain = family("point-corners-dense");
    assert_eq!(env.spec(), plain.spec());
    assert_eq!(env.goals(&goal), plain.goals(&goal));
    // A scale of 1 is the family itself; a non-positive scale is refused by name.
    let mut s1 = vec![0.3f32, 0.4];
    env::make_scaled("point-corners-dense", 1.0)
        .unwrap()
        .step(&goal, &mut s1, &[0.1, 0.1]);
    assert_eq!(s1, vec![0.4, 0.5]);
    for bad in [0.0, -1.0, f64::NAN] {
        let e = env::make_scaled("nav2d", bad).unwrap_err().to_string();
        assert!(e.contains("action_scale"), "{e}");
    }
}
