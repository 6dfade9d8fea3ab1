//! Micro-benchmark behind the choice of tanh formula on Flex (see nn::Activation::apply and
//! nn::fused), and Flex's matrix product against the fused one.
use burn::prelude::*;
use metarl::nn::fused::composed_tanh;
use std::time::Instant;

fn main() {
    let d = metarl::device::DeviceKind::Flex.device().unwrap();
    let x: Tensor<2> = Tensor::random(
        [80_000, 64],
        burn::tensor::Distribution::Normal(0.0, 2.0),
        &d,
    );
    let time = |name: &str, f: &dyn Fn(Tensor<2>) -> Tensor<2>| {
        let mut ts = vec![];
        for _ in 0..7 {
            let t = Instant::now();
            let y = f(x.clone());
            let _ = metarl::nn::to_vec(y.slice([0..1, 0..1]));
            ts.push(t.elapsed().as_secs_f64() * 1e3);
        }
        ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!("{name:>10}: {:.2} ms (median of 7)", ts[3]);
    };
    time("tanh", &|x| x.tanh());
    time("exp-form", &|x| composed_tanh(x));
    time("sigmoid", &|x| {
        burn::tensor::activation::sigmoid(x.mul_scalar(2.0))
            .mul_scalar(2.0)
            .sub_scalar(1.0)
    });
    time("exp", &|x| x.exp());
    time("fused", &|x| metarl::nn::fused::tanh(x));
    // Matrix product of the ProMP batch's hidden layer, Flex's vs the fused one.
    let w: Tensor<2> = Tensor::random([64, 64], burn::tensor::Distribution::Normal(0.0, 0.1), &d);
    time("matmul", &|x| x.matmul(w.clone()));
    time("fused mm", &|x| metarl::nn::fused::matmul(x, w.clone()));
    let a = x.clone().tanh();
    let b = composed_tanh(x.clone());
    let diff = metarl::nn::to_vec((a - b).abs().max());
    println!("max |tanh − exp-form| = {:e}", diff[0]);

    // Plain-Rust slices (the ES policy forward): libm per element vs nn::fastmath.
    let v = metarl::nn::to_vec(x.clone());
    let time_slice = |name: &str, f: &dyn Fn(&mut [f32])| {
        let mut ts = vec![];
        for _ in 0..7 {
            let mut w = v.clone();
            let t = Instant::now();
            f(&mut w);
            ts.push(t.elapsed().as_secs_f64() * 1e3);
            std::hint::black_box(&w);
        }
        ts.sort_by(|a, b| a.partial_cmp(b).unwrap());
        println!(
            "{name:>16}: {:.2} ms (median of 7, {} values)",
            ts[3],
            v.len()
        );
    };
    time_slice("slice tanhf", &|w| w.iter_mut().for_each(|x| *x = x.tanh()));
    time_slice("slice libm exp", &|w| {
        w.iter_mut()
            .for_each(|x| *x = 2.0 / (1.0 + (-2.0 * *x).exp()) - 1.0)
    });
    time_slice("slice fastmath", &|w| {
        metarl::nn::fastmath::tanh_in_place(w)
    });
}
