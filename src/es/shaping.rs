//! Fitness shaping: transforms applied to the f-values before an ES estimate is formed.

use serde::{Deserialize, Serialize};

/// How f-values are transformed before they enter an ES gradient.
///
/// The transform is applied jointly to every value of one estimate, including the
/// centre value `f(θ)` of forward-FD (as ES-MAML's `MCBlackboxOptimizer` does).
/// Any shaping other than [`FitnessShaping::Raw`] **rescales the estimate**: it no longer
/// estimates `∇f_σ(θ)` but (approximately) `∇f_σ(θ) / std(f)` for `Standardize`, and a
/// rank-based surrogate for `CenteredRanks`. The direction is what matters for an
/// ascent step; the step size then acts in normalized units.
///
/// `bool` converts for convenience: `false` → `Raw`, `true` → `Standardize`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FitnessShaping {
    /// Use the f-values as they are (Algorithm 1).
    #[default]
    Raw,
    /// `(f − mean) / std` over the values of the estimate ([`standardize`]); ES-MAML's
    /// `fvalues_normalization = True` (its default, meta and adaptation steps).
    Standardize,
    /// Centered ranks in `[−0.5, 0.5]` ([`centered_ranks`], Salimans et al. 2017).
    CenteredRanks,
}

impl From<bool> for FitnessShaping {
    fn from(normalize: bool) -> Self {
        if normalize {
            FitnessShaping::Standardize
        } else {
            FitnessShaping::Raw
        }
    }
}

impl FitnessShaping {
    /// Applies the transform to all `values` at once.
    pub fn apply(self, values: &[f64]) -> Vec<f64> {
        match self {
            FitnessShaping::Raw => values.to_vec(),
            FitnessShaping::Standardize => standardize(values),
            FitnessShaping::CenteredRanks => centered_ranks(values),
        }
    }
}

/// Standardized values `(f_i − μ) / s` with `μ = (1/m) Σ f_i` and the population standard
/// deviation `s = √((1/m) Σ (f_i − μ)²)` (numpy's `np.std`, as in ES-MAML).
///
/// When `s = 0` (all values equal; also `m = 1`) every centred value is 0 and so is the
/// result: an estimate built from it is the zero vector, like ES-MAML's adapter, which
/// returns θ unchanged in that case. Subtracting μ acts as a baseline: it makes the MC
/// estimator translation-invariant, at an `O(1/m)` bias because μ includes each `f_i`.
pub fn standardize(values: &[f64]) -> Vec<f64> {
    if values.is_empty() {
        return Vec::new();
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let std = spread(values);
    values
        .iter()
        .map(|v| if std > 0.0 { (v - mean) / std } else { 0.0 })
        .collect()
}

/// The population standard deviation of `values` (0 when empty or all equal).
pub fn spread(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let m = values.len() as f64;
    let mean = values.iter().sum::<f64>() / m;
    (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / m).sqrt()
}

/// Centered ranks (Salimans et al. 2017, `compute_centered_ranks`):
///
/// ```text
/// u_i = rank(f_i) / (m − 1) − 1/2 ∈ [−1/2, 1/2],   rank ∈ {0, …, m − 1}, smallest = 0
/// ```
///
/// Ties get the average of their ranks (Salimans' argsort breaks them by position), so
/// the result does not depend on the order of equal values. `m = 1` gives `[0]`.
/// Invariant under any strictly increasing transform of the values.
pub fn centered_ranks(values: &[f64]) -> Vec<f64> {
    let m = values.len();
    if m <= 1 {
        return vec![0.0; m];
    }
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0f64; m];
    let mut start = 0;
    while start < m {
        let mut end = start + 1;
        while end < m && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let average = (start + end - 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = average;
        }
        start = end;
    }
    ranks.iter().map(|r| r / (m - 1) as f64 - 0.5).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centered_ranks_span_minus_half_to_half_and_average_ties() {
        assert_eq!(centered_ranks(&[3.0, 1.0, 2.0]), vec![0.5, -0.5, 0.0]);
        // Ranks 0, (1+2)/2, (1+2)/2, 3 over m − 1 = 3.
        assert_eq!(
            centered_ranks(&[0.0, 5.0, 5.0, 9.0]),
            vec![-0.5, 0.0, 0.0, 0.5]
        );
        assert_eq!(centered_ranks(&[7.0]), vec![0.0]);
    }

    #[test]
    fn centered_ranks_are_invariant_to_increasing_transforms() {
        let v = [0.3, -2.0, 8.0, 1.5, 0.0];
        let w: Vec<f64> = v.iter().map(|x: &f64| x.exp() * 10.0 - 4.0).collect();
        assert_eq!(centered_ranks(&v), centered_ranks(&w));
    }

    #[test]
    fn spread_is_the_population_standard_deviation() {
        assert_eq!(spread(&[1.0, 3.0]), 1.0);
        assert_eq!(spread(&[2.0, 2.0, 2.0]), 0.0);
        assert_eq!(spread(&[]), 0.0);
        assert!((spread(&[0.0, 0.0, 3.0]) - 2f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn standardize_gives_zero_mean_unit_population_std_and_zeros_when_constant() {
        let z = standardize(&[1.0, 2.0, 3.0, 6.0]);
        let mean = z.iter().sum::<f64>() / 4.0;
        let var = z.iter().map(|x| x * x).sum::<f64>() / 4.0;
        assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12);
        assert_eq!(standardize(&[4.0, 4.0, 4.0]), vec![0.0; 3]);
    }

    #[test]
    fn bool_converts_to_raw_or_standardize() {
        assert_eq!(FitnessShaping::from(false), FitnessShaping::Raw);
        assert_eq!(FitnessShaping::from(true), FitnessShaping::Standardize);
    }
}
