//! ES-MAML on sine regression: the exact Hessian-vector product of first-order ES-MAML
//! against a central finite difference of the exact gradient (f64), the exact first-order
//! direction's limits, and ES estimates against the exact quantities they estimate.

use metarl::algo::es_sine::{fo_direction, hessian_vector, EsSineConfig};
use metarl::env::sine::SineDistribution;
use metarl::es::{es_gradient, EsEstimator};
use metarl::nn::functional::{backward, forward, mse_and_grad, MlpParams};
use metarl::nn::{to_vec_f64, Activation};
use metarl::rng::{stream, Rng};
use metarl::supervised::SineBatch;

const SIZES: [usize; 4] = [1, 8, 8, 1];

fn theta() -> Vec<f32> {
    use rand::Rng;
    let mut r = stream(2, "theta");
    let n: usize = SIZES.windows(2).map(|w| w[0] * w[1] + w[1]).sum();
    (0..n).map(|_| r.random_range(-0.8f32..0.8)).collect()
}

fn cfg() -> EsSineConfig {
    EsSineConfig {
        hidden: vec![8, 8],
        alpha: 0.05,
        ..Default::default()
    }
}

fn rel(a: &[f32], b: &[f32]) -> f64 {
    let n: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    n / b.iter().map(|y| (*y as f64).powi(2)).sum::<f64>().sqrt()
}

/// One sine task and its 10 support and 10 query points, drawn from stream `seed`.
fn one_task_batch(seed: u64, d: &burn::prelude::Device) -> SineBatch {
    let dist = SineDistribution::default();
    let mut r = stream(seed, "tasks");
    let task = dist.sample_task(&mut r);
    SineBatch::sample(&dist, &[task], 10, &mut r, d)
}

fn grad_loss(th: &[f32], b: &SineBatch, d: &burn::prelude::Device) -> Vec<f64> {
    let p = MlpParams::from_flat(th, &SIZES, Activation::Relu, d, false);
    let (y, cache) = forward(&p, b.xs.clone());
    let (_, dy) = mse_and_grad(y, b.ys.clone());
    let g = backward(&p, &cache, dy);
    g.w.iter()
        .zip(&g.b)
        .flat_map(|(w, bb)| [to_vec_f64(w.clone()), to_vec_f64(bb.clone())])
        .flatten()
        .collect()
}

#[test]
fn exact_hessian_vector_product_matches_finite_differences_of_the_gradient() {
    let d = metarl::device::f64_device();
    let b = one_task_batch(5, &d);
    let th = theta();
    let v: Vec<f32> = (0..th.len())
        .map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.1)
        .collect();
    let hv = hessian_vector(&th, &v, &b, &SIZES, &d);
    // H = −∇²L, so H v ≈ −(∇L(θ + h v) − ∇L(θ − h v)) / 2h (θ in f32: h = 1e-3, ReLU kinks
    // are rare at this size; the check is on the whole vector).
    let h = 1e-3f32;
    let tp: Vec<f32> = th.iter().zip(&v).map(|(t, x)| t + h * x).collect();
    let tm: Vec<f32> = th.iter().zip(&v).map(|(t, x)| t - h * x).collect();
    let (gp, gm) = (grad_loss(&tp, &b, &d), grad_loss(&tm, &b, &d));
    let fd: Vec<f32> = gp
        .iter()
        .zip(&gm)
        .map(|(a, c)| (-(a - c) / (2.0 * h as f64)) as f32)
        .collect();
    let e = rel(&hv, &fd);
    assert!(e < 1e-3, "relative error {e:e}");
}

