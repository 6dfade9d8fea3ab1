//! Module ⇄ flat parameter vector, and flat vector → [`GradientsParams`].
//!
//! Evolution strategies treat a policy as a point θ ∈ ℝᵈ. The order of coordinates is
//! Burn's visiting order: fields in declaration order, `Vec` elements by index, a
//! `Linear`'s weight (row-major `[d_in, d_out]`) before its bias. [`unflatten`] keeps every
//! parameter's id, so optimizer state keyed by id stays attached, and [`to_gradients`]
//! lets an ES estimate go through the same Burn optimizer as an autodiff gradient.

use burn::module::{ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;

/// Number of float parameters of a module.
pub fn num_params<M: Module>(module: &M) -> usize {
    module.num_params()
}

struct Flatten(Vec<f32>);

impl ModuleVisitor for Flatten {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.0.extend(crate::nn::to_vec(p.val()));
    }
}

/// All float parameters of `module` as one vector, in visiting order.
pub fn flatten<M: Module>(module: &M) -> Vec<f32> {
    let mut f = Flatten(Vec::with_capacity(module.num_params()));
    module.visit(&mut f);
    f.0
}

struct Unflatten<'a> {
    src: &'a [f32],
    off: usize,
}

impl ModuleMapper for Unflatten<'_> {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let shape = p.lazy_shape();
        let n = shape.num_elements();
        let chunk = self.src[self.off..self.off + n].to_vec();
        self.off += n;
        p.map(|old| {
            let rg = old.is_require_grad();
            Tensor::from_data(TensorData::new(chunk, shape), &old.device()).set_require_grad(rg)
        })
    }
}

/// A copy of `module` whose parameters are read from `theta` (same order as
/// [`flatten`]); parameter ids and `require_grad` flags are kept.
///
/// # Panics
/// When `theta.len()` differs from the module's parameter count.
pub fn unflatten<M: Module>(module: M, theta: &[f32]) -> M {
    assert_eq!(
        theta.len(),
        module.num_params(),
        "theta must hold exactly one value per parameter"
    );
    let mut m = Unflatten { src: theta, off: 0 };
    module.map(&mut m)
}

struct Collect<'a> {
    src: &'a [f32],
    off: usize,
    device: Device,
    out: GradientsParams,
}

impl ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let shape = p.lazy_shape();
        let n = shape.num_elements();
        let chunk = self.src[self.off..self.off + n].to_vec();
        self.off += n;
        let g: Tensor<D> = Tensor::from_data(TensorData::new(chunk, shape), &self.device);
        self.out.register(p.id, g);
    }
}

/// Gradients keyed by `module`'s parameter ids, read from a flat vector in
/// [`flatten`] order — the currency Burn optimizers take. Optimizers descend, so pass the
/// negated estimate to ascend an objective.
pub fn to_gradients<M: Module>(module: &M, grad: &[f32], device: &Device) -> GradientsParams {
    assert_eq!(
        grad.len(),
        module.num_params(),
        "one gradient entry per parameter"
    );
    let mut c = Collect {
        src: grad,
        off: 0,
        device: device.clone(),
        out: GradientsParams::new(),
    };
    module.visit(&mut c);
    c.out
}

/// One optimizer step that *ascends* an objective along `direction` (a flat vector in
/// [`flatten`] order: a gradient or an ES estimate of one): Burn optimizers descend, so
/// the step takes −`direction`. Returns the updated module.
pub fn ascend<M: Module>(
    optim: &mut burn::optim::ModuleOptimizer,
    lr: f64,
    module: M,
    direction: &[f32],
    device: &Device,
) -> M {
    let neg: Vec<f32> = direction.iter().map(|g| -g).collect();
    descend(optim, lr, module, &neg, device)
}

/// One optimizer step that *descends* a loss along its flat gradient `grad` ([`flatten`]
/// order). Returns the updated module.
pub fn descend<M: Module>(
    optim: &mut burn::optim::ModuleOptimizer,
    lr: f64,
    module: M,
    grad: &[f32],
    device: &Device,
) -> M {
    let grads = to_gradients(&module, grad, device);
    optim.step(lr, module, grads)
}

struct Ids(Vec<ParamId>);

impl ModuleVisitor for Ids {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.0.push(p.id);
    }
}

/// The ids of every float parameter, in [`flatten`] order.
pub fn param_ids<M: Module>(module: &M) -> Vec<ParamId> {
    let mut v = Ids(Vec::new());
    module.visit(&mut v);
    v.0
}

struct GradFlatten<'a> {
    grads: &'a GradientsParams,
    out: Vec<f32>,
}

impl ModuleVisitor for GradFlatten<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        match self.grads.get::<D>(p.id) {
            Some(g) => self.out.extend(crate::nn::to_vec(g)),
            None => self
                .out
                .extend(std::iter::repeat_n(0.0, p.lazy_shape().num_elements())),
        }
    }
}

/// Gradients as one flat vector in [`flatten`] order (zeros for parameters without a
/// gradient).
pub fn flatten_gradients<M: Module>(module: &M, grads: &GradientsParams) -> Vec<f32> {
    let mut v = GradFlatten {
        grads,
        out: Vec::with_capacity(module.num_params()),
    };
    module.visit(&mut v);
    v.out
}

/// Euclidean norm of a flat vector.
pub fn norm(v: &[f32]) -> f64 {
    v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
}
