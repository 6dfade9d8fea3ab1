//! Unit tests of the ES-MAML learner's batched objectives.

use super::*;
use crate::es::gaussian_perturbation;
use crate::es::noise::perturbed;
use crate::es::{evaluation_rng, lazy_evaluation_rng};
use crate::rng::stream;

fn learner(env: &str, cfg: EsMamlConfig) -> EsMaml {
    let device = crate::device::DeviceKind::Flex.device().unwrap().autodiff();
    EsMaml::new(
        cfg,
        crate::env::make(env).unwrap(),
        5,
        &mut stream(5, "policy"),
        &mut stream(5, "tasks"),
        &device,
    )
}

/// Batched evaluation (episodes in lanes) returns bit for bit what one evaluation at a
/// time returns, counts the same observations, and leaves the generators in the
/// same state.
#[test]
fn batched_objectives_equal_one_point_at_a_time() {
    for (env, policy, operator, task_batch) in [
        ("nav2d", PolicyKind::Mlp, Operator::EsGrad, 1),
        ("nav2d", PolicyKind::Linear, Operator::HillClimb, 2),
        ("cartpole-biased", PolicyKind::Linear, Operator::EsGrad, 1),
        ("point-corners-es", PolicyKind::Mlp, Operator::Dpp, 1),
    ] {
        let cfg = EsMamlConfig {
            policy,
            operator,
            task_batch,
            queries: 6,
            hidden: vec![8, 8],
            ..EsMamlConfig::default()
        };
        let es = learner(env, cfg);
        let theta = es.theta();
        // 11 points: a full batch of lanes and a partial one.
        let points: Vec<Vec<f32>> = (0..11u64)
            .map(|i| perturbed(&theta, &gaussian_perturbation(theta.len(), 9, i), 0.3))
            .collect();
        let refs: Vec<&[f32]> = points.iter().map(Vec::as_slice).collect();
        let (norm, c1) = es.context();
        let (_, c2) = es.context();
        let task = es.train[0].clone();
        for big in [false, true] {
            let one_by_one = |c: &Counter| -> (Vec<u64>, Vec<u64>) {
                let mut rngs: Vec<Rng> = (0..11).map(|i| evaluation_rng(4, i)).collect();
                let v: Vec<u64> = refs
                    .iter()
                    .zip(&mut rngs)
                    .map(|(p, r)| {
                        if big {
                            AdaptedReturn {
                                es: &es,
                                norm: &norm,
                                c,
                            }
                            .value(p, r)
                        } else {
                            es.task_return(&task, &norm, c).value(p, r)
                        }
                        .to_bits()
                    })
                    .collect();
                (v, rngs.iter_mut().map(|r| r.next_u64()).collect())
            };
            let batched = |c: &Counter| -> (Vec<u64>, Vec<u64>) {
                let mut rngs: Vec<LazyRng> = (0..11).map(|i| lazy_evaluation_rng(4, i)).collect();
                let v = if big {
                    AdaptedReturn {
                        es: &es,
                        norm: &norm,
                        c,
                    }
                    .values(&refs, &mut rngs)
                } else {
                    es.task_return(&task, &norm, c).values(&refs, &mut rngs)
                };
                let v = v.iter().map(|x| x.to_bits()).collect();
                (v, rngs.iter_mut().map(|r| r.get().next_u64()).collect())
            };
            assert_eq!(
                batched(&c2),
                one_by_one(&c1),
                "{env} {operator:?} big {big}"
            );
            assert_eq!(
                c1.steps.load(Ordering::Relaxed),
                c2.steps.load(Ordering::Relaxed)
            );
            assert_eq!(*c1.stats.lock().unwrap(), *c2.stats.lock().unwrap());
        }
    }
}

