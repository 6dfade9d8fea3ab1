//! Module ⇄ flat vector and flat vector → GradientsParams.

use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use metarl::nn::{tensor2, GaussianPolicyConfig};
use metarl::params::{flatten, param_ids, to_gradients, unflatten};
use metarl::rng::stream;

fn dev() -> Device {
    metarl::device::DeviceKind::Flex.device().unwrap()
}

#[test]
fn flatten_then_unflatten_is_the_identity_and_keeps_ids() {
    let d = dev();
    let p = GaussianPolicyConfig::default().init(2, 2, &mut stream(0, "policy"), &d);
    let theta = flatten(&p);
    assert_eq!(theta.len(), 2 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2 + 2);
    let perturbed: Vec<f32> = theta
        .iter()
        .enumerate()
        .map(|(i, x)| x + i as f32 * 1e-3)
        .collect();
    let q = unflatten(p.clone(), &perturbed);
    assert_eq!(flatten(&q), perturbed);
    assert_eq!(param_ids(&q), param_ids(&p));
    assert_eq!(flatten(&unflatten(q, &theta)), theta);
}

/// SGD with a gradient built from a flat vector equals SGD with the autodiff gradient of
/// the linear loss L(θ) = Σ_k c_k θ_k, whose gradient is c.
#[test]
fn flat_gradient_step_equals_autodiff_step_on_a_linear_loss() {
    let ad = dev().autodiff();
    let p = GaussianPolicyConfig {
        hidden: vec![4],
        ..Default::default()
    }
    .init(3, 2, &mut stream(2, "policy"), &ad);
    let n = metarl::params::num_params(&p);
    let c: Vec<f32> = (0..n).map(|k| ((k * 7 % 11) as f32 - 5.0) * 0.1).collect();

    // Autodiff route: L = Σ_layers Σ (c ⊙ θ).
    let flat_c = c.clone();
    let mut off = 0;
    let mut loss: Option<Tensor<1>> = None;
    let mut add = |t: Tensor<1>| {
        let k = t.dims()[0];
        let ct = Tensor::<1>::from_data(TensorData::new(flat_c[off..off + k].to_vec(), [k]), &ad);
        off += k;
        let term = (t * ct).sum();
        loss = Some(match loss.take() {
            Some(l) => l + term,
            None => term,
        });
    };
    for l in &p.mean.layers {
        add(l.weight.val().flatten::<1>(0, 1));
        add(l.bias.as_ref().unwrap().val());
    }
    add(p.log_std.val());
    let grads = GradientsParams::from_grads(loss.unwrap().backward(), &p);
    let mut opt_a = SgdConfig::new().init();
    let a = opt_a.step(0.05, p.clone(), grads);

    // Flat route.
    let mut opt_b = SgdConfig::new().init();
    let b = opt_b.step(0.05, p.clone(), to_gradients(&p, &c, &ad));

    let (fa, fb, f0) = (flatten(&a), flatten(&b), flatten(&p));
    for k in 0..n {
        assert!(
            (fa[k] - fb[k]).abs() < 1e-6,
            "coordinate {k}: {} vs {}",
            fa[k],
            fb[k]
        );
        assert!((fb[k] - (f0[k] - 0.05 * c[k])).abs() < 1e-6);
    }
    // The flat-built module still runs forward.
    let _ = b.forward(tensor2(vec![0.0; 3], 1, 3, &ad));
}
