"""Markdown table for experiments/meta-explore/run-paper.sh: per variant and env, the held-out
pre- and post-update return and success rate of each seed, the training post-update return
over the last 10 iterations (mean over seeds) and seconds per iteration.
Usage: python3 experiments/meta-explore/table-paper.py [runs/meta-explore-paper]"""
import csv, json, pathlib, statistics, sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "runs/meta-explore-paper")
print("| variant | env | iterations | held-out pre → post (per seed) | held-out success | train post, last 10 it. | s/iteration |")
print("|---|---|---|---|---|---|---|")
for v in ["mame-paper", "maml-vpg-paper", "maml-trpo-paper"]:
    for env in ["point-corners", "point-corners-fixed"]:
        runs = [r for r in sorted(root.glob(f"{v}-{env}-s*")) if (r / "summary.json").exists()]
        if not runs:
            continue
        pp, succ, last, spi, its = [], [], [], [], set()
        for r in runs:
            s = json.loads((r / "summary.json").read_text())
            pp.append(f"{s['eval']['pre_return']:.2f} → {s['eval']['post_return'][-1]:.2f}")
            succ.append(f"{s['eval']['success_rate']:.2f}")
            spi.append(s["train"]["seconds_per_iteration"])
            col = [float(x["post_return_1"]) for x in csv.DictReader(open(r / "progress.csv"))]
            its.add(len(col))
            last.append(statistics.mean(col[-10:]))
        print(f"| {v} | {env} | {'/'.join(map(str, sorted(its)))} | {' / '.join(pp)} | {' / '.join(succ)} | {statistics.mean(last):.2f} | {statistics.mean(spi):.2f} |")
