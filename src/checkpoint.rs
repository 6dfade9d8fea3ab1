//! Atomic checkpoints: module records, optimizer state and RNG states in one directory.
//!
//! A checkpoint is written to `checkpoint.tmp/` (every file synced), then swapped in:
//! `checkpoint/` → `checkpoint.old/`, `checkpoint.tmp/` → `checkpoint/`, and the old copy
//! removed. At every instant one complete checkpoint exists on disk; [`Checkpoint::load`]
//! falls back to `checkpoint.old/` if a crash hit between the two renames.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::Rng;

/// The exact position of a ChaCha generator, so a resumed run draws the same numbers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngState {
    /// The 32-byte key, hex encoded.
    pub seed: String,
    /// The stream number.
    pub stream: u64,
    /// Word position within the stream (decimal text: it is a u128).
    pub word_pos: String,
}

impl RngState {
    /// Captures the state of `rng`.
    pub fn of(rng: &Rng) -> Self {
        Self {
            seed: rng.get_seed().iter().map(|b| format!("{b:02x}")).collect(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
    }

    /// Rebuilds the generator at the captured position.
    pub fn restore(&self) -> Result<Rng> {
        use rand::SeedableRng;
        let bad = || Error::Other(format!("corrupt RNG state in checkpoint: {self:?}"));
        if self.seed.len() != 64 {
            return Err(bad());
        }
        let mut seed = [0u8; 32];
        for (i, b) in seed.iter_mut().enumerate() {
            *b = u8::from_str_radix(&self.seed[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        let mut rng = Rng::from_seed(seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(self.word_pos.parse().map_err(|_| bad())?);
        Ok(rng)
    }
}

/// Everything needed to continue a run exactly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// The first iteration still to run.
    pub iteration: usize,
    /// Binary blobs by file name (module records, optimizer records).
    pub files: BTreeMap<String, Vec<u8>>,
    /// Named RNG states.
    pub rngs: BTreeMap<String, RngState>,
    /// Any other small state (running statistics, step counters), as JSON.
    pub extra: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    iteration: usize,
    rngs: BTreeMap<String, RngState>,
    extra: serde_json::Value,
    files: Vec<String>,
}

const STATE: &str = "state.json";

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    dir.with_file_name(name)
}

/// Writes `bytes` to `path` atomically: a synced temporary file renamed over the target.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = sibling(path, ".tmp");
    let mut f = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = fs::File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

impl Checkpoint {
    /// Adds a binary blob (builder style).
    pub fn with_file(mut self, name: &str, bytes: Vec<u8>) -> Self {
        self.files.insert(name.to_string(), bytes);
        self
    }

    /// Adds an RNG state (builder style).
    pub fn with_rng(mut self, name: &str, rng: &Rng) -> Self {
        self.rngs.insert(name.to_string(), RngState::of(rng));
        self
    }

    /// The blob called `name`.
    pub fn file(&self, name: &str) -> Result<&[u8]> {
        self.files
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| Error::Other(format!("checkpoint has no file `{name}`")))
    }

    /// The generator called `name`, at its saved position.
    pub fn rng(&self, name: &str) -> Result<Rng> {
        self.rngs
            .get(name)
            .ok_or_else(|| Error::Other(format!("checkpoint has no RNG `{name}`")))?
            .restore()
    }

    /// Writes the checkpoint to `dir` atomically (see the module docs).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tmp = sibling(dir, ".tmp");
        let old = sibling(dir, ".old");
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        }
        fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        for (name, bytes) in &self.files {
            write_synced(&tmp.join(name), bytes)?;
        }
        let state = StateFile {
            iteration: self.iteration,
            rngs: self.rngs.clone(),
            extra: self.extra.clone(),
            files: self.files.keys().cloned().collect(),
        };
        let json = serde_json::to_vec_pretty(&state).map_err(|e| Error::Other(e.to_string()))?;
        write_synced(&tmp.join(STATE), &json)?;
        if old.exists() {
            fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
        if dir.exists() {
            fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
        }
        fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))?;
        if old.exists() {
            fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
        Ok(())
    }

    /// Reads the checkpoint in `dir` (or its `.old` twin after an interrupted swap).
    pub fn load(dir: &Path) -> Result<Self> {
        let old = sibling(dir, ".old");
        let src = if dir.join(STATE).exists() {
            dir.to_path_buf()
        } else {
            old
        };
        let state_path = src.join(STATE);
        let text = fs::read(&state_path).map_err(|_| Error::RunDir {
            path: dir.to_path_buf(),
            message: "no complete checkpoint to resume from".into(),
        })?;
        let state: StateFile = serde_json::from_slice(&text)
            .map_err(|e| Error::Other(format!("{}: {e}", state_path.display())))?;
        let mut files = BTreeMap::new();
        for name in state.files {
            let p = src.join(&name);
            files.insert(name, fs::read(&p).map_err(|e| Error::io(&p, e))?);
        }
        Ok(Self {
            iteration: state.iteration,
            files,
            rngs: state.rngs,
            extra: state.extra,
        })
    }
}

/// A module's parameters as burnpack bytes (for [`Checkpoint::with_file`]).
pub fn module_bytes<M: burn::module::Module>(module: &M) -> Result<Vec<u8>> {
    let bytes = module
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| Error::Other(format!("cannot serialize module: {e:?}")))?;
    Ok(bytes.to_vec())
}

