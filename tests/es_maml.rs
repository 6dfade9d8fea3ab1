//! ES-MAML: results independent of the rayon thread count, every operator (and first
//! order with and without the ES Hessian) improves the post-adaptation return on nav2d,
//! bad flags exit 2.

use std::process::Command;

use metarl::algo::es_maml::{EsMaml, EsMamlConfig, Operator, Order, PolicyKind};
use metarl::learner::{MetaLearner, Phases};
use metarl::rng::stream;

fn learner(cfg: EsMamlConfig) -> EsMaml {
    let device = metarl::device::DeviceKind::Flex
        .device()
        .unwrap()
        .autodiff();
    let env = metarl::env::make("point-corners").unwrap();
    EsMaml::new(
        cfg,
        env,
        3,
        &mut stream(3, "policy"),
        &mut stream(3, "tasks"),
        &device,
    )
}

fn run_in_pool(threads: usize, cfg: &EsMamlConfig) -> (Vec<f32>, Vec<Vec<(String, f64)>>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut l = learner(cfg.clone());
        let rows = (0..3)
            .map(|it| l.step(it, &mut Phases::new()).unwrap().0)
            .collect();
        (l.theta(), rows)
    })
}

#[test]
fn same_seed_gives_identical_results_with_one_and_two_threads() {
    for (order, operator, hessian, policy) in [
        (Order::Zero, Operator::EsGrad, false, PolicyKind::Linear),
        (Order::Zero, Operator::HillClimb, false, PolicyKind::Mlp),
        (Order::Zero, Operator::Dpp, false, PolicyKind::Linear),
        (Order::First, Operator::EsGrad, true, PolicyKind::Linear),
    ] {
        let cfg = EsMamlConfig {
            // Zero order: every perturbation adapts on the 4 corners (paper's "(N, N, N)").
            task_batch: if order == Order::Zero { 4 } else { 1 },
            order,
            operator,
            hessian,
            policy,
            hidden: vec![8],
            perturbations: 12,
            queries: 4,
            ..Default::default()
        };
        let (a, ra) = run_in_pool(1, &cfg);
        let (b, rb) = run_in_pool(2, &cfg);
        assert_eq!(
            a, b,
            "{order:?}/{operator:?}: θ differs between 1 and 2 threads"
        );
        assert_eq!(ra, rb, "{order:?}/{operator:?}: metrics differ");
    }
}

