//! MuJoCo locomotion meta-tasks (cargo feature `mujoco`): the benchmarks of ProMP, ES-MAML
//! and the meta-exploration papers, on real MuJoCo 3.17 physics through `mujoco-rs`.
//!
//! Every family follows ProMP's definition (Rothfuss et al. 2019,
//! `meta_policy_search/envs/mujoco_envs/*.py`; mission-anchors §2.7–2.10) on Gymnasium's
//! robot models (`half_cheetah.xml`, `ant.xml` from the PyPI `gymnasium` wheel, installed by
//! `scripts/install-mujoco.sh`):
//!
//! | family | model | obs | reward per step | end | task | horizon |
//! |---|---|---|---|---|---|---|
//! | `half-cheetah-dir` | half_cheetah | qpos[1:], qvel (17) | d·v − 0.05‖a‖² | never | d ∈ {−1, +1} | 100 |
//! | `half-cheetah-vel` | half_cheetah | 17 | −\|v − v*\| − 0.05‖a‖² | never | v* ~ U[0, 3) | 100 |
//! | `ant-dir` | ant | qpos[2:], qvel, clip(cfrc_ext, ±1) (111) | d·v_x − 0.5‖a‖² − 5e-4‖c‖² + 1 | torso z ∉ [0, 1] or non-finite | d ∈ {−1, +1} | 100 |
//! | `ant-dir-forward` | ant | 111 | d·v_x | as ant-dir | d ∈ {−1, +1} | 100 |
//! | `ant-dir-2d` | ant | 111 | d·Δxy/dt − 0.5‖a‖² − 5e-4‖c‖² + 1 | as ant-dir | d uniform on the unit circle | 100 |
//! | `ant-goal` | ant | qpos, qvel, clip(cfrc_ext, ±1) (113) | −‖xy − g‖₁ − 0.1‖a‖² − 5e-4‖c‖² | never | g uniform in the disk of radius 3 | 200 |
//! | `ant-vel` | ant | 111 | −\|v_x − v*\| + 1 − 0.005‖a‖² − 5e-4‖c‖² + 0.05 | torso z ∉ [0.2, 1] or non-finite | v* ~ U[0, 3) | 200 |
//! | `walker-dir` | walker2d | qpos[1:], clip(qvel, ±10) (17) | d·v + 1 − 1e-3‖a‖² | unless 0.8 < height < 2 and \|angle\| < 1 | d ∈ {−1, +1} | 100 |
//! | `walker-vel` | walker2d | 17 | −\|v − v*\| + 15 − 1e-3‖a‖² | as walker-dir | v* ~ U[0, 10) | 100 |
//! | `swimmer-vel` | swimmer | qpos[2:], qvel (8) | −\|v − v*\| − 1e-4‖a‖² | never | v* ~ U[0.1, 0.2) | 100 |
//! | `humanoid-dir` | humanoid | qpos[2:], qvel, cinert, cvel, qfrc_actuator, cfrc_ext (376) | 0.25·d·Δx_com/timestep − 0.1‖a‖² − min(5e-7‖cfrc_ext‖², 10) + 5 | torso z ∉ [1, 2] | d ∈ {−1, +1} | 200 |
//! | `walker-params` | walker2d | 17 | v + 1 − 1e-3‖a‖² | as walker-dir | random physical parameters (below) | 200 |
//! | `hopper-params` | hopper | qpos[1:], clip(qvel, ±10) (11) | v + 1 − 1e-3‖a‖² | unless finite, \|s[2:]\| < 100, height > 0.7 and \|angle\| < 0.2 | random physical parameters | 200 |
//!
//! Random physical parameters (`rand_param_envs/base.py`, `log_scale_limit` 3, as ProMP uses
//! them): every body mass and every entry of the bodies' diagonal inertia × 1.5^U(−3, 3),
//! every dof's damping × 1.3^U(−3, 3), every geom's three friction coefficients ×
//! 1.5^U(−3, 3), drawn independently; a task's parameters are these multipliers in that
//! order. Each task gets its own copy of the model with the multipliers applied and
//! `mj_setConst` run (the reference, on MuJoCo 1.31, set the arrays only); the rows of a
//! task share that copy. Walker frame skip 5 here (8 in walker-dir/-vel), hopper 4.
//!
//! Details, as in the reference unless said otherwise:
//! - Frame skip 5 (dt = 0.05) for the cheetah and the ant, 8 for the walker (dt = 0.016), 4
//!   for the swimmer (dt = 0.04). v is the forward velocity (x after − x before)/dt: the root
//!   slide joint `qpos[0]` for the cheetah, the torso body's position `xpos` for the ant
//!   (ProMP's `get_body_com`; MuJoCo computes `xpos` at the start of the last physics
//!   substep, and so did the reference).
//! - Reset: `qpos = qpos0 + U(−0.1, 0.1)`, `qvel = 0.1·N(0, 1)` per coordinate (walker:
//!   both U(±0.005); swimmer: both U(±0.1)), then `mj_forward`; the draws come from the
//!   row's generator.
//! - Swimmer: the reference's reward is `+|v − v*|` (it pays for missing the target
//!   velocity, a sign bug, mission-anchors §2.12); ours is `−|v − v*|`, the task it names.
//! - Horizons are ProMP's run-script default of 100 (ant-goal: 200, its full-code sweeps).
//! - `ant-dir-forward` is ES-MAML's Forward-Backward Ant (A.7.1): the paper removes the
//!   control cost, the contact cost and the survival bonus ("to make sure the agent is
//!   explicitly performing the required task") and keeps the forward-movement reward; the
//!   rest (observation, termination, horizon) is `ant-dir`'s, which the paper does not
//!   restate.
//! - `ant-vel` has no ProMP definition; it follows MAML's (`maml_rl`
//!   `ant_env_rand.py`, also pytorch-maml-rl's AntVel): forward term −|v − v*| + 1, control
//!   cost 0.005, survive bonus 0.05, ends outside z ∈ [0.2, 1], horizon 200; v is the torso's
//!   velocity from its position difference (the source reads the torso's COM velocity)
//!   and the observation is ant-dir's.
//! - Actions are clipped to the actuators' control range before they reach the simulator
//!   and the control cost is charged on the clipped action (ProMP's `normalize` wrapper clips
//!   the same way; for these models the range is [−1, 1]).
//! - Contact forces `c = clip(cfrc_ext, −1, 1)` are computed after every step with
//!   `mj_rnePostConstraint` (deviation: the reference ran on mujoco-py 2.0, which left
//!   `cfrc_ext` at zero, so its contact terms vanished; Gymnasium ≥ v4 computes them too).
//! - `terminated` is reported apart from `truncated` (the horizon).
//! - Success (ours; the reference defines none): for the direction families, a net
//!   displacement along d over the episode > 0; none for the others.
//!
//! Rows are simulator objects ([`Rows`]): one `MjData` per row over one shared model,
//! stepped in parallel with rayon (each row's arithmetic is independent, so results do not
//! depend on the thread count). MuJoCo works in f64; observations and rewards are handed
//! over as f32.

