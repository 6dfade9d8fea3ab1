//! ProMP: Proximal Meta-Policy Search.
//!
//! Reference: Rothfuss, Lee, Clavera, Asfour, Abbeel, "ProMP: Proximal Meta-Policy Search",
//! ICLR 2019, Algorithm 1 and eq. (13).
//!
//! ```text
//! Require: task distribution ρ, step sizes α, β, KL-penalty coefficient η, clip range ε
//! randomly initialize θ
//! while θ not converged:
//!     sample a batch of tasks T_i ~ ρ(T)
//!     for n = 0, …, N − 1:
//!         if n = 0:
//!             θ_o ← θ
//!             for all T_i: sample pre-update trajectories D_i with π_θ
//!                          θ'_{o,i} ← θ + α ∇_θ J^LR_{T_i}(θ) on D_i
//!                          sample post-update trajectories D'_i with π_θ'_{o,i}
//!         θ ← θ + β Σ_i ∇_θ J^ProMP_{T_i}(θ) on D'_i        (Adam)
//!
//! J^ProMP_T(θ) = J^CLIP_T(θ') − η D̄_KL(π_θo, π_θ),   θ' = θ + α ∇_θ J^LR_T(θ)
//! J^LR_T(θ)    = E_{τ~π_θo} Σ_t π_θ(a_t|s_t)/π_θo(a_t|s_t) A^{π_θo}(s_t, a_t)
//! J^CLIP_T(θ') = E_{τ'~π_θ'o} Σ_t min(r_t A_t, clip(r_t, 1 − ε, 1 + ε) A_t),  r_t = π_θ'/π_θ'o
//! ```
//!
//! With several inner steps the inner chain is recomputed from the stored pre-update
//! batches at every outer step ([`crate::pg::readapt`]); the KL penalty is on the first
//! (pre-update) batch. On Flex with one inner step and the LVC or MAML estimator, the
//! meta-gradient ∇_θ J^ProMP is computed on host memory, one fused pass per task with a
//! hand-written backward pass and Hessian-vector product ([`crate::nn::dense_pg`]); the
//! tensor route (every other case, and every other backend) computes the same thing
//! through Burn's autodiff. Deviations: KL and objectives are means over real samples; with
//! `adaptive_kl` η is halved when the KL is below target/1.5 and doubled above 1.5·target
//! after each batch (ProMP's `adaptive_inner_kl_penalty`).

use std::sync::Arc;

use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dist::Cluster;
use crate::env::Env;
use crate::error::{Error, Result};
use crate::learner::{Checkpoint, Evaluation, MetaLearner, Metrics, Phases};
use crate::nn::functional::{kl_at, GaussianParams};
use crate::nn::{to_vec, GaussianPolicy};
use crate::objective::{clipped_surrogate, likelihood_ratio, masked_mean};
use crate::params::{descend, flatten, norm, unflatten};
use crate::pg::{
    evaluate, host_path_applies, meta_pg, policy_checkpoint, readapt, restore_policy,
    sample_chunked, sample_task_batch, ChunkedSamples, HostSamples, MetaPgConfig, Outer,
    SamplerRngs, TaskBatch,
};
use crate::rng::Rng;

/// ProMP's outer-loop settings (mission-anchors §3.1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProMpConfig {
    /// Outer gradient steps N per batch of samples (5).
    pub outer_steps: usize,
    /// Clip range ε (0.3).
    pub clip_eps: f64,
    /// KL-penalty coefficient η (5e-4, fixed).
    pub kl_coef: f64,
    /// Adapt η towards `target_kl`.
    pub adaptive_kl: bool,
    /// Target KL for the adaptive penalty (0.01).
    pub target_kl: f64,
    /// Adam step size β (1e-3).
    pub meta_lr: f64,
    /// Collapse guard: an outer step after which D̄_KL(π_θo ‖ π_θ) on the pre-update states
    /// exceeds this is halved until it does not (`outer_step_fraction` in progress.csv, the
    /// smallest fraction of the iteration); if 1/1024 of it still does, it is undone (policy
    /// and Adam state) and the batch's remaining outer steps are skipped
    /// (`outer_steps_taken`). Default 0.05, five times the target KL; healthy training
    /// stays below it (experiments/README.md, "Longer training"); `inf` turns it off (the
    /// paper's algorithm).
    pub outer_kl_limit: f64,
    /// The meta-batch is split into this many task chunks, each sampled with streams of its
    /// own and differentiated separately, in parallel threads and between MPI ranks; their
    /// gradients are summed in chunk order. Results depend on it, not on the thread or rank
    /// count; an MPI job keeps at most this many ranks busy.
    pub parallel_chunks: usize,
}

