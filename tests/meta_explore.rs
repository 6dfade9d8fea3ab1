//! Meta-exploration gradients in f64.
//!
//! - MAME: the two-pass meta-gradient (outer surrogate at a leaf z', then gᵀ z' through
//!   the inner step) equals a brute-force central finite difference of the exact DiCE
//!   objective with respect to every parameter group (φ, θ, β, z), for the
//!   self-supervised and the VPG inner loss and both targets.
//! - The variance-reduced φ estimator without a baseline and with λ = 1 is the exact
//!   gradient, sample by sample; on a one-step closed-form case its mean matches the exact
//!   gradient, and with the per-task linear baseline it matches (K − 1)/K of it — the
//!   documented shrinkage of a baseline fitted on the same K samples.
//! - MAESN: the meta-gradient through the latent step equals a finite difference.

mod common;
use common::rel_err;

use std::sync::Arc;

use burn::prelude::*;
use metarl::algo::mame::{
    explore_advantages, meta_gradient, meta_gradient_part, objective, run_episodes, ExploreBatch,
    InnerLoss, Latent, MameConfig, MameNets, MameParams, PhiGradient, Target,
};
use metarl::device::f64_device;
use metarl::env::{self, Env};
use metarl::nn::functional::{GaussianParams, MlpParams};
use metarl::nn::{to_vec_f64, Activation, GaussianPolicyConfig};
use metarl::objective::per_task_sum;
use metarl::pg::{process, MetaPgConfig, TaskBatch};
use metarl::rng::stream;

fn small(inner_loss: InnerLoss, target: Target, phi: PhiGradient) -> MameConfig {
    let pol = GaussianPolicyConfig {
        hidden: vec![6],
        ..Default::default()
    };
    MameConfig {
        tasks: 2,
        rollouts: 3,
        inner_lr: 0.05,
        latent_dim: 3,
        inner_loss,
        target,
        phi_gradient: phi,
        explore: pol.clone(),
        exploit: pol,
        ssl_hidden: vec![6],
        ..Default::default()
    }
}

struct Fixture {
    p: MameParams,
    pre: ExploreBatch,
    post: TaskBatch,
}

/// Parameters with every value jittered (so no bias or z is exactly 0), exploration and
/// exploitation samples of two nav2d tasks with horizon 12.
fn fixture(cfg: &MameConfig, d: &Device) -> Fixture {
    use rand::Rng;
    let envf: Arc<dyn Env> = Arc::new(env::nav2d::Nav2d::default().with_horizon(12));
    let s = envf.spec().clone();
    let nets = MameNets::init(
        &cfg.explore,
        &cfg.exploit,
        &cfg.ssl_hidden,
        cfg.ssl_activation,
        (s.obs_dim, s.act_dim, cfg.latent_dim),
        &mut stream(5, "init"),
        d,
    );
    let latent = Latent::zeros(cfg.latent_dim, d);
    let base = MameParams::constants(&nets, &latent);
    let mut r = stream(5, "jitter");
    let p = base.map(|t| {
        let n = t.shape().num_elements();
        let noise: Vec<f64> = (0..n).map(|_| r.random_range(-0.3..0.3)).collect();
        t.clone() + Tensor::<3>::from_data(TensorData::new(noise, t.shape()), d)
    });
    let tasks = metarl::pg::sample_task_batch(&envf, 2, &mut stream(5, "tasks"));
    let ep = run_episodes(
        &envf,
        &tasks,
        &p,
        cfg,
        3,
        &mut stream(5, "env"),
        &mut stream(5, "act"),
        d,
    )
    .unwrap();
    let pg = MetaPgConfig::default();
    let post = process(&ep.exploit, &pg, d).unwrap();
    Fixture {
        p,
        pre: ep.pre,
        post,
    }
}

fn value(f: &Fixture, flat: &[f64], cfg: &MameConfig, d: &Device) -> f64 {
    let mut off = 0;
    let parts =
        f.p.parts()
            .into_iter()
            .map(|t| {
                let n = t.shape().num_elements();
                let v = flat[off..off + n].to_vec();
                off += n;
                Tensor::<3>::from_data(TensorData::new(v, t.shape()), d)
            })
            .collect();
    let p = f.p.from_parts(parts);
    to_vec_f64(objective(&p, &f.pre, &f.post, cfg))[0]
}

