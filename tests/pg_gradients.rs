//! PG-MAML and ProMP meta-gradients on a fixed batch of nav2d trajectories, in f64: for
//! each inner estimator (maml, dice, lvc), with and without the E-MAML term, and for the
//! ProMP objective, autodiff through the inner step equals a brute-force central finite
//! difference of the same surrogate meta-objective.

mod common;
use common::rel_err;

use burn::prelude::*;
use metarl::device::f64_device;
use metarl::env;
use metarl::nn::functional::{GaussianParams, MlpParams};
use metarl::nn::{to_vec_f64, Activation};
use metarl::objective::{
    clipped_surrogate, emaml_term, likelihood_ratio, masked_mean, surrogate, Estimator,
};
use metarl::pg::{adapt, process, sample_tasks, MetaPgConfig, TaskBatch};
use metarl::rng::stream;

const OD: usize = 2;
const H: usize = 8;
const AD: usize = 2;

fn shapes() -> Vec<Vec<usize>> {
    vec![vec![OD, H], vec![H], vec![H, AD], vec![AD], vec![AD]]
}

/// θ0: weights U(−0.8, 0.8), log-std U(−0.3, 0.3) − 0.7 (σ ≈ 0.5).
fn theta0() -> Vec<f64> {
    use rand::Rng;
    let mut r = stream(7, "theta");
    let n: usize = shapes().iter().map(|s| s.iter().product::<usize>()).sum();
    (0..n)
        .map(|i| {
            if i < n - AD {
                r.random_range(-0.8..0.8)
            } else {
                r.random_range(-0.3..0.3) - 0.7
            }
        })
        .collect()
}

fn params(theta: &[f64], d: &Device, track: bool) -> GaussianParams {
    let mut off = 0;
    let mut take = |shape: [usize; 3]| {
        let n = shape.iter().product::<usize>();
        let t = Tensor::<3>::from_data(TensorData::new(theta[off..off + n].to_vec(), shape), d);
        off += n;
        if track {
            t.require_grad()
        } else {
            t
        }
    };
    let w1 = take([1, OD, H]);
    let b1 = take([1, 1, H]);
    let w2 = take([1, H, AD]);
    let b2 = take([1, 1, AD]);
    let ls = take([1, 1, AD]);
    GaussianParams {
        mean: MlpParams {
            w: vec![w1, w2],
            b: vec![b1, b2],
            activation: Activation::Tanh,
        },
        log_std: ls,
    }
}

fn grads(p: &GaussianParams, g: &burn::tensor::Gradients) -> Vec<f64> {
    let mut out = vec![];
    for (w, b) in p.mean.w.iter().zip(&p.mean.b) {
        out.extend(to_vec_f64(w.grad(g).unwrap()));
        out.extend(to_vec_f64(b.grad(g).unwrap()));
    }
    out.extend(to_vec_f64(p.log_std.grad(g).unwrap()));
    // Reorder to the flat layout: w1 b1 w2 b2 ls (already in that order).
    out
}

struct Fixture {
    pre: TaskBatch,
    post: TaskBatch,
    cfg: MetaPgConfig,
}

/// Pre-update samples from θ0 and post-update samples from θ0' (lvc step), on `d`.
fn fixture(d: &Device) -> Fixture {
    let envf = env::make("nav2d").unwrap();
    let cfg = MetaPgConfig {
        tasks: 2,
        rollouts: 3,
        ..Default::default()
    };
    let tasks = metarl::pg::sample_task_batch(&envf, 2, &mut stream(3, "tasks"));
    let th = params(&theta0(), d, false);
    let tr = sample_tasks(
        &envf,
        &tasks,
        &th,
        3,
        &mut stream(3, "env"),
        &mut stream(3, "act"),
        d,
    );
    let pre = process(&tr, &cfg, d).unwrap();
    let adapted = adapt(&th, &pre, Estimator::Lvc, cfg.inner_lr, true);
    let tr2 = sample_tasks(
        &envf,
        &tasks,
        &adapted,
        3,
        &mut stream(4, "env"),
        &mut stream(4, "act"),
        d,
    );
    let post = process(&tr2, &cfg, d).unwrap();
    Fixture { pre, post, cfg }
}

