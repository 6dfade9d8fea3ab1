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
    /// eˣ.
    fn exp(self) -> Self;
    /// Writes the 8 × 8 blocks of `out = xᵀ` (`x: [r, c]`, see [`transpose`]) with vector
    /// shuffles and returns true, or does nothing and returns false.
    fn transpose_blocks(_out: &mut [Self], _x: &[Self], _r: usize, _c: usize) -> bool {
        false
    }
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
    /// [`super::fastmath::tanh`], the function Flex's fused tanh computes (vectorizes).
    fn tanh(self) -> Self {
        super::fastmath::tanh(self)
    }
    /// [`super::fastmath::exp`] (vectorizes).
    fn exp(self) -> Self {
        super::fastmath::exp(self)
    }
    fn transpose_blocks(out: &mut [f32], x: &[f32], r: usize, c: usize) -> bool {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: AVX was detected; `transpose` sized both buffers to r · c.
            unsafe { transpose_blocks_avx(out, x, r, c) };
            return true;
        }
        let _ = (out, x, r, c);
        false
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
    fn exp(self) -> Self {
        f64::exp(self)
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
    /// Input of every layer with a ones column, `h[0] = [x 1]`, `[K, n_l + 1]`: the bias
    /// is the last row of each layer's `[W; b]` block, so z = [h 1]·[W; b] and
    /// [∇W; ∇b] = [h 1]ᵀ e are one product each.
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

impl<T> Pass<T> {
    /// The network output `[K, n_L]` after [`Dense::forward`]; the caller replaces it by
    /// ∂loss/∂y before [`Dense::backward`].
    pub(super) fn output_mut(&mut self) -> &mut [T] {
        self.e.last_mut().expect("a forward pass")
    }
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
    /// Layer widths of the network `thetas[0]` and `passes[0]` belong to.
    sizes: Vec<usize>,
}

/// `c = a · b` (or `c += a · b` when `accumulate`), row-major, `a: [r, m]`, `b: [m, n]`;
/// with `A_T` the left factor is stored transposed, `a: [m, r]`, and `c = aᵀ · b`.
/// Tiles of 4 (then 2, then 1) rows × 16 (then 8, then 1) columns are accumulated in
/// registers.
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
    if n == 1 {
        // A matrix-vector product: dot products of a's rows with b, or, when a is stored
        // transposed, the one-row product bᵀ · a (vectorized along a's rows).
        if A_T {
            return matmul::<T, false>(c, b, a, (1, m, r), accumulate);
        }
        let mut i = 0;
        while i + 4 <= r {
            let d = dots::<T, 4>(&a[i * m..(i + 4) * m], &b[..m]);
            for (q, dq) in d.into_iter().enumerate() {
                c[i + q] = if accumulate { c[i + q] + dq } else { dq };
            }
            i += 4;
        }
        if i + 2 <= r {
            let d = dots::<T, 2>(&a[i * m..(i + 2) * m], &b[..m]);
            for (q, dq) in d.into_iter().enumerate() {
                c[i + q] = if accumulate { c[i + q] + dq } else { dq };
            }
            i += 2;
        }
        if i < r {
            let [d] = dots::<T, 1>(&a[i * m..(i + 1) * m], &b[..m]);
            c[i] = if accumulate { c[i] + d } else { d };
        }
        return;
    }
    let dims = Dims { r, m, n };
    // SAFETY: every tile reads rows < r of a, rows < m of b and writes rows < r of c,
    // columns < n, within the lengths asserted above.
    unsafe {
        let mut i = 0;
        while i + 4 <= r {
            row_tiles::<T, 4, A_T>(c, a, b, i, dims, accumulate);
            i += 4;
        }
        if i + 2 <= r {
            row_tiles::<T, 2, A_T>(c, a, b, i, dims, accumulate);
            i += 2;
        }
        if i < r {
            row_tiles::<T, 1, A_T>(c, a, b, i, dims, accumulate);
        }
    }
}

