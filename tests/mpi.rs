//! MPI (feature `mpi`): `mpirun -n 1 | 2 | 3 … --mpi` runs of es-maml (zero and first
//! order), es-ddpg, promp and pg-maml (VPG, TRPO, E-MAML) write the same `progress.csv`
//! and held-out scores as the plain binary, 2-rank runs resume on 3 ranks with identical
//! rows, and learners that do not distribute refuse `--mpi`. Needs `mpirun` (Debian's openmpi-bin; `.ci/run` installs it).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{json, progress_without_timings};

/// `mpirun -n ranks BIN args…`, allowed as root and oversubscribed (CI has 2 cores).
fn mpirun(ranks: usize, bin: &str, args: &[&str]) -> Output {
    Command::new("mpirun")
        .args(["--oversubscribe", "-n", &ranks.to_string(), bin, "--mpi"])
        .args(args)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        // Containers often forbid the cross-memory attach of the shared-memory transport.
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .output()
        .expect("mpirun should be installed (openmpi-bin)")
}

fn plain(bin: &str, args: &[&str]) -> Output {
    Command::new(bin).args(args).output().unwrap()
}

fn ok(what: &str, o: &Output) {
    assert!(
        o.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
}

fn eval(dir: &Path) -> serde_json::Value {
    json(dir, "summary.json")["eval"].clone()
}

/// The plain run and 1-, 2- and 3-rank runs of `bin` with `args` agree on every row of
/// `progress.csv` (wall-clock columns aside) and on the held-out evaluation.
fn same_for_any_rank_count(bin: &str, args: &[&str]) {
    let d = tempfile::tempdir().unwrap();
    let base = d.path().join("plain");
    let mut a = args.to_vec();
    a.extend(["--quiet", "--out", base.to_str().unwrap()]);
    ok("plain", &plain(bin, &a));
    let want = progress_without_timings(&base);
    assert!(!want.is_empty());
    for ranks in [1, 2, 3] {
        let out = d.path().join(format!("n{ranks}"));
        let mut a = args.to_vec();
        a.extend(["--quiet", "--out", out.to_str().unwrap()]);
        ok(&format!("{ranks} ranks"), &mpirun(ranks, bin, &a));
        assert_eq!(
            progress_without_timings(&out),
            want,
            "{bin} {args:?}: {ranks} ranks differ from one process"
        );
        assert_eq!(eval(&out), eval(&base), "{ranks} ranks: held-out scores");
        assert_eq!(
            json(&out, "summary.json")["ranks"],
            ranks,
            "the job really had {ranks} ranks"
        );
    }
}

#[test]
fn es_maml_zero_order_gives_the_same_run_on_any_number_of_ranks() {
    same_for_any_rank_count(
        env!("CARGO_BIN_EXE_es-maml"),
        &[
            "--env",
            "nav2d",
            "--perturbations",
            "10",
            "--queries",
            "4",
            "--task-batch",
            "2",
            "--iterations",
            "3",
            "--eval-tasks",
            "3",
        ],
    );
}

#[test]
fn es_maml_first_order_gives_the_same_run_on_any_number_of_ranks() {
    same_for_any_rank_count(
        env!("CARGO_BIN_EXE_es-maml"),
        &[
            "--env",
            "nav2d",
            "--order",
            "first",
            "--hessian",
            "full",
            "--perturbations",
            "5",
            "--queries",
            "4",
            "--iterations",
            "2",
            "--eval-tasks",
            "3",
        ],
    );
}

#[test]
fn es_ddpg_gives_the_same_run_on_any_number_of_ranks() {
    same_for_any_rank_count(
        env!("CARGO_BIN_EXE_es-ddpg"),
        &[
            "--env",
            "nav2d",
            "--workers",
            "5",
            "--draws",
            "3",
            "--iterations",
            "2",
            "--eval-tasks",
            "3",
        ],
    );
}

/// ProMP's task chunks are shared between the ranks: with 3 chunks, 2 ranks own 2 and 1,
/// 3 ranks one each, and the rows are the plain run's. Cart-pole terminates, so chunks
/// have episodes of different lengths.
#[test]
fn promp_gives_the_same_run_on_any_number_of_ranks() {
    same_for_any_rank_count(
        env!("CARGO_BIN_EXE_promp"),
        &[
            "--env",
            "cartpole-biased",
            "--tasks",
            "5",
            "--rollouts",
            "3",
            "--chunks",
            "3",
            "--outer-steps",
            "2",
            "--iterations",
            "2",
            "--eval-tasks",
            "3",
        ],
    );
}

#[test]
fn pg_maml_vpg_gives_the_same_run_on_any_number_of_ranks() {
    same_for_any_rank_count(
        env!("CARGO_BIN_EXE_pg-maml"),
        &[
            "--env",
            "nav2d",
            "--tasks",
            "4",
            "--rollouts",
            "3",
            "--chunks",
            "4",
            "--inner-steps",
            "2",
            "--estimator",
            "dice",
            "--iterations",
            "2",
            "--eval-tasks",
            "3",
        ],
    );
}

/// TRPO's conjugate gradient, Fisher-vector products and line search all sum over the
/// chunks, and E-MAML normalizes returns over the whole meta-batch.
#[test]
fn pg_maml_trpo_emaml_gives_the_same_run_on_any_number_of_ranks() {
    same_for_any_rank_count(
        env!("CARGO_BIN_EXE_pg-maml"),
        &[
            "--env",
            "nav2d",
            "--outer",
            "trpo",
            "--emaml",
            "--tasks",
            "5",
            "--rollouts",
            "2",
            "--chunks",
            "3",
            "--iterations",
            "2",
            "--eval-tasks",
            "3",
        ],
    );
}

/// A 2-rank ProMP run stopped after 2 iterations and resumed on 3 ranks to 4 writes the
/// rows of an uninterrupted single-process run of 4.
#[test]
fn a_two_rank_promp_run_resumes_on_three_ranks_exactly() {
    resumes_on_three_ranks(
        env!("CARGO_BIN_EXE_promp"),
        &[
            "--env",
            "nav2d",
            "--tasks",
            "4",
            "--rollouts",
            "2",
            "--chunks",
            "4",
            "--outer-steps",
            "2",
            "--eval-tasks",
            "3",
            "--quiet",
        ],
        2,
        4,
    );
}

/// A 2-rank es-maml run stopped after 3 iterations and resumed on 3 ranks to 6 writes the
/// rows of an uninterrupted single-process run of 6.
#[test]
fn a_two_rank_run_resumes_on_three_ranks_exactly() {
    resumes_on_three_ranks(
        env!("CARGO_BIN_EXE_es-maml"),
        &[
            "--env",
            "cartpole-biased",
            "--perturbations",
            "10",
            "--queries",
            "4",
            "--eval-tasks",
            "3",
            "--quiet",
        ],
        3,
        6,
    );
}

/// `bin args` run plainly for `total` iterations, and on 2 ranks for `first` then resumed
/// on 3 ranks to `total`: the same rows and held-out scores.
fn resumes_on_three_ranks(bin: &str, args: &[&str], first: usize, total: usize) {
    let d = tempfile::tempdir().unwrap();
    let (full, part) = (d.path().join("full"), d.path().join("part"));
    let (first, total) = (first.to_string(), total.to_string());
    let mut a = args.to_vec();
    a.extend(["--iterations", &total, "--out", full.to_str().unwrap()]);
    ok("plain", &plain(bin, &a));
    let mut a = args.to_vec();
    a.extend(["--iterations", &first, "--out", part.to_str().unwrap()]);
    ok("2 ranks", &mpirun(2, bin, &a));
    ok(
        "resume on 3 ranks",
        &mpirun(
            3,
            bin,
            &[
                "--resume",
                part.to_str().unwrap(),
                "--iterations",
                &total,
                "--quiet",
            ],
        ),
    );
    assert_eq!(
        progress_without_timings(&part),
        progress_without_timings(&full)
    );
    assert_eq!(eval(&part), eval(&full));
}

/// An error on one rank (rank 0 refuses a non-empty `--out`) ends the whole job with the
/// error's exit code and a line naming the rank, instead of leaving the other ranks
/// waiting in a collective.
#[test]
fn an_error_on_one_rank_ends_the_job() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("taken"), "x").unwrap();
    let o = Command::new("timeout")
        .args(["120", "mpirun", "--oversubscribe", "-n", "2"])
        .arg(env!("CARGO_BIN_EXE_es-maml"))
        .args([
            "--mpi",
            "--env",
            "nav2d",
            "--iterations",
            "50",
            "--quiet",
            "--out",
        ])
        .arg(d.path())
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(124), "the job hung: {err}");
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("rank 0 of 2") && err.contains("not empty"),
        "{err}"
    );
}

#[test]
fn learners_that_do_not_distribute_refuse_mpi() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("r");
    let o = plain(
        env!("CARGO_BIN_EXE_meta-explore"),
        &["--mpi", "--iterations", "1", "--out", out.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--mpi"), "{err}");
    assert!(!out.exists(), "nothing written");
}
