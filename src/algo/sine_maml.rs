//! Supervised MAML on sine regression, with exact second-order meta-gradients.
//!
//! Reference: Finn, Abbeel, Levine, "Model-Agnostic Meta-Learning for Fast Adaptation of
//! Deep Networks", ICML 2017, Algorithm 2 and §5.1 (sine regression); ES-MAML paper
//! (Song et al. 2020) Appendix A.6 uses the same task.
//!
//! ```text
//! Require: p(T) over sine tasks; step sizes α (inner), β (outer)
//! randomly initialize θ
//! while not done:
//!     sample a batch of M tasks T_i ~ p(T), each with K support and K query points
//!     for all T_i:                                    (batched: one [M, K, ·] tensor)
//!         θ'_i ← θ;  repeat n times: θ'_i ← θ'_i − α ∇ L_support,i(θ'_i)
//!     θ ← θ − β ∇_θ Σ_i L_query,i(θ'_i)               (Adam, β = 1e-3)
//! ```
//!
//! The inner gradient ∇L_support is written as explicit tensor ops
//! ([`crate::nn::functional`]), so autodiff of the outer loss differentiates through it:
//! with `hessian = full` the meta-gradient is exact (Hessian-vector terms included); with
//! `hessian = none` the inner gradients are detached, which is first-order MAML: the
//! meta-gradient is ∇L_query evaluated at θ'_i.
//!
//! On Flex (the CPU backend) the learner computes the same meta-gradient with the
//! hand-written kernels of [`crate::nn::dense`] ([`meta_gradient_host`]: forward, backward
//! and a Hessian-vector product per task, no tensor graph), which is what makes the tiny
//! 10 × 40 matrices of this task fast; other backends take the tensor route above
//! ([`meta_objective`]). Both are tested against finite differences and against each
//! other.
//!
//! Deviations from Finn's code: the outer loss is the mean (not the sum) over tasks, which
//! only rescales Adam's input; weights start Xavier-uniform rather than N(0, 0.01²)
//! truncated (configurable); evaluation uses a fixed held-out set of 600 tasks as in his
//! `test()`, drawn from our own named stream.

use burn::optim::GradientsParams;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{load_module, module_bytes};
use crate::env::sine::{SineDistribution, SineTask};
use crate::error::{Error, Result};
use crate::learner::{Checkpoint, Evaluation, MetaLearner, Metrics, Phases};
use crate::nn::dense::Dense;
use crate::nn::functional::{mse_and_grad, predict, MlpParams};
use crate::nn::{to_vec, Activation, Init, Mlp};
use crate::optim::FlatAdam;
use crate::params::{flatten, flatten_gradients, unflatten};
use crate::rng::Rng;
pub use crate::supervised::{
    adapt, meta_gradient_host, mse_curve, sine_evaluation, Hessian, HostScratch, SineBatch,
    SinePoints,
};

/// Hyperparameters of sine MAML; defaults are Finn et al.'s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SineMamlConfig {
    /// Hidden layer sizes (Finn: [40, 40]).
    pub hidden: Vec<usize>,
    /// Hidden nonlinearity (Finn: relu).
    pub activation: Activation,
    /// Inner SGD step size α (Finn's paper: 0.01).
    pub inner_lr: f64,
    /// Inner gradient steps during meta-training (Finn: 1).
    pub inner_steps: usize,
    /// Support points K per task, and as many query points (Finn: 10).
    pub shots: usize,
    /// Tasks per meta-batch M (Finn: 25).
    pub meta_batch: usize,
    /// Adam step size β (Finn: 1e-3).
    pub meta_lr: f64,
    /// Second-order (full) or first-order (none) meta-gradient.
    pub hessian: Hessian,
    /// Weight initialisation, biases zero. Default Xavier uniform; Finn's code draws a
    /// truncated normal with σ = 0.01 (`{ kind = "truncated-normal", std = 0.01 }`), which
    /// trains markedly slower in the first thousands of iterations (experiments/README.md).
    pub init: Init,
}

impl Default for SineMamlConfig {
    fn default() -> Self {
        Self {
            hidden: vec![40, 40],
            activation: Activation::Relu,
            inner_lr: 0.01,
            inner_steps: 1,
            shots: 10,
            meta_batch: 25,
            meta_lr: 1e-3,
            hessian: Hessian::Full,
            init: Init::XavierUniform,
        }
    }
}

impl SineMamlConfig {
    /// Checks every field once; the error names the field, the value and what is allowed.
    pub fn validate(&self) -> Result<()> {
        let pos = |f: &str, v: usize| {
            if v == 0 {
                Err(Error::invalid(f, v, "≥ 1"))
            } else {
                Ok(())
            }
        };
        pos("shots", self.shots)?;
        pos("meta_batch", self.meta_batch)?;
        pos("inner_steps", self.inner_steps)?;
        if self.hidden.is_empty() || self.hidden.contains(&0) {
            return Err(Error::invalid(
                "hidden",
                format!("{:?}", self.hidden),
                "one or more sizes ≥ 1",
            ));
        }
        if !(self.inner_lr.is_finite() && self.inner_lr >= 0.0) {
            return Err(Error::invalid(
                "inner_lr",
                self.inner_lr,
                "a finite number ≥ 0",
            ));
        }
        if !(self.meta_lr.is_finite() && self.meta_lr > 0.0) {
            return Err(Error::invalid(
                "meta_lr",
                self.meta_lr,
                "a finite number > 0",
            ));
        }
        Ok(())
    }

