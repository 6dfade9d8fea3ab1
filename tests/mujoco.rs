//! MuJoCo locomotion families (feature `mujoco`; `bash scripts/install-mujoco.sh` first):
//! rewards and terminations on hand-set states against ProMP's formulas, task
//! distributions, determinism by seed, the same results on 1 and 2 threads, and short
//! training runs.
#![cfg(feature = "mujoco")]

use std::sync::Arc;

use metarl::device::DeviceKind;
use metarl::env::mujoco::Locomotion;
use metarl::env::{Env, Registry, Task, TaskDistribution, VecEnv};
use metarl::rng::stream;
use metarl::rollout::sample;
use metarl::train::pg::PgRun;
use metarl::train::{train_run, RunDir};

fn family(name: &str) -> Locomotion {
    Locomotion::named(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{what}: {got} vs {want}"
    );
}

/// The ant's torso body.
fn torso(env: &Locomotion) -> usize {
    env.model()
        .name_to_id(mujoco_rs::prelude::MjtObjBase::mjOBJ_BODY, "torso")
        .unwrap()
}

/// ‖clip(cfrc_ext, −1, 1)‖² of a state: the ant's contact cost before its weight.
fn clipped_contact_sq(d: &mujoco_rs::prelude::MjData<Arc<mujoco_rs::prelude::MjModel>>) -> f64 {
    d.cfrc_ext()
        .iter()
        .flatten()
        .map(|c| c.clamp(-1.0, 1.0).powi(2))
        .sum()
}

/// A state away from rest: qpos0 shifted and a fixed velocity.
fn hand_state(env: &Locomotion) -> (Vec<f64>, Vec<f64>) {
    let m = env.model();
    let qpos: Vec<f64> = m
        .qpos0()
        .iter()
        .enumerate()
        .map(|(i, q)| q + 0.01 * i as f64)
        .collect();
    let qvel: Vec<f64> = (0..m.ffi().nv as usize)
        .map(|i| 0.3 - 0.05 * i as f64)
        .collect();
    (qpos, qvel)
}

#[test]
fn half_cheetah_rewards_follow_promps_formulas_on_a_hand_set_state() {
    let action = [0.5f32, -2.0, 0.25, 1.5, -0.1, 0.0]; // two entries beyond ±1 get clipped
    let clipped: Vec<f64> = action
        .iter()
        .map(|a| f64::from(*a).clamp(-1.0, 1.0))
        .collect();
    let ctrl = 0.05 * clipped.iter().map(|a| a * a).sum::<f64>();
    for (name, task, reward) in [
        (
            "half-cheetah-dir",
            Task::new([-1.0]),
            (|v: f64| -v) as fn(f64) -> f64,
        ),
        ("half-cheetah-vel", Task::new([1.5]), |v: f64| {
            -(v - 1.5).abs()
        }),
    ] {
        let env = family(name);
        assert_eq!(
            (env.spec().obs_dim, env.spec().act_dim, env.spec().horizon),
            (17, 6, 100)
        );
        let mut row = env.row(&task);
        let (qpos, qvel) = hand_state(&env);
        row.set_state(&qpos, &qvel);
        let obs = row.observe();
        let want_obs: Vec<f32> = qpos[1..].iter().chain(&qvel).map(|x| *x as f32).collect();
        assert_eq!(obs, want_obs, "{name}: obs = qpos[1:], qvel");
        let x0 = row.data().qpos()[0];
        let (r, term) = row.step(&action);
        let x1 = row.data().qpos()[0];
        assert!(!term, "{name} never terminates");
        assert_eq!(
            row.data().ctrl().to_vec(),
            clipped,
            "{name}: controls are clipped"
        );
        let v = (x1 - x0) / env.dt();
        assert_close(f64::from(r), reward(v) - ctrl, 1e-6, name);
        assert!((env.dt() - 0.05).abs() < 1e-12);
    }
}