use std::path::PathBuf;
use std::sync::{Arc, Once};

use mujoco_rs::prelude::*;
use rand::Rng as _;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::{Env, EnvSpec, Rows, Task};
use crate::error::{Error, Result};
use crate::rng::Rng;

/// The environment variable that points at the robot models (default
/// `/usr/local/share/metarl/mujoco`, where `scripts/install-mujoco.sh` puts them).
pub const ASSETS_ENV: &str = "METARL_MUJOCO_ASSETS";

/// Where the robot models are read from.
pub fn assets_dir() -> PathBuf {
    std::env::var_os(ASSETS_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/local/share/metarl/mujoco"))
}

/// MuJoCo's messages go to the `log` crate (a program can install a logger to see them)
/// instead of MuJoCo's default, which writes `MUJOCO_LOG.TXT` into the working directory
/// (Gymnasium's `half_cheetah.xml` triggers a deprecation warning on every load).
fn route_mujoco_messages() {
    static ONCE: Once = Once::new();
    // SAFETY: called before the first model load of the process, from the thread that loads.
    ONCE.call_once(|| unsafe { install_logging_hook() });
}

/// Loads a robot model from the assets directory; a missing file says how to install it.
fn load_model(file: &str) -> Result<Arc<MjModel>> {
    route_mujoco_messages();
    let path = assets_dir().join(file);
    if !path.exists() {
        return Err(Error::invalid(
            "env",
            path.display(),
            format!("an installed MuJoCo robot model: run `bash scripts/install-mujoco.sh` (or set {ASSETS_ENV})"),
        ));
    }
    MjModel::from_xml(&path)
        .map(Arc::new)
        .map_err(|e| Error::Other(format!("cannot load {}: {e}", path.display())))
}

/// The robot of a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Robot {
    /// Gymnasium's `half_cheetah.xml`: planar, 6 actuators.
    HalfCheetah,
    /// Gymnasium's `ant.xml`: free-floating torso, 8 actuators, contact forces observed.
    Ant,
    /// Gymnasium's `walker2d.xml`: planar biped, 6 actuators, falls end the episode.
    Walker,
    /// Gymnasium's `swimmer.xml`: three links in a viscous fluid, 2 actuators.
    Swimmer,
    /// Gymnasium's `hopper.xml`: planar one-legged hopper, 3 actuators.
    Hopper,
    /// Gymnasium's `humanoid.xml`: 17 actuators; the reward reads the centre of mass.
    Humanoid,
}

