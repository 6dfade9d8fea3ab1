//! The PG meta-gradient on host memory ([`crate::nn::dense_pg`]) over a meta-iteration's
//! chunked samples: the learners' fast path on Flex for one inner step with the LVC or
//! MAML estimator. Each task's gradient is one fused pass on one thread; tasks run in
//! parallel and are summed in task order, chunks in chunk order (so the result depends
//! on neither the thread nor the rank count).

use rayon::prelude::*;

use super::*;
use crate::nn::dense::Dense;
pub use crate::nn::dense_pg::Outer;
use std::sync::Mutex;

use crate::nn::dense_pg::{
    inner_step, meta_pg_task, Inner, InnerPass, MetaPg, PgTask, PgWorkspace, Rows, MAX_ACT,
};
use crate::nn::functional::MlpParams;
use crate::nn::fused::is_flex;

thread_local! {
    /// This thread's kernel buffers, kept from call to call: the passes' buffers (a few MB
    /// per task) are not allocated, and their pages not faulted in, at every outer step.
    static WORKSPACE: std::cell::RefCell<PgWorkspace<f32>> =
        std::cell::RefCell::new(PgWorkspace::default());
}

/// One batch's tensors read back to host memory, task-major.
#[derive(Debug)]
pub(super) struct HostBatch {
    /// Steps per task (K·T).
    rows: usize,
    obs: Vec<f32>,
    act: Vec<f32>,
    logp_old: Vec<f32>,
    adv: Vec<f32>,
    mask: Vec<f32>,
    /// Real steps of every task.
    n: Vec<f32>,
}

impl HostBatch {
    pub(super) fn new(b: &TaskBatch) -> Self {
        Self {
            rows: b.k * b.t,
            obs: to_vec(b.obs.clone()),
            act: to_vec(b.act.clone()),
            logp_old: to_vec(b.logp_old.clone()),
            adv: to_vec(b.adv.clone()),
            mask: to_vec(b.mask.clone()),
            n: to_vec(b.n.clone()),
        }
    }

    /// Task i's rows.
    fn task(&self, i: usize, obs_dim: usize, act_dim: usize) -> Rows<'_, f32> {
        let r = self.rows;
        Rows {
            obs: &self.obs[i * r * obs_dim..(i + 1) * r * obs_dim],
            act: &self.act[i * r * act_dim..(i + 1) * r * act_dim],
            logp_old: &self.logp_old[i * r..(i + 1) * r],
            adv: &self.adv[i * r..(i + 1) * r],
            mask: &self.mask[i * r..(i + 1) * r],
            n: self.n[i],
        }
    }
}

/// One owned chunk's pre-update and post-update batches, π_θo's means on the former, and
/// every task's inner step.
struct HostChunk {
    inner: Arc<HostInner>,
    post: HostBatch,
    mu_o: Vec<f32>,
}

/// A chunk's pre-update batch on host memory and every task's inner step on it, as the
/// sampler took it ([`adapt_on_host`]) and the outer steps reuse and update it.
#[derive(Debug)]
pub struct HostInner {
    pre: HostBatch,
    passes: Vec<Mutex<InnerPass<f32>>>,
}

/// The inner step θ' = θ + α ∇J^LR(θ) of every task of the pre-update batch `b` on host
/// memory ([`crate::nn::dense_pg::inner_step`], tasks in parallel): the sampler's
/// adaptation where [`host_path_applies`]. Returns the per-task θ' (`[M, ·, ·]` tensors, for
/// post-update sampling) and the steps, which the outer meta-gradient at the same θ reuses.
pub fn adapt_on_host(
    theta: &GaussianParams,
    b: &TaskBatch,
    cfg: &MetaPgConfig,
) -> (GaussianParams, HostInner) {
    let [_, _, obs_dim] = b.obs.dims();
    let [_, _, act_dim] = b.act.dims();
    let net = network(cfg, obs_dim, act_dim);
    let flat = flat_params(theta);
    let pre = HostBatch::new(b);
    let kernel = meta_pg(cfg, Outer::Surrogate, 0.0, b.m);
    let passes: Vec<Mutex<InnerPass<f32>>> = (0..b.m)
        .into_par_iter()
        .map(|i| {
            let mut pass = InnerPass::default();
            inner_step(
                &net,
                &kernel,
                pre.task(i, obs_dim, act_dim),
                &flat,
                &mut pass,
            );
            Mutex::new(pass)
        })
        .collect();
    let adapted: Vec<f32> = passes
        .iter()
        .flat_map(|p| p.lock().expect("no panics while held").adapted().to_vec())
        .collect();
    let device = b.obs.device();
    let params = per_task_params(&net, theta.mean.activation, &adapted, b.m, &device);
    (params, HostInner { pre, passes })
}

/// The policy network's [`Dense`] shape.
fn network(meta: &MetaPgConfig, obs_dim: usize, act_dim: usize) -> Dense {
    let mut sizes = vec![obs_dim];
    sizes.extend(&meta.policy.hidden);
    sizes.push(act_dim);
    Dense::new(sizes, meta.policy.activation)
}