#[test]
fn ant_direction_reward_has_contact_and_alive_terms_and_terminates_outside_z_0_1() {
    let env = family("ant-dir");
    assert_eq!((env.spec().obs_dim, env.spec().act_dim), (111, 8));
    let mut row = env.row(&Task::new([1.0]));
    let (mut qpos, qvel) = hand_state(&env);
    qpos[2] = 0.55;
    row.set_state(&qpos, &qvel);
    let torso = torso(&env);
    let x0 = row.data().xpos()[torso][0];
    let action = [0.3f32; 8];
    let (r, term) = row.step(&action);
    let d = row.data();
    let x1 = d.xpos()[torso][0];
    let contact = clipped_contact_sq(d);
    let want = (x1 - x0) / env.dt() - 0.5 * 8.0 * 0.09 - 0.5e-3 * contact + 1.0;
    assert_close(f64::from(r), want, 1e-6, "ant-dir reward");
    assert_eq!(term, !(0.0..=1.0).contains(&d.qpos()[2]));
    let obs = row.observe();
    assert_eq!(obs.len(), 111);
    assert_eq!(obs[0], d.qpos()[2] as f32, "obs starts with qpos[2:]");
    assert!(
        obs[27..].iter().all(|c| c.abs() <= 1.0),
        "contact forces are clipped"
    );
    // Lifted above z = 1 the episode ends at once.
    qpos[2] = 1.5;
    row.set_state(&qpos, &vec![0.0; qvel.len()]);
    assert!(row.step(&action).1, "torso above z = 1 terminates");
}

#[test]
fn es_mamls_forward_backward_ant_pays_the_forward_velocity_only() {
    let env = family("ant-dir-forward");
    assert_eq!((env.spec().obs_dim, env.spec().act_dim), (111, 8));
    let mut row = env.row(&Task::new([-1.0]));
    let (mut qpos, qvel) = hand_state(&env);
    qpos[2] = 0.55;
    row.set_state(&qpos, &qvel);
    let torso = torso(&env);
    let x0 = row.data().xpos()[torso][0];
    let (r, term) = row.step(&[0.3f32; 8]);
    let d = row.data();
    let x1 = d.xpos()[torso][0];
    assert_close(
        f64::from(r),
        -(x1 - x0) / env.dt(),
        1e-6,
        "ant-dir-forward reward",
    );
    assert_eq!(term, !(0.0..=1.0).contains(&d.qpos()[2]));
    // ProMP's ant-dir from the same state under the same action: the same physics, and
    // the reward differs by exactly the costs and the bonus that ES-MAML removes.
    let promp = family("ant-dir");
    let mut other = promp.row(&Task::new([-1.0]));
    other.set_state(&qpos, &qvel);
    let (r_promp, _) = other.step(&[0.3f32; 8]);
    assert_eq!(
        other.observe(),
        row.observe(),
        "same dynamics and observation"
    );
    let costs = -0.5 * 8.0 * 0.09 - 0.5e-3 * clipped_contact_sq(other.data()) + 1.0;
    assert_close(f64::from(r_promp - r), costs, 1e-5, "removed terms");
}

#[test]
fn ant_goal_reward_is_minus_the_l1_distance_and_never_terminates() {
    let env = family("ant-goal");
    assert_eq!((env.spec().obs_dim, env.spec().horizon), (113, 200));
    let goal = Task::new([1.0, -2.0]);
    assert_eq!(env.goals(&goal), vec![[1.0, -2.0]]);
    let mut row = env.row(&goal);
    let (mut qpos, qvel) = hand_state(&env);
    qpos[2] = 1.5; // would end a direction task
    row.set_state(&qpos, &qvel);
    let (r, term) = row.step(&[0.2f32; 8]);
    assert!(!term);
    let torso = torso(&env);
    let d = row.data();
    let p = d.xpos()[torso];
    let contact = clipped_contact_sq(d);
    let want = -((p[0] - 1.0).abs() + (p[1] + 2.0).abs()) - 0.1 * 8.0 * 0.04 - 0.5e-3 * contact;
    assert_close(f64::from(r), want, 1e-6, "ant-goal reward");
}

#[test]
fn task_distributions_follow_the_reference_and_repeat_by_seed() {
    for name in metarl::env::MUJOCO_ENV_NAMES {
        let env: Arc<dyn Env> = Arc::new(family(name));
        let dist = TaskDistribution::new(env.clone());
        let a = dist.sample(200, &mut stream(4, "tasks"));
        assert_eq!(a, dist.sample(200, &mut stream(4, "tasks")), "{name}");
        for t in &a {
            match *name {
                "half-cheetah-dir" | "ant-dir" | "ant-dir-forward" => {
                    assert!(t.param(0).abs() == 1.0)
                }
                "half-cheetah-vel" | "ant-vel" => assert!((0.0..3.0).contains(&t.param(0))),
                "ant-dir-2d" => assert!((t.param(0).hypot(t.param(1)) - 1.0).abs() < 1e-5),
                "ant-goal" => assert!(t.param(0).hypot(t.param(1)) <= 3.0),
                "walker-dir" | "humanoid-dir" => assert!(t.param(0).abs() == 1.0),
                "walker-vel" => assert!((0.0..10.0).contains(&t.param(0))),
                "swimmer-vel" => assert!((0.1..0.2).contains(&t.param(0))),
                "walker-params" | "hopper-params" => {
                    let lim = 1.5f32.powi(3) * 1.0001;
                    assert!(
                        t.params.iter().all(|m| (1.0 / lim..=lim).contains(m)),
                        "{name}"
                    );
                }
                other => panic!("untested family {other}"),
            }
        }
    }
}

