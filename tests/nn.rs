//! Gaussian policy, MLP and deterministic policy against closed forms, in f64.

use burn::prelude::*;
use metarl::device::f64_device;
use metarl::nn::{
    gaussian::{diag_gaussian_kl, gaussian_log_prob},
    tensor2, to_vec_f64, Activation, DeterministicPolicyConfig, GaussianPolicyConfig, Init,
};
use metarl::params;
use metarl::rng::stream;

const LN_2PI: f64 = 1.837_877_066_409_345_5;

fn policy(device: &Device) -> metarl::nn::GaussianPolicy {
    let cfg = GaussianPolicyConfig {
        hidden: vec![5, 4],
        init_std: 0.7,
        ..Default::default()
    };
    cfg.init(3, 2, &mut stream(0, "policy"), device)
}

fn data() -> (Vec<f32>, Vec<f32>) {
    let obs = vec![
        0.1, -0.4, 0.9, 1.2, 0.3, -0.7, -0.2, 0.5, 0.05, 0.8, -1.1, 0.6,
    ];
    let act = vec![0.3, -0.2, -1.0, 0.4, 0.7, 0.1, -0.5, 1.5];
    (obs, act)
}

#[test]
fn gaussian_log_prob_matches_the_closed_form() {
    let d = f64_device();
    let (mu, ls, a) = (
        vec![0.5, -1.0, 2.0, 0.0],
        vec![0.3f64, -0.8],
        vec![0.1, -0.5, 3.0, 0.2],
    );
    let lp = to_vec_f64(gaussian_log_prob(
        tensor2(mu.clone(), 2, 2, &d),
        Tensor::from_data(TensorData::new(ls.clone(), [2]), &d),
        tensor2(a.clone(), 2, 2, &d),
    ));
    for b in 0..2 {
        let mut want = 0.0f64;
        for j in 0..2 {
            let s = ls[j].exp();
            let z = (a[b * 2 + j] as f64 - mu[b * 2 + j] as f64) / s;
            want += -0.5 * z * z - ls[j] - 0.5 * LN_2PI;
        }
        assert!((lp[b] - want).abs() < 1e-6, "row {b}: {} vs {want}", lp[b]);
    }
}

#[test]
fn entropy_matches_the_closed_form() {
    let d = f64_device();
    let p = policy(&d);
    let h = to_vec_f64(p.entropy())[0];
    let want = 2.0 * ((0.7f64).ln() + 0.5 * (1.0 + LN_2PI));
    assert!((h - want).abs() < 1e-9, "{h} vs {want}");
}

#[test]
fn kl_matches_the_closed_form_and_is_zero_against_itself() {
    let d = f64_device();
    let (mp, mq) = (vec![0.0f32, 1.0], vec![0.5f32, -1.0]);
    let (lp, lq) = (vec![0.0f32, -0.5], vec![0.2f32, 0.1]);
    let t1 = |v: &Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [2]), &d);
    let kl = to_vec_f64(diag_gaussian_kl(
        tensor2(mp.clone(), 1, 2, &d),
        t1(&lp),
        tensor2(mq.clone(), 1, 2, &d),
        t1(&lq),
    ))[0];
    let want: f64 = (0..2)
        .map(|j| {
            let (sp, sq) = ((lp[j] as f64).exp(), (lq[j] as f64).exp());
            (sq / sp).ln() + (sp * sp + (mp[j] as f64 - mq[j] as f64).powi(2)) / (2.0 * sq * sq)
                - 0.5
        })
        .sum();
    assert!((kl - want).abs() < 1e-6, "{kl} vs {want}");
    let p = policy(&d);
    let (obs, _) = data();
    let self_kl = to_vec_f64(p.kl(&p, tensor2(obs, 4, 3, &d)));
    assert!(self_kl.iter().all(|k| k.abs() < 1e-12), "{self_kl:?}");
}

