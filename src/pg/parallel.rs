//! The meta-batch in fixed task chunks: the unit of parallel work between threads and of
//! ownership between the ranks of an MPI job ([`crate::dist`]).
//!
//! Chunk `c` of a meta-batch samples its tasks with streams of its own, seeded from the
//! learner's master streams in chunk order, so its samples do not depend on which process
//! or thread computes it. Each process samples and differentiates the chunks it owns
//! (round robin, in parallel threads); per-chunk results are gathered and summed in chunk
//! order on every process. A run therefore gives the same numbers for any thread count and
//! any number of ranks; the number of chunks is part of the configuration (it decides the
//! streams and the f32 summation order).

use super::*;
use crate::dist::Cluster;
use crate::rng::next_seed;
use rand::SeedableRng;

/// A fixed split of `m` tasks into at most `chunks` contiguous ranges.
pub fn task_chunks(m: usize, chunks: usize) -> Vec<(usize, usize)> {
    let c = chunks.clamp(1, m.max(1));
    (0..c)
        .map(|i| (i * m / c, (i + 1) * m / c))
        .filter(|(a, b)| b > a)
        .collect()
}

/// ∇_θ loss(θ, item) for each of `items`, with the items' graphs built and differentiated
/// in parallel (rayon). Each item gets its own leaves holding θ's values, so no autodiff
/// node is shared between threads. Returns per item the flat gradient
/// ([`crate::params::flatten`] order) and the loss's auxiliary values.
pub fn item_gradients<F>(
    policy: &crate::nn::GaussianPolicy,
    items: &[usize],
    loss: F,
) -> Vec<(Vec<f32>, Vec<f64>)>
where
    F: Fn(&GaussianParams, usize) -> (Tensor<1>, Vec<f64>) + Sync,
{
    use rayon::prelude::*;
    items
        .par_iter()
        .map(|&item| {
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
            let (l, aux) = loss(&theta, item);
            let g = l.backward();
            let mut flat = Vec::new();
            for (w, b) in ws.iter().zip(&bs) {
                flat.extend(to_vec(w.grad(&g).expect("every weight is used")));
                flat.extend(to_vec(b.grad(&g).expect("every bias is used")));
            }
            flat.extend(to_vec(ls.grad(&g).expect("the log-std is used")));
            (flat, aux)
        })
        .collect()
}

/// Element-wise sum of equally long vectors, in order, starting from zero.
fn sum_in_order<T: Copy + Default + std::ops::AddAssign>(parts: &[Vec<T>]) -> Vec<T> {
    let mut total = vec![T::default(); parts.first().map_or(0, Vec::len)];
    for p in parts {
        assert_eq!(p.len(), total.len(), "summed parts have one length");
        total.iter_mut().zip(p).for_each(|(x, y)| *x += *y);
    }
    total
}

/// ∇_θ Σ_chunks loss(θ, chunk) on one process: [`item_gradients`] of every chunk, gradients
/// and auxiliary values summed in chunk order (so the result does not depend on the
/// thread count).
pub fn chunked_gradient<F>(
    policy: &crate::nn::GaussianPolicy,
    chunks: &[(usize, usize)],
    loss: F,
) -> (Vec<f32>, Vec<f64>)
where
    F: Fn(&GaussianParams, (usize, usize)) -> (Tensor<1>, Vec<f64>) + Sync,
{
    let items: Vec<usize> = (0..chunks.len()).collect();
    let parts = item_gradients(policy, &items, |theta, c| loss(theta, chunks[c]));
    let (g, a): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
    (sum_in_order(&g), sum_in_order(&a))
}

/// One meta-iteration's samples split into fixed task chunks ([`sample_chunked`]). This
/// process holds the samples of the chunks it owns; every process holds every task's
/// returns and the step counts, so metrics and batch-wide statistics agree everywhere.
pub struct ChunkedSamples {
    /// Task ranges `lo..hi` of every chunk.
    pub ranges: Vec<(usize, usize)>,
    /// Samples and final θ' of the chunks this process owns (`None` for the others).
    parts: Vec<Option<(MetaSamples, GaussianParams)>>,
    /// Per batch (the pre-update batches, then the post-update one): every task's mean
    /// return, in task order.
    pub task_returns: Vec<Vec<f64>>,
    /// Environment steps of the whole meta-batch.
    pub env_steps: usize,
    cluster: Cluster,
}

