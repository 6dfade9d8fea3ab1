#!/usr/bin/env python3
"""metarl against the JAX/XLA ports of its standard workloads, side by side on this machine.

For each repetition and each thread count (1, 2) the script runs, alternating, a metarl
binary and the JAX script of the same workload (../shared/anchors/jax, same sizes, policy,
estimator), and prints one CSV line per run; at the end a Markdown table of medians and
the speed ratio metarl ÷ JAX (> 1: metarl faster).

Workloads (identical work on both sides):
- sine MAML, K = 10, meta-batch 25, 1-40-40-1 ReLU: second order 1 and 5 inner steps,
  first order 1 step; meta-iterations per second (2 000 iterations; metarl: median of 5
  blocks of 300 after 200, from progress.csv's wall clock; JAX: its median of blocks).
- nav2d ProMP and MAML-VPG (LVC), 40 tasks × 20 rollouts × 100 steps, 64-64 tanh policy:
  seconds per meta-iteration, median of 5 after 4 warm-up iterations (JAX: the faster of
  its split and `--fused` versions).
- ES-MAML nav2d, population 150, K = 20, forward FD at both levels, linear and 32-32 tanh
  policies: seconds per meta-iteration, median of 30 after one warm-up (a linear
  iteration is about 1.5 ms, so fewer are dominated by this machine's jitter). Both sides run
  151 × 22 episodes per iteration for the estimate (332 200 env steps). metarl's iteration
  also scores θ before and after adaptation on 10 test tasks (230 more episodes, 6.9% more
  work; its `env_steps` column, ≈ 355 k, counts them), which the JAX port does not do; the
  ratio is reported as measured, not corrected for it.

Threads: metarl RAYON_NUM_THREADS=N; JAX --threads N (XLA's CPU pool, see its README).

Usage: python3 experiments/vs-jax.py [--bin target/release] [--jax-python PY] [--reps 2]
       [--threads 1,2] [--only SUBSTR]
Setup: bash ../shared/anchors/jax/setup_jax_venv.sh $HOME/.venvs/jax (about 25 s) and
cargo build --release.
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
JAX_DIR = os.path.join(ROOT, "..", "shared", "anchors", "jax")


def progress(out):
    with open(os.path.join(out, "progress.csv")) as f:
        return list(csv.DictReader(f))


def iteration_seconds(rows):
    """Per-iteration wall seconds from the cumulative wall clock of progress.csv."""
    w = [float(r["wall_seconds"]) for r in rows]
    return [b - a for a, b in zip(w, w[1:])]


def run_metarl(bin_dir, name, args, threads, tmp):
    out = os.path.join(tmp, f"{name}-{threads}-{len(os.listdir(tmp))}")
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    env.pop("BURN_DEVICE", None)
    subprocess.run([os.path.join(bin_dir, name), *args, "--eval-tasks", "2", "--quiet", "--out", out],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return progress(out)


def run_jax(python, script, args, threads):
    p = subprocess.run([python, os.path.join(JAX_DIR, script), *args, "--threads", str(threads), "--json"],
                       check=True, capture_output=True, text=True)
    return next(json.loads(ln) for ln in p.stdout.splitlines()[::-1] if ln.startswith("{"))


def sine(order, steps):
    hessian = "full" if order == "second" else "none"

    def metarl(b, t, tmp):
        rows = run_metarl(b, "sine-maml", ["--iterations", "2000", "--hessian", hessian,
                                           "--inner-steps", str(steps)], t, tmp)
        w = [float(r["wall_seconds"]) for r in rows]
        blocks = [300 / (w[s + 300] - w[s]) for s in range(200, 1700, 300)]
        return statistics.median(blocks)

    def jax(py, t):
        return run_jax(py, "sine_maml_jax.py", ["--order", order, "--steps", str(steps), "--iters", "2000"],
                       t)["it_per_s_median"]

    return (f"sine MAML {order} order, {steps} step(s)", "it/s", True, metarl, jax)


def nav2d(algo):
    name, extra = ("promp", []) if algo == "promp" else ("pg-maml", ["--estimator", "lvc"])

    def metarl(b, t, tmp):
        rows = run_metarl(b, name, ["--env", "nav2d", "--iterations", "10", *extra], t, tmp)
        return statistics.median(iteration_seconds(rows)[4:9])

    def jax(py, t):
        base = ["--algo", algo, "--tasks", "40", "--warmup", "4", "--iters", "5"]
        split = run_jax(py, "nav2d_maml_jax.py", base, t)["s_per_iter_median"]
        fused = run_jax(py, "nav2d_maml_jax.py", base + ["--fused"], t)["s_per_iter_median"]
        return min(split, fused)

    label = "ProMP" if algo == "promp" else "MAML-VPG (LVC)"
    return (f"nav2d {label}", "s / meta-iteration", False, metarl, jax)


def es(policy):
    def metarl(b, t, tmp):
        rows = run_metarl(b, "es-maml", ["--env", "nav2d", "--policy", policy, "--iterations", "32"], t, tmp)
        return statistics.median(iteration_seconds(rows)[1:])

    def jax(py, t):
        return run_jax(py, "es_nav2d_jax.py", ["--policy", policy, "--warmup", "1", "--iters", "30"],
                       t)["s_per_iter_median"]

    label = "linear" if policy == "linear" else "32-32 MLP"
    return (f"ES-MAML nav2d {label}", "s / meta-iteration", False, metarl, jax)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release"))
    ap.add_argument("--jax-python", default=os.path.expanduser("~/.venvs/jax/bin/python"))
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    workloads = [sine("second", 1), sine("second", 5), sine("first", 1), nav2d("promp"), nav2d("vpg"),
                 es("linear"), es("mlp")]
    workloads = [w for w in workloads if a.only in w[0]]
    threads = [int(t) for t in a.threads.split(",")]
    results = {}
    print("rep,workload,threads,unit,metarl,jax", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.reps):
            for t in threads:
                for label, unit, higher, metarl, jax in workloads:
                    m = metarl(a.bin, t, tmp)
                    j = jax(a.jax_python, t)
                    results.setdefault((label, t), []).append((m, j))
                    print(f"{rep},{label},{t},{unit},{m:.6g},{j:.6g}", flush=True)
    print()
    print("| workload | threads | unit | metarl | JAX/XLA | metarl ÷ JAX speed |")
    print("|---|---|---|---|---|---|")
    for label, unit, higher, _, _ in workloads:
        for t in threads:
            r = results[(label, t)]
            m, j = statistics.median(x[0] for x in r), statistics.median(x[1] for x in r)
            ratios = [x[0] / x[1] if higher else x[1] / x[0] for x in r]
            span = f"{min(ratios):.2f}–{max(ratios):.2f}" if len(r) > 1 else f"{ratios[0]:.2f}"
            print(f"| {label} | {t} | {unit} | {m:.4g} | {j:.4g} | {span} |")


if __name__ == "__main__":
    sys.exit(main())