/// The autodiff gradient of Σ_b w_b log π(a_b|s_b) with respect to every parameter equals
/// a central finite difference of the same function in f64 (mean network and log-std),
/// and the log-std part equals the closed form Σ_b w_b ((a−μ)²/σ² − 1).
#[test]
fn log_prob_gradient_matches_finite_differences_and_closed_form() {
    let d = f64_device();
    let ad = d.clone().autodiff();
    let p = policy(&ad);
    let (obs, act) = data();
    let w = vec![1.0f32, -0.5, 2.0, 0.3];
    let f = |m: &metarl::nn::GaussianPolicy, dev: &Device| -> Tensor<1> {
        let lp = m.log_prob(
            tensor2(obs.clone(), 4, 3, dev),
            tensor2(act.clone(), 4, 2, dev),
        );
        (lp * Tensor::<1>::from_data(TensorData::new(w.clone(), [4]), dev)).sum()
    };
    let grads = f(&p, &ad).backward();
    let gp = burn::optim::GradientsParams::from_grads(grads, &p);
    let g = params::flatten_gradients(&p, &gp);

    let base = p.valid();
    let theta: Vec<f64> = to_vec_f64_params(&base);
    let h = 1e-6;
    for k in 0..theta.len() {
        let eval = |delta: f64| {
            let mut t = theta.clone();
            t[k] += delta;
            let m = unflatten_f64(base.clone(), &t, &d);
            to_vec_f64(f(&m, &d))[0]
        };
        let fd = (eval(h) - eval(-h)) / (2.0 * h);
        assert!(
            (fd - g[k] as f64).abs() < 1e-6 * (1.0 + fd.abs()),
            "param {k}: fd {fd} vs autodiff {}",
            g[k]
        );
    }
    // Closed form for the log-std block (the last two coordinates).
    let mu = to_vec_f64(base.forward(tensor2(obs.clone(), 4, 3, &d)));
    for j in 0..2 {
        let s2 = 0.7f64 * 0.7;
        let want: f64 = (0..4)
            .map(|b| w[b] as f64 * ((act[b * 2 + j] as f64 - mu[b * 2 + j]).powi(2) / s2 - 1.0))
            .sum();
        let got = g[theta.len() - 2 + j] as f64;
        assert!((got - want).abs() < 1e-6, "log-std {j}: {got} vs {want}");
    }
}

fn to_vec_f64_params(m: &metarl::nn::GaussianPolicy) -> Vec<f64> {
    let mut out = Vec::new();
    for l in &m.mean.layers {
        out.extend(to_vec_f64(l.weight.val()));
        out.extend(to_vec_f64(l.bias.as_ref().unwrap().val()));
    }
    out.extend(to_vec_f64(m.log_std.val()));
    assert_eq!(out.len(), params::num_params(m));
    out
}

/// Unflatten at full f64 precision (params::unflatten goes through f32).
fn unflatten_f64(
    m: metarl::nn::GaussianPolicy,
    theta: &[f64],
    d: &Device,
) -> metarl::nn::GaussianPolicy {
    use burn::module::{ModuleMapper, Param};
    struct U<'a>(&'a [f64], usize, Device);
    impl ModuleMapper for U<'_> {
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let shape = p.lazy_shape();
            let n = shape.num_elements();
            let chunk = self.0[self.1..self.1 + n].to_vec();
            self.1 += n;
            let dev = self.2.clone();
            p.map(|_| Tensor::from_data(TensorData::new(chunk, shape), &dev))
        }
    }
    m.map(&mut U(theta, 0, d.clone()))
}

#[test]
fn sampled_actions_are_mean_plus_std_noise_with_consistent_log_prob() {
    let d = f64_device();
    let p = policy(&d);
    let (obs, _) = data();
    let s = p.sample(tensor2(obs.clone(), 4, 3, &d), &mut stream(5, "act"));
    let lp = to_vec_f64(p.log_prob(tensor2(obs, 4, 3, &d), tensor2(s.actions.clone(), 4, 2, &d)));
    for (b, (x, y)) in lp.iter().zip(&s.log_prob).enumerate() {
        assert!((x - *y as f64).abs() < 1e-4, "row {b}");
    }
    // Same RNG stream → same actions.
    let s2 = p.sample(tensor2(data().0, 4, 3, &d), &mut stream(5, "act"));
    assert_eq!(s.actions, s2.actions);
}

#[test]
fn sample_moments_match_the_policy() {
    let d = f64_device();
    let p = policy(&d);
    let n = 20_000;
    let obs: Vec<f32> = std::iter::repeat_n([0.2f32, -0.1, 0.4], n)
        .flatten()
        .collect();
    let s = p.sample(tensor2(obs, n, 3, &d), &mut stream(9, "act"));
    for j in 0..2 {
        let xs: Vec<f64> = s
            .actions
            .iter()
            .skip(j)
            .step_by(2)
            .map(|&x| x as f64)
            .collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let mu = s.mean[j] as f64;
        // 4 standard errors of the mean and of the variance (≈ σ²·√(2/n)).
        assert!(
            (mean - mu).abs() < 4.0 * 0.7 / (n as f64).sqrt(),
            "mean {mean} vs {mu}"
        );
        assert!(
            (var - 0.49).abs() < 4.0 * 0.49 * (2.0 / n as f64).sqrt(),
            "var {var}"
        );
    }
}

