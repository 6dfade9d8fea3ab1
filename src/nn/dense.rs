//! An MLP regressor on host memory with a hand-written backward pass and Hessian-vector
//! product: the whole MAML meta-gradient of a small supervised network in one fused pass
//! per task, with no tensor graph.
//!
//! The tensor route ([`super::functional`] under Burn's autodiff) builds a graph of about a
//! hundred nodes per sine-MAML iteration whose matrices are tiny (10 points × 40 units):
//! node bookkeeping, allocation and per-op dispatch cost more than the arithmetic. Here
//! every matrix of one task stays in L1 and the second-order term is Pearlmutter's
//! R-operator written out by hand (Pearlmutter 1994, "Fast exact multiplication by the
//! Hessian"), so the meta-gradient of n inner steps is
//!
//! ```text
//! θ_0 = θ,  θ_{s+1} = θ_s − α ∇L_S(θ_s)                  (s = 0 … n−1)
//! v  = ∇L_Q(θ_n)
//! v ← v − α H_S(θ_s) v                                   (s = n−1 … 0; second order only)
//! ∇_θ L_Q(θ_n) = v
//! ```
//!
//! Notation (per task, K points, row-major): layers l = 0 … L−1 with `W_l: [n_l, n_{l+1}]`,
//! `b_l: [n_{l+1}]`; h_0 = x, z_l = h_l W_l + b_l, h_{l+1} = σ(z_l), output y = z_{L−1};
//! loss (1/K) Σ_k ‖y_k − t_k‖² (the tensor route's [`super::functional::mse_and_grad`]).
//!
//! ```text
//! backward     e_{L−1} = (2/K)(y − t)
//!              ∇W_l = h_lᵀ e_l,  ∇b_l = Σ_k e_l,  g_l = e_l W_lᵀ,  e_{l−1} = g_l ⊙ σ'(z_{l−1})
//! R-operator   (direction V_l, c_l; R{h_0} = 0)
//!              R{z_l} = R{h_l} W_l + h_l V_l + c_l,       R{h_{l+1}} = σ'(z_l) ⊙ R{z_l}
//!              R{e_{L−1}} = (2/K) R{z_{L−1}}
//!              (Hv)_{W_l} = R{h_l}ᵀ e_l + h_lᵀ R{e_l},  (Hv)_{b_l} = Σ_k R{e_l}
//!              R{g_l} = R{e_l} W_lᵀ + e_l V_lᵀ
//!              R{e_{l−1}} = R{g_l} ⊙ σ'(z_{l−1}) + g_l ⊙ σ''(z_{l−1}) ⊙ R{z_{l−1}}
//! ```
//!
//! with relu' = 1[z > 0], relu'' = 0 (the tensor route's convention, exact almost
//! everywhere), tanh' = 1 − h², tanh'' = −2h(1 − h²). Parameters are flat vectors in
//! [`crate::params::flatten`] order (per layer W row-major `[n_l, n_{l+1}]`, then b).
//!
//! The code is generic over f32 and f64: f64 for the finite-difference tests, f32 for
//! training. Matrix products are one small register-blocked kernel ([`matmul`]); the
//! per-task function is compiled for AVX-512, AVX2 and the baseline and chosen at run time
//! (the same operations at every level: no fused multiply-add, so results agree).

use std::ops::{Add, AddAssign, Mul, Sub};

use super::Activation;

/// The float types the kernels run in.
pub trait Real:
    Copy
    + Default
    + Send
    + Sync
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + AddAssign
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// Conversion from f64 (rounding for f32).
    fn from_f64(x: f64) -> Self;
    /// Conversion to f64 (exact).
    fn to_f64(self) -> f64;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn tanh(self) -> Self {
        f32::tanh(self)
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
}

/// The network's shape: layer widths `[n_0, …, n_L]` and the hidden nonlinearity.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// Layer widths, input first.
    pub sizes: Vec<usize>,
    /// Hidden nonlinearity (none after the last layer).
    pub activation: Activation,
}

