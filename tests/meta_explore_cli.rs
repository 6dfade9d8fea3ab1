//! `meta-explore` end to end: short runs of MAME (and its ablations) and MAESN improve the
//! post-update return on nav2d; resume is exact; `metarl eval` and `metarl plot` read the
//! run; bad flags exit 2 naming the field.

mod common;
use common::{column, mean, progress_without_timings};

use std::process::{Command, Output};

fn run(bin: &str, args: &[&str]) -> Output {
    let exe = match bin {
        "meta-explore" => env!("CARGO_BIN_EXE_meta-explore"),
        _ => env!("CARGO_BIN_EXE_metarl"),
    };
    Command::new(exe)
        .args(args)
        .env_remove("BURN_DEVICE")
        .output()
        .expect("binary runs")
}

/// Trains on nav2d with a small meta-batch; the post-update return must improve by
/// `margin` between the first and last three iterations.
fn improves(extra: &[&str], iterations: &str, margin: f64) {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let mut args = vec![
        "--env",
        "nav2d",
        "--tasks",
        "10",
        "--rollouts",
        "10",
        "--iterations",
        iterations,
        "--eval-tasks",
        "5",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let o = run("meta-explore", &args);
    assert!(
        o.status.success(),
        "{extra:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let post = column(&out, "post_return_1");
    let (first, last) = (mean(&post[..3]), mean(&post[post.len() - 3..]));
    println!("meta-explore {extra:?}: post-update return {first:.1} → {last:.1}");
    assert!(last > first + margin, "{extra:?}: {first} → {last}");
}

#[test]
fn mame_and_its_ablations_improve_the_post_update_return() {
    for ablation in ["none", "vpg", "reward", "dice", "emaml"] {
        improves(&["--method", "mame", "--ablation", ablation], "25", 10.0);
    }
}

#[test]
fn maesn_improves_the_post_update_return() {
    improves(&["--method", "maesn"], "15", 10.0);
}

#[test]
fn resume_continues_exactly_and_eval_and_plot_read_the_run() {
    for method in ["mame", "maesn"] {
        let d = tempfile::tempdir().unwrap();
        let (full, part) = (d.path().join("full"), d.path().join("part"));
        let base = [
            "--method",
            method,
            "--tasks",
            "4",
            "--rollouts",
            "4",
            "--eval-tasks",
            "4",
            "--quiet",
        ];
        for (out, it) in [(&full, "4"), (&part, "2")] {
            let mut a = base.to_vec();
            a.extend(["--iterations", it, "--out", out.to_str().unwrap()]);
            let o = run("meta-explore", &a);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        let o = run(
            "meta-explore",
            &[
                "--resume",
                part.to_str().unwrap(),
                "--iterations",
                "4",
                "--quiet",
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            progress_without_timings(&full),
            progress_without_timings(&part),
            "{method}: resume must be exact"
        );

        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(full.join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary["method"], method);
        assert!(summary["eval"]["success_rate"].is_number());

        let o = run("metarl", &["eval", full.to_str().unwrap(), "--tasks", "3"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("3 held-out tasks"), "{text}");
        let o = run("metarl", &["plot", full.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(full.join("plots/trajectories.png").exists());
    }
}

#[test]
fn bad_flags_exit_2_and_name_the_field() {
    for (args, field) in [
        (vec!["--method", "rl2"], "method"),
        (vec!["--ablation", "nosuch"], "ablation"),
        (vec!["--method", "maesn", "--ablation", "vpg"], "ablation"),
        (vec!["--tasks", "0"], "tasks"),
        (vec!["--rollouts", "1"], "rollouts"),
        (vec!["--inner-lr", "-1"], "inner_lr"),
        (vec!["--latent-dim", "0"], "latent_dim"),
        (vec!["--env", "nosuch"], "nosuch"),
    ] {
        let o = run("meta-explore", &args);
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(field), "{args:?}: {e}");
    }
}
