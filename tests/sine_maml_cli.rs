//! The `sine-maml` binary: learning on a short run, bad flags, resume.

use std::path::Path;
use std::process::{Command, Output};

fn sine_maml(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sine-maml"))
        .args(args)
        .env_remove("BURN_DEVICE")
        .output()
        .expect("the sine-maml binary should run")
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn without_wall_clock(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

#[test]
fn a_short_run_lowers_the_one_step_mse_well_below_the_zero_step_mse() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let o = sine_maml(&[
        "--iterations",
        "1000",
        "--seed",
        "3",
        "--eval-tasks",
        "200",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = summary(&out);
    let mse: Vec<f64> = s["eval"]["mse"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let ci: Vec<f64> = s["eval"]["ci95"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(mse.len(), 11);
    assert!(
        mse[1] < 0.6 * mse[0],
        "1-step {} vs 0-step {}",
        mse[1],
        mse[0]
    );
    assert!(
        mse[1] + ci[1] < mse[0] - ci[0],
        "the gap exceeds the confidence intervals"
    );
    assert!(mse[10] < mse[1]);
    assert!(s["train"]["meta_iterations_per_second"].as_f64().unwrap() > 0.0);
    for f in [
        "config.toml",
        "progress.csv",
        "eval.csv",
        "checkpoint/state.json",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
}

#[test]
fn bad_flags_exit_2_with_a_message_naming_the_field() {
    for (args, field) in [
        (vec!["--shots", "0"], "shots"),
        (vec!["--inner-lr", "-0.5"], "inner_lr"),
        (vec!["--activation", "sigmoid"], "activation"),
        (vec!["--hessian", "half"], "hessian"),
        (vec!["--env", "nav2d"], "env"),
    ] {
        let o = sine_maml(&args);
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(field), "{args:?}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{args:?}: one line, got {e}");
    }
}

#[test]
fn resume_continues_exactly_and_same_seed_repeats() {
    let d = tempfile::tempdir().unwrap();
    let full = d.path().join("full");
    let part = d.path().join("part");
    let common = [
        "--seed",
        "5",
        "--eval-tasks",
        "20",
        "--quiet",
        "--meta-batch",
        "5",
    ];
    let run = |out: &Path, iters: &str| {
        let mut a: Vec<&str> = common.to_vec();
        a.extend(["--iterations", iters, "--out", out.to_str().unwrap()]);
        let o = sine_maml(&a);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(&full, "30");
    run(&part, "20");
    let o = sine_maml(&[
        "--resume",
        part.to_str().unwrap(),
        "--iterations",
        "30",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        without_wall_clock(&full.join("progress.csv")),
        without_wall_clock(&part.join("progress.csv"))
    );
    assert_eq!(summary(&full)["eval"]["mse"], summary(&part)["eval"]["mse"]);
    // Without --resume an existing directory is refused, not overwritten.
    let o = sine_maml(&["--out", full.to_str().unwrap(), "--iterations", "1"]);
    assert_eq!(o.status.code(), Some(2));
}

/// The host kernels run tasks in chunks on the thread pool and sum their gradients in task
/// order: one and two threads give the same progress.csv, to the bit.
#[test]
fn one_and_two_threads_give_the_same_run() {
    let d = tempfile::tempdir().unwrap();
    for hessian in ["full", "none"] {
        let rows = |threads: &str| {
            let out = d.path().join(format!("{hessian}-{threads}"));
            let o = Command::new(env!("CARGO_BIN_EXE_sine-maml"))
                .args([
                    "--iterations",
                    "40",
                    "--inner-steps",
                    "2",
                    "--hessian",
                    hessian,
                ])
                .args([
                    "--eval-tasks",
                    "20",
                    "--quiet",
                    "--out",
                    out.to_str().unwrap(),
                ])
                .env_remove("BURN_DEVICE")
                .env("RAYON_NUM_THREADS", threads)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            without_wall_clock(&out.join("progress.csv"))
        };
        assert_eq!(rows("1"), rows("2"), "hessian {hessian}: 1 vs 2 threads");
    }
}
