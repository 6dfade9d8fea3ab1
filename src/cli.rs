//! Pieces shared by the command-line binaries: the common training flags and the
//! error-to-exit-code policy (bad input → one line on stderr and exit code 2).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::device::DeviceKind;
use crate::error::{Error, Result};

/// Flags every training binary accepts (DESIGN.md, "Common flags").
#[derive(Args, Clone, Debug, Default, PartialEq)]
pub struct CommonArgs {
    /// Environment (task family) name; see `metarl list-envs`.
    #[arg(long)]
    pub env: Option<String>,
    /// Root seed of every random stream.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of meta-iterations.
    #[arg(long)]
    pub iterations: Option<usize>,
    /// TOML config file (unknown keys are rejected); flags override its values.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run directory to create (default: runs/<bin>-<env>-s<seed>[-n]).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Backend: flex, ndarray or wgpu (default: $BURN_DEVICE, else flex).
    #[arg(long)]
    pub device: Option<String>,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Number of held-out tasks for the final evaluation.
    #[arg(long)]
    pub eval_tasks: Option<usize>,
    /// No progress bar or log lines.
    #[arg(long)]
    pub quiet: bool,
}

impl CommonArgs {
    /// The backend chosen by `--device`, else `BURN_DEVICE`, else the default.
    pub fn device_kind(&self) -> Result<DeviceKind> {
        DeviceKind::resolve(self.device.as_deref())
    }
}

/// Exit code for an error: 2 for bad input, 1 otherwise.
pub fn exit_code(err: &Error) -> ExitCode {
    if err.is_user_error() {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}

/// Runs a binary's body and turns its result into an exit code, printing one line
/// `error: …` on failure.
pub fn main_with(body: impl FnOnce() -> Result<()>) -> ExitCode {
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            exit_code(&e)
        }
    }
}

/// Checks that a count is at least 1, naming the field otherwise.
pub fn require_positive(field: &str, value: usize) -> Result<usize> {
    if value == 0 {
        Err(Error::invalid(field, value, "≥ 1"))
    } else {
        Ok(value)
    }
}
