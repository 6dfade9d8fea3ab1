//! Helpers shared by the integration tests (each test file includes this module; not
//! every file uses every helper).
#![allow(dead_code)]

use std::path::Path;

/// ‖a − b‖ / ‖b‖ (0/0 counts as 0).
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    num / b.iter().map(|y| y * y).sum::<f64>().sqrt().max(1e-300)
}

/// A run directory's `progress.csv` as (header, rows), every cell parsed.
pub fn progress(dir: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let mut r = csv::Reader::from_path(dir.join("progress.csv")).unwrap();
    let h: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(|c| c.parse().unwrap()).collect())
        .collect();
    (h, rows)
}

/// A run directory's `progress.csv` rows without the wall-clock columns (`*_seconds`):
/// what an exact resume must reproduce.
pub fn progress_without_timings(dir: &Path) -> Vec<Vec<f64>> {
    let (h, rows) = progress(dir);
    let keep: Vec<usize> = (0..h.len())
        .filter(|&j| !h[j].ends_with("_seconds"))
        .collect();
    rows.iter()
        .map(|r| keep.iter().map(|&j| r[j]).collect())
        .collect()
}

/// One column of `progress.csv`.
pub fn column(dir: &Path, name: &str) -> Vec<f64> {
    let (h, rows) = progress(dir);
    let j = h
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no column {name} in {h:?}"));
    rows.iter().map(|r| r[j]).collect()
}

/// A JSON file of a run directory (`summary.json`, `eval.json`).
pub fn json(dir: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
}

/// Arithmetic mean.
pub fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}
