//! What the policy-gradient meta-learners (PG-MAML, ProMP) share: sampling a meta-batch,
//! turning trajectories into per-task tensors with advantages, the differentiable inner
//! adaptation step, and per-task policies for post-update sampling.

mod evaluate;

pub use evaluate::{before_after_evaluation, evaluate, policy_checkpoint, restore_policy};

use std::sync::Arc;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::env::{Env, Task, TaskDistribution, VecEnv};
use crate::error::{Error, Result};
use crate::estimate::{discounted_returns, fit_per_task, gae, normalize_per_task};
use crate::nn::functional::{log_prob_at, GaussianParams};
use crate::nn::{to_vec, GaussianPolicyConfig};
use crate::objective::{inner_weights, Estimator};
use crate::rng::Rng;
use crate::rollout::{sample, Actor};
use crate::traj::Trajectories;

/// Sampling, inner-step and advantage settings shared by PG-MAML and ProMP; defaults are
/// ProMP's (mission-anchors §3.1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetaPgConfig {
    /// Tasks per meta-batch (ProMP: 40).
    pub tasks: usize,
    /// Rollouts per task and per inner step (ProMP: 20).
    pub rollouts: usize,
    /// Inner step size α (ProMP: 0.1).
    pub inner_lr: f64,
    /// Inner adaptation steps, each with fresh samples (ProMP: 1).
    pub inner_steps: usize,
    /// Inner-objective estimator.
    pub estimator: Estimator,
    /// Differentiate through the inner step (`true`) or first-order (`false`).
    pub second_order: bool,
    /// Discount γ (0.99).
    pub gamma: f64,
    /// GAE λ (1.0).
    pub gae_lambda: f64,
    /// Normalize advantages per task (true).
    pub normalize_adv: bool,
    /// The Gaussian MLP policy.
    pub policy: GaussianPolicyConfig,
}

impl Default for MetaPgConfig {
    fn default() -> Self {
        Self {
            tasks: 40,
            rollouts: 20,
            inner_lr: 0.1,
            inner_steps: 1,
            estimator: Estimator::Lvc,
            second_order: true,
            gamma: 0.99,
            gae_lambda: 1.0,
            normalize_adv: true,
            policy: GaussianPolicyConfig::default(),
        }
    }
}

impl MetaPgConfig {
    /// The settings [`process`] reads (γ, GAE λ = 1, per-task normalization), for learners
    /// that share PG batch processing but not PG-MAML's inner step.
    pub fn for_advantages(gamma: f64, normalize_adv: bool) -> Self {
        Self {
            gamma,
            gae_lambda: 1.0,
            normalize_adv,
            ..Self::default()
        }
    }

    /// Validates every field; errors name it.
    pub fn validate(&self) -> Result<()> {
        for (f, v) in [
            ("tasks", self.tasks),
            ("rollouts", self.rollouts),
            ("inner_steps", self.inner_steps),
        ] {
            if v == 0 {
                return Err(Error::invalid(f, v, "≥ 1"));
            }
        }
        if self.rollouts < 2 && self.normalize_adv {
            return Err(Error::invalid(
                "rollouts",
                self.rollouts,
                "≥ 2 when normalize_adv is on",
            ));
        }
        if !(self.inner_lr.is_finite() && self.inner_lr >= 0.0) {
            return Err(Error::invalid(
                "inner_lr",
                self.inner_lr,
                "a finite number ≥ 0",
            ));
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return Err(Error::invalid("gamma", self.gamma, "[0, 1]"));
        }
        if !(0.0..=1.0).contains(&self.gae_lambda) {
            return Err(Error::invalid("gae_lambda", self.gae_lambda, "[0, 1]"));
        }
        self.policy.validate("policy.")
    }
}

