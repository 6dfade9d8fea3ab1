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