/// Shared parameters (task dimension 1) as one flat vector in [`crate::params::flatten`]
/// order: the MLP's ([`MlpParams::to_flat`]), then log σ.
fn flat_params(theta: &GaussianParams) -> Vec<f32> {
    let mut flat = theta.mean.to_flat();
    flat.extend(to_vec(theta.log_std.clone()));
    flat
}

/// Per-task parameters from `m` flat vectors laid end to end: each read by
/// [`MlpParams::from_flat`] (task dimension 1), then joined along the task dimension.
fn per_task_params(
    net: &Dense,
    activation: crate::nn::Activation,
    flat: &[f32],
    m: usize,
    device: &Device,
) -> GaussianParams {
    let (p, a) = (net.num_params(), net.sizes[net.layers()]);
    let tasks: Vec<(MlpParams, Tensor<3>)> = flat
        .chunks_exact(flat.len() / m)
        .map(|t| {
            let mean = MlpParams::from_flat(&t[..p], &net.sizes, activation, device, false);
            let log_std = Tensor::from_data(TensorData::new(t[p..].to_vec(), [1, 1, a]), device);
            (mean, log_std)
        })
        .collect();
    let join = |f: &dyn Fn(&(MlpParams, Tensor<3>)) -> Tensor<3>| {
        Tensor::cat(tasks.iter().map(f).collect(), 0)
    };
    GaussianParams {
        mean: MlpParams {
            w: (0..net.layers())
                .map(|l| join(&|t| t.0.w[l].clone()))
                .collect(),
            b: (0..net.layers())
                .map(|l| join(&|t| t.0.b[l].clone()))
                .collect(),
            activation,
        },
        log_std: join(&|t| t.1.clone()),
    }
}

/// A meta-iteration's samples on host memory, for [`HostSamples::gradient`].
pub struct HostSamples {
    net: Dense,
    chunks: Vec<Option<HostChunk>>,
}

/// Whether the host meta-gradient computes what the tensor route would for these
/// settings on this device: Flex, one inner step, the LVC or MAML estimator.
pub fn host_path_applies(meta: &MetaPgConfig, act_dim: usize, device: &Device) -> bool {
    is_flex(device)
        && meta.inner_steps == 1
        && matches!(meta.estimator, Estimator::Lvc | Estimator::Maml)
        && act_dim <= MAX_ACT
}

impl HostSamples {
    /// The owned chunks' batches read back from `s`, with π_θo's means on their
    /// pre-update states (`mu_o`, per chunk as [`ChunkedSamples::per_owned`] gives them;
    /// `None` when no KL penalty is taken).
    pub fn new(
        s: &ChunkedSamples,
        mu_o: Option<&[Option<Tensor<3>>]>,
        meta: &MetaPgConfig,
        obs_dim: usize,
        act_dim: usize,
    ) -> Self {
        let net = network(meta, obs_dim, act_dim);
        let chunks = s.per_owned(|c| {
            let part = s.part(c);
            // The sampler takes the inner step on host memory wherever this path applies.
            let inner = part
                .host
                .clone()
                .expect("the sampler's inner steps on host memory");
            HostChunk {
                inner,
                post: HostBatch::new(&part.post),
                mu_o: mu_o
                    .and_then(|m| m[c].clone())
                    .map(to_vec)
                    .unwrap_or_default(),
            }
        });
        Self { net, chunks }
    }

    /// ∇_θ of the loss of [`crate::nn::dense_pg`] summed over the meta-batch, at the flat
    /// `theta` (MLP then log σ, [`crate::params::flatten`] order), with π_θo's log σ
    /// `log_std_o`; and the summed values [J^out / M, KL / M].
    pub fn gradient(
        &self,
        s: &ChunkedSamples,
        cfg: &MetaPg,
        theta: &[f32],
        log_std_o: &[f32],
    ) -> (Vec<f32>, Vec<f64>) {
        let (obs_dim, a) = (self.net.sizes[0], self.net.sizes[self.net.layers()]);
        s.sum_gradients(|c| {
            let chunk = self.chunks[c].as_ref().expect("a chunk this process owns");
            let per_task: Vec<(Vec<f32>, [f64; 2])> = (0..chunk.inner.passes.len())
                .into_par_iter()
                .map(|i| {
                    let r = chunk.inner.pre.rows;
                    let mu_o = if chunk.mu_o.is_empty() {
                        &[][..]
                    } else {
                        &chunk.mu_o[i * r * a..(i + 1) * r * a]
                    };
                    let task = PgTask {
                        pre: chunk.inner.pre.task(i, obs_dim, a),
                        post: chunk.post.task(i, obs_dim, a),
                        mu_o,
                        log_std_o,
                    };
                    let mut grad = vec![0.0f32; theta.len()];
                    let mut inner = chunk.inner.passes[i].lock().expect("no panics while held");
                    let v = WORKSPACE.with_borrow_mut(|ws| {
                        meta_pg_task(&self.net, cfg, task, theta, &mut inner, ws, &mut grad)
                    });
                    (grad, [v.outer, v.kl])
                })
                .collect();
            let mut grad = vec![0.0f32; theta.len()];
            let mut aux = vec![0.0f64; 2];
            for (g, v) in &per_task {
                grad.iter_mut().zip(g).for_each(|(x, y)| *x += *y);
                aux[0] += v[0];
                aux[1] += v[1];
            }
            (grad, aux)
        })
    }
}

