//! `examples/custom_task.rs`, a task family written outside the crate: its dynamics on
//! hand-computed steps, and the example's own `run` (registry → ProMP and ES-MAML training
//! → held-out evaluation → plots) end to end through the public API.

#[allow(dead_code)]
#[path = "../examples/custom_task.rs"]
mod custom_task;

use custom_task::{advance, gap_task, registry, WallGap, GOAL};
use metarl::env::{Env, TaskDistribution, VecEnv};

fn assert_close(got: [f32; 2], want: [f32; 2]) {
    assert!(
        (got[0] - want[0]).abs() < 1e-6 && (got[1] - want[1]).abs() < 1e-6,
        "{got:?} != {want:?}"
    );
}

#[test]
fn moves_through_the_gap_pass_and_moves_into_the_wall_are_cut_at_it() {
    // Below the wall, gap centred at x = 0.3 (open for 0.15 < x < 0.45).
    // From (0.3, -0.02) by (0.05, 0.1) the path meets y = 0 at x = 0.3 + 0.05·0.2 = 0.31,
    // inside the gap: the move is taken whole.
    assert_close(advance([0.3, -0.02], [0.05, 0.1], 0.3), [0.35, 0.08]);
    // The same move with the gap at x = -0.3 is blocked: x moves, y stays below.
    assert_close(advance([0.3, -0.02], [0.05, 0.1], -0.3), [0.35, -0.02]);
    // Actions are clipped to ±0.1 before the wall check; moves that stay on one side pass.
    assert_close(advance([0.0, -0.5], [1.0, -3.0], 0.0), [0.1, -0.6]);
}

#[test]
fn reward_is_minus_the_distance_to_the_goal_and_success_is_within_0_1() {
    let env = WallGap::default();
    let task = gap_task(0.0);
    let mut s = [0.0f32, -0.05];
    let (r, term) = env.step(&task, &mut s, &[0.0, 0.1]);
    assert_eq!(s, [0.0, 0.05]);
    assert!(!term);
    assert!((r - -(GOAL[1] - 0.05)).abs() < 1e-6, "{r}");
    assert_eq!(env.success(&task, &[0.0, 0.45], false), Some(true));
    assert_eq!(env.success(&task, &[0.0, 0.3], false), Some(false));
}

#[test]
fn the_registered_family_runs_in_a_vec_env_like_a_builtin_one() {
    let r = registry();
    assert!(r.names().contains(&"nav2d") && r.names().contains(&"wall-gap"));
    let fam = r.make("wall-gap").unwrap();
    let tasks = TaskDistribution::new(fam.clone()).held_out(3);
    assert!(tasks
        .iter()
        .all(|t| t.params.len() == 1 && t.param(0).abs() < 0.6));
    let mut venv = VecEnv::for_tasks(fam, &tasks, 2, &mut metarl::rng::stream(1, "env"));
    assert_eq!(venv.reset(), vec![0.0, -0.5].repeat(6));
    for _ in 0..60 {
        venv.step(&[0.0, 0.1].repeat(6));
    }
    assert!(venv.all_done(), "truncated at the horizon of 60");
}

#[test]
fn the_example_meta_trains_evaluates_and_plots_with_promp_and_es_maml() {
    let d = tempfile::tempdir().unwrap();
    let o = custom_task::run(d.path(), 3, true).expect("the example runs");
    let names: Vec<&str> = o.returns.iter().map(|r| r.0).collect();
    assert_eq!(names, ["promp", "es-maml"]);
    for (name, pre, post) in &o.returns {
        assert!(pre.is_finite() && post.is_finite(), "{name}: {pre} {post}");
        let dir = d.path().join(name);
        for file in ["config.toml", "progress.csv", "summary.json", "eval.json"] {
            assert!(dir.join(file).exists(), "{name}: {file}");
        }
        let progress = std::fs::read_to_string(dir.join("progress.csv")).unwrap();
        assert_eq!(
            progress.lines().count(),
            1 + 3,
            "{name}: header + 3 iterations"
        );
        let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
        assert!(config.contains("env = \"wall-gap\""), "{config}");
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(s["env"], "wall-gap");
        assert!(s["final"]["post_return"].is_array(), "{s}");
        assert!(s["eval"]["success_rate"].is_number(), "{s}");
        assert!(dir.join("plots/trajectories.png").exists(), "{name}");
    }
    assert!(!o.plots.is_empty());
}