fn improves(extra: &[&str], perturbations: &str) {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let mut args = vec![
        "--env",
        "nav2d",
        "--iterations",
        "30",
        "--perturbations",
        perturbations,
        "--eval-tasks",
        "10",
        "--quiet",
    ];
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(extra);
    let o = Command::new(env!("CARGO_BIN_EXE_es-maml"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{extra:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Paths of the held-out episodes before and after adaptation, for `metarl plot`.
    let paths = std::fs::read_to_string(out.join("trajectories.csv")).unwrap();
    let mut lines = paths.lines();
    assert_eq!(lines.next(), Some("phase,task,rollout,t,x,y,goal_x,goal_y"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    for phase in ["pre", "post-1"] {
        // nav2d starts at the origin; one path per shown task, t counting from 0.
        let starts: Vec<_> = rows
            .iter()
            .filter(|r| r[0] == phase && r[3] == "0")
            .collect();
        assert_eq!(starts.len(), 6, "{extra:?}: {phase} paths");
        assert!(
            starts.iter().all(|r| r[4] == "0" && r[5] == "0"),
            "{starts:?}"
        );
    }
    let mut r = csv::Reader::from_path(out.join("progress.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let j = h.iter().position(|c| c == "post_return_1").unwrap();
    let post: Vec<f64> = r
        .records()
        .map(|x| x.unwrap()[j].parse().unwrap())
        .collect();
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let (first, last) = (mean(&post[..3]), mean(&post[post.len() - 5..]));
    println!("es-maml {extra:?}: post-adaptation return {first:.1} → {last:.1}");
    assert!(last > first + 50.0, "{extra:?}: {first} → {last}");
}

#[test]
fn each_operator_improves_the_post_adaptation_return_on_nav2d() {
    for op in ["es-grad", "hill-climb", "dpp"] {
        improves(&["--operator", op], "50");
    }
}

#[test]
fn first_order_with_and_without_the_hessian_improves_on_nav2d() {
    improves(&["--order", "first"], "20");
    improves(&["--order", "first", "--hessian", "full"], "20");
}

#[test]
fn bad_es_flags_exit_2_and_name_the_field() {
    for (args, field) in [
        (vec!["--operator", "newton"], "operator"),
        (vec!["--estimator", "median"], "estimator"),
        (vec!["--queries", "0"], "queries"),
        (vec!["--order", "second"], "order"),
        (vec!["--horizon", "0"], "horizon"),
        (
            vec!["--env", "point-corners-es", "--task-batch", "5"],
            "es.task_batch",
        ),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_es-maml"))
            .args(&args)
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(field), "{args:?}: {e}");
    }
}

#[test]
fn the_papers_horizon_and_one_hidden_layer_are_flags() {
    // ES-MAML A.7: 200-step episodes and the "H" policy (one hidden layer of 32).
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| -> (metarl::train::es_maml::EsMamlRun, f64) {
        let out = dir.path().join(name);
        let o = Command::new(env!("CARGO_BIN_EXE_es-maml"))
            .args(["--env", "point-corners-es", "--iterations", "1"])
            .args(["--perturbations", "4", "--queries", "2", "--quiet"])
            .args(["--policy", "mlp", "--hidden", "32"])
            .args(extra)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let cfg = metarl::train::load_toml(&out.join("config.toml")).unwrap();
        let progress = std::fs::read_to_string(out.join("progress.csv")).unwrap();
        let header: Vec<&str> = progress.lines().next().unwrap().split(',').collect();
        let row: Vec<&str> = progress.lines().nth(1).unwrap().split(',').collect();
        let col = header.iter().position(|h| *h == "env_steps").unwrap();
        (cfg, row[col].parse().unwrap())
    };
    let (own, own_steps) = run("own", &[]);
    let (paper, paper_steps) = run("paper", &["--horizon", "200"]);
    assert_eq!((own.horizon, paper.horizon), (None, Some(200)));
    assert_eq!(paper.es.hidden, vec![32]);
    // ES-MAML's four corners never terminate: the same episodes, each twice as long.
    assert!(own_steps > 0.0);
    assert_eq!(paper_steps, 2.0 * own_steps);
}

#[test]
fn a_task_batch_is_bounded_by_the_distinct_training_tasks() {
    let corners = metarl::env::make("point-corners-es").unwrap();
    let cfg = |task_batch| EsMamlConfig {
        task_batch,
        ..Default::default()
    };
    // 50 training tasks requested, but four corners has 4 distinct ones: all 4 are used.
    assert!(cfg(4).validate_for(corners.as_ref()).is_ok());
    let e = cfg(5)
        .validate_for(corners.as_ref())
        .unwrap_err()
        .to_string();
    assert!(e.contains("es.task_batch") && e.contains("1..=4"), "{e}");
    // A continuous family draws train_tasks tasks, so the bound is train_tasks.
    let nav = metarl::env::make("nav2d").unwrap();
    assert!(cfg(50).validate_for(nav.as_ref()).is_ok());
    let e = cfg(51).validate_for(nav.as_ref()).unwrap_err().to_string();
    assert!(e.contains("es.task_batch") && e.contains("1..=50"), "{e}");
}

fn sine_mse(extra: &[&str]) -> Vec<f64> {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("sine");
    let mut args = vec![
        "--env",
        "sine",
        "--eval-tasks",
        "100",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let o = Command::new(env!("CARGO_BIN_EXE_es-maml"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{extra:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    s["eval"]["mse"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn es_maml_on_sine_with_exact_gradient_adaptation_lowers_the_one_step_mse() {
    let before = sine_mse(&["--iterations", "0"]);
    let after = sine_mse(&[
        "--order",
        "first",
        "--hessian",
        "none",
        "--iterations",
        "600",
        "--perturbations",
        "10",
    ]);
    println!("1-step MSE {:.3} → {:.3}", before[1], after[1]);
    assert!(after[1] < 0.8 * before[1], "{before:?} → {after:?}");
}

#[test]
fn es_maml_resume_continues_exactly() {
    let d = tempfile::tempdir().unwrap();
    let (full, part) = (d.path().join("full"), d.path().join("part"));
    let base = [
        "--env",
        "point-corners",
        "--perturbations",
        "10",
        "--queries",
        "4",
        "--eval-tasks",
        "3",
        "--quiet",
    ];
    for (out, it) in [(&full, "6"), (&part, "3")] {
        let mut a = base.to_vec();
        a.extend(["--iterations", it, "--out", out.to_str().unwrap()]);
        let o = Command::new(env!("CARGO_BIN_EXE_es-maml"))
            .args(&a)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = Command::new(env!("CARGO_BIN_EXE_es-maml"))
        .args([
            "--resume",
            part.to_str().unwrap(),
            "--iterations",
            "6",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = |p: &std::path::Path| -> Vec<String> {
        let text = std::fs::read_to_string(p.join("progress.csv")).unwrap();
        text.lines()
            .map(|l| l.rsplit_once(',').unwrap().0.to_string())
            .collect()
    };
    assert_eq!(
        rows(&full),
        rows(&part),
        "wall_seconds aside, the rows are identical"
    );
    let s = |p: &std::path::Path| std::fs::read_to_string(p.join("summary.json")).unwrap();
    let eval = |t: String| serde_json::from_str::<serde_json::Value>(&t).unwrap()["eval"].clone();
    assert_eq!(eval(s(&full)), eval(s(&part)));
    // The resumed call's rates cover its own 3 iterations only: steps/s × s/iteration × 3
    // is the env steps of rows 3..6, not of all 6 rows.
    let train = serde_json::from_str::<serde_json::Value>(&s(&part)).unwrap()["train"].clone();
    let mut r = csv::Reader::from_path(part.join("progress.csv")).unwrap();
    let j = r
        .headers()
        .unwrap()
        .iter()
        .position(|c| c == "env_steps")
        .unwrap();
    let steps: Vec<f64> = r
        .records()
        .map(|x| x.unwrap()[j].parse().unwrap())
        .collect();
    let resumed: f64 = steps[3..].iter().sum();
    let per_s = train["env_steps_per_second"].as_f64().unwrap();
    let s_per_it = train["seconds_per_iteration"].as_f64().unwrap();
    let implied = per_s * s_per_it * 3.0;
    assert!(
        (implied - resumed).abs() <= 1e-9 * resumed,
        "{implied} steps implied by the rates, {resumed} taken after the resume"
    );
    // Resuming a finished run runs nothing: no rate to report, the evaluation is redone.
    let o = Command::new(env!("CARGO_BIN_EXE_es-maml"))
        .args(["--resume", part.to_str().unwrap(), "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let again = serde_json::from_str::<serde_json::Value>(&s(&part)).unwrap();
    assert!(again["train"]["env_steps_per_second"].is_null(), "{again}");
    assert!(again["train"]["seconds_per_iteration"].is_null(), "{again}");
    assert_eq!(again["eval"], eval(s(&full)));
}
