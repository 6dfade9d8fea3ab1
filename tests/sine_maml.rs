//! Sine MAML's meta-gradients, in f64: the functional inner gradient against autodiff,
//! the exact second-order meta-gradient against a brute-force central finite difference
//! of the whole meta-objective L_query(θ − α∇L_support(θ)), first-order MAML against the
//! query gradient at the adapted parameters, and the α = 0 limit.

mod common;
use common::rel_err;

use burn::prelude::*;
use metarl::algo::sine_maml::{meta_objective, Hessian, SineBatch, SineMamlConfig};
use metarl::device::f64_device;
use metarl::env::sine::SineDistribution;
use metarl::nn::functional::{backward, forward, mse_and_grad, MlpParams};
use metarl::nn::{to_vec_f64, Activation};
use metarl::rng::stream;

/// Layer sizes of the test network: Finn's 1-40-40-1.
const SIZES: [usize; 4] = [1, 40, 40, 1];

fn num_params() -> usize {
    SIZES.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
}

/// θ ~ Xavier-like uniform, large enough that second-order terms matter.
fn theta0(seed: u64) -> Vec<f64> {
    use rand::Rng;
    let mut rng = stream(seed, "theta");
    let mut out = Vec::new();
    for w in SIZES.windows(2) {
        let a = (6.0 / (w[0] + w[1]) as f64).sqrt();
        out.extend((0..w[0] * w[1]).map(|_| rng.random_range(-a..a)));
        out.extend((0..w[1]).map(|_| rng.random_range(-0.5..0.5)));
    }
    out
}

/// MlpParams from a flat vector (layer by layer: W row-major [in, out], then b), as leaves
/// that require gradients when `track`.
fn params(theta: &[f64], act: Activation, device: &Device, track: bool) -> MlpParams {
    let (mut w, mut b, mut off) = (vec![], vec![], 0);
    for s in SIZES.windows(2) {
        let mk = |n: usize, shape: [usize; 3], off: usize| {
            let t = Tensor::<3>::from_data(
                TensorData::new(theta[off..off + n].to_vec(), shape),
                device,
            );
            if track {
                t.require_grad()
            } else {
                t
            }
        };
        w.push(mk(s[0] * s[1], [1, s[0], s[1]], off));
        off += s[0] * s[1];
        b.push(mk(s[1], [1, 1, s[1]], off));
        off += s[1];
    }
    MlpParams {
        w,
        b,
        activation: act,
    }
}

fn grads_of(p: &MlpParams, g: &burn::tensor::Gradients) -> Vec<f64> {
    let mut out = vec![];
    for (w, b) in p.w.iter().zip(&p.b) {
        out.extend(to_vec_f64(w.grad(g).expect("w has a gradient")));
        out.extend(to_vec_f64(b.grad(g).expect("b has a gradient")));
    }
    out
}

fn batch(device: &Device, m: usize, k: usize) -> SineBatch {
    let dist = SineDistribution::default();
    let mut rng = stream(11, "tasks");
    let tasks: Vec<_> = (0..m).map(|_| dist.sample_task(&mut rng)).collect();
    SineBatch::sample(&dist, &tasks, k, &mut rng, device)
}

fn cfg(act: Activation, steps: usize, alpha: f64, hessian: Hessian) -> SineMamlConfig {
    SineMamlConfig {
        activation: act,
        inner_steps: steps,
        inner_lr: alpha,
        hessian,
        ..Default::default()
    }
}

fn meta_grad(theta: &[f64], c: &SineMamlConfig, b: &SineBatch, ad: &Device) -> Vec<f64> {
    let p = params(theta, c.activation, ad, true);
    let (loss, _) = meta_objective(&p, b, c);
    grads_of(&p, &loss.backward())
}

fn meta_value(theta: &[f64], c: &SineMamlConfig, b: &SineBatch, d: &Device) -> f64 {
    to_vec_f64(meta_objective(&params(theta, c.activation, d, false), b, c).0)[0]
}