/// One meta-batch of samples as per-task tensors: M tasks × K trajectories × T steps,
/// flattened to `[M, K·T, ·]` for the network and `[M, K, T]` for per-step quantities.
#[derive(Clone, Debug)]
pub struct TaskBatch {
    /// Tasks M.
    pub m: usize,
    /// Trajectories per task K.
    pub k: usize,
    /// Steps T.
    pub t: usize,
    /// Observations `[M, K·T, obs_dim]`.
    pub obs: Tensor<3>,
    /// Actions `[M, K·T, act_dim]`.
    pub act: Tensor<3>,
    /// Log-probabilities under the sampling policy `[M, K, T]`.
    pub logp_old: Tensor<3>,
    /// Advantages (normalized per task when configured) `[M, K, T]`.
    pub adv: Tensor<3>,
    /// DiCE's baseline-adjusted rewards r̃_t = γ^t (r_t + γ b_{t+1} − b_t)/s `[M, K, T]`.
    pub dice_r: Tensor<3>,
    /// 1 on real steps `[M, K, T]`.
    pub mask: Tensor<3>,
    /// Real samples per task `[M, 1, 1]`.
    pub n: Tensor<3>,
    /// Mean undiscounted return of each task `[M]`.
    pub task_returns: Vec<f64>,
    /// Environment steps in the batch.
    pub env_steps: usize,
    /// Fraction of successful episodes, for families that define success.
    pub success_rate: Option<f64>,
}

/// Reorders a time-major `[T, N, d]` array (N = M·K) into `[M, K, T, d]`.
pub fn task_major(x: &[f32], t: usize, n: usize, d: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in 0..n {
        for s in 0..t {
            out.extend_from_slice(&x[(s * n + row) * d..(s * n + row + 1) * d]);
        }
    }
    out
}

/// The inverse of [`task_major`]: `[M, K, T, d]` (rows in order, each row's steps
/// contiguous) back to time-major `[T, N, d]`.
pub fn time_major(x: &[f32], t: usize, n: usize, d: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for row in 0..n {
        for s in 0..t {
            let src = (row * t + s) * d;
            out[(s * n + row) * d..(s * n + row + 1) * d].copy_from_slice(&x[src..src + d]);
        }
    }
    out
}

/// Baseline values per task, advantages (GAE) and DiCE-adjusted rewards, all time-major.
fn advantages(tr: &Trajectories, cfg: &MetaPgConfig) -> Result<(Vec<f32>, Vec<f32>)> {
    let (t, n, k) = (tr.steps, tr.rows, tr.rows_per_task);
    let (g, l) = (cfg.gamma as f32, cfg.gae_lambda as f32);
    let ret = discounted_returns(&tr.reward, &tr.mask, n, g);
    let v = fit_per_task(&tr.obs, &ret, &tr.mask, n, tr.obs_dim, k)?;
    let raw = gae(&tr.reward, &v, &tr.mask, n, g, l);
    let adv = if cfg.normalize_adv {
        normalize_per_task(&raw, &tr.mask, n, k)
    } else {
        raw.clone()
    };
    // r̃_t = γ^t (r_t + γ v_{t+1} − v_t) / s_task, s_task = std of the raw advantages.
    let scale: Vec<f32> = (0..n / k)
        .map(|m| {
            let vals: Vec<f32> = (0..t)
                .flat_map(|s| (m * k..(m + 1) * k).map(move |i| (s, i)))
                .filter(|&(s, i)| tr.mask[s * n + i] > 0.0)
                .map(|(s, i)| raw[s * n + i])
                .collect();
            let mean = vals.iter().sum::<f32>() / vals.len().max(1) as f32;
            let var =
                vals.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / vals.len().max(1) as f32;
            if cfg.normalize_adv {
                var.sqrt() + 1e-8
            } else {
                1.0
            }
        })
        .collect();
    let mut dice = vec![0.0; t * n];
    for s in 0..t {
        for i in 0..n {
            let next = if s + 1 < t {
                v[(s + 1) * n + i] * tr.mask[(s + 1) * n + i]
            } else {
                0.0
            };
            let td = tr.reward[s * n + i] + g * next - v[s * n + i];
            dice[s * n + i] = g.powi(s as i32) * td * tr.mask[s * n + i] / scale[i / k];
        }
    }
    Ok((adv, dice))
}

