//! Parity with the reference simulators: `tests/fixtures/mujoco_parity.json` holds short
//! trajectories of Gymnasium's HalfCheetah-v5, Ant-v5, Walker2d-v5 (ProMP's walker2d.xml,
//! frame skip 8) and Swimmer-v5 (same MuJoCo 3.17.0, same robot models) from fixed states under fixed actions, written by
//! `experiments/mujoco/parity_fixture.py`. metarl's rows replay them: every observation and
//! ProMP's reward (formed from the reference's velocities and contact forces) must agree to
//! 1e-6.
#![cfg(feature = "mujoco")]

use metarl::env::mujoco::Locomotion;
use metarl::env::Task;
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mujoco_parity.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-6 * want.abs().max(1.0)
}

/// The family replaying a reference environment, its task, and the parts of a step the
/// test needs: (obs from qpos/qvel/contacts, ProMP's reward, termination).
struct Replay {
    family: &'static str,
    task: Task,
    qpos_skip: usize,
    qvel_clip: f64,
    contacts: bool,
}

impl Replay {
    fn of(env: &str) -> Self {
        let (family, task, qpos_skip, qvel_clip, contacts) = match env {
            "HalfCheetah-v5" => ("half-cheetah-dir", [1.0], 1, f64::INFINITY, false),
            "Ant-v5" => ("ant-dir", [1.0], 2, f64::INFINITY, true),
            "Walker2d-v5" => ("walker-dir", [1.0], 1, 10.0, false),
            "Swimmer-v5" => ("swimmer-vel", [0.15], 2, f64::INFINITY, false),
            "Humanoid-v5" => ("humanoid-dir", [1.0], 2, f64::INFINITY, false),
            other => panic!("no family replays {other}"),
        };
        Self {
            family,
            task: Task::new(task),
            qpos_skip,
            qvel_clip,
            contacts,
        }
    }

    /// ProMP's reward of the family from the reference's forward velocity.
    fn reward(&self, vx: f64, a2: f64, contact2: f64) -> f64 {
        match self.family {
            "half-cheetah-dir" => vx - 0.05 * a2,
            "ant-dir" => vx - 0.5 * a2 - 0.5e-3 * contact2 + 1.0,
            "walker-dir" => vx + 1.0 - 1e-3 * a2,
            "swimmer-vel" => -(vx - 0.15).abs() - 1e-4 * a2,
            // 0.25 Δx / timestep = 1.25 Δx / dt (frame skip 5); impact cost on raw forces.
            "humanoid-dir" => 1.25 * vx - 0.1 * a2 - (0.5e-6 * contact2).min(10.0) + 5.0,
            other => panic!("{other}"),
        }
    }

    fn terminated(&self, qpos: &[f64]) -> bool {
        match self.family {
            "ant-dir" => !(0.0..=1.0).contains(&qpos[2]),
            "walker-dir" => !(qpos[1] > 0.8 && qpos[1] < 2.0 && qpos[2].abs() < 1.0),
            "humanoid-dir" => !(1.0..=2.0).contains(&qpos[2]),
            _ => false,
        }
    }
}

#[test]
fn every_family_reproduces_gymnasium_observations_and_rewards() {
    let f = fixture();
    assert_eq!(f["mujoco"], "3.17.0");
    let trajectories = f["trajectories"].as_array().unwrap();
    assert_eq!(trajectories.len(), 7);
    for t in trajectories {
        let name = t["env"].as_str().unwrap();
        let rp = Replay::of(name);
        let env = Locomotion::named(rp.family).unwrap();
        assert!(
            (env.dt() - t["dt"].as_f64().unwrap()).abs() < 1e-12,
            "{name} dt"
        );
        let mut row = env.row(&rp.task);
        row.set_state(&floats(&t["qpos"]), &floats(&t["qvel"]));
        let steps = t["steps"].as_array().unwrap();
        assert!(!steps.is_empty());
        for (k, s) in steps.iter().enumerate() {
            let a: Vec<f32> = floats(&s["action"]).iter().map(|x| *x as f32).collect();
            let (r, term) = row.step(&a);
            let (qpos, qvel) = (floats(&s["qpos"]), floats(&s["qvel"]));
            let mut want: Vec<f64> = qpos[rp.qpos_skip..].to_vec();
            want.extend(qvel.iter().map(|v| v.clamp(-rp.qvel_clip, rp.qvel_clip)));
            let mut c = floats(&s["cfrc_ext"]);
            if rp.contacts {
                want.extend(&c);
            }
            if s.get("raw").is_some() {
                // The humanoid: cinert, cvel, qfrc_actuator, then the raw cfrc_ext.
                let raw = floats(&s["raw"]);
                c = raw[raw.len() - c.len()..].to_vec();
                want.extend(&raw);
            }
            // Controls as simulated: clipped to the actuators' range (the humanoid's is ±0.4).
            let range = env.model().actuator_ctrlrange();
            let a2: f64 = a
                .iter()
                .zip(range)
                .map(|(x, r)| f64::from(*x).clamp(r[0], r[1]).powi(2))
                .sum();
            let c2: f64 = c.iter().map(|x| x * x).sum();
            let want_r = rp.reward(s["x_velocity"].as_f64().unwrap(), a2, c2);
            let obs = row.observe();
            assert_eq!(obs.len(), want.len(), "{name}");
            for (j, (o, w)) in obs.iter().zip(&want).enumerate() {
                assert!(
                    close(f64::from(*o), *w),
                    "{name} step {k} obs {j}: {o} vs {w}"
                );
            }
            assert!(
                close(f64::from(r), want_r),
                "{name} step {k} reward: {r} vs {want_r}"
            );
            assert_eq!(term, rp.terminated(&qpos), "{name} step {k}");
        }
    }
}
