//! Supervised meta-learning pieces shared by sine MAML and ES-MAML on sine regression:
//! task batches as tensors, inner SGD adaptation through the functional MLP, and the
//! evaluation curve of Finn et al.'s protocol.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::env::sine::{SineDistribution, SineTask};
use crate::nn::functional::{backward, forward, mse_and_grad, predict, MlpParams};
use crate::nn::to_vec;
use crate::rng::Rng;

/// Whether the outer gradient differentiates through the inner gradient steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Hessian {
    /// Exact second-order MAML.
    Full,
    /// First-order MAML (inner gradients treated as constants).
    None,
}

/// A batch of tasks as `[M, K, 1]` tensors: support inputs/targets and query inputs/targets.
#[derive(Clone, Debug)]
pub struct SineBatch {
    /// Support inputs.
    pub xs: Tensor<3>,
    /// Support targets.
    pub ys: Tensor<3>,
    /// Query inputs.
    pub xq: Tensor<3>,
    /// Query targets.
    pub yq: Tensor<3>,
}

impl SineBatch {
    /// Draws K support and K query points for each task (2K points, first K support).
    pub fn sample(
        dist: &SineDistribution,
        tasks: &[SineTask],
        k: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let m = tasks.len();
        let (mut xs, mut ys, mut xq, mut yq) = (vec![], vec![], vec![], vec![]);
        for t in tasks {
            let (x, y) = dist.sample_points(t, 2 * k, rng);
            xs.extend_from_slice(&x[..k]);
            ys.extend_from_slice(&y[..k]);
            xq.extend_from_slice(&x[k..]);
            yq.extend_from_slice(&y[k..]);
        }
        let t = |v: Vec<f32>| Tensor::<3>::from_data(TensorData::new(v, [m, k, 1]), device);
        Self {
            xs: t(xs),
            ys: t(ys),
            xq: t(xq),
            yq: t(yq),
        }
    }
}

/// Runs `steps` inner SGD steps from θ on the support set and returns θ'_i (per task) and
/// the per-task support loss before the first step, `[M]`.
pub fn adapt(
    theta: &MlpParams,
    b: &SineBatch,
    alpha: f64,
    steps: usize,
    hessian: Hessian,
) -> (MlpParams, Tensor<1>) {
    let mut p = theta.clone();
    let mut pre = None;
    for _ in 0..steps {
        let (y, cache) = forward(&p, b.xs.clone());
        let (loss, dy) = mse_and_grad(y, b.ys.clone());
        pre.get_or_insert(loss);
        let g = backward(&p, &cache, dy);
        let g = if hessian == Hessian::Full {
            g
        } else {
            g.detach()
        };
        p = p.sub_scaled(&g, alpha);
    }
    let pre = pre.unwrap_or_else(|| mse_and_grad(predict(theta, b.xs.clone()), b.ys.clone()).0);
    (p, pre)
}

/// Query MSE of every task after 0, 1, …, `steps` inner SGD steps, `[steps + 1][M]`
/// (evaluation: plain gradient steps on a non-autodiff device).
pub fn mse_curve(theta: &MlpParams, b: &SineBatch, alpha: f64, steps: usize) -> Vec<Vec<f32>> {
    let mut p = theta.clone();
    let mut out = Vec::with_capacity(steps + 1);
    for s in 0..=steps {
        out.push(to_vec(
            mse_and_grad(predict(&p, b.xq.clone()), b.yq.clone()).0,
        ));
        if s < steps {
            let (y, cache) = forward(&p, b.xs.clone());
            let (_, dy) = mse_and_grad(y, b.ys.clone());
            p = p.sub_scaled(&backward(&p, &cache, dy), alpha);
        }
    }
    out
}

/// Mean and 95% confidence half-width (1.96·std/√n, Finn's `test()`) of each row.
pub fn mean_ci95(rows: &[Vec<f32>]) -> (Vec<f64>, Vec<f64>) {
    rows.iter()
        .map(|r| {
            let n = r.len() as f64;
            let mean = r.iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = r.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
            (mean, 1.96 * var.sqrt() / n.sqrt())
        })
        .unzip()
}

/// Finn et al.'s sine evaluation protocol: query MSE after 0…`steps` gradient steps of
/// size `alpha` on `shots` support points, on the first `n` held-out tasks with fixed
/// points (a stream independent of the run's seed), with 95% confidence half-widths.
/// `model` holds plain (non-autodiff) parameters.
pub fn sine_evaluation(
    model: &crate::nn::Mlp,
    n: usize,
    shots: usize,
    alpha: f64,
    steps: usize,
) -> crate::learner::Evaluation {
    let device = model.layers[0].weight.val().device();
    let dist = SineDistribution::default();
    let tasks = dist.held_out(n);
    let mut rng = crate::rng::stream(crate::env::HELD_OUT_SEED, "sine-held-out-points");
    let batch = SineBatch::sample(&dist, &tasks, shots, &mut rng, &device);
    let (mse, ci95) = mean_ci95(&mse_curve(
        &MlpParams::from_mlp(model),
        &batch,
        alpha,
        steps,
    ));
    crate::learner::Evaluation {
        tasks: n,
        scores: crate::learner::Scores::Mse { mse, ci95 },
        trajectories_csv: None,
    }
}