fn groups(p: &MameParams, v: &[f64]) -> Vec<Vec<f64>> {
    let mut off = 0;
    p.group_sizes()
        .iter()
        .map(|n| {
            let g = v[off..off + n].to_vec();
            off += n;
            g
        })
        .collect()
}

#[test]
fn mame_meta_gradient_matches_finite_differences() {
    let d = f64_device().autodiff();
    for (inner, target) in [
        (InnerLoss::SelfSupervised, Target::Return),
        (InnerLoss::SelfSupervised, Target::Reward),
        (InnerLoss::Vpg, Target::Return),
    ] {
        let cfg = small(inner, target, PhiGradient::Dice);
        let f = fixture(&cfg, &d);
        let leaves = f.p.map(|t| t.require_grad());
        let g = meta_gradient(&leaves, &f.pre, &f.post, &cfg, &[0.0, 0.0])
            .unwrap()
            .grad;
        let x0 = f.p.to_flat();
        let h = 1e-6;
        let fd: Vec<f64> = (0..x0.len())
            .map(|i| {
                let mut xp = x0.clone();
                xp[i] += h;
                let mut xm = x0.clone();
                xm[i] -= h;
                (value(&f, &xp, &cfg, &d) - value(&f, &xm, &cfg, &d)) / (2.0 * h)
            })
            .collect();
        for (name, (a, b)) in ["phi", "theta", "beta", "z"]
            .iter()
            .zip(groups(&f.p, &g).iter().zip(groups(&f.p, &fd)))
        {
            let e = rel_err(a, &b);
            let norm = b.iter().map(|x| x * x).sum::<f64>().sqrt();
            println!("{inner:?} {target:?} {name}: |fd| = {norm:.3e}, relative error {e:.2e}");
            if inner == InnerLoss::Vpg && *name == "beta" {
                // M_β is not used by the VPG inner loss.
                assert_eq!(norm, 0.0);
                continue;
            }
            assert!(norm > 1e-8, "{name} gradient should not vanish");
            assert!(
                e < 1e-6,
                "{inner:?} {target:?} {name}: relative error {e:.2e}"
            );
        }
    }
}

#[test]
fn variance_reduced_estimator_without_baseline_is_the_exact_gradient() {
    let d = f64_device().autodiff();
    let mut dice = small(InnerLoss::SelfSupervised, Target::Return, PhiGradient::Dice);
    let f = fixture(&dice, &d);
    let grad = |cfg: &MameConfig| {
        let leaves = f.p.map(|t| t.require_grad());
        meta_gradient(&leaves, &f.pre, &f.post, cfg, &[0.0, 0.0])
            .unwrap()
            .grad
    };
    let exact = grad(&dice);
    dice.phi_gradient = PhiGradient::VarianceReduced;
    dice.explore_baseline = false;
    dice.explore_lambda = 1.0;
    let vr = grad(&dice);
    let e = rel_err(&vr, &exact);
    println!("variance-reduced (no baseline, λ = 1) vs exact DiCE: {e:.2e}");
    // r^μ and A^μ go through the f32 host-side estimators (returns, baseline, GAE) and
    // the sampler's log μ_old is f32, so the two agree to f32 rounding.
    assert!(e < 1e-6);
    // With the paper's λ = 0 and baseline the φ part differs; the others do not.
    dice.explore_lambda = 0.0;
    dice.explore_baseline = true;
    let vr0 = grad(&dice);
    let (gv, ge) = (groups(&f.p, &vr0), groups(&f.p, &exact));
    assert!(rel_err(&gv[0], &ge[0]) > 1e-3);
    // The magic boxes equal 1 up to the f32 rounding of the sampler's log μ_old.
    for i in 1..4 {
        assert!(rel_err(&gv[i], &ge[i]) < 1e-6);
    }
}

