//! Sine MAML's f32 host path on Flex (in a test binary of its own: the f64 checks in
//! `tests/sine_maml.rs` switch Flex to f64 for their whole process): the learner's
//! meta-gradient against the f32 tensor route, and the flat Adam against Burn's.

mod common;
use common::rel_err;

use metarl::algo::sine_maml::{meta_objective, Hessian, SineMamlConfig};
use metarl::env::sine::SineDistribution;
use metarl::nn::functional::MlpParams;
use metarl::nn::to_vec_f64;
use metarl::rng::stream;

/// The learner's f32 path on Flex (`meta_gradient_host`, tasks on the thread pool) against
/// the f32 tensor route on the same batch. The two sum the same products in different
/// orders, so they differ by f32 rounding: measured relative error 1.3–1.5e-7 (norm of the
/// difference over the norm); the bound 2e-6 leaves a factor of 10 for other batches.
#[test]
fn learner_host_path_matches_the_f32_tensor_route() {
    use metarl::algo::sine_maml::{meta_gradient_host, HostScratch, SinePoints};
    use metarl::params::{flatten, flatten_gradients};
    let dev = metarl::device::DeviceKind::Flex
        .device()
        .unwrap()
        .autodiff();
    let dist = SineDistribution::default();
    let mut rng = stream(3, "tasks");
    let tasks: Vec<_> = (0..25).map(|_| dist.sample_task(&mut rng)).collect();
    let points = SinePoints::sample(&dist, &tasks, 10, &mut rng);
    for (steps, hessian) in [(1, Hessian::Full), (5, Hessian::Full), (1, Hessian::None)] {
        let c = SineMamlConfig {
            inner_steps: steps,
            hessian,
            ..Default::default()
        };
        let model = c.init_model(&mut stream(4, "policy"), &dev);
        let theta = flatten(&model);
        let mut scratch = HostScratch::default();
        let (post, pre, g) = meta_gradient_host(
            &c.dense(),
            &theta,
            &points,
            (c.inner_lr, steps, hessian),
            &mut scratch,
        );
        let (lt, lp) = meta_objective(&MlpParams::from_mlp(&model), &points.to_batch(&dev), &c);
        let (tv, pv) = (to_vec_f64(lt.clone())[0], to_vec_f64(lp)[0]);
        let grads = burn::optim::GradientsParams::from_grads(lt.backward(), &model);
        let want = flatten_gradients(&model, &grads);
        let f64s = |v: &[f32]| v.iter().map(|x| *x as f64).collect::<Vec<_>>();
        let e = rel_err(&f64s(&g), &f64s(&want));
        assert!(e < 2e-6, "{steps} steps, {hessian:?}: relative error {e:e}");
        assert!((post - tv).abs() < 1e-5 * tv && (pre - pv).abs() < 1e-5 * pv);
        // Reusing the scratch buffers changes nothing.
        let again = meta_gradient_host(
            &c.dense(),
            &theta,
            &points,
            (c.inner_lr, steps, hessian),
            &mut scratch,
        );
        assert_eq!(again.2, g);
    }
}

/// The flat Adam the sine learner uses takes Burn's Adam steps (default config) to within
/// f32 rounding, over 50 steps of changing gradients.
#[test]
fn flat_adam_follows_burns_adam() {
    use burn::optim::{AdamConfig, GradientsParams};
    use metarl::optim::FlatAdam;
    use metarl::params::{flatten, to_gradients};
    let dev = metarl::device::DeviceKind::Flex
        .device()
        .unwrap()
        .autodiff();
    let c = SineMamlConfig::default();
    let mut model = c.init_model(&mut stream(6, "policy"), &dev);
    let mut theta = flatten(&model);
    let start = theta.clone();
    let (mut burn_adam, mut flat) = (AdamConfig::new().init(), FlatAdam::default());
    let mut r = stream(7, "grads");
    for _ in 0..50 {
        let g: Vec<f32> = (0..theta.len())
            .map(|_| rand::Rng::random_range(&mut r, -1.0f32..1.0))
            .collect();
        let grads: GradientsParams = to_gradients(&model, &g, &dev);
        model = burn_adam.step(1e-3, model, grads);
        flat.step(1e-3, &mut theta, &g);
    }
    let burn_theta = flatten(&model);
    let worst = theta
        .iter()
        .zip(&burn_theta)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-6, "largest difference {worst:e}");
    let moved = theta
        .iter()
        .zip(&start)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        moved > 1e-2,
        "50 steps of 1e-3 move θ (largest move {moved})"
    );
    // The state round-trips through checkpoint bytes.
    assert_eq!(FlatAdam::from_bytes(&flat.to_bytes()).unwrap(), flat);
}
