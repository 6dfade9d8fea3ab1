//! The meta-gradient of ProMP and of LVC / MAML-estimator PG-MAML for a Gaussian MLP
//! policy on host memory: one fused pass per task with the hand-written backward pass and
//! R-operator of [`super::dense`], no tensor graph.
//!
//! The policy is π_θ(a|s) = N(μ_θ(s), diag σ²) with μ an MLP and log σ a free vector;
//! θ is flat, the MLP's parameters ([`Dense`] order) then log σ (the order of
//! [`crate::params::flatten`] on a [`super::GaussianPolicy`]). Per task, with the
//! pre-update batch D (sampled by π_θo) and the post-update batch D' (sampled by π_θ'o),
//! this computes ∇_θ of the loss
//!
//! ```text
//! loss(θ)  = −(1/M) [ J^out(θ') − η D̄_KL(π_θo ‖ π_θ) ]        θ' = θ + α ∇J^LR(θ)
//! J^LR(θ)  = (1/n) Σ_{t∈D} w_t(θ),     w_t = ρ_t A_t (LVC, ρ_t = π_θ/π_θo)  or  log π_θ · A_t (MAML)
//! J^out(θ')= (1/n') Σ_{t∈D'} ρ'_t A'_t                          (surrogate, ρ'_t = π_θ'/π_θ'o)
//!          = (1/n') Σ_{t∈D'} min(ρ'_t A'_t, clip(ρ'_t, 1 − ε, 1 + ε) A'_t)   (ProMP's clip)
//! ```
//!
//! sums over real steps (mask 1), n the task's real steps, M the meta-batch size; this
//! is exactly what ProMP's and PG-MAML's tensor routes differentiate
//! ([`crate::pg::readapt`], [`crate::objective`]). The chain rule through the inner step is
//!
//! ```text
//! ∇_θ J^out(θ') = (I + α H) v,   v = ∇_θ' J^out(θ'),   H = ∇² J^LR(θ)     (second order)
//! ∇_θ J^out(θ') ≈ v                                                    (first order)
//! ```
//!
//! with H v by Pearlmutter's R-operator ([`Dense::r_forward`], [`Dense::r_backward`]).
//! The heads at the network output, per step t with u_j = (a_j − μ_j)/σ_j:
//!
//! ```text
//! log π = Σ_j −½ u_j² − log σ_j − ½ ln 2π
//! ∂ log π/∂μ_j = u_j/σ_j          ∂ log π/∂log σ_j = u_j² − 1
//! ∂² log π/∂μ_j² = −1/σ_j²        ∂² log π/∂μ_j ∂log σ_j = −2u_j/σ_j      ∂² log π/∂(log σ_j)² = −2u_j²
//! J^LR term ℓ_t(log π_t): ℓ' = w_t (both estimators), ℓ'' = w_t (LVC) or 0 (MAML)
//! R{e_t} = ℓ'' R{log π_t} ∇log π_t + ℓ' ∇²log π_t · (R{μ_t}, V_logσ)
//! ```
//!
//! The KL penalty's gradient at θ on D is one more seed of the same backward pass: added
//! to the R-operator's seed (scaled by 1/α) when second order, since the R-backward
//! recursion is linear in its seed, or its own backward pass otherwise.

use super::dense::{fit, simd_entry, Dense, Pass, Real, Workspace};

/// The inner objective's estimator (the two with a host kernel; DiCE keeps the tensor
/// route).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inner {
    /// Likelihood ratio to the sampling policy per step (LVC; ProMP's J^LR).
    Lvc,
    /// Log-likelihood × advantage (the original MAML-RL estimator).
    Maml,
}

/// The outer objective on the post-update batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outer {
    /// (1/n) Σ_t ρ_t A_t (PG-MAML's VPG surrogate).
    Surrogate,
    /// (1/n) Σ_t min(ρ_t A_t, clip(ρ_t, 1 − ε, 1 + ε) A_t) with ε (ProMP's J^CLIP).
    Clipped(f64),
}