/// The dot products of R consecutive rows of `a` (`[R, m]`) with `y` (`[m]`), 8 partial
/// sums per row at a time (R independent chains).
#[inline(always)]
fn dots<T: Real, const R: usize>(a: &[T], y: &[T]) -> [T; R] {
    let m = y.len();
    assert!(a.len() >= R * m, "dots shapes");
    let full = m / 8 * 8;
    let mut s = [[T::ZERO; 8]; R];
    let (ap, yp) = (a.as_ptr(), y.as_ptr());
    for p in (0..full).step_by(8) {
        for (q, sq) in s.iter_mut().enumerate() {
            for (t, st) in sq.iter_mut().enumerate() {
                // SAFETY: q < R, p + t < m, and a holds R · m values (asserted above).
                unsafe { *st += *ap.add(q * m + p + t) * *yp.add(p + t) };
            }
        }
    }
    std::array::from_fn(|q| {
        let sq = &mut s[q];
        for w in [4, 2, 1] {
            for t in 0..w {
                sq[t] += sq[t + w];
            }
        }
        let mut d = sq[0];
        for p in full..m {
            d += a[q * m + p] * y[p];
        }
        d
    })
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

/// `out = xᵀ` for row-major `x: [r, c]`: 8 × 8 blocks in AVX registers for f32 where the
/// CPU has AVX ([`Real::transpose_blocks`]), the rest element by element.
#[inline(always)]
fn transpose<T: Real>(out: &mut Vec<T>, x: &[T], r: usize, c: usize) {
    fit(out, r * c);
    let x = &x[..r * c];
    let (rb, cb) = if T::transpose_blocks(out, x, r, c) {
        (r / 8 * 8, c / 8 * 8)
    } else {
        (0, 0)
    };
    // Whatever the blocks did not cover: rows below rb, and columns right of cb.
    for i in 0..r {
        let from = if i < rb { cb } else { 0 };
        for j in from..c {
            out[j * r + i] = x[i * c + j];
        }
    }
}

/// The 8 × 8 blocks of an f32 transpose `out = xᵀ`, `x: [r, c]`, rows < r / 8 · 8 and
/// columns < c / 8 · 8.
///
/// # Safety
/// The CPU must support AVX; `x` and `out` must hold r · c values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose_blocks_avx(out: &mut [f32], x: &[f32], r: usize, c: usize) {
    use std::arch::x86_64::*;
    assert!(x.len() >= r * c && out.len() >= r * c);
    let (xp, op) = (x.as_ptr(), out.as_mut_ptr());
    for i in (0..r / 8 * 8).step_by(8) {
        for j in (0..c / 8 * 8).step_by(8) {
            let row = |q: usize| _mm256_loadu_ps(xp.add((i + q) * c + j));
            let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
            let (r4, r5, r6, r7) = (row(4), row(5), row(6), row(7));
            let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
            let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
            let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
            let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
            let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let col = |q: usize, v: __m256| _mm256_storeu_ps(op.add((j + q) * r + i), v);
            col(0, _mm256_permute2f128_ps::<0x20>(s0, s4));
            col(1, _mm256_permute2f128_ps::<0x20>(s1, s5));
            col(2, _mm256_permute2f128_ps::<0x20>(s2, s6));
            col(3, _mm256_permute2f128_ps::<0x20>(s3, s7));
            col(4, _mm256_permute2f128_ps::<0x31>(s0, s4));
            col(5, _mm256_permute2f128_ps::<0x31>(s1, s5));
            col(6, _mm256_permute2f128_ps::<0x31>(s2, s6));
            col(7, _mm256_permute2f128_ps::<0x31>(s3, s7));
        }
    }
}

/// `v` with `n` elements, keeping its allocation; the contents are unspecified (every
/// caller overwrites all of them), so a buffer of the right size is not cleared again.
#[inline(always)]
pub(super) fn fit<T: Real>(v: &mut Vec<T>, n: usize) {
    if v.len() != n {
        v.clear();
        v.resize(n, T::ZERO);
    }
}