/// The host kernel's settings for a learner with sampling settings `meta`, outer objective
/// `outer`, KL coefficient `kl_coef` and meta-batch size `tasks`.
pub fn meta_pg(meta: &MetaPgConfig, outer: Outer, kl_coef: f64, tasks: usize) -> MetaPg {
    MetaPg {
        alpha: meta.inner_lr,
        inner: match meta.estimator {
            Estimator::Maml => Inner::Maml,
            _ => Inner::Lvc,
        },
        second_order: meta.second_order,
        outer,
        kl_coef,
        tasks,
    }
}

/// What the learners' host-versus-tensor tests share.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::dist::Cluster;
    use crate::rng::stream;

    /// A meta-batch of `meta.tasks` tasks on `env` sampled by `policy` in 2 chunks (streams
    /// of `seed`), and a flat θ 0.05·N(0, 1) per parameter away from the policy's, where the
    /// ratios are not 1 and the KL to the sampling policy is not 0.
    pub fn samples_and_moved_theta(
        env: &Arc<dyn Env>,
        policy: &crate::nn::GaussianPolicy,
        meta: &MetaPgConfig,
        seed: u64,
    ) -> (ChunkedSamples, Vec<f32>) {
        let device = policy.log_std.val().device();
        let tasks = sample_task_batch(env, meta.tasks, &mut stream(seed, "tasks"));
        let theta = GaussianParams::from_policy(policy).detach();
        let mut rngs = SamplerRngs {
            env: stream(seed, "env"),
            act: stream(seed, "action"),
        };
        let s = sample_chunked(
            env,
            &tasks,
            &theta,
            meta,
            &mut rngs,
            2,
            Cluster::current(),
            &device,
            &mut Phases::new(),
        )
        .expect("sampling nav2d");
        let mut noise = stream(seed, "noise");
        let moved = crate::params::flatten(policy)
            .iter()
            .map(|t| {
                let e: f32 =
                    rand_distr::Distribution::sample(&rand_distr::StandardNormal, &mut noise);
                t + 0.05 * e
            })
            .collect();
        (s, moved)
    }

    /// Asserts that two f32 computations of one meta-gradient agree: two sums over 300
    /// steps per task rounded differently, measured at 1.5–2.6e-6 of the largest component
    /// on this machine; 2e-5 leaves room for other instruction levels.
    pub fn assert_same_gradient(host: &[f32], tensor: &[f32]) {
        let scale = tensor.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let err = host
            .iter()
            .zip(tensor)
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        println!("error {err:e} of {scale:e}");
        assert!(err < 2e-5 * scale, "error {err:e} of {scale:e}");
    }
}

#[cfg(test)]
mod tests {
    use super::testing::samples_and_moved_theta;
    use super::*;
    use crate::device::DeviceKind;
    use crate::rng::stream;

    /// The sampler's inner step on host memory gives the tensor route's θ' (per task, every
    /// parameter tensor in the same layout) up to f32 rounding.
    #[test]
    fn adapt_on_host_equals_the_tensor_route() {
        let device = DeviceKind::Flex.device().unwrap().autodiff();
        let env = crate::env::make("nav2d").unwrap();
        let meta = MetaPgConfig {
            tasks: 4,
            rollouts: 3,
            ..MetaPgConfig::default()
        };
        let policy = meta.policy.init(2, 2, &mut stream(7, "policy"), &device);
        let (s, _) = samples_and_moved_theta(&env, &policy, &meta, 7);
        let theta = GaussianParams::from_policy(&policy).detach();
        for c in s.owned() {
            let pre = &s.part(c).pre[0];
            let (host, _) = adapt_on_host(&theta, pre, &meta);
            let tensor = adapt(&theta, pre, meta.estimator, meta.inner_lr, false);
            let pairs = host
                .mean
                .w
                .iter()
                .zip(&tensor.mean.w)
                .chain(host.mean.b.iter().zip(&tensor.mean.b))
                .chain([(&host.log_std, &tensor.log_std)]);
            for (h, t) in pairs {
                assert_eq!(h.dims(), t.dims(), "one layout");
                let (h, t) = (to_vec(h.clone()), to_vec(t.clone()));
                let scale = t.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                let err = h
                    .iter()
                    .zip(&t)
                    .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                // θ' = θ + α g: θ's own rounding (≈ 6e-8 relative) plus g's (see
                // `testing::assert_same_gradient`).
                assert!(err < 1e-6 * scale, "error {err:e} of {scale:e}");
            }
        }
    }
}
