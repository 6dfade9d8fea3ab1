//! Times the host sine-MAML meta-gradient ([`metarl::supervised::meta_gradient_host`]) on
//! one fixed batch (K 10, 25 tasks, 1-40-40-1 ReLU), sequentially per task: the kernel
//! alone, without task sampling, the optimizer or the thread pool.
//!
//! `cargo run --release --example sine_kernel_speed`

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use metarl::algo::sine_maml::{SineMamlConfig, SinePoints};
use metarl::env::sine::SineDistribution;
use metarl::nn::dense::{maml_task, Workspace};
use metarl::rng::stream;

fn main() {
    let cfg = SineMamlConfig::default();
    let net = cfg.dense();
    let mut r = stream(0, "theta");
    let theta: Vec<f32> = (0..net.num_params())
        .map(|_| rand::Rng::random_range(&mut r, -0.3f32..0.3))
        .collect();
    let dist = SineDistribution::default();
    let mut tr = stream(0, "tasks");
    let tasks: Vec<_> = (0..25).map(|_| dist.sample_task(&mut tr)).collect();
    let points = SinePoints::sample(&dist, &tasks, 10, &mut tr);
    for (steps, second) in [(1, true), (5, true), (1, false)] {
        let mut times = vec![];
        for _ in 0..7 {
            let n = 2000;
            let t0 = Instant::now();
            let mut sink = 0.0;
            let (mut ws, mut grad) = (Workspace::default(), vec![0.0f32; theta.len()]);
            for _ in 0..n {
                for i in 0..25 {
                    let cfg = (0.01, steps, second);
                    sink += maml_task(&net, &theta, points.task(i), cfg, &mut ws, &mut grad).post;
                }
            }
            std::hint::black_box(sink);
            times.push(t0.elapsed().as_secs_f64() / n as f64);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "steps {steps} second order {second}: {:.1} µs per 25-task batch (median of 7), {:.0} batches/s",
            times[3] * 1e6,
            1.0 / times[3]
        );
    }
}