#[test]
fn mlp_and_deterministic_policy_match_a_hand_forward() {
    let d = f64_device();
    let cfg = DeterministicPolicyConfig {
        hidden: vec![3],
        activation: Activation::Relu,
        tanh_output: true,
        init: Init::HeNormal,
    };
    let p = cfg.init(2, 2, &mut stream(1, "policy"), &d);
    let x = [0.4f64, -1.3];
    let l0 = &p.net.layers[0];
    let l1 = &p.net.layers[1];
    let (w0, b0) = (
        to_vec_f64(l0.weight.val()),
        to_vec_f64(l0.bias.as_ref().unwrap().val()),
    );
    let (w1, b1) = (
        to_vec_f64(l1.weight.val()),
        to_vec_f64(l1.bias.as_ref().unwrap().val()),
    );
    let h: Vec<f64> = (0..3)
        .map(|k| (x[0] * w0[k] + x[1] * w0[3 + k] + b0[k]).max(0.0))
        .collect();
    let y: Vec<f64> = (0..2)
        .map(|o| (0..3).map(|k| h[k] * w1[k * 2 + o]).sum::<f64>() + b1[o])
        .map(f64::tanh)
        .collect();
    let got = to_vec_f64(p.forward(tensor2(vec![0.4, -1.3], 1, 2, &d)));
    for o in 0..2 {
        assert!((got[o] - y[o]).abs() < 1e-6, "{got:?} vs {y:?}");
    }
    let lin = DeterministicPolicyConfig::default().init(2, 2, &mut stream(1, "policy"), &d);
    assert!(lin.is_linear());
}

/// `n` values spread over [−2.5, 2.5] (deterministic, no zeros in the middle of the range).
fn spread(n: usize, phase: f64) -> Vec<f64> {
    (0..n)
        .map(|i| 2.5 * ((i as f64) * 0.77 + phase).sin())
        .collect()
}

fn leaf(v: &[f64], shape: [usize; 3], d: &Device) -> Tensor<3> {
    Tensor::<3>::from_data(TensorData::new(v.to_vec(), shape), d).require_grad()
}

fn close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn fused_tanh_ops_and_their_gradients_match_closed_forms() {
    use metarl::nn::fused::{tanh, tanh_grad_mul};
    let ad = f64_device().autodiff();
    let shape = [2, 3, 4];
    let (xv, dv, hv, wv) = (
        spread(24, 0.1),
        spread(24, 1.3),
        spread(24, 2.1).iter().map(|v| v / 2.6).collect::<Vec<_>>(),
        spread(24, 0.7),
    );
    let w = Tensor::<3>::from_data(TensorData::new(wv.clone(), shape), &ad);

    // tanh: value and ∂/∂x Σ w tanh(x) = w (1 − tanh²x).
    let x = leaf(&xv, shape, &ad);
    let y = tanh(x.clone());
    close(
        &to_vec_f64(y.clone()),
        &xv.iter().map(|v| v.tanh()).collect::<Vec<_>>(),
        1e-15,
        "tanh",
    );
    let g = (y * w.clone()).sum().backward();
    let want: Vec<f64> = xv
        .iter()
        .zip(&wv)
        .map(|(x, w)| w * (1.0 - x.tanh().powi(2)))
        .collect();
    close(&to_vec_f64(x.grad(&g).unwrap()), &want, 1e-14, "∂tanh");

    // A non-contiguous input (swapped dimensions) gives the same values.
    let xt = Tensor::<3>::from_data(TensorData::new(xv.clone(), shape), &ad).swap_dims(1, 2);
    close(
        &to_vec_f64(tanh(xt.clone())),
        &to_vec_f64(xt.clone().tanh()),
        1e-15,
        "tanh of a transposed view",
    );

    // d ⊙ (1 − h²): value, ∂/∂d = w (1 − h²), ∂/∂h = −2 w d h.
    let (dt, ht) = (leaf(&dv, shape, &ad), leaf(&hv, shape, &ad));
    let out = tanh_grad_mul(dt.clone(), ht.clone());
    let value: Vec<f64> = dv.iter().zip(&hv).map(|(d, h)| d * (1.0 - h * h)).collect();
    close(&to_vec_f64(out.clone()), &value, 1e-15, "tanh_grad_mul");
    let g = (out * w.clone()).sum().backward();
    let gd: Vec<f64> = hv.iter().zip(&wv).map(|(h, w)| w * (1.0 - h * h)).collect();
    let gh: Vec<f64> = (0..24).map(|i| -2.0 * wv[i] * dv[i] * hv[i]).collect();
    close(&to_vec_f64(dt.grad(&g).unwrap()), &gd, 1e-14, "∂/∂d");
    close(&to_vec_f64(ht.grad(&g).unwrap()), &gh, 1e-14, "∂/∂h");

    // One tensor as both inputs (shared buffers, gradients summed): x (1 − x²) has
    // derivative 1 − 3x². The input itself is left unchanged.
    let s = leaf(&hv, shape, &ad);
    let g = (tanh_grad_mul(s.clone(), s.clone()) * w).sum().backward();
    let want: Vec<f64> = hv
        .iter()
        .zip(&wv)
        .map(|(h, w)| w * (1.0 - 3.0 * h * h))
        .collect();
    close(
        &to_vec_f64(s.grad(&g).unwrap()),
        &want,
        1e-14,
        "shared input",
    );
    close(&to_vec_f64(s), &hv, 0.0, "input unchanged");
}

