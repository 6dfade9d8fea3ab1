//! MAME's networks as functional parameters: leaves to differentiate, or constants.

use super::*;

/// MAME's parameters in functional form (leaves for gradients, or constants).
#[derive(Clone, Debug)]
pub struct MameParams {
    /// μ_φ.
    pub explore: GaussianParams,
    /// π_θ (input s ⊕ z).
    pub exploit: GaussianParams,
    /// M_β (input s ⊕ a ⊕ z).
    pub ssl: MlpParams,
    /// z, `[1, 1, latent_dim]`.
    pub z: Tensor<3>,
}

fn gaussian_parts(p: &GaussianParams) -> Vec<Tensor<3>> {
    let mut v = mlp_parts(&p.mean);
    v.push(p.log_std.clone());
    v
}

fn mlp_parts(p: &MlpParams) -> Vec<Tensor<3>> {
    p.w.iter()
        .zip(&p.b)
        .flat_map(|(w, b)| [w.clone(), b.clone()])
        .collect()
}

fn mlp_from(template: &MlpParams, it: &mut impl Iterator<Item = Tensor<3>>) -> MlpParams {
    let mut w = Vec::new();
    let mut b = Vec::new();
    for _ in 0..template.num_layers() {
        w.push(it.next().expect("enough parts"));
        b.push(it.next().expect("enough parts"));
    }
    MlpParams {
        w,
        b,
        activation: template.activation,
    }
}

impl MameParams {
    /// The modules' current values as fresh autodiff leaves.
    pub fn leaves(nets: &MameNets, latent: &Latent) -> Self {
        Self::constants(nets, latent).map(|t| t.require_grad())
    }

    /// The modules' current values, untracked.
    pub fn constants(nets: &MameNets, latent: &Latent) -> Self {
        let p = Self {
            explore: GaussianParams::from_policy(&nets.explore),
            exploit: GaussianParams::from_policy(&nets.exploit),
            ssl: MlpParams::from_mlp(&nets.ssl),
            z: latent
                .z
                .val()
                .reshape([1, 1, latent.z.lazy_shape().as_slice()[0]]),
        };
        p.map(|t| t.detach())
    }

    /// Every tensor in [`crate::params::flatten`] order of (nets, latent): μ_φ's layers
    /// and log-std, π_θ's, M_β's layers, z.
    pub fn parts(&self) -> Vec<Tensor<3>> {
        let mut v = gaussian_parts(&self.explore);
        v.extend(gaussian_parts(&self.exploit));
        v.extend(mlp_parts(&self.ssl));
        v.push(self.z.clone());
        v
    }

    /// The same layout filled with `parts` (in [`Self::parts`] order).
    pub fn from_parts(&self, parts: Vec<Tensor<3>>) -> Self {
        let mut it = parts.into_iter();
        let explore = GaussianParams {
            mean: mlp_from(&self.explore.mean, &mut it),
            log_std: it.next().expect("enough parts"),
        };
        let exploit = GaussianParams {
            mean: mlp_from(&self.exploit.mean, &mut it),
            log_std: it.next().expect("enough parts"),
        };
        let ssl = mlp_from(&self.ssl, &mut it);
        let z = it.next().expect("enough parts");
        assert!(it.next().is_none(), "too many parts");
        Self {
            explore,
            exploit,
            ssl,
            z,
        }
    }

    /// Applies `f` to every tensor.
    pub fn map(&self, f: impl FnMut(Tensor<3>) -> Tensor<3>) -> Self {
        self.from_parts(self.parts().into_iter().map(f).collect())
    }

    /// All values as one flat vector (f64).
    pub fn to_flat(&self) -> Vec<f64> {
        self.parts().into_iter().flat_map(to_vec_f64).collect()
    }

    /// Gradients of every part from `g` as one flat vector (zeros where a part is unused).
    pub fn gradients(&self, g: &burn::tensor::Gradients) -> Vec<f64> {
        self.parts()
            .into_iter()
            .flat_map(|t| match t.grad(g) {
                Some(d) => to_vec_f64(d),
                None => vec![0.0; t.shape().num_elements()],
            })
            .collect()
    }

    /// Sizes of the (φ, θ, β, z) groups in the flat order.
    pub fn group_sizes(&self) -> [usize; 4] {
        let count = |v: Vec<Tensor<3>>| v.iter().map(|t| t.shape().num_elements()).sum();
        [
            count(gaussian_parts(&self.explore)),
            count(gaussian_parts(&self.exploit)),
            count(mlp_parts(&self.ssl)),
            self.z.shape().num_elements(),
        ]
    }
}
