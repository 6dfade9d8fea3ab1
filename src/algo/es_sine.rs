//! ES-MAML on supervised sine regression (Song et al. 2020, Appendix A.6): the ES outer
//! loop of Algorithm 2 with the exact gradient step as adaptation operator, and
//! first-order ES-MAML (Algorithm 5) with its gradients and Hessian-vector product
//! computed exactly through the functional MLP.
//!
//! ```text
//! f^T(θ) = −L_query(θ)              U(θ, T) = θ − α ∇L_support(θ)   (operator "gradient")
//! zero order:   θ ← θ + β ĝ,  ĝ = ESGRAD over i of f^{T_i}(U(θ + σ g_i, T_i))   (Adam on ĝ)
//! first order:  d1 = −∇L(θ);  θ' = θ + α d1;  d2 = −∇L(θ');  dir = d2 + α H d2  (H = −∇²L(θ))
//!               θ ← θ + β (1/n) Σ_i dir_i                                   (Adam)
//! ```
//!
//! In first order every quantity is exact (H d2 is a Hessian-vector product: autodiff of
//! the explicit gradient's inner product with d2, never a dense Hessian), which makes this
//! the reference against which the ES estimates of Algorithm 5 can be compared
//! ([`fo_direction`] and [`crate::es::es_hessian_vector_product`]).

use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::prelude::*;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{load_module, load_optimizer, module_bytes, optimizer_bytes};
use crate::env::sine::SineDistribution;
use crate::error::{Error, Result};
use crate::es::{es_gradient, EsEstimator, Order};
use crate::learner::{Checkpoint, Evaluation, MetaLearner, Metrics, Phases};
use crate::nn::functional::{backward, forward, mse_and_grad, predict, MlpParams};
use crate::nn::{to_vec, Activation, Init, Mlp};
use crate::params::{ascend, flatten};
use crate::rng::{substream, Rng};
use crate::supervised::{adapt, sine_evaluation, Hessian, SineBatch};

/// Hyperparameters of ES-MAML on sine regression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EsSineConfig {
    /// Zero order (ES outer loop, exact adaptation) or first order (exact Algorithm 5).
    pub order: Order,
    /// Outer ES estimator (zero order).
    pub estimator: EsEstimator,
    /// Perturbations per iteration (zero order) or tasks per iteration (first order).
    pub perturbations: usize,
    /// ES precision σ.
    pub sigma: f32,
    /// Adam step size on the meta-direction.
    pub meta_lr: f64,
    /// Adaptation step size α (Finn: 0.01).
    pub alpha: f64,
    /// Support (and query) points K.
    pub shots: usize,
    /// First order: include the Hessian term α H d2.
    pub hessian: bool,
    /// Standardize f-values in the ES estimate.
    pub normalize_rewards: bool,
    /// Hidden sizes of the 1 → … → 1 network (Finn: [40, 40]).
    pub hidden: Vec<usize>,
}

impl Default for EsSineConfig {
    fn default() -> Self {
        Self {
            order: Order::Zero,
            estimator: EsEstimator::Antithetic,
            perturbations: 100,
            sigma: 0.01,
            meta_lr: 1e-3,
            alpha: 0.01,
            shots: 10,
            hessian: true,
            normalize_rewards: true,
            hidden: vec![40, 40],
        }
    }
}

impl EsSineConfig {
    /// Validates every field.
    pub fn validate(&self) -> Result<()> {
        if self.perturbations == 0 || self.shots == 0 {
            return Err(Error::invalid("sine.perturbations / sine.shots", 0, "≥ 1"));
        }
        if !(self.sigma > 0.0 && self.meta_lr > 0.0 && self.alpha >= 0.0) {
            return Err(Error::invalid(
                "sine.sigma / meta_lr / alpha",
                format!("{} / {} / {}", self.sigma, self.meta_lr, self.alpha),
                "σ > 0, β > 0, α ≥ 0",
            ));
        }
        Ok(())
    }

    fn sizes(&self) -> Vec<usize> {
        std::iter::once(1)
            .chain(self.hidden.iter().copied())
            .chain(std::iter::once(1))
            .collect()
    }
}

