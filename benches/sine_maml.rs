//! Sine-MAML meta-iterations per second: K = 10, meta-batch 25, 1-40-40-1 ReLU, second
//! order (and first order for comparison), 1 and 5 inner steps. Set
//! `RAYON_NUM_THREADS=1` for the single-thread figure.
//!
//! `cargo bench --bench sine_maml`; meta-iterations/s = 1 / reported time.

/// The binaries' allocator, so the benchmark measures what a user runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion};
use metarl::algo::sine_maml::{Hessian, SineMaml, SineMamlConfig};
use metarl::learner::{MetaLearner, Phases};
use metarl::rng::stream;

fn bench(c: &mut Criterion) {
    let device = metarl::device::DeviceKind::Flex
        .device()
        .expect("flex")
        .autodiff();
    let mut g = c.benchmark_group("sine-maml-iteration");
    for (steps, hessian) in [(1, Hessian::Full), (5, Hessian::Full), (1, Hessian::None)] {
        let cfg = SineMamlConfig {
            inner_steps: steps,
            hessian,
            ..Default::default()
        };
        let mut learner = SineMaml::new(cfg, &mut stream(0, "policy"), stream(0, "tasks"), &device);
        let mut it = 0;
        g.bench_function(format!("steps={steps}/hessian={hessian:?}"), |b| {
            b.iter(|| {
                it += 1;
                learner.step(it, &mut Phases::new()).expect("finite")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
