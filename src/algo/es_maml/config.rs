//! ES-MAML's settings: the adaptation operator, the policy and the hyperparameters.

use super::*;

/// The adaptation operator U(θ, T).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Operator {
    /// θ + α · ES gradient from K queries.
    EsGrad,
    /// K accept-if-better perturbations.
    HillClimb,
    /// θ + α · ES gradient over K DPP-selected directions.
    Dpp,
}

/// Linear or one-or-more-hidden-layer deterministic policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// No hidden layer, tanh output (ES-MAML's default).
    Linear,
    /// Hidden layers of `hidden` units, tanh.
    Mlp,
}

/// How first order's ES Hessian (Algorithm 4) weighs its K queries' values f(θ + σg_i).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum HessianValues {
    /// Ours (default): standardized with reward normalization, mean-centred without it —
    /// a control variate that puts Ĥ in the units of the normalized gradients.
    #[default]
    Shaped,
    /// The returns divided by their standard deviation, not centred: the paper's
    /// Algorithm 4 with A.7.1's reward normalization (Mania et al.'s, which scales by the
    /// returns' spread) and no control variate.
    Scaled,
    /// The raw returns, as the paper's Algorithm 4 is written: Ĥ = (H⁰ − v·I)/σ² with
    /// H⁰ = (1/K) Σ f_i g_i g_iᵀ and v = (1/K) Σ f_i, no control variate.
    Raw,
}

/// What the adaptation budget `queries` (K) counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum QueryCount {
    /// K directions or proposals (default, ES-MAML's code `num_queries`): forward-FD and
    /// hill climbing evaluate K + 1 points (the start too), antithetic 2K, Monte Carlo K.
    #[default]
    Directions,
    /// K evaluations in all, the paper's count of queries (§4, "the number K of queries
    /// used"): forward-FD and hill climbing spend one on the start and K − 1 on
    /// directions, antithetic K/2 pairs, Monte Carlo K.
    Evaluations,
}

/// ES-MAML hyperparameters (paper A.7.2 and mission-anchors §3.4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EsMamlConfig {
    /// Zero or first order.
    pub order: Order,
    /// Adaptation operator (zero order).
    pub operator: Operator,
    /// Outer ES estimator (forward-fd in the paper's table).
    pub estimator: EsEstimator,
    /// Estimator inside the ES-gradient and DPP operators, and of first order's d1, d2.
    pub adapt_estimator: EsEstimator,
    /// First order: include the ES Hessian term (FO-Hessian) or not (FO-NoHessian).
    pub hessian: bool,
    /// First order with the Hessian: the values Algorithm 4 weighs (`shaped`, ours, or
    /// `raw`, the paper's).
    pub hessian_values: HessianValues,
    /// Outer perturbations n (150); first order: tasks per iteration.
    pub perturbations: usize,
    /// Adaptation queries K (20).
    pub queries: usize,
    /// What `queries` counts: `directions` (default, the code's K + 1 evaluations for
    /// forward-FD and hill climbing) or `evaluations` (the paper's K in all).
    pub query_count: QueryCount,
    /// Evaluations of f(θ) averaged into the outer forward-FD estimator's f(θ). Default 1;
    /// the paper's A.7.2 table has 150 ("# Current Evals", on 150 of its 300 workers).
    pub current_evals: usize,
    /// Outer precision σ (0.1).
    pub sigma: f32,
    /// Adaptation precision σ (0.1).
    pub adapt_sigma: f32,
    /// Meta step size β (0.01).
    pub meta_lr: f64,
    /// Adaptation step size α (0.05).
    pub alpha: f32,
    /// Standardize f-values before forming estimates (reward normalization).
    pub normalize_rewards: bool,
    /// Normalize observations with running statistics.
    pub normalize_states: bool,
    /// Policy architecture.
    pub policy: PolicyKind,
    /// Hidden layer sizes for `policy = "mlp"`. Default `[32, 32]`, the paper's "HH"
    /// (two hidden layers of width 32); its "H" is `[32]` (`--hidden 32`).
    pub hidden: Vec<usize>,
    /// DPP candidate pool = `dpp_pool_factor` × K (ES-MAML's dpp_rho: 5).
    pub dpp_pool_factor: usize,
    /// Fixed training tasks (50). A family with finitely many tasks (four corners) trains
    /// on all of them, each once, when this is at least their number (paper A.7.2's
    /// "(N, N, N)" setting).
    pub train_tasks: usize,
    /// Zero order: distinct training tasks each perturbation is adapted on and scored on;
    /// its f-value is their mean (paper A.7.2's task batch: 5, or all N of a finite
    /// family, "each worker performs adaptations on all possible tasks"). 1 draws one task
    /// per perturbation. First order ignores it: each of its `perturbations` is a task.
    pub task_batch: usize,
    /// Held-out test tasks evaluated each iteration (a rotating window of 10 of them).
    pub test_tasks: usize,
}