/// Task chunks (computed in parallel by the learner) add up to the whole-batch gradient.
#[test]
fn chunked_meta_gradient_equals_the_whole_batch_gradient() {
    let d = f64_device().autodiff();
    let cfg = small(
        InnerLoss::SelfSupervised,
        Target::Return,
        PhiGradient::VarianceReduced,
    );
    let f = fixture(&cfg, &d);
    let rn = [0.5f32, -0.5];
    let leaves = || f.p.map(|t| t.require_grad());
    let whole = meta_gradient(&leaves(), &f.pre, &f.post, &cfg, &rn).unwrap();
    let mut sum = vec![0.0; whole.grad.len()];
    let mut surrogate = 0.0;
    for (lo, hi) in [(0, 1), (1, 2)] {
        let part = meta_gradient_part(
            &leaves(),
            &f.pre.tasks(lo, hi),
            &f.post.tasks(lo, hi),
            &cfg,
            &rn[lo..hi],
            2,
        )
        .unwrap();
        sum.iter_mut().zip(&part.grad).for_each(|(a, b)| *a += b);
        surrogate += part.surrogate;
    }
    let e = rel_err(&sum, &whole.grad);
    println!("chunks vs whole batch: {e:.2e}");
    // Every term is per task (the baseline is fitted per task), so only the order of the
    // final sums differs (measured 4e-16).
    assert!(e < 1e-12, "{e}");
    assert!((surrogate - whole.surrogate).abs() < 1e-9);
}

/// One-step case: s = 1, μ_φ(a) = N(w + b, σ²), per-step exploration reward
/// r^μ(a) = c a². The exact gradient of E[Σ_k r^μ(a_k)] with respect to b is 2 c K m,
/// m = w + b. The estimator Σ_k ∇_b log μ(a_k) A^μ_k with A^μ = R^μ is unbiased; with the
/// linear baseline fitted on the same K samples its mean is (K − 1)/K of the exact value
/// (the fitted constant includes each sample's own reward).
#[test]
fn variance_reduced_estimator_on_a_closed_form_case() {
    use rand_distr::{Distribution, Normal};
    let d = f64_device().autodiff();
    let (k, w, b, sigma, c) = (10usize, 0.3f64, 0.4f64, 0.5f64, 0.7f64);
    let m = w + b;
    let exact = 2.0 * c * k as f64 * m;
    let mut rng = stream(11, "closed-form");
    let normal = Normal::new(m, sigma).unwrap();
    let batches = 4000;
    let (mut plain, mut based) = (Vec::new(), Vec::new());
    for _ in 0..batches {
        let a: Vec<f64> = (0..k).map(|_| normal.sample(&mut rng)).collect();
        let r_t: Vec<f32> = a.iter().map(|x| (c * x * x) as f32).collect();
        let t3 =
            |v: Vec<f64>, shape: [usize; 3]| Tensor::<3>::from_data(TensorData::new(v, shape), &d);
        let batch = TaskBatch {
            m: 1,
            k,
            t: 1,
            obs: t3(vec![1.0; k], [1, k, 1]),
            act: t3(a.clone(), [1, k, 1]),
            logp_old: t3(vec![0.0; k], [1, k, 1]),
            adv: t3(vec![0.0; k], [1, k, 1]),
            dice_r: t3(vec![0.0; k], [1, k, 1]),
            mask: t3(vec![1.0; k], [1, k, 1]),
            n: t3(vec![k as f64], [1, 1, 1]),
            task_returns: vec![0.0],
            env_steps: k,
            success_rate: None,
        };
        let e = ExploreBatch {
            target: t3(vec![0.0; k], [1, k, 1]),
            batch,
            obs_t: vec![1.0; k],
            mask_t: vec![1.0; k],
        };
        for (baseline, out) in [(false, &mut plain), (true, &mut based)] {
            let adv = explore_advantages(&r_t, &e, 1, 0.0, baseline).unwrap();
            let bias =
                Tensor::<3>::from_data(TensorData::new(vec![b], [1, 1, 1]), &d).require_grad();
            let mu = GaussianParams {
                mean: MlpParams {
                    w: vec![t3(vec![w], [1, 1, 1])],
                    b: vec![bias.clone()],
                    activation: Activation::Identity,
                },
                log_std: t3(vec![sigma.ln()], [1, 1, 1]),
            };
            let logq = mu
                .log_prob(e.batch.obs.clone(), e.batch.act.clone())
                .reshape([1, k, 1]);
            let a_t = t3(adv.iter().map(|x| *x as f64).collect(), [1, k, 1]);
            let j = per_task_sum(logq * a_t).sum();
            let g = j.backward();
            out.push(to_vec_f64(bias.grad(&g).unwrap())[0]);
        }
    }
    let stats = |v: &[f64]| {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, (var / n).sqrt())
    };
    let (mp, sp) = stats(&plain);
    let (mb, sb) = stats(&based);
    let shrunk = exact * (k as f64 - 1.0) / k as f64;
    println!("exact {exact:.4}; no baseline {mp:.4} ± {sp:.4}; baseline {mb:.4} ± {sb:.4} (expected {shrunk:.4})");
    assert!((mp - exact).abs() < 3.0 * sp);
    assert!((mb - shrunk).abs() < 3.0 * sb);
    // The baseline is what the estimator is for: lower variance (measured ratio of
    // standard errors 0.70 here).
    assert!(sb < sp);
}

