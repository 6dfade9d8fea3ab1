use metarl::env::{make, Env, Task};
use metarl::nn::flat::FlatPolicy;
use metarl::nn::Activation;
use metarl::rng::stream;
use metarl::rollout::{episode_return_flat, episode_returns_lanes, ObsNorm, ObsStats};
use rand_distr::{Distribution, StandardNormal};
use std::sync::Arc;
use std::time::Instant;
fn main() {
    let env: Arc<dyn Env> = make("nav2d").unwrap();
    let mut rng = stream(1, "p");
    let which = std::env::args().nth(1).unwrap_or_default();
    let only_lanes = std::env::args().nth(2).is_some();
    for hidden in [vec![], vec![32usize, 32]] {
        if which == "linear" && !hidden.is_empty() || which == "mlp" && hidden.is_empty() {
            continue;
        }
        let mut sizes = vec![2];
        sizes.extend(&hidden);
        sizes.push(2);
        let p = FlatPolicy {
            sizes,
            activation: Activation::Tanh,
            tanh_output: true,
        };
        let n = 2400;
        let thetas: Vec<Vec<f32>> = (0..n)
            .map(|_| {
                (0..p.num_params())
                    .map(|_| {
                        let g: f64 = StandardNormal.sample(&mut rng);
                        0.3 * g as f32
                    })
                    .collect()
            })
            .collect();
        let tasks: Vec<Task> = (0..n).map(|_| env.sample_task(&mut rng)).collect();
        let seeds: Vec<u64> = (0..n as u64).collect();
        let norm = ObsNorm {
            mean: vec![0.0; 2],
            std: vec![1.0; 2],
        };
        for _ in 0..if only_lanes { 30 } else { 3 } {
            let mut st = ObsStats::new(2);
            let t = Instant::now();
            let mut s = 0.0;
            for i in 0..n {
                if only_lanes {
                    st.count += 100;
                    continue;
                }
                s += episode_return_flat(&env, &tasks[i], &p, &thetas[i], &norm, seeds[i], &mut st);
            }
            let a = t.elapsed().as_secs_f64();
            let c1 = st.count;
            let mut st = ObsStats::new(2);
            let t = Instant::now();
            let tr: Vec<&Task> = tasks.iter().collect();
            let th: Vec<&[f32]> = thetas.iter().map(|v| v.as_slice()).collect();
            let r = episode_returns_lanes(&env, &tr, &p, &th, &norm, &seeds, &mut st);
            let b = t.elapsed().as_secs_f64();
            let s2: f64 = r.iter().sum();
            println!(
                "{hidden:?}: single {:.1} M steps/s, lanes {:.1} M steps/s (x{:.2}) sums {s} {s2}",
                c1 as f64 / a / 1e6,
                st.count as f64 / b / 1e6,
                a / b
            );
        }
    }
}
