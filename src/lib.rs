//! metarl: meta-reinforcement learning on Burn.
//!
//! Layers (dependencies point down): `env` (task families, batched environments),
//! `nn` (Burn modules), `params` (module ⇄ flat vector), `rollout`/`traj` (batched
//! sampling), `estimate` (returns, GAE, baselines), `train` (run directory, logging,
//! checkpoints), `plot`.

pub mod env;
pub mod error;
pub mod rng;

pub use error::{Error, Result};