impl Dense {
    /// A network with widths `sizes` (at least input and output).
    pub fn new(sizes: Vec<usize>, activation: Activation) -> Self {
        assert!(sizes.len() >= 2, "an MLP has an input and an output width");
        Self { sizes, activation }
    }

    /// Number of layers L.
    pub fn layers(&self) -> usize {
        self.sizes.len() - 1
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.sizes.windows(2).map(|s| s[0] * s[1] + s[1]).sum()
    }

    /// Offsets of `W_l` and `b_l` in the flat vector.
    fn offsets(&self, l: usize) -> (usize, usize) {
        let w: usize = self.sizes[..=l]
            .windows(2)
            .map(|s| s[0] * s[1] + s[1])
            .sum();
        (w, w + self.sizes[l] * self.sizes[l + 1])
    }
}

/// What one forward and backward pass at one parameter vector keeps for the R-operator.
/// Buffers are reused from call to call.
#[derive(Clone, Debug, Default)]
pub struct Pass<T> {
    /// Points K.
    k: usize,
    /// Input of every layer, `h[0] = x`, `[K, n_l]`.
    h: Vec<Vec<T>>,
    /// σ'(z_l) of every hidden layer, `[K, n_{l+1}]`.
    ds: Vec<Vec<T>>,
    /// ∂loss/∂z_l, `[K, n_{l+1}]`; `e[L−1]` first holds the output y.
    e: Vec<Vec<T>>,
    /// g_l = e_l W_lᵀ for l ≥ 1 (`g[0]` unused), `[K, n_l]`.
    g: Vec<Vec<T>>,
    /// W_lᵀ, `[n_{l+1}, n_l]`.
    wt: Vec<Vec<T>>,
}

/// Buffers of one task's meta-gradient, reused from task to task on one thread.
#[derive(Clone, Debug, Default)]
pub struct Workspace<T> {
    /// θ_0 … θ_n.
    thetas: Vec<Vec<T>>,
    /// The support pass at θ_0 … θ_{n−1}, and the query pass last.
    passes: Vec<Pass<T>>,
    /// Hessian-vector product.
    hv: Vec<T>,
    /// R{z_l}.
    rz: Vec<Vec<T>>,
    /// R{h_l} (`rh[0]` unused: R{h_0} = 0).
    rh: Vec<Vec<T>>,
    /// R{e_l} of the current layer and R{g_l}.
    re: Vec<T>,
    rg: Vec<T>,
    /// V_lᵀ.
    vt: Vec<T>,
}

/// `c = a · b` (or `c += a · b` when `accumulate`), row-major, `a: [r, m]`, `b: [m, n]`;
/// with `A_T` the left factor is stored transposed, `a: [m, r]`, and `c = aᵀ · b`.
/// Tiles of 4 rows × 16 (then 8, then 1) columns are accumulated in registers.
#[inline(always)]
pub fn matmul<T: Real, const A_T: bool>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    (r, m, n): (usize, usize, usize),
    accumulate: bool,
) {
    assert!(
        c.len() >= r * n && a.len() >= r * m && b.len() >= m * n,
        "matmul shapes"
    );
    let dims = Dims { r, m, n };
    // SAFETY: every tile reads rows < r of a, rows < m of b and writes rows < r of c,
    // columns < n, within the lengths asserted above.
    unsafe {
        let mut i = 0;
        while i + 4 <= r {
            row_tiles::<T, 4, A_T>(c, a, b, i, dims, accumulate);
            i += 4;
        }
        while i < r {
            row_tiles::<T, 1, A_T>(c, a, b, i, dims, accumulate);
            i += 1;
        }
    }
}

/// Matrix sizes of [`matmul`].
#[derive(Clone, Copy)]
struct Dims {
    r: usize,
    m: usize,
    n: usize,
}

