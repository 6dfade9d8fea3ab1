"""Summarizes experiments/es-ddpg/runs: per variant and seed, the held-out return before
and after adaptation (summary.json, 40 fixed tasks), the rotating 10-task test window's
post-adaptation return averaged over the last 20 iterations (progress.csv post_return_1),
the total env steps and seconds per iteration. Also the post-adaptation return of each
run when its env steps first reach 16 M (ProMP's budget for 100 iterations on nav2d).
Usage: python3 experiments/es-ddpg/table.py [RUNS_DIR]"""
import csv, json, pathlib, sys

runs = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent / "runs")
print("| run | held-out pre | held-out post | window post, last 20 it. | post at 16 M steps | env steps | s/iteration |")
print("|---|---|---|---|---|---|---|")
for d in sorted(runs.iterdir()):
    if not (d / "summary.json").exists():
        continue
    s = json.loads((d / "summary.json").read_text())
    rows = list(csv.DictReader(open(d / "progress.csv")))
    post = [float(r["post_return_1"]) for r in rows]
    last = sum(post[-20:]) / len(post[-20:])
    at = "—"
    for i, r in enumerate(rows):
        if float(r["total_env_steps"]) >= 16e6:
            w = post[max(0, i - 9): i + 1]
            at = f"{sum(w) / len(w):.1f}"
            break
    ev = s["eval"]
    print(f'| {d.name} | {ev["pre_return"]:.1f} | {ev["post_return"][-1]:.1f} | {last:.1f} | {at} | '
          f'{float(rows[-1]["total_env_steps"]):.3g} | {s["train"]["seconds_per_iteration"]:.2f} |')
