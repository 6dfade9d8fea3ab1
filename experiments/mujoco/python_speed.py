"""Python side of the MuJoCo speed comparison (experiments/README.md, MuJoCo section): one
ProMP meta-batch of env steps (40 tasks x 20 rollouts x 100 = 80 000) of Gymnasium's
half-cheetah and ant models with MuJoCo 3.17.0's Python bindings:

  - `python`: the raw bindings, one MjData per row stepped in a Python loop (5 physics steps
    per env step, contact forces for the ant), with a numpy (64, 64) tanh Gaussian policy
    evaluated for all rows once per step: what a Python sampler without Gymnasium does;
  - `rollout`: `mujoco.rollout` (MuJoCo's C++ loop; physics only, open-loop controls), on 1
    and 2 threads.

Setup (same venv as parity_fixture.py): pip install mujoco==3.17.0 numpy
Run: python experiments/mujoco/python_speed.py [ASSETS_DIR]   (prints env steps/s, medians of 3)
"""
import os
import sys
import time

import mujoco
import numpy as np
from mujoco import rollout

ASSETS = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
    "METARL_MUJOCO_ASSETS", "/usr/local/share/metarl/mujoco")
ROWS, HORIZON, SKIP = 800, 100, 5


def policy(obs_dim, act_dim, rng):
    sizes = [obs_dim, 64, 64, act_dim]
    ws = [rng.normal(0, 1 / np.sqrt(a), (a, b)) for a, b in zip(sizes, sizes[1:])]
    bs = [np.zeros(b) for b in sizes[1:]]

    def act(obs):
        h = obs
        for i, (w, b) in enumerate(zip(ws, bs)):
            h = h @ w + b
            if i < len(ws) - 1:
                h = np.tanh(h)
        return h + rng.normal(size=h.shape)
    return act


def python_loop(model, ant):
    rng = np.random.default_rng(0)
    datas = [mujoco.MjData(model) for _ in range(ROWS)]
    for d in datas:
        mujoco.mj_resetData(model, d)
        mujoco.mj_forward(model, d)
    obs_dim = model.nq - 1 + model.nv + (6 * model.nbody if ant else 0)
    act = policy(obs_dim, model.nu, rng)
    t0 = time.perf_counter()
    for _ in range(HORIZON):
        obs = np.stack([np.concatenate([d.qpos[1:], d.qvel] + ([d.cfrc_ext.ravel()] if ant else []))
                        for d in datas])
        a = np.clip(act(obs), -1, 1)
        for d, ai in zip(datas, a):
            d.ctrl[:] = ai
            mujoco.mj_step(model, d, nstep=SKIP)
            if ant:
                mujoco.mj_rnePostConstraint(model, d)
    return ROWS * HORIZON / (time.perf_counter() - t0)


def rollout_loop(model, nthread):
    datas = [mujoco.MjData(model) for _ in range(max(nthread, 1))]
    state0 = np.zeros((ROWS, mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_FULLPHYSICS)))
    for i in range(ROWS):
        mujoco.mj_getState(model, datas[0], state0[i], mujoco.mjtState.mjSTATE_FULLPHYSICS)
    ctrl = np.random.default_rng(0).uniform(-1, 1, (ROWS, HORIZON * SKIP, model.nu))
    t0 = time.perf_counter()
    rollout.rollout([model] * ROWS, datas, state0, ctrl, nstep=HORIZON * SKIP)
    return ROWS * HORIZON / (time.perf_counter() - t0)


def main():
    for name, ant in [("half_cheetah.xml", False), ("ant.xml", True)]:
        model = mujoco.MjModel.from_xml_path(os.path.join(ASSETS, name))
        py = np.median([python_loop(model, ant) for _ in range(3)])
        r1 = np.median([rollout_loop(model, 1) for _ in range(3)])
        r2 = np.median([rollout_loop(model, 2) for _ in range(3)])
        print(f"{name:18} python+numpy policy {py:9.0f}/s   rollout 1 thread {r1:9.0f}/s   2 threads {r2:9.0f}/s")
    if os.path.exists("MUJOCO_LOG.TXT"):
        os.remove("MUJOCO_LOG.TXT")


if __name__ == "__main__":
    main()