/// Rows i … i+R of [`matmul`], every column.
#[inline(always)]
unsafe fn row_tiles<T: Real, const R: usize, const A_T: bool>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    i: usize,
    d: Dims,
    accumulate: bool,
) {
    let mut j = 0;
    while j + 16 <= d.n {
        tile::<T, R, 16, A_T>(c, a, b, i, j, d, accumulate);
        j += 16;
    }
    if j + 8 <= d.n {
        tile::<T, R, 8, A_T>(c, a, b, i, j, d, accumulate);
        j += 8;
    }
    while j < d.n {
        tile::<T, R, 1, A_T>(c, a, b, i, j, d, accumulate);
        j += 1;
    }
}

/// Rows i … i+R and columns j … j+W of [`matmul`]: R × W sums in registers.
#[inline(always)]
unsafe fn tile<T: Real, const R: usize, const W: usize, const A_T: bool>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    i: usize,
    j: usize,
    d: Dims,
    accumulate: bool,
) {
    let (cp, ap, bp) = (c.as_mut_ptr(), a.as_ptr(), b.as_ptr());
    let mut s = [[T::ZERO; W]; R];
    if accumulate {
        for (q, sq) in s.iter_mut().enumerate() {
            for (t, st) in sq.iter_mut().enumerate() {
                *st = *cp.add((i + q) * d.n + j + t);
            }
        }
    }
    for p in 0..d.m {
        let row = bp.add(p * d.n + j);
        let mut x = [T::ZERO; R];
        for (q, xq) in x.iter_mut().enumerate() {
            *xq = if A_T {
                *ap.add(p * d.r + i + q)
            } else {
                *ap.add((i + q) * d.m + p)
            };
        }
        for (sq, xq) in s.iter_mut().zip(x) {
            for (t, st) in sq.iter_mut().enumerate() {
                *st += xq * *row.add(t);
            }
        }
    }
    for (q, sq) in s.iter().enumerate() {
        for (t, st) in sq.iter().enumerate() {
            *cp.add((i + q) * d.n + j + t) = *st;
        }
    }
}

/// `out = xᵀ` for row-major `x: [r, c]`, in 8 × 8 blocks (loads and stores of whole
/// block rows, which the compiler turns into vector shuffles).
#[inline(always)]
fn transpose<T: Real>(out: &mut Vec<T>, x: &[T], r: usize, c: usize) {
    const B: usize = 8;
    resize(out, r * c);
    assert!(x.len() >= r * c);
    let (mut i, o, x) = (0, out.as_mut_slice(), &x[..r * c]);
    while i + B <= r {
        let mut j = 0;
        while j + B <= c {
            let mut blk = [[T::ZERO; B]; B];
            for (q, row) in blk.iter_mut().enumerate() {
                row.copy_from_slice(&x[(i + q) * c + j..(i + q) * c + j + B]);
            }
            for t in 0..B {
                let col: [T; B] = std::array::from_fn(|q| blk[q][t]);
                o[(j + t) * r + i..(j + t) * r + i + B].copy_from_slice(&col);
            }
            j += B;
        }
        for q in i..i + B {
            for t in j..c {
                o[t * r + q] = x[q * c + t];
            }
        }
        i += B;
    }
    for q in i..r {
        for t in 0..c {
            o[t * r + q] = x[q * c + t];
        }
    }
}

/// `out[k, :] = bias` for k < K.
#[inline(always)]
fn broadcast_rows<T: Real>(out: &mut Vec<T>, bias: &[T], k: usize) {
    out.clear();
    for _ in 0..k {
        out.extend_from_slice(bias);
    }
}

/// Column sums of `x: [K, n]` into `out: [n]`.
#[inline(always)]
fn column_sums<T: Real>(out: &mut [T], x: &[T], n: usize) {
    out.fill(T::ZERO);
    for row in x.chunks_exact(n) {
        for (o, v) in out.iter_mut().zip(row) {
            *o += *v;
        }
    }
}

/// `v` as `n` zeros, keeping its allocation.
#[inline(always)]
fn resize<T: Real>(v: &mut Vec<T>, n: usize) {
    v.clear();
    v.resize(n, T::ZERO);
}

