//! The wgpu backend computes what flex computes (feature `wgpu`). CI runs it on Mesa's
//! software Vulkan driver (lavapipe, Debian's `mesa-vulkan-drivers`), so no GPU is needed;
//! on a machine with a GPU the same tests run there.
//!
//! - The sine-MAML meta-gradient (second order through 1 and 5 inner steps, and first
//!   order) and the ProMP meta-gradient (second order through the inner step, clipped
//!   objective and KL penalty) on the same parameters and data agree with flex.
//! - A 2-iteration `promp --device wgpu` run completes with finite numbers.
//!
//! Tolerance: both backends compute in f32 but sum in different orders (flex: blocked CPU
//! kernels; wgpu: workgroup reductions), so results differ by rounding only. A sum of n
//! f32 terms carries a relative error of order √n · 6e-8; the largest sums here have
//! n ≈ 4·10³ (ProMP: 2 tasks × 20 rollouts × 100 steps), about 4e-6, and the
//! meta-gradient chains a few such sums. We allow 2e-5 (relative L2 error of the whole
//! gradient vector). Measured on lavapipe: 0.9e-7 to 1.2e-7 (sine), 4.9e-7 (ProMP). A wrong
//! or missing operation moves the gradient by far more: the first-order sine gradient
//! differs from the second-order one by 0.13, which the test checks it can see.

use burn::optim::GradientsParams;
use burn::prelude::*;
use metarl::algo::sine_maml::{meta_objective, Hessian, SineBatch, SineMamlConfig};
use metarl::device::DeviceKind;
use metarl::env::sine::SineDistribution;
use metarl::nn::functional::{kl_at, GaussianParams, MlpParams};
use metarl::nn::GaussianPolicyConfig;
use metarl::objective::{clipped_surrogate, likelihood_ratio, masked_mean};
use metarl::params::{flatten, flatten_gradients, unflatten};
use metarl::pg::{adapt, chunked_gradient, process, readapt, sample_tasks, MetaPgConfig};
use metarl::rng::stream;

/// Relative L2 error of the whole gradient vector ‖a − b‖ / ‖b‖ allowed (see above).
const TOLERANCE: f64 = 2e-5;

fn device(kind: DeviceKind) -> Device {
    kind.device().expect("the backend is compiled in")
}

fn rel_l2(a: &[f32], b: &[f32]) -> f64 {
    let d: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    let n: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (d / n).sqrt()
}

/// ∇θ of the sine-MAML meta-objective on `kind`, θ and the tasks' points drawn on the CPU
/// from fixed streams (the same numbers on every backend).
fn sine_meta_gradient(kind: DeviceKind, steps: usize, hessian: Hessian) -> Vec<f32> {
    let ad = device(kind).autodiff();
    let cfg = SineMamlConfig {
        inner_steps: steps,
        hessian,
        ..Default::default()
    };
    let model = cfg.init_model(&mut stream(3, "policy"), &ad);
    let reference = cfg.init_model(
        &mut stream(3, "policy"),
        &device(DeviceKind::Flex).autodiff(),
    );
    let model = unflatten(model, &flatten(&reference));
    let dist = SineDistribution::default();
    let mut rng = stream(4, "tasks");
    let tasks: Vec<_> = (0..cfg.meta_batch)
        .map(|_| dist.sample_task(&mut rng))
        .collect();
    let batch = SineBatch::sample(&dist, &tasks, cfg.shots, &mut rng, &ad);
    let (post, _) = meta_objective(&MlpParams::from_mlp(&model), &batch, &cfg);
    flatten_gradients(
        &model,
        &GradientsParams::from_grads(post.backward(), &model),
    )
}

#[test]
fn sine_maml_meta_gradients_on_wgpu_equal_flex() {
    let second_1 = sine_meta_gradient(DeviceKind::Flex, 1, Hessian::Full);
    let first_1 = sine_meta_gradient(DeviceKind::Flex, 1, Hessian::None);
    let gap = rel_l2(&first_1, &second_1);
    println!("sine, 1 step: first vs second order on flex {gap:.2e}");
    assert!(gap > 100.0 * TOLERANCE, "the check can tell the two apart");
    for (steps, hessian) in [(1, Hessian::Full), (5, Hessian::Full), (1, Hessian::None)] {
        let flex = sine_meta_gradient(DeviceKind::Flex, steps, hessian);
        let wgpu = sine_meta_gradient(DeviceKind::Wgpu, steps, hessian);
        assert!(wgpu.iter().all(|g| g.is_finite()));
        let e = rel_l2(&wgpu, &flex);
        println!("sine, {steps} steps, {hessian:?}: wgpu vs flex {e:.2e}");
        assert!(e < TOLERANCE, "{steps} steps, {hessian:?}: {e:e}");
    }
}

