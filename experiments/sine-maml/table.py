"""Aggregates sine-MAML run directories into the markdown table of experiments/README.md:
mean ± std over seeds of the held-out MSE after 1 and 10 steps, and meta-iterations/s."""
import json, pathlib, statistics, sys

root = pathlib.Path(sys.argv[1])
groups = {}
for s in sorted(root.glob("*/summary.json")):
    d = json.loads(s.read_text())
    key = (d["hessian"], d["shots"], d["inner_steps"])
    groups.setdefault(key, []).append(d)

def ms(xs):
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs) if len(xs) > 1 else 0:.3f}"

print("| hessian | K | inner steps | seeds | MSE after 1 step | MSE after 10 steps | meta-it/s (1 thread) |")
print("|---|---|---|---|---|---|---|")
for (h, k, n), ds in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
    m1 = [d["eval"]["mse"][1] for d in ds]
    m10 = [d["eval"]["mse"][10] for d in ds]
    ips = [d["train"]["meta_iterations_per_second"] for d in ds]
    print(f"| {h} | {k} | {n} | {len(ds)} | {ms(m1)} | {ms(m10)} | {statistics.median(ips):.0f} |")
