//! Fused kernels for tanh networks on Flex, as a Burn backend extension.
//!
//! Burn's Flex backend evaluates `exp` one scalar libm call at a time, and Burn's autodiff
//! records every element-wise op of a composed tanh (−2x, eˣ, +1, 1/x, ×2, −1: six passes
//! forward, and eight in the backward pass, which also recomputes eˣ and takes 1/x²). The
//! functional MLP's differentiable backward adds dz ⊙ (1 − h²) per hidden layer: three
//! more recorded ops. On the 80 000-row batches of a ProMP outer step these passes, their
//! allocations and libm's `expf` cost more than the matrix products. Flex's matrix
//! product, for its part, allocates a zero-filled byte buffer and then copies it into an
//! aligned one before `gemm` overwrites every value: two wasted passes per product.
//!
//! Four fused operations replace them on Flex:
//!
//! ```text
//! tanh(x)                      y = tanh(x)                 ∂/∂x: g ⊙ (1 − y²)
//! tanh_grad_mul(d, h)          d ⊙ (1 − h²)                ∂/∂d: g ⊙ (1 − h²),  ∂/∂h: −2 g ⊙ d ⊙ h
//! tanh_grad_mul_dh(g, d, h)    −2 g ⊙ d ⊙ h                (only inside backward passes)
//! matmul(a, b)                 a · b (per batch)           ∂/∂a: g · bᵀ,  ∂/∂b: aᵀ · g
//! ```
//!
//! The element-wise ones are one pass each, in place when an input's buffer is not
//! shared; the product writes straight into an uninitialized buffer (`gemm` with
//! `read_dst = false`, the same thread thresholds as Flex). The autodiff implementation
//! stores y (not x) for tanh's backward pass, so nothing is recomputed. Every backward is
//! itself made of fused ops, so `tanh_grad_mul` and the products of an inner-loop
//! gradient are differentiated exactly by the outer loss, which is all that exact
//! second-order MAML needs (the inner backward pass is written in tensor ops,
//! [`super::functional`]; Burn's autodiff only ever differentiates once).
//!
//! f32 uses [`super::fastmath::tanh`] (within 1.8e-7 of libm, vectorized and compiled for
//! AVX-512 or AVX2 where the CPU has them, the same operations at every level since no
//! fused multiply-add is used); f64 uses `f64::tanh`. Other backends (ndarray, wgpu) keep
//! Burn's ops: [`tanh`], [`tanh_grad_mul`] and [`matmul`] check the tensor's device.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{binary, unary, Backward, Ops, OpsKind};
use burn::backend::autodiff::Autodiff;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, AutodiffBackend, Backend, Dispatch};
use burn::prelude::*;

