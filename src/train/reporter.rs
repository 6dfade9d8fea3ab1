//! Live progress: an indicatif bar with the pre/post-adaptation return and ETA when
//! stderr is a terminal; plain log lines (about 20 per run) otherwise.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use super::Metrics;

/// Shows training progress on stderr.
#[derive(Debug)]
pub struct Reporter {
    bar: Option<ProgressBar>,
    label: String,
    total: usize,
    every: usize,
    quiet: bool,
    t0: Instant,
    start: usize,
}

/// The live summary of a row: `pre -12.3 post -4.5` from `pre_return`/`post_return_<k>`
/// (the last inner step shown), or the first metric when neither exists.
pub fn headline(row: &Metrics) -> String {
    if let (Some(a), Some(b)) = (row.get("pre_mse"), row.get("post_mse")) {
        return format!("mse pre {a:.3} post {b:.3}");
    }
    let pre = row.get("pre_return");
    let post = row
        .0
        .iter()
        .rfind(|(n, _)| n.starts_with("post_return_"))
        .map(|(_, v)| *v);
    match (pre, post) {
        (Some(a), Some(b)) => format!("pre {a:.3} post {b:.3}"),
        (Some(a), None) => format!("return {a:.3}"),
        (None, Some(b)) => format!("post {b:.3}"),
        (None, None) => row
            .0
            .iter()
            .find(|(n, _)| n != "iteration")
            .map(|(n, v)| format!("{n} {v:.4}"))
            .unwrap_or_default(),
    }
}

impl Reporter {
    /// A reporter for iterations `start..total`.
    pub fn new(label: &str, start: usize, total: usize, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} (ETA {eta})")
                    .expect("template should parse")
                    .progress_chars("=> "),
            );
            b.set_prefix(label.to_string());
            b.set_position(start as u64);
            b
        });
        Self {
            bar,
            label: label.to_string(),
            total,
            every: (total / 20).max(1),
            quiet,
            t0: Instant::now(),
            start,
        }
    }

    /// Reports the row of iteration `it`.
    pub fn update(&mut self, it: usize, row: &Metrics) {
        if let Some(b) = &self.bar {
            b.set_message(headline(row));
            b.set_position(it as u64 + 1);
        } else if !self.quiet && ((it + 1).is_multiple_of(self.every) || it + 1 == self.total) {
            let done = it + 1 - self.start;
            let el = self.t0.elapsed().as_secs_f64();
            let eta = el / done as f64 * (self.total - it - 1) as f64;
            eprintln!(
                "{} iter {}/{} {} ({:.1}s, ETA {:.0}s)",
                self.label,
                it + 1,
                self.total,
                headline(row),
                el,
                eta
            );
        }
    }

    /// Closes the bar.
    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish();
        }
    }
}
