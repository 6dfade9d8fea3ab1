//! The batched sampler: shapes, masks, determinism, per-task splitting.

use metarl::env::{self, TaskDistribution, VecEnv};
use metarl::nn::GaussianPolicyConfig;
use metarl::rng::stream;
use metarl::rollout::sample;

fn run(name: &str, seed: u64, tasks: usize, k: usize) -> metarl::traj::Trajectories {
    let device = metarl::device::DeviceKind::Flex.device().unwrap();
    let fam = env::make(name).unwrap();
    let spec = fam.spec().clone();
    let pol = GaussianPolicyConfig::default().init(
        spec.obs_dim,
        spec.act_dim,
        &mut stream(seed, "policy"),
        &device,
    );
    let ts = TaskDistribution::new(fam.clone()).sample(tasks, &mut stream(seed, "tasks"));
    let mut venv = VecEnv::for_tasks(fam, &ts, k, &mut stream(seed, "env"));
    sample(&pol, &mut venv, k, &mut stream(seed, "action"), &device)
}

#[test]
fn trajectories_have_time_major_shapes_and_full_masks_without_termination() {
    let tr = run("point-corners", 1, 3, 4);
    let (t, n) = (100, 12);
    assert_eq!((tr.steps, tr.rows, tr.rows_per_task), (t, n, 4));
    assert_eq!(tr.obs.len(), t * n * 2);
    assert_eq!(tr.act.len(), t * n * 2);
    assert_eq!(tr.logp.len(), t * n);
    assert_eq!(tr.reward.len(), t * n);
    assert_eq!(tr.positions.len(), (t + 1) * n * 2);
    assert_eq!(tr.env_steps(), t * n);
    assert!(
        tr.truncated[(t - 1) * n..].iter().all(|&x| x),
        "every row is truncated at the horizon"
    );
    assert!(tr.terminated.iter().all(|&x| !x));
    // The observation at t+1 is the position after step t.
    for i in 0..n {
        assert_eq!(
            &tr.obs[(n + i) * 2..(n + i) * 2 + 2],
            &tr.positions[(n + i) * 2..(n + i) * 2 + 2]
        );
    }
}

#[test]
fn terminated_rows_are_masked_after_their_last_step() {
    let tr = run("cartpole-biased", 3, 2, 5);
    let n = tr.rows;
    for (i, &len) in tr.lengths().iter().enumerate() {
        assert!(len >= 1);
        for t in 0..tr.steps {
            let m = tr.mask[t * n + i];
            assert_eq!(m, if t < len { 1.0 } else { 0.0 }, "row {i} t {t}");
            if t >= len {
                assert_eq!(tr.reward[t * n + i], 0.0);
            }
        }
        if len < 500 {
            assert!(
                tr.terminated[(len - 1) * n + i],
                "an early end is a termination"
            );
        }
    }
    // Untrained policies drop the pole early.
    assert!(tr.lengths().iter().all(|&l| l < 500));
}

#[test]
fn same_seed_same_trajectories_other_seed_different() {
    let a = run("nav2d", 4, 2, 3);
    let b = run("nav2d", 4, 2, 3);
    let c = run("nav2d", 5, 2, 3);
    assert_eq!(a, b);
    assert_ne!(a.act, c.act);
}

#[test]
fn splitting_by_task_keeps_each_tasks_rows() {
    let tr = run("six-circles", 2, 3, 2);
    let parts = tr.split_tasks();
    assert_eq!(parts.len(), 3);
    let n = tr.rows;
    for (m, p) in parts.iter().enumerate() {
        assert_eq!(p.tasks, vec![tr.tasks[m].clone()]);
        assert_eq!(p.rows, 2);
        for t in 0..tr.steps {
            for r in 0..2 {
                assert_eq!(p.reward[t * 2 + r], tr.reward[t * n + m * 2 + r]);
                assert_eq!(p.obs[(t * 2 + r) * 2], tr.obs[(t * n + m * 2 + r) * 2]);
            }
        }
        assert_eq!(
            p.episode_returns(),
            tr.episode_returns()[m * 2..m * 2 + 2].to_vec()
        );
    }
    let rets: f64 = parts.iter().map(|p| p.mean_return()).sum::<f64>() / 3.0;
    assert!((rets - tr.mean_return()).abs() < 1e-6 * (1.0 + rets.abs()));
}

#[test]
fn sampled_log_probs_match_the_policy_density() {
    use burn::prelude::*;
    let device = metarl::device::DeviceKind::Flex.device().unwrap();
    let fam = env::make("nav2d").unwrap();
    let pol = GaussianPolicyConfig::default().init(2, 2, &mut stream(1, "policy"), &device);
    let ts = TaskDistribution::new(fam.clone()).sample(2, &mut stream(1, "tasks"));
    let mut venv = VecEnv::for_tasks(fam, &ts, 2, &mut stream(1, "env"));
    let tr = sample(&pol, &mut venv, 2, &mut stream(1, "action"), &device);
    let rows = tr.steps * tr.rows;
    let obs = metarl::nn::tensor2(tr.obs.clone(), rows, 2, &device);
    let act = metarl::nn::tensor2(tr.act.clone(), rows, 2, &device);
    let lp = metarl::nn::to_vec(pol.log_prob(obs, act));
    for (k, (&a, &b)) in lp.iter().zip(&tr.logp).enumerate() {
        if tr.mask[k] > 0.0 {
            assert!((a - b).abs() < 1e-3, "entry {k}: {a} vs {b}");
        }
    }
    let _ = Tensor::<1>::zeros([1], &device);
}

#[test]
fn mean_action_policies_act_with_the_mean_and_leave_the_generator_alone() {
    use metarl::nn::functional::GaussianParams;
    use metarl::pg::TaskPolicies;
    use metarl::rollout::Actor;
    use rand::RngCore;
    let device = metarl::device::DeviceKind::Flex.device().unwrap();
    let pol = GaussianPolicyConfig::default().init(2, 2, &mut stream(3, "policy"), &device);
    let params = GaussianParams::from_policy(&pol);
    let obs = vec![0.3f32, -1.2, 2.0, 0.5, -0.7, 0.1];
    let rows = obs.len() / 2;
    let mu = metarl::nn::to_vec(
        params.mu(metarl::nn::tensor2(obs.clone(), rows, 2, &device).reshape([1, rows, 2])),
    );
    let actor = TaskPolicies::new(&params, rows).mean_actions();
    let mut rng = stream(3, "action");
    let (act, _) = actor.act(metarl::nn::tensor2(obs.clone(), rows, 2, &device), &mut rng);
    assert_eq!(act, mu, "mean actions are μ(s) exactly");
    assert_eq!(
        rng.next_u64(),
        stream(3, "action").next_u64(),
        "no draw was made"
    );
    // With noise (σ = 1 at initialization) the same call draws actions away from μ(s).
    let (noisy, _) =
        TaskPolicies::new(&params, rows).act(metarl::nn::tensor2(obs, rows, 2, &device), &mut rng);
    assert!(noisy.iter().zip(&mu).all(|(a, m)| a != m));
}