/// What the meta-gradient differentiates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetaPg {
    /// Inner step size α.
    pub alpha: f64,
    /// Inner estimator.
    pub inner: Inner,
    /// Differentiate through the inner step (exact) or not (first order).
    pub second_order: bool,
    /// Outer objective.
    pub outer: Outer,
    /// KL-penalty coefficient η (0: no penalty).
    pub kl_coef: f64,
    /// Meta-batch size M (every task's terms are divided by it).
    pub tasks: usize,
}

/// One task's steps of one batch, row-major, every step a row (padding rows have mask 0).
#[derive(Clone, Copy, Debug)]
pub struct Rows<'a, T> {
    /// Observations `[R, obs_dim]`.
    pub obs: &'a [T],
    /// Actions `[R, A]`.
    pub act: &'a [T],
    /// log π of the sampling policy `[R]`.
    pub logp_old: &'a [T],
    /// Advantages `[R]`.
    pub adv: &'a [T],
    /// 1 on real steps, 0 on padding `[R]`.
    pub mask: &'a [T],
    /// Real steps n.
    pub n: T,
}

/// One task's pre-update and post-update batches, and what the KL penalty compares with.
#[derive(Clone, Copy, Debug)]
pub struct PgTask<'a, T> {
    /// Pre-update batch D (sampled by π_θo).
    pub pre: Rows<'a, T>,
    /// Post-update batch D' (sampled by the adapted π_θ'o).
    pub post: Rows<'a, T>,
    /// π_θo's means on D's states `[R, A]`, or empty: then the KL is neither measured nor
    /// penalized (η must be 0).
    pub mu_o: &'a [T],
    /// π_θo's log σ `[A]` (read only with `mu_o`).
    pub log_std_o: &'a [T],
}

/// The task's objective values, already divided by M.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PgValues {
    /// J^out(θ') / M.
    pub outer: f64,
    /// D̄_KL(π_θo ‖ π_θ) / M (0 without π_θo's means).
    pub kl: f64,
}

/// One task's inner step at θ on its pre-update batch ([`inner_step`]): the pass and the
/// head's per-step values that the R-operator reuses, ∇J^LR and θ'. [`meta_pg_task`] reuses
/// it when it was computed at the same θ (PG-MAML's one outer step and ProMP's first are at
/// the sampling θ, whose inner step the sampler already took), else recomputes it.
#[derive(Clone, Debug, Default)]
pub struct InnerPass<T> {
    /// The θ it was computed at (empty: none yet).
    at: Vec<T>,
    /// The pass at θ on D.
    pre: Pass<T>,
    /// π_θ's means on D `[R, A]`.
    mu: Vec<T>,
    /// u_j = (a_j − μ_j)/σ_j on D `[R, A]`.
    u: Vec<T>,
    /// ℓ' and ℓ'' of every pre-update step `[R]`.
    d1: Vec<T>,
    d2: Vec<T>,
    /// ∇J^LR(θ) and θ' = θ + α ∇J^LR(θ) (flat).
    g: Vec<T>,
    theta_a: Vec<T>,
}

impl<T> InnerPass<T> {
    /// θ' = θ + α ∇J^LR(θ), flat (MLP then log σ).
    pub fn adapted(&self) -> &[T] {
        &self.theta_a
    }
}

/// Buffers of the outer part of a task's meta-gradient, reused from task to task on one
/// thread.
#[derive(Clone, Debug, Default)]
pub struct PgWorkspace<T> {
    /// The post-update pass at θ'.
    post: Pass<T>,
    /// R-operator buffers.
    r: Workspace<T>,
    /// The KL penalty's seed at μ `[R, A]` and at log σ `[A]` (ascent direction).
    kl_mu: Vec<T>,
    kl_ls: Vec<T>,
    /// v and H v (flat).
    v: Vec<T>,
    hv: Vec<T>,
}

