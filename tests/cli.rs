//! The `metarl` binary: determinism of `rollout`, and bad input → exit code 2 with a
//! message naming the problem.

use std::process::{Command, Output};

fn metarl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_metarl"))
        .args(args)
        .env_remove("BURN_DEVICE")
        .output()
        .expect("the metarl binary should run")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn same_seed_gives_identical_rollout_output_and_another_seed_differs() {
    let args = [
        "rollout",
        "--env",
        "nav2d",
        "--tasks",
        "3",
        "--episodes",
        "2",
        "--seed",
        "7",
    ];
    let a = metarl(&args);
    let b = metarl(&args);
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(a.stdout, b.stdout);
    let c = metarl(&[
        "rollout",
        "--env",
        "nav2d",
        "--tasks",
        "3",
        "--episodes",
        "2",
        "--seed",
        "8",
    ]);
    assert_ne!(a.stdout, c.stdout);
    let text = String::from_utf8_lossy(&a.stdout);
    assert!(text.contains("6 episodes"), "{text}");
}

#[test]
fn every_listed_env_rolls_out() {
    let list = metarl(&["list-envs"]);
    assert!(list.status.success());
    let text = String::from_utf8_lossy(&list.stdout);
    for name in metarl::env::ENV_NAMES {
        assert!(text.contains(name), "list-envs misses {name}");
        let o = metarl(&["rollout", "--env", name, "--tasks", "2", "--episodes", "1"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
}

#[test]
fn unknown_env_exits_2_and_names_it() {
    let o = metarl(&["rollout", "--env", "nosuch"]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("nosuch") && e.contains("nav2d"), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
}

#[test]
fn negative_and_zero_counts_exit_2_and_name_the_flag() {
    let o = metarl(&["rollout", "--env", "nav2d", "--tasks", "-3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("-3"), "{}", stderr(&o));
    let o = metarl(&["rollout", "--env", "nav2d", "--episodes", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("episodes"), "{}", stderr(&o));
}

#[test]
fn a_backend_not_compiled_in_exits_2() {
    if cfg!(feature = "wgpu") {
        return;
    }
    let o = metarl(&["rollout", "--env", "nav2d", "--device", "wgpu"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("wgpu"), "{}", stderr(&o));
}

#[test]
fn plot_of_a_missing_directory_fails_cleanly() {
    let o = metarl(&["plot", "/nonexistent/run"]);
    assert!(!o.status.success());
    assert!(!stderr(&o).is_empty());
}

#[test]
fn rollout_save_then_plot_draws_trajectories() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_str().unwrap();
    let o = metarl(&[
        "rollout",
        "--env",
        "point-corners",
        "--tasks",
        "2",
        "--episodes",
        "3",
        "--save",
        dir,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(d.path().join("trajectories.csv")).unwrap();
    // Header + 2 tasks × 3 rollouts × 101 positions (horizon 100, never terminates).
    assert_eq!(csv.lines().count(), 1 + 2 * 3 * 101);
    let o = metarl(&["plot", dir]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(d.path().join("plots/trajectories.png").exists());
}

#[test]
fn malformed_toml_and_unknown_keys_exit_2_naming_the_problem() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.toml");
    std::fs::write(&bad, "tasks = [unclosed").unwrap();
    let o = metarl(&["rollout", "--config", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.toml"), "{}", stderr(&o));

    let unknown = d.path().join("unknown.toml");
    std::fs::write(&unknown, "env = \"nav2d\"\nepisodez = 3\n").unwrap();
    let o = metarl(&["rollout", "--config", unknown.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("episodez"), "{}", stderr(&o));

    let invalid = d.path().join("invalid.toml");
    std::fs::write(&invalid, "[policy]\ninit_std = -1.0\n").unwrap();
    let o = metarl(&["rollout", "--config", invalid.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("policy.init_std") && e.contains("-1"), "{e}");
}

#[test]
fn a_config_file_sets_values_and_flags_override_it() {
    let d = tempfile::tempdir().unwrap();
    let good = d.path().join("good.toml");
    std::fs::write(
        &good,
        "env = \"goal-1d\"\ntasks = 2\nepisodes = 3\nseed = 4\n",
    )
    .unwrap();
    let o = metarl(&["rollout", "--config", good.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("goal-1d: 6 episodes"));
    let o = metarl(&[
        "rollout",
        "--config",
        good.to_str().unwrap(),
        "--episodes",
        "1",
    ]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("goal-1d: 2 episodes"));
}