/// Processes sampled trajectories into a [`TaskBatch`] on `device`: linear feature
/// baseline fitted per task, GAE(λ) advantages, per-task normalization.
pub fn process(tr: &Trajectories, cfg: &MetaPgConfig, device: &Device) -> Result<TaskBatch> {
    let (t, n, k) = (tr.steps, tr.rows, tr.rows_per_task);
    let m = n / k;
    let (adv, dice) = advantages(tr, cfg)?;
    let t3 =
        |v: Vec<f32>, d: usize| Tensor::<3>::from_data(TensorData::new(v, [m, k * t, d]), device);
    let s3 = |v: &[f32]| {
        Tensor::<3>::from_data(TensorData::new(task_major(v, t, n, 1), [m, k, t]), device)
    };
    let counts: Vec<f32> = (0..m)
        .map(|j| {
            (0..t)
                .flat_map(|s| (j * k..(j + 1) * k).map(move |i| s * n + i))
                .map(|i| tr.mask[i])
                .sum()
        })
        .collect();
    Ok(TaskBatch {
        m,
        k,
        t,
        obs: t3(task_major(&tr.obs, t, n, tr.obs_dim), tr.obs_dim),
        act: t3(task_major(&tr.act, t, n, tr.act_dim), tr.act_dim),
        logp_old: s3(&tr.logp),
        adv: s3(&adv),
        dice_r: s3(&dice),
        mask: s3(&tr.mask),
        n: Tensor::from_data(TensorData::new(counts, [m, 1, 1]), device),
        task_returns: tr.task_returns(),
        env_steps: tr.env_steps(),
        success_rate: tr.success_rate(),
    })
}

impl TaskBatch {
    /// log π_θ of the batch's actions, `[M, K, T]`.
    pub fn log_prob(&self, theta: &GaussianParams) -> Tensor<3> {
        theta
            .log_prob(self.obs.clone(), self.act.clone())
            .reshape([self.m, self.k, self.t])
    }

    /// The batch on another device (e.g. a copy of autodiff-device data for evaluation).
    pub fn mean_return(&self) -> f64 {
        self.task_returns.iter().sum::<f64>() / self.m.max(1) as f64
    }
}

/// One inner step θ' = θ + α Σ_t w_t ∇ log π_θ(a_t|s_t) on each task's samples, with the
/// estimator's weights ([`inner_weights`]). With `second_order` the result stays in the
/// autodiff graph of θ (exact meta-gradients); otherwise the step is a constant.
pub fn adapt(
    theta: &GaussianParams,
    b: &TaskBatch,
    est: Estimator,
    alpha: f64,
    second_order: bool,
) -> GaussianParams {
    adapt_with_mean(theta, b, est, alpha, second_order).0
}

/// [`adapt`], also returning the policy means at θ on the batch, `[M, K·T, A]` (one
/// forward pass serves the inner gradient and, e.g., ProMP's KL penalty).
pub fn adapt_with_mean(
    theta: &GaussianParams,
    b: &TaskBatch,
    est: Estimator,
    alpha: f64,
    second_order: bool,
) -> (GaussianParams, Tensor<3>) {
    let (mu, cache) = theta.forward(b.obs.clone());
    let logp =
        log_prob_at(mu.clone(), theta.log_std.clone(), b.act.clone()).reshape([b.m, b.k, b.t]);
    let w = inner_weights(
        est,
        logp,
        b.logp_old.clone(),
        b.adv.clone(),
        b.dice_r.clone(),
        b.mask.clone(),
        b.n.clone(),
    );
    let g = theta.grad_weighted_log_prob(
        mu.clone(),
        &cache,
        b.act.clone(),
        w.reshape([b.m, b.k * b.t]),
    );
    let g = if second_order { g } else { g.detach() };
    (theta.add_scaled(&g, alpha), mu)
}

/// Per-task Gaussian policies (task m's parameters act on rows m·K..(m+1)·K) for
/// post-update sampling; parameters are read without tracking. An optional per-row
/// context (a latent code) is appended to every observation, for policies conditioned on
/// a latent (meta-exploration, MAESN).
pub struct TaskPolicies {
    params: GaussianParams,
    rows_per_task: usize,
    log_std: Vec<f32>,
    /// Per-row context `[N, dim]` on the parameters' device, appended to observations.
    context: Option<Tensor<2>>,
    /// Whether actions are drawn (`true`) or the mean is taken.
    noise: bool,
}