/// How a reset draws the state around qpos0 and zero velocity.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reset {
    /// qpos + U(±r), qvel ~ σ·N(0, 1).
    UniformNormal(f64, f64),
    /// qpos + U(±r), qvel ~ U(±r).
    Uniform(f64),
}

/// When an episode ends before the horizon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Never,
    /// Non-finite state or torso z outside [0, 1] (ProMP's ant).
    AntHeight,
    /// Non-finite state or torso z outside [0.2, 1] (MAML's ant-vel).
    AntHeightVel,
    /// Unless 0.8 < height < 2 and |angle| < 1 (ProMP's walker).
    WalkerFall,
    /// Unless finite, |s[2:]| < 100, height > 0.7 and |angle| < 0.2 (the hopper).
    HopperFall,
    /// Torso z outside [1, 2] (ProMP's humanoid).
    HumanoidHeight,
}

/// The constants of a family's step, reward, reset and observation (module table).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Recipe {
    file: &'static str,
    frame_skip: usize,
    /// Leading qpos entries left out of the observation.
    obs_skip: usize,
    qvel_clip: Option<f64>,
    /// Contact forces computed and observed (the ant).
    contacts: bool,
    /// Weight of the contact cost ‖clip(cfrc_ext, ±1)‖² (ProMP's ant: 5e-4).
    contact_weight: f64,
    reset: Reset,
    ctrl_weight: f64,
    alive: f64,
    end: End,
}

impl Recipe {
    fn of(robot: Robot, goal: Goal) -> Self {
        let cheetah = Recipe {
            file: "half_cheetah.xml",
            frame_skip: 5,
            obs_skip: 1,
            qvel_clip: None,
            contacts: false,
            contact_weight: 0.0,
            reset: Reset::UniformNormal(0.1, 0.1),
            ctrl_weight: 0.05,
            alive: 0.0,
            end: End::Never,
        };
        match (robot, goal) {
            (Robot::HalfCheetah, _) => cheetah,
            (Robot::Ant, Goal::Position { .. }) => Recipe {
                file: "ant.xml",
                obs_skip: 0,
                contacts: true,
                contact_weight: 0.5e-3,
                ctrl_weight: 0.1,
                ..cheetah
            },
            (Robot::Ant, Goal::Velocity { .. }) => Recipe {
                file: "ant.xml",
                obs_skip: 2,
                contacts: true,
                contact_weight: 0.5e-3,
                ctrl_weight: 0.005,
                alive: 1.05,
                end: End::AntHeightVel,
                ..cheetah
            },
            (Robot::Ant, _) => Recipe {
                file: "ant.xml",
                obs_skip: 2,
                contacts: true,
                contact_weight: 0.5e-3,
                ctrl_weight: 0.5,
                alive: 1.0,
                end: End::AntHeight,
                ..cheetah
            },
            (Robot::Walker, _) => Recipe {
                file: "walker2d.xml",
                frame_skip: if matches!(goal, Goal::Params { .. }) {
                    5
                } else {
                    8
                },
                qvel_clip: Some(10.0),
                reset: Reset::Uniform(0.005),
                ctrl_weight: 1e-3,
                alive: if matches!(goal, Goal::Velocity { .. }) {
                    15.0
                } else {
                    1.0
                },
                end: End::WalkerFall,
                ..cheetah
            },
            (Robot::Hopper, _) => Recipe {
                file: "hopper.xml",
                frame_skip: 4,
                qvel_clip: Some(10.0),
                reset: Reset::Uniform(0.005),
                ctrl_weight: 1e-3,
                alive: 1.0,
                end: End::HopperFall,
                ..cheetah
            },
            (Robot::Humanoid, _) => Recipe {
                file: "humanoid.xml",
                obs_skip: 2,
                contacts: true,
                reset: Reset::Uniform(0.01),
                ctrl_weight: 0.1,
                alive: 5.0,
                end: End::HumanoidHeight,
                ..cheetah
            },
            (Robot::Swimmer, _) => Recipe {
                file: "swimmer.xml",
                frame_skip: 4,
                obs_skip: 2,
                reset: Reset::Uniform(0.1),
                ctrl_weight: 1e-4,
                ..cheetah
            },
        }
    }
}

/// What a task asks of the robot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Goal {
    /// Run along x in direction d ∈ {−1, +1} (task parameters `[d]`).
    Direction,
    /// Run along the unit vector d in the plane (parameters `[d_x, d_y]`).
    Direction2d,
    /// Run along x at velocity v* ~ U[low, high) (parameters `[v*]`).
    Velocity {
        /// Lowest target velocity.
        low: f32,
        /// Highest target velocity (exclusive).
        high: f32,
    },
    /// Reach the point g drawn uniformly in the disk of this radius (parameters `[g_x, g_y]`).
    Position {
        /// The disk's radius.
        radius: f32,
    },
    /// Run forward with random physical parameters (parameters: the multipliers).
    Params {
        /// Multipliers are base^U(−limit, limit) (3 in the reference).
        log_scale_limit: f32,
    },
}