simd_entry! {
    /// The inner step θ' = θ + α ∇J^LR(θ) of one task on its pre-update batch `pre`, into
    /// `inner` ([`InnerPass::adapted`]). Compiled for AVX-512, AVX2 and the baseline.
    pub fn inner_step<T: Real>(
        net: &Dense,
        cfg: &MetaPg,
        pre: Rows<'_, T>,
        theta: &[T],
        inner: &mut InnerPass<T>,
    ) -> () => inner_step_inline;
}

simd_entry! {
    /// ∇_θ loss(θ) of one task into `grad` (the module docs' loss, a descent direction's
    /// negative, as the tensor route's `backward` gives it); returns the objective values.
    /// `theta` and `grad` hold the MLP's parameters then log σ; `inner` is the task's inner
    /// step, recomputed unless it is at `theta`. Compiled for AVX-512, AVX2 and the baseline.
    pub fn meta_pg_task<T: Real>(
        net: &Dense,
        cfg: &MetaPg,
        task: PgTask<'_, T>,
        theta: &[T],
        inner: &mut InnerPass<T>,
        ws: &mut PgWorkspace<T>,
        grad: &mut [T],
    ) -> PgValues => meta_pg_task_inline;
}

/// `v` resized to `n` zeros.
fn zeros<T: Real>(v: &mut Vec<T>, n: usize) {
    v.clear();
    v.resize(n, T::ZERO);
}

/// The largest action dimension of the host kernel.
pub const MAX_ACT: usize = 32;

/// ½ ln 2π.
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// The Gaussian policy's θ split into the MLP's parameters and log σ, with 1/σ.
#[inline(always)]
fn split<'a, T: Real>(net: &Dense, theta: &'a [T]) -> (&'a [T], &'a [T], Vec<T>) {
    let p = net.num_params();
    let a_dim = *net.sizes.last().expect("an output width");
    assert!(
        theta.len() == p + a_dim && a_dim <= MAX_ACT,
        "theta holds the MLP's parameters and log σ (at most MAX_ACT actions)"
    );
    let (mean, log_std) = theta.split_at(p);
    let inv_std = log_std.iter().map(|l| (T::ZERO - *l).exp()).collect();
    (mean, log_std, inv_std)
}

#[inline(always)]
fn inner_step_inline<T: Real>(
    net: &Dense,
    cfg: &MetaPg,
    pre: Rows<'_, T>,
    theta: &[T],
    ip: &mut InnerPass<T>,
) {
    let p = net.num_params();
    let a_dim = *net.sizes.last().expect("an output width");
    let alpha = T::from_f64(cfg.alpha);
    let half_ln_2pi = T::from_f64(HALF_LN_2PI);
    let (theta_mean, log_std, inv_std) = split(net, theta);
    // Inner step: g = ∇J^LR(θ) on D, θ' = θ + α g.
    net.forward(theta_mean, pre.obs, &mut ip.pre);
    let rows = pre.mask.len();
    ip.mu.clear();
    ip.mu.extend_from_slice(ip.pre.output_mut());
    zeros(&mut ip.g, p + a_dim);
    fit(&mut ip.u, rows * a_dim);
    fit(&mut ip.d1, rows);
    fit(&mut ip.d2, rows);
    {
        let n = pre.n;
        let e = ip.pre.output_mut();
        let (g_ls, u_all) = (&mut ip.g[p..], &mut ip.u);
        for t in 0..rows {
            let at = t * a_dim..(t + 1) * a_dim;
            let (mu, act, u) = (
                &ip.mu[at.clone()],
                &pre.act[at.clone()],
                &mut u_all[at.clone()],
            );
            let mut lp = T::ZERO;
            for j in 0..a_dim {
                u[j] = (act[j] - mu[j]) * inv_std[j];
                lp = lp - T::from_f64(0.5) * u[j] * u[j] - log_std[j] - half_ln_2pi;
            }
            let c = pre.adv[t] * pre.mask[t] * recip(n);
            let (w, w2) = match cfg.inner {
                Inner::Lvc => {
                    let w = c * (lp - pre.logp_old[t]).exp();
                    (w, w)
                }
                Inner::Maml => (c, T::ZERO),
            };
            ip.d1[t] = w;
            ip.d2[t] = w2;
            for j in 0..a_dim {
                e[t * a_dim + j] = w * u[j] * inv_std[j];
                g_ls[j] += w * (u[j] * u[j] - T::ONE);
            }
        }
    }
    net.backward(theta_mean, &mut ip.pre, &mut ip.g[..p], true);
    ip.theta_a.clear();
    ip.theta_a
        .extend(theta.iter().zip(&ip.g).map(|(t, g)| *t + alpha * *g));
    ip.at.clear();
    ip.at.extend_from_slice(theta);
}