impl Default for ProMpConfig {
    fn default() -> Self {
        Self {
            outer_steps: 5,
            clip_eps: 0.3,
            kl_coef: 5e-4,
            adaptive_kl: false,
            target_kl: 0.01,
            meta_lr: 1e-3,
            outer_kl_limit: 0.05,
            parallel_chunks: 2,
        }
    }
}

impl ProMpConfig {
    /// Validates every field.
    pub fn validate(&self) -> Result<()> {
        if self.parallel_chunks == 0 {
            return Err(Error::invalid("promp.parallel_chunks", 0, "≥ 1"));
        }
        if self.outer_steps == 0 {
            return Err(Error::invalid("promp.outer_steps", 0, "≥ 1"));
        }
        if !(self.clip_eps > 0.0 && self.clip_eps < 1.0) {
            return Err(Error::invalid("promp.clip_eps", self.clip_eps, "(0, 1)"));
        }
        if !(self.kl_coef >= 0.0 && self.kl_coef.is_finite()) {
            return Err(Error::invalid("promp.kl_coef", self.kl_coef, "≥ 0"));
        }
        if !(self.meta_lr > 0.0 && self.meta_lr.is_finite()) {
            return Err(Error::invalid("promp.meta_lr", self.meta_lr, "> 0"));
        }
        if !(self.outer_kl_limit > 0.0) {
            return Err(Error::invalid(
                "promp.outer_kl_limit",
                self.outer_kl_limit,
                "> 0 (inf: off)",
            ));
        }
        Ok(())
    }
}

/// The ProMP learner.
pub struct ProMp {
    /// Sampling and inner-step settings (estimator `lvc`, i.e. J^LR).
    pub meta: MetaPgConfig,
    /// Outer-loop settings.
    pub cfg: ProMpConfig,
    /// The task family.
    pub env: Arc<dyn Env>,
    /// Meta-policy θ (autodiff device).
    pub policy: GaussianPolicy,
    /// Adam state.
    pub optim: ModuleOptimizer,
    /// The current KL coefficient η (changes only with `adaptive_kl`).
    pub kl_coef: f64,
    /// Task stream.
    pub tasks_rng: Rng,
    /// Sampling streams (the master streams that seed each task chunk's).
    pub rngs: SamplerRngs,
    /// The MPI job's ranks share the task chunks (one process: owns them all).
    cluster: Cluster,
    device: Device,
}

impl ProMp {
    /// A learner with a fresh policy drawn from `init_rng`.
    pub fn new(
        meta: MetaPgConfig,
        cfg: ProMpConfig,
        env: Arc<dyn Env>,
        init_rng: &mut Rng,
        tasks_rng: Rng,
        rngs: SamplerRngs,
        device: &Device,
    ) -> Self {
        let s = env.spec().clone();
        Self {
            policy: meta.policy.init(s.obs_dim, s.act_dim, init_rng, device),
            kl_coef: cfg.kl_coef,
            meta,
            cfg,
            env,
            optim: AdamConfig::new().init(),
            tasks_rng,
            rngs,
            cluster: Cluster::current(),
            device: device.clone(),
        }
    }