/// One MuJoCo locomotion family: a robot, a task distribution and ProMP's reward.
#[derive(Debug)]
pub struct Locomotion {
    spec: EnvSpec,
    core: Arc<Core>,
}

/// What every row of a family shares: the model and the constants read from it.
#[derive(Debug)]
struct Core {
    model: Arc<MjModel>,
    robot: Robot,
    goal: Goal,
    recipe: Recipe,
    dt: f64,
    torso: usize,
    ctrl_range: Vec<[f64; 2]>,
}

/// The family names this module defines, in display order.
pub const NAMES: &[&str] = super::MUJOCO_ENV_NAMES;

impl Locomotion {
    /// The family called `name` (one of [`NAMES`]), with its model loaded from
    /// [`assets_dir`].
    pub fn named(name: &str) -> Result<Self> {
        let (robot, goal, horizon, summary) = match name {
            "half-cheetah-dir" => (
                Robot::HalfCheetah,
                Goal::Direction,
                100,
                "MuJoCo half-cheetah, run forward or backward (ProMP)",
            ),
            "half-cheetah-vel" => (
                Robot::HalfCheetah,
                Goal::Velocity {
                    low: 0.0,
                    high: 3.0,
                },
                100,
                "MuJoCo half-cheetah, run at a target velocity in U[0, 3) (ProMP)",
            ),
            "ant-dir" => (
                Robot::Ant,
                Goal::Direction,
                100,
                "MuJoCo ant, run forward or backward along x (ProMP)",
            ),
            "ant-dir-forward" => (
                Robot::Ant,
                Goal::Direction,
                100,
                "MuJoCo ant, run forward or backward along x, forward reward only (ES-MAML A.7.1)",
            ),
            "ant-dir-2d" => (
                Robot::Ant,
                Goal::Direction2d,
                100,
                "MuJoCo ant, run in a random direction of the plane (ProMP)",
            ),
            "ant-goal" => (
                Robot::Ant,
                Goal::Position { radius: 3.0 },
                200,
                "MuJoCo ant, walk to a goal in the disk of radius 3 (ProMP)",
            ),
            "humanoid-dir" => (
                Robot::Humanoid,
                Goal::Direction,
                200,
                "MuJoCo humanoid, run forward or backward (ProMP)",
            ),
            "walker-params" => (
                Robot::Walker,
                Goal::Params { log_scale_limit: 3.0 },
                200,
                "MuJoCo walker2d with random masses, inertias, damping and friction (ProMP, rand_param_envs)",
            ),
            "hopper-params" => (
                Robot::Hopper,
                Goal::Params { log_scale_limit: 3.0 },
                200,
                "MuJoCo hopper with random masses, inertias, damping and friction (ProMP, rand_param_envs)",
            ),
            "ant-vel" => (
                Robot::Ant,
                Goal::Velocity { low: 0.0, high: 3.0 },
                200,
                "MuJoCo ant, run along x at a target velocity in U[0, 3) (MAML)",
            ),
            "walker-dir" => (Robot::Walker, Goal::Direction, 100, "MuJoCo walker2d, walk forward or backward (ProMP)"),
            "walker-vel" => (Robot::Walker, Goal::Velocity { low: 0.0, high: 10.0 }, 100, "MuJoCo walker2d, walk at a target velocity in U[0, 10) (ProMP)"),
            "swimmer-vel" => (Robot::Swimmer, Goal::Velocity { low: 0.1, high: 0.2 }, 100, "MuJoCo swimmer, swim at a target velocity in U[0.1, 0.2) (ProMP, reward sign fixed)"),
            _ => {
                return Err(Error::UnknownEnv {
                    name: name.into(),
                    allowed: NAMES.join(", "),
                })
            }
        };
        let mut recipe = Recipe::of(robot, goal);
        if name == "ant-dir-forward" {
            // ES-MAML A.7.1: only the forward-movement reward; control cost, contact cost
            // and survival bonus removed.
            (recipe.ctrl_weight, recipe.contact_weight, recipe.alive) = (0.0, 0.0, 0.0);
        }
        let model = load_model(recipe.file)?;
        let core = Core::new(model, robot, goal, recipe)?;
        let spec = EnvSpec {
            name: NAMES.iter().find(|n| **n == name).expect("listed above"),
            obs_dim: core.obs_dim(),
            act_dim: core.ctrl_range.len(),
            horizon,
            summary,
        };
        Ok(Self {
            spec,
            core: Arc::new(core),
        })
    }

