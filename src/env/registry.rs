//! Task families by name: the [`Registry`] every binary, `--resume`, `metarl eval`,
//! `metarl rollout` and `metarl list-envs` resolve `env = "…"` through.
//!
//! [`Registry::builtin`] holds the families of this crate; [`Registry::register`] adds a
//! family of one's own (any [`Env`] implementation, written outside this crate), which then
//! trains, resumes and evaluates exactly as a built-in one does:
//!
//! ```
//! use std::sync::Arc;
//! use metarl::env::{nav2d::Nav2d, Registry};
//!
//! let mut registry = Registry::builtin();
//! registry.register("nav2d-long", || Arc::new(Nav2d::default().with_horizon(200)));
//! assert_eq!(registry.make("nav2d-long").unwrap().spec().horizon, 200);
//! ```

use std::fmt;
use std::sync::Arc;

use super::{cartpole, es_corners, goal1d, nav2d, point_corners, six_circles, Env, ScaledActions};
use crate::error::{Error, Result};

/// Builds a family with its settings; called once per run (and per `make`). Fails where the
/// family needs something that is not installed (a MuJoCo robot model).
pub type Factory = Arc<dyn Fn() -> Result<Arc<dyn Env>> + Send + Sync>;

/// Task families by name, in registration order.
#[derive(Clone, Default)]
pub struct Registry {
    entries: Vec<(String, Factory)>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Registry {
    /// A registry with no family.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The families of this crate, with their paper settings, in display order.
    pub fn builtin() -> Self {
        use point_corners::{PointCorners, RewardType};
        let mut r = Self::empty();
        r.register("nav2d", || Arc::new(nav2d::Nav2d::default()))
            .register("point-corners", || Arc::new(PointCorners::default()))
            .register("point-corners-dense", || {
                Arc::new(PointCorners::new(RewardType::Dense))
            })
            .register("point-corners-radius", || {
                Arc::new(PointCorners::new(RewardType::Radius))
            })
            .register("point-corners-penalized", || {
                Arc::new(PointCorners::penalized(100.0))
            })
            .register("point-corners-fixed", || Arc::new(PointCorners::fixed()))
            .register("point-corners-es", || {
                Arc::new(es_corners::EsCorners::default())
            })
            .register("six-circles", || {
                Arc::new(six_circles::SixCircles::default())
            })
            .register("four-circles", || {
                Arc::new(six_circles::SixCircles::four_circles())
            })
            .register("six-circles-visit", || {
                Arc::new(six_circles::SixCircles::visit_all())
            })
            .register("goal-1d", || Arc::new(goal1d::Goal1d::default()))
            .register("cartpole-biased", || {
                Arc::new(cartpole::CartpoleBiased::default())
            });
        #[cfg(feature = "mujoco")]
        for &name in super::MUJOCO_ENV_NAMES {
            r.register_fallible(name, move || {
                Ok(Arc::new(super::mujoco::Locomotion::named(name)?) as Arc<dyn Env>)
            });
        }
        r
    }

    /// Adds the family `name`, built by `factory`; a family already registered under
    /// that name is replaced (so a user can override a built-in setting).
    pub fn register(
        &mut self,
        name: impl Into<String>,
        factory: impl Fn() -> Arc<dyn Env> + Send + Sync + 'static,
    ) -> &mut Self {
        self.register_fallible(name, move || Ok(factory()))
    }

    /// [`Self::register`] for a factory that can fail (a family that loads files); its
    /// error is what [`Self::make`] returns.
    pub fn register_fallible(
        &mut self,
        name: impl Into<String>,
        factory: impl Fn() -> Result<Arc<dyn Env>> + Send + Sync + 'static,
    ) -> &mut Self {
        let name = name.into();
        let factory: Factory = Arc::new(factory);
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = factory,
            None => self.entries.push((name, factory)),
        }
        self
    }

    /// The registered names, in registration order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// Whether `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.iter().any(|(n, _)| n == name)
    }

    /// Builds the family called `name`. An unknown name is a user error that lists the
    /// known ones; `sine` (supervised, not an [`Env`]) gets its own message.
    pub fn make(&self, name: &str) -> Result<Arc<dyn Env>> {
        if let Some((_, factory)) = self.entries.iter().find(|(n, _)| n == name) {
            return factory();
        }
        if super::MUJOCO_ENV_NAMES.contains(&name) {
            return Err(Error::invalid(
                "env",
                name,
                "a family of this build; MuJoCo families need `bash scripts/install-mujoco.sh`, then a build with `--features mujoco`",
            ));
        }
        if name == "sine" {
            return Err(Error::invalid(
                "env",
                name,
                "a reinforcement-learning environment; `sine` is the supervised family, used by sine-maml",
            ));
        }
        Err(Error::UnknownEnv {
            name: name.to_string(),
            allowed: self.names().join(", "),
        })
    }

    /// [`Self::make`], with the actions multiplied by `action_scale` ([`ScaledActions`])
    /// unless it is 1. Errors name the field when the scale is not a finite positive number.
    pub fn make_scaled(&self, name: &str, action_scale: f64) -> Result<Arc<dyn Env>> {
        let env = self.make(name)?;
        if !(action_scale.is_finite() && action_scale > 0.0) {
            return Err(Error::invalid(
                "action_scale",
                action_scale,
                "a finite number > 0",
            ));
        }
        Ok(if action_scale == 1.0 {
            env
        } else {
            Arc::new(ScaledActions::new(env, action_scale as f32))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_are_the_documented_list() {
        let mut want = super::super::ENV_NAMES.to_vec();
        if cfg!(feature = "mujoco") {
            want.extend(super::super::MUJOCO_ENV_NAMES);
        }
        assert_eq!(Registry::builtin().names(), want);
    }

    #[test]
    fn a_mujoco_family_in_a_build_without_the_feature_says_how_to_install_it() {
        if cfg!(feature = "mujoco") {
            return;
        }
        let e = Registry::builtin().make("half-cheetah-dir").unwrap_err();
        assert!(e.is_user_error());
        let msg = e.to_string();
        assert!(
            msg.contains("install-mujoco.sh") && msg.contains("--features mujoco"),
            "{msg}"
        );
    }

    #[test]
    fn register_adds_a_family_and_replaces_one_of_the_same_name() {
        let mut r = Registry::builtin();
        let n = r.names().len();
        r.register("nav2d", || {
            Arc::new(nav2d::Nav2d::default().with_horizon(7))
        });
        r.register("mine", || Arc::new(goal1d::Goal1d::default()));
        assert_eq!(r.names().len(), n + 1);
        assert_eq!(r.names()[0], "nav2d");
        assert_eq!(r.make("nav2d").unwrap().spec().horizon, 7);
        assert_eq!(r.make("mine").unwrap().spec().obs_dim, 1);
        match r.make("nosuch") {
            Err(Error::UnknownEnv { allowed, .. }) => assert!(allowed.ends_with(", mine")),
            other => panic!("expected UnknownEnv, got {other:?}"),
        }
    }
}