/// The fused operations, implemented for Flex and for Burn's autodiff over any backend
/// that has them.
#[backend_extension(Flex: cfg(feature = "flex"), Autodiff)]
pub trait FusedOps: Backend {
    /// tanh(x), element-wise.
    fn fused_tanh(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// d ⊙ (1 − h²) for tensors of one shape (the backward of tanh through its output h).
    fn fused_tanh_grad_mul(d: FloatTensor<Self>, h: FloatTensor<Self>) -> FloatTensor<Self>;
    /// −2 g ⊙ d ⊙ h for tensors of one shape (∂/∂h of `fused_tanh_grad_mul`).
    fn fused_tanh_grad_mul_dh(
        g: FloatTensor<Self>,
        d: FloatTensor<Self>,
        h: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
    /// `[r, k] · [k, c]`, or `[B, r, k] · [B, k, c]` with one batch size (no broadcasting);
    /// inputs may be strided views (transposes are not copied).
    fn fused_matmul(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// tanh(x); one fused pass on Flex, the composed exp form elsewhere.
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if on_flex(&x) {
        Tensor::from_dispatch(<Dispatch as FusedOps>::fused_tanh(x.into_dispatch()))
    } else {
        composed_tanh(x)
    }
}

/// d ⊙ (1 − h²): the tanh′ factor of a backward pass, from the layer output h. One fused
/// pass on Flex when the shapes agree, composed ops elsewhere.
pub fn tanh_grad_mul<const D: usize>(d: Tensor<D>, h: Tensor<D>) -> Tensor<D> {
    if on_flex(&d) && d.dims() == h.dims() {
        Tensor::from_dispatch(<Dispatch as FusedOps>::fused_tanh_grad_mul(
            d.into_dispatch(),
            h.into_dispatch(),
        ))
    } else {
        d * h.powi_scalar(2).neg().add_scalar(1.0)
    }
}

/// `a · b` for rank 2, or per batch for rank 3 with one batch size: on Flex a matrix
/// product whose output is not zero-filled and copied first (Flex's own allocates a
/// zeroed byte buffer and copies it into an aligned one before `gemm` overwrites it);
/// Burn's `matmul` elsewhere or for other shapes.
pub fn matmul<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    let (da, db) = (a.dims(), b.dims());
    let same_batch = D == 2 || (D == 3 && da[0] == db[0]);
    if same_batch && on_flex(&a) && da[D - 1] == db[D - 2] {
        Tensor::from_dispatch(<Dispatch as FusedOps>::fused_matmul(
            a.into_dispatch(),
            b.into_dispatch(),
        ))
    } else {
        a.matmul(b)
    }
}

/// tanh(x) = 2/(1 + e^(−2x)) − 1 in Burn ops (on Flex 4.5× faster than its scalar `tanh`,
/// examples/tanh_speed.rs).
pub fn composed_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.mul_scalar(-2.0)
        .exp()
        .add_scalar(1.0)
        .recip()
        .mul_scalar(2.0)
        .sub_scalar(1.0)
}

/// Whether a tensor lives on Flex (with or without autodiff), where the fused ops exist.
fn on_flex<const D: usize>(x: &Tensor<D>) -> bool {
    is_flex(&x.device())
}

/// Whether `device` is Flex (with or without autodiff).
pub fn is_flex(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    {
        matches!(
            device.clone().without_autodiff().as_dispatch(),
            burn::backend::DispatchDevice::Flex(_)
        )
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = device;
        false
    }
}

impl<B: FusedOps, C: CheckpointStrategy> FusedOps for Autodiff<B, C> {
    fn fused_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct TanhBackward;

        impl<B: FusedOps> Backward<B, 1> for TanhBackward {
            type State = B::FloatTensorPrimitive;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let y = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |g| {
                    B::fused_tanh_grad_mul(g, y)
                });
            }
        }

        let (x, node) = x.into_parts();
        match TanhBackward.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = B::fused_tanh(x);
                prep.finish(y.clone(), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_tanh(x)),
        }
    }

    fn fused_tanh_grad_mul(d: FloatTensor<Self>, h: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct TanhGradMulBackward;

        impl<B: FusedOps> Backward<B, 2> for TanhGradMulBackward {
            type State = (B::FloatTensorPrimitive, B::FloatTensorPrimitive);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let (d, h) = ops.state;
                let h2 = h.clone();
                binary::<B, _, _>(
                    ops.parents,
                    ops.node,
                    grads,
                    |g| B::fused_tanh_grad_mul(g, h),
                    |g| B::fused_tanh_grad_mul_dh(g, d, h2),
                );
            }
        }

        let (d, node_d) = d.into_parts();
        let (h, node_h) = h.into_parts();
        match TanhGradMulBackward
            .prepare::<C>([node_d, node_h])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = (d.clone(), h.clone());
                prep.finish(state, B::fused_tanh_grad_mul(d, h))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_tanh_grad_mul(d, h)),
        }
    }

    fn fused_tanh_grad_mul_dh(
        g: FloatTensor<Self>,
        d: FloatTensor<Self>,
        h: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        // Only called inside backward passes, on untracked tensors: a tracked version
        // would need the third derivative of tanh, which no algorithm here takes.
        assert!(
            !(g.is_tracked() || d.is_tracked() || h.is_tracked()),
            "fused_tanh_grad_mul_dh is not differentiable"
        );
        Self::from_inner(B::fused_tanh_grad_mul_dh(
            Self::inner(g),
            Self::inner(d),
            Self::inner(h),
        ))
    }

    fn fused_matmul(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct MatmulBackward;

        impl<B: FusedOps> Backward<B, 2> for MatmulBackward {
            /// The left factor when the right one needs a gradient, and vice versa.
            type State = (
                Option<B::FloatTensorPrimitive>,
                Option<B::FloatTensorPrimitive>,
            );

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let (lhs, rhs) = ops.state;
                binary::<B, _, _>(
                    ops.parents,
                    ops.node,
                    grads,
                    |g| B::fused_matmul(g, B::float_transpose(rhs.expect("rhs kept"))),
                    |g| B::fused_matmul(B::float_transpose(lhs.expect("lhs kept")), g),
                );
            }
        }

        let (lhs_tracked, rhs_tracked) = (lhs.is_tracked(), rhs.is_tracked());
        let (lhs, node_lhs) = lhs.into_parts();
        let (rhs, node_rhs) = rhs.into_parts();
        match MatmulBackward
            .prepare::<C>([node_lhs, node_rhs])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = (
                    rhs_tracked.then(|| lhs.clone()),
                    lhs_tracked.then(|| rhs.clone()),
                );
                prep.finish(state, B::fused_matmul(lhs, rhs))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_matmul(lhs, rhs)),
        }
    }
}

