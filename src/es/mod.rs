//! Evolution-strategies math on flat parameter vectors: ES gradients, the ES Hessian and
//! the adaptation operators of ES-MAML.
//!
//! Reference: X. Song, W. Gao, Y. Yang, K. Choromanski, A. Pacchiano, Y. Tang,
//! *ES-MAML: Simple Hessian-Free Meta Learning*, ICLR 2020 (arXiv:1910.01215);
//! code: `google-research/es_maml`. Also T. Salimans et al., *Evolution Strategies as a
//! Scalable Alternative to Reinforcement Learning*, 2017 (per-perturbation seeds,
//! centered ranks), and Y. Nesterov, V. Spokoiny, *Random Gradient-Free Minimization
//! of Convex Functions*, 2017 (Gaussian smoothing).
//!
//! Everything here maximizes a black box `f : ℝ^d → ℝ` through its Gaussian smoothing
//!
//! ```text
//! f_σ(θ)    = E_{g ~ N(0, I_d)} [ f(θ + σg) ]
//! ∇f_σ(θ)   = E[ f(θ + σg) g ] / σ                          (ES-MAML eq. 4)
//! ∇²f_σ(θ)  = ( E[ f(θ + σg) g gᵀ ] − f_σ(θ) I ) / σ²        (ES-MAML eq. 10)
//! ```
//!
//! | paper | here |
//! |---|---|
//! | Algorithm 1 `ESGrad` (+ forward-FD, antithetic, §3.1) | [`es_gradient`], [`EsEstimator`] |
//! | Algorithm 3 line 4–5, inner ES step `θ + α·ESGrad` | [`es_grad_step`] |
//! | Algorithm 4 `ESHess` | [`es_hessian`], [`es_hessian_vector_product`] |
//! | Algorithm 5 line 9, `(I + αH) d₂` | [`first_order_meta_direction`] |
//! | §3.3.1 DPP-ES perturbations (`dpp_rho` = 5) | [`dpp_perturbations`], [`log_det_rbf`] |
//! | §3.3.2 hill climbing | [`hill_climb`] |
//! | fitness normalization (`fvalues_normalization`) | [`FitnessShaping`], [`centered_ranks`] |
//! | Shen et al. eqs. 8–10: learned N(μ, σ²), K draws per fitness | [`distribution`] |
//!
//! # Conventions
//!
//! * The objective is any [`Objective`]: every `Fn(&[f32], &mut Rng) -> f64 + Sync` (a
//!   `&dyn Fn` works as well), or a type that also evaluates batches of points at once. It
//!   is **maximized**, and the [`Rng`](crate::rng::Rng) it receives lets a stochastic
//!   evaluation (a rollout, a sampled task) draw its own noise.
//! * Randomness is addressed, not consumed: perturbation `i` of seed `s` is drawn from
//!   `rng::substream(s, PERTURBATION_STREAM, i)` and evaluation `i` receives
//!   `rng::substream(s, EVALUATION_STREAM, i)` (see [`noise`]). Results therefore do not
//!   depend on the rayon thread count or on evaluation order. Callers must pass a fresh
//!   seed per call (e.g. one [`crate::rng::next_seed`] per iteration): the same seed
//!   gives the same perturbations.
//! * Vectors are `f32` (parameters); sums, f-values and matrix entries are `f64`.
//! * Shape errors and non-positive `σ` are caller bugs and panic; configs are validated
//!   before they reach this layer.

pub mod adapt;
pub mod distribution;
pub mod dpp;
pub mod estimators;
pub mod hessian;
pub mod noise;
pub mod objective;
pub mod shaping;

pub use adapt::{es_grad_step, hill_climb, hill_climb_lockstep, EsGradStep, HillClimb};
pub use dpp::{dpp_greedy_map, dpp_perturbations, log_det_rbf, rbf_kernel};
pub use estimators::{
    es_gradient, es_gradient_from_values, es_gradient_lockstep, es_gradient_on,
    es_gradient_with_perturbations, EsEstimator, EsGradient, GradientProblem,
};
pub use hessian::{
    es_hessian, es_hessian_from_values, es_hessian_vector_product, es_hvp_from_values,
    first_order_meta_direction,
};
pub use noise::{
    evaluation_rng, gaussian_perturbation, gaussian_perturbations, lazy_evaluation_rng,
};
pub use objective::Objective;
pub use shaping::{centered_ranks, spread, standardize, FitnessShaping};

#[cfg(test)]
pub(crate) mod testing {
    //! Shared test objectives with closed-form smoothed gradient and Hessian.

    use rand_distr::{Distribution, StandardNormal};

    use crate::rng::{LazyRng, Rng};

    /// Centre of the test quadratic.
    pub const C: [f32; 5] = [0.5, -1.0, 0.25, 2.0, -0.75];

    /// `f(θ) = −‖θ − c‖²`: `∇f_σ(θ) = −2(θ − c)` and `∇²f_σ = −2I` exactly for every σ,
    /// because `f_σ(θ) = −‖θ − c‖² − σ²d` differs from `f` by a constant.
    pub fn neg_sq_dist(theta: &[f32], c: &[f32]) -> f64 {
        -theta
            .iter()
            .zip(c)
            .map(|(&t, &ci)| {
                let e = f64::from(t) - f64::from(ci);
                e * e
            })
            .sum::<f64>()
    }

    /// The quadratic on the first `theta.len()` entries of [`C`], ignoring the rng.
    pub fn quadratic(theta: &[f32], _rng: &mut Rng) -> f64 {
        neg_sq_dist(theta, &C[..theta.len()])
    }

    /// [`quadratic`] plus `shift` and N(0, 0.3²) noise from the evaluation's generator:
    /// distinct stochastic objectives for the lock-step tests.
    pub fn noisy_quadratic(shift: f64) -> impl Fn(&[f32], &mut Rng) -> f64 {
        move |x, rng| {
            let eps: f64 = StandardNormal.sample(rng);
            quadratic(x, rng) + shift + 0.3 * eps
        }
    }

    /// A lock-step `eval`'s values when problem `p` is `noisy_quadratic(shifts[p])`:
    /// `points[i]` belongs to problem `owners[i]` and draws from `rngs[i]`.
    pub fn noisy_quadratics(
        shifts: &[f64],
        owners: &[usize],
        points: &[&[f32]],
        rngs: &mut [LazyRng],
    ) -> Vec<f64> {
        owners
            .iter()
            .zip(points)
            .zip(rngs)
            .map(|((&p, x), r)| noisy_quadratic(shifts[p])(x, r.get()))
            .collect()
    }
}

/// Zero-order (Algorithm 2/3) or first-order (Algorithm 5) ES-MAML (shared by the RL and the sine learners).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    /// Zero order: ES over f(U(θ)).
    Zero,
    /// First order with ES gradients (and optionally the ES Hessian).
    First,
}