    /// The robot.
    pub fn robot(&self) -> Robot {
        self.core.robot
    }

    /// The model every row simulates.
    pub fn model(&self) -> &MjModel {
        &self.core.model
    }

    /// The simulation time of one environment step (frame skip × the model's timestep).
    pub fn dt(&self) -> f64 {
        self.core.dt
    }

    /// One row for `task`, outside a batch: to set a state by hand and step it (tests,
    /// fixtures against the reference).
    pub fn row(&self, task: &Task) -> MjRow {
        MjRow {
            core: self.core.clone(),
            row: self.core.new_row(task),
        }
    }
}

/// One simulated row of a [`Locomotion`] family, driven by hand.
pub struct MjRow {
    core: Arc<Core>,
    row: Row,
}

impl MjRow {
    /// Starts an episode from the family's reset distribution.
    pub fn reset(&mut self, rng: &mut Rng) {
        self.core.reset(&mut self.row, rng);
    }

    /// Sets the state (as Gymnasium's `set_state`: `mj_resetData`, then qpos and qvel, then
    /// `mj_forward`) and makes it the episode's start.
    pub fn set_state(&mut self, qpos: &[f64], qvel: &[f64]) {
        let d = &mut self.row.data;
        d.reset();
        d.qpos_mut().copy_from_slice(qpos);
        d.qvel_mut().copy_from_slice(qvel);
        d.forward();
        self.row.start = self.core.position(&self.row.data);
        (self.row.speed_miss, self.row.steps) = (0.0, 0);
    }

    /// One environment step under `action`: (reward, terminated).
    pub fn step(&mut self, action: &[f32]) -> (f32, bool) {
        self.core.step(&mut self.row, action)
    }

    /// The observation.
    pub fn observe(&self) -> Vec<f32> {
        let mut obs = vec![0.0; self.core.obs_dim()];
        self.core.observe(&self.row.data, &mut obs);
        obs
    }

    /// The simulator state.
    pub fn data(&self) -> &MjData<Arc<MjModel>> {
        &self.row.data
    }

    /// Whether the finished episode counts as a success (direction families).
    pub fn success(&self) -> Option<bool> {
        self.core.success(&self.row)
    }

    /// The episode's mean |v − v*| per step so far (velocity families).
    pub fn velocity_error(&self) -> Option<f64> {
        self.core.velocity_error(&self.row)
    }
}

impl Core {
    fn new_row(&self, task: &Task) -> Row {
        self.new_row_on(task, self.task_model(task))
    }

    /// The model a task's rows simulate: the family's own, or for random-parameter tasks a
    /// copy with the task's multipliers applied and `mj_setConst` run.
    fn task_model(&self, task: &Task) -> Arc<MjModel> {
        if !matches!(self.goal, Goal::Params { .. }) {
            return self.model.clone();
        }
        let mut m: MjModel = (*self.model).clone();
        let mut k = task.params.iter().map(|x| f64::from(*x));
        let mut next = || {
            k.next()
                .expect("a parameter task has one multiplier per value")
        };
        m.body_mass_mut().iter_mut().for_each(|x| *x *= next());
        m.body_inertia_mut()
            .iter_mut()
            .flatten()
            .for_each(|x| *x *= next());
        m.dof_damping_mut().iter_mut().for_each(|x| *x *= next());
        m.geom_friction_mut()
            .iter_mut()
            .flatten()
            .for_each(|x| *x *= next());
        MjData::new(&mut m).set_const();
        Arc::new(m)
    }

    /// The number of multipliers of a random-parameter task.
    fn param_count(&self) -> usize {
        let f = self.model.ffi();
        let (nbody, nv, ngeom) = (f.nbody as usize, f.nv as usize, f.ngeom as usize);
        4 * nbody + nv + 3 * ngeom
    }

    fn new_row_on(&self, task: &Task, model: Arc<MjModel>) -> Row {
        Row {
            data: MjData::new(model),
            task: [
                task.params.first().copied().map_or(0.0, f64::from),
                task.params.get(1).copied().map_or(0.0, f64::from),
            ],
            start: [0.0; 2],
            speed_miss: 0.0,
            steps: 0,
        }
    }

    fn new(model: Arc<MjModel>, robot: Robot, goal: Goal, recipe: Recipe) -> Result<Self> {
        let torso = model
            .name_to_id(MjtObjBase::mjOBJ_BODY, "torso")
            .ok_or_else(|| Error::Other("the robot model has no body named `torso`".into()))?;
        let ctrl_range = model.actuator_ctrlrange().to_vec();
        Ok(Self {
            dt: model.opt().timestep * recipe.frame_skip as f64,
            model,
            robot,
            goal,
            recipe,
            torso,
            ctrl_range,
        })
    }

