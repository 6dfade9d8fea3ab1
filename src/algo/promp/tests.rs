//! Unit tests of the ProMP learner's meta-gradient routes.

use super::*;
use crate::device::DeviceKind;
use crate::objective::Estimator;
use crate::pg::testing::{assert_same_gradient, samples_and_moved_theta};
use crate::rng::stream;

/// The host meta-gradient ([`crate::nn::dense_pg`]) equals the tensor route's up to f32
/// rounding, at a θ away from the sampling policy θo (ratios ≠ 1, KL > 0), for the LVC
/// and MAML estimators, second and first order; and so do J^CLIP and the KL.
#[test]
fn host_meta_gradient_equals_the_tensor_route() {
    let device = DeviceKind::Flex.device().unwrap().autodiff();
    for (estimator, second_order) in [
        (Estimator::Lvc, true),
        (Estimator::Maml, true),
        (Estimator::Lvc, false),
    ] {
        let meta = MetaPgConfig {
            tasks: 4,
            rollouts: 3,
            estimator,
            second_order,
            ..MetaPgConfig::default()
        };
        let cfg = ProMpConfig {
            kl_coef: 0.05,
            ..ProMpConfig::default()
        };
        let env = crate::env::make("nav2d").unwrap();
        let rngs = SamplerRngs {
            env: stream(3, "env"),
            act: stream(3, "action"),
        };
        let mut p = ProMp::new(
            meta,
            cfg,
            env.clone(),
            &mut stream(3, "policy"),
            stream(3, "tasks"),
            rngs,
            &device,
        );
        let (s, theta) = samples_and_moved_theta(&env, &p.policy, &p.meta, 3);
        let theta_o = GaussianParams::from_policy(&p.policy).detach();
        let mu_o = s.per_owned(|c| theta_o.mu(s.part(c).pre[0].obs.clone()));
        let spec = env.spec();
        assert!(host_path_applies(&p.meta, spec.act_dim, &device));
        let host = HostSamples::new(&s, Some(&mu_o), &p.meta, spec.obs_dim, spec.act_dim);
        let log_std_o = to_vec(p.policy.log_std.val());
        p.policy = unflatten(p.policy.clone(), &theta);
        let (g_host, aux_host) = p.meta_gradient(&s, &theta_o, &mu_o, Some(&host), &log_std_o);
        let (g_tensor, aux_tensor) = p.meta_gradient(&s, &theta_o, &mu_o, None, &log_std_o);
        println!("{estimator:?}, second order {second_order}: {aux_host:?} vs {aux_tensor:?}");
        assert_same_gradient(&g_host, &g_tensor);
        // J^CLIP sums terms of normalized advantages that cancel (f32 rounding ~1e-7
        // in absolute terms); the KL's terms are all positive (relative rounding).
        let (j, kl) = ((aux_host[0], aux_tensor[0]), (aux_host[1], aux_tensor[1]));
        assert!((j.0 - j.1).abs() < 1e-6, "J^CLIP {j:?}");
        assert!((kl.0 - kl.1).abs() < 1e-5 * kl.1, "KL {kl:?}");
        assert!(
            aux_tensor[1] > 1e-4,
            "θ is away from θo: KL {}",
            aux_tensor[1]
        );
    }
}