#[cfg(feature = "flex")]
mod flex {
    //! The Flex kernels: one pass over contiguous storage, in place when an input's
    //! buffer is not shared.

    use burn::backend::flex::{FlexTensor, Layout};
    use burn::backend::Flex;
    use burn::tensor::{Bytes, DType};

    use super::FusedOps;
    use crate::lanes::Simd;
    use crate::nn::fastmath;

    /// Contiguous from offset 0, as the kernels read storage directly.
    fn dense(t: FlexTensor) -> FlexTensor {
        if t.layout().is_contiguous() && t.layout().start_offset() == 0 {
            t
        } else {
            t.to_contiguous()
        }
    }

    /// An f32 kernel `fn $name(out, x, owner)` whose body `$body` is compiled three times
    /// (AVX-512, AVX2, baseline) and chosen at run time. The body's closures are defined
    /// inside each specialization, so they inherit its instruction set and vectorize at it.
    macro_rules! simd_kernel {
        ($name:ident, $n:literal, |$out:ident, $x:ident, $owner:ident| $body:expr) => {
            fn $name($out: &mut [f32], $x: [&[f32]; $n], $owner: Option<usize>) {
                #[cfg(target_arch = "x86_64")]
                {
                    #[target_feature(enable = "avx2,avx512f")]
                    unsafe fn avx512($out: &mut [f32], $x: [&[f32]; $n], $owner: Option<usize>) {
                        $body
                    }
                    #[target_feature(enable = "avx2")]
                    unsafe fn avx2($out: &mut [f32], $x: [&[f32]; $n], $owner: Option<usize>) {
                        $body
                    }
                    match Simd::best() {
                        // SAFETY: the CPU supports the level (`Simd::best` checked it).
                        Simd::Avx512 => return unsafe { avx512($out, $x, $owner) },
                        Simd::Avx2 => return unsafe { avx2($out, $x, $owner) },
                        Simd::Baseline => {}
                    }
                }
                $body
            }
        };
    }

    /// `out[i] = f(inputs[0][i], inputs[1][i], …)` over f32 or f64 storage of one shape;
    /// the first input whose buffer is not shared becomes the output.
    fn map<const N: usize>(
        inputs: [FlexTensor; N],
        f32_op: fn(&mut [f32], [&[f32]; N], Option<usize>),
        f64_op: fn(&mut [f64], [&[f64]; N], Option<usize>),
    ) -> FlexTensor {
        let mut inputs = inputs.map(|t| Some(dense(t)));
        let first = inputs[0].as_ref().expect("present");
        let (shape, dtype) = (first.layout().shape().clone(), first.dtype());
        let n = shape.num_elements();
        for t in inputs.iter().flatten() {
            assert_eq!(
                t.layout().shape(),
                &shape,
                "fused ops take tensors of one shape"
            );
        }
        let owner = inputs.iter().flatten().position(|t| t.is_unique());
        let mut out = owner.map(|i| inputs[i].take().expect("present"));
        macro_rules! run {
            ($e:ty, $op:expr) => {{
                // A new buffer is allocated with its element type: `Bytes::from_bytes_vec`
                // would copy a byte vector into an aligned one first.
                let mut out = out.take().unwrap_or_else(|| {
                    FlexTensor::new(
                        Bytes::from_elems(vec![<$e>::default(); n]),
                        Layout::contiguous(shape.clone()),
                        dtype,
                    )
                });
                let views: [&[$e]; N] = std::array::from_fn(|j| match &inputs[j] {
                    Some(t) => &t.storage::<$e>()[..n],
                    None => &[][..],
                });
                $op(&mut out.storage_mut::<$e>()[..n], views, owner);
                out
            }};
        }
        match dtype {
            DType::F32 => run!(f32, f32_op),
            DType::F64 => run!(f64, f64_op),
            other => panic!("fused tanh ops support f32 and f64, not {other:?}"),
        }
    }

