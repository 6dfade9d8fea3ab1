//! One file per algorithm, each reading like its paper's pseudocode. Algorithms never
//! import each other; what two of them need lives in a lower layer.

pub mod es_ddpg;
pub mod es_maml;
pub mod es_sine;
pub mod maesn;
pub mod mame;
pub mod pg_maml;
pub mod promp;
pub mod sine_maml;