impl Dense {
    /// Forward pass on `x: [K, n_0]`: fills `pass` (inputs, σ') and leaves the output
    /// `[K, n_L]` in `pass.e[L−1]`.
    #[inline(always)]
    fn forward<T: Real>(&self, theta: &[T], x: &[T], pass: &mut Pass<T>) {
        let nl = self.layers();
        let k = x.len() / self.sizes[0];
        pass.k = k;
        pass.h.resize_with(nl, Vec::new);
        pass.ds.resize_with(nl - 1, Vec::new);
        pass.e.resize_with(nl, Vec::new);
        pass.g.resize_with(nl, Vec::new);
        pass.wt.resize_with(nl, Vec::new);
        pass.h[0].clear();
        pass.h[0].extend_from_slice(x);
        for l in 0..nl {
            let (ni, no) = (self.sizes[l], self.sizes[l + 1]);
            let (wo, bo) = self.offsets(l);
            let mut z = if l + 1 == nl {
                std::mem::take(&mut pass.e[l])
            } else {
                std::mem::take(&mut pass.h[l + 1])
            };
            broadcast_rows(&mut z, &theta[bo..bo + no], k);
            matmul::<T, false>(&mut z, &pass.h[l], &theta[wo..bo], (k, ni, no), true);
            if l + 1 == nl {
                pass.e[l] = z;
                break;
            }
            let ds = &mut pass.ds[l];
            resize(ds, k * no);
            match self.activation {
                Activation::Relu => {
                    for (zi, di) in z.iter_mut().zip(ds.iter_mut()) {
                        let on = *zi > T::ZERO;
                        *di = if on { T::ONE } else { T::ZERO };
                        *zi = if on { *zi } else { T::ZERO };
                    }
                }
                Activation::Tanh => {
                    for (zi, di) in z.iter_mut().zip(ds.iter_mut()) {
                        let h = zi.tanh();
                        *zi = h;
                        *di = T::ONE - h * h;
                    }
                }
                Activation::Identity => ds.fill(T::ONE),
            }
            pass.h[l + 1] = z;
        }
    }

    /// MSE (1/K) Σ ‖y − t‖² of the output a [`Self::forward`] left in `pass`, which is
    /// replaced by ∂loss/∂y = (2/K)(y − t).
    #[inline(always)]
    fn mse<T: Real>(pass: &mut Pass<T>, t: &[T]) -> f64 {
        let k = pass.k;
        let two_k = T::from_f64(2.0 / k as f64);
        let mut loss = 0.0;
        let y = pass.e.last_mut().expect("a forward pass");
        for (a, b) in y.iter_mut().zip(t) {
            let d = *a - *b;
            loss += (d * d).to_f64();
            *a = two_k * d;
        }
        loss / k as f64
    }

    /// Backward pass after [`Self::forward`] and [`Self::mse`]: writes the gradient into
    /// `grad` and keeps e_l, g_l and W_lᵀ in `pass`.
    #[inline(always)]
    fn backward<T: Real>(&self, theta: &[T], pass: &mut Pass<T>, grad: &mut [T]) {
        let (nl, k) = (self.layers(), pass.k);
        for l in (0..nl).rev() {
            let (ni, no) = (self.sizes[l], self.sizes[l + 1]);
            let (wo, bo) = self.offsets(l);
            matmul::<T, true>(
                &mut grad[wo..bo],
                &pass.h[l],
                &pass.e[l],
                (ni, k, no),
                false,
            );
            column_sums(&mut grad[bo..bo + no], &pass.e[l], no);
            transpose(&mut pass.wt[l], &theta[wo..bo], ni, no);
            if l > 0 {
                let mut g = std::mem::take(&mut pass.g[l]);
                resize(&mut g, k * ni);
                matmul::<T, false>(&mut g, &pass.e[l], &pass.wt[l], (k, no, ni), false);
                let mut e = std::mem::take(&mut pass.e[l - 1]);
                e.clear();
                e.extend(g.iter().zip(&pass.ds[l - 1]).map(|(a, b)| *a * *b));
                pass.e[l - 1] = e;
                pass.g[l] = g;
            }
        }
    }

