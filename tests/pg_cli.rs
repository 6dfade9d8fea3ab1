//! Short nav2d runs of `promp` and of each `pg-maml` variant improve the post-update
//! return; TRPO steps respect the KL trust region; resume is exact; `metarl eval` works
//! on a saved run; runs repeat exactly on 1 and 2 threads and depend on `--chunks`; bad
//! flags exit 2.

mod common;
use common::{column, mean, progress_without_timings};

use std::process::{Command, Output};

fn bin(name: &str) -> &'static str {
    match name {
        "promp" => env!("CARGO_BIN_EXE_promp"),
        "pg-maml" => env!("CARGO_BIN_EXE_pg-maml"),
        _ => env!("CARGO_BIN_EXE_metarl"),
    }
}

fn run(name: &str, args: &[&str]) -> Output {
    let o = Command::new(bin(name))
        .args(args)
        .env_remove("BURN_DEVICE")
        .output()
        .expect("binary runs");
    o
}

/// Trains with a small meta-batch and checks the post-update return improved.
fn improves(name: &str, extra: &[&str], iterations: &str, margin: f64) {
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
    ];
    args.extend([
        "--eval-tasks",
        "5",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    args.extend(extra);
    let o = run(name, &args);
    assert!(
        o.status.success(),
        "{name} {extra:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let post = column(&out, "post_return_1");
    let (first, last) = (mean(&post[..3]), mean(&post[post.len() - 3..]));
    println!("{name} {extra:?}: post-update return {first:.1} → {last:.1}");
    assert!(last > first + margin, "{name} {extra:?}: {first} → {last}");
}

#[test]
fn promp_improves_the_post_update_return() {
    improves("promp", &[], "12", 30.0);
}

#[test]
fn every_vpg_estimator_improves_the_post_update_return() {
    for extra in [
        &["--estimator", "maml"][..],
        &["--estimator", "dice"][..],
        &["--estimator", "lvc"][..],
        &["--estimator", "maml", "--emaml"][..],
        &["--estimator", "lvc", "--hessian", "none"][..],
    ] {
        improves("pg-maml", extra, "15", 30.0);
    }
}

#[test]
fn maml_trpo_improves_and_every_step_respects_the_trust_region() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("trpo");
    let o = run(
        "pg-maml",
        &[
            "--outer",
            "trpo",
            "--env",
            "nav2d",
            "--tasks",
            "8",
            "--rollouts",
            "10",
            "--iterations",
            "8",
            "--eval-tasks",
            "5",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (kl, frac) = (column(&out, "kl"), column(&out, "step_fraction"));
    for (k, f) in kl.iter().zip(&frac) {
        assert!(*f == 0.0 || *k <= 0.01, "accepted step with KL {k} > 0.01");
    }
    assert!(
        frac.iter().filter(|&&f| f > 0.0).count() >= 6,
        "most steps are accepted: {frac:?}"
    );
    let post = column(&out, "post_return_1");
    assert!(mean(&post[5..]) > mean(&post[..3]) + 20.0, "{post:?}");
}

#[test]
fn resume_continues_exactly_and_eval_reads_the_saved_policy() {
    let d = tempfile::tempdir().unwrap();
    let (full, part) = (d.path().join("full"), d.path().join("part"));
    let base = [
        "--env",
        "point-corners",
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
        assert!(run("promp", &a).status.success());
    }
    let o = run(
        "promp",
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
        progress_without_timings(&part)
    );

    let o = run("metarl", &["eval", full.to_str().unwrap(), "--tasks", "3"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("3 held-out tasks") && text.contains("success rate"),
        "{text}"
    );
    assert!(text.contains("mean action after adaptation"), "{text}");
    let ev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(full.join("eval.json")).unwrap()).unwrap();
    let mean_success = ev["mean_action"]["success_rate"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&mean_success), "{ev}");
    assert!(ev["mean_action"]["post_return"]
        .as_f64()
        .unwrap()
        .is_finite());
    let o = run("metarl", &["plot", full.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        full.join("plots/trajectories.png").exists() && full.join("plots/returns.png").exists()
    );
}

#[test]
fn eval_of_a_run_that_is_not_a_pg_run_exits_2_with_a_clear_message() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("sine");
    let o = Command::new(env!("CARGO_BIN_EXE_sine-maml"))
        .args([
            "--iterations",
            "2",
            "--eval-tasks",
            "2",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = run("metarl", &["eval", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a promp, pg-maml or meta-explore run"));
}

#[test]
fn bad_pg_flags_exit_2_and_name_the_field() {
    for (args, field) in [
        (vec!["--estimator", "reinforce"], "estimator"),
        (vec!["--outer", "ppo"], "outer"),
        (vec!["--env", "nosuch"], "nosuch"),
        (vec!["--tasks", "0"], "tasks"),
        (vec!["--inner-lr", "-1"], "inner_lr"),
    ] {
        let o = run("pg-maml", &args);
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(field), "{args:?}: {e}");
    }
}

/// The task chunks are sampled and differentiated in parallel threads, each with streams of
/// its own: 1 and 2 threads give the same rows (cart-pole terminates, so chunks differ in
/// episode length), and another number of chunks gives other samples.
#[test]
fn pg_runs_repeat_on_one_and_two_threads_and_depend_on_the_chunks() {
    let d = tempfile::tempdir().unwrap();
    let rows = |name: &str, threads: &str, chunks: &str| {
        let out = d.path().join(format!("{name}-{threads}-{chunks}"));
        let o = Command::new(bin(name))
            .args([
                "--env",
                "cartpole-biased",
                "--tasks",
                "5",
                "--rollouts",
                "3",
                "--chunks",
                chunks,
                "--iterations",
                "2",
                "--eval-tasks",
                "2",
                "--quiet",
                "--out",
                out.to_str().unwrap(),
            ])
            .env_remove("BURN_DEVICE")
            .env("RAYON_NUM_THREADS", threads)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        progress_without_timings(&out)
    };
    for name in ["promp", "pg-maml"] {
        let one = rows(name, "1", "3");
        assert_eq!(one, rows(name, "2", "3"), "{name}: 1 vs 2 threads");
        assert_ne!(one, rows(name, "2", "2"), "{name}: 3 vs 2 chunks");
    }
}

/// ProMP's collapse guard: with a limit no step (not even 1/1024 of it) can meet, every
/// outer step is undone, so the policy after 2 iterations is the initial one (the held-out
/// scores equal those after 1 iteration); with the guard off steps are kept whole; with the
/// default limit they are kept or halved.
#[test]
fn promp_outer_kl_limit_undoes_steps_exactly() {
    let d = tempfile::tempdir().unwrap();
    let run_with = |name: &str, iterations: &str, limit: Option<&str>| {
        let out = d.path().join(name);
        let mut args = vec![
            "--env",
            "nav2d",
            "--tasks",
            "4",
            "--rollouts",
            "4",
            "--iterations",
            iterations,
            "--eval-tasks",
            "3",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ];
        if let Some(l) = limit {
            args.extend(["--outer-kl-limit", l]);
        }
        let o = run("promp", &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let guarded = run_with("tiny-2", "2", Some("1e-12"));
    assert_eq!(column(&guarded, "outer_steps_taken"), vec![0.0, 0.0]);
    assert_eq!(column(&guarded, "outer_step_fraction"), vec![0.0, 0.0]);
    let one = run_with("tiny-1", "1", Some("1e-12"));
    let eval = |dir: &std::path::Path| common::json(dir, "summary.json")["eval"].clone();
    assert_eq!(eval(&guarded), eval(&one), "no step survived");
    let free = run_with("off", "2", Some("inf"));
    assert_eq!(column(&free, "outer_steps_taken"), vec![5.0, 5.0]);
    assert_eq!(column(&free, "outer_step_fraction"), vec![1.0, 1.0]);
    assert_ne!(eval(&free), eval(&guarded));
    // The default limit (0.05) binds on this tiny, noisy batch: steps are halved, not
    // dropped.
    let default = run_with("default", "2", None);
    assert_eq!(column(&default, "outer_steps_taken"), vec![5.0, 5.0]);
    for f in column(&default, "outer_step_fraction") {
        assert!(f > 0.0 && f <= 1.0 && f.log2().fract() == 0.0, "{f}");
    }
    let o = run("promp", &["--outer-kl-limit", "0", "--iterations", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("promp.outer_kl_limit"));
}
