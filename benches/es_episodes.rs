//! Evolution-strategies episode throughput: 64 nav2d episodes (horizon 100, 6 400 env
//! steps) of deterministic flat-vector policies with distinct parameters, run one at a
//! time (`episode_return_flat`) and in SIMD lanes (`episode_returns_lanes`), for the linear
//! 2 → 2 and the 2-32-32-2 tanh policy. Both give identical returns (`tests/lanes.rs`).
//!
//! `cargo bench --bench es_episodes`; env steps/s = 6 400 / reported time.

/// The binaries' allocator, so the benchmark measures what a user runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use metarl::env::{self, Env, Task};
use metarl::nn::flat::FlatPolicy;
use metarl::nn::Activation;
use metarl::rng::stream;
use metarl::rollout::{episode_return_flat, episode_returns_lanes, ObsNorm, ObsStats};
use rand_distr::{Distribution, StandardNormal};

const EPISODES: usize = 64;

fn bench_es_episodes(c: &mut Criterion) {
    let fam: Arc<dyn Env> = env::make("nav2d").expect("env");
    let mut rng = stream(0, "bench");
    let mut g = c.benchmark_group("es-episodes-64x100");
    g.throughput(Throughput::Elements((EPISODES * 100) as u64));
    for (name, hidden) in [("linear", vec![]), ("mlp-32x32", vec![32, 32])] {
        let mut sizes = vec![2];
        sizes.extend(&hidden);
        sizes.push(2);
        let policy = FlatPolicy {
            sizes,
            activation: Activation::Tanh,
            tanh_output: true,
        };
        let thetas: Vec<Vec<f32>> = (0..EPISODES)
            .map(|_| {
                (0..policy.num_params())
                    .map(|_| {
                        let x: f64 = StandardNormal.sample(&mut rng);
                        0.3 * x as f32
                    })
                    .collect()
            })
            .collect();
        let tasks: Vec<Task> = (0..EPISODES).map(|_| fam.sample_task(&mut rng)).collect();
        let seeds: Vec<u64> = (0..EPISODES as u64).collect();
        let norm = ObsNorm {
            mean: vec![0.1, -0.1],
            std: vec![0.5, 0.5],
        };
        g.bench_function(format!("{name}/one-at-a-time"), |b| {
            b.iter(|| {
                let mut stats = ObsStats::new(2);
                (0..EPISODES)
                    .map(|i| {
                        episode_return_flat(
                            &fam, &tasks[i], &policy, &thetas[i], &norm, seeds[i], &mut stats,
                        )
                    })
                    .sum::<f64>()
            })
        });
        let task_refs: Vec<&Task> = tasks.iter().collect();
        let theta_refs: Vec<&[f32]> = thetas.iter().map(Vec::as_slice).collect();
        g.bench_function(format!("{name}/lanes"), |b| {
            b.iter(|| {
                let mut stats = ObsStats::new(2);
                episode_returns_lanes(
                    &fam,
                    &task_refs,
                    &policy,
                    &theta_refs,
                    &norm,
                    &seeds,
                    &mut stats,
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_es_episodes);
criterion_main!(benches);
