//! Sampler throughput: one ProMP-sized meta-batch (40 tasks × 20 rollouts × horizon 100 =
//! 80 000 env steps) with the Gaussian MLP (64, 64) tanh policy on Flex, and the same
//! batch with the environment alone (zero actions) to separate policy from env cost.
//!
//! `cargo bench --bench sampling`; env steps/s = 80 000 / reported time.

/// The binaries' allocator, so the benchmark measures what a user runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use metarl::env::{self, TaskDistribution, VecEnv};
use metarl::nn::GaussianPolicyConfig;
use metarl::rng::stream;

fn bench_sampling(c: &mut Criterion) {
    let device = metarl::device::DeviceKind::Flex.device().expect("flex");
    let mut g = c.benchmark_group("meta-batch-40x20x100");
    g.sample_size(10);
    g.throughput(Throughput::Elements(80_000));
    for name in ["nav2d", "point-corners"] {
        let fam = env::make(name).expect("env");
        let pol = GaussianPolicyConfig::default().init(2, 2, &mut stream(0, "policy"), &device);
        let tasks = TaskDistribution::new(fam.clone()).sample(40, &mut stream(0, "tasks"));
        let mut rng = stream(0, "action");
        g.bench_function(format!("{name}/gaussian-64x64"), |b| {
            b.iter(|| {
                let mut venv = VecEnv::for_tasks(fam.clone(), &tasks, 20, &mut stream(0, "env"));
                metarl::rollout::sample(&pol, &mut venv, 20, &mut rng, &device)
            })
        });
        g.bench_function(format!("{name}/env-only"), |b| {
            let zeros = vec![0.0f32; 800 * 2];
            b.iter(|| {
                let mut venv = VecEnv::for_tasks(fam.clone(), &tasks, 20, &mut stream(0, "env"));
                venv.reset();
                let mut total = 0.0f32;
                while !venv.all_done() {
                    total += venv.step(&zeros).reward.iter().sum::<f32>();
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_sampling);
criterion_main!(benches);
