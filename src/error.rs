//! The one error type of the library: every variant carries the offending value.

use std::path::PathBuf;

/// Errors returned by metarl's library code. Binaries turn them into exit codes:
/// [`Error::is_user_error`] marks bad input (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration field holds a value outside its allowed range.
    #[error("invalid value for `{field}`: {value} (allowed: {allowed})")]
    InvalidConfig {
        /// Dotted path of the field, e.g. `sampler.tasks`.
        field: String,
        /// The rejected value, rendered as text.
        value: String,
        /// What would have been accepted.
        allowed: String,
    },
    /// An environment name that no family answers to.
    #[error("unknown environment `{name}` (allowed: {allowed})")]
    UnknownEnv {
        /// The name asked for.
        name: String,
        /// Comma-separated list of known names.
        allowed: String,
    },
    /// A backend that this binary was not compiled with.
    #[error("device `{name}` is not available in this build (compiled in: {compiled}); rebuild with `--features {name}`")]
    BackendNotCompiled {
        /// The requested device name.
        name: String,
        /// Devices this binary can use.
        compiled: String,
    },
    /// A config file that is not valid TOML or has unknown keys.
    #[error("config file {path}: {message}")]
    ConfigFile {
        /// The file that failed to parse.
        path: PathBuf,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A run directory that cannot be used as asked.
    #[error("run directory {path}: {message}")]
    RunDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A non-finite loss, gradient or parameter stopped training.
    #[error("non-finite {quantity} at iteration {iteration}; the last good checkpoint is on disk")]
    NonFinite {
        /// Iteration at which the value appeared.
        iteration: usize,
        /// Name of the quantity (e.g. `meta-loss`).
        quantity: String,
    },
    /// A file-system error, with the path it concerns.
    #[error("{path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Any other failure reported by a dependency (CSV, JSON, Burn records, plotting).
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// True when the error was caused by bad user input (flags, config, names), which
    /// binaries report with exit code 2.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::InvalidConfig { .. }
                | Error::UnknownEnv { .. }
                | Error::BackendNotCompiled { .. }
                | Error::ConfigFile { .. }
                | Error::RunDir { .. }
        )
    }

    /// Shorthand for [`Error::InvalidConfig`].
    pub fn invalid(
        field: impl Into<String>,
        value: impl ToString,
        allowed: impl Into<String>,
    ) -> Self {
        Error::InvalidConfig {
            field: field.into(),
            value: value.to_string(),
            allowed: allowed.into(),
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
