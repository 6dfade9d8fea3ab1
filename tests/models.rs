//! The trained meta-policies in `models/`: `metarl eval` on each reproduces the held-out
//! numbers of its `eval.json` and of its model card (`MODEL.md`). MuJoCo models are
//! checked in a build with `--features mujoco` (CI runs this file again with it).

use std::path::{Path, PathBuf};

use metarl::device::DeviceKind;
use metarl::env::{Registry, MUJOCO_ENV_NAMES};
use metarl::train::{eval_run, RunDir};
use serde_json::Value;

/// Every model directory: a folder of `models/` with a `MODEL.md`.
fn model_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("MODEL.md").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// The `env` of a run's `config.toml`.
fn env_of(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    let cfg: toml::Value = toml::from_str(&text).unwrap();
    cfg["env"].as_str().unwrap().to_string()
}

/// Copies a model directory (files and `checkpoint/`) into `to`, so that the evaluation
/// writes its `eval.json` and `trajectories.csv` there and not into the repository.
fn copy_model(from: &Path, to: &Path) {
    for sub in ["", "checkpoint"] {
        std::fs::create_dir_all(to.join(sub)).unwrap();
        for e in std::fs::read_dir(from.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, to.join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
}

/// The numbers a model's evaluation must reproduce: returns, success and velocity error.
fn scores(j: &Value) -> Vec<(String, f64)> {
    let mut out = vec![("pre_return".to_string(), j["pre_return"].as_f64().unwrap())];
    for (k, v) in j["post_return"].as_array().unwrap().iter().enumerate() {
        out.push((format!("post_return[{k}]"), v.as_f64().unwrap()));
    }
    if let Some(v) = j["success_rate"].as_f64() {
        out.push(("success_rate".to_string(), v));
    }
    for (obj, key) in [
        ("mean_action", "post_return"),
        ("velocity_error", "pre"),
        ("velocity_error", "post"),
    ] {
        if let Some(v) = j[obj][key].as_f64() {
            out.push((format!("{obj}.{key}"), v));
        }
    }
    out
}

#[test]
fn every_model_reproduces_its_card() {
    let dirs = model_dirs();
    assert!(dirs.len() >= 4, "models/ holds {} models", dirs.len());
    let mut checked = 0;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if MUJOCO_ENV_NAMES.contains(&env_of(dir).as_str()) && !cfg!(feature = "mujoco") {
            continue;
        }
        let want: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("eval.json")).unwrap()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        copy_model(dir, tmp.path());
        let run = RunDir::open(tmp.path()).unwrap();
        let ev = eval_run(&Registry::builtin(), &run, None, DeviceKind::Flex)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = ev.to_json();
        let card = std::fs::read_to_string(dir.join("MODEL.md")).unwrap();
        let (want, got) = (scores(&want), scores(&got));
        assert_eq!(
            want.iter().map(|w| &w.0).collect::<Vec<_>>(),
            got.iter().map(|g| &g.0).collect::<Vec<_>>(),
            "{name}: the same scores"
        );
        for ((key, w), (_, g)) in want.iter().zip(&got) {
            // Same seeds, same checkpoint: the evaluation repeats (1e-9 relative only
            // absorbs the last digit of the JSON text).
            assert!(
                (w - g).abs() <= 1e-9 * w.abs().max(1.0),
                "{name}: {key} {g} vs eval.json {w}"
            );
            if key == "pre_return" || key.starts_with("post_return") {
                let shown = format!("{w:.2}");
                assert!(
                    card.contains(&shown),
                    "{name}: MODEL.md should quote {key} = {shown}"
                );
            }
        }
        checked += 1;
    }
    let mujoco = dirs
        .iter()
        .filter(|d| MUJOCO_ENV_NAMES.contains(&env_of(d).as_str()))
        .count();
    let expected = if cfg!(feature = "mujoco") {
        dirs.len()
    } else {
        dirs.len() - mujoco
    };
    assert_eq!(checked, expected);
}