/// f^T(U(θ, T)) = −L_query(θ − α ∇L_support(θ)) on one task drawn from `rng` (plain tensors).
pub fn post_adaptation_value(
    theta: &[f32],
    cfg: &EsSineConfig,
    rng: &mut Rng,
    device: &Device,
) -> f64 {
    let dist = SineDistribution::default();
    let task = dist.sample_task(rng);
    let b = SineBatch::sample(&dist, &[task], cfg.shots, rng, device);
    let p = MlpParams::from_flat(theta, &cfg.sizes(), Activation::Relu, device, false);
    let (adapted, _) = adapt(&p, &b, cfg.alpha, 1, Hessian::None);
    -(to_vec(mse_and_grad(predict(&adapted, b.xq), b.yq).0)[0] as f64)
}

/// Exact first-order ES-MAML direction on one task batch: returns (d2 + α H d2 or d2, d1,
/// H d2), all with f = −L. The adaptation step reads the support points and the adapted
/// parameters are scored on the query points, as in the zero-order objective
/// ([`post_adaptation_value`]):
///
/// ```text
/// d1 = −∇L_support(θ)        θ' = θ + α d1
/// d2 = −∇L_query(θ')         H  = −∇²L_support(θ)      (the Jacobian of θ' is I + αH)
/// ```
///
/// With the Hessian term this is the exact gradient of −L_query(θ + α d1(θ)).
pub fn fo_direction(
    theta: &[f32],
    b: &SineBatch,
    cfg: &EsSineConfig,
    device: &Device,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let sizes = cfg.sizes();
    let grad_at = |th: &[f32], x: &Tensor<3>, y: &Tensor<3>| -> Vec<f32> {
        let p = MlpParams::from_flat(th, &sizes, Activation::Relu, device, false);
        let (out, cache) = forward(&p, x.clone());
        let (_, dy) = mse_and_grad(out, y.clone());
        backward(&p, &cache, dy)
            .to_flat()
            .iter()
            .map(|g| -g)
            .collect()
    };
    let d1 = grad_at(theta, &b.xs, &b.ys);
    let adapted: Vec<f32> = theta
        .iter()
        .zip(&d1)
        .map(|(t, g)| t + cfg.alpha as f32 * g)
        .collect();
    let d2 = grad_at(&adapted, &b.xq, &b.yq);
    let hd2 = hessian_vector(theta, &d2, b, &sizes, device);
    let dir = if cfg.hessian {
        d2.iter()
            .zip(&hd2)
            .map(|(a, h)| a + cfg.alpha as f32 * h)
            .collect()
    } else {
        d2.clone()
    };
    (dir, d1, hd2)
}

/// Exact H v with H = ∇²f = −∇²L_support(θ): autodiff of ⟨∇L(θ), v⟩ where ∇L is the
/// explicit functional gradient (differentiable tensor ops). `device` must support autodiff.
pub fn hessian_vector(
    theta: &[f32],
    v: &[f32],
    b: &SineBatch,
    sizes: &[usize],
    device: &Device,
) -> Vec<f32> {
    let ad = device.clone().autodiff();
    let p = MlpParams::from_flat(theta, sizes, Activation::Relu, &ad, true);
    let c = |t: &Tensor<3>| Tensor::<3>::from_data(t.to_data(), &ad);
    let (y, cache) = forward(&p, c(&b.xs));
    let (_, dy) = mse_and_grad(y, c(&b.ys));
    let g = backward(&p, &cache, dy);
    let vp = MlpParams::from_flat(v, sizes, Activation::Relu, &ad, false);
    let dot =
        g.w.iter()
            .zip(&vp.w)
            .chain(g.b.iter().zip(&vp.b))
            .map(|(a, b)| (a.clone() * b.clone()).sum())
            .reduce(|x, y| x + y)
            .expect("at least one layer");
    let grads = dot.backward();
    let mut out = Vec::with_capacity(theta.len());
    for (w, bb) in p.w.iter().zip(&p.b) {
        out.extend(
            to_vec(w.grad(&grads).expect("w is a leaf"))
                .iter()
                .map(|x| -x),
        );
        out.extend(
            to_vec(bb.grad(&grads).expect("b is a leaf"))
                .iter()
                .map(|x| -x),
        );
    }
    out
}

