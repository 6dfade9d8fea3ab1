//! The plain-Rust flat-vector forward equals the Burn module's forward.

use metarl::nn::flat::FlatPolicy;
use metarl::nn::{tensor2, to_vec, Activation, DeterministicPolicyConfig, Init};
use metarl::params::flatten;
use metarl::rng::stream;

#[test]
fn flat_forward_equals_the_burn_module_for_linear_and_mlp_policies() {
    let d = metarl::device::DeviceKind::Flex.device().unwrap();
    for (hidden, act, tanh_out) in [
        (vec![], Activation::Tanh, true),
        (vec![32], Activation::Tanh, true),
        (vec![32, 32], Activation::Relu, false),
        (vec![5, 7], Activation::Tanh, true),
    ] {
        let cfg = DeterministicPolicyConfig {
            hidden: hidden.clone(),
            activation: act,
            tanh_output: tanh_out,
            init: Init::XavierUniform,
        };
        let p = cfg.init(3, 2, &mut stream(4, "policy"), &d);
        let flat = FlatPolicy::of(&p);
        assert_eq!(flat.num_params(), metarl::params::num_params(&p));
        let obs: Vec<f32> = (0..3 * 9)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) * 0.3)
            .collect();
        let want = to_vec(p.forward(tensor2(obs.clone(), 9, 3, &d)));
        let got = flat.forward(&flatten(&p), &obs, 9);
        for (k, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() < 1e-5,
                "{hidden:?} {act:?}: entry {k}: {a} vs {b}"
            );
        }
    }
}
