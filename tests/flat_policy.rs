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
        // A full block plus a remainder, an odd input width and an odd output width.
        (vec![33, 32], Activation::Tanh, true),
        (vec![64, 3], Activation::Tanh, false),
    ] {
        for act_dim in [1, 2, 3] {
            let cfg = DeterministicPolicyConfig {
                hidden: hidden.clone(),
                activation: act,
                tanh_output: tanh_out,
                init: Init::XavierUniform,
            };
            let p = cfg.init(3, act_dim, &mut stream(4, "policy"), &d);
            let flat = FlatPolicy::of(&p);
            assert_eq!(flat.num_params(), metarl::params::num_params(&p));
            let obs: Vec<f32> = (0..3 * 9)
                .map(|i| ((i * 37 % 17) as f32 - 8.0) * 0.3)
                .collect();
            let want = to_vec(p.forward(tensor2(obs.clone(), 9, 3, &d)));
            let theta = flatten(&p);
            // The batched path (feature-major) and the one-row path (blocked matvec) used by
            // evolution strategies' episodes.
            let batched = flat.forward(&theta, &obs, 9);
            let rows: Vec<f32> = obs
                .chunks(3)
                .flat_map(|o| flat.forward(&theta, o, 1))
                .collect();
            assert_eq!(want.len(), 9 * act_dim);
            for got in [&batched, &rows] {
                for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() < 1e-5,
                        "{hidden:?} {act:?} act_dim {act_dim}: entry {k}: {a} vs {b}"
                    );
                }
            }
        }
    }
}
