//! Backend selection at run time.
//!
//! The backends compiled into a binary are chosen by cargo features (`flex`, `ndarray`,
//! `wgpu`); which one a run uses is a run-time value: `--device`, else the `BURN_DEVICE`
//! environment variable, else the first compiled of flex, ndarray, wgpu. Asking for a
//! backend that was not compiled in is an [`Error::BackendNotCompiled`], not a panic.

use std::fmt;
use std::str::FromStr;

use burn::prelude::Device;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A backend a run can execute on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceKind {
    /// Burn's pure-Rust CPU backend (feature `flex`, the default).
    Flex,
    /// The ndarray CPU backend (feature `ndarray`).
    Ndarray,
    /// The wgpu GPU backend (feature `wgpu`).
    Wgpu,
}

/// Every device name, compiled in or not.
pub const DEVICE_NAMES: &[&str] = &["flex", "ndarray", "wgpu"];

impl DeviceKind {
    /// The name used by `--device` and `BURN_DEVICE`.
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Flex => "flex",
            DeviceKind::Ndarray => "ndarray",
            DeviceKind::Wgpu => "wgpu",
        }
    }

    /// Whether this binary was compiled with the backend.
    pub fn is_compiled(self) -> bool {
        match self {
            DeviceKind::Flex => cfg!(feature = "flex"),
            DeviceKind::Ndarray => cfg!(feature = "ndarray"),
            DeviceKind::Wgpu => cfg!(feature = "wgpu"),
        }
    }

    /// The backends compiled into this binary, in order of preference.
    pub fn compiled() -> Vec<DeviceKind> {
        [DeviceKind::Flex, DeviceKind::Ndarray, DeviceKind::Wgpu]
            .into_iter()
            .filter(|k| k.is_compiled())
            .collect()
    }

    /// The device named by `flag`, else by `BURN_DEVICE`, else the first compiled one.
    pub fn resolve(flag: Option<&str>) -> Result<DeviceKind> {
        let from_env = std::env::var("BURN_DEVICE").ok();
        match flag.or(from_env.as_deref()) {
            Some(name) => name.parse(),
            None => DeviceKind::compiled()
                .first()
                .copied()
                .ok_or_else(|| Error::Other("metarl was built without any backend feature".into())),
        }
    }

    /// The Burn device (without autodiff). Fails when the backend is not compiled in.
    pub fn device(self) -> Result<Device> {
        if !self.is_compiled() {
            return Err(Error::BackendNotCompiled {
                name: self.name().into(),
                compiled: compiled_names(),
            });
        }
        Ok(self.build())
    }

    #[allow(unreachable_code, deprecated)]
    fn build(self) -> Device {
        match self {
            #[cfg(feature = "flex")]
            DeviceKind::Flex => Device::flex(),
            #[cfg(feature = "ndarray")]
            DeviceKind::Ndarray => Device::ndarray(),
            #[cfg(feature = "wgpu")]
            DeviceKind::Wgpu => Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
            #[allow(unreachable_patterns)]
            _ => unreachable!("device() checks is_compiled() first"),
        }
    }
}

fn compiled_names() -> String {
    DeviceKind::compiled()
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for DeviceKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let kind = match s {
            "flex" => DeviceKind::Flex,
            "ndarray" => DeviceKind::Ndarray,
            "wgpu" => DeviceKind::Wgpu,
            _ => return Err(Error::invalid("device", s, DEVICE_NAMES.join(", "))),
        };
        if !kind.is_compiled() {
            return Err(Error::BackendNotCompiled {
                name: s.into(),
                compiled: compiled_names(),
            });
        }
        Ok(kind)
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A CPU device whose float type is f64, for gradient checks. Must be called before any
/// tensor is created on a flex device in this process, since the dtype is per device.
pub fn f64_device() -> Device {
    let mut d = DeviceKind::resolve(Some("flex"))
        .and_then(DeviceKind::device)
        .expect("flex should be compiled in for f64 checks");
    // configure() fails when tensors already exist on the device; then it is already set
    // (or in use as f32, which the caller's assertions will catch).
    let _ = d.configure(burn::tensor::FloatDType::F64);
    let probe: burn::prelude::Tensor<1> = burn::prelude::Tensor::zeros([1], &d);
    assert_eq!(
        probe.dtype(),
        burn::tensor::DType::F64,
        "f64_device() should be called before any f32 tensor exists on the flex device"
    );
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_device_name_is_an_invalid_config_error() {
        let e = "tpu".parse::<DeviceKind>().unwrap_err();
        assert!(matches!(e, Error::InvalidConfig { .. }), "{e}");
        assert!(e.is_user_error());
    }

    #[test]
    fn flex_is_compiled_by_default_and_builds_a_device() {
        let k: DeviceKind = "flex".parse().unwrap();
        assert!(k.device().is_ok());
    }

    #[cfg(not(feature = "wgpu"))]
    #[test]
    fn asking_for_a_backend_not_compiled_in_is_a_clear_error() {
        let e = "wgpu".parse::<DeviceKind>().unwrap_err();
        assert!(matches!(e, Error::BackendNotCompiled { .. }));
        assert!(e.to_string().contains("--features wgpu"), "{e}");
    }
}