    /// The MSE of `theta` on `(x, t)`; its gradient goes to `grad`.
    #[inline(always)]
    fn loss_grad<T: Real>(
        &self,
        theta: &[T],
        x: &[T],
        t: &[T],
        pass: &mut Pass<T>,
        grad: &mut [T],
    ) -> f64 {
        self.forward(theta, x, pass);
        let loss = Self::mse(pass, t);
        self.backward(theta, pass, grad);
        loss
    }

    /// H v, the Hessian of the MSE at the pass's parameters (`theta`) times `v`, into `out`.
    #[inline(always)]
    fn hvp<T: Real>(
        &self,
        theta: &[T],
        pass: &Pass<T>,
        v: &[T],
        ws: &mut Workspace<T>,
        out: &mut [T],
    ) {
        let (nl, k) = (self.layers(), pass.k);
        ws.rz.resize_with(nl, Vec::new);
        ws.rh.resize_with(nl, Vec::new);
        // R-forward: R{z_l} for every layer; R{h_{l+1}} = σ' ⊙ R{z_l}.
        for l in 0..nl {
            let (ni, no) = (self.sizes[l], self.sizes[l + 1]);
            let (wo, bo) = self.offsets(l);
            let z = &mut ws.rz[l];
            broadcast_rows(z, &v[bo..bo + no], k);
            matmul::<T, false>(z, &pass.h[l], &v[wo..bo], (k, ni, no), true);
            if l > 0 {
                matmul::<T, false>(z, &ws.rh[l], &theta[wo..bo], (k, ni, no), true);
            }
            if l + 1 < nl {
                let rh = &mut ws.rh[l + 1];
                rh.clear();
                rh.extend(z.iter().zip(&pass.ds[l]).map(|(a, b)| *a * *b));
            }
        }
        // R-backward.
        let two_k = T::from_f64(2.0 / k as f64);
        ws.re.clear();
        ws.re.extend(ws.rz[nl - 1].iter().map(|x| two_k * *x));
        for l in (0..nl).rev() {
            let (ni, no) = (self.sizes[l], self.sizes[l + 1]);
            let (wo, bo) = self.offsets(l);
            matmul::<T, true>(&mut out[wo..bo], &pass.h[l], &ws.re, (ni, k, no), false);
            if l > 0 {
                matmul::<T, true>(&mut out[wo..bo], &ws.rh[l], &pass.e[l], (ni, k, no), true);
            }
            column_sums(&mut out[bo..bo + no], &ws.re, no);
            if l > 0 {
                resize(&mut ws.rg, k * ni);
                matmul::<T, false>(&mut ws.rg, &ws.re, &pass.wt[l], (k, no, ni), false);
                transpose(&mut ws.vt, &v[wo..bo], ni, no);
                matmul::<T, false>(&mut ws.rg, &pass.e[l], &ws.vt, (k, no, ni), true);
                let (rg, ds) = (&ws.rg, &pass.ds[l - 1]);
                ws.re.clear();
                match self.activation {
                    Activation::Tanh => {
                        // + g ⊙ σ'' ⊙ R{z}, with σ'' = −2 h σ'.
                        let (h, g, rzl) = (&pass.h[l], &pass.g[l], &ws.rz[l - 1]);
                        let m2 = T::from_f64(-2.0);
                        ws.re.extend(
                            (0..k * ni)
                                .map(|i| rg[i] * ds[i] + g[i] * (m2 * h[i] * ds[i]) * rzl[i]),
                        );
                    }
                    _ => ws.re.extend(rg.iter().zip(ds).map(|(a, b)| *a * *b)),
                }
            }
        }
    }
}

/// One task's support set `(xs, ys)` and query set `(xq, yq)`, row-major `[K, n]`.
#[derive(Clone, Copy, Debug)]
pub struct TaskData<'a, T> {
    /// Support inputs.
    pub xs: &'a [T],
    /// Support targets.
    pub ys: &'a [T],
    /// Query inputs.
    pub xq: &'a [T],
    /// Query targets.
    pub yq: &'a [T],
}