    fn obs_dim(&self) -> usize {
        let (nq, nv) = (self.model.ffi().nq as usize, self.model.ffi().nv as usize);
        let nbody = self.model.ffi().nbody as usize;
        let humanoid = if self.robot == Robot::Humanoid {
            10 * nbody + 6 * nbody + nv
        } else {
            0
        };
        nq - self.recipe.obs_skip + nv + humanoid + if self.recipe.contacts { 6 * nbody } else { 0 }
    }

    /// The planar position the reward reads: the root's x slide (and 0) for the planar
    /// robots, the ant's torso body (x, y).
    fn position(&self, d: &MjData<Arc<MjModel>>) -> [f64; 2] {
        match self.robot {
            Robot::Humanoid => mass_center(d),
            Robot::Ant => {
                let p = d.xpos()[self.torso];
                [p[0], p[1]]
            }
            _ => [d.qpos()[0], 0.0],
        }
    }

    /// Starts an episode: `mj_resetData`, noise on qpos0 and zero velocity, `mj_forward`.
    fn reset(&self, row: &mut Row, rng: &mut Rng) {
        let d = &mut row.data;
        d.reset();
        let qpos0 = self.model.qpos0();
        let r = match self.recipe.reset {
            Reset::UniformNormal(r, _) | Reset::Uniform(r) => r,
        };
        for (q, q0) in d.qpos_mut().iter_mut().zip(qpos0) {
            *q = q0 + rng.random_range(-r..r);
        }
        for v in d.qvel_mut().iter_mut() {
            *v = match self.recipe.reset {
                Reset::UniformNormal(_, sigma) => {
                    let n: f64 = StandardNormal.sample(rng);
                    sigma * n
                }
                Reset::Uniform(r) => rng.random_range(-r..r),
            };
        }
        d.forward();
        row.start = self.position(&row.data);
        (row.speed_miss, row.steps) = (0.0, 0);
    }

    /// One environment step: clipped controls, `frame_skip` physics steps, contact
    /// forces; returns (reward, terminated).
    fn step(&self, row: &mut Row, action: &[f32]) -> (f32, bool) {
        let before = self.position(&row.data);
        for ((c, &a), r) in row
            .data
            .ctrl_mut()
            .iter_mut()
            .zip(action)
            .zip(&self.ctrl_range)
        {
            *c = f64::from(a).clamp(r[0], r[1]);
        }
        for _ in 0..self.recipe.frame_skip {
            row.data.step();
        }
        if self.recipe.contacts {
            row.data.rne_post_constraint();
        }
        let after = self.position(&row.data);
        let task_term = self.task_reward(&row.task, before, after);
        if matches!(self.goal, Goal::Velocity { .. }) {
            // A velocity task's term is −|v − v*|.
            row.speed_miss -= task_term;
        }
        row.steps += 1;
        let ctrl = self.recipe.ctrl_weight * row.data.ctrl().iter().map(|x| x * x).sum::<f64>();
        let r = task_term - ctrl - self.contact_cost(&row.data) + self.recipe.alive;
        (r as f32, self.terminated(&row.data))
    }

    /// The ant's 5e-4‖clip(cfrc_ext, ±1)‖²; the humanoid's impact cost on the raw forces,
    /// 5e-7‖cfrc_ext‖² capped at 10; none for the others.
    fn contact_cost(&self, d: &MjData<Arc<MjModel>>) -> f64 {
        match self.robot {
            Robot::Humanoid => (0.5e-6 * raw_contact_sq(d)).min(10.0),
            _ if self.recipe.contact_weight > 0.0 => self.recipe.contact_weight * contact_sq(d),
            _ => 0.0,
        }
    }

    fn task_reward(&self, task: &[f64; 2], before: [f64; 2], after: [f64; 2]) -> f64 {
        if self.robot == Robot::Humanoid {
            // ProMP's humanoid: 0.25 × the displacement over the physics timestep, i.e.
            // 1.25 × the velocity over dt.
            return 0.25 * task[0] * (after[0] - before[0]) / self.model.opt().timestep;
        }
        let v = [
            (after[0] - before[0]) / self.dt,
            (after[1] - before[1]) / self.dt,
        ];
        match self.goal {
            Goal::Direction => task[0] * v[0],
            Goal::Direction2d => task[0] * v[0] + task[1] * v[1],
            Goal::Velocity { .. } => -(v[0] - task[0]).abs(),
            Goal::Position { .. } => -((after[0] - task[0]).abs() + (after[1] - task[1]).abs()),
            Goal::Params { .. } => v[0],
        }
    }

