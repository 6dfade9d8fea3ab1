//! Episodes evaluated in SIMD lanes give exactly what each episode gives alone: the
//! batched policy forward, every family's lane step, and whole episodes (returns and
//! observation statistics) with early terminations, at every SIMD level the CPU has.

use std::sync::Arc;

use metarl::env::{make, Env, LaneTasks, Task, ENV_NAMES};
use metarl::lanes::{self, Lanes, Simd, LANES};
use metarl::nn::flat::{FlatPolicy, LaneScratch, Scratch};
use metarl::nn::Activation;
use metarl::rng::{stream, Rng};
use metarl::rollout::{episode_return_flat, episode_returns_lanes_at, ObsNorm, ObsStats};
use rand::Rng as _;
use rand_distr::{Distribution, StandardNormal};

fn normal_vec(n: usize, scale: f32, rng: &mut Rng) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let g: f64 = StandardNormal.sample(rng);
            scale * g as f32
        })
        .collect::<Vec<f32>>()
}

fn policy(obs_dim: usize, hidden: &[usize], act_dim: usize, activation: Activation) -> FlatPolicy {
    let mut sizes = vec![obs_dim];
    sizes.extend_from_slice(hidden);
    sizes.push(act_dim);
    FlatPolicy {
        sizes,
        activation,
        tanh_output: true,
    }
}

