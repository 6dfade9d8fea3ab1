//! `progress.csv`: one row per iteration, the header taken from the first row's metric
//! names. Opening for a resume keeps only the rows before the checkpoint's iteration,
//! so the resumed run appends exactly the rows an uninterrupted run would have.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::Metrics;
use crate::error::{Error, Result};

/// Appends metric rows to a CSV file.
#[derive(Debug)]
pub struct ProgressCsv {
    path: PathBuf,
    header: Option<Vec<String>>,
    kept: Vec<Vec<String>>,
    file: File,
}

fn other(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Other(format!("{}: {e}", path.display()))
}

impl ProgressCsv {
    /// Opens `path`, keeping the existing rows whose `iteration` is below `start` (all
    /// rows are dropped when `start` is 0).
    pub fn open(path: &Path, start: usize) -> Result<Self> {
        let (header, kept) = if start > 0 && path.exists() {
            read_rows(path, start)?
        } else {
            (None, Vec::new())
        };
        let mut file = File::create(path).map_err(|e| Error::io(path, e))?;
        if let Some(h) = &header {
            writeln!(file, "{}", h.join(",")).map_err(|e| Error::io(path, e))?;
            for r in &kept {
                writeln!(file, "{}", r.join(",")).map_err(|e| Error::io(path, e))?;
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            header,
            kept,
            file,
        })
    }

    /// Sum of a column over the rows kept from before a resume (0 if absent).
    pub fn column_sum(&self, name: &str) -> f64 {
        let Some(j) = self
            .header
            .as_ref()
            .and_then(|h| h.iter().position(|c| c == name))
        else {
            return 0.0;
        };
        self.kept
            .iter()
            .filter_map(|r| r.get(j)?.parse::<f64>().ok())
            .sum()
    }

    /// Appends one row; the first row fixes the header, later rows must match it.
    pub fn append(&mut self, row: &Metrics) -> Result<()> {
        let names: Vec<String> = row.0.iter().map(|(n, _)| n.clone()).collect();
        match &self.header {
            None => {
                writeln!(self.file, "{}", names.join(",")).map_err(|e| Error::io(&self.path, e))?;
                self.header = Some(names);
            }
            Some(h) if *h != names => {
                return Err(other(
                    &self.path,
                    format!("row columns {names:?} differ from header {h:?}"),
                ))
            }
            Some(_) => {}
        }
        let vals: Vec<String> = row.0.iter().map(|(_, v)| format_value(*v)).collect();
        writeln!(self.file, "{}", vals.join(",")).map_err(|e| Error::io(&self.path, e))?;
        self.file.flush().map_err(|e| Error::io(&self.path, e))
    }
}

/// Shortest text that parses back to the same f64 (integers without a fraction).
pub fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

type Rows = (Option<Vec<String>>, Vec<Vec<String>>);

fn read_rows(path: &Path, start: usize) -> Result<Rows> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| other(path, e))?;
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| other(path, e))?
        .iter()
        .map(String::from)
        .collect();
    let it_col = header.iter().position(|c| c == "iteration");
    let mut kept = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| other(path, e))?;
        let it: usize = it_col
            .and_then(|j| rec.get(j)?.parse().ok())
            .ok_or_else(|| other(path, "row without an integer `iteration`"))?;
        if it < start {
            kept.push(rec.iter().map(String::from).collect());
        }
    }
    Ok((Some(header), kept))
}