    /// A velocity task's mean |v − v*| per step over the row's episode so far.
    fn velocity_error(&self, row: &Row) -> Option<f64> {
        (matches!(self.goal, Goal::Velocity { .. }) && row.steps > 0)
            .then(|| row.speed_miss / f64::from(row.steps))
    }

    /// The ant's direction tasks end when the state is not finite or the torso leaves
    /// z ∈ [0, 1]; the walker's when it falls; the others never.
    fn terminated(&self, d: &MjData<Arc<MjModel>>) -> bool {
        let q = d.qpos();
        match self.recipe.end {
            End::Never => false,
            End::AntHeight | End::AntHeightVel => {
                let low = if self.recipe.end == End::AntHeight {
                    0.0
                } else {
                    0.2
                };
                let finite = q.iter().chain(d.qvel()).all(|x| x.is_finite());
                !(finite && (low..=1.0).contains(&q[2]))
            }
            End::WalkerFall => !(q[1] > 0.8 && q[1] < 2.0 && q[2] > -1.0 && q[2] < 1.0),
            End::HumanoidHeight => !(1.0..=2.0).contains(&q[2]),
            End::HopperFall => {
                let s = q.iter().chain(d.qvel());
                let ok = s.clone().all(|x| x.is_finite()) && s.skip(2).all(|x| x.abs() < 100.0);
                !(ok && q[1] > 0.7 && q[2].abs() < 0.2)
            }
        }
    }

    fn observe(&self, d: &MjData<Arc<MjModel>>, obs: &mut [f32]) {
        // Written in place: this runs for every row at every step.
        let clip = self.recipe.qvel_clip.unwrap_or(f64::INFINITY);
        let qvel = d.qvel().iter().map(|v| v.clamp(-clip, clip));
        let state = d.qpos()[self.recipe.obs_skip..].iter().copied().chain(qvel);
        let n = d.qpos().len() - self.recipe.obs_skip + d.qvel().len();
        let (head, tail) = obs.split_at_mut(n);
        fill(head, state);
        if self.robot == Robot::Humanoid {
            let extra = (d.cinert().iter().flatten().copied())
                .chain(d.cvel().iter().flatten().copied())
                .chain(d.qfrc_actuator().iter().copied())
                .chain(d.cfrc_ext().iter().flatten().copied());
            fill(tail, extra);
        } else if self.recipe.contacts {
            fill(
                tail,
                d.cfrc_ext().iter().flatten().map(|c| c.clamp(-1.0, 1.0)),
            );
        }
    }

    fn success(&self, row: &Row) -> Option<bool> {
        let p = self.position(&row.data);
        let moved = [p[0] - row.start[0], p[1] - row.start[1]];
        match self.goal {
            Goal::Direction => Some(row.task[0] * moved[0] > 0.0),
            Goal::Direction2d => Some(row.task[0] * moved[0] + row.task[1] * moved[1] > 0.0),
            _ => None,
        }
    }
}

/// Writes `values` into `out` as f32, one each.
fn fill(out: &mut [f32], values: impl Iterator<Item = f64>) {
    for (o, v) in out.iter_mut().zip(values) {
        *o = v as f32;
    }
}

/// ‖cfrc_ext‖² over every body, unclipped (the humanoid's impact cost).
fn raw_contact_sq(d: &MjData<Arc<MjModel>>) -> f64 {
    d.cfrc_ext().iter().flatten().map(|c| c * c).sum()
}

/// The centre of mass (x, y): body masses times `xipos`, as the reference's `mass_center`.
fn mass_center(d: &MjData<Arc<MjModel>>) -> [f64; 2] {
    let mass = d.model().body_mass();
    let total: f64 = mass.iter().sum();
    let (mut x, mut y) = (0.0, 0.0);
    for (m, p) in mass.iter().zip(d.xipos()) {
        x += m * p[0];
        y += m * p[1];
    }
    [x / total, y / total]
}

/// ‖clip(cfrc_ext, −1, 1)‖² over every body.
fn contact_sq(d: &MjData<Arc<MjModel>>) -> f64 {
    d.cfrc_ext()
        .iter()
        .flatten()
        .map(|c| c.clamp(-1.0, 1.0).powi(2))
        .sum()
}

/// One row: its simulator state, its task's parameters, where its episode started and,
/// for velocity tasks, Σ|v − v*| over the episode's steps so far.
struct Row {
    data: MjData<Arc<MjModel>>,
    task: [f64; 2],
    start: [f64; 2],
    speed_miss: f64,
    steps: u32,
}

/// The rows of a batch: one `MjData` each over the family's shared model.
struct MjRows {
    core: Arc<Core>,
    rows: Vec<Row>,
}

impl Rows for MjRows {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn reset(&mut self, i: usize, rng: &mut Rng) {
        self.core.reset(&mut self.rows[i], rng);
    }