    /// One iteration of Algorithm 1.
    fn iterate(&mut self, phases: &mut Phases) -> Result<Metrics> {
        let tasks = sample_task_batch(&self.env, self.meta.tasks, &mut self.tasks_rng);
        let theta_o = GaussianParams::from_policy(&self.policy).detach();
        let samples = sample_chunked(
            &self.env,
            &tasks,
            &theta_o,
            &self.meta,
            &mut self.rngs,
            self.cfg.parallel_chunks,
            self.cluster,
            &self.device,
            phases,
        )?;
        phases.enter("outer");
        // π_θo's means on each owned chunk's first batch, for the KL penalty.
        let mu_o = samples.per_owned(|c| theta_o.mu(samples.part(c).pre[0].obs.clone()));
        let spec = self.env.spec();
        let host = host_path_applies(&self.meta, spec.act_dim, &self.device).then(|| {
            HostSamples::new(
                &samples,
                Some(&mu_o),
                &self.meta,
                spec.obs_dim,
                spec.act_dim,
            )
        });
        let log_std_o = to_vec(self.policy.log_std.val());
        let (mut j, mut kl, mut gn) = (0.0, 0.0, 0.0);
        let (mut taken, mut fraction) = (0, 1.0f64);
        let mut pending = None;
        for step in 0..self.cfg.outer_steps {
            let before = (self.policy.clone(), self.optim.clone());
            let (grad, aux) = pending.take().unwrap_or_else(|| {
                self.meta_gradient(&samples, &theta_o, &mu_o, host.as_ref(), &log_std_o)
            });
            (j, kl, gn) = self.outer_step(grad, &aux);
            if self.cfg.outer_kl_limit.is_finite() {
                // On host memory the next step's meta-gradient also gives D̄_KL(π_θo ‖ π_θ)
                // at the new θ: computed now, it is kept when the step stands.
                let last = step + 1 == self.cfg.outer_steps;
                let next = (host.is_some() && !last).then(|| {
                    self.meta_gradient(&samples, &theta_o, &mu_o, host.as_ref(), &log_std_o)
                });
                let kl_now = next.as_ref().map(|(_, aux)| aux[1]);
                match self.backtrack(&before.0, &samples, &theta_o, &mu_o, kl_now) {
                    Some(f) => {
                        fraction = fraction.min(f);
                        if f == 1.0 {
                            pending = next;
                        }
                    }
                    None => {
                        // Not even 1/1024 of the step stays within the limit: undo it
                        // (policy and Adam state) and skip the batch's remaining steps.
                        (self.policy, self.optim) = before;
                        fraction = 0.0;
                        break;
                    }
                }
            }
            taken += 1;
        }
        if self.cfg.adaptive_kl {
            if kl < self.cfg.target_kl / 1.5 {
                self.kl_coef /= 2.0;
            } else if kl > self.cfg.target_kl * 1.5 {
                self.kl_coef *= 2.0;
            }
        }
        let mut m = samples.metrics();
        m.push("clip_objective", j);
        m.push("kl", kl);
        m.push("kl_coef", self.kl_coef);
        m.push("grad_norm", gn);
        m.push("outer_steps_taken", taken as f64);
        m.push("outer_step_fraction", fraction);
        Ok(m)
    }

    /// The collapse guard after an outer step from `before`: while D̄_KL(π_θo ‖ π_θ) exceeds
    /// `outer_kl_limit`, halve the step (θ = θ_before + f·(θ_after − θ_before), f = 1/2, …,
    /// 1/1024; Adam's state keeps the step's gradient). Returns the fraction kept, or `None`
    /// when none is within the limit (θ is then left at the last trial; the caller undoes).
    /// `kl_now` is the KL at the current θ when the caller already has it.
    fn backtrack(
        &mut self,
        before: &GaussianPolicy,
        s: &ChunkedSamples,
        theta_o: &GaussianParams,
        mu_o: &[Option<Tensor<3>>],
        kl_now: Option<f64>,
    ) -> Option<f64> {
        let limit = self.cfg.outer_kl_limit;
        let kl_now = kl_now.unwrap_or_else(|| self.kl_from_sampling_policy(s, theta_o, mu_o));
        if kl_now <= limit {
            return Some(1.0);
        }
        let (from, to) = (flatten(before), flatten(&self.policy));
        let mut f = 1.0;
        for _ in 0..10 {
            f /= 2.0;
            let mix: Vec<f32> = from
                .iter()
                .zip(&to)
                .map(|(a, b)| a + (f as f32) * (b - a))
                .collect();
            self.policy = unflatten(self.policy.clone(), &mix);
            if self.kl_from_sampling_policy(s, theta_o, mu_o) <= limit {
                return Some(f);
            }
        }
        None
    }

    /// D̄_KL(π_θo ‖ π_θ) on the pre-update states at the current θ (the penalty's KL), summed
    /// over the chunks.
    fn kl_from_sampling_policy(
        &self,
        s: &ChunkedSamples,
        theta_o: &GaussianParams,
        mu_o: &[Option<Tensor<3>>],
    ) -> f64 {
        let theta = GaussianParams::from_policy(&self.policy).detach();
        let m = s.m() as f64;
        s.sum(|c| {
            let pre = &s.part(c).pre[0];
            let mu_oc = mu_o[c].clone().expect("an owned chunk");
            let kl = penalty_kl(pre, theta_o, mu_oc, theta.mu(pre.obs.clone()), &theta, m);
            vec![to_vec(kl)[0] as f64]
        })[0]
    }