impl TaskPolicies {
    /// Wraps per-task (or shared) parameters.
    pub fn new(params: &GaussianParams, rows_per_task: usize) -> Self {
        let params = params.detach();
        let log_std = to_vec(params.log_std.clone());
        Self {
            params,
            rows_per_task,
            log_std,
            context: None,
            noise: true,
        }
    }

    /// Acts with the mean action μ(s) instead of a draw (σ → 0), for scoring the policy's
    /// deterministic behaviour. The action generator is not read, and the log-probabilities
    /// returned are 0: such batches are for returns and success, not for gradients.
    pub fn mean_actions(mut self) -> Self {
        self.noise = false;
        self
    }

    /// Appends `context[row]` (`[N, dim]`, row-major) to row `row`'s observation before
    /// the policy sees it (uploaded once; each step concatenates on the device).
    pub fn with_context(mut self, context: Vec<f32>, dim: usize) -> Self {
        let device = self.params.log_std.device();
        let rows = context.len() / dim.max(1);
        self.context = Some(crate::nn::tensor2(context, rows, dim, &device));
        self
    }
}

impl Actor for TaskPolicies {
    fn act(&self, obs: Tensor<2>, rng: &mut Rng) -> (Vec<f32>, Vec<f32>) {
        use rand_distr::{Distribution, StandardNormal};
        let [n, od] = obs.dims();
        let k = self.rows_per_task;
        let (obs, od) = match &self.context {
            None => (obs, od),
            Some(c) => {
                let [rows, dim] = c.dims();
                assert_eq!(rows, n, "one context row per observation row");
                (Tensor::cat(vec![obs, c.clone()], 1), od + dim)
            }
        };
        let mu = to_vec(self.params.mu(obs.reshape([n / k, k, od])));
        if !self.noise {
            return (mu, vec![0.0; n]);
        }
        let ad = mu.len() / n;
        let shared = self.log_std.len() == ad;
        let norm = 0.5 * (2.0 * std::f32::consts::PI).ln();
        let (mut act, mut logp) = (Vec::with_capacity(mu.len()), Vec::with_capacity(n));
        for (row, m) in mu.chunks(ad).enumerate() {
            let ls = if shared {
                &self.log_std[..]
            } else {
                &self.log_std[(row / k) * ad..(row / k + 1) * ad]
            };
            let mut lp = 0.0;
            for j in 0..ad {
                let eps: f32 = StandardNormal.sample(rng);
                act.push(m[j] + ls[j].exp() * eps);
                lp += -0.5 * eps * eps - ls[j] - norm;
            }
            logp.push(lp);
        }
        (act, logp)
    }
}

/// Samples `rollouts` episodes of each task with per-task parameters `params`.
pub fn sample_tasks(
    env: &Arc<dyn Env>,
    tasks: &[Task],
    params: &GaussianParams,
    rollouts: usize,
    env_rng: &mut Rng,
    act_rng: &mut Rng,
    device: &Device,
) -> Trajectories {
    sample_tasks_with_context(env, tasks, params, None, rollouts, env_rng, act_rng, device)
}

/// [`sample_tasks`] with an optional per-row context `(values [N, dim], dim)` appended to
/// the observations (latent-conditioned policies, see [`TaskPolicies::with_context`]).
#[allow(clippy::too_many_arguments)]
pub fn sample_tasks_with_context(
    env: &Arc<dyn Env>,
    tasks: &[Task],
    params: &GaussianParams,
    context: Option<(Vec<f32>, usize)>,
    rollouts: usize,
    env_rng: &mut Rng,
    act_rng: &mut Rng,
    device: &Device,
) -> Trajectories {
    let mut venv = VecEnv::for_tasks(env.clone(), tasks, rollouts, env_rng);
    let mut actor = TaskPolicies::new(params, rollouts);
    if let Some((c, d)) = context {
        actor = actor.with_context(c, d);
    }
    sample(&actor, &mut venv, rollouts, act_rng, device)
}

/// Samples `n` tasks of `env`.
pub fn sample_task_batch(env: &Arc<dyn Env>, n: usize, rng: &mut Rng) -> Vec<Task> {
    TaskDistribution::new(env.clone()).sample(n, rng)
}