/// Samples a meta-batch ([`sample_meta_batch`]) in `chunks` fixed task chunks: the
/// master streams `rngs` give each chunk its seeds (in chunk order, on every process);
/// the chunks `cluster` owns are sampled and adapted in parallel; task returns and step
/// counts are gathered from every rank. Marks the phase `sample` (inner steps included).
#[allow(clippy::too_many_arguments)]
pub fn sample_chunked(
    env: &Arc<dyn Env>,
    tasks: &[Task],
    theta: &GaussianParams,
    cfg: &MetaPgConfig,
    rngs: &mut SamplerRngs,
    chunks: usize,
    cluster: Cluster,
    device: &Device,
    phases: &mut Phases,
) -> Result<ChunkedSamples> {
    use rayon::prelude::*;
    phases.enter("sample");
    let ranges = task_chunks(tasks.len(), chunks);
    let seeds: Vec<(u64, u64)> = ranges
        .iter()
        .map(|_| (next_seed(&mut rngs.env), next_seed(&mut rngs.act)))
        .collect();
    let owned = cluster.owned(ranges.len());
    let sampled: Vec<Result<(MetaSamples, GaussianParams)>> = owned
        .par_iter()
        .map(|&c| {
            let (lo, hi) = ranges[c];
            let mut streams = SamplerRngs {
                env: Rng::seed_from_u64(seeds[c].0),
                act: Rng::seed_from_u64(seeds[c].1),
            };
            let mut own_clock = Phases::new();
            sample_meta_batch(
                env,
                &tasks[lo..hi],
                theta,
                cfg,
                &mut streams,
                device,
                &mut own_clock,
            )
        })
        .collect();
    let mut parts: Vec<Option<(MetaSamples, GaussianParams)>> =
        (0..ranges.len()).map(|_| None).collect();
    let mut mine = Vec::with_capacity(owned.len());
    for (&c, s) in owned.iter().zip(sampled) {
        let (s, adapted) = s?;
        // Per chunk: its task returns batch by batch, then its step count.
        let mut stats: Vec<f64> = s
            .pre
            .iter()
            .chain(std::iter::once(&s.post))
            .flat_map(|b| b.task_returns.iter().copied())
            .collect();
        stats.push(s.env_steps() as f64);
        mine.push(stats);
        parts[c] = Some((s, adapted));
    }
    let all = cluster.gather_ragged(ranges.len(), mine);
    let batches = cfg.inner_steps + 1;
    let mut task_returns = vec![Vec::with_capacity(tasks.len()); batches];
    let mut env_steps = 0usize;
    for (&(lo, hi), stats) in ranges.iter().zip(&all) {
        for (b, returns) in task_returns.iter_mut().enumerate() {
            returns.extend_from_slice(&stats[b * (hi - lo)..(b + 1) * (hi - lo)]);
        }
        env_steps += stats[batches * (hi - lo)] as usize;
    }
    Ok(ChunkedSamples {
        ranges,
        parts,
        task_returns,
        env_steps,
        cluster,
    })
}

impl ChunkedSamples {
    /// Tasks in the meta-batch.
    pub fn m(&self) -> usize {
        self.ranges.last().map_or(0, |r| r.1)
    }

    /// The chunks this process owns, in order.
    pub fn owned(&self) -> Vec<usize> {
        self.cluster.owned(self.ranges.len())
    }

    /// Chunk `c`'s samples; only for an owned chunk.
    pub fn part(&self, c: usize) -> &MetaSamples {
        &self.parts[c].as_ref().expect("a chunk this process owns").0
    }

    /// Chunk `c`'s final θ' (tracked through the inner steps when second order); only for
    /// an owned chunk.
    pub fn adapted(&self, c: usize) -> &GaussianParams {
        &self.parts[c].as_ref().expect("a chunk this process owns").1
    }

    /// `f(c)` for every chunk `c` this process owns, `None` for the others: values kept
    /// per chunk beside its samples (π_θo's means, the adapted policies).
    pub fn per_owned<T>(&self, f: impl Fn(usize) -> T) -> Vec<Option<T>> {
        (0..self.ranges.len())
            .map(|c| self.cluster.owns(c).then(|| f(c)))
            .collect()
    }

    /// Every task's mean return in the post-update batch.
    pub fn post_task_returns(&self) -> &[f64] {
        self.task_returns.last().expect("a post-update batch")
    }

    /// The iteration's sampling metrics: `pre_return`, `post_return_<k>` for every inner
    /// step and `env_steps` (returns are means over the meta-batch's tasks).
    pub fn metrics(&self) -> crate::learner::Metrics {
        let mean = |r: &Vec<f64>| r.iter().sum::<f64>() / r.len().max(1) as f64;
        let mut m = crate::learner::Metrics::new().with("pre_return", mean(&self.task_returns[0]));
        for (k, r) in self.task_returns[1..].iter().enumerate() {
            m.push(format!("post_return_{}", k + 1), mean(r));
        }
        m.push("env_steps", self.env_steps as f64);
        m
    }

    /// Σ_chunks f(chunk) (vectors of one length): owned chunks computed in parallel,
    /// gathered from every rank, summed in chunk order.
    pub fn sum<F>(&self, f: F) -> Vec<f64>
    where
        F: Fn(usize) -> Vec<f64> + Sync,
    {
        use rayon::prelude::*;
        let mine: Vec<Vec<f64>> = self.owned().par_iter().map(|&c| f(c)).collect();
        sum_in_order(&self.cluster.gather_ragged(self.ranges.len(), mine))
    }

    /// ∇_θ Σ_chunks loss(θ, chunk) and the summed auxiliary values: [`item_gradients`] of
    /// the owned chunks, gathered from every rank, summed in chunk order.
    pub fn gradient<F>(&self, policy: &crate::nn::GaussianPolicy, loss: F) -> (Vec<f32>, Vec<f64>)
    where
        F: Fn(&GaussianParams, usize) -> (Tensor<1>, Vec<f64>) + Sync,
    {
        self.sum_gradients(|c| {
            item_gradients(policy, &[c], &loss)
                .pop()
                .expect("one chunk's gradient")
        })
    }

    /// Σ_chunks f(chunk) for a chunk's flat gradient and auxiliary values: the owned chunks
    /// in parallel, gathered from every rank, summed in chunk order.
    pub fn sum_gradients<F>(&self, f: F) -> (Vec<f32>, Vec<f64>)
    where
        F: Fn(usize) -> (Vec<f32>, Vec<f64>) + Sync,
    {
        use rayon::prelude::*;
        let n = self.ranges.len();
        let (g, a): (Vec<_>, Vec<_>) = self.owned().par_iter().map(|&c| f(c)).unzip();
        let g = self.cluster.gather_ragged(n, g);
        let a = self.cluster.gather_ragged(n, a);
        (sum_in_order(&g), sum_in_order(&a))
    }
}
