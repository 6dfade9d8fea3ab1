//! The run directory `runs/<bin>-<env>-s<seed>[-<n>]/`, never overwritten silently:
//! `config.toml`, `progress.csv`, `summary.json`, `checkpoint/`, `plots/`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::checkpoint::atomic_write;
use crate::error::{Error, Result};

/// A run's output directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
    scratch: bool,
}

impl RunDir {
    /// Creates a fresh run directory: `out` exactly when given (it must not exist or be
    /// empty), else the first free `runs/<bin>-<env>-s<seed>`, `…-2`, `…-3`, ….
    pub fn create(out: Option<&Path>, bin: &str, env: &str, seed: u64) -> Result<Self> {
        let path = match out {
            Some(p) => {
                let non_empty = p.exists()
                    && fs::read_dir(p)
                        .map_err(|e| Error::io(p, e))?
                        .next()
                        .is_some();
                if non_empty {
                    return Err(Error::RunDir {
                        path: p.to_path_buf(),
                        message: "exists and is not empty (use --resume to continue it, or another --out)".into(),
                    });
                }
                p.to_path_buf()
            }
            None => {
                let base = PathBuf::from("runs").join(format!("{bin}-{env}-s{seed}"));
                let mut p = base.clone();
                let mut n = 2;
                while p.exists() {
                    p = PathBuf::from(format!("{}-{n}", base.display()));
                    n += 1;
                }
                p
            }
        };
        fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Self {
            path,
            scratch: false,
        })
    }

    /// A private directory in the system's temporary directory that receives what an MPI
    /// rank other than 0 would write (rank 0 alone writes the run directory); removed by
    /// [`Self::remove_if_scratch`].
    pub fn scratch(rank: usize) -> Result<Self> {
        let path = std::env::temp_dir().join(format!("metarl-rank{rank}-{}", std::process::id()));
        if path.exists() {
            fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        }
        fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Self {
            path,
            scratch: true,
        })
    }

    /// Deletes the directory if it is a [`Self::scratch`] one.
    pub fn remove_if_scratch(&self) {
        if self.scratch {
            let _ = fs::remove_dir_all(&self.path);
        }
    }

    /// Opens an existing run directory to resume it; it must hold a config and a checkpoint.
    pub fn open(path: &Path) -> Result<Self> {
        let dir = Self {
            path: path.to_path_buf(),
            scratch: false,
        };
        let ck = dir.checkpoint_path();
        let has_ck = ck.join("state.json").exists()
            || ck
                .with_file_name("checkpoint.old")
                .join("state.json")
                .exists();
        if !dir.config_path().exists() || !has_ck {
            return Err(Error::RunDir {
                path: path.to_path_buf(),
                message: "is not a run directory with config.toml and a checkpoint".into(),
            });
        }
        Ok(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.path.join("config.toml")
    }

    /// `progress.csv`.
    pub fn progress_path(&self) -> PathBuf {
        self.path.join("progress.csv")
    }

    /// `summary.json`.
    pub fn summary_path(&self) -> PathBuf {
        self.path.join("summary.json")
    }

    /// `checkpoint/`.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.path.join("checkpoint")
    }

    /// `plots/`.
    pub fn plots_path(&self) -> PathBuf {
        self.path.join("plots")
    }

    /// Writes the complete effective config (TOML text), atomically.
    pub fn write_config(&self, toml_text: &str) -> Result<()> {
        atomic_write(&self.config_path(), toml_text.as_bytes())
    }

    /// Writes `summary.json` atomically, stamped with the crate and Burn versions and the
    /// git commit of the working directory (when known).
    pub fn write_summary(&self, summary: &serde_json::Value) -> Result<()> {
        let mut summary = summary.clone();
        if let Some(map) = summary.as_object_mut() {
            map.insert(
                "versions".into(),
                serde_json::json!({ "metarl": env!("CARGO_PKG_VERSION"), "burn": "0.22.1" }),
            );
            map.insert(
                "git_commit".into(),
                serde_json::json!(super::git_commit(Path::new("."))),
            );
        }
        let text = serde_json::to_vec_pretty(&summary).map_err(|e| Error::Other(e.to_string()))?;
        atomic_write(&self.summary_path(), &text)
    }

    /// Writes `value` as pretty-printed JSON to file `name` of the run, atomically.
    pub fn write_json(&self, name: &str, value: &serde_json::Value) -> Result<()> {
        let text = serde_json::to_vec_pretty(value).map_err(|e| Error::Other(e.to_string()))?;
        self.write_file(name, &text)
    }

    /// Writes any other file of the run (e.g. `eval.csv`, `trajectories.csv`), atomically.
    pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<()> {
        atomic_write(&self.path.join(name), bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_empty_out_directory_is_refused_not_overwritten() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("progress.csv"), "keep me").unwrap();
        let e = RunDir::create(Some(d.path()), "x", "nav2d", 1).unwrap_err();
        assert!(e.is_user_error(), "{e}");
        assert_eq!(
            fs::read_to_string(d.path().join("progress.csv")).unwrap(),
            "keep me"
        );
    }

    #[test]
    fn open_requires_config_and_checkpoint() {
        let d = tempfile::tempdir().unwrap();
        assert!(RunDir::open(d.path()).is_err());
    }
}
