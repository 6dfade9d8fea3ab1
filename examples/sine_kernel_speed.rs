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
    #[cfg(target_arch = "x86_64")]
    if std::env::args().any(|a| a == "--products") {
        for (r, m, n) in [
            (10, 40, 40),
            (40, 10, 40),
            (10, 40, 1),
            (40, 10, 1),
            (10, 1, 40),
        ] {
            // SAFETY: only on a CPU with AVX-512.
            let (nn, tn) = unsafe {
                (
                    product_speed::<false>(r, m, n),
                    product_speed::<true>(r, m, n),
                )
            };
            println!("[{r}x{m}]·[{m}x{n}]: {nn:.1} GFLOP/s (a), {tn:.1} GFLOP/s (aᵀ stored)");
        }
        return;
    }
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
                ws.start_from(&net, &theta);
                for i in 0..25 {
                    let cfg = (0.01, steps, second);
                    sink += maml_task(&net, points.task(i), cfg, &mut ws, &mut grad).post;
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

/// Times one matrix-product shape on AVX-512 (GFLOP/s).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f")]
unsafe fn product_speed<const A_T: bool>(r: usize, m: usize, n: usize) -> f64 {
    let a = vec![0.5f32; r * m];
    let b = vec![0.25f32; m * n];
    let mut c = vec![0.0f32; r * n];
    let reps = 200_000;
    let t0 = Instant::now();
    for _ in 0..reps {
        metarl::nn::dense::matmul::<f32, A_T>(
            &mut c,
            std::hint::black_box(&a),
            &b,
            (r, m, n),
            false,
        );
        std::hint::black_box(&mut c);
    }
    2.0 * (r * m * n * reps) as f64 / t0.elapsed().as_secs_f64() / 1e9
}