#[inline(always)]
fn meta_pg_task_inline<T: Real>(
    net: &Dense,
    cfg: &MetaPg,
    task: PgTask<'_, T>,
    theta: &[T],
    ip: &mut InnerPass<T>,
    ws: &mut PgWorkspace<T>,
    grad: &mut [T],
) -> PgValues {
    let p = net.num_params();
    let a_dim = *net.sizes.last().expect("an output width");
    assert_eq!(grad.len(), theta.len(), "grad matches theta");
    let alpha = T::from_f64(cfg.alpha);
    let scale = 1.0 / cfg.tasks as f64;
    let half_ln_2pi = T::from_f64(HALF_LN_2PI);
    let (theta_mean, log_std, inv_std) = split(net, theta);
    let rows = task.pre.mask.len();
    if ip.at != theta {
        inner_step_inline(net, cfg, task.pre, theta, ip);
    }

    // v = ∇_θ' J^out(θ') / M on D'.
    let mut values = PgValues::default();
    let (theta_a_mean, log_std_a) = ip.theta_a.split_at(p);
    let inv_std_a: Vec<T> = log_std_a.iter().map(|l| (T::ZERO - *l).exp()).collect();
    net.forward(theta_a_mean, task.post.obs, &mut ws.post);
    zeros(&mut ws.v, p + a_dim);
    {
        let post = &task.post;
        let c_scale = T::from_f64(scale) * recip(post.n);
        let e = ws.post.output_mut();
        let v_ls = &mut ws.v[p..];
        let mut j_sum = 0.0;
        for t in 0..post.mask.len() {
            let at = t * a_dim..(t + 1) * a_dim;
            let (mu, act) = (&e[at.clone()], &post.act[at.clone()]);
            let mut dmu = [T::ZERO; MAX_ACT];
            let u = |j: usize| (act[j] - mu[j]) * inv_std_a[j];
            let mut lp = T::ZERO;
            for (j, ls) in log_std_a.iter().enumerate() {
                lp = lp - T::from_f64(0.5) * u(j) * u(j) - *ls - half_ln_2pi;
            }
            let ratio = (lp - post.logp_old[t]).exp();
            let (adv, c) = (post.adv[t], post.mask[t] * c_scale);
            let unclipped = ratio * adv;
            let (value, d) = match cfg.outer {
                Outer::Surrogate => (unclipped, unclipped),
                Outer::Clipped(eps) => {
                    let (lo, hi) = (T::from_f64(1.0 - eps), T::from_f64(1.0 + eps));
                    let r = if ratio < lo {
                        lo
                    } else if ratio > hi {
                        hi
                    } else {
                        ratio
                    };
                    let clipped = r * adv;
                    if unclipped <= clipped {
                        (unclipped, unclipped)
                    } else {
                        (clipped, T::ZERO)
                    }
                }
            };
            j_sum += (value * c).to_f64();
            let d = d * c;
            for j in 0..a_dim {
                let uj = u(j);
                v_ls[j] += d * (uj * uj - T::ONE);
                dmu[j] = d * uj * inv_std_a[j];
            }
            e[at].copy_from_slice(&dmu[..a_dim]);
        }
        values.outer = j_sum;
    }
    net.backward(theta_a_mean, &mut ws.post, &mut ws.v[..p], true);

    // The KL penalty's seed: ∂/∂(μ, log σ) of −η D̄_KL(π_θo ‖ π_θ) / M on D.
    let penalty = cfg.kl_coef != 0.0;
    let measure = !task.mu_o.is_empty();
    assert!(measure || !penalty, "the KL penalty needs π_θo's means");
    zeros(&mut ws.kl_ls, a_dim);
    if measure {
        fit(&mut ws.kl_mu, rows * a_dim);
        let pre = &task.pre;
        let c_scale = T::from_f64(scale) * recip(pre.n);
        let eta = T::from_f64(cfg.kl_coef);
        let var_o: Vec<T> = task.log_std_o.iter().map(|l| (*l + *l).exp()).collect();
        let inv_var: Vec<T> = inv_std.iter().map(|i| *i * *i).collect();
        let mut kl_sum = 0.0;
        for t in 0..rows {
            let c = pre.mask[t] * c_scale;
            let mut kl = T::ZERO;
            for j in 0..a_dim {
                let i = t * a_dim + j;
                let diff = ip.mu[i] - task.mu_o[i];
                let q = (var_o[j] + diff * diff) * inv_var[j];
                kl = kl + log_std[j] - task.log_std_o[j] + T::from_f64(0.5) * q - T::from_f64(0.5);
                ws.kl_mu[i] = T::ZERO - eta * c * diff * inv_var[j];
                ws.kl_ls[j] += T::ZERO - eta * c * (T::ONE - q);
            }
            kl_sum += (kl * c).to_f64();
        }
        values.kl = kl_sum;
    }

    // ∇_θ [J^out(θ') − η KL] / M, into ws.hv (mean part) and grad.
    zeros(&mut ws.hv, p + a_dim);
    let second = cfg.second_order && cfg.alpha != 0.0;
    if second {
        // H v with the KL seed / α added: α·(H v + s/α) = α H v + ∇(−η KL).
        let (v_mean, v_ls) = ws.v.split_at(p);
        net.r_forward(theta_mean, &ip.pre, v_mean, &mut ws.r);
        let inv_alpha = recip(alpha);
        let mut seed = std::mem::take(ws.r.r_seed());
        fit(&mut seed, rows * a_dim);
        let r_mu = ws.r.r_output();
        let hv_ls = &mut ws.hv[p..];
        let two = T::from_f64(2.0);
        for t in 0..rows {
            let (w, w2) = (ip.d1[t], ip.d2[t]);
            let at = t * a_dim..(t + 1) * a_dim;
            let (u, rmu) = (&ip.u[at.clone()], &r_mu[at]);
            let mut r_lp = T::ZERO;
            for j in 0..a_dim {
                r_lp = r_lp + u[j] * inv_std[j] * rmu[j] + (u[j] * u[j] - T::ONE) * v_ls[j];
            }
            for j in 0..a_dim {
                let (uj, sj) = (u[j], inv_std[j]);
                let mut s = w2 * r_lp * uj * sj
                    + w * (T::ZERO - sj * sj * rmu[j] - two * uj * sj * v_ls[j]);
                let s_ls = w2 * r_lp * (uj * uj - T::ONE)
                    + w * (T::ZERO - two * uj * sj * rmu[j] - two * uj * uj * v_ls[j]);
                if penalty {
                    s += ws.kl_mu[t * a_dim + j] * inv_alpha;
                }
                seed[t * a_dim + j] = s;
                hv_ls[j] += s_ls;
            }
        }
        if penalty {
            for (h, k) in hv_ls.iter_mut().zip(&ws.kl_ls) {
                *h += *k * inv_alpha;
            }
        }
        *ws.r.r_seed() = seed;
        net.r_backward(&ip.pre, v_mean, &mut ws.r, &mut ws.hv[..p]);
        for ((o, v), h) in grad.iter_mut().zip(&ws.v).zip(&ws.hv) {
            *o = T::ZERO - (*v + alpha * *h);
        }
    } else {
        if penalty {
            ip.pre.output_mut().copy_from_slice(&ws.kl_mu);
            // The pre-update pass's W_lᵀ are θ's already. This backward pass overwrites
            // the pass's e and g, so the inner step is no longer whole for reuse.
            net.backward(theta_mean, &mut ip.pre, &mut ws.hv[..p], false);
            ip.at.clear();
            ws.hv[p..].copy_from_slice(&ws.kl_ls);
        }
        for ((o, v), h) in grad.iter_mut().zip(&ws.v).zip(&ws.hv) {
            *o = T::ZERO - (*v + *h);
        }
    }
    values
}

