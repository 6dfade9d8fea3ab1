//! ES + DDPG: results independent of the rayon thread count and of interruptions (exact
//! resume), a short nav2d run improves the post-adaptation return, `metarl eval` adapts a
//! saved run, bad flags exit 2.

mod common;

use std::path::Path;
use std::process::Command;

use common::{column, json, mean, progress_without_timings};
use metarl::algo::es_ddpg::{EsDdpg, EsDdpgConfig};
use metarl::ddpg::DdpgConfig;
use metarl::learner::{MetaLearner, Phases};
use metarl::rng::stream;

fn small() -> EsDdpgConfig {
    EsDdpgConfig {
        workers: 4,
        draws: 3,
        hidden: vec![8, 8],
        test_workers: 2,
        test_tasks: 5,
        ..EsDdpgConfig::default()
    }
}

type Rows = Vec<Vec<(String, f64)>>;

fn run_in_pool(threads: usize, env: &str, cfg: &EsDdpgConfig) -> (Vec<f32>, Rows) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let device = metarl::device::DeviceKind::Flex
            .device()
            .unwrap()
            .autodiff();
        let mut l = EsDdpg::new(
            cfg.clone(),
            metarl::env::make(env).unwrap(),
            3,
            &mut stream(3, "policy"),
            &device,
        );
        let rows = (0..2)
            .map(|it| {
                let m = l.step(it, &mut Phases::new()).unwrap();
                m.0.into_iter()
                    .filter(|(n, _)| !n.ends_with("_seconds"))
                    .collect()
            })
            .collect();
        (l.actor_mean(), rows)
    })
}

/// Same seed, one or two threads: identical μ_a and metrics, on a stateless family, one
/// that terminates (cart-pole) and with minibatches drawn from the buffer.
#[test]
fn same_seed_gives_identical_results_with_one_and_two_threads() {
    for (env, batch_size, updates) in [
        ("nav2d", None, 1),
        ("cartpole-biased", Some(16), 3),
        ("point-corners", Some(8), 2),
    ] {
        let cfg = EsDdpgConfig {
            ddpg: DdpgConfig {
                batch_size,
                updates,
                ..DdpgConfig::default()
            },
            ..small()
        };
        let (a, ra) = run_in_pool(1, env, &cfg);
        let (b, rb) = run_in_pool(2, env, &cfg);
        assert_eq!(a, b, "{env}: μ_a differs between 1 and 2 threads");
        assert_eq!(ra, rb, "{env}: metrics differ");
        let (c, _) = run_in_pool(2, env, &cfg);
        assert_eq!(a, c, "{env}: reruns differ");
        let before = EsDdpg::new(
            cfg.clone(),
            metarl::env::make(env).unwrap(),
            3,
            &mut stream(3, "policy"),
            &metarl::device::DeviceKind::Flex
                .device()
                .unwrap()
                .autodiff(),
        )
        .actor_mean();
        assert_ne!(a, before, "{env}: the iterations moved μ_a");
    }
}

