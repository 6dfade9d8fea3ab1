//! PG-MAML: MAML-VPG, MAML-TRPO and E-MAML with the MAML, DiCE or LVC inner estimator.
//!
//! References: Finn et al. 2017 (MAML-RL); Rothfuss et al. 2019 (ProMP paper: §4
//! formulations I/II and E-MAML, §5 LVC, Appendix on DiCE); Foerster et al. 2018 (DiCE).
//!
//! ```text
//! while not done:
//!     sample tasks T_i ~ ρ(T)
//!     for each inner step s:  sample D_i^s with π_θ'_{i,s};  θ'_{i,s+1} = θ'_{i,s} + α ∇J_inner(θ'_{i,s}; D_i^s)
//!     sample post-update trajectories D'_i with π_θ'_i
//!     J(θ) = Σ_i J_outer(θ'_i(θ); D'_i)   [+ E-MAML: Σ_i R̄'_i log π_θ(D_i)]
//!     VPG:  θ ← Adam(θ, ∇_θ J)
//!     TRPO: θ ← θ + β s,  F s = ∇J by conjugate gradient,  F = ∇² KL(π_θ'_old ‖ π_θ'(θ)),
//!           β = √(2δ / sᵀFs), backtracking until J improves and KL ≤ δ
//! ```
//!
//! The inner gradient is explicit tensor ops ([`crate::pg::adapt`]), so ∇_θ J is exact for
//! the chosen estimator; the Fisher-vector product F v is a central finite difference of
//! ∇KL (burn-primer §4 (a)), since the KL itself depends on θ through the inner step.
//!
//! Deviations: the outer objective is the likelihood-ratio surrogate Σ ρ_t A_t / n (whose
//! gradient at the sampling point is the vanilla policy gradient); E-MAML's post-update
//! returns are normalized over the meta-batch as in ProMP's `meta_sample_processor`.

use std::sync::Arc;

use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dist::Cluster;
use crate::env::Env;
use crate::error::{Error, Result};
use crate::learner::{Checkpoint, Evaluation, MetaLearner, Metrics, Phases};
use crate::nn::functional::GaussianParams;
use crate::nn::{to_vec, GaussianPolicy};
use crate::objective::{emaml_term, likelihood_ratio, masked_mean, standardize_returns, surrogate};
use crate::optim::{conjugate_gradient, line_search};
use crate::params::{ascend, flatten, norm, unflatten};
use crate::pg::{
    evaluate, host_path_applies, meta_pg, policy_checkpoint, readapt, restore_policy,
    sample_chunked, sample_task_batch, ChunkedSamples, HostSamples, MetaPgConfig, MetaSamples,
    SamplerRngs,
};
use crate::rng::Rng;

/// The outer optimizer of PG-MAML.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Outer {
    /// Vanilla policy gradient with Adam.
    Vpg,
    /// Trust-region policy optimization.
    Trpo,
}

/// TRPO settings (mission-anchors §3.2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrpoConfig {
    /// KL trust region δ (0.01).
    pub max_kl: f64,
    /// Conjugate-gradient iterations (10).
    pub cg_iters: usize,
    /// Damping added to the Fisher-vector product (1e-5).
    pub cg_damping: f64,
    /// Line-search shrink factor (0.8).
    pub backtrack_ratio: f64,
    /// Line-search trials (15).
    pub max_backtracks: usize,
    /// Size of the finite-difference step |ε v| of the Fisher-vector product (f32: 3e-3).
    pub fvp_step: f64,
}

impl Default for TrpoConfig {
    fn default() -> Self {
        Self {
            max_kl: 0.01,
            cg_iters: 10,
            cg_damping: 1e-5,
            backtrack_ratio: 0.8,
            max_backtracks: 15,
            fvp_step: 3e-3,
        }
    }
}

/// PG-MAML's outer-loop settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PgMamlConfig {
    /// VPG (Adam) or TRPO.
    pub outer: Outer,
    /// Add E-MAML's pre-update credit term (formulation II).
    pub emaml: bool,
    /// Adam step size for VPG (1e-3).
    pub meta_lr: f64,
    /// TRPO settings.
    pub trpo: TrpoConfig,
    /// Task chunks, each sampled with streams of its own and differentiated separately, in
    /// parallel threads and between MPI ranks, summed in chunk order (results depend on it,
    /// not on the thread or rank count; an MPI job keeps at most this many ranks busy).
    pub parallel_chunks: usize,
}

