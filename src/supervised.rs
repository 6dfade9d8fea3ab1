//! Supervised meta-learning pieces shared by sine MAML and ES-MAML on sine regression:
//! task batches as tensors, inner SGD adaptation through the functional MLP, and the
//! evaluation curve of Finn et al.'s protocol.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::env::sine::{SineDistribution, SineTask};
use crate::nn::dense::{maml_task, Dense, TaskData, TaskLosses, Workspace};
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

/// The points of a batch of tasks on the host: inputs and targets of task i are
/// `[i·K, (i+1)·K)` of each vector (sine inputs and targets are scalars).
#[derive(Clone, Debug, PartialEq)]
pub struct SinePoints {
    /// Tasks M.
    pub tasks: usize,
    /// Points K per set.
    pub shots: usize,
    /// Support inputs, `[M·K]`.
    pub xs: Vec<f32>,
    /// Support targets.
    pub ys: Vec<f32>,
    /// Query inputs.
    pub xq: Vec<f32>,
    /// Query targets.
    pub yq: Vec<f32>,
}

impl SinePoints {
    /// Draws K support and K query points for each task (2K points, first K support).
    pub fn sample(dist: &SineDistribution, tasks: &[SineTask], k: usize, rng: &mut Rng) -> Self {
        let mut p = Self {
            tasks: tasks.len(),
            shots: k,
            xs: vec![],
            ys: vec![],
            xq: vec![],
            yq: vec![],
        };
        for t in tasks {
            let (x, y) = dist.sample_points(t, 2 * k, rng);
            p.xs.extend_from_slice(&x[..k]);
            p.ys.extend_from_slice(&y[..k]);
            p.xq.extend_from_slice(&x[k..]);
            p.yq.extend_from_slice(&y[k..]);
        }
        p
    }

    /// The same points as `[M, K, 1]` tensors on `device`.
    pub fn to_batch(&self, device: &Device) -> SineBatch {
        let (m, k) = (self.tasks, self.shots);
        let t = |v: &[f32]| Tensor::<3>::from_data(TensorData::new(v.to_vec(), [m, k, 1]), device);
        SineBatch {
            xs: t(&self.xs),
            ys: t(&self.ys),
            xq: t(&self.xq),
            yq: t(&self.yq),
        }
    }

    /// Task i's support and query sets.
    pub fn task(&self, i: usize) -> TaskData<'_, f32> {
        let r = i * self.shots..(i + 1) * self.shots;
        TaskData {
            xs: &self.xs[r.clone()],
            ys: &self.ys[r.clone()],
            xq: &self.xq[r.clone()],
            yq: &self.yq[r],
        }
    }
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
        SinePoints::sample(dist, tasks, k, rng).to_batch(device)
    }
}

/// Buffers of [`meta_gradient_host`] kept from one iteration to the next: a fresh
/// per-task gradient buffer (176 KB for sine MAML) every iteration made the allocator
/// return and re-fault a zeroed huge page each time, which cost more than the kernels.
#[derive(Clone, Debug, Default)]
pub struct HostScratch {
    /// Per-task gradients, `[M, P]`.
    per_task: Vec<f32>,
    /// Per-task losses.
    losses: Vec<TaskLosses>,
    /// One workspace per chunk of tasks.
    workspaces: Vec<Workspace<f32>>,
}

/// The MAML meta-objective (1/M) Σ_i L_query,i(θ'_i), the mean pre-adaptation support loss
/// and the meta-gradient of the first, computed on the host by the hand-written kernels of
/// [`crate::nn::dense`]: tasks in chunks, one per thread of the rayon pool (sequentially on
/// one thread), then summed in task order, so the result does not depend on the thread
/// count. The same quantity as the tensor route `sine_maml::meta_objective` +
/// `backward()`, up to f32 rounding.
pub fn meta_gradient_host(
    net: &Dense,
    theta: &[f32],
    points: &SinePoints,
    (alpha, steps, hessian): (f64, usize, Hessian),
    scratch: &mut HostScratch,
) -> (f64, f64, Vec<f32>) {
    use rayon::prelude::*;
    let (p, m) = (theta.len(), points.tasks);
    let cfg = (alpha, steps, hessian == Hessian::Full);
    let chunks = rayon::current_num_threads().clamp(1, m);
    let per_chunk = m.div_ceil(chunks);
    let HostScratch {
        per_task,
        losses,
        workspaces,
    } = scratch;
    per_task.resize(if chunks == 1 { p } else { m * p }, 0.0);
    losses.resize(
        m,
        TaskLosses {
            pre: 0.0,
            post: 0.0,
        },
    );
    workspaces.resize_with(chunks, Workspace::default);
    let mut grad = vec![0.0f32; p];
    let add = |grad: &mut [f32], g: &[f32]| grad.iter_mut().zip(g).for_each(|(a, x)| *a += *x);
    if chunks == 1 {
        // Each task's gradient is added while it is in cache: the same additions, in the
        // same order, as the parallel branch.
        let (ws, g) = (&mut workspaces[0], &mut per_task[..p]);
        ws.start_from(net, theta);
        for (i, l) in losses.iter_mut().enumerate() {
            *l = maml_task(net, points.task(i), cfg, ws, g);
            add(&mut grad, g);
        }
    } else {
        per_task
            .par_chunks_mut(per_chunk * p)
            .zip(losses.par_chunks_mut(per_chunk))
            .zip(workspaces.par_iter_mut())
            .enumerate()
            .for_each(|(c, ((g, l), ws))| {
                ws.start_from(net, theta);
                for (t, (g, l)) in g.chunks_exact_mut(p).zip(l).enumerate() {
                    *l = maml_task(net, points.task(c * per_chunk + t), cfg, ws, g);
                }
            });
        for g in per_task.chunks_exact(p) {
            add(&mut grad, g);
        }
    }
    let inv = (1.0 / m as f64) as f32;
    grad.iter_mut().for_each(|g| *g *= inv);
    let post = losses.iter().map(|l| l.post).sum::<f64>();
    let pre = losses.iter().map(|l| l.pre).sum::<f64>();
    (post / m as f64, pre / m as f64, grad)
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
