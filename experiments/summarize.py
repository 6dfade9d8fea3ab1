"""Prints one markdown row per run directory given on the command line (or found under
runs/): algo, env, seed, held-out pre/post return, success rate, seconds per iteration,
env steps/s. Usage: python3 experiments/summarize.py runs/promp-* runs/es-maml-grid/*"""
import json, pathlib, sys

dirs = [pathlib.Path(p) for p in sys.argv[1:]] or sorted(pathlib.Path("runs").glob("*"))
print("| run | held-out pre | held-out post | success | s/iteration | env steps/s |")
print("|---|---|---|---|---|---|")
for d in dirs:
    f = d / "summary.json"
    if not f.exists():
        continue
    s = json.loads(f.read_text())
    ev, tr = s.get("eval", {}), s.get("train", {})
    if "pre_return" not in ev:
        continue
    post = ev["post_return"][-1]
    sr = ev.get("success_rate")
    sr = f"{sr:.2f}" if sr is not None else "—"
    print(f"| {d.name} | {ev['pre_return']:.2f} | {post:.2f} | {sr} | {tr.get('seconds_per_iteration', 0):.3f} | {tr.get('env_steps_per_second', 0):.3g} |")