impl Default for PgMamlConfig {
    fn default() -> Self {
        Self {
            outer: Outer::Vpg,
            emaml: false,
            meta_lr: 1e-3,
            trpo: TrpoConfig::default(),
            parallel_chunks: 2,
        }
    }
}

impl PgMamlConfig {
    /// Validates every field.
    pub fn validate(&self) -> Result<()> {
        if !(self.meta_lr.is_finite() && self.meta_lr > 0.0) {
            return Err(Error::invalid("pg_maml.meta_lr", self.meta_lr, "> 0"));
        }
        if self.parallel_chunks == 0 {
            return Err(Error::invalid("pg_maml.parallel_chunks", 0, "≥ 1"));
        }
        let t = &self.trpo;
        if !(t.max_kl > 0.0 && t.max_kl.is_finite()) {
            return Err(Error::invalid("pg_maml.trpo.max_kl", t.max_kl, "> 0"));
        }
        if !(t.backtrack_ratio > 0.0 && t.backtrack_ratio < 1.0) {
            return Err(Error::invalid(
                "pg_maml.trpo.backtrack_ratio",
                t.backtrack_ratio,
                "(0, 1)",
            ));
        }
        Ok(())
    }
}

/// The PG-MAML learner.
pub struct PgMaml {
    /// Sampling and inner-step settings.
    pub meta: MetaPgConfig,
    /// Outer-loop settings.
    pub cfg: PgMamlConfig,
    /// The task family.
    pub env: Arc<dyn Env>,
    /// Meta-policy θ (autodiff device).
    pub policy: GaussianPolicy,
    /// Adam state (VPG).
    pub optim: ModuleOptimizer,
    /// Task stream.
    pub tasks_rng: Rng,
    /// Sampling streams (the master streams that seed each task chunk's).
    pub rngs: SamplerRngs,
    /// The MPI job's ranks share the task chunks (one process: owns them all).
    cluster: Cluster,
    device: Device,
}