/// The samples of one meta-iteration: one pre-update batch per inner step (batch s was
/// drawn with θ'_s, θ'_0 = θ) and the post-update batch drawn with the final θ'.
#[derive(Clone, Debug)]
pub struct MetaSamples {
    /// Pre-update batches, one per inner step.
    pub pre: Vec<TaskBatch>,
    /// Post-update batch.
    pub post: TaskBatch,
    /// Seconds spent sampling and processing trajectories.
    pub sample_seconds: f64,
    /// Seconds spent in inner adaptation steps.
    pub inner_seconds: f64,
}

impl MetaSamples {
    /// Mean return before adaptation, then after each inner step.
    pub fn returns(&self) -> (f64, Vec<f64>) {
        let after: Vec<f64> = self.pre[1..]
            .iter()
            .chain(std::iter::once(&self.post))
            .map(|b| b.mean_return())
            .collect();
        (self.pre[0].mean_return(), after)
    }

    /// The iteration's sampling metrics: `pre_return`, `post_return_<k>` for every inner
    /// step, `env_steps`, `sample_seconds` and `inner_seconds`.
    pub fn metrics(&self) -> crate::learner::Metrics {
        let (pre, post) = self.returns();
        let mut m = crate::learner::Metrics::new().with("pre_return", pre);
        for (k, r) in post.iter().enumerate() {
            m.push(format!("post_return_{}", k + 1), *r);
        }
        m.push("env_steps", self.env_steps() as f64);
        m.push("sample_seconds", self.sample_seconds);
        m.push("inner_seconds", self.inner_seconds);
        m
    }

    /// Environment steps taken.
    pub fn env_steps(&self) -> usize {
        self.pre.iter().map(|b| b.env_steps).sum::<usize>() + self.post.env_steps
    }
}

/// Random streams of PG sampling.
pub struct SamplerRngs {
    /// Row seeds of the environments.
    pub env: Rng,
    /// Action noise.
    pub act: Rng,
}

/// Samples a meta-batch: for each inner step, rollouts with the current (per-task)
/// parameters, then an adaptation step; finally post-update rollouts. Returns the samples
/// and θ' (tracked through every step when `second_order`).
pub fn sample_meta_batch(
    env: &Arc<dyn Env>,
    tasks: &[Task],
    theta: &GaussianParams,
    cfg: &MetaPgConfig,
    rngs: &mut SamplerRngs,
    device: &Device,
) -> Result<(MetaSamples, GaussianParams)> {
    let (mut sample_seconds, mut inner_seconds) = (0.0, 0.0);
    let mut p = theta.clone();
    let mut pre = Vec::with_capacity(cfg.inner_steps);
    let (er, ar) = (&mut rngs.env, &mut rngs.act);
    for _ in 0..cfg.inner_steps {
        let t0 = std::time::Instant::now();
        let tr = sample_tasks(env, tasks, &p, cfg.rollouts, er, ar, device);
        let b = process(&tr, cfg, device)?;
        let t1 = std::time::Instant::now();
        p = adapt(&p, &b, cfg.estimator, cfg.inner_lr, cfg.second_order);
        sample_seconds += (t1 - t0).as_secs_f64();
        inner_seconds += t1.elapsed().as_secs_f64();
        pre.push(b);
    }
    let t0 = std::time::Instant::now();
    let tr = sample_tasks(env, tasks, &p, cfg.rollouts, er, ar, device);
    let post = process(&tr, cfg, device)?;
    sample_seconds += t0.elapsed().as_secs_f64();
    let samples = MetaSamples {
        pre,
        post,
        sample_seconds,
        inner_seconds,
    };
    Ok((samples, p))
}

/// θ' recomputed from θ on stored pre-update batches (ProMP's outer steps, TRPO's line
/// search): the same chain of inner steps, now as a function of the current θ. Also
/// returns the means of π_θ on the first batch.
pub fn readapt(
    theta: &GaussianParams,
    pre: &[TaskBatch],
    cfg: &MetaPgConfig,
) -> (GaussianParams, Tensor<3>) {
    let (mut p, mu0) = adapt_with_mean(
        theta,
        &pre[0],
        cfg.estimator,
        cfg.inner_lr,
        cfg.second_order,
    );
    for b in &pre[1..] {
        p = adapt(&p, b, cfg.estimator, cfg.inner_lr, cfg.second_order);
    }
    (p, mu0)
}

