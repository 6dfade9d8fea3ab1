"""Markdown tables for experiments/meta-explore/run.sh: per variant, the held-out
post-update return and success rate of each seed, the training post-update return at
iterations 50/100/200 (mean of a 10-iteration window, averaged over seeds), and its
stability: the standard deviation over the last 50 iterations (averaged over seeds).
Usage: python3 experiments/meta-explore/table.py [runs/meta-explore]"""
import csv, json, pathlib, statistics, sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "runs/meta-explore")
variants = ["promp", "mame-none", "mame-vpg", "mame-reward", "mame-dice", "mame-emaml", "maesn"]
print("| variant | held-out post (s1 / s2 / s3) | held-out success | train post @50 / @100 / @200 | std over last 50 | s/iteration |")
print("|---|---|---|---|---|---|")
for v in variants:
    runs = sorted(root.glob(f"{v}-s*"))
    runs = [r for r in runs if (r / "summary.json").exists()]
    if not runs:
        continue
    posts, succ, at, stds, spi = [], [], {50: [], 100: [], 200: []}, [], []
    for r in runs:
        s = json.loads((r / "summary.json").read_text())
        posts.append(s["eval"]["post_return"][-1])
        succ.append(s["eval"]["success_rate"])
        spi.append(s["train"]["seconds_per_iteration"])
        col = [float(x["post_return_1"]) for x in csv.DictReader(open(r / "progress.csv"))]
        for it in at:
            if len(col) >= it:
                at[it].append(statistics.mean(col[it - 10:it]))
        stds.append(statistics.pstdev(col[-50:]))
    fmt = lambda xs: " / ".join(f"{x:.2f}" for x in xs)
    curve = " / ".join(f"{statistics.mean(at[i]):.2f}" if at[i] else "—" for i in at)
    print(f"| {v} | {fmt(posts)} | {fmt(succ)} | {curve} | {statistics.mean(stds):.2f} | {statistics.mean(spi):.2f} |")