fn rollout(name: &str, threads: usize) -> metarl::traj::Trajectories {
    let env: Arc<dyn Env> = Arc::new(family(name));
    let device = DeviceKind::Flex.device().unwrap();
    let s = env.spec().clone();
    let policy = metarl::nn::GaussianPolicyConfig::default().init(
        s.obs_dim,
        s.act_dim,
        &mut stream(2, "policy"),
        &device,
    );
    let tasks = TaskDistribution::new(env.clone()).held_out(3);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut venv = VecEnv::for_tasks(env, &tasks, 2, &mut stream(2, "env"));
        sample(&policy, &mut venv, 2, &mut stream(2, "action"), &device)
    })
}

#[test]
fn batched_rows_give_the_same_trajectories_on_one_and_two_threads_and_by_seed() {
    for name in ["half-cheetah-dir", "ant-dir"] {
        let (a, b, c) = (rollout(name, 1), rollout(name, 2), rollout(name, 2));
        assert_eq!(a.obs, b.obs, "{name}: 1 vs 2 threads");
        assert_eq!(a.reward, b.reward, "{name}: 1 vs 2 threads");
        assert_eq!(b.obs, c.obs, "{name}: rerun");
        assert_eq!(a.terminated, b.terminated);
        assert!(a.reward.iter().all(|r| r.is_finite()));
        assert!(!a.positions.is_empty(), "{name}: positions for plots");
    }
}

#[test]
fn a_batch_row_equals_the_same_row_stepped_alone() {
    let env = family("half-cheetah-vel");
    let task = Task::new([2.0]);
    let env_arc: Arc<dyn Env> = Arc::new(family("half-cheetah-vel"));
    let mut venv = VecEnv::new(env_arc, vec![Task::new([0.5]), task.clone()], &[7, 9]);
    let obs = venv.reset();
    let mut row = env.row(&task);
    row.reset(&mut metarl::rng::substream(9, "env-row", 0));
    assert_eq!(obs[17..], row.observe()[..]);
    let actions = [0.1f32, -0.2, 0.3, -0.4, 0.5, -0.6];
    let step = venv.step(&[actions, actions].concat());
    let (r, _) = row.step(&actions);
    assert_eq!(step.reward[1], r);
    assert_eq!(step.obs[17..], row.observe()[..]);
}

#[test]
fn velocity_error_is_the_episode_mean_of_the_speed_miss_and_restarts_with_the_episode() {
    let env = family("half-cheetah-vel");
    let task = Task::new([1.5]);
    let mut row = env.row(&task);
    let (qpos, qvel) = hand_state(&env);
    row.set_state(&qpos, &qvel);
    assert_eq!(row.velocity_error(), None, "no step taken yet");
    let mut misses = Vec::new();
    for t in 0..3 {
        let x0 = row.data().qpos()[0];
        row.step(&[0.4, -0.3, 0.2 * t as f32, 0.1, -0.5, 0.6]);
        let v = (row.data().qpos()[0] - x0) / env.dt();
        misses.push((v - 1.5).abs());
    }
    let want = misses.iter().sum::<f64>() / 3.0;
    assert_close(row.velocity_error().unwrap(), want, 1e-12, "mean |v - v*|");
    row.set_state(&qpos, &qvel);
    assert_eq!(row.velocity_error(), None, "a new episode starts from zero");
    row.step(&[0.0; 6]);
    assert!(row.velocity_error().unwrap() >= 0.0);

    let dir = family("half-cheetah-dir");
    let mut row = dir.row(&Task::new([1.0]));
    row.set_state(&qpos, &qvel);
    row.step(&[0.0; 6]);
    assert_eq!(
        row.velocity_error(),
        None,
        "direction tasks have no target speed"
    );

    // Through a batch: every finished row reports it, and the mean is over rows.
    let tr = rollout("half-cheetah-vel", 1);
    let errs: Vec<f64> = tr.velocity_error.iter().map(|e| e.unwrap()).collect();
    assert_eq!(errs.len(), tr.rows);
    let mean = errs.iter().sum::<f64>() / errs.len() as f64;
    assert_close(tr.mean_velocity_error().unwrap(), mean, 1e-12, "batch mean");
    assert!(rollout("half-cheetah-dir", 1)
        .mean_velocity_error()
        .is_none());
}

