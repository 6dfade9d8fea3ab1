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
use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::env::Env;
use crate::error::{Error, Result};
use crate::nn::functional::GaussianParams;
use crate::nn::{to_vec, GaussianPolicy};
use crate::objective::{emaml_term, likelihood_ratio, masked_mean, surrogate};
use crate::optim::{conjugate_gradient, line_search};
use crate::params::{flatten, flatten_gradients, unflatten};
use crate::pg::{
    readapt, sample_meta_batch, sample_task_batch, MetaPgConfig, MetaSamples, SamplerRngs,
};
use crate::rng::Rng;
use crate::train::Metrics;

/// The outer optimizer of PG-MAML.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl Default for PgMamlConfig {
    fn default() -> Self {
        Self {
            outer: Outer::Vpg,
            emaml: false,
            meta_lr: 1e-3,
            trpo: TrpoConfig::default(),
        }
    }
}

impl PgMamlConfig {
    /// Validates every field.
    pub fn validate(&self) -> Result<()> {
        if !(self.meta_lr.is_finite() && self.meta_lr > 0.0) {
            return Err(Error::invalid("pg_maml.meta_lr", self.meta_lr, "> 0"));
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
    /// Sampling streams.
    pub rngs: SamplerRngs,
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
            device: device.clone(),
        }
    }

    /// One meta-iteration: sample, adapt, outer update. Returns its metrics.
    pub fn step(&mut self) -> Result<Metrics> {
        let tasks = sample_task_batch(&self.env, self.meta.tasks, &mut self.tasks_rng);
        let theta = GaussianParams::from_policy(&self.policy);
        let (samples, adapted) = sample_meta_batch(
            &self.env,
            &tasks,
            &theta,
            &self.meta,
            &mut self.rngs,
            &self.device,
        )?;
        let t1 = Instant::now();
        let mut m = match self.cfg.outer {
            Outer::Vpg => self.vpg_update(&samples, &theta, &adapted),
            Outer::Trpo => self.trpo_update(&samples, &adapted),
        };
        m.push("outer_seconds", t1.elapsed().as_secs_f64());
        let mut out = samples.metrics();
        out.0.extend(m.0);
        Ok(out)
    }

    /// J(θ) (to maximize) for the current post-update batch: the surrogate at θ', plus
    /// E-MAML's term when enabled.
    fn objective(
        &self,
        s: &MetaSamples,
        theta: &GaussianParams,
        adapted: &GaussianParams,
    ) -> Tensor<1> {
        let ratio = likelihood_ratio(s.post.log_prob(adapted), s.post.logp_old.clone());
        let j = surrogate(
            ratio,
            s.post.adv.clone(),
            s.post.mask.clone(),
            s.post.n.clone(),
        )
        .mean();
        if !self.cfg.emaml {
            return j;
        }
        let r = &s.post.task_returns;
        let mean = r.iter().sum::<f64>() / r.len() as f64;
        let std =
            (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / r.len() as f64).sqrt() + 1e-8;
        let rn: Vec<f32> = r.iter().map(|x| ((x - mean) / std) as f32).collect();
        let rn = Tensor::<1>::from_data(TensorData::new(rn, [r.len()]), &self.device);
        let pre = &s.pre[0];
        j + emaml_term(pre.log_prob(theta), pre.mask.clone(), pre.n.clone(), rn).mean()
    }

    fn vpg_update(
        &mut self,
        s: &MetaSamples,
        theta: &GaussianParams,
        adapted: &GaussianParams,
    ) -> Metrics {
        let j = self.objective(s, theta, adapted);
        let loss = j.clone().neg();
        let grads = GradientsParams::from_grads(loss.backward(), &self.policy);
        let norm = norm(&flatten_gradients(&self.policy, &grads));
        self.policy = self
            .optim
            .step(self.cfg.meta_lr, self.policy.clone(), grads);
        Metrics::new()
            .with("surrogate", to_vec(j)[0] as f64)
            .with("grad_norm", norm)
    }

    /// (J, mean KL(π_θ'_old ‖ π_θ'(θ)) on post-update states) at the policy `p`.
    fn objective_and_kl(
        &self,
        p: &GaussianPolicy,
        s: &MetaSamples,
        old: &GaussianParams,
    ) -> (Tensor<1>, Tensor<1>) {
        let theta = GaussianParams::from_policy(p);
        let (adapted, _) = readapt(&theta, &s.pre, &self.meta);
        let b = &s.post;
        let kl = old.kl(&adapted, b.obs.clone()).reshape([b.m, b.k, b.t]);
        let kl = masked_mean(kl, b.mask.clone(), b.n.clone()).mean();
        (self.objective(s, &theta, &adapted), kl)
    }

    fn flat_grad(&self, p: &GaussianPolicy, t: Tensor<1>) -> Vec<f32> {
        flatten_gradients(p, &GradientsParams::from_grads(t.backward(), p))
    }

    fn trpo_update(&mut self, s: &MetaSamples, adapted: &GaussianParams) -> Metrics {
        let t = self.cfg.trpo.clone();
        let old = adapted.detach();
        let theta0 = flatten(&self.policy);
        let (j0, _) = self.objective_and_kl(&self.policy, s, &old);
        let f0 = to_vec(j0.clone())[0] as f64;
        let g = self.flat_grad(&self.policy, j0);
        let kl_grad = |th: &[f32]| {
            let p = unflatten(self.policy.clone(), th);
            let (_, kl) = self.objective_and_kl(&p, s, &old);
            self.flat_grad(&p, kl)
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
        let dir = conjugate_gradient(&fvp, &g, t.cg_iters, 1e-10);
        let shs: f64 = dir
            .iter()
            .zip(fvp(&dir))
            .map(|(a, b)| *a as f64 * b as f64)
            .sum();
        let beta = (2.0 * t.max_kl / shs.max(1e-12)).sqrt();
        let step: Vec<f32> = dir.iter().map(|d| (beta * *d as f64) as f32).collect();
        let eval = |th: &[f32]| {
            let p = unflatten(self.policy.clone(), th);
            let (j, kl) = self.objective_and_kl(&p, s, &old);
            (to_vec(j)[0] as f64, to_vec(kl)[0] as f64)
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

/// Euclidean norm of a flat vector.
pub fn norm(v: &[f32]) -> f64 {
    v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
}