/// A copy of a batch's tensors on `d` (values only).
fn on(b: &TaskBatch, d: &Device) -> TaskBatch {
    let c = |t: &Tensor<3>| Tensor::<3>::from_data(t.to_data(), d);
    TaskBatch {
        obs: c(&b.obs),
        act: c(&b.act),
        logp_old: c(&b.logp_old),
        adv: c(&b.adv),
        dice_r: c(&b.dice_r),
        mask: c(&b.mask),
        n: c(&b.n),
        ..b.clone()
    }
}

#[derive(Clone, Copy, Debug)]
enum Outer {
    Vpg,
    Emaml,
    ProMp,
}

/// The surrogate meta-objective on the fixed batches.
fn objective(th: &GaussianParams, f: &Fixture, est: Estimator, outer: Outer) -> Tensor<1> {
    let adapted = adapt(th, &f.pre, est, f.cfg.inner_lr, true);
    let ratio = likelihood_ratio(f.post.log_prob(&adapted), f.post.logp_old.clone());
    match outer {
        Outer::Vpg => surrogate(
            ratio,
            f.post.adv.clone(),
            f.post.mask.clone(),
            f.post.n.clone(),
        )
        .mean(),
        Outer::Emaml => {
            let r = Tensor::<1>::from_data(
                TensorData::new(vec![0.7f64, -1.3], [2]),
                &th.log_std.device(),
            );
            surrogate(
                ratio,
                f.post.adv.clone(),
                f.post.mask.clone(),
                f.post.n.clone(),
            )
            .mean()
                + emaml_term(f.pre.log_prob(th), f.pre.mask.clone(), f.pre.n.clone(), r).mean()
        }
        Outer::ProMp => {
            let old = params(&theta0(), &th.log_std.device(), false);
            let kl = old
                .kl(th, f.pre.obs.clone())
                .reshape([f.pre.m, f.pre.k, f.pre.t]);
            clipped_surrogate(
                ratio,
                f.post.adv.clone(),
                0.3,
                f.post.mask.clone(),
                f.post.n.clone(),
            )
            .mean()
                - masked_mean(kl, f.pre.mask.clone(), f.pre.n.clone())
                    .mean()
                    .mul_scalar(0.1)
        }
    }
}

#[test]
fn meta_gradients_match_finite_differences_for_every_estimator() {
    let d = f64_device();
    let ad = d.clone().autodiff();
    let f_ad = fixture(&ad);
    let f_d = Fixture {
        pre: on(&f_ad.pre, &d),
        post: on(&f_ad.post, &d),
        cfg: f_ad.cfg.clone(),
    };
    // Perturb θ away from the sampling point so ratios and magic boxes are not all 1.
    let theta: Vec<f64> = theta0()
        .iter()
        .enumerate()
        .map(|(i, x)| x + 0.01 * ((i % 5) as f64 - 2.0))
        .collect();
    for (est, outer) in [
        (Estimator::Maml, Outer::Vpg),
        (Estimator::Dice, Outer::Vpg),
        (Estimator::Lvc, Outer::Vpg),
        (Estimator::Maml, Outer::Emaml),
        (Estimator::Lvc, Outer::ProMp),
    ] {
        let p = params(&theta, &ad, true);
        let g = grads(&p, &objective(&p, &f_ad, est, outer).backward());
        let h = 1e-6;
        let fd: Vec<f64> = (0..theta.len())
            .map(|k| {
                let mut tp = theta.clone();
                let mut tm = theta.clone();
                tp[k] += h;
                tm[k] -= h;
                let v =
                    |t: &[f64]| to_vec_f64(objective(&params(t, &d, false), &f_d, est, outer))[0];
                (v(&tp) - v(&tm)) / (2.0 * h)
            })
            .collect();
        let e = rel_err(&g, &fd);
        println!("{est:?}/{outer:?}: relative error {e:.2e}");
        assert!(e < 1e-6, "{est:?}/{outer:?}: relative error {e:e}");
    }
}