#[test]
fn fused_tanh_composes_into_exact_second_derivatives() {
    // f(x) = Σ w ⊙ tanh_grad_mul(v, tanh(x)) = Σ w v (1 − tanh²x), the shape of an inner
    // gradient's tanh′ factor; ∂f/∂x = −2 w v tanh(x) (1 − tanh²x) in closed form.
    use metarl::nn::fused::{tanh, tanh_grad_mul};
    let ad = f64_device().autodiff();
    let shape = [1, 4, 5];
    let (xv, vv, wv) = (spread(20, 0.4), spread(20, 1.9), spread(20, 2.8));
    let x = leaf(&xv, shape, &ad);
    let v = Tensor::<3>::from_data(TensorData::new(vv.clone(), shape), &ad);
    let w = Tensor::<3>::from_data(TensorData::new(wv.clone(), shape), &ad);
    let g = (tanh_grad_mul(v, tanh(x.clone())) * w).sum().backward();
    let want: Vec<f64> = (0..20)
        .map(|i| {
            let t = xv[i].tanh();
            -2.0 * wv[i] * vv[i] * t * (1.0 - t * t)
        })
        .collect();
    close(&to_vec_f64(x.grad(&g).unwrap()), &want, 1e-14, "∂f/∂x");
}

#[test]
fn fused_matmul_and_its_gradients_match_burns_matmul() {
    use metarl::nn::fused::matmul;
    let ad = f64_device().autodiff();
    // A hand-computed product: [[1, 2], [3, 4]] · [[5, 6], [7, 8]] = [[19, 22], [43, 50]].
    let a = Tensor::<2>::from_data(TensorData::new(vec![1.0f64, 2.0, 3.0, 4.0], [2, 2]), &ad);
    let b = Tensor::<2>::from_data(TensorData::new(vec![5.0f64, 6.0, 7.0, 8.0], [2, 2]), &ad);
    close(
        &to_vec_f64(matmul(a, b)),
        &[19.0, 22.0, 43.0, 50.0],
        0.0,
        "2 × 2",
    );

    // Batched, with transposed (strided) views on either side, against Burn's matmul:
    // values, ∂/∂a = g bᵀ and ∂/∂b = aᵀ g.
    let (av, bv, wv) = (
        spread(2 * 3 * 4, 0.2),
        spread(2 * 4 * 5, 1.1),
        spread(2 * 3 * 5, 2.3),
    );
    let w = Tensor::<3>::from_data(TensorData::new(wv, [2, 3, 5]), &ad);
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let make = |v: &[f64], shape: [usize; 3], t: bool| {
            if t {
                leaf(v, [shape[0], shape[2], shape[1]], &ad)
            } else {
                leaf(v, shape, &ad)
            }
        };
        let view = |x: &Tensor<3>, t: bool| {
            if t {
                x.clone().swap_dims(1, 2)
            } else {
                x.clone()
            }
        };
        let (a, b) = (make(&av, [2, 3, 4], ta), make(&bv, [2, 4, 5], tb));
        let fused = matmul(view(&a, ta), view(&b, tb));
        let burn = view(&a, ta).matmul(view(&b, tb));
        let what = format!("transposed a: {ta}, b: {tb}");
        close(
            &to_vec_f64(fused.clone()),
            &to_vec_f64(burn.clone()),
            1e-13,
            &what,
        );
        let gf = (fused * w.clone()).sum().backward();
        let gb = (burn * w.clone()).sum().backward();
        for (x, name) in [(&a, "∂/∂a"), (&b, "∂/∂b")] {
            close(
                &to_vec_f64(x.grad(&gf).unwrap()),
                &to_vec_f64(x.grad(&gb).unwrap()),
                1e-13,
                &format!("{name}, {what}"),
            );
        }
    }
}
