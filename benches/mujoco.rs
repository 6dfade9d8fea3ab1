//! MuJoCo sampling throughput (`cargo bench --features mujoco --bench mujoco`): env steps/s
//! for half-cheetah and ant in the batched sampler with the Gaussian (64, 64) tanh policy
//! on one ProMP meta-batch (40 tasks × 20 rollouts × horizon 100 = 80 000 env steps), next
//! to a raw `mujoco-rs` loop over the same model (one `MjData`, 5 physics steps per env
//! step, fixed controls, nothing else), on 1 and 2 threads (two raw loops at once: what
//! the physics alone gains from the second core). Each run measures the four one after
//! the other (alternating, so slow minutes of the machine hit all four); the
//! table shows medians of 9 runs and the median (min–max) of the per-run ratios; set
//! `METARL_BENCH_RUNS` for another count.

/// The binaries' allocator, so the benchmark measures what a user runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Instant;

use metarl::env::mujoco::Locomotion;
use metarl::env::{Env, Task, TaskDistribution, VecEnv};
use metarl::nn::GaussianPolicyConfig;
use metarl::rng::stream;
use mujoco_rs::prelude::*;

const STEPS: usize = 80_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Env steps/s of the raw loop: `STEPS` env steps of one `MjData`, resets every 100.
fn raw(env: &Locomotion, contacts: bool) -> f64 {
    let model = Arc::new(env.model().clone());
    let mut d = MjData::new(model.clone());
    let nu = model.ffi().nu as usize;
    let ctrl: Vec<f64> = (0..nu).map(|i| ((i as f64) * 0.7).sin()).collect();
    let t0 = Instant::now();
    for s in 0..STEPS {
        if s % 100 == 0 {
            d.reset();
        }
        d.ctrl_mut().copy_from_slice(&ctrl);
        for _ in 0..5 {
            d.step();
        }
        if contacts {
            d.rne_post_constraint();
        }
    }
    STEPS as f64 / t0.elapsed().as_secs_f64()
}

/// Env steps/s of two raw loops running at once on two threads (each `STEPS` steps of
/// its own `MjData`): what the physics alone gains from a second core.
fn raw_two(env: &Locomotion, contacts: bool) -> f64 {
    let t0 = Instant::now();
    std::thread::scope(|s| {
        let a = s.spawn(|| raw(env, contacts));
        let b = s.spawn(|| raw(env, contacts));
        a.join().expect("raw loop");
        b.join().expect("raw loop");
    });
    2.0 * STEPS as f64 / t0.elapsed().as_secs_f64()
}

/// Env steps/s of one meta-batch through `VecEnv` and the sampler, policy included.
fn sampler(env: &Arc<dyn Env>, threads: usize) -> f64 {
    let device = metarl::device::DeviceKind::Flex.device().expect("flex");
    let s = env.spec().clone();
    let policy = GaussianPolicyConfig::default().init(
        s.obs_dim,
        s.act_dim,
        &mut stream(0, "policy"),
        &device,
    );
    let tasks: Vec<Task> = TaskDistribution::new(env.clone()).sample(40, &mut stream(0, "tasks"));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    pool.install(|| {
        let t0 = Instant::now();
        let mut venv = VecEnv::for_tasks(env.clone(), &tasks, 20, &mut stream(0, "env"));
        let tr = metarl::rollout::sample(&policy, &mut venv, 20, &mut stream(0, "action"), &device);
        tr.env_steps() as f64 / t0.elapsed().as_secs_f64()
    })
}

fn main() {
    let runs: usize = std::env::var("METARL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(9);
    println!(
        "{:<18} {:>14} {:>16} {:>16} {:>16}",
        "family", "raw 1 thread", "raw 2 threads", "sampler 1 thread", "sampler 2 threads"
    );
    for name in ["half-cheetah-dir", "ant-dir"] {
        let fam = Locomotion::named(name).expect("run scripts/install-mujoco.sh first");
        let contacts = name.starts_with("ant");
        let env: Arc<dyn Env> = Arc::new(Locomotion::named(name).expect("model"));
        let (mut r, mut r2, mut s1, mut s2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            r.push(raw(&fam, contacts));
            r2.push(raw_two(&fam, contacts));
            s1.push(sampler(&env, 1));
            s2.push(sampler(&env, 2));
        }
        let ratios = |a: &[f64], b: &[f64]| -> (f64, f64, f64) {
            let v: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(0.0, f64::max);
            (median(v), lo, hi)
        };
        let (per_core, scaling) = (ratios(&s1, &r), ratios(&s2, &s1));
        let raw_scaling = ratios(&r2, &r);
        let (r, r2, s1, s2) = (median(r), median(r2), median(s1), median(s2));
        println!(
            "{name:<18} {r:>12.0}/s {r2:>14.0}/s {s1:>14.0}/s {s2:>14.0}/s   sampler/raw {:.3} ({:.3}–{:.3}), sampler 2 threads/1 {:.3}x ({:.3}–{:.3}), raw 2 threads/1 {:.3}x ({:.3}–{:.3})",
            per_core.0, per_core.1, per_core.2, scaling.0, scaling.1, scaling.2,
            raw_scaling.0, raw_scaling.1, raw_scaling.2
        );
    }
}
