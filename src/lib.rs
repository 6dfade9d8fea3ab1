//! metarl: meta-reinforcement learning on Burn.
//!
//! Layers, lowest first: [`env`] (task families, batched environments), [`nn`] (Burn
//! modules; [`nn::functional`] holds the differentiable inner gradients), [`params`]
//! (module ⇄ flat vector ⇄ gradients), [`rollout`]/[`traj`] (batched sampling),
//! [`estimate`] (returns, GAE, baselines), [`objective`] (surrogates), [`es`] (evolution
//! strategies), [`optim`] (conjugate gradient, line search), [`pg`] and [`supervised`]
//! (what several algorithms share), [`algo`] (one file per algorithm), [`train`] (configs,
//! run directory, checkpoints, drivers), [`plot`], [`cli`].

#![warn(missing_docs)]

pub mod algo;
pub mod checkpoint;
pub mod cli;
pub mod ddpg;
pub mod device;
pub mod dist;
pub mod env;
pub mod error;
pub mod es;
pub mod estimate;
pub mod lanes;
pub mod learner;
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
