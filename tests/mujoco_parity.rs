//! Parity with the reference simulators: `tests/fixtures/mujoco_parity.json` holds short
//! trajectories of Gymnasium's HalfCheetah-v5 and Ant-v5 (same MuJoCo 3.17.0, same robot
//! models) from fixed states under fixed actions, written by
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

#[test]
fn half_cheetah_and_ant_reproduce_gymnasium_observations_and_rewards() {
    let f = fixture();
    assert_eq!(f["mujoco"], "3.17.0");
    let trajectories = f["trajectories"].as_array().unwrap();
    assert_eq!(trajectories.len(), 4);
    for t in trajectories {
        let ant = t["env"] == "Ant-v5";
        let env = Locomotion::named(if ant { "ant-dir" } else { "half-cheetah-dir" }).unwrap();
        assert!((env.dt() - t["dt"].as_f64().unwrap()).abs() < 1e-12);
        let mut row = env.row(&Task::new([1.0]));
        row.set_state(&floats(&t["qpos"]), &floats(&t["qvel"]));
        for (k, s) in t["steps"].as_array().unwrap().iter().enumerate() {
            let a: Vec<f32> = floats(&s["action"]).iter().map(|x| *x as f32).collect();
            let (r, term) = row.step(&a);
            let (qpos, qvel) = (floats(&s["qpos"]), floats(&s["qvel"]));
            let mut want: Vec<f64> = qpos[if ant { 2 } else { 1 }..].to_vec();
            want.extend(&qvel);
            let a2: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum();
            let vx = s["x_velocity"].as_f64().unwrap();
            let want_r = if ant {
                let c = floats(&s["cfrc_ext"]);
                let c2: f64 = c.iter().map(|x| x * x).sum();
                want.extend(&c);
                vx - 0.5 * a2 - 0.5e-3 * c2 + 1.0
            } else {
                vx - 0.05 * a2
            };
            let obs = row.observe();
            assert_eq!(obs.len(), want.len());
            for (j, (o, w)) in obs.iter().zip(&want).enumerate() {
                assert!(
                    close(f64::from(*o), *w),
                    "{} step {k} obs {j}: {o} vs {w}",
                    t["env"]
                );
            }
            assert!(
                close(f64::from(r), want_r),
                "{} step {k} reward: {r} vs {want_r}",
                t["env"]
            );
            assert_eq!(
                term,
                !(0.0..=1.0).contains(&qpos[2]) && ant,
                "{} step {k}",
                t["env"]
            );
        }
    }
}