mod maesn {
    use super::*;
    use metarl::algo::maesn::{
        adapt_latent, objective, run_episodes, LatentObjective, MaesnConfig, MaesnModel,
        MaesnParams, MaesnSamples,
    };

    fn parts(p: &MaesnParams) -> Vec<Tensor<3>> {
        let mut v: Vec<Tensor<3>> = p
            .policy
            .mean
            .w
            .iter()
            .zip(&p.policy.mean.b)
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect();
        v.extend([
            p.policy.log_std.clone(),
            p.mean.clone(),
            p.log_std.clone(),
            p.step_mean.clone(),
            p.step_log_std.clone(),
        ]);
        v
    }

    fn from_parts(t: &MaesnParams, v: Vec<Tensor<3>>) -> MaesnParams {
        let l = t.policy.mean.num_layers();
        let mut it = v.into_iter();
        let (mut w, mut b) = (vec![], vec![]);
        for _ in 0..l {
            w.push(it.next().unwrap());
            b.push(it.next().unwrap());
        }
        MaesnParams {
            policy: GaussianParams {
                mean: MlpParams {
                    w,
                    b,
                    activation: t.policy.mean.activation,
                },
                log_std: it.next().unwrap(),
            },
            mean: it.next().unwrap(),
            log_std: it.next().unwrap(),
            step_mean: it.next().unwrap(),
            step_log_std: it.next().unwrap(),
        }
    }

    /// Jittered MAESN parameters (f64) for 2 of 4 training tasks on a 12-step nav2d, and
    /// a meta-batch sampled with them.
    fn fixture(d: &Device, objective: LatentObjective) -> (MaesnConfig, MaesnParams, MaesnSamples) {
        use rand::Rng;
        let cfg = MaesnConfig {
            tasks: 2,
            // A power of two: Burn scales by 1/K as an f32 scalar even on the f64 device,
            // so K = 3 would put a 3e-8 relative error into the step.
            rollouts: 4,
            train_tasks: 4,
            latent_dim: 2,
            inner_lr: 0.5,
            latent_objective: objective,
            policy: GaussianPolicyConfig {
                hidden: vec![6],
                ..Default::default()
            },
            ..Default::default()
        };
        let envf: Arc<dyn Env> = Arc::new(env::nav2d::Nav2d::default().with_horizon(12));
        let s = envf.spec().clone();
        let model = MaesnModel::init(
            &cfg.policy,
            (s.obs_dim, s.act_dim),
            (cfg.train_tasks, cfg.latent_dim),
            cfg.inner_lr,
            &mut stream(6, "init"),
            d,
        );
        let idx = [1usize, 3];
        let mut r = stream(6, "jitter");
        let base = MaesnParams::of(&model, &idx).detach();
        let p0 = from_parts(
            &base,
            parts(&base)
                .into_iter()
                .map(|t| {
                    let n = t.shape().num_elements();
                    let noise: Vec<f64> = (0..n).map(|_| r.random_range(-0.3..0.3)).collect();
                    t.clone() + Tensor::<3>::from_data(TensorData::new(noise, t.shape()), d)
                })
                .collect(),
        );
        let tasks = metarl::pg::sample_task_batch(&envf, 2, &mut stream(6, "tasks"));
        let (samples, _, _) = run_episodes(
            &envf,
            &tasks,
            &p0,
            &cfg,
            &mut stream(6, "env"),
            &mut stream(6, "act"),
            &mut stream(6, "latent"),
            d,
        )
        .unwrap();
        (cfg, p0, samples)
    }