/// Brute-force central finite difference of the meta-objective over every coordinate.
fn fd_grad(theta: &[f64], c: &SineMamlConfig, b: &SineBatch, d: &Device, h: f64) -> Vec<f64> {
    (0..theta.len())
        .map(|k| {
            let mut tp = theta.to_vec();
            let mut tm = theta.to_vec();
            tp[k] += h;
            tm[k] -= h;
            (meta_value(&tp, c, b, d) - meta_value(&tm, c, b, d)) / (2.0 * h)
        })
        .collect()
}

#[test]
fn functional_inner_gradient_equals_autodiff() {
    let d = f64_device();
    let ad = d.clone().autodiff();
    let b = batch(&ad, 3, 10);
    for act in [Activation::Tanh, Activation::Relu] {
        let p = params(&theta0(1), act, &ad, true);
        let (y, cache) = forward(&p, b.xs.clone());
        let (loss, dy) = mse_and_grad(y, b.ys.clone());
        let g = backward(&p, &cache, dy);
        // The per-task hand gradients, summed over tasks, are the gradient of Σ_i L_i.
        let mut hand = vec![];
        for (w, bb) in g.w.iter().zip(&g.b) {
            hand.extend(to_vec_f64(w.clone().sum_dim(0)));
            hand.extend(to_vec_f64(bb.clone().sum_dim(0)));
        }
        let auto = grads_of(&p, &loss.sum().backward());
        let e = rel_err(&hand, &auto);
        assert!(e < 1e-12, "{act:?}: relative error {e:e}");
    }
}

#[test]
fn second_order_meta_gradient_matches_finite_differences() {
    let d = f64_device();
    let ad = d.clone().autodiff();
    let theta = theta0(2);
    assert_eq!(theta.len(), num_params());
    // ReLU meta-objectives jump where a unit's inner-gradient mask flips, so their oracle
    // uses a tiny step and a small batch (burn-primer §4); tanh is smooth.
    for (act, h, m, k) in [
        (Activation::Tanh, 1e-6, 4, 10),
        (Activation::Relu, 1e-7, 2, 5),
    ] {
        let (b_ad, b_d) = (batch(&ad, m, k), batch(&d, m, k));
        for steps in [1, 3] {
            let c = cfg(act, steps, 0.1, Hessian::Full);
            let exact = meta_grad(&theta, &c, &b_ad, &ad);
            let fd = fd_grad(&theta, &c, &b_d, &d, h);
            let e = rel_err(&exact, &fd);
            let fo = meta_grad(&theta, &cfg(act, steps, 0.1, Hessian::None), &b_ad, &ad);
            let e_fo = rel_err(&fo, &fd);
            println!(
                "{act:?} steps={steps}: exact rel err {e:.2e}, first-order rel err {e_fo:.2e}"
            );
            assert!(e <= 1e-6, "{act:?}, {steps} steps: relative error {e:e}");
            assert!(e_fo > 1e-3, "the second-order term matters here ({e_fo:e})");
        }
    }
}

#[test]
fn first_order_meta_gradient_is_the_query_gradient_at_adapted_parameters() {
    let d = f64_device();
    let ad = d.clone().autodiff();
    let b = batch(&ad, 3, 10);
    let theta = theta0(3);
    for steps in [1, 2] {
        let c = cfg(Activation::Tanh, steps, 0.05, Hessian::None);
        let fo = meta_grad(&theta, &c, &b, &ad);
        // θ'_i computed without tracking, then used as leaves of the query loss.
        let p = params(&theta, c.activation, &d, false);
        let (adapted, _) =
            metarl::algo::sine_maml::adapt(&p, &b_plain(&b), c.inner_lr, steps, Hessian::None);
        let leaves = MlpParams {
            w: adapted
                .w
                .iter()
                .map(|t| Tensor::from_data(t.to_data(), &ad).require_grad())
                .collect(),
            b: adapted
                .b
                .iter()
                .map(|t| Tensor::from_data(t.to_data(), &ad).require_grad())
                .collect(),
            activation: c.activation,
        };
        let (ql, _) = mse_and_grad(
            metarl::nn::functional::predict(&leaves, b.xq.clone()),
            b.yq.clone(),
        );
        let g = ql.mean().backward();
        // ∂θ'_i/∂θ = I in first-order MAML, so the meta-gradient is Σ_i ∇L_q,i(θ'_i)/M:
        // the per-task leaf gradients summed over the task dimension.
        let mut want = vec![];
        for (w, bb) in leaves.w.iter().zip(&leaves.b) {
            want.extend(to_vec_f64(w.grad(&g).unwrap().sum_dim(0)));
            want.extend(to_vec_f64(bb.grad(&g).unwrap().sum_dim(0)));
        }
        let e = rel_err(&fo, &want);
        assert!(e < 1e-12, "{steps} steps: {e:e}");
    }
}