#[test]
fn lane_forward_equals_one_episode_forward_bit_for_bit() {
    let mut rng = stream(3, "lanes");
    for (hidden, act) in [
        (vec![], Activation::Tanh),
        (vec![32, 32], Activation::Tanh),
        (vec![32, 32], Activation::Relu),
        // A full sequential block plus a remainder, and a wide remainder with inputs past
        // the last group of 8 partial sums.
        (vec![33, 32], Activation::Tanh),
        (vec![64, 3], Activation::Tanh),
        (vec![5, 7], Activation::Tanh),
    ] {
        for (obs_dim, act_dim) in [(2, 2), (3, 1), (4, 3)] {
            let p = policy(obs_dim, &hidden, act_dim, act);
            let thetas: Vec<Vec<f32>> = (0..LANES)
                .map(|_| normal_vec(p.num_params(), 0.5, &mut rng))
                .collect();
            let obs: Vec<Vec<f32>> = (0..LANES)
                .map(|_| normal_vec(obs_dim, 2.0, &mut rng))
                .collect();
            let refs: Vec<&[f32]> = thetas.iter().map(Vec::as_slice).collect();
            let mut obs_l = vec![[0.0; LANES]; obs_dim];
            for (l, o) in obs.iter().enumerate() {
                lanes::scatter(o, l, &mut obs_l);
            }
            // A full batch, and one whose lanes past 5 hold no episode (a blocked policy
            // packs and runs only its first block of lanes).
            for live in [LANES, 5] {
                let mut theta_l = Vec::new();
                p.pack_lanes(&refs[..live], &mut theta_l);
                for simd in Simd::available() {
                    let mut out: Vec<Lanes> = vec![[f32::NAN; LANES]; act_dim];
                    p.forward_lanes_at(
                        simd,
                        live,
                        &theta_l,
                        &obs_l,
                        &mut out,
                        &mut LaneScratch::default(),
                    );
                    for l in 0..live {
                        let mut want = vec![0.0; act_dim];
                        p.forward_into(&thetas[l], &obs[l], 1, &mut want, &mut Scratch::default());
                        let mut got = vec![0.0; act_dim];
                        lanes::gather(&out, l, &mut got);
                        let (w, g): (Vec<u32>, Vec<u32>) = (
                            want.iter().map(|x| x.to_bits()).collect(),
                            got.iter().map(|x| x.to_bits()).collect(),
                        );
                        assert_eq!(
                            g, w,
                            "{simd:?} {hidden:?} {act:?} {obs_dim}->{act_dim} lane {l} of {live}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn every_family_steps_lanes_exactly_like_rows() {
    let mut rng = stream(5, "lanes-step");
    for name in ENV_NAMES {
        let env = make(name).unwrap();
        let (sd, ad) = (env.state_dim(), env.spec().act_dim);
        let tasks: Vec<Task> = (0..LANES).map(|_| env.sample_task(&mut rng)).collect();
        let task_refs = LaneTasks::new(env.as_ref(), std::array::from_fn(|l| &tasks[l]));
        let mut rows: Vec<Vec<f32>> = tasks
            .iter()
            .map(|t| {
                let mut s = vec![0.0; sd];
                env.reset(t, &mut s, &mut rng);
                s
            })
            .collect();
        let mut state = vec![[0.0; LANES]; sd];
        for (l, r) in rows.iter().enumerate() {
            lanes::scatter(r, l, &mut state);
        }
        for step in 0..30 {
            let acts: Vec<Vec<f32>> = (0..LANES).map(|_| normal_vec(ad, 0.3, &mut rng)).collect();
            let mut act = vec![[0.0; LANES]; ad];
            for (l, a) in acts.iter().enumerate() {
                lanes::scatter(a, l, &mut act);
            }
            let (mut reward, mut term) = ([0.0; LANES], [false; LANES]);
            env.step_lanes(&task_refs, &mut state, &act, &mut reward, &mut term);
            let mut obs = vec![[0.0; LANES]; env.spec().obs_dim];
            env.observe_lanes(&task_refs, &state, &mut obs);
            for l in 0..LANES {
                let (r, t) = env.step(&tasks[l], &mut rows[l], &acts[l]);
                assert_eq!(
                    reward[l].to_bits(),
                    r.to_bits(),
                    "{name} step {step} lane {l}"
                );
                assert_eq!(term[l], t, "{name} step {step} lane {l}");
                let mut s = vec![0.0; sd];
                lanes::gather(&state, l, &mut s);
                assert_eq!(s, rows[l], "{name} step {step} lane {l}");
                let mut o = vec![0.0; env.spec().obs_dim];
                env.observe(&tasks[l], &rows[l], &mut o);
                let mut got = vec![0.0; o.len()];
                lanes::gather(&obs, l, &mut got);
                assert_eq!(got, o, "{name} step {step} lane {l}");
            }
        }
    }
}

#[test]
fn lane_episodes_equal_single_episodes_for_every_family() {
    let mut rng = stream(9, "lanes-episodes");
    for name in ENV_NAMES {
        let env: Arc<dyn Env> = make(name).unwrap();
        let (od, ad) = (env.spec().obs_dim, env.spec().act_dim);
        for hidden in [vec![], vec![32, 32]] {
            let p = policy(od, &hidden, ad, Activation::Tanh);
            // One full batch and a partial one.
            let n = LANES + 3;
            let thetas: Vec<Vec<f32>> = (0..n)
                .map(|_| normal_vec(p.num_params(), 0.7, &mut rng))
                .collect();
            let tasks: Vec<Task> = (0..n).map(|_| env.sample_task(&mut rng)).collect();
            let seeds: Vec<u64> = (0..n).map(|_| rng.random()).collect();
            let norm = ObsNorm {
                mean: normal_vec(od, 0.1, &mut rng),
                std: (0..od).map(|j| 0.5 + j as f32 * 0.25).collect(),
            };
            let mut want_stats = ObsStats::new(od);
            let want: Vec<u64> = (0..n)
                .map(|i| {
                    episode_return_flat(
                        &env,
                        &tasks[i],
                        &p,
                        &thetas[i],
                        &norm,
                        seeds[i],
                        &mut want_stats,
                    )
                    .to_bits()
                })
                .collect();
            let task_refs: Vec<&Task> = tasks.iter().collect();
            let theta_refs: Vec<&[f32]> = thetas.iter().map(Vec::as_slice).collect();
            for simd in Simd::available() {
                let mut got_stats = ObsStats::new(od);
                let got: Vec<u64> = episode_returns_lanes_at(
                    simd,
                    env.as_ref(),
                    &task_refs,
                    &p,
                    &theta_refs,
                    &norm,
                    &seeds,
                    &mut got_stats,
                )
                .iter()
                .map(|r| r.to_bits())
                .collect();
                assert_eq!(got, want, "{simd:?} {name} {hidden:?}");
                assert_eq!(got_stats, want_stats, "{simd:?} {name} {hidden:?}");
            }
            // Not a degenerate comparison: the episodes differ, and where episodes can end
            // early (cart-pole) some lanes finish before others.
            assert!(want.iter().any(|&r| r != want[0]), "{name} {hidden:?}");
            if *name == "cartpole-biased" {
                assert!(want_stats.count < (n * env.spec().horizon) as u64);
                assert!(want_stats.count > n as u64);
            }
        }
    }
}