impl PgMaml {
    /// A learner with a fresh policy drawn from `init_rng`.
    pub fn new(
        meta: MetaPgConfig,
        cfg: PgMamlConfig,
        env: Arc<dyn Env>,
        init_rng: &mut Rng,
        tasks_rng: Rng,
        rngs: SamplerRngs,
        device: &Device,
    ) -> Self {
        let s = env.spec().clone();
        Self {
            policy: meta.policy.init(s.obs_dim, s.act_dim, init_rng, device),
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

    /// One meta-iteration: sample, adapt, outer update. Returns its metrics.
    fn iterate(&mut self, phases: &mut Phases) -> Result<Metrics> {
        let tasks = sample_task_batch(&self.env, self.meta.tasks, &mut self.tasks_rng);
        let theta = GaussianParams::from_policy(&self.policy).detach();
        let samples = sample_chunked(
            &self.env,
            &tasks,
            &theta,
            &self.meta,
            &mut self.rngs,
            self.cfg.parallel_chunks,
            self.cluster,
            &self.device,
            phases,
        )?;
        phases.enter("outer");
        let m = match self.cfg.outer {
            Outer::Vpg => self.vpg_update(&samples),
            Outer::Trpo => self.trpo_update(&samples),
        };
        let mut out = samples.metrics();
        out.0.extend(m.0);
        Ok(out)
    }

    /// J(θ) (to maximize) summed over the tasks of chunk `c` and divided by the meta-batch
    /// size `m`: the surrogate at θ' = U(θ) recomputed from the pre-update samples, plus
    /// E-MAML's term when enabled (`rn`: normalized post-update returns of the chunk).
    fn objective(&self, c: &MetaSamples, theta: &GaussianParams, m: f64, rn: &[f32]) -> Tensor<1> {
        let (adapted, _) = readapt(theta, &c.pre, &self.meta);
        let b = &c.post;
        let ratio = likelihood_ratio(b.log_prob(&adapted), b.logp_old.clone());
        let j = surrogate(ratio, b.adv.clone(), b.mask.clone(), b.n.clone())
            .sum()
            .div_scalar(m);
        if !self.cfg.emaml {
            return j;
        }
        let rn = Tensor::<1>::from_data(TensorData::new(rn.to_vec(), [rn.len()]), &self.device);
        let pre = &c.pre[0];
        j + emaml_term(pre.log_prob(theta), pre.mask.clone(), pre.n.clone(), rn)
            .sum()
            .div_scalar(m)
    }

    /// ∇J at the policy `p`, computed on the task chunks, and J: on host memory
    /// ([`crate::nn::dense_pg`]) where it applies (Flex, one inner step, LVC or MAML, no
    /// E-MAML term), else through the tensor graph ([`ChunkedSamples::gradient`]).
    fn objective_gradient(&self, p: &GaussianPolicy, s: &ChunkedSamples) -> (Vec<f32>, f64) {
        let spec = self.env.spec();
        if !self.cfg.emaml && host_path_applies(&self.meta, spec.act_dim, &self.device) {
            let host = HostSamples::new(s, None, &self.meta, spec.obs_dim, spec.act_dim);
            let cfg = meta_pg(&self.meta, crate::pg::Outer::Surrogate, 0.0, s.m());
            // The kernel gives ∇ of the loss −J.
            let (g, aux) = host.gradient(s, &cfg, &flatten(p), &[]);
            return (g.iter().map(|x| -x).collect(), aux[0]);
        }
        self.tensor_gradient(p, s)
    }

    /// ∇J and J through the tensor graph.
    fn tensor_gradient(&self, p: &GaussianPolicy, s: &ChunkedSamples) -> (Vec<f32>, f64) {
        let (m, rn) = (s.m() as f64, standardize_returns(s.post_task_returns()));
        let (g, aux) = s.gradient(p, |theta, c| {
            let (lo, hi) = s.ranges[c];
            let j = self.objective(s.part(c), theta, m, &rn[lo..hi]);
            let v = to_vec(j.clone())[0] as f64;
            (j, vec![v])
        });
        (g, aux[0])
    }

    fn vpg_update(&mut self, s: &ChunkedSamples) -> Metrics {
        let (g, j) = self.objective_gradient(&self.policy, s);
        let policy = self.policy.clone();
        self.policy = ascend(&mut self.optim, self.cfg.meta_lr, policy, &g, &self.device);
        Metrics::new()
            .with("surrogate", j)
            .with("grad_norm", norm(&g))
    }

    /// Mean KL(π_θ'_old ‖ π_θ'(θ)) on post-update states, summed over chunk `c`'s tasks / m.
    fn kl(
        &self,
        c: &MetaSamples,
        theta: &GaussianParams,
        old: &GaussianParams,
        m: f64,
    ) -> Tensor<1> {
        let (adapted, _) = readapt(theta, &c.pre, &self.meta);
        let b = &c.post;
        let kl = old.kl(&adapted, b.obs.clone()).reshape([b.m, b.k, b.t]);
        masked_mean(kl, b.mask.clone(), b.n.clone())
            .sum()
            .div_scalar(m)
    }

    fn trpo_update(&mut self, s: &ChunkedSamples) -> Metrics {
        let t = self.cfg.trpo.clone();
        // π_θ'_old of every owned chunk: the adapted policies that sampled its post batch.
        let old = s.per_owned(|c| s.adapted(c).detach());
        let old = |c: usize| old[c].as_ref().expect("an owned chunk");
        let m = s.m() as f64;
        let theta0 = flatten(&self.policy);
        let (g, f0) = self.objective_gradient(&self.policy, s);
        let kl_grad = |th: &[f32]| {
            let p = unflatten(self.policy.clone(), th);
            s.gradient(&p, |theta, c| {
                (self.kl(s.part(c), theta, old(c), m), vec![])
            })
            .0
        };
        let fvp = |v: &[f32]| {
            let eps = t.fvp_step / norm(v).max(1e-12);
            let shift = |sign: f64| {
                theta0
                    .iter()
                    .zip(v)
                    .map(|(a, b)| a + (sign * eps * *b as f64) as f32)
                    .collect::<Vec<_>>()
            };
            let (gp, gm) = (kl_grad(&shift(1.0)), kl_grad(&shift(-1.0)));
            (0..v.len())
                .map(|i| ((gp[i] - gm[i]) as f64 / (2.0 * eps) + t.cg_damping * v[i] as f64) as f32)
                .collect::<Vec<_>>()
        };
        let dir = conjugate_gradient(fvp, &g, t.cg_iters, 1e-10);
        let shs: f64 = dir
            .iter()
            .zip(fvp(&dir))
            .map(|(a, b)| *a as f64 * b as f64)
            .sum();
        let beta = (2.0 * t.max_kl / shs.max(1e-12)).sqrt();
        let step: Vec<f32> = dir.iter().map(|d| (beta * *d as f64) as f32).collect();
        let rn = standardize_returns(s.post_task_returns());
        let eval = |th: &[f32]| {
            let theta = GaussianParams::from_policy(&unflatten(self.policy.clone(), th)).detach();
            let v = s.sum(|c| {
                let (lo, hi) = s.ranges[c];
                let j = self.objective(s.part(c), &theta, m, &rn[lo..hi]);
                let kl = self.kl(s.part(c), &theta, old(c), m);
                vec![to_vec(j)[0] as f64, to_vec(kl)[0] as f64]
            });
            (v[0], v[1])
        };
        let ls = line_search(
            eval,
            &theta0,
            &step,
            f0,
            t.max_kl,
            t.backtrack_ratio,
            t.max_backtracks,
        );
        self.policy = unflatten(self.policy.clone(), &ls.theta);
        Metrics::new()
            .with("surrogate", ls.objective)
            .with("kl", ls.constraint)
            .with("step_fraction", ls.fraction)
            .with("grad_norm", norm(&g))
    }
}

impl MetaLearner for PgMaml {
    fn step(&mut self, _iteration: usize, phases: &mut Phases) -> Result<Metrics> {
        self.iterate(phases)
    }

    fn parameters_finite(&self) -> bool {
        flatten(&self.policy).iter().all(|x| x.is_finite())
    }

    fn checkpoint(&self) -> Result<Checkpoint> {
        let mut ck = policy_checkpoint(&self.policy, &self.optim, &self.tasks_rng, &self.rngs)?;
        ck.extra = serde_json::json!({ "kl_coef": 0.0 });
        Ok(ck)
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        restore_policy(
            ck,
            &mut self.policy,
            &mut self.optim,
            &mut self.tasks_rng,
            &mut self.rngs,
        )
    }

    fn evaluate(&self, tasks: usize) -> Result<Evaluation> {
        let plain = self.device.clone().inner();
        evaluate(&self.env, &self.policy, &self.meta, tasks, &plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::DeviceKind;
    use crate::objective::Estimator;
    use crate::pg::testing::{assert_same_gradient, samples_and_moved_theta};
    use crate::rng::stream;

    /// MAML-VPG's meta-gradient on host memory equals the tensor route's up to f32
    /// rounding, at a θ away from the sampling policy, for the LVC and MAML estimators.
    #[test]
    fn host_meta_gradient_equals_the_tensor_route() {
        let device = DeviceKind::Flex.device().unwrap().autodiff();
        for estimator in [Estimator::Lvc, Estimator::Maml] {
            let meta = MetaPgConfig {
                tasks: 4,
                rollouts: 3,
                estimator,
                ..MetaPgConfig::default()
            };
            let env = crate::env::make("nav2d").unwrap();
            let rngs = SamplerRngs {
                env: stream(5, "env"),
                act: stream(5, "action"),
            };
            let p = PgMaml::new(
                meta,
                PgMamlConfig::default(),
                env.clone(),
                &mut stream(5, "policy"),
                stream(5, "tasks"),
                rngs,
                &device,
            );
            let (s, theta) = samples_and_moved_theta(&env, &p.policy, &p.meta, 5);
            let policy = unflatten(p.policy.clone(), &theta);
            let (g_host, j_host) = p.objective_gradient(&policy, &s);
            let (g_tensor, j_tensor) = p.tensor_gradient(&policy, &s);
            println!("{estimator:?}: J {j_host} vs {j_tensor}");
            assert_same_gradient(&g_host, &g_tensor);
            // J sums terms ρA/(n·M) whose magnitudes add up to about 1 (advantages are
            // normalized per task) and cancel: f32 rounding of such a sum is ~1e-7.
            assert!((j_host - j_tensor).abs() < 1e-6, "J {j_host} vs {j_tensor}");
        }
    }
}