/// 1/x.
#[inline(always)]
fn recip<T: Real>(x: T) -> T {
    T::from_f64(1.0 / x.to_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::dense::tests::lcg;
    use crate::nn::Activation;

    /// The policy means `[R, A]`, written out plainly (no kernel code).
    fn means(net: &Dense, theta: &[f64], obs: &[f64]) -> Vec<f64> {
        let mut h: Vec<f64> = obs.to_vec();
        let mut off = 0;
        for l in 0..net.layers() {
            let (ni, no) = (net.sizes[l], net.sizes[l + 1]);
            let (w, b) = (
                &theta[off..off + ni * no],
                &theta[off + ni * no..off + ni * no + no],
            );
            off += ni * no + no;
            let rows = h.len() / ni;
            let mut z = vec![0.0; rows * no];
            for r in 0..rows {
                for o in 0..no {
                    z[r * no + o] =
                        b[o] + (0..ni).map(|i| h[r * ni + i] * w[i * no + o]).sum::<f64>();
                    if l + 1 < net.layers() {
                        z[r * no + o] = z[r * no + o].tanh();
                    }
                }
            }
            h = z;
        }
        h
    }

    fn log_probs(net: &Dense, theta: &[f64], rows: &Rows<'_, f64>) -> Vec<f64> {
        let p = net.num_params();
        let a = net.sizes[net.layers()];
        let mu = means(net, &theta[..p], rows.obs);
        (0..rows.mask.len())
            .map(|t| {
                (0..a)
                    .map(|j| {
                        let u = (rows.act[t * a + j] - mu[t * a + j]) / theta[p + j].exp();
                        -0.5 * u * u - theta[p + j] - HALF_LN_2PI
                    })
                    .sum()
            })
            .collect()
    }

    /// J^LR(θ) on the pre-update batch.
    fn j_lr(net: &Dense, inner: Inner, theta: &[f64], pre: &Rows<'_, f64>) -> f64 {
        let lp = log_probs(net, theta, pre);
        (0..lp.len())
            .map(|t| {
                let w = match inner {
                    Inner::Lvc => (lp[t] - pre.logp_old[t]).exp(),
                    Inner::Maml => lp[t],
                };
                w * pre.adv[t] * pre.mask[t] / pre.n
            })
            .sum()
    }

    fn j_out(net: &Dense, outer: Outer, theta: &[f64], post: &Rows<'_, f64>) -> f64 {
        let lp = log_probs(net, theta, post);
        (0..lp.len())
            .map(|t| {
                let r = (lp[t] - post.logp_old[t]).exp();
                let a = post.adv[t];
                let v = match outer {
                    Outer::Surrogate => r * a,
                    Outer::Clipped(e) => (r * a).min(r.clamp(1.0 - e, 1.0 + e) * a),
                };
                v * post.mask[t] / post.n
            })
            .sum()
    }

    fn kl(net: &Dense, theta: &[f64], task: &PgTask<'_, f64>) -> f64 {
        let p = net.num_params();
        let a = net.sizes[net.layers()];
        let mu = means(net, &theta[..p], task.pre.obs);
        (0..task.pre.mask.len())
            .map(|t| {
                let k: f64 = (0..a)
                    .map(|j| {
                        let (lq, lp) = (theta[p + j], task.log_std_o[j]);
                        let d = task.mu_o[t * a + j] - mu[t * a + j];
                        lq - lp + ((2.0 * lp).exp() + d * d) / (2.0 * (2.0 * lq).exp()) - 0.5
                    })
                    .sum();
                k * task.pre.mask[t] / task.pre.n
            })
            .sum()
    }

    /// Central finite differences of `f` at `x`.
    fn fd(x: &[f64], h: f64, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
        (0..x.len())
            .map(|i| {
                let (mut a, mut b) = (x.to_vec(), x.to_vec());
                a[i] += h;
                b[i] -= h;
                (f(&a) - f(&b)) / (2.0 * h)
            })
            .collect()
    }

    /// The loss of the module docs with the inner gradient by finite differences of
    /// J^LR; `frozen` fixes θ' − θ at its value at `frozen` (first order).
    fn loss(
        net: &Dense,
        cfg: &MetaPg,
        theta: &[f64],
        task: &PgTask<'_, f64>,
        frozen: Option<&[f64]>,
    ) -> f64 {
        let at = frozen.unwrap_or(theta);
        let g = fd(at, 1e-6, |th| j_lr(net, cfg.inner, th, &task.pre));
        let adapted: Vec<f64> = theta
            .iter()
            .zip(&g)
            .map(|(t, g)| t + cfg.alpha * g)
            .collect();
        let kl = if cfg.kl_coef != 0.0 {
            kl(net, theta, task)
        } else {
            0.0
        };
        -(j_out(net, cfg.outer, &adapted, &task.post) - cfg.kl_coef * kl) / cfg.tasks as f64
    }

    struct Data {
        pre: Vec<Vec<f64>>,
        post: Vec<Vec<f64>>,
        mu_o: Vec<f64>,
        log_std_o: Vec<f64>,
    }

    /// Batches of `r` steps for a 3-input, 2-action policy; the post-update batch's
    /// sampling log-probabilities are spread so that some ratios fall outside the clip
    /// range; a few steps are padding.
    fn data(net: &Dense, theta: &[f64], r: usize) -> Data {
        let (o, a) = (net.sizes[0], net.sizes[net.layers()]);
        let batch = |seed: u64, spread: f64| {
            let obs = lcg(seed, r * o, 1.0);
            let act = lcg(seed + 1, r * a, 1.5);
            let adv = lcg(seed + 2, r, 1.0);
            let mask: Vec<f64> = (0..r).map(|t| if t % 7 == 6 { 0.0 } else { 1.0 }).collect();
            let rows = Rows {
                obs: &obs,
                act: &act,
                logp_old: &adv,
                adv: &adv,
                mask: &mask,
                n: 1.0,
            };
            let lp = log_probs(net, theta, &rows);
            let noise = lcg(seed + 3, r, spread);
            let old: Vec<f64> = lp.iter().zip(&noise).map(|(l, e)| l + e).collect();
            vec![obs, act, old, adv, mask]
        };
        let p = net.num_params();
        let pre = batch(10, 0.2);
        let mu_o: Vec<f64> = means(net, &theta[..p], &pre[0])
            .iter()
            .zip(lcg(20, r * a, 0.3))
            .map(|(m, e)| m + e)
            .collect();
        Data {
            pre,
            post: batch(30, 0.8),
            mu_o,
            log_std_o: vec![-0.2, 0.3],
        }
    }

    fn rows(b: &[Vec<f64>]) -> Rows<'_, f64> {
        let n = b[4].iter().sum();
        Rows {
            obs: &b[0],
            act: &b[1],
            logp_old: &b[2],
            adv: &b[3],
            mask: &b[4],
            n,
        }
    }

    #[test]
    fn meta_gradient_matches_finite_differences_of_the_meta_loss() {
        let net = Dense::new(vec![3, 5, 4, 2], Activation::Tanh);
        let p = net.num_params();
        let mut theta = lcg(1, p, 0.6);
        theta.extend([-0.3, 0.2]);
        let d = data(&net, &theta, 23);
        let task = PgTask {
            pre: rows(&d.pre),
            post: rows(&d.post),
            mu_o: &d.mu_o,
            log_std_o: &d.log_std_o,
        };
        let mut clipped_steps = 0;
        for inner in [Inner::Lvc, Inner::Maml] {
            for outer in [Outer::Surrogate, Outer::Clipped(0.3)] {
                for second_order in [true, false] {
                    for kl_coef in [0.0, 0.7] {
                        let cfg = MetaPg {
                            alpha: 0.3,
                            inner,
                            second_order,
                            outer,
                            kl_coef,
                            tasks: 3,
                        };
                        let mut grad = vec![0.0; p + 2];
                        let (mut inner, mut ws) = (InnerPass::default(), PgWorkspace::default());
                        let values =
                            meta_pg_task(&net, &cfg, task, &theta, &mut inner, &mut ws, &mut grad);
                        // The inner step reused at the same θ, and recomputed after a step
                        // taken elsewhere, give the same bits.
                        let mut again = vec![0.0; p + 2];
                        meta_pg_task(&net, &cfg, task, &theta, &mut inner, &mut ws, &mut again);
                        assert_eq!(grad, again, "{cfg:?}: reused inner step");
                        let elsewhere: Vec<f64> = theta.iter().map(|t| t + 0.01).collect();
                        inner_step(&net, &cfg, task.pre, &elsewhere, &mut inner);
                        meta_pg_task(&net, &cfg, task, &theta, &mut inner, &mut ws, &mut again);
                        assert_eq!(grad, again, "{cfg:?}: recomputed inner step");
                        let frozen = (!second_order).then_some(theta.as_slice());
                        let want = fd(&theta, 1e-4, |th| loss(&net, &cfg, th, &task, frozen));
                        let scale = want.iter().fold(0.0f64, |m, x| m.max(x.abs()));
                        let err = grad
                            .iter()
                            .zip(&want)
                            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
                        println!("{cfg:?}: error {err:e} of {scale:e}");
                        assert!(err < 1e-6 * scale, "{cfg:?}: error {err:e} of {scale:e}");
                        // The values: J^out at θ' and the KL, divided by M.
                        let lo = loss(&net, &cfg, &theta, &task, None);
                        let kl_term = cfg.kl_coef * values.kl / 1.0;
                        assert!(
                            (lo + values.outer - kl_term).abs() < 1e-8,
                            "{cfg:?}: values"
                        );
                        if kl_coef != 0.0 {
                            let want_kl = kl(&net, &theta, &task) / 3.0;
                            assert!((values.kl - want_kl).abs() < 1e-12, "{cfg:?}: KL");
                        }
                    }
                }
                if let Outer::Clipped(e) = outer {
                    // Ratios at θ' = θ + α ∇J^LR(θ).
                    let g = fd(&theta, 1e-6, |th| j_lr(&net, inner, th, &task.pre));
                    let adapted: Vec<f64> =
                        theta.iter().zip(&g).map(|(t, g)| t + 0.3 * g).collect();
                    let lp = log_probs(&net, &adapted, &task.post);
                    clipped_steps += (0..lp.len())
                        .filter(|&t| ((lp[t] - task.post.logp_old[t]).exp() - 1.0).abs() > e)
                        .count();
                }
            }
        }
        // The clipped objective was checked with steps on both sides of the clip range.
        println!("{clipped_steps} steps outside the clip range (two estimators)");
        assert!(
            clipped_steps >= 6,
            "only {clipped_steps} steps outside the clip range"
        );
    }
}