/// Loads parameters saved by [`module_bytes`] into `module` (same architecture).
pub fn load_module<M: burn::module::Module>(module: M, bytes: &[u8]) -> Result<M> {
    let record =
        burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.to_vec()))
            .map_err(|e| Error::Other(format!("corrupt module record: {e:?}")))?;
    module
        .try_load_record(record)
        .map_err(|e| Error::Other(format!("module record does not fit: {e:?}")))
}

/// An optimizer's state (e.g. Adam moments) as bytes.
pub fn optimizer_bytes(optim: &burn::optim::ModuleOptimizer) -> Result<Vec<u8>> {
    let bytes = optim
        .into_bytes()
        .map_err(|e| Error::Other(format!("cannot serialize optimizer: {e:?}")))?;
    Ok(bytes.to_vec())
}

/// Restores optimizer state saved by [`optimizer_bytes`].
pub fn load_optimizer(
    optim: burn::optim::ModuleOptimizer,
    bytes: &[u8],
) -> Result<burn::optim::ModuleOptimizer> {
    optim
        .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| Error::Other(format!("corrupt optimizer record: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn rng_state_round_trip_continues_the_same_sequence() {
        let mut a = crate::rng::stream(3, "x");
        for _ in 0..37 {
            a.next_u32();
        }
        let mut b = RngState::of(&a).restore().unwrap();
        let va: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let vb: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(va, vb);
    }

    #[test]
    fn save_then_load_returns_the_same_checkpoint_and_leaves_no_temporaries() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("checkpoint");
        let ck = Checkpoint {
            iteration: 4,
            extra: serde_json::json!({"k": 1}),
            ..Default::default()
        }
        .with_file("policy.bpk", vec![1, 2, 3])
        .with_rng("env", &crate::rng::stream(1, "env"));
        ck.save(&dir).unwrap();
        let mut ck2 = ck.clone();
        ck2.iteration = 8;
        ck2.save(&dir).unwrap();
        assert_eq!(Checkpoint::load(&dir).unwrap(), ck2);
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("checkpoint")]);
    }

    #[test]
    fn an_interrupted_swap_still_loads_the_previous_checkpoint() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("checkpoint");
        let ck = Checkpoint {
            iteration: 2,
            ..Default::default()
        }
        .with_file("a", vec![9]);
        ck.save(&dir).unwrap();
        // Simulate a crash after the first rename: only checkpoint.old exists.
        fs::rename(&dir, d.path().join("checkpoint.old")).unwrap();
        assert_eq!(Checkpoint::load(&dir).unwrap(), ck);
    }

    #[test]
    fn atomic_write_replaces_the_file_whole() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("summary.json");
        atomic_write(&p, b"first").unwrap();
        atomic_write(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        assert!(!d.path().join("summary.json.tmp").exists());
    }
}