impl Default for EsMamlConfig {
    fn default() -> Self {
        Self {
            order: Order::Zero,
            operator: Operator::EsGrad,
            estimator: EsEstimator::ForwardFd,
            adapt_estimator: EsEstimator::ForwardFd,
            hessian: false,
            hessian_values: HessianValues::Shaped,
            perturbations: 150,
            queries: 20,
            query_count: QueryCount::Directions,
            current_evals: 1,
            sigma: 0.1,
            adapt_sigma: 0.1,
            meta_lr: 0.01,
            alpha: 0.05,
            normalize_rewards: true,
            normalize_states: true,
            policy: PolicyKind::Linear,
            hidden: vec![32, 32],
            dpp_pool_factor: 5,
            train_tasks: 50,
            task_batch: 1,
            test_tasks: 50,
        }
    }
}

impl EsMamlConfig {
    /// Validates every field.
    pub fn validate(&self) -> Result<()> {
        for (f, v) in [
            ("es.perturbations", self.perturbations),
            ("es.queries", self.queries),
            ("es.current_evals", self.current_evals),
            ("es.dpp_pool_factor", self.dpp_pool_factor),
            ("es.train_tasks", self.train_tasks),
            ("es.task_batch", self.task_batch),
            ("es.test_tasks", self.test_tasks),
        ] {
            if v == 0 {
                return Err(Error::invalid(f, v, "≥ 1"));
            }
        }
        for (f, v) in [
            ("es.sigma", self.sigma as f64),
            ("es.adapt_sigma", self.adapt_sigma as f64),
            ("es.meta_lr", self.meta_lr),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(f, v, "> 0"));
            }
        }
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(Error::invalid("es.alpha", self.alpha, "≥ 0"));
        }
        if self.query_count == QueryCount::Evaluations {
            let antithetic = self.adapt_estimator == EsEstimator::Antithetic;
            if self.queries < 2 || (antithetic && self.queries % 2 == 1) {
                let allowed = if antithetic {
                    "an even number ≥ 2 with es.query_count = \"evaluations\" and the antithetic estimator (K/2 pairs)"
                } else {
                    "≥ 2 with es.query_count = \"evaluations\" (one goes to the start)"
                };
                return Err(Error::invalid("es.queries", self.queries, allowed));
            }
        }
        if self.task_batch > self.train_tasks {
            return Err(Error::invalid(
                "es.task_batch",
                self.task_batch,
                format!("1..={} (at most es.train_tasks)", self.train_tasks),
            ));
        }
        if self.policy == PolicyKind::Mlp && (self.hidden.is_empty() || self.hidden.contains(&0)) {
            return Err(Error::invalid(
                "es.hidden",
                format!("{:?}", self.hidden),
                "sizes ≥ 1",
            ));
        }
        Ok(())
    }

    /// Validates the fields that depend on the task family: `task_batch` cannot exceed
    /// the number of distinct training tasks.
    pub fn validate_for(&self, env: &dyn Env) -> Result<()> {
        self.validate()?;
        let n = self
            .train_set(env, &mut crate::rng::stream(0, "validate"))
            .len();
        if self.task_batch > n {
            return Err(Error::invalid(
                "es.task_batch",
                self.task_batch,
                format!(
                    "1..={n} (the distinct training tasks of {})",
                    env.spec().name
                ),
            ));
        }
        Ok(())
    }

    /// The fixed training tasks: every task of a finite family when `train_tasks` covers
    /// them, else `train_tasks` draws from `rng`.
    pub(super) fn train_set(&self, env: &dyn Env, rng: &mut Rng) -> Vec<Task> {
        match env.finite_tasks() {
            Some(all) if self.train_tasks >= all.len() => all,
            _ => (0..self.train_tasks)
                .map(|_| env.sample_task(rng))
                .collect(),
        }
    }

    /// The directions (or proposals) of one adaptation by `operator` within the budget
    /// `queries` ([`QueryCount`]).
    pub fn adapt_directions(&self, operator: Operator) -> usize {
        match self.query_count {
            QueryCount::Directions => self.queries,
            QueryCount::Evaluations => {
                // Hill climbing evaluates its start and one point per proposal: forward-FD's layout.
                let layout = match operator {
                    Operator::HillClimb => EsEstimator::ForwardFd,
                    Operator::EsGrad | Operator::Dpp => self.adapt_estimator,
                };
                layout.directions_within(self.queries)
            }
        }
    }

    pub(super) fn shaping(&self) -> FitnessShaping {
        self.normalize_rewards.into()
    }
}