    /// `out[i] = f([x_0[i], x_1[i], …])`, where input `owner` *is* `out` (its slice in `x`
    /// is empty). Each owner gets its own loop, so every loop vectorizes.
    #[inline(always)]
    fn each<E: Copy, const N: usize>(
        out: &mut [E],
        x: [&[E]; N],
        owner: Option<usize>,
        f: impl Fn([E; N]) -> E,
    ) {
        /// The loop for owner `O` (`O ≥ N`: no input is the output).
        #[inline(always)]
        fn run<E: Copy, const N: usize, const O: usize>(
            out: &mut [E],
            x: [&[E]; N],
            f: &impl Fn([E; N]) -> E,
        ) {
            let n = out.len();
            let x: [&[E]; N] = std::array::from_fn(|j| if j == O { &[][..] } else { &x[j][..n] });
            for i in 0..n {
                let args = std::array::from_fn(|j| if j == O { out[i] } else { x[j][i] });
                out[i] = f(args);
            }
        }
        match owner {
            None => run::<E, N, 3>(out, x, &f),
            Some(0) => run::<E, N, 0>(out, x, &f),
            Some(1) => run::<E, N, 1>(out, x, &f),
            Some(2) => run::<E, N, 2>(out, x, &f),
            Some(o) => unreachable!("fused ops have at most 3 inputs, owner {o}"),
        }
    }

    simd_kernel!(tanh_f32, 1, |out, x, owner| each(out, x, owner, |[v]| {
        fastmath::tanh(v)
    }));
    fn tanh_f64(out: &mut [f64], x: [&[f64]; 1], owner: Option<usize>) {
        each(out, x, owner, |[v]| v.tanh())
    }
    simd_kernel!(grad_mul_f32, 2, |out, x, owner| each(
        out,
        x,
        owner,
        |[d, h]| { d * (1.0 - h * h) }
    ));
    fn grad_mul_f64(out: &mut [f64], x: [&[f64]; 2], owner: Option<usize>) {
        each(out, x, owner, |[d, h]| d * (1.0 - h * h))
    }
    simd_kernel!(grad_mul_dh_f32, 3, |out, x, owner| each(
        out,
        x,
        owner,
        |[g, d, h]| -2.0 * g * d * h
    ));
    fn grad_mul_dh_f64(out: &mut [f64], x: [&[f64]; 3], owner: Option<usize>) {
        each(out, x, owner, |[g, d, h]| -2.0 * g * d * h)
    }

    impl FusedOps for Flex {
        fn fused_tanh(x: FlexTensor) -> FlexTensor {
            map([x], tanh_f32, tanh_f64)
        }

        fn fused_tanh_grad_mul(d: FlexTensor, h: FlexTensor) -> FlexTensor {
            map([d, h], grad_mul_f32, grad_mul_f64)
        }

        fn fused_tanh_grad_mul_dh(g: FlexTensor, d: FlexTensor, h: FlexTensor) -> FlexTensor {
            map([g, d, h], grad_mul_dh_f32, grad_mul_dh_f64)
        }

        fn fused_matmul(lhs: FlexTensor, rhs: FlexTensor) -> FlexTensor {
            match lhs.dtype() {
                DType::F32 => matmul_typed::<f32>(lhs, rhs),
                DType::F64 => matmul_typed::<f64>(lhs, rhs),
                other => panic!("fused matmul supports f32 and f64, not {other:?}"),
            }
        }
    }

