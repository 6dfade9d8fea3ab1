//! metarl: meta-reinforcement learning on Burn.
//!
//! Layers (dependencies point down): [`env`] (task families, batched environments),
//! [`nn`] (Burn modules), [`params`] (module ⇄ flat vector), [`rollout`]/[`traj`]
//! (batched sampling), [`estimate`] (returns, GAE, baselines), [`train`] (configs, run
//! directory, logging, checkpoints), [`plot`].

#![warn(missing_docs)]

pub mod algo;
pub mod cli;
pub mod device;
pub mod env;
pub mod error;
pub mod es;
pub mod estimate;
pub mod nn;
pub mod objective;
pub mod optim;
pub mod params;
pub mod pg;
pub mod plot;
pub mod rng;
pub mod rollout;
pub mod supervised;
pub mod train;
pub mod traj;

pub use error::{Error, Result};