/// First order's Ĥv with `hessian_values = raw` is the paper's Algorithm 4: on a quadratic
/// f(θ) = −½ θᵀAθ its mean is the true −A v; the shaped default divides by the spread of
/// the f-values instead (a different scale, not an estimate of H). (An offset c in f
/// leaves the raw estimate unbiased but adds noise of size c/σ² per query: with c = 300,
/// the size of an episode return, 40 × 20 000 queries still miss −Av by ≈ 60.)
#[test]
fn raw_hessian_values_estimate_the_true_hessian_vector_product() {
    let a = [2.0f64, 0.5, 1.0];
    let f = |t: &[f32], _: &mut Rng| -> f64 {
        -0.5 * t
            .iter()
            .zip(a)
            .map(|(&x, ai)| ai * f64::from(x).powi(2))
            .sum::<f64>()
    };
    let theta = [0.3f32, -0.2, 0.1];
    let v = [1.0f32, -1.0, 0.5];
    let want: Vec<f64> = a
        .iter()
        .zip(v)
        .map(|(ai, vi)| -ai * f64::from(vi))
        .collect();
    let es_with = |hessian_values, queries| {
        learner(
            "nav2d",
            EsMamlConfig {
                order: Order::First,
                hessian: true,
                hessian_values,
                queries,
                adapt_sigma: 0.1,
                ..EsMamlConfig::default()
            },
        )
    };
    // ‖a − b‖ / ‖b‖.
    let rel_err = |a: &[f64], b: &[f64]| -> f64 {
        let d: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
        d.sqrt() / b.iter().map(|y| y * y).sum::<f64>().sqrt()
    };
    // Average over seeds of large-K estimates: the MC estimate's spread shrinks as 1/√(K·S).
    let mean_hv = |es: &EsMaml| -> Vec<f64> {
        let seeds = 40u64;
        let mut acc = vec![0.0f64; 3];
        for s in 0..seeds {
            for (m, h) in acc
                .iter_mut()
                .zip(es.hessian_vector(&f, &theta, &v, 1000 + s))
            {
                *m += f64::from(h) / seeds as f64;
            }
        }
        acc
    };
    let raw = mean_hv(&es_with(HessianValues::Raw, 20_000));
    assert!(rel_err(&raw, &want) < 0.1, "raw Ĥv {raw:?} vs −Av {want:?}");
    let shaped = mean_hv(&es_with(HessianValues::Shaped, 20_000));
    let ratio = shaped[0] / raw[0];
    assert!(
        ratio.abs() > 10.0,
        "standardizing rescales Ĥ by 1/std f (≈ 1/0.06 here): {ratio}"
    );
    // Scaled: raw divided by the spread, not centred. Its mean is the same rescaled Ĥ,
    // so on average it agrees with the shaped estimate (centring only removes noise).
    let scaled = mean_hv(&es_with(HessianValues::Scaled, 20_000));
    assert!(
        rel_err(&scaled, &shaped) < 0.15,
        "scaled {scaled:?} vs shaped {shaped:?}"
    );
}

/// `query_count` sets what K counts. On goal-1d (5 steps, never ends) an adaptation's
/// env steps are 5 × its evaluations: with `directions`, forward-FD and hill climbing
/// evaluate K + 1 points and antithetic 2K; with `evaluations`, every operator spends
/// exactly K (Monte Carlo K either way).
#[test]
fn query_count_sets_the_evaluations_of_one_adaptation() {
    let k = 6;
    for (operator, estimator, directions, evaluations) in [
        (Operator::EsGrad, EsEstimator::ForwardFd, k + 1, k),
        (Operator::HillClimb, EsEstimator::ForwardFd, k + 1, k),
        (Operator::Dpp, EsEstimator::ForwardFd, k + 1, k),
        (Operator::EsGrad, EsEstimator::Antithetic, 2 * k, k),
        (Operator::EsGrad, EsEstimator::Mc, k, k),
    ] {
        for (query_count, want) in [
            (QueryCount::Directions, directions),
            (QueryCount::Evaluations, evaluations),
        ] {
            let cfg = EsMamlConfig {
                operator,
                adapt_estimator: estimator,
                queries: k,
                query_count,
                ..EsMamlConfig::default()
            };
            cfg.validate().unwrap();
            let es = learner("goal-1d", cfg);
            let (norm, c) = es.context();
            let theta = es.theta();
            let task = es.train[0].clone();
            es.adapt_batch(operator, &[&theta], &[&task], &[3], &norm, &c);
            let steps = c.steps.load(Ordering::Relaxed) as usize;
            assert_eq!(
                steps,
                5 * want,
                "{operator:?} {estimator:?} {query_count:?}"
            );
        }
    }
    // K = 1 leaves no direction after the start; antithetic needs whole pairs.
    let bad = |queries, adapt_estimator| EsMamlConfig {
        queries,
        adapt_estimator,
        query_count: QueryCount::Evaluations,
        ..EsMamlConfig::default()
    };
    assert!(bad(1, EsEstimator::ForwardFd).validate().is_err());
    assert!(bad(5, EsEstimator::Antithetic).validate().is_err());
    assert!(bad(6, EsEstimator::Antithetic).validate().is_ok());
}