#[test]
fn alpha_zero_reduces_every_estimator_to_the_plain_policy_gradient() {
    let d = f64_device();
    let ad = d.clone().autodiff();
    let mut f = fixture(&ad);
    f.cfg.inner_lr = 0.0;
    let p = params(&theta0(), &ad, true);
    let ratio = likelihood_ratio(f.post.log_prob(&p), f.post.logp_old.clone());
    let plain = grads(
        &p,
        &surrogate(
            ratio,
            f.post.adv.clone(),
            f.post.mask.clone(),
            f.post.n.clone(),
        )
        .mean()
        .backward(),
    );
    for est in [Estimator::Maml, Estimator::Dice, Estimator::Lvc] {
        let p = params(&theta0(), &ad, true);
        let g = grads(&p, &objective(&p, &f, est, Outer::Vpg).backward());
        assert!(rel_err(&g, &plain) < 1e-12, "{est:?}");
    }
}

#[test]
fn likelihood_ratio_is_one_at_the_sampling_parameters() {
    let d = f64_device();
    let f = fixture(&d);
    let th = params(&theta0(), &d, false);
    let r = to_vec_f64(likelihood_ratio(
        f.pre.log_prob(&th),
        f.pre.logp_old.clone(),
    ));
    let mask = to_vec_f64(f.pre.mask.clone());
    for (x, m) in r.iter().zip(mask) {
        if m > 0.0 {
            assert!((x - 1.0).abs() < 1e-5, "ratio {x}");
        }
    }
}

/// Gradients computed in parallel task chunks (fresh leaves per chunk, summed) equal the
/// gradient of the whole meta-batch's objective through the policy module, for any split.
#[test]
fn chunked_gradients_equal_the_whole_batch_gradient() {
    use burn::optim::GradientsParams;
    use metarl::nn::GaussianPolicyConfig;
    use metarl::pg::{chunked_gradient, readapt, task_chunks, MetaSamples};
    let d = f64_device();
    let ad = d.clone().autodiff();
    let f = fixture(&ad);
    let s = MetaSamples {
        pre: vec![f.pre.clone()],
        post: f.post.clone(),
        host: None,
    };
    let cfg = GaussianPolicyConfig {
        hidden: vec![H],
        ..Default::default()
    };
    let policy = cfg.init(OD, AD, &mut stream(9, "policy"), &ad);
    let m = s.post.m as f64;
    let loss = |theta: &GaussianParams, c: &MetaSamples| {
        let (adapted, _) = readapt(theta, &c.pre, &f.cfg);
        let ratio = likelihood_ratio(c.post.log_prob(&adapted), c.post.logp_old.clone());
        surrogate(
            ratio,
            c.post.adv.clone(),
            c.post.mask.clone(),
            c.post.n.clone(),
        )
        .sum()
        .div_scalar(m)
    };
    let whole = GradientsParams::from_grads(
        loss(&GaussianParams::from_policy(&policy), &s).backward(),
        &policy,
    );
    let whole = metarl::params::flatten_gradients(&policy, &whole);
    for chunks in [1, 2] {
        let (g, _) = chunked_gradient(
            &policy,
            &task_chunks(s.post.m, chunks),
            |theta, (lo, hi)| (loss(theta, &s.tasks(lo, hi)), vec![]),
        );
        let e = rel_err(
            &g.iter().map(|x| *x as f64).collect::<Vec<_>>(),
            &whole.iter().map(|x| *x as f64).collect::<Vec<_>>(),
        );
        assert!(e < 1e-6, "{chunks} chunks: relative error {e:e}");
    }
}
