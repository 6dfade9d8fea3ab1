"""ES-MAML grid table: per config, held-out pre/post return and success rate for each seed."""
import json, pathlib, sys, collections

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "runs/es-maml-grid")
groups = collections.defaultdict(list)
for f in sorted(root.glob("*/summary.json")):
    name = f.parent.name.rsplit("-s", 1)[0]
    groups[name].append(json.loads(f.read_text()))
print("| config | env | held-out pre → post (s1 / s2 / s3) | success after adaptation | s/iteration | env steps/s |")
print("|---|---|---|---|---|---|")
for name, ds in groups.items():
    ds.sort(key=lambda d: d["seed"])
    pp = " / ".join(f"{d['eval']['pre_return']:.1f} → {d['eval']['post_return'][0]:.1f}" for d in ds)
    sr = " / ".join("—" if d["eval"]["success_rate"] is None else f"{d['eval']['success_rate']:.2f}" for d in ds)
    spi = sorted(d["train"]["seconds_per_iteration"] for d in ds)[len(ds) // 2]
    eps = sorted(d["train"]["env_steps_per_second"] for d in ds)[len(ds) // 2]
    print(f"| `{name}` | {ds[0]['env']} | {pp} | {sr} | {spi:.3f} | {eps:.3g} |")
