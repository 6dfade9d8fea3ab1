"""Aggregates sine-MAML run directories into the markdown table of experiments/README.md:
held-out MSE after 1 and 10 steps for every seed (s0 / s1 / s2), and meta-iterations/s."""
import json, pathlib, statistics, sys

root = pathlib.Path(sys.argv[1])
groups = {}
for s in sorted(root.glob("*/summary.json")):
    d = json.loads(s.read_text())
    key = (d["hessian"], d["shots"], d["inner_steps"])
    groups.setdefault(key, []).append(d)

def fmt(x):
    return f"{x:.3f}" if x < 1e3 else "diverged"

print("| hessian | K | inner steps | MSE after 1 step (s0 / s1 / s2) | MSE after 10 steps (s0 / s1 / s2) | meta-it/s (1 thread, median) |")
print("|---|---|---|---|---|---|")
for (h, k, n), ds in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
    ds = sorted(ds, key=lambda d: d["seed"])
    m1 = " / ".join(fmt(d["eval"]["mse"][1]) for d in ds)
    m10 = " / ".join(fmt(d["eval"]["mse"][10]) for d in ds)
    ips = statistics.median(d["train"]["meta_iterations_per_second"] for d in ds)
    print(f"| {h} | {k} | {n} | {m1} | {m10} | {ips:.0f} |")
