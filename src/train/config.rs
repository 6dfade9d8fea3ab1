//! TOML configs: unknown keys are rejected (structs use `#[serde(deny_unknown_fields)]`),
//! parse errors name the file, key and line.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// Parses a TOML config file into `T`.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::ConfigFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    parse_toml(&text).map_err(|message| Error::ConfigFile {
        path: path.to_path_buf(),
        message,
    })
}

/// Parses TOML text into `T`; the error is a single line naming the key and position.
pub fn parse_toml<T: DeserializeOwned>(text: &str) -> std::result::Result<T, String> {
    toml::from_str(text).map_err(|e| e.to_string().replace('\n', " ").trim().to_string())
}

/// Renders `value` as TOML (the complete effective config written to `config.toml`).
pub fn to_toml<T: Serialize>(value: &T) -> Result<String> {
    toml::to_string_pretty(value).map_err(|e| Error::Other(format!("cannot render config: {e}")))
}