    /// The network 1 → hidden → 1, weights drawn by `init`.
    pub fn init_model(&self, rng: &mut Rng, device: &Device) -> Mlp {
        Mlp::new(1, &self.hidden, 1, self.activation, self.init, rng, device)
    }

    /// The same network's shape for the host kernels ([`crate::nn::dense`]).
    pub fn dense(&self) -> Dense {
        let mut sizes = vec![1];
        sizes.extend(&self.hidden);
        sizes.push(1);
        Dense::new(sizes, self.activation)
    }
}

/// The MAML meta-objective (1/M) Σ_i L_query,i(U(θ, T_i)) and the mean pre-adaptation
/// support loss, both one-element tensors.
pub fn meta_objective(
    theta: &MlpParams,
    b: &SineBatch,
    cfg: &SineMamlConfig,
) -> (Tensor<1>, Tensor<1>) {
    let (adapted, pre) = adapt(theta, b, cfg.inner_lr, cfg.inner_steps, cfg.hessian);
    let (post, _) = mse_and_grad(predict(&adapted, b.xq.clone()), b.yq.clone());
    (post.mean(), pre.mean())
}

/// The sine-MAML learner: meta-parameters, Adam state and the task stream.
pub struct SineMaml {
    /// Hyperparameters.
    pub cfg: SineMamlConfig,
    /// Inner steps of the held-out evaluation (Finn: 10).
    pub eval_steps: usize,
    /// Meta-parameters θ, flat ([`crate::params::flatten`] order).
    theta: Vec<f32>,
    /// The network θ belongs to (its values are not θ's; see [`SineMaml::model`]).
    template: Mlp,
    optim: FlatAdam,
    dist: SineDistribution,
    tasks_rng: Rng,
    device: Device,
    /// The network's shape and buffers when the meta-gradient runs on the host kernels
    /// (on Flex).
    host: Option<(Dense, HostScratch)>,
}

impl SineMaml {
    /// A learner with θ drawn from `init_rng` and tasks from `tasks_rng`; `device` must be
    /// an autodiff device.
    pub fn new(cfg: SineMamlConfig, init_rng: &mut Rng, tasks_rng: Rng, device: &Device) -> Self {
        let template = cfg.init_model(init_rng, device);
        Self {
            theta: flatten(&template),
            template,
            host: crate::nn::fused::is_flex(device).then(|| (cfg.dense(), HostScratch::default())),
            cfg,
            eval_steps: 10,
            optim: FlatAdam::default(),
            dist: SineDistribution::default(),
            tasks_rng,
            device: device.clone(),
        }
    }

    /// The meta-parameters θ as a network (on the learner's autodiff device).
    pub fn model(&self) -> Mlp {
        unflatten(self.template.clone(), &self.theta)
    }
}

impl MetaLearner for SineMaml {
    fn step(&mut self, _iteration: usize, _phases: &mut Phases) -> Result<Metrics> {
        let tasks: Vec<SineTask> = (0..self.cfg.meta_batch)
            .map(|_| self.dist.sample_task(&mut self.tasks_rng))
            .collect();
        let points = SinePoints::sample(&self.dist, &tasks, self.cfg.shots, &mut self.tasks_rng);
        let c = &self.cfg;
        let (post, pre, grad) = match &mut self.host {
            Some((net, scratch)) => {
                let cfg = (c.inner_lr, c.inner_steps, c.hessian);
                meta_gradient_host(net, &self.theta, &points, cfg, scratch)
            }
            None => {
                let model = unflatten(self.template.clone(), &self.theta);
                let batch = points.to_batch(&self.device);
                let (post, pre) = meta_objective(&MlpParams::from_mlp(&model), &batch, c);
                let (post_v, pre_v) = (to_vec(post.clone())[0] as f64, to_vec(pre)[0] as f64);
                let grads = GradientsParams::from_grads(post.backward(), &model);
                (post_v, pre_v, flatten_gradients(&model, &grads))
            }
        };
        let norm = crate::params::norm(&grad);
        self.optim.step(c.meta_lr, &mut self.theta, &grad);
        Ok(Metrics::new()
            .with("pre_mse", pre)
            .with("post_mse", post)
            .with("grad_norm", norm))
    }

    fn parameters_finite(&self) -> bool {
        self.theta.iter().all(|x| x.is_finite())
    }

    fn checkpoint(&self) -> Result<Checkpoint> {
        Ok(Checkpoint::default()
            .with_file("model.bpk", module_bytes(&self.model())?)
            .with_file("adam.json", self.optim.to_bytes())
            .with_rng("tasks", &self.tasks_rng))
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        self.theta = flatten(&load_module(self.template.clone(), ck.file("model.bpk")?)?);
        self.optim = FlatAdam::from_bytes(ck.file("adam.json")?)?;
        self.tasks_rng = ck.rng("tasks")?;
        Ok(())
    }

    /// Finn's protocol ([`sine_evaluation`]) after [`SineMaml::eval_steps`] inner steps.
    fn evaluate(&self, tasks: usize) -> Result<Evaluation> {
        Ok(sine_evaluation(
            &self.model().valid(),
            tasks,
            self.cfg.shots,
            self.cfg.inner_lr,
            self.eval_steps,
        ))
    }
}