/// Losses of one task's MAML step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskLosses {
    /// Support loss at θ (before adaptation).
    pub pre: f64,
    /// Query loss at the adapted parameters θ_n.
    pub post: f64,
}

/// The MAML meta-gradient of one task into `grad`: `steps` inner SGD steps of size
/// `alpha` on the support set from `theta`, then ∇_θ of the query loss, differentiated
/// through the steps when `second_order` (exact; see the module docs), else first-order
/// MAML's ∇L_Q(θ_n). Compiled for AVX-512, AVX2 and the baseline.
pub fn maml_task<T: Real>(
    net: &Dense,
    theta: &[T],
    task: TaskData<'_, T>,
    (alpha, steps, second_order): (f64, usize, bool),
    ws: &mut Workspace<T>,
    grad: &mut [T],
) -> TaskLosses {
    let cfg = (alpha, steps, second_order);
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,avx512f")]
        unsafe fn avx512<T: Real>(
            net: &Dense,
            theta: &[T],
            task: TaskData<'_, T>,
            cfg: (f64, usize, bool),
            ws: &mut Workspace<T>,
            grad: &mut [T],
        ) -> TaskLosses {
            maml_task_inline(net, theta, task, cfg, ws, grad)
        }
        #[target_feature(enable = "avx2")]
        unsafe fn avx2<T: Real>(
            net: &Dense,
            theta: &[T],
            task: TaskData<'_, T>,
            cfg: (f64, usize, bool),
            ws: &mut Workspace<T>,
            grad: &mut [T],
        ) -> TaskLosses {
            maml_task_inline(net, theta, task, cfg, ws, grad)
        }
        use crate::lanes::Simd;
        match Simd::best() {
            // SAFETY: the CPU supports the level (`Simd::best` checked it).
            Simd::Avx512 => return unsafe { avx512(net, theta, task, cfg, ws, grad) },
            Simd::Avx2 => return unsafe { avx2(net, theta, task, cfg, ws, grad) },
            Simd::Baseline => {}
        }
    }
    maml_task_inline(net, theta, task, cfg, ws, grad)
}