impl TaskBatch {
    /// Tasks `lo..hi` of the batch (environment-step and success counts are not split).
    pub fn tasks(&self, lo: usize, hi: usize) -> TaskBatch {
        let cut = |t: &Tensor<3>| t.clone().narrow(0, lo, hi - lo);
        TaskBatch {
            m: hi - lo,
            k: self.k,
            t: self.t,
            obs: cut(&self.obs),
            act: cut(&self.act),
            logp_old: cut(&self.logp_old),
            adv: cut(&self.adv),
            dice_r: cut(&self.dice_r),
            mask: cut(&self.mask),
            n: cut(&self.n),
            task_returns: self.task_returns[lo..hi].to_vec(),
            env_steps: 0,
            success_rate: None,
        }
    }
}

impl MetaSamples {
    /// Tasks `lo..hi` of every batch.
    pub fn tasks(&self, lo: usize, hi: usize) -> MetaSamples {
        MetaSamples {
            pre: self.pre.iter().map(|b| b.tasks(lo, hi)).collect(),
            post: self.post.tasks(lo, hi),
            sample_seconds: 0.0,
            inner_seconds: 0.0,
        }
    }
}

/// A fixed split of `m` tasks into at most `chunks` contiguous ranges.
pub fn task_chunks(m: usize, chunks: usize) -> Vec<(usize, usize)> {
    let c = chunks.clamp(1, m.max(1));
    (0..c)
        .map(|i| (i * m / c, (i + 1) * m / c))
        .filter(|(a, b)| b > a)
        .collect()
}

/// ∇_θ Σ_chunks loss(θ, chunk), with the chunks' graphs built and differentiated in
/// parallel (rayon). Each chunk gets its own leaves holding θ's values, so no autodiff node
/// is shared between threads; gradients (flat, [`crate::params::flatten`] order) and the
/// auxiliary values are summed in chunk order, so the result does not depend on the thread
/// count. `loss` returns the chunk's loss and auxiliary scalars to sum.
pub fn chunked_gradient<F>(
    policy: &crate::nn::GaussianPolicy,
    chunks: &[(usize, usize)],
    loss: F,
) -> (Vec<f32>, Vec<f64>)
where
    F: Fn(&GaussianParams, (usize, usize)) -> (Tensor<1>, Vec<f64>) + Sync,
{
    use rayon::prelude::*;
    let parts: Vec<(Vec<f32>, Vec<f64>)> = chunks
        .par_iter()
        .map(|&range| {
            let leaf2 = |t: Tensor<2>| t.detach().require_grad();
            let (ws, bs): (Vec<Tensor<2>>, Vec<Tensor<2>>) = policy
                .mean
                .layers
                .iter()
                .map(|l| {
                    let b = l
                        .bias
                        .as_ref()
                        .expect("metarl MLP layers should have biases")
                        .val();
                    (leaf2(l.weight.val()), leaf2(b.unsqueeze::<2>()))
                })
                .unzip();
            let ls = leaf2(policy.log_std.val().unsqueeze::<2>());
            let theta = GaussianParams {
                mean: crate::nn::functional::MlpParams {
                    w: ws.iter().map(|w| w.clone().unsqueeze::<3>()).collect(),
                    b: bs.iter().map(|b| b.clone().unsqueeze::<3>()).collect(),
                    activation: policy.mean.activation,
                },
                log_std: ls.clone().unsqueeze::<3>(),
            };
            let (l, aux) = loss(&theta, range);
            let g = l.backward();
            let mut flat = Vec::new();
            for (w, b) in ws.iter().zip(&bs) {
                flat.extend(to_vec(w.grad(&g).expect("every weight is used")));
                flat.extend(to_vec(b.grad(&g).expect("every bias is used")));
            }
            flat.extend(to_vec(ls.grad(&g).expect("the log-std is used")));
            (flat, aux)
        })
        .collect();
    let mut grad = vec![0.0f32; parts[0].0.len()];
    let mut aux = vec![0.0f64; parts[0].1.len()];
    for (g, a) in &parts {
        grad.iter_mut().zip(g).for_each(|(x, y)| *x += y);
        aux.iter_mut().zip(a).for_each(|(x, y)| *x += y);
    }
    (grad, aux)
}
