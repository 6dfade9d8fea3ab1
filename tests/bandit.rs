//! Estimator statistics on a one-step Gaussian bandit with a closed-form MAML objective.
//!
//! Policy N(μ, σ²) (μ is the bias of a linear layer whose input is 0), reward
//! r(a) = −(a − g)², so J(μ) = −((μ − g)² + σ²), ∂²J/∂μ² = −2. The post-update objective
//! is linear, J_post(θ') = μ', so the exact formulation-I meta-gradient is
//! dμ'/dμ = 1 + α ∂²J/∂μ² = 1 − 2α, and an estimator's meta-gradient is 1 + α Ĥ with Ĥ
//! its Hessian estimate. With z = a − μ, d = μ − g:
//! - DiCE: E[Ĥ] = E[r (z²/σ⁴ − 1/σ²)] = −2 (unbiased);
//! - MAML: E[Ĥ] = E[−r/σ²] = 1 + d²/σ², missing the pre-update term E[r z²]/σ⁴ = −3 − d²/σ²;
//! - LVC equals DiCE when the horizon is 1.
//!
//! Each of M independent batches of N samples is one "task" with its own copy of θ, so
//! one backward pass yields M independent meta-gradient estimates.

use burn::prelude::*;
use metarl::device::f64_device;
use metarl::nn::functional::{GaussianParams, MlpParams};
use metarl::nn::{to_vec_f64, Activation};
use metarl::objective::Estimator;
use metarl::pg::{adapt, TaskBatch};
use metarl::rng::stream;
use rand_distr::{Distribution, Normal};

const M: usize = 4000;
const N: usize = 10;
const MU: f64 = 0.3;
const GOAL: f64 = 1.0;
const SIGMA: f64 = 0.5;
const ALPHA: f64 = 0.1;

fn batch(d: &Device) -> TaskBatch {
    let dist = Normal::new(MU, SIGMA).unwrap();
    let mut rng = stream(1, "bandit");
    let a: Vec<f64> = (0..M * N).map(|_| dist.sample(&mut rng)).collect();
    let r: Vec<f64> = a.iter().map(|x| -(x - GOAL).powi(2)).collect();
    let logp: Vec<f64> = a
        .iter()
        .map(|x| {
            -0.5 * ((x - MU) / SIGMA).powi(2) - SIGMA.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
        })
        .collect();
    let t3 = |v: Vec<f64>, shape: [usize; 3]| Tensor::<3>::from_data(TensorData::new(v, shape), d);
    TaskBatch {
        m: M,
        k: N,
        t: 1,
        obs: t3(vec![0.0; M * N], [M, N, 1]),
        act: t3(a, [M, N, 1]),
        logp_old: t3(logp, [M, N, 1]),
        adv: t3(r.clone(), [M, N, 1]),
        dice_r: t3(r, [M, N, 1]),
        mask: t3(vec![1.0; M * N], [M, N, 1]),
        n: t3(vec![N as f64; M], [M, 1, 1]),
        task_returns: vec![0.0; M],
        env_steps: M * N,
        success_rate: None,
    }
}

/// Per-batch meta-gradients dμ'_m/dμ_m for `est`.
fn meta_grads(est: Estimator, b: &TaskBatch, d: &Device) -> Vec<f64> {
    let leaf =
        |v: f64| Tensor::<3>::from_data(TensorData::new(vec![v; M], [M, 1, 1]), d).require_grad();
    let theta = GaussianParams {
        mean: MlpParams {
            w: vec![leaf(0.0)],
            b: vec![leaf(MU)],
            activation: Activation::Identity,
        },
        log_std: leaf(SIGMA.ln()),
    };
    let adapted = adapt(&theta, b, est, ALPHA, true);
    let g = adapted.mean.b[0].clone().sum().backward();
    to_vec_f64(theta.mean.b[0].grad(&g).unwrap())
}

fn mean_se(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let v = x.iter().map(|y| (y - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (v / n).sqrt())
}

#[test]
fn dice_is_unbiased_maml_misses_the_pre_update_term_and_lvc_equals_dice_at_horizon_one() {
    let d = f64_device().autodiff();
    let b = batch(&d);
    let exact = 1.0 - 2.0 * ALPHA;
    let dd = MU - GOAL;
    let predicted_maml = 1.0 + ALPHA * (1.0 + dd * dd / (SIGMA * SIGMA));

    let dice = meta_grads(Estimator::Dice, &b, &d);
    let (m_dice, se_dice) = mean_se(&dice);
    println!("DiCE mean {m_dice:.4} ± {se_dice:.4} (exact {exact})");
    assert!(
        (m_dice - exact).abs() < 3.0 * se_dice,
        "DiCE {m_dice} vs exact {exact} (SE {se_dice})"
    );

    let maml = meta_grads(Estimator::Maml, &b, &d);
    let (m_maml, se_maml) = mean_se(&maml);
    println!("MAML mean {m_maml:.4} ± {se_maml:.4} (predicted {predicted_maml}, exact {exact})");
    assert!(
        (m_maml - predicted_maml).abs() < 3.0 * se_maml,
        "MAML {m_maml} vs predicted {predicted_maml}"
    );
    assert!(
        (m_maml - exact).abs() > 20.0 * se_maml,
        "MAML's bias is real, not noise"
    );

    let lvc = meta_grads(Estimator::Lvc, &b, &d);
    for (x, y) in lvc.iter().zip(&dice) {
        assert!((x - y).abs() < 1e-12, "LVC {x} vs DiCE {y}");
    }
}
