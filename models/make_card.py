#!/usr/bin/env python3
"""Turns a finished, evaluated run directory into a model of models/: copies what
`metarl eval` and `metarl plot` need (config.toml, checkpoint/, progress.csv,
summary.json, eval.json, plots/returns.png, plots/trajectories.png and, for MuJoCo
runs, plots/x-over-time.png) and writes the model card MODEL.md from them.

Usage: python3 models/make_card.py RUN_DIR NAME "COMMAND THAT TRAINED IT" ["NOTE"]

Run `metarl eval RUN_DIR` and `metarl plot RUN_DIR` first: the card quotes eval.json,
and tests/models.rs checks that `metarl eval` on the model reproduces it.
"""

import json
import shutil
import sys
import tomllib
from pathlib import Path


def fmt(x):
    return "—" if x is None else f"{x:.2f}"


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    run, name, command = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    note = sys.argv[4] if len(sys.argv) == 5 else ""
    out = Path(__file__).resolve().parent / name
    if out.exists():
        shutil.rmtree(out)
    (out / "checkpoint").mkdir(parents=True)
    (out / "plots").mkdir()
    for f in ["config.toml", "progress.csv", "summary.json", "eval.json"]:
        shutil.copy(run / f, out / f)
    for f in (run / "checkpoint").iterdir():
        shutil.copy(f, out / "checkpoint" / f.name)
    for f in ["returns.png", "trajectories.png", "x-over-time.png"]:
        if (run / "plots" / f).exists():
            shutil.copy(run / "plots" / f, out / "plots" / f)

    cfg = tomllib.loads((run / "config.toml").read_text())
    summary = json.loads((run / "summary.json").read_text())
    ev = json.loads((run / "eval.json").read_text())
    train = summary.get("train", {})
    post = ev["post_return"]
    rows = [
        ("algorithm", summary.get("algo", cfg.get("algo", cfg.get("method", "?")))),
        ("environment", f"`{cfg['env']}`"),
        ("seed", cfg["seed"]),
        ("iterations", ev.get("iteration", summary.get("iterations"))),
        ("git commit", summary.get("git_commit") or "not recorded"),
        ("threads", summary.get("threads", "?")),
        ("wall time", f"{train.get('wall_seconds', 0) / 60:.1f} min"),
        ("env steps", f"{train.get('env_steps', 0):.3g}"),
    ]
    scores = [
        ("held-out tasks", ev["tasks"]),
        ("return before adaptation", fmt(ev["pre_return"])),
    ]
    for k, p in enumerate(post):
        label = "return after adaptation" if len(post) == 1 else f"return after {k + 1} step(s)"
        scores.append((label, fmt(p)))
    if ev.get("success_rate") is not None:
        scores.append(("success rate after adaptation", fmt(ev["success_rate"])))
    if ev.get("mean_action"):
        scores.append(("mean-action return after adaptation", fmt(ev["mean_action"]["post_return"])))
    if ev.get("velocity_error"):
        v = ev["velocity_error"]
        scores.append(("mean \\|v − v*\\| before → after", f"{v['pre']:.3f} → {v['post']:.3f}"))

    lines = [f"# {name}", ""]
    if note:
        lines += [note, ""]
    lines += ["Trained with", "", "```bash", command, "```", ""]
    lines += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows] + [""]
    lines += ["Held-out evaluation (`eval.json`; `metarl eval` repeats it exactly, checked by",
              "`tests/models.rs`):", ""]
    lines += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in scores] + [""]
    features = " --features mujoco" if (run / "plots" / "x-over-time.png").exists() else ""
    lines += ["Reproduce the numbers and redraw the pictures:", "", "```bash",
              f"cargo run --release{features} --bin metarl -- eval models/{name}",
              f"cargo run --release{features} --bin metarl -- plot models/{name}", "```", ""]
    for f in ["returns.png", "trajectories.png", "x-over-time.png"]:
        if (out / "plots" / f).exists():
            lines.append(f"![{f}](plots/{f})")
    (out / "MODEL.md").write_text("\n".join(lines) + "\n")
    print(out)


if __name__ == "__main__":
    main()
