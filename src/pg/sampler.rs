//! Sampling a meta-batch: per-task policies in one batched env, the pre- and post-update
//! batches of every inner step ([`MetaSamples`]), and the streams they draw from.

use super::*;

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
    /// The inner step on host memory, when the sampler took it there
    /// ([`super::host::adapt_on_host`]).
    pub host: Option<Arc<super::host::HostInner>>,
}

impl MetaSamples {
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

impl SamplerRngs {
    /// `ck` with both streams added, as `env` and `action`.
    pub fn save(&self, ck: crate::learner::Checkpoint) -> crate::learner::Checkpoint {
        ck.with_rng("env", &self.env).with_rng("action", &self.act)
    }

    /// The streams [`Self::save`] wrote.
    pub fn restore(ck: &crate::learner::Checkpoint) -> Result<Self> {
        Ok(Self {
            env: ck.rng("env")?,
            act: ck.rng("action")?,
        })
    }
}

/// Samples a meta-batch: for each inner step, rollouts with the current (per-task)
/// parameters, then an adaptation step; finally post-update rollouts. Returns the samples
/// and θ' (tracked through every step when `second_order`). Marks the phases `sample`
/// (sampling and processing trajectories) and `inner` (adaptation steps) on `phases`.
pub fn sample_meta_batch(
    env: &Arc<dyn Env>,
    tasks: &[Task],
    theta: &GaussianParams,
    cfg: &MetaPgConfig,
    rngs: &mut SamplerRngs,
    device: &Device,
    phases: &mut Phases,
) -> Result<(MetaSamples, GaussianParams)> {
    let mut p = theta.clone();
    let mut pre = Vec::with_capacity(cfg.inner_steps);
    let mut host = None;
    let (er, ar) = (&mut rngs.env, &mut rngs.act);
    for _ in 0..cfg.inner_steps {
        phases.enter("sample");
        let tr = sample_tasks(env, tasks, &p, cfg.rollouts, er, ar, device);
        let b = process(&tr, cfg, device)?;
        phases.enter("inner");
        let [_, _, act_dim] = b.act.dims();
        if cfg.inner_steps == 1 && super::host_path_applies(cfg, act_dim, device) {
            // The learners' outer step computes its meta-gradient on host memory too and
            // reuses this step at the sampling θ.
            let (adapted, inner) = super::host::adapt_on_host(&p, &b, cfg);
            p = adapted;
            host = Some(Arc::new(inner));
        } else {
            p = adapt(&p, &b, cfg.estimator, cfg.inner_lr, cfg.second_order);
        }
        pre.push(b);
    }
    phases.enter("sample");
    let tr = sample_tasks(env, tasks, &p, cfg.rollouts, er, ar, device);
    let post = process(&tr, cfg, device)?;
    Ok((MetaSamples { pre, post, host }, p))
}

impl MetaSamples {
    /// Tasks `lo..hi` of every batch.
    pub fn tasks(&self, lo: usize, hi: usize) -> MetaSamples {
        MetaSamples {
            pre: self.pre.iter().map(|b| b.tasks(lo, hi)).collect(),
            post: self.post.tasks(lo, hi),
            host: None,
        }
    }
}
