//! Relative standard deviation of the meta-gradient across batches, per inner estimator
//! (ProMP paper Fig. 4): at a fixed θ, draw B independent meta-batches, compute each
//! estimator's exact meta-gradient of the MAML-VPG objective on each, and report
//! ‖std‖₂ / ‖mean‖₂ over the parameter vector (B batches, same samples for every
//! estimator's pre-update step).
//!
//! `cargo run --release --example meta_gradient_variance -- [env] [batches] [tasks] [rollouts] [run-dir]`
//! (with a run directory, θ is that run's checkpointed meta-policy instead of a fresh one).

use burn::optim::GradientsParams;
use metarl::nn::functional::GaussianParams;
use metarl::objective::{likelihood_ratio, surrogate, Estimator};
use metarl::params::flatten_gradients;
use metarl::pg::{adapt, process, sample_task_batch, sample_tasks, MetaPgConfig};
use metarl::rng::stream;

fn main() -> metarl::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let env_name = args.get(1).map(String::as_str).unwrap_or("nav2d");
    let batches: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(30);
    let tasks: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20);
    let rollouts: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(20);
    let device = metarl::device::DeviceKind::Flex.device()?.autodiff();
    let envf = metarl::env::make(env_name)?;
    let cfg = MetaPgConfig {
        tasks,
        rollouts,
        ..Default::default()
    };
    let s = envf.spec().clone();
    let mut policy = cfg
        .policy
        .init(s.obs_dim, s.act_dim, &mut stream(0, "policy"), &device);
    let from = args.get(5).cloned();
    if let Some(dir) = &from {
        let ck = metarl::train::Checkpoint::load(&std::path::Path::new(dir).join("checkpoint"))?;
        policy = metarl::train::load_module(policy, ck.file("policy.bpk")?)?;
    }
    let ests = [Estimator::Dice, Estimator::Lvc, Estimator::Maml];
    let mut grads: Vec<Vec<Vec<f32>>> = vec![Vec::new(); ests.len()];
    let mut task_rng = stream(1, "tasks");
    for b in 0..batches as u64 {
        let task_list = sample_task_batch(&envf, tasks, &mut task_rng);
        let theta0 = GaussianParams::from_policy(&policy).detach();
        let pre_tr = sample_tasks(
            &envf,
            &task_list,
            &theta0,
            rollouts,
            &mut stream(b, "env"),
            &mut stream(b, "act"),
            &device,
        );
        let pre = process(&pre_tr, &cfg, &device)?;
        for (e, est) in ests.iter().enumerate() {
            let theta = GaussianParams::from_policy(&policy);
            let adapted = adapt(&theta, &pre, *est, cfg.inner_lr, true);
            let post_tr = sample_tasks(
                &envf,
                &task_list,
                &adapted,
                rollouts,
                &mut stream(b, "env-post"),
                &mut stream(b, "act-post"),
                &device,
            );
            let post = process(&post_tr, &cfg, &device)?;
            let ratio = likelihood_ratio(post.log_prob(&adapted), post.logp_old.clone());
            let j = surrogate(ratio, post.adv.clone(), post.mask.clone(), post.n.clone()).mean();
            let g = GradientsParams::from_grads(j.backward(), &policy);
            grads[e].push(flatten_gradients(&policy, &g));
        }
    }
    let at = from
        .map(|d| format!("θ from {d}"))
        .unwrap_or_else(|| "θ at initialization".into());
    println!("env {env_name}, {batches} batches of {tasks} tasks × {rollouts} rollouts, {at}");
    let mut rel = Vec::new();
    for (e, est) in ests.iter().enumerate() {
        let n = grads[e].len() as f64;
        let d = grads[e][0].len();
        let mean: Vec<f64> = (0..d)
            .map(|k| grads[e].iter().map(|g| g[k] as f64).sum::<f64>() / n)
            .collect();
        let var: f64 = (0..d)
            .map(|k| {
                grads[e]
                    .iter()
                    .map(|g| (g[k] as f64 - mean[k]).powi(2))
                    .sum::<f64>()
                    / (n - 1.0)
            })
            .sum();
        let r = var.sqrt() / mean.iter().map(|m| m * m).sum::<f64>().sqrt();
        rel.push(r);
        println!("{est:?}: relative standard deviation of the meta-gradient {r:.3}");
    }
    println!("DiCE / LVC = {:.2}", rel[0] / rel[1]);
    Ok(())
}