    /// Work (multiply-adds) above which one product is split over threads, and above
    /// which a batch of products runs one product per thread: Flex's own thresholds.
    const PARALLEL_WORK: usize = 192 * 192 * 192;
    const BATCH_PARALLEL_WORK: usize = 128 * 128 * 128;

    /// A matrix operand: element pointer of matrix 0 and its batch, row and column
    /// strides (in elements).
    #[derive(Clone, Copy)]
    struct Operand<T> {
        ptr: *const T,
        batch: isize,
        row: isize,
        col: isize,
    }

    // SAFETY: operands are read-only views into buffers that outlive the product.
    unsafe impl<T> Send for Operand<T> {}
    unsafe impl<T> Sync for Operand<T> {}

    impl<T: bytemuck::Pod + burn::tensor::Element> Operand<T> {
        fn of(t: &FlexTensor) -> Self {
            let l = t.layout();
            let st = l.strides();
            let (batch, row, col) = match st.len() {
                2 => (0, st[0], st[1]),
                _ => (st[0], st[1], st[2]),
            };
            // SAFETY: the view starts inside the buffer.
            let ptr = unsafe { t.storage::<T>().as_ptr().add(l.start_offset()) };
            Operand {
                ptr,
                batch,
                row,
                col,
            }
        }

        /// The first element of matrix `i`.
        ///
        /// # Safety
        /// `i` must be below the operand's batch size.
        unsafe fn matrix(&self, i: usize) -> *const T {
            unsafe { self.ptr.offset(i as isize * self.batch) }
        }
    }