/// The same batch on the plain device (values only).
fn b_plain(b: &SineBatch) -> SineBatch {
    let d = f64_device();
    let c = |t: &Tensor<3>| Tensor::<3>::from_data(t.to_data(), &d);
    SineBatch {
        xs: c(&b.xs),
        ys: c(&b.ys),
        xq: c(&b.xq),
        yq: c(&b.yq),
    }
}

#[test]
fn with_zero_inner_step_both_variants_equal_the_plain_gradient() {
    let d = f64_device();
    let ad = d.clone().autodiff();
    let b = batch(&ad, 3, 10);
    let theta = theta0(4);
    let p = params(&theta, Activation::Relu, &ad, true);
    let (ql, _) = mse_and_grad(
        metarl::nn::functional::predict(&p, b.xq.clone()),
        b.yq.clone(),
    );
    let plain = grads_of(&p, &ql.mean().backward());
    for h in [Hessian::Full, Hessian::None] {
        let g = meta_grad(&theta, &cfg(Activation::Relu, 2, 0.0, h), &b, &ad);
        assert!(rel_err(&g, &plain) < 1e-12, "{h:?}");
    }
}

/// The host kernels ([`metarl::nn::dense`]) against the tensor route, in f64: per-task
/// meta-gradients averaged over the batch equal autodiff through `meta_objective`, for
/// both nonlinearities, 1 and 3 inner steps, second and first order.
#[test]
fn host_kernel_meta_gradient_equals_the_tensor_route() {
    use metarl::nn::dense::{maml_task, Dense, TaskData, Workspace};
    let d = f64_device();
    let ad = d.clone().autodiff();
    let (m, k) = (4, 10);
    let b = batch(&ad, m, k);
    let host = |t: &Tensor<3>| to_vec_f64(t.clone());
    let (xs, ys, xq, yq) = (host(&b.xs), host(&b.ys), host(&b.xq), host(&b.yq));
    let theta = theta0(5);
    for act in [Activation::Tanh, Activation::Relu] {
        for (steps, hessian) in [
            (1, Hessian::Full),
            (3, Hessian::Full),
            (1, Hessian::None),
            (3, Hessian::None),
        ] {
            let c = cfg(act, steps, 0.3, hessian);
            let net = Dense::new(SIZES.to_vec(), act);
            let (mut ws, mut g, mut sum) = (
                Workspace::default(),
                vec![0.0; theta.len()],
                vec![0.0; theta.len()],
            );
            let mut post = 0.0;
            ws.start_from(&net, &theta);
            for i in 0..m {
                let r = i * k..(i + 1) * k;
                let task = TaskData {
                    xs: &xs[r.clone()],
                    ys: &ys[r.clone()],
                    xq: &xq[r.clone()],
                    yq: &yq[r],
                };
                post += maml_task(
                    &net,
                    task,
                    (c.inner_lr, steps, hessian == Hessian::Full),
                    &mut ws,
                    &mut g,
                )
                .post;
                sum.iter_mut().zip(&g).for_each(|(s, x)| *s += x / m as f64);
            }
            let tensor = meta_grad(&theta, &c, &b, &ad);
            let e = rel_err(&sum, &tensor);
            assert!(
                e < 1e-12,
                "{act:?}, {steps} steps, {hessian:?}: relative error {e:e}"
            );
            let v = meta_value(&theta, &c, &b, &d);
            assert!(
                (post / m as f64 - v).abs() < 1e-12 * v.abs().max(1.0),
                "meta-objective {post} vs {v}"
            );
        }
    }
}