fn es_ddpg(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_es-ddpg"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: &std::process::Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn train(out: &Path, extra: &[&str]) {
    let mut a = vec![
        "--env",
        "nav2d",
        "--workers",
        "16",
        "--eval-tasks",
        "10",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    a.extend(extra);
    ok(&es_ddpg(&a));
}

/// A short nav2d run with the paper's networks and our default step sizes: the held-out
/// post-adaptation return rises; the adaptation itself helps (post above pre); σ moves.
#[test]
fn a_short_nav2d_run_improves_the_post_adaptation_return() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    train(&out, &["--iterations", "40"]);
    let post = column(&out, "train_post_return");
    let pre = column(&out, "train_pre_return");
    let (first, last) = (mean(&post[..5]), mean(&post[post.len() - 5..]));
    println!(
        "es-ddpg nav2d: training post-adaptation return {first:.1} → {last:.1}, pre {:.1}",
        mean(&pre[pre.len() - 5..])
    );
    assert!(last > first + 25.0, "{first} → {last}");
    assert!(
        last > mean(&pre[pre.len() - 5..]) + 20.0,
        "adaptation helps"
    );
    let sigma = column(&out, "actor_sigma_mean");
    assert_ne!(sigma[0], sigma[sigma.len() - 1], "σ is learned");
    let s = json(&out, "summary.json");
    assert_eq!(s["algo"], "es-ddpg");
    assert_eq!(s["eval"]["tasks"], 10);
    assert_eq!(s["final"]["post_return"].as_array().unwrap().len(), 1);
    // `metarl eval` rebuilds the learner from the checkpoint and scores it the same way.
    let o = Command::new(env!("CARGO_BIN_EXE_metarl"))
        .args(["eval", out.to_str().unwrap()])
        .output()
        .unwrap();
    ok(&o);
    let e = json(&out, "eval.json");
    assert_eq!(e["post_return"], s["eval"]["post_return"]);
    assert_eq!(e["pre_return"], s["eval"]["pre_return"]);
}

/// Fixed σ keeps σ where it started; the same seed gives the same progress.csv.
#[test]
fn fixed_sigma_stays_and_reruns_are_identical() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    for out in [&a, &b] {
        train(
            out,
            &["--iterations", "3", "--sigma", "fixed", "--draws", "4"],
        );
    }
    assert_eq!(progress_without_timings(&a), progress_without_timings(&b));
    let sigma = column(&a, "actor_sigma_mean");
    assert!(sigma.iter().all(|&s| (s - 0.02).abs() < 1e-6), "{sigma:?}");
}

/// `--horizon` truncates every episode: an iteration counts at most workers × (draws + 1)
/// × horizon steps (exploration and fitness episodes; a nav2d episode that reaches its
/// goal ends earlier), and nearly that many.
#[test]
fn the_horizon_override_sets_the_episode_length() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("h");
    train(
        &out,
        &["--iterations", "2", "--draws", "5", "--horizon", "20"],
    );
    let full = 16.0 * 6.0 * 20.0;
    for steps in column(&out, "env_steps") {
        assert!(
            steps <= full && steps > 0.9 * full,
            "{steps} of at most {full}"
        );
    }
    let c = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(c.contains("horizon = 20"), "{c}");
}

#[test]
fn es_ddpg_resume_continues_exactly() {
    let d = tempfile::tempdir().unwrap();
    let (full, part) = (d.path().join("full"), d.path().join("part"));
    let base = ["--draws", "4", "--ddpg-updates", "2"];
    let mut a = base.to_vec();
    a.extend(["--iterations", "6"]);
    train(&full, &a);
    let mut a = base.to_vec();
    a.extend(["--iterations", "3"]);
    train(&part, &a);
    ok(&es_ddpg(&[
        "--resume",
        part.to_str().unwrap(),
        "--iterations",
        "6",
        "--quiet",
    ]));
    assert_eq!(
        progress_without_timings(&full),
        progress_without_timings(&part)
    );
    assert_eq!(
        json(&full, "summary.json")["eval"],
        json(&part, "summary.json")["eval"]
    );
}

#[test]
fn bad_es_ddpg_flags_exit_2_and_name_the_field() {
    for (flags, field) in [
        (vec!["--workers", "1"], "es_ddpg.workers"),
        (vec!["--draws", "0"], "es_ddpg.draws"),
        (vec!["--ddpg-updates", "0"], "es_ddpg.ddpg.updates"),
        (vec!["--sigma", "wide"], "--sigma"),
        (vec!["--horizon", "0"], "horizon"),
    ] {
        let d = tempfile::tempdir().unwrap();
        let mut a = flags.clone();
        let out = d.path().join("r");
        a.extend(["--quiet", "--out", out.to_str().unwrap()]);
        let o = es_ddpg(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(field), "{flags:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{flags:?}: one line: {err}");
    }
}