fn promp_rows(dir: &std::path::Path, threads: usize) -> Vec<String> {
    let cfg = PgRun {
        env: "half-cheetah-dir".into(),
        iterations: 2,
        eval_tasks: 2,
        meta: metarl::pg::MetaPgConfig {
            tasks: 2,
            rollouts: 2,
            ..Default::default()
        },
        ..Default::default()
    };
    let run = RunDir::create(Some(dir), "promp", "half-cheetah-dir", 1).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        train_run(
            &cfg,
            &Registry::builtin(),
            &run,
            DeviceKind::Flex,
            false,
            true,
        )
        .unwrap()
    });
    let text = std::fs::read_to_string(run.progress_path()).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    text.lines()
        .map(|l| {
            l.split(',')
                .zip(&header)
                .filter(|(_, h)| !h.contains("seconds"))
                .map(|(c, _)| c)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

#[test]
fn a_two_iteration_promp_run_on_half_cheetah_dir_repeats_on_one_and_two_threads() {
    let d = tempfile::tempdir().unwrap();
    let one = promp_rows(&d.path().join("one"), 1);
    let two = promp_rows(&d.path().join("two"), 2);
    assert_eq!(one.len(), 3);
    assert_eq!(one, two);
}

#[test]
fn walker_rewards_alive_bonus_clips_velocities_in_the_observation_and_ends_on_a_fall() {
    for (name, task, alive) in [
        ("walker-dir", Task::new([1.0]), 1.0),
        ("walker-vel", Task::new([4.0]), 15.0),
    ] {
        let env = family(name);
        assert_eq!((env.spec().obs_dim, env.spec().act_dim), (17, 6));
        assert!((env.dt() - 0.016).abs() < 1e-12, "frame skip 8");
        let mut row = env.row(&task);
        let (qpos, mut qvel) = hand_state(&env);
        qvel[3] = 25.0; // observed as 10
        row.set_state(&qpos, &qvel);
        assert_eq!(row.observe()[8 + 3], 10.0, "{name}: qvel clipped to ±10");
        let x0 = row.data().qpos()[0];
        let action = [0.4f32, -0.4, 0.2, 0.0, 0.1, -0.3];
        let (r, term) = row.step(&action);
        let q = row.data().qpos();
        let v = (q[0] - x0) / env.dt();
        let a2: f64 = action.iter().map(|a| f64::from(*a).powi(2)).sum();
        let task_term = if name == "walker-dir" {
            v
        } else {
            -(v - 4.0).abs()
        };
        assert_close(f64::from(r), task_term + alive - 1e-3 * a2, 1e-6, name);
        assert_eq!(
            term,
            !(q[1] > 0.8 && q[1] < 2.0 && q[2].abs() < 1.0),
            "{name}"
        );
    }
    let env = family("walker-dir");
    let mut row = env.row(&Task::new([1.0]));
    let (mut qpos, qvel) = hand_state(&env);
    qpos[1] = 0.5; // below the healthy height
    row.set_state(&qpos, &qvel);
    assert!(row.step(&[0.0; 6]).1, "a fallen walker ends its episode");
}

#[test]
fn swimmer_reward_penalizes_missing_the_target_velocity() {
    let env = family("swimmer-vel");
    assert_eq!((env.spec().obs_dim, env.spec().act_dim), (8, 2));
    assert!((env.dt() - 0.04).abs() < 1e-12, "frame skip 4");
    let mut row = env.row(&Task::new([0.15]));
    let (qpos, qvel) = hand_state(&env);
    row.set_state(&qpos, &qvel);
    let x0 = row.data().qpos()[0];
    let (r, term) = row.step(&[0.7, -0.2]);
    let v = (row.data().qpos()[0] - x0) / env.dt();
    let want = -(v - 0.15).abs() - 1e-4 * (0.49 + 0.04);
    assert_close(f64::from(r), want, 1e-6, "swimmer-vel");
    assert!(!term);
    assert!(
        r <= 0.0,
        "the reward is a penalty (the reference's sign bug is fixed)"
    );
}

/// x after `steps` steps of fixed actions from a fixed state, for a task of `name`.
fn x_after(name: &str, task: &Task, steps: usize) -> (Vec<f64>, bool) {
    let env = family(name);
    let mut row = env.row(task);
    let (qpos, qvel) = hand_state(&env);
    row.set_state(&qpos, &vec![0.0; qvel.len()]);
    let act = env.spec().act_dim;
    let mut ended = false;
    for k in 0..steps {
        let a: Vec<f32> = (0..act).map(|j| (0.3 * ((k + j) as f32)).sin()).collect();
        ended |= row.step(&a).1;
    }
    (row.data().qpos().to_vec(), ended)
}

#[test]
fn random_parameter_tasks_repeat_by_seed_and_change_the_dynamics() {
    for name in ["walker-params", "hopper-params"] {
        let env: Arc<dyn Env> = Arc::new(family(name));
        let dist = TaskDistribution::new(env.clone());
        let (a, b) = (
            dist.sample(3, &mut stream(8, "tasks")),
            dist.sample(3, &mut stream(8, "tasks")),
        );
        assert_eq!(a, b, "{name}: same seed, same multipliers");
        let ones = Task::new(vec![1.0; a[0].params.len()]);
        // Unit multipliers leave the model as compiled; drawn ones change the trajectory.
        let base = x_after(name, &ones, 10).0;
        let again = x_after(name, &ones, 10).0;
        assert_eq!(base, again, "{name}: deterministic");
        let moved = x_after(name, &a[0], 10).0;
        assert_ne!(base, moved, "{name}: the multipliers change the dynamics");
        assert!(moved.iter().all(|x| x.is_finite()));
    }
}

#[test]
fn random_parameter_families_reward_forward_motion_and_the_hopper_ends_when_it_falls() {
    for (name, act) in [("walker-params", 6), ("hopper-params", 3)] {
        let env = family(name);
        assert_eq!(env.spec().act_dim, act);
        let task = Task::new(vec![
            1.0;
            4 * env.model().ffi().nbody as usize
                + env.model().ffi().nv as usize
                + 3 * env.model().ffi().ngeom as usize
        ]);
        let mut row = env.row(&task);
        let (qpos, qvel) = hand_state(&env);
        row.set_state(&qpos, &qvel);
        let x0 = row.data().qpos()[0];
        let a = vec![0.25f32; act];
        let (r, _) = row.step(&a);
        let v = (row.data().qpos()[0] - x0) / env.dt();
        assert_close(
            f64::from(r),
            v + 1.0 - 1e-3 * 0.0625 * act as f64,
            1e-6,
            name,
        );
    }
    let env = family("hopper-params");
    assert_eq!(env.spec().obs_dim, 11);
    assert!((env.dt() - 0.008).abs() < 1e-12, "frame skip 4 at 0.002");
    let n = 4 * env.model().ffi().nbody as usize
        + env.model().ffi().nv as usize
        + 3 * env.model().ffi().ngeom as usize;
    let mut row = env.row(&Task::new(vec![1.0; n]));
    let (mut qpos, qvel) = hand_state(&env);
    qpos[1] = 0.5; // below 0.7
    row.set_state(&qpos, &qvel);
    assert!(row.step(&[0.0; 3]).1, "a fallen hopper ends its episode");
}

#[test]
fn ant_velocity_reward_follows_mamls_definition_and_ends_outside_z_0_2_to_1() {
    let env = family("ant-vel");
    assert_eq!((env.spec().obs_dim, env.spec().horizon), (111, 200));
    let mut row = env.row(&Task::new([1.5]));
    let (mut qpos, qvel) = hand_state(&env);
    qpos[2] = 0.55;
    row.set_state(&qpos, &qvel);
    let torso = torso(&env);
    let x0 = row.data().xpos()[torso][0];
    let (r, term) = row.step(&[0.2f32; 8]);
    let d = row.data();
    let v = (d.xpos()[torso][0] - x0) / env.dt();
    let contact = clipped_contact_sq(d);
    let want = -(v - 1.5).abs() + 1.0 - 0.005 * 8.0 * 0.04 - 0.5e-3 * contact + 0.05;
    assert_close(f64::from(r), want, 1e-6, "ant-vel reward");
    assert_eq!(term, !(0.2..=1.0).contains(&d.qpos()[2]));
    qpos[2] = 1.5; // above 1: ends
    row.set_state(&qpos, &vec![0.0; qvel.len()]);
    assert!(row.step(&[0.0; 8]).1);
}