/// ∇θ of ProMP's objective J^CLIP(θ') − η KL on nav2d batches sampled once on flex (CPU)
/// and uploaded to `kind`: 2 tasks × 20 rollouts, 64-64 policy.
fn promp_meta_gradient(kind: DeviceKind) -> Vec<f32> {
    let flex = device(DeviceKind::Flex);
    let envf = metarl::env::make("nav2d").unwrap();
    let cfg = MetaPgConfig {
        tasks: 2,
        ..Default::default()
    };
    let policy_cpu = cfg.policy.init(2, 2, &mut stream(5, "policy"), &flex);
    let theta_cpu = GaussianParams::from_policy(&policy_cpu);
    let tasks = metarl::pg::sample_task_batch(&envf, cfg.tasks, &mut stream(5, "tasks"));
    let (er, ar) = (&mut stream(5, "env"), &mut stream(5, "action"));
    let pre_tr = sample_tasks(&envf, &tasks, &theta_cpu, cfg.rollouts, er, ar, &flex);
    let pre_cpu = process(&pre_tr, &cfg, &flex).unwrap();
    let adapted = adapt(&theta_cpu, &pre_cpu, cfg.estimator, cfg.inner_lr, false);
    let post_tr = sample_tasks(&envf, &tasks, &adapted, cfg.rollouts, er, ar, &flex);

    let ad = device(kind).autodiff();
    let policy = unflatten(
        GaussianPolicyConfig::default().init(2, 2, &mut stream(5, "policy"), &ad),
        &flatten(&policy_cpu),
    );
    let pre = vec![process(&pre_tr, &cfg, &ad).unwrap()];
    let post = process(&post_tr, &cfg, &ad).unwrap();
    let theta_o = GaussianParams::from_policy(&policy).detach();
    let m = cfg.tasks as f64;
    let (g, _) = chunked_gradient(&policy, &[(0, cfg.tasks)], |theta, _| {
        let (adapted, mu) = readapt(theta, &pre, &cfg);
        let ratio = likelihood_ratio(post.log_prob(&adapted), post.logp_old.clone());
        let j = clipped_surrogate(
            ratio,
            post.adv.clone(),
            0.3,
            post.mask.clone(),
            post.n.clone(),
        )
        .sum()
        .div_scalar(m);
        let b = &pre[0];
        let kl = kl_at(
            theta_o.mu(b.obs.clone()),
            theta_o.log_std.clone(),
            mu,
            theta.log_std.clone(),
        )
        .reshape([b.m, b.k, b.t]);
        let kl = masked_mean(kl, b.mask.clone(), b.n.clone())
            .sum()
            .div_scalar(m);
        ((j - kl.mul_scalar(5e-4)).neg(), vec![])
    });
    g
}

#[test]
fn promp_meta_gradient_on_wgpu_equals_flex() {
    let flex = promp_meta_gradient(DeviceKind::Flex);
    let wgpu = promp_meta_gradient(DeviceKind::Wgpu);
    assert!(wgpu.iter().all(|g| g.is_finite()));
    assert!(flex.iter().any(|g| *g != 0.0));
    let e = rel_l2(&wgpu, &flex);
    println!("ProMP: wgpu vs flex {e:.2e}");
    assert!(e < TOLERANCE, "{e:e}");
}

#[test]
fn a_two_iteration_promp_run_on_wgpu_completes() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("run");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_promp"))
        .args([
            "--device",
            "wgpu",
            "--iterations",
            "2",
            "--tasks",
            "4",
            "--rollouts",
            "5",
        ])
        .args([
            "--eval-tasks",
            "2",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["device"], "wgpu");
    let progress = std::fs::read_to_string(out.join("progress.csv")).unwrap();
    assert_eq!(progress.lines().count(), 3, "a header and two rows");
    for row in progress.lines().skip(1) {
        for v in row.split(',') {
            let x: f64 = v.parse().unwrap();
            assert!(x.is_finite(), "{row}");
        }
    }
}