    /// The latent step's direction is the gradient of the inner objective J_i with respect
    /// to (μ_i, log σ_i), computed here by autodiff of J_i written out: per-episode sums
    /// averaged over the K episodes, or the mean over all real steps.
    #[test]
    fn latent_step_is_the_gradient_of_the_inner_objective() {
        use metarl::nn::functional::log_prob_at;
        let d = f64_device().autodiff();
        for objective in [LatentObjective::Episode, LatentObjective::Sample] {
            let (_, p0, s) = fixture(&d, objective);
            let (mean2, log_std2) = adapt_latent(&p0, &s.eps_pre, &s.pre, objective);
            let step = |after: Tensor<3>, before: &Tensor<3>, alpha: &Tensor<3>| {
                to_vec_f64((after - before.clone()) / alpha.clone())
            };
            let g_mean = step(mean2, &p0.mean, &p0.step_mean);
            let g_log_std = step(log_std2, &p0.log_std, &p0.step_log_std);

            let b = &s.pre;
            let (mu, ls) = (
                p0.mean.clone().require_grad(),
                p0.log_std.clone().require_grad(),
            );
            let z = mu.clone() + ls.clone().exp() * s.eps_pre.clone();
            let [m, k, dz] = z.dims();
            let z = z
                .unsqueeze_dim::<4>(2)
                .expand([m, k, b.t, dz])
                .reshape([m, k * b.t, dz]);
            let x = Tensor::cat(vec![b.obs.clone(), z], 2);
            let logp = log_prob_at(p0.policy.mu(x), p0.policy.log_std.clone(), b.act.clone())
                .reshape([b.m, b.k, b.t]);
            let weighted = logp * b.adv.clone() * b.mask.clone();
            let j = match objective {
                LatentObjective::Episode => weighted.div_scalar(k as f64),
                LatentObjective::Sample => weighted / b.n.clone(),
            }
            .sum();
            let g = j.backward();
            let e_mean = rel_err(&g_mean, &to_vec_f64(mu.grad(&g).unwrap()));
            let e_log_std = rel_err(&g_log_std, &to_vec_f64(ls.grad(&g).unwrap()));
            println!(
                "{objective:?}: latent step vs autodiff: μ {e_mean:.1e}, log σ {e_log_std:.1e}"
            );
            assert!(e_mean < 1e-9 && e_log_std < 1e-9, "{objective:?}");
        }
    }

    /// The outer objective through the latent step equals a finite difference with
    /// respect to θ, the latent means and log-stds and both step sizes.
    #[test]
    fn maesn_meta_gradient_matches_finite_differences() {
        let d = f64_device().autodiff();
        let (cfg, p0, samples) = fixture(&d, LatentObjective::Episode);
        let leaves = from_parts(
            &p0,
            parts(&p0).into_iter().map(|t| t.require_grad()).collect(),
        );
        let g = objective(&leaves, &samples, &cfg).backward();
        let grad: Vec<f64> = parts(&leaves)
            .into_iter()
            .flat_map(|t| to_vec_f64(t.grad(&g).unwrap()))
            .collect();
        let x0: Vec<f64> = parts(&p0).into_iter().flat_map(to_vec_f64).collect();
        let value = |x: &[f64]| {
            let mut off = 0;
            let v = parts(&p0)
                .into_iter()
                .map(|t| {
                    let n = t.shape().num_elements();
                    let c = x[off..off + n].to_vec();
                    off += n;
                    Tensor::<3>::from_data(TensorData::new(c, t.shape()), &d)
                })
                .collect();
            to_vec_f64(objective(&from_parts(&p0, v), &samples, &cfg))[0]
        };
        let h = 1e-6;
        let fd: Vec<f64> = (0..x0.len())
            .map(|i| {
                let (mut xp, mut xm) = (x0.clone(), x0.clone());
                xp[i] += h;
                xm[i] -= h;
                (value(&xp) - value(&xm)) / (2.0 * h)
            })
            .collect();
        // The last 12 entries: latent means and log-stds (2 tasks × 2 each), then α_μ, α_σ (2 each).
        let n = x0.len();
        let latent = n - 12;
        let e_policy = rel_err(&grad[..latent], &fd[..latent]);
        let e_latent = rel_err(&grad[latent..], &fd[latent..]);
        let steps = &fd[n - 4..];
        println!("MAESN: policy relative error {e_policy:.2e}, latent parameters {e_latent:.2e}, step-size gradient {steps:?}");
        assert!(e_policy < 1e-6 && e_latent < 1e-6);
        assert!(
            steps.iter().all(|x| x.abs() > 1e-8),
            "the step sizes get a meta-gradient"
        );
    }
}
