//! Trust-region machinery on flat parameter vectors: conjugate gradient and the
//! backtracking line search of TRPO (Schulman et al. 2015), as pure functions.

/// Solves `A x = b` approximately with `iters` conjugate-gradient iterations, where
/// `avp(v)` returns `A v` (A symmetric positive definite, e.g. a damped Fisher matrix).
pub fn conjugate_gradient(
    avp: impl Fn(&[f32]) -> Vec<f32>,
    b: &[f32],
    iters: usize,
    tol: f64,
) -> Vec<f32> {
    let dot = |x: &[f32], y: &[f32]| {
        x.iter()
            .zip(y)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum::<f64>()
    };
    let mut x = vec![0.0f32; b.len()];
    let mut r = b.to_vec();
    let mut p = b.to_vec();
    let mut rr = dot(&r, &r);
    for _ in 0..iters {
        if rr < tol {
            break;
        }
        let ap = avp(&p);
        let alpha = rr / dot(&p, &ap).max(1e-30);
        for i in 0..x.len() {
            x[i] += (alpha * p[i] as f64) as f32;
            r[i] -= (alpha * ap[i] as f64) as f32;
        }
        let rr_new = dot(&r, &r);
        let beta = rr_new / rr;
        for i in 0..p.len() {
            p[i] = r[i] + (beta * p[i] as f64) as f32;
        }
        rr = rr_new;
    }
    x
}

/// Outcome of [`line_search`].
#[derive(Clone, Debug, PartialEq)]
pub struct LineSearch {
    /// The accepted parameters, or the start when nothing was accepted.
    pub theta: Vec<f32>,
    /// Fraction of the full step taken (0 when rejected).
    pub fraction: f64,
    /// Objective and constraint at the returned point.
    pub objective: f64,
    /// Constraint value (KL) at the returned point.
    pub constraint: f64,
}

/// TRPO's backtracking line search: tries θ₀ + ratioʲ·step for j = 0..max_backtracks and
/// accepts the first point that improves `objective` over `f0` and keeps
/// `constraint ≤ max_constraint`. `eval(θ)` returns (objective, constraint).
pub fn line_search(
    eval: impl Fn(&[f32]) -> (f64, f64),
    theta0: &[f32],
    step: &[f32],
    f0: f64,
    max_constraint: f64,
    ratio: f64,
    max_backtracks: usize,
) -> LineSearch {
    for j in 0..max_backtracks {
        let frac = ratio.powi(j as i32);
        let theta: Vec<f32> = theta0
            .iter()
            .zip(step)
            .map(|(t, s)| t + (frac * *s as f64) as f32)
            .collect();
        let (f, c) = eval(&theta);
        if f.is_finite() && c.is_finite() && f > f0 && c <= max_constraint {
            return LineSearch {
                theta,
                fraction: frac,
                objective: f,
                constraint: c,
            };
        }
    }
    LineSearch {
        theta: theta0.to_vec(),
        fraction: 0.0,
        objective: f0,
        constraint: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conjugate_gradient_solves_a_small_spd_system() {
        // A = [[4, 1], [1, 3]], b = [1, 2] → x = [1/11, 7/11].
        let a = [[4.0f32, 1.0], [1.0, 3.0]];
        let avp = |v: &[f32]| {
            vec![
                a[0][0] * v[0] + a[0][1] * v[1],
                a[1][0] * v[0] + a[1][1] * v[1],
            ]
        };
        let x = conjugate_gradient(avp, &[1.0, 2.0], 10, 1e-20);
        assert!(
            (x[0] - 1.0 / 11.0).abs() < 1e-6 && (x[1] - 7.0 / 11.0).abs() < 1e-6,
            "{x:?}"
        );
    }

    #[test]
    fn line_search_backtracks_until_the_constraint_holds() {
        // f(θ) = θ, c(θ) = θ²; from 0 along step 1 with max c 0.1: 0.8^j ≤ √0.1 first at j = 6.
        let r = line_search(
            |t| (t[0] as f64, (t[0] as f64).powi(2)),
            &[0.0],
            &[1.0],
            0.0,
            0.1,
            0.8,
            15,
        );
        assert!((r.fraction - 0.8f64.powi(6)).abs() < 1e-12);
        assert!(r.constraint <= 0.1);
        let none = line_search(|t| (-(t[0] as f64), 0.0), &[0.0], &[1.0], 0.0, 0.1, 0.8, 15);
        assert_eq!(none.fraction, 0.0);
        assert_eq!(none.theta, vec![0.0]);
    }
}

/// Adam (Kingma & Ba 2015) on a flat parameter vector, with Burn's `AdamConfig` defaults
/// and its update written in the same f32 operations (β₁ 0.9, β₂ 0.999, ε 1e-5 added to
/// √v after scaling by √(1 − β₂ᵗ)), so a learner can move between it and Burn's optimizer
/// and stay within f32 rounding. Its state serializes to JSON for checkpoints (f32 values
/// round-trip exactly).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FlatAdam {
    /// Steps taken.
    pub time: i32,
    /// First moment.
    pub m: Vec<f32>,
    /// Second moment.
    pub v: Vec<f32>,
}

impl FlatAdam {
    /// β₁.
    pub const BETA_1: f32 = 0.9;
    /// β₂.
    pub const BETA_2: f32 = 0.999;
    /// ε.
    pub const EPSILON: f32 = 1e-5;

    /// One step that descends along `grad`: θ ← θ − lr · m̂ / (√v̂ + ε).
    pub fn step(&mut self, lr: f64, theta: &mut [f32], grad: &[f32]) {
        assert_eq!(theta.len(), grad.len(), "one gradient entry per parameter");
        if self.time == 0 {
            self.m = vec![0.0; grad.len()];
            self.v = vec![0.0; grad.len()];
        }
        assert_eq!(
            self.m.len(),
            grad.len(),
            "Adam state for another parameter count"
        );
        self.time += 1;
        let (b1, b2) = (Self::BETA_1, Self::BETA_2);
        let bc2 = (1.0 - b2.powi(self.time)).sqrt();
        let factor = bc2 / (1.0 - b1.powi(self.time));
        let (eps, lr) = (Self::EPSILON * bc2, lr as f32);
        for (((t, g), m), v) in theta.iter_mut().zip(grad).zip(&mut self.m).zip(&mut self.v) {
            *m = *m * b1 + *g * (1.0 - b1);
            *v = *v * b2 + (*g * *g) * (1.0 - b2);
            *t -= (*m * factor) / (v.sqrt() + eps) * lr;
        }
    }

    /// The state as checkpoint bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("Adam state serializes")
    }

    /// The state from [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> crate::error::Result<Self> {
        serde_json::from_slice(bytes)
            .map_err(|e| crate::error::Error::Other(format!("Adam state: {e}")))
    }
}
