//! Sampled trajectories as per-task tensors ([`TaskBatch`]): baselines, GAE advantages,
//! normalization, and the task-major / time-major reorderings.

use super::*;

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