    /// `lhs · rhs` for rank 2, or per batch for rank 3 with one batch size, into an
    /// uninitialized buffer that `gemm` overwrites completely.
    fn matmul_typed<T>(lhs: FlexTensor, rhs: FlexTensor) -> FlexTensor
    where
        T: bytemuck::Pod + burn::tensor::Element + num_traits::Zero + num_traits::One,
    {
        let (ls, rs) = (lhs.layout().shape().clone(), rhs.layout().shape().clone());
        let rank = ls.num_dims();
        assert!(
            (rank == 2 || rank == 3) && rs.num_dims() == rank,
            "fused matmul takes two rank-2 or two rank-3 tensors"
        );
        let batch = if rank == 3 { ls[0] } else { 1 };
        let (m, k, n) = (ls[rank - 2], ls[rank - 1], rs[rank - 1]);
        assert!(
            rs[rank - 2] == k && (rank == 2 || rs[0] == batch),
            "fused matmul: shapes {ls:?} and {rs:?} do not agree"
        );
        let mut out_shape = ls.clone();
        out_shape[rank - 1] = n;
        let len = batch * m * n;
        if k == 0 || len == 0 {
            let zeros = vec![T::zero(); len];
            return FlexTensor::new(
                Bytes::from_elems(zeros),
                Layout::contiguous(out_shape),
                T::dtype(),
            );
        }
        let (a, b) = (Operand::<T>::of(&lhs), Operand::<T>::of(&rhs));
        let mut out: Vec<T> = Vec::with_capacity(len);
        let one = |dst: *mut T, i: usize, par: gemm::Parallelism| {
            // SAFETY: the operands' strides and shapes describe their buffers, `dst` has
            // room for m × n values, and `read_dst = false` writes every one of them.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    dst,
                    1,
                    n as isize,
                    false,
                    a.matrix(i),
                    a.col,
                    a.row,
                    b.matrix(i),
                    b.col,
                    b.row,
                    T::zero(),
                    T::one(),
                    false,
                    false,
                    false,
                    par,
                )
            }
        };
        let work = m * n * k;
        let spare = &mut out.spare_capacity_mut()[..len];
        if batch > 1 && work < PARALLEL_WORK && batch * work >= BATCH_PARALLEL_WORK {
            use rayon::prelude::*;
            spare
                .par_chunks_mut(m * n)
                .enumerate()
                .for_each(|(i, c)| one(c.as_mut_ptr().cast(), i, gemm::Parallelism::None));
        } else {
            let par = if work >= PARALLEL_WORK {
                gemm::Parallelism::Rayon(0)
            } else {
                gemm::Parallelism::None
            };
            for (i, c) in spare.chunks_mut(m * n).enumerate() {
                one(c.as_mut_ptr().cast(), i, par);
            }
        }
        // SAFETY: every product above wrote all m × n values of its chunk.
        unsafe { out.set_len(len) };
        FlexTensor::new(
            Bytes::from_elems(out),
            Layout::contiguous(out_shape),
            T::dtype(),
        )
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use crate::nn::to_vec;

    fn sample(shape: [usize; 2], d: &Device) -> Tensor<2> {
        let n = shape[0] * shape[1];
        let v: Vec<f32> = (0..n).map(|i| 9.0 * ((i as f32) * 0.377).sin()).collect();
        Tensor::from_data(TensorData::new(v, shape), d)
    }

    #[test]
    fn f32_kernels_match_the_composed_ops_in_place_or_not() {
        let d = crate::device::DeviceKind::Flex.device().unwrap();
        // Odd sizes leave a remainder after every vector width.
        let x = sample([37, 19], &d);
        let want = to_vec(composed_tanh(x.clone()));
        // Shared input (a new buffer) and unique input (written in place) agree.
        let shared = to_vec(tanh(x.clone()));
        let before = to_vec(x.clone());
        let unique = to_vec(tanh(Tensor::<2>::from_data(x.to_data(), &d)));
        assert_eq!(shared, unique);
        assert_eq!(to_vec(x.clone()), before, "a shared input is not modified");
        let worst = want
            .iter()
            .zip(&shared)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 4e-7, "fused vs composed tanh: {worst:e}");

        let h = tanh(sample([37, 19], &d).mul_scalar(0.3));
        let dz = sample([37, 19], &d);
        let want = to_vec(dz.clone() * h.clone().powi_scalar(2).neg().add_scalar(1.0));
        let got = to_vec(tanh_grad_mul(dz.clone(), h.clone()));
        for (a, b) in want.iter().zip(&got) {
            assert!((a - b).abs() <= 1e-6 * (1.0 + a.abs()), "{a} vs {b}");
        }
        // A transposed (non-contiguous) view is read in its logical order.
        let (dt, ht) = (dz.clone().transpose(), h.clone().transpose());
        let want = to_vec(dt.clone() * ht.clone().powi_scalar(2).neg().add_scalar(1.0));
        let got = to_vec(tanh_grad_mul(dt, ht));
        for (a, b) in want.iter().zip(&got) {
            assert!((a - b).abs() <= 1e-6 * (1.0 + a.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn f32_matmul_matches_burn_on_its_threaded_paths() {
        let d = crate::device::DeviceKind::Flex.device().unwrap();
        let rand = |shape: [usize; 3]| -> Tensor<3> {
            Tensor::random(shape, burn::tensor::Distribution::Normal(0.0, 1.0), &d)
        };
        let check = |a: Tensor<3>, b: Tensor<3>| {
            let want = to_vec(a.clone().matmul(b.clone()));
            let got = to_vec(matmul(a, b));
            assert_eq!(want.len(), got.len());
            for (w, g) in want.iter().zip(&got) {
                assert!((w - g).abs() <= 1e-4 * (1.0 + w.abs()), "{w} vs {g}");
            }
        };
        // One large product (split over threads), and a batch of small ones (one per
        // thread), the second with a transposed left factor.
        check(rand([1, 300, 200]), rand([1, 200, 300]));
        check(rand([40, 64, 50]).swap_dims(1, 2), rand([40, 64, 64]));
        // Rank 2.
        let a: Tensor<2> = rand([1, 7, 9]).reshape([7, 9]);
        let b: Tensor<2> = rand([1, 9, 4]).reshape([9, 4]);
        let want = to_vec(a.clone().matmul(b.clone()));
        let got = to_vec(matmul(a, b));
        for (w, g) in want.iter().zip(&got) {
            assert!((w - g).abs() <= 1e-5 * (1.0 + w.abs()), "{w} vs {g}");
        }
    }
}
