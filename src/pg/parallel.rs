//! Meta-gradients of a task batch computed on fixed task chunks in parallel and summed in
//! chunk order, so results do not depend on the thread count.

use super::*;

/// A fixed split of `m` tasks into at most `chunks` contiguous ranges.
pub fn task_chunks(m: usize, chunks: usize) -> Vec<(usize, usize)> {
    let c = chunks.clamp(1, m.max(1));
    (0..c)
        .map(|i| (i * m / c, (i + 1) * m / c))
        .filter(|(a, b)| b > a)
        .collect()
}

/// ∇_θ Σ_chunks loss(θ, chunk), with the chunks' graphs built and differentiated in
/// parallel (rayon). Each chunk gets its own leaves holding θ's values, so no autodiff node
/// is shared between threads; gradients (flat, [`crate::params::flatten`] order) and the
/// auxiliary values are summed in chunk order, so the result does not depend on the thread
/// count. `loss` returns the chunk's loss and auxiliary scalars to sum.
pub fn chunked_gradient<F>(
    policy: &crate::nn::GaussianPolicy,
    chunks: &[(usize, usize)],
    loss: F,
) -> (Vec<f32>, Vec<f64>)
where
    F: Fn(&GaussianParams, (usize, usize)) -> (Tensor<1>, Vec<f64>) + Sync,
{
    use rayon::prelude::*;
    let parts: Vec<(Vec<f32>, Vec<f64>)> = chunks
        .par_iter()
        .map(|&range| {
            let leaf2 = |t: Tensor<2>| t.detach().require_grad();
            let (ws, bs): (Vec<Tensor<2>>, Vec<Tensor<2>>) = policy
                .mean
                .layers
                .iter()
                .map(|l| {
                    let b = l
                        .bias
                        .as_ref()
                        .expect("metarl MLP layers should have biases")
                        .val();
                    (leaf2(l.weight.val()), leaf2(b.unsqueeze::<2>()))
                })
                .unzip();
            let ls = leaf2(policy.log_std.val().unsqueeze::<2>());
            let theta = GaussianParams {
                mean: crate::nn::functional::MlpParams {
                    w: ws.iter().map(|w| w.clone().unsqueeze::<3>()).collect(),
                    b: bs.iter().map(|b| b.clone().unsqueeze::<3>()).collect(),
                    activation: policy.mean.activation,
                },
                log_std: ls.clone().unsqueeze::<3>(),
            };
            let (l, aux) = loss(&theta, range);
            let g = l.backward();
            let mut flat = Vec::new();
            for (w, b) in ws.iter().zip(&bs) {
                flat.extend(to_vec(w.grad(&g).expect("every weight is used")));
                flat.extend(to_vec(b.grad(&g).expect("every bias is used")));
            }
            flat.extend(to_vec(ls.grad(&g).expect("the log-std is used")));
            (flat, aux)
        })
        .collect();
    let mut grad = vec![0.0f32; parts[0].0.len()];
    let mut aux = vec![0.0f64; parts[0].1.len()];
    for (g, a) in &parts {
        grad.iter_mut().zip(g).for_each(|(x, y)| *x += y);
        aux.iter_mut().zip(a).for_each(|(x, y)| *x += y);
    }
    (grad, aux)
}