/// The ES-MAML sine learner: θ as a Burn module updated by Adam with the ES (or exact
/// first-order) direction.
pub struct EsSine {
    /// Hyperparameters.
    pub cfg: EsSineConfig,
    /// θ (autodiff device: the optimizer's parameter store).
    pub model: Mlp,
    optim: ModuleOptimizer,
    seed: u64,
    device: Device,
}

impl EsSine {
    /// A learner with Xavier-initialized θ from `init_rng`; `device` must be an autodiff device.
    pub fn new(cfg: EsSineConfig, seed: u64, init_rng: &mut Rng, device: &Device) -> Self {
        let model = Mlp::new(
            1,
            &cfg.hidden,
            1,
            Activation::Relu,
            Init::XavierUniform,
            init_rng,
            device,
        );
        Self {
            cfg,
            model,
            optim: AdamConfig::new().init(),
            seed,
            device: device.clone(),
        }
    }

    /// θ as a flat vector.
    pub fn theta(&self) -> Vec<f32> {
        flatten(&self.model)
    }
}

impl MetaLearner for EsSine {
    fn step(&mut self, iteration: usize, _phases: &mut Phases) -> Result<Metrics> {
        let cfg = self.cfg.clone();
        let theta = self.theta();
        let plain = self.device.clone().inner();
        let seed = substream(self.seed, "es-sine-iteration", iteration as u64).next_u64();
        let (dir, value) = match cfg.order {
            Order::Zero => {
                let f = |th: &[f32], r: &mut Rng| post_adaptation_value(th, &cfg, r, &plain);
                let est = es_gradient(
                    &f,
                    &theta,
                    cfg.sigma,
                    cfg.perturbations,
                    cfg.estimator,
                    seed,
                    cfg.normalize_rewards,
                );
                let v = est.mean_value();
                (est.grad, v)
            }
            Order::First => {
                let dist = SineDistribution::default();
                let mut r = substream(seed, "es-sine-tasks", 0);
                let tasks: Vec<_> = (0..cfg.perturbations)
                    .map(|_| dist.sample_task(&mut r))
                    .collect();
                let mut acc = vec![0.0f32; theta.len()];
                for t in &tasks {
                    let b = SineBatch::sample(
                        &dist,
                        std::slice::from_ref(t),
                        cfg.shots,
                        &mut r,
                        &plain,
                    );
                    let (d, _, _) = fo_direction(&theta, &b, &cfg, &plain);
                    acc.iter_mut()
                        .zip(&d)
                        .for_each(|(a, x)| *a += x / tasks.len() as f32);
                }
                let mut r = substream(seed, "es-sine-value", 0);
                let v = (0..10)
                    .map(|_| post_adaptation_value(&theta, &cfg, &mut r, &plain))
                    .sum::<f64>()
                    / 10.0;
                (acc, v)
            }
        };
        let norm = crate::params::norm(&dir);
        let model = self.model.clone();
        self.model = ascend(&mut self.optim, cfg.meta_lr, model, &dir, &self.device);
        Ok(Metrics::new()
            .with("post_mse", -value)
            .with("grad_norm", norm))
    }

    fn parameters_finite(&self) -> bool {
        self.theta().iter().all(|x| x.is_finite())
    }

    fn checkpoint(&self) -> Result<Checkpoint> {
        Ok(Checkpoint::default()
            .with_file("model.bpk", module_bytes(&self.model)?)
            .with_file("adam.bpk", optimizer_bytes(&self.optim)?))
    }

    fn restore(&mut self, ck: &Checkpoint) -> Result<()> {
        self.model = load_module(self.model.clone(), ck.file("model.bpk")?)?;
        self.optim = load_optimizer(AdamConfig::new().init(), ck.file("adam.bpk")?)?;
        Ok(())
    }

    /// Finn's protocol ([`sine_evaluation`]) after 0…10 exact gradient steps of size α, as
    /// `sine-maml` evaluates (at least two tasks, for a confidence interval).
    fn evaluate(&self, tasks: usize) -> Result<Evaluation> {
        Ok(sine_evaluation(
            &self.model.valid(),
            tasks.max(2),
            self.cfg.shots,
            self.cfg.alpha,
            10,
        ))
    }
}