#[test]
fn first_order_direction_reduces_to_the_gradient_without_hessian_or_step() {
    let d = metarl::device::f64_device();
    let b = one_task_batch(6, &d);
    let th = theta();
    let mut c = cfg();
    c.alpha = 0.0;
    let (dir, d1, _) = fo_direction(&th, &b, &c, &d);
    let query = SineBatch {
        xs: b.xq.clone(),
        ys: b.yq.clone(),
        ..b.clone()
    };
    let (_, d1_query, _) = fo_direction(&th, &query, &c, &d);
    assert!(
        rel(&dir, &d1_query) < 1e-6,
        "α = 0: (I + αH) d2 = d2 = −∇L_query(θ)"
    );
    assert!(
        rel(&dir, &d1) > 1e-2,
        "the query gradient is not the support one"
    );
    let c = EsSineConfig {
        hessian: false,
        ..cfg()
    };
    let (dir_none, _, _) = fo_direction(&th, &b, &c, &d);
    let (dir_full, _, hd2) = fo_direction(&th, &b, &cfg(), &d);
    let diff: Vec<f32> = dir_full
        .iter()
        .zip(&dir_none)
        .map(|(a, b)| (a - b) / cfg().alpha as f32)
        .collect();
    assert!(
        rel(&diff, &hd2) < 1e-4,
        "FO-Hessian − FO-NoHessian = α H d2"
    );
}

/// The ES gradient that first-order ES-MAML uses, on f = −L of one sine task, against the
/// exact gradient: antithetic ES with many directions and a small σ recovers ∇f (cosine ≈
/// 1/√(1 + d/n) = 0.98 for d = 97, n = 2000). (The ES Hessian estimates the Hessian of the
/// σ-smoothed f, which for a ReLU network differs from the exact one at θ; no such
/// assertion is made.)
#[test]
fn es_gradient_agrees_with_the_exact_gradient() {
    let d = metarl::device::f64_device();
    let b = one_task_batch(7, &d);
    let th = theta();
    let (_, d1, _) = fo_direction(&th, &b, &cfg(), &d);
    let f = |p: &[f32], _r: &mut Rng| -> f64 {
        let pp = MlpParams::from_flat(p, &SIZES, Activation::Relu, &d, false);
        -(metarl::nn::to_vec(
            mse_and_grad(
                metarl::nn::functional::predict(&pp, b.xs.clone()),
                b.ys.clone(),
            )
            .0,
        )[0] as f64)
    };
    let est = es_gradient(&f, &th, 1e-3, 2000, EsEstimator::Antithetic, 1, false);
    let cos = |a: &[f32], c: &[f32]| {
        let dot: f64 = a.iter().zip(c).map(|(x, y)| *x as f64 * *y as f64).sum();
        dot / (a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
            * c.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt())
    };
    let c1 = cos(&est.grad, &d1);
    println!("cos(ES gradient, exact gradient) = {c1:.3}");
    assert!(c1 > 0.9, "{c1}");
}

/// First-order ES-MAML with the exact Hessian term is MAML's exact meta-gradient: the
/// gradient of F(θ) = −L_query(θ − α∇L_support(θ)), against central finite differences of
/// F in every coordinate (f64 arithmetic; θ ± h e_i rounded to f32, h = 1e-3).
#[test]
fn first_order_direction_with_hessian_is_the_exact_meta_gradient() {
    use metarl::nn::functional::predict;
    use metarl::supervised::{adapt, Hessian};
    let d = metarl::device::f64_device();
    let b = one_task_batch(8, &d);
    let th = theta();
    let c = cfg();
    let big_f = |t: &[f32]| -> f64 {
        let p = MlpParams::from_flat(t, &SIZES, Activation::Relu, &d, false);
        let (adapted, _) = adapt(&p, &b, c.alpha as f64, 1, Hessian::None);
        -to_vec_f64(mse_and_grad(predict(&adapted, b.xq.clone()), b.yq.clone()).0)[0]
    };
    let h = 1e-3f32;
    let fd: Vec<f32> = (0..th.len())
        .map(|i| {
            let (mut tp, mut tm) = (th.clone(), th.clone());
            tp[i] += h;
            tm[i] -= h;
            ((big_f(&tp) - big_f(&tm)) / f64::from(tp[i] - tm[i])) as f32
        })
        .collect();
    let (dir, _, _) = fo_direction(&th, &b, &c, &d);
    let e = rel(&dir, &fd);
    println!("relative error of the first-order direction: {e:e}");
    assert!(e < 1e-3, "relative error {e:e}");
}