    fn step(&mut self, i: usize, action: &[f32]) -> (f32, bool) {
        self.core.step(&mut self.rows[i], action)
    }

    fn observe(&self, i: usize, obs: &mut [f32]) {
        self.core.observe(&self.rows[i].data, obs);
    }

    /// Every active row in parallel (rayon); each row's arithmetic is its own, so the
    /// results do not depend on the thread count.
    fn step_active(
        &mut self,
        actions: &[f32],
        active: &[bool],
        reward: &mut [f32],
        terminated: &mut [bool],
    ) {
        let ad = self.core.ctrl_range.len();
        let core = &self.core;
        self.rows
            .par_iter_mut()
            .zip(actions.par_chunks(ad))
            .zip(active.par_iter())
            .zip(reward.par_iter_mut().zip(terminated.par_iter_mut()))
            .for_each(|(((row, a), &on), (r, t))| {
                if on {
                    (*r, *t) = core.step(row, a);
                }
            });
    }

    /// Every row in parallel (rayon).
    fn observe_all(&self, obs: &mut [f32]) {
        let od = self.core.obs_dim();
        let core = &self.core;
        obs.par_chunks_mut(od)
            .zip(self.rows.par_iter())
            .for_each(|(o, row)| core.observe(&row.data, o));
    }

    fn success(&self, i: usize, _terminated: bool) -> Option<bool> {
        self.core.success(&self.rows[i])
    }

    fn velocity_error(&self, i: usize) -> Option<f64> {
        self.core.velocity_error(&self.rows[i])
    }

    fn position(&self, i: usize) -> Option<[f32; 2]> {
        let d = &self.rows[i].data;
        Some(match self.core.robot {
            Robot::Ant => {
                let p = d.xpos()[self.core.torso];
                [p[0] as f32, p[1] as f32]
            }
            // x and the root's second coordinate: height (cheetah, walker) or y (swimmer).
            _ => [d.qpos()[0] as f32, d.qpos()[1] as f32],
        })
    }
}

impl Env for Locomotion {
    fn spec(&self) -> &EnvSpec {
        &self.spec
    }

    fn sample_task(&self, rng: &mut Rng) -> Task {
        match self.core.goal {
            Goal::Direction => Task::new([if rng.random::<bool>() { 1.0 } else { -1.0 }]),
            Goal::Direction2d => {
                let (x, y): (f32, f32) = (StandardNormal.sample(rng), StandardNormal.sample(rng));
                let n = (x * x + y * y).sqrt().max(f32::MIN_POSITIVE);
                Task::new([x / n, y / n])
            }
            Goal::Velocity { low, high } => Task::new([rng.random_range(low..high)]),
            Goal::Params { log_scale_limit: l } => {
                let f = self.core.model.ffi();
                let (nbody, nv, ngeom) = (f.nbody as usize, f.nv as usize, f.ngeom as usize);
                let mut draw = |base: f32, n: usize| -> Vec<f32> {
                    (0..n).map(|_| base.powf(rng.random_range(-l..l))).collect()
                };
                let mut m = draw(1.5, nbody);
                m.extend(draw(1.5, 3 * nbody));
                m.extend(draw(1.3, nv));
                m.extend(draw(1.5, 3 * ngeom));
                debug_assert_eq!(m.len(), self.core.param_count());
                Task::new(m)
            }
            Goal::Position { radius } => {
                let angle = rng.random_range(0.0..std::f32::consts::TAU);
                let r = radius * rng.random::<f32>().sqrt();
                Task::new([r * angle.cos(), r * angle.sin()])
            }
        }
    }

    fn simulator_rows(&self, tasks: &[Task]) -> Option<Box<dyn Rows>> {
        let mut rows: Vec<Row> = Vec::with_capacity(tasks.len());
        let mut last: Option<(&Task, Arc<MjModel>)> = None;
        for t in tasks {
            let model = match &last {
                Some((prev, m)) if *prev == t => m.clone(),
                _ => self.core.task_model(t),
            };
            rows.push(self.core.new_row_on(t, model.clone()));
            last = Some((t, model));
        }
        Some(Box::new(MjRows {
            core: self.core.clone(),
            rows,
        }))
    }

    fn goals(&self, task: &Task) -> Vec<[f32; 2]> {
        match self.core.goal {
            Goal::Position { .. } => vec![[task.param(0), task.param(1)]],
            _ => Vec::new(),
        }
    }

    /// d of the direction tasks along x, v* of the velocity tasks.
    fn target(&self, task: &Task) -> Option<f32> {
        match self.core.goal {
            Goal::Direction | Goal::Velocity { .. } => Some(task.param(0)),
            _ => None,
        }
    }
}