    /// θ ← Adam(θ, −∇J^ProMP) with the meta-gradient `grad` at θ and its values
    /// `aux` = [J^CLIP, KL]; returns (J^CLIP, KL, ‖∇‖) before the step.
    fn outer_step(&mut self, grad: Vec<f32>, aux: &[f64]) -> (f64, f64, f64) {
        let gn = norm(&grad);
        let policy = self.policy.clone();
        self.policy = descend(
            &mut self.optim,
            self.cfg.meta_lr,
            policy,
            &grad,
            &self.device,
        );
        (aux[0], aux[1], gn)
    }

    /// ∇_θ −J^ProMP(θ) at the current θ (flat) and [J^CLIP, KL]: on host memory when `host`
    /// holds the samples ([`crate::nn::dense_pg`]), else through the tensor graph.
    fn meta_gradient(
        &self,
        s: &ChunkedSamples,
        theta_o: &GaussianParams,
        mu_o: &[Option<Tensor<3>>],
        host: Option<&HostSamples>,
        log_std_o: &[f32],
    ) -> (Vec<f32>, Vec<f64>) {
        let m = s.m() as f64;
        if let Some(h) = host {
            let outer = Outer::Clipped(self.cfg.clip_eps);
            let cfg = meta_pg(&self.meta, outer, self.kl_coef, s.m());
            return h.gradient(s, &cfg, &flatten(&self.policy), log_std_o);
        }
        s.gradient(&self.policy, |theta, c| {
            let c_samples = s.part(c);
            let (adapted, mu) = readapt(theta, &c_samples.pre, &self.meta);
            let b = &c_samples.post;
            let ratio = likelihood_ratio(b.log_prob(&adapted), b.logp_old.clone());
            // Sums over the chunk's tasks divided by M: the chunks add up to the means.
            let j = clipped_surrogate(
                ratio,
                b.adv.clone(),
                self.cfg.clip_eps,
                b.mask.clone(),
                b.n.clone(),
            )
            .sum()
            .div_scalar(m);
            let mu_oc = mu_o[c].clone().expect("an owned chunk");
            let kl = penalty_kl(&c_samples.pre[0], theta_o, mu_oc, mu, theta, m);
            let aux = vec![to_vec(j.clone())[0] as f64, to_vec(kl.clone())[0] as f64];
            ((j - kl.mul_scalar(self.kl_coef)).neg(), aux)
        })
    }
}

/// The penalty's D̄_KL(π_θo ‖ π_θ) on a chunk's pre-update batch `pre`: per task the mean
/// over real steps, summed over the chunk's tasks and divided by the meta-batch size `m`
/// (so the chunks add up to the mean). `mu_o` and `mu` are π_θo's and π_θ's means on
/// `pre`'s states.
fn penalty_kl(
    pre: &TaskBatch,
    theta_o: &GaussianParams,
    mu_o: Tensor<3>,
    mu: Tensor<3>,
    theta: &GaussianParams,
    m: f64,
) -> Tensor<1> {
    let kl = kl_at(mu_o, theta_o.log_std.clone(), mu, theta.log_std.clone())
        .reshape([pre.m, pre.k, pre.t]);
    masked_mean(kl, pre.mask.clone(), pre.n.clone())
        .sum()
        .div_scalar(m)
}

impl MetaLearner for ProMp {
    fn step(&mut self, _iteration: usize, phases: &mut Phases) -> Result<Metrics> {
        self.iterate(phases)
    }

    fn parameters_finite(&self) -> bool {
        flatten(&self.policy).iter().all(|x| x.is_finite())
    }

    /// The policy learners' state ([`policy_checkpoint`]) and the current η.
    fn checkpoint(&self) -> Result<Checkpoint> {
        let mut ck = policy_checkpoint(&self.policy, &self.optim, &self.tasks_rng, &self.rngs)?;
        ck.extra = serde_json::json!({ "kl_coef": self.kl_coef });
        Ok(ck)
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        restore_policy(
            ck,
            &mut self.policy,
            &mut self.optim,
            &mut self.tasks_rng,
            &mut self.rngs,
        )?;
        self.kl_coef = ck.extra["kl_coef"].as_f64().unwrap_or(self.cfg.kl_coef);
        Ok(())
    }

    fn evaluate(&self, tasks: usize) -> Result<Evaluation> {
        let plain = self.device.clone().inner();
        evaluate(&self.env, &self.policy, &self.meta, tasks, &plain)
    }
}

#[cfg(test)]
mod tests;