impl Dense {
    /// Forward pass on `x: [K, n_0]`: fills `pass` (inputs with their ones column, σ') and
    /// leaves the output `[K, n_L]` in `pass.e[L−1]`.
    #[inline(always)]
    pub(super) fn forward<T: Real>(&self, theta: &[T], x: &[T], pass: &mut Pass<T>) {
        let nl = self.layers();
        let n0 = self.sizes[0];
        let k = x.len() / n0;
        pass.k = k;
        pass.h.resize_with(nl, Vec::new);
        pass.ds.resize_with(nl - 1, Vec::new);
        pass.e.resize_with(nl, Vec::new);
        pass.g.resize_with(nl, Vec::new);
        pass.wt.resize_with(nl, Vec::new);
        let h0 = &mut pass.h[0];
        h0.clear();
        for row in x.chunks_exact(n0) {
            h0.extend_from_slice(row);
            h0.push(T::ONE);
        }
        for l in 0..nl {
            let (ni, no) = (self.sizes[l], self.sizes[l + 1]);
            let (wo, bo) = self.offsets(l);
            // z = [h 1] · [W; b], one product: b is stored right after W.
            let mut z = std::mem::take(&mut pass.e[l]);
            fit(&mut z, k * no);
            matmul::<T, false>(
                &mut z,
                &pass.h[l],
                &theta[wo..bo + no],
                (k, ni + 1, no),
                false,
            );
            if l + 1 == nl {
                pass.e[l] = z;
                break;
            }
            let (ds, h) = (&mut pass.ds[l], &mut pass.h[l + 1]);
            fit(ds, k * no);
            fit(h, k * (no + 1));
            for ((zr, dr), hr) in z
                .chunks_exact(no)
                .zip(ds.chunks_exact_mut(no))
                .zip(h.chunks_exact_mut(no + 1))
            {
                match self.activation {
                    Activation::Relu => {
                        for ((zi, di), hi) in zr.iter().zip(dr.iter_mut()).zip(hr.iter_mut()) {
                            let on = *zi > T::ZERO;
                            *di = if on { T::ONE } else { T::ZERO };
                            *hi = if on { *zi } else { T::ZERO };
                        }
                    }
                    Activation::Tanh => {
                        for ((zi, di), hi) in zr.iter().zip(dr.iter_mut()).zip(hr.iter_mut()) {
                            let t = zi.tanh();
                            *hi = t;
                            *di = T::ONE - t * t;
                        }
                    }
                    Activation::Identity => {
                        hr[..no].copy_from_slice(zr);
                        dr.fill(T::ONE);
                    }
                }
                hr[no] = T::ONE;
            }
            pass.e[l] = z; // keeps the buffer for the next pass
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
    /// `grad` and keeps e_l, g_l and W_lᵀ in `pass` (W_lᵀ already there from the same
    /// `theta` when `!transpose`).
    #[inline(always)]
    pub(super) fn backward<T: Real>(
        &self,
        theta: &[T],
        pass: &mut Pass<T>,
        grad: &mut [T],
        transpose: bool,
    ) {
        let (nl, k) = (self.layers(), pass.k);
        for l in (0..nl).rev() {
            let (ni, no) = (self.sizes[l], self.sizes[l + 1]);
            let (wo, bo) = self.offsets(l);
            // [∇W; ∇b] = [h 1]ᵀ e, one product.
            let block = &mut grad[wo..bo + no];
            matmul::<T, true>(block, &pass.h[l], &pass.e[l], (ni + 1, k, no), false);
            if l > 0 {
                if transpose {
                    self::transpose(&mut pass.wt[l], &theta[wo..bo], ni, no);
                }
                let mut g = std::mem::take(&mut pass.g[l]);
                fit(&mut g, k * ni);
                matmul::<T, false>(&mut g, &pass.e[l], &pass.wt[l], (k, no, ni), false);
                let mut e = std::mem::take(&mut pass.e[l - 1]);
                e.clear();
                e.extend(g.iter().zip(&pass.ds[l - 1]).map(|(a, b)| *a * *b));
                pass.e[l - 1] = e;
                pass.g[l] = g;
            }
        }
    }

    /// The MSE of `theta` on `(x, t)`; its gradient goes to `grad`. With `keep_wt` the
    /// pass's W_lᵀ are reused (they must come from the same `theta`).
    #[inline(always)]
    fn loss_grad<T: Real>(
        &self,
        theta: &[T],
        (x, t): (&[T], &[T]),
        pass: &mut Pass<T>,
        grad: &mut [T],
        keep_wt: bool,
    ) -> f64 {
        self.forward(theta, x, pass);
        let loss = Self::mse(pass, t);
        self.backward(theta, pass, grad, !keep_wt);
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
        self.r_forward(theta, pass, v, ws);
        let two_k = T::from_f64(2.0 / pass.k as f64);
        let ry = std::mem::take(&mut ws.rz[self.layers() - 1]);
        ws.re.clear();
        ws.re.extend(ry.iter().map(|x| two_k * *x));
        ws.rz[self.layers() - 1] = ry;
        self.r_backward(pass, v, ws, out);
    }

    /// The R-forward pass in direction `v` (the network's part of a flat vector, `[V; c]`
    /// per layer) at the pass's parameters `theta`: R{z_l} and R{h_l} into `ws`, with the
    /// output's R{y} = R{z_{L−1}} last ([`Workspace::r_output`]).
    #[inline(always)]
    pub(super) fn r_forward<T: Real>(
        &self,
        theta: &[T],
        pass: &Pass<T>,
        v: &[T],
        ws: &mut Workspace<T>,
    ) {
        let (nl, k) = (self.layers(), pass.k);
        ws.rz.resize_with(nl, Vec::new);
        ws.rh.resize_with(nl, Vec::new);
        // R{z_l} = [h 1]·[V; c] + R{h_l} W_l;  R{h_{l+1}} = σ' ⊙ R{z_l}.
        for l in 0..nl {
            let (ni, no) = (self.sizes[l], self.sizes[l + 1]);
            let (wo, bo) = self.offsets(l);
            let z = &mut ws.rz[l];
            fit(z, k * no);
            matmul::<T, false>(z, &pass.h[l], &v[wo..bo + no], (k, ni + 1, no), false);
            if l > 0 {
                matmul::<T, false>(z, &ws.rh[l], &theta[wo..bo], (k, ni, no), true);
            }
            if l + 1 < nl {
                let rh = &mut ws.rh[l + 1];
                rh.clear();
                rh.extend(z.iter().zip(&pass.ds[l]).map(|(a, b)| *a * *b));
            }
        }
    }

    /// The R-backward pass after [`Self::r_forward`] in the same direction `v`, from the
    /// output seed R{e_{L−1}} the caller left in [`Workspace::r_seed`] (the loss's second
    /// derivatives applied to R{y}): (Hv) of the network's parameters into `out`. A seed
    /// s added to it adds the plain backward of s to `out` (the recursion is linear).
    #[inline(always)]
    pub(super) fn r_backward<T: Real>(
        &self,
        pass: &Pass<T>,
        v: &[T],
        ws: &mut Workspace<T>,
        out: &mut [T],
    ) {
        let (nl, k) = (self.layers(), pass.k);
        for l in (0..nl).rev() {
            let (ni, no) = (self.sizes[l], self.sizes[l + 1]);
            let (wo, bo) = self.offsets(l);
            // [(Hv)_W; (Hv)_b] = [h 1]ᵀ R{e} + [R{h} 0]ᵀ e.
            matmul::<T, true>(
                &mut out[wo..bo + no],
                &pass.h[l],
                &ws.re,
                (ni + 1, k, no),
                false,
            );
            if l == 0 {
                break;
            }
            matmul::<T, true>(&mut out[wo..bo], &ws.rh[l], &pass.e[l], (ni, k, no), true);
            fit(&mut ws.rg, k * ni);
            matmul::<T, false>(&mut ws.rg, &ws.re, &pass.wt[l], (k, no, ni), false);
            transpose(&mut ws.vt, &v[wo..bo], ni, no);
            matmul::<T, false>(&mut ws.rg, &pass.e[l], &ws.vt, (k, no, ni), true);
            let (rg, ds) = (&ws.rg, &pass.ds[l - 1]);
            match self.activation {
                Activation::Tanh => {
                    // + g ⊙ σ'' ⊙ R{z}, with σ'' = −2 h σ' (h has its ones column).
                    let (h, g, rzl) = (&pass.h[l], &pass.g[l], &ws.rz[l - 1]);
                    let m2 = T::from_f64(-2.0);
                    fit(&mut ws.re, k * ni);
                    let rows = ws.re.chunks_exact_mut(ni).zip(h.chunks_exact(ni + 1));
                    for (r, (re, hr)) in rows.enumerate() {
                        let at = r * ni..(r + 1) * ni;
                        let (rg, ds, g, rz) =
                            (&rg[at.clone()], &ds[at.clone()], &g[at.clone()], &rzl[at]);
                        for (q, x) in re.iter_mut().enumerate() {
                            *x = rg[q] * ds[q] + g[q] * (m2 * hr[q] * ds[q]) * rz[q];
                        }
                    }
                }
                _ => {
                    ws.re.clear();
                    ws.re.extend(rg.iter().zip(ds).map(|(a, b)| *a * *b));
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

impl<T: Real> Workspace<T> {
    /// R{y}, the network output's R-forward value after [`Dense::r_forward`], `[K, n_L]`.
    pub(super) fn r_output(&self) -> &[T] {
        self.rz.last().expect("an R-forward pass")
    }

    /// The output seed R{e_{L−1}} that [`Dense::r_backward`] starts from, for the caller
    /// to fill (`[K, n_L]`).
    pub(super) fn r_seed(&mut self) -> &mut Vec<T> {
        &mut self.re
    }

    /// Makes `theta` the starting point θ of the next [`maml_task`] calls on this workspace:
    /// one copy and one set of W_lᵀ per batch, shared by the batch's tasks that run here.
    pub fn start_from(&mut self, net: &Dense, theta: &[T]) {
        assert_eq!(
            theta.len(),
            net.num_params(),
            "theta must match the layer sizes"
        );
        if self.thetas.is_empty() {
            self.thetas.push(Vec::new());
        }
        self.thetas[0].clear();
        self.thetas[0].extend_from_slice(theta);
        self.sizes.clone_from(&net.sizes);
        if self.passes.is_empty() {
            self.passes.push(Pass::default());
        }
        let wt = &mut self.passes[0].wt;
        wt.resize_with(net.layers(), Vec::new);
        for (l, wt) in wt.iter_mut().enumerate().skip(1) {
            let (wo, bo) = net.offsets(l);
            transpose(wt, &theta[wo..bo], net.sizes[l], net.sizes[l + 1]);
        }
    }
}

/// Defines the public kernel entry point `$name(args…)`, which calls `$inline(args…)`
/// compiled for AVX-512, AVX2 or the baseline, the best level the CPU has (chosen at run
/// time). The same operations run at every level (no fused multiply-add), so the results
/// agree.
macro_rules! simd_entry {
    (
        $(#[$doc:meta])*
        pub fn $name:ident<$t:ident: Real>($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty
            => $inline:ident;
    ) => {
        $(#[$doc])*
        pub fn $name<$t: Real>($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,avx512f")]
                unsafe fn avx512<$t: Real>($($arg: $ty),*) -> $ret {
                    $inline($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                unsafe fn avx2<$t: Real>($($arg: $ty),*) -> $ret {
                    $inline($($arg),*)
                }
                use crate::lanes::Simd;
                match Simd::best() {
                    // SAFETY: the CPU supports the level (`Simd::best` checked it).
                    Simd::Avx512 => return unsafe { avx512($($arg),*) },
                    Simd::Avx2 => return unsafe { avx2($($arg),*) },
                    Simd::Baseline => {}
                }
            }
            $inline($($arg),*)
        }
    };
}
pub(super) use simd_entry;

simd_entry! {
    /// The MAML meta-gradient of one task into `grad`, with `cfg` = (α, steps,
    /// second_order): `steps` inner SGD steps of size α on the support set from θ (set by
    /// [`Workspace::start_from`]), then ∇_θ of the
    /// query loss, differentiated through the steps when `second_order` (exact; see the
    /// module docs), else first-order MAML's ∇L_Q(θ_n). Compiled for AVX-512, AVX2 and the
    /// baseline.
    pub fn maml_task<T: Real>(
        net: &Dense,
        task: TaskData<'_, T>,
        cfg: (f64, usize, bool),
        ws: &mut Workspace<T>,
        grad: &mut [T],
    ) -> TaskLosses => maml_task_inline;
}

#[inline(always)]
fn maml_task_inline<T: Real>(
    net: &Dense,
    task: TaskData<'_, T>,
    (alpha, steps, second_order): (f64, usize, bool),
    ws: &mut Workspace<T>,
    grad: &mut [T],
) -> TaskLosses {
    let p = net.num_params();
    assert!(
        ws.sizes == net.sizes && ws.thetas.first().map(Vec::len) == Some(p) && grad.len() == p,
        "Workspace::start_from(net, θ) must come first; grad must match the layer sizes"
    );
    let a = T::from_f64(alpha);
    ws.thetas.resize_with(steps + 1, Vec::new);
    ws.passes.resize_with(steps + 1, Pass::default);
    // Inner loop: θ_{s+1} = θ_s − α ∇L_S(θ_s), keeping every pass for the R-operator.
    let mut pre = 0.0;
    for s in 0..steps {
        // The first pass's W_lᵀ are θ's, from `start_from`.
        let keep = s == 0;
        let support = (task.xs, task.ys);
        let loss = net.loss_grad(&ws.thetas[s], support, &mut ws.passes[s], grad, keep);
        if s == 0 {
            pre = loss;
        }
        let mut next = std::mem::take(&mut ws.thetas[s + 1]);
        next.clear();
        next.extend(ws.thetas[s].iter().zip(&*grad).map(|(t, g)| *t - a * *g));
        ws.thetas[s + 1] = next;
    }
    if steps == 0 {
        let (theta, pass) = (&ws.thetas[0], &mut ws.passes[0]);
        pre = net.loss_grad(theta, (task.xs, task.ys), pass, grad, true);
    }
    let query = (task.xq, task.yq);
    let keep = steps == 0; // θ_0's W_lᵀ are already in passes[0]
    let post = net.loss_grad(&ws.thetas[steps], query, &mut ws.passes[steps], grad, keep);
    if second_order {
        let mut hv = std::mem::take(&mut ws.hv);
        fit(&mut hv, p);
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
pub(super) mod tests {
    use super::*;

    /// `n` deterministic values in [−scale, scale) (a linear congruential generator).
    pub(in crate::nn) fn lcg(seed: u64, n: usize, scale: f64) -> Vec<f64> {
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
    fn f32_transpose_blocks_match_the_definition() {
        for &(r, c) in &[(40, 40), (8, 8), (17, 9), (3, 40), (40, 1), (16, 24)] {
            let x: Vec<f32> = lcg(4, r * c, 1.0).iter().map(|v| *v as f32).collect();
            let mut out = Vec::new();
            transpose(&mut out, &x, r, c);
            for i in 0..r {
                for j in 0..c {
                    assert_eq!(out[j * r + i], x[i * c + j], "({r}, {c}) at ({i}, {j})");
                }
            }
        }
    }

    #[test]
    fn matmul_matches_the_definition_for_every_block_shape() {
        for &(r, m, n) in &[
            (1, 1, 1),
            (10, 40, 1),
            (40, 10, 1),
            (2, 3, 16),
            (3, 5, 25),
            (10, 40, 40),
            (7, 1, 41),
            (40, 65, 2),
            (9, 3, 3),
            (12, 7, 4),
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
            net.loss_grad(&theta, (&x, &t), &mut pass, &mut grad, false);
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
                net.loss_grad(&th, (&x, &t), &mut pass, &mut g, false);
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

    /// [`maml_task`] from θ.
    fn maml_task_from(
        net: &Dense,
        theta: &[f64],
        task: TaskData<'_, f64>,
        cfg: (f64, usize, bool),
        ws: &mut Workspace<f64>,
        grad: &mut [f64],
    ) -> TaskLosses {
        ws.start_from(net, theta);
        maml_task(net, task, cfg, ws, grad)
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
            net.loss_grad(&th, (task.xs, task.ys), &mut pass, &mut g, false);
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
            let r = maml_task_from(&net, &theta, task, (alpha, steps, true), &mut ws, &mut grad);
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
            maml_task_from(&net, &theta, task, (alpha, steps, false), &mut ws, &mut fo);
            let mut th = theta.clone();
            for _ in 0..steps {
                let (mut pass, mut g) = (Pass::default(), vec![0.0; p]);
                net.loss_grad(&th, (&xs, &ys), &mut pass, &mut g, false);
                th.iter_mut().zip(&g).for_each(|(t, g)| *t -= alpha * g);
            }
            let (mut pass, mut gq) = (Pass::default(), vec![0.0; p]);
            net.loss_grad(&th, (&xq, &yq), &mut pass, &mut gq, false);
            assert_eq!(fo, gq);
            let mut again = vec![0.0; p];
            maml_task_from(
                &net,
                &theta,
                task,
                (alpha, steps, true),
                &mut ws,
                &mut again,
            );
            assert_eq!(again, grad, "a reused workspace gives the same gradient");
            // Another θ on the same workspace: nothing of the previous θ is reused.
            let other: Vec<f64> = theta.iter().map(|t| t * 0.9 + 0.01).collect();
            let (mut g_reused, mut g_fresh) = (vec![0.0; p], vec![0.0; p]);
            maml_task_from(
                &net,
                &other,
                task,
                (alpha, steps, true),
                &mut ws,
                &mut g_reused,
            );
            let mut fresh = Workspace::default();
            maml_task_from(
                &net,
                &other,
                task,
                (alpha, steps, true),
                &mut fresh,
                &mut g_fresh,
            );
            assert_eq!(g_reused, g_fresh, "a new θ on a used workspace");
            let differs = fo.iter().zip(&grad).any(|(a, b)| (a - b).abs() > 1e-6);
            assert!(differs, "the Hessian term must change the gradient");
        }
    }
}
