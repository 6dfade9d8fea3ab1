//! metarl: meta-reinforcement learning on Burn.
//!
//! Layers (dependencies point down): [`env`] (task families, batched environments),
//! [`nn`] (Burn modules), [`params`] (module ⇄ flat vector), [`rollout`]/[`traj`]
//! (batched sampling), [`estimate`] (returns, GAE, baselines), [`train`] (configs, run
//! directory, logging, checkpoints), [`plot`].

pub mod device;
// pub mod env;
pub mod error;
pub mod nn;
pub mod params;
pub mod rng;
pub mod train;

pub use error::{Error, Result};
