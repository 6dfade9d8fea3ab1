"""Writes tests/fixtures/mujoco_parity.json: short trajectories of Gymnasium's HalfCheetah-v5,
Ant-v5, Walker2d-v5 (on the walker2d.xml ProMP used, frame skip 8), Swimmer-v5 and
Humanoid-v5 (the
reference simulators of metarl's families) from a fixed
state under fixed actions. tests/mujoco_parity.rs replays them through metarl's rows and
compares observations and rewards.

    python3 -m venv venv && . venv/bin/activate
    pip install mujoco==3.17.0 gymnasium==1.4.0 imageio packaging
    python experiments/mujoco/parity_fixture.py

Gymnasium's rewards differ from ProMP's (other weights), so the fixture stores the raw
quantities each step reads (Gymnasium's info: x and y velocity of the reference point) and
the state after the step; the Rust test forms ProMP's reward from them.
"""
import json
import os

import gymnasium as gym
import mujoco
import numpy as np

STEPS = 25


def actions(n_act, seed):
    """Uniform in [−1, 1], rounded to float32 (metarl's actions are f32, so both sides
    simulate exactly the same controls)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, size=(STEPS, n_act)).astype(np.float32).astype(np.float64)


ASSETS = os.environ.get("METARL_MUJOCO_ASSETS", "/usr/local/share/metarl/mujoco")


def trajectory(env_id, seed, **kwargs):
    env = gym.make(env_id, **kwargs)
    env.reset(seed=seed)
    u = env.unwrapped
    qpos = u.init_qpos + 0.05 * np.sin(np.arange(u.model.nq) + seed)
    qvel = 0.2 * np.cos(np.arange(u.model.nv) + seed)
    u.set_state(qpos, qvel)
    steps = []
    for a in actions(u.model.nu, seed):
        _, _, terminated, _, info = env.step(a)
        steps.append({
            "action": a.tolist(),
            "x_velocity": float(info["x_velocity"]),
            "y_velocity": float(info.get("y_velocity", 0.0)),
            "qpos": u.data.qpos.tolist(),
            "qvel": u.data.qvel.tolist(),
            "cfrc_ext": np.clip(u.data.cfrc_ext, -1.0, 1.0).flatten().tolist(),
            **({"raw": np.concatenate([u.data.cinert.flatten(), u.data.cvel.flatten(),
                                       u.data.qfrc_actuator, u.data.cfrc_ext.flatten()]).tolist()}
               if env_id.startswith("Humanoid") else {}),
            "terminated": bool(terminated),
        })
        if terminated:
            break
    return {"env": env_id, "qpos": qpos.tolist(), "qvel": qvel.tolist(), "dt": u.dt, "steps": steps}


def main():
    out = {
        "mujoco": mujoco.__version__,
        "gymnasium": gym.__version__,
        "trajectories": [trajectory("HalfCheetah-v5", 1), trajectory("HalfCheetah-v5", 2),
                         trajectory("Ant-v5", 1), trajectory("Ant-v5", 2),
                         # ProMP's walker: the old walker2d.xml with frame skip 8.
                         trajectory("Walker2d-v5", 1, xml_file=os.path.join(ASSETS, "walker2d.xml"),
                                    frame_skip=8),
                         trajectory("Swimmer-v5", 1),
                         trajectory("Humanoid-v5", 1)],
    }
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "..", "tests", "fixtures", "mujoco_parity.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print("wrote", os.path.normpath(path))
    # Gymnasium's half_cheetah.xml makes MuJoCo's default handler write this file here.
    if os.path.exists("MUJOCO_LOG.TXT"):
        os.remove("MUJOCO_LOG.TXT")


if __name__ == "__main__":
    main()