#[inline(always)]
fn maml_task_inline<T: Real>(
    net: &Dense,
    theta: &[T],
    task: TaskData<'_, T>,
    (alpha, steps, second_order): (f64, usize, bool),
    ws: &mut Workspace<T>,
    grad: &mut [T],
) -> TaskLosses {
    let p = net.num_params();
    assert!(
        theta.len() == p && grad.len() == p,
        "theta and grad must match the layer sizes"
    );
    let a = T::from_f64(alpha);
    ws.thetas.resize_with(steps + 1, Vec::new);
    ws.passes.resize_with(steps + 1, Pass::default);
    ws.thetas[0].clear();
    ws.thetas[0].extend_from_slice(theta);
    // Inner loop: θ_{s+1} = θ_s − α ∇L_S(θ_s), keeping every pass for the R-operator.
    let mut pre = 0.0;
    for s in 0..steps {
        let loss = net.loss_grad(&ws.thetas[s], task.xs, task.ys, &mut ws.passes[s], grad);
        if s == 0 {
            pre = loss;
        }
        let mut next = std::mem::take(&mut ws.thetas[s + 1]);
        next.clear();
        next.extend(ws.thetas[s].iter().zip(&*grad).map(|(t, g)| *t - a * *g));
        ws.thetas[s + 1] = next;
    }
    if steps == 0 {
        pre = net.loss_grad(theta, task.xs, task.ys, &mut ws.passes[0], grad);
    }
    let post = net.loss_grad(
        &ws.thetas[steps],
        task.xq,
        task.yq,
        &mut ws.passes[steps],
        grad,
    );
    if second_order {
        let mut hv = std::mem::take(&mut ws.hv);
        resize(&mut hv, p);
        let (thetas, passes) = (
            std::mem::take(&mut ws.thetas),
            std::mem::take(&mut ws.passes),
        );
        for s in (0..steps).rev() {
            net.hvp(&thetas[s], &passes[s], grad, ws, &mut hv);
            for (g, h) in grad.iter_mut().zip(&hv) {
                *g = *g - a * *h;
            }
        }
        (ws.thetas, ws.passes, ws.hv) = (thetas, passes, hv);
    }
    TaskLosses { pre, post }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: u64, n: usize, scale: f64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    #[test]
    fn matmul_matches_the_definition_for_every_block_shape() {
        for &(r, m, n) in &[
            (1, 1, 1),
            (2, 3, 16),
            (3, 5, 25),
            (10, 40, 40),
            (7, 1, 41),
            (5, 9, 8),
        ] {
            let (a, b) = (lcg(1, r * m, 1.0), lcg(2, m * n, 1.0));
            let c0 = lcg(3, r * n, 1.0);
            let mut c = c0.clone();
            matmul::<f64, false>(&mut c, &a, &b, (r, m, n), true);
            let mut at = Vec::new();
            transpose(&mut at, &a, r, m);
            let mut ct = c0.clone();
            matmul::<f64, true>(&mut ct, &at, &b, (r, m, n), true);
            let mut fresh = c0.clone();
            matmul::<f64, false>(&mut fresh, &a, &b, (r, m, n), false);
            for i in 0..r {
                for j in 0..n {
                    let prod = (0..m).map(|p| a[i * m + p] * b[p * n + j]).sum::<f64>();
                    let want = c0[i * n + j] + prod;
                    assert!(
                        (c[i * n + j] - want).abs() < 1e-12,
                        "({r},{m},{n}) at ({i},{j})"
                    );
                    assert!(
                        (ct[i * n + j] - want).abs() < 1e-12,
                        "aᵀ: ({r},{m},{n}) at ({i},{j})"
                    );
                    assert!(
                        (fresh[i * n + j] - prod).abs() < 1e-12,
                        "= : ({r},{m},{n}) at ({i},{j})"
                    );
                }
            }
        }
    }

    fn loss(net: &Dense, theta: &[f64], x: &[f64], t: &[f64]) -> f64 {
        let mut pass = Pass::default();
        net.forward(theta, x, &mut pass);
        Dense::mse(&mut pass, t)
    }

    #[test]
    fn gradient_and_hessian_vector_product_match_finite_differences() {
        for act in [Activation::Tanh, Activation::Relu, Activation::Identity] {
            let net = Dense::new(vec![2, 5, 4, 3], act);
            let p = net.num_params();
            let theta = lcg(7, p, 0.8);
            let (x, t) = (lcg(8, 6 * 2, 2.0), lcg(9, 6 * 3, 1.0));
            let (mut pass, mut grad) = (Pass::default(), vec![0.0; p]);
            net.loss_grad(&theta, &x, &t, &mut pass, &mut grad);
            let v = lcg(10, p, 1.0);
            let mut hv = vec![0.0; p];
            net.hvp(&theta, &pass, &v, &mut Workspace::default(), &mut hv);
            let h = 1e-6;
            for i in 0..p {
                let (mut up, mut dn) = (theta.clone(), theta.clone());
                up[i] += h;
                dn[i] -= h;
                let fd = (loss(&net, &up, &x, &t) - loss(&net, &dn, &x, &t)) / (2.0 * h);
                assert!(
                    (grad[i] - fd).abs() < 1e-7 * (1.0 + fd.abs()),
                    "{act:?} ∇[{i}]"
                );
            }
            // H v against central differences of the gradient along v.
            let h = 1e-5;
            let shifted = |sign: f64| {
                let th: Vec<f64> = theta
                    .iter()
                    .zip(&v)
                    .map(|(a, b)| a + sign * h * b)
                    .collect();
                let (mut pass, mut g) = (Pass::default(), vec![0.0; p]);
                net.loss_grad(&th, &x, &t, &mut pass, &mut g);
                g
            };
            let (gu, gd) = (shifted(1.0), shifted(-1.0));
            for i in 0..p {
                let fd = (gu[i] - gd[i]) / (2.0 * h);
                assert!(
                    (hv[i] - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                    "{act:?} Hv[{i}]: {} vs {fd}",
                    hv[i]
                );
            }
        }
    }

    /// L_Q(θ_n) after `steps` plain SGD steps on the support set: the meta-objective.
    fn meta_loss(
        net: &Dense,
        theta: &[f64],
        task: TaskData<'_, f64>,
        alpha: f64,
        steps: usize,
    ) -> f64 {
        let mut th = theta.to_vec();
        for _ in 0..steps {
            let (mut pass, mut g) = (Pass::default(), vec![0.0; th.len()]);
            net.loss_grad(&th, task.xs, task.ys, &mut pass, &mut g);
            th.iter_mut().zip(&g).for_each(|(t, g)| *t -= alpha * g);
        }
        loss(net, &th, task.xq, task.yq)
    }

    #[test]
    fn meta_gradient_matches_finite_differences_of_the_adapted_loss() {
        for (act, steps) in [
            (Activation::Tanh, 1),
            (Activation::Tanh, 3),
            (Activation::Relu, 2),
        ] {
            let net = Dense::new(vec![1, 6, 5, 1], act);
            let p = net.num_params();
            let theta = lcg(11, p, 0.9);
            let (xs, ys, xq, yq) = (
                lcg(12, 7, 3.0),
                lcg(13, 7, 2.0),
                lcg(14, 7, 3.0),
                lcg(15, 7, 2.0),
            );
            let task = TaskData {
                xs: &xs,
                ys: &ys,
                xq: &xq,
                yq: &yq,
            };
            let alpha = 0.1;
            let mut ws = Workspace::default();
            let mut grad = vec![0.0; p];
            let r = maml_task(&net, &theta, task, (alpha, steps, true), &mut ws, &mut grad);
            assert!((r.post - meta_loss(&net, &theta, task, alpha, steps)).abs() < 1e-12);
            assert!((r.pre - loss(&net, &theta, &xs, &ys)).abs() < 1e-12);
            let h = 1e-6;
            let mut worst: f64 = 0.0;
            for i in 0..p {
                let (mut up, mut dn) = (theta.clone(), theta.clone());
                up[i] += h;
                dn[i] -= h;
                let fd = (meta_loss(&net, &up, task, alpha, steps)
                    - meta_loss(&net, &dn, task, alpha, steps))
                    / (2.0 * h);
                worst = worst.max((grad[i] - fd).abs() / (1.0 + fd.abs()));
            }
            assert!(
                worst < 1e-7,
                "{act:?}, {steps} steps: worst relative error {worst:e}"
            );
            // First order: the gradient of the query loss at θ_n, no Hessian terms.
            // The workspace is reused: results must not depend on what it held.
            let mut fo = vec![0.0; p];
            maml_task(&net, &theta, task, (alpha, steps, false), &mut ws, &mut fo);
            let mut th = theta.clone();
            for _ in 0..steps {
                let (mut pass, mut g) = (Pass::default(), vec![0.0; p]);
                net.loss_grad(&th, &xs, &ys, &mut pass, &mut g);
                th.iter_mut().zip(&g).for_each(|(t, g)| *t -= alpha * g);
            }
            let (mut pass, mut gq) = (Pass::default(), vec![0.0; p]);
            net.loss_grad(&th, &xq, &yq, &mut pass, &mut gq);
            assert_eq!(fo, gq);
            let mut again = vec![0.0; p];
            maml_task(
                &net,
                &theta,
                task,
                (alpha, steps, true),
                &mut ws,
                &mut again,
            );
            assert_eq!(again, grad, "a reused workspace gives the same gradient");
            let differs = fo.iter().zip(&grad).any(|(a, b)| (a - b).abs() > 1e-6);
            assert!(differs, "the Hessian term must change the gradient");
        }
    }
}
