//! PNG plots of a run directory: learning curves, training metrics and trajectories.
//!
//! [`plot_run`] reads the CSV files a training run leaves in its directory and writes
//! PNG charts into `<run_dir>/plots/`:
//!
//! | input               | output                   | content                                     |
//! |---------------------|--------------------------|---------------------------------------------|
//! | `progress.csv`      | `plots/returns.png`      | `pre_return`, `post_return_1`, … vs `iteration` |
//! | `progress.csv`      | `plots/metrics.png`      | one small chart per other numeric column    |
//! | `trajectories.csv`  | `plots/trajectories.png` | one panel per task (≤ 6), lines per rollout |
//!
//! [`plot_runs`] does the same for several directories and adds a comparison chart,
//! `compare-returns.png`, next to them.
//!
//! Text (captions, axis labels, legends) needs a TrueType font, which is looked up at run
//! time in the usual system locations (or the file named by `METARL_PLOT_FONT`). Without
//! one the charts are still drawn, with lines, grid and frame but no text at all.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::ComposedElement;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::error::{Error, Result};

/// Where [`plot_curves`] puts its legend (plotters' corners).
pub use plotters::prelude::SeriesLabelPosition;

/// Name of the learning-curve CSV inside a run directory.
pub const PROGRESS_FILE: &str = "progress.csv";
/// Name of the trajectory CSV inside a run directory.
pub const TRAJECTORIES_FILE: &str = "trajectories.csv";
/// Sub-directory of a run directory that receives the PNG files.
pub const PLOTS_DIR: &str = "plots";
/// Learning curves of the pre- and post-update returns.
pub const RETURNS_PNG: &str = "returns.png";
/// Grid of the other numeric columns of `progress.csv`.
pub const METRICS_PNG: &str = "metrics.png";
/// Trajectory panels, one per task.
pub const TRAJECTORIES_PNG: &str = "trajectories.png";
/// Forward progress x against the time step, one panel per task, for families without
/// goal points (the MuJoCo locomotion tasks: did the adapted policy turn round?).
pub const X_OVER_TIME_PNG: &str = "x-over-time.png";
/// Comparison of several runs, written by [`plot_runs`] into the parent directory of the
/// first run directory.
pub const COMPARE_PNG: &str = "compare-returns.png";

/// Environment variable naming a TTF/OTF file to use before the system locations.
const FONT_ENV: &str = "METARL_PLOT_FONT";
/// Font file locations tried in order (Debian/Ubuntu, Arch, Fedora, macOS, Windows).
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];
/// Font family every text style of this module uses.
const FONT: &str = "sans-serif";

/// Size of `returns.png` and `compare-returns.png`.
const CURVE_SIZE: (u32, u32) = (900, 540);
/// Size of one cell of `metrics.png`.
const METRIC_CELL: (u32, u32) = (450, 300);
/// Size of one task panel of `trajectories.png`.
const TRAJ_PANEL: (u32, u32) = (420, 420);
/// At most this many tasks are drawn in `trajectories.png`.
const MAX_TASKS: usize = 6;
/// At most this many sampled rollouts are drawn per task and phase (twenty noisy paths
/// are a scribble); the mean-action path, where recorded, is drawn bold over them.
const SAMPLED_SHOWN: usize = 3;
/// The `rollout` cell of a path that acted with the policy's mean action.
pub const MEAN_ROLLOUT: &str = "mean";
/// Margin (pixels) around every chart.
const MARGIN: u32 = 10;
/// Height of the x-label area and width of the y-label area when text is drawn.
const LABEL_AREA: (u32, u32) = (40, 60);

/// Fill color of goal markers.
const GOAL_COLOR: RGBColor = RGBColor(255, 200, 0);
/// Distinct line colors (the "tab10" palette).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// A named CSV column parsed as numbers; blanks and non-numbers are NaN.
type Column = (String, Vec<f64>);
/// The drawing area every chart is drawn on.
type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Writes every plot the inputs in `run_dir` allow into `run_dir/plots/` (created if
/// missing) and returns the paths written.
///
/// `progress.csv` gives `returns.png` (if it has `pre_return` or `post_return_<k>`
/// columns) and `metrics.png` (if it has other numeric columns besides `iteration`,
/// `env_steps` and `*_seconds`); `trajectories.csv` gives `trajectories.png`. Blank or
/// non-numeric cells leave gaps. Fails with [`Error::RunDir`] when the directory holds
/// neither CSV file, and with [`Error::Io`] / [`Error::Other`] on read, parse or drawing
/// failures.
pub fn plot_run(run_dir: &Path) -> Result<Vec<PathBuf>> {
    plot_run_with(run_dir, font_available())
}

/// Runs [`plot_run`] on every directory (stopping at the first error), then, when at
/// least two of them have a `progress.csv` with a `post_return_1` or `pre_return`
/// column, writes `compare-returns.png` into the parent directory of `dirs[0]` (the
/// current directory if it has none): one curve per run, `post_return_1` where present
/// and `pre_return` otherwise. Returns every path written, the comparison last.
pub fn plot_runs(dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let text = font_available();
    let mut written = Vec::new();
    for dir in dirs {
        written.extend(plot_run_with(dir, text)?);
    }
    if let Some(first) = dirs.first() {
        let parent = match first.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let out = parent.join(COMPARE_PNG);
        if plot_comparison(dirs, &out, text)? {
            written.push(out);
        }
    }
    Ok(written)
}

/// [`plot_run`] with an explicit choice of whether text may be drawn.
fn plot_run_with(run_dir: &Path, text: bool) -> Result<Vec<PathBuf>> {
    let progress = run_dir.join(PROGRESS_FILE);
    let trajectories = run_dir.join(TRAJECTORIES_FILE);
    if !progress.is_file() && !trajectories.is_file() {
        return Err(Error::RunDir {
            path: run_dir.to_path_buf(),
            message: format!(
                "nothing to plot: neither {PROGRESS_FILE} nor {TRAJECTORIES_FILE} exists"
            ),
        });
    }
    let out_dir = run_dir.join(PLOTS_DIR);
    std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
    let mut written = Vec::new();
    if progress.is_file() {
        written.extend(plot_progress(&progress, &out_dir, text)?);
    }
    if trajectories.is_file() {
        let tasks = read_trajectories(&trajectories)?;
        let out = out_dir.join(TRAJECTORIES_PNG);
        if plot_trajectories(&tasks, &out, text)? {
            written.push(out);
        }
        let out = out_dir.join(X_OVER_TIME_PNG);
        if tasks.values().all(|t| t.goals.is_empty()) && plot_x_over_time(&tasks, &out, text)? {
            written.push(out);
        }
    }
    Ok(written)
}

/// Registers a system font as `sans-serif` once per process; true when one was found.
fn font_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let from_env = std::env::var_os(FONT_ENV).map(PathBuf::from);
        let candidates = from_env
            .into_iter()
            .chain(FONT_CANDIDATES.iter().map(PathBuf::from));
        for path in candidates {
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if register_font(FONT, FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
        false
    })
}

// ---------------------------------------------------------------------------------------
// CSV input
// ---------------------------------------------------------------------------------------

/// Reads a CSV file with a header into its header and rows of trimmed cells.
fn read_table(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(file);
    let csv_err = |e: csv::Error| Error::Other(format!("{}: {e}", path.display()));
    let header = reader.headers().map_err(csv_err)?;
    let header = header.iter().map(str::to_string).collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_err)?;
        rows.push(record.iter().map(str::to_string).collect());
    }
    Ok((header, rows))
}

/// Parses a cell as a finite number.
fn parse_cell(cell: &str) -> Option<f64> {
    cell.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Reads every column of a CSV file as numbers (NaN where a cell is blank, missing or
/// not a finite number).
fn read_columns(path: &Path) -> Result<Vec<Column>> {
    let (header, rows) = read_table(path)?;
    let columns = header
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let values = rows
                .iter()
                .map(|row| row.get(i).and_then(|c| parse_cell(c)).unwrap_or(f64::NAN))
                .collect();
            (name, values)
        })
        .collect();
    Ok(columns)
}

/// True when at least one value is finite.
fn has_data(values: &[f64]) -> bool {
    values.iter().any(|v| v.is_finite())
}

// ---------------------------------------------------------------------------------------
// Learning curves
// ---------------------------------------------------------------------------------------

/// `Some(k)` for `post_return_<k>`, `Some(0)` for `pre_return`, `None` otherwise.
fn return_step(name: &str) -> Option<usize> {
    if name == "pre_return" {
        return Some(0);
    }
    let k = name.strip_prefix("post_return_")?;
    if k.is_empty() || !k.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    k.parse().ok()
}

/// Legend text of a return column (see [`return_step`]).
fn return_label(step: usize) -> String {
    match step {
        0 => "pre-update".to_string(),
        k => format!("post-update step {k}"),
    }
}

/// True for the columns that never get a metrics chart.
fn is_bookkeeping(name: &str) -> bool {
    name == "iteration" || name == "env_steps" || name.ends_with("_seconds")
}

/// The x values of `progress.csv`: `iteration` if present, else the row index.
fn iteration_axis(columns: &[Column]) -> Vec<f64> {
    match columns.iter().find(|(n, _)| n == "iteration") {
        Some((_, v)) => v.clone(),
        None => {
            let rows = columns.first().map_or(0, |(_, v)| v.len());
            (0..rows).map(|i| i as f64).collect()
        }
    }
}

/// Splits the columns with data into return curves (sorted by step, labelled) and
/// other metrics.
fn split_progress(columns: Vec<Column>) -> (Vec<Column>, Vec<Column>) {
    let mut returns: Vec<(usize, Column)> = Vec::new();
    let mut metrics = Vec::new();
    for (name, values) in columns {
        if !has_data(&values) || is_bookkeeping(&name) {
            continue;
        }
        match return_step(&name) {
            Some(k) => returns.push((k, (return_label(k), values))),
            None => metrics.push((name, values)),
        }
    }
    returns.sort_by_key(|(k, _)| *k);
    (returns.into_iter().map(|(_, c)| c).collect(), metrics)
}

/// Draws `returns.png` and `metrics.png` from `progress.csv`; returns the paths written.
fn plot_progress(csv: &Path, out_dir: &Path, text: bool) -> Result<Vec<PathBuf>> {
    let columns = read_columns(csv)?;
    let x = iteration_axis(&columns);
    let (returns, metrics) = split_progress(columns);
    let mut written = Vec::new();
    if !returns.is_empty() {
        let out = out_dir.join(RETURNS_PNG);
        let series: Vec<Curve> = returns
            .iter()
            .enumerate()
            .map(|(i, (label, y))| Curve {
                label,
                x: &x,
                y,
                color: PALETTE[i % PALETTE.len()],
            })
            .collect();
        let spec = ChartText {
            title: "Average return",
            x_desc: "iteration",
            y_desc: "return",
        };
        render(&out, CURVE_SIZE, |root| {
            line_chart(root, &spec, &series, text, SeriesLabelPosition::LowerRight)
        })?;
        written.push(out);
    }
    if !metrics.is_empty() {
        let out = out_dir.join(METRICS_PNG);
        draw_metrics(&out, &x, &metrics, text)?;
        written.push(out);
    }
    Ok(written)
}

/// Rows and columns of a grid holding `n` cells, at most `max_cols` wide.
fn grid_shape(n: usize, max_cols: usize) -> (usize, usize) {
    let cols = if n == 4 { 2 } else { n.clamp(1, max_cols) };
    (n.div_ceil(cols), cols)
}

/// Draws one small chart per metric column, in a grid, into `out`.
fn draw_metrics(out: &Path, x: &[f64], metrics: &[Column], text: bool) -> Result<()> {
    let (rows, cols) = grid_shape(metrics.len(), 3);
    let size = (METRIC_CELL.0 * cols as u32, METRIC_CELL.1 * rows as u32);
    render(out, size, |root| {
        for ((name, y), cell) in metrics.iter().zip(root.split_evenly((rows, cols))) {
            let curve = Curve {
                label: name,
                x,
                y,
                color: PALETTE[0],
            };
            let spec = ChartText {
                title: name,
                x_desc: "iteration",
                y_desc: "",
            };
            line_chart(
                &cell,
                &spec,
                &[curve],
                text,
                SeriesLabelPosition::LowerRight,
            )?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// Generic charts
// ---------------------------------------------------------------------------------------

/// One line of a line chart; NaN values of `y` (or `x`) leave gaps.
struct Curve<'a> {
    /// Legend text.
    label: &'a str,
    /// x values.
    x: &'a [f64],
    /// y values, same length as `x`.
    y: &'a [f64],
    /// Line color.
    color: RGBColor,
}

/// Caption and axis descriptions of a chart (only drawn when a font is available).
struct ChartText<'a> {
    /// Caption above the chart.
    title: &'a str,
    /// Description of the x axis.
    x_desc: &'a str,
    /// Description of the y axis (empty for none).
    y_desc: &'a str,
}

/// Wraps a plotters error.
fn draw_err(e: impl std::fmt::Display) -> Error {
    Error::Other(format!("plotting failed: {e}"))
}

/// Creates a white PNG canvas of `size` at `path`, runs `draw` on it and saves it.
fn render(path: &Path, size: (u32, u32), draw: impl FnOnce(&Area) -> Result<()>) -> Result<()> {
    let with_path = |e: Error| Error::Other(format!("{}: {e}", path.display()));
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err).map_err(with_path)?;
    draw(&root).map_err(with_path)?;
    root.present().map_err(draw_err).map_err(with_path)
}

/// Smallest and largest finite value, if any.
fn finite_bounds(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Widens a range by 5% on each side; a degenerate range (a constant series) by 10% of
/// its value on each side, so its ticks show the value (or to ±0.5 around 0).
fn padded((lo, hi): (f64, f64)) -> (f64, f64) {
    let span = hi - lo;
    if span <= 1e-12 * lo.abs().max(1.0) {
        let half = if lo == 0.0 { 0.5 } else { lo.abs() * 0.1 };
        (lo - half, hi + half)
    } else {
        (lo - 0.05 * span, hi + 0.05 * span)
    }
}

/// Runs of consecutive points where both coordinates are finite.
fn segments(x: &[f64], y: &[f64]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current = Vec::new();
    for (&a, &b) in x.iter().zip(y) {
        if a.is_finite() && b.is_finite() {
            current.push((a, b));
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The chart type of every plot in this module.
type Chart<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Builds a chart with the given ranges, caption (unless empty) and mesh; no text at
/// all if `!text`.
fn new_chart<'a, 'b>(
    area: &'a Area<'b>,
    spec: &ChartText,
    (x, y): ((f64, f64), (f64, f64)),
    text: bool,
) -> Result<Chart<'a, 'b>> {
    let mut builder = ChartBuilder::on(area);
    builder.margin(MARGIN);
    if text && !spec.title.is_empty() {
        builder.caption(spec.title, (FONT, 20));
    }
    if text {
        builder
            .x_label_area_size(LABEL_AREA.0)
            .y_label_area_size(LABEL_AREA.1);
    }
    let mut chart = builder
        .build_cartesian_2d(x.0..x.1, y.0..y.1)
        .map_err(draw_err)?;
    draw_mesh(&mut chart, spec, text)?;
    Ok(chart)
}

/// Draws grid lines, and either labelled axes (`text`) or a plain frame.
fn draw_mesh(chart: &mut Chart, spec: &ChartText, text: bool) -> Result<()> {
    if text {
        let (x, y) = (chart.x_range(), chart.y_range());
        let (dx, dy) = (
            tick_decimals(x.end - x.start),
            tick_decimals(y.end - y.start),
        );
        let (fx, fy) = (
            move |v: &f64| tick_label(*v, dx),
            move |v: &f64| tick_label(*v, dy),
        );
        let mut mesh = chart.configure_mesh();
        mesh.label_style((FONT, 13))
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .x_desc(spec.x_desc);
        if !spec.y_desc.is_empty() {
            mesh.y_desc(spec.y_desc);
        }
        return mesh.draw().map_err(draw_err);
    }
    // No font: `disable_*_axis` keeps plotters from formatting tick labels, and without
    // label areas it never draws axis descriptions, so no text call can fail.
    chart
        .configure_mesh()
        .disable_x_axis()
        .disable_y_axis()
        .draw()
        .map_err(draw_err)?;
    let (x, y) = (chart.x_range(), chart.y_range());
    let frame = Rectangle::new([(x.start, y.start), (x.end, y.end)], BLACK.stroke_width(1));
    chart.plotting_area().draw(&frame).map_err(draw_err)
}

/// Decimals that tell apart ticks about a tenth of `span` apart (plotters puts at most
/// ten labels on an axis, at multiples of 1, 2 or 5 × 10^k).
fn tick_decimals(span: f64) -> usize {
    let step = span.abs() / 10.0;
    if !step.is_finite() || step <= 0.0 {
        return 1;
    }
    (-step.log10().floor()).clamp(0.0, 8.0) as usize
}

/// Formats a tick value with `decimals` digits after the point, never as `-0`.
fn tick_label(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    match text.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => text,
    }
}

/// Draws the legend of the labelled series, if text is allowed.
fn draw_legend<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    position: SeriesLabelPosition,
    text: bool,
) -> Result<()> {
    if !text {
        return Ok(());
    }
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(draw_err)
}

/// Adds a legend-only entry (no data) with a line of `color`.
fn legend_entry(chart: &mut Chart, label: &str, color: RGBColor) -> Result<()> {
    chart
        .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
        .map_err(draw_err)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    Ok(())
}

/// Draws `curves` as lines on one chart (isolated points as dots), with a legend in the
/// corner `legend` when there is more than one curve.
fn line_chart(
    area: &Area,
    spec: &ChartText,
    curves: &[Curve],
    text: bool,
    legend: SeriesLabelPosition,
) -> Result<()> {
    let xs = curves
        .iter()
        .flat_map(|c| c.x.iter().zip(c.y).filter(|(_, y)| y.is_finite()));
    let x = finite_bounds(xs.map(|(x, _)| *x)).unwrap_or((0.0, 1.0));
    let y = finite_bounds(curves.iter().flat_map(|c| c.y.iter().copied())).unwrap_or((0.0, 1.0));
    let mut chart = new_chart(area, spec, (padded(x), padded(y)), text)?;
    for curve in curves {
        let style = curve.color.stroke_width(2);
        for seg in segments(curve.x, curve.y) {
            if seg.len() == 1 {
                let dot = Circle::new(seg[0], 5, curve.color.filled());
                chart.draw_series(std::iter::once(dot)).map_err(draw_err)?;
            } else {
                draw_segments(&mut chart, &seg, style)?;
            }
        }
        legend_entry(&mut chart, curve.label, curve.color)?;
    }
    if curves.len() > 1 {
        draw_legend(&mut chart, legend, text)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Run comparison
// ---------------------------------------------------------------------------------------

/// Legend label, x values and y values of one run in the comparison chart.
type RunCurve = (String, Vec<f64>, Vec<f64>);

/// Reads the curve compared across runs: `post_return_1`, else `pre_return`.
fn comparison_curve(dir: &Path) -> Result<Option<RunCurve>> {
    let csv = dir.join(PROGRESS_FILE);
    if !csv.is_file() {
        return Ok(None);
    }
    let columns = read_columns(&csv)?;
    let x = iteration_axis(&columns);
    let pick = |name: &str| columns.iter().find(|(n, v)| n == name && has_data(v));
    let Some((column, y)) = pick("post_return_1").or_else(|| pick("pre_return")) else {
        return Ok(None);
    };
    let run = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(Some((format!("{run} ({column})"), x, y.clone())))
}

/// Writes the comparison chart to `out` if at least two runs have a curve.
fn plot_comparison(dirs: &[PathBuf], out: &Path, text: bool) -> Result<bool> {
    let mut runs = Vec::new();
    for dir in dirs {
        runs.extend(comparison_curve(dir)?);
    }
    if runs.len() < 2 {
        return Ok(false);
    }
    let spec = ChartText {
        title: "Average return by run",
        x_desc: "iteration",
        y_desc: "return",
    };
    draw_curves(out, &spec, &runs, text, SeriesLabelPosition::LowerRight)?;
    Ok(true)
}

/// Draws labelled `(label, x, y)` curves in the palette's colours on one chart at `out`.
fn draw_curves(
    out: &Path,
    spec: &ChartText,
    curves: &[RunCurve],
    text: bool,
    legend: SeriesLabelPosition,
) -> Result<()> {
    let curves: Vec<Curve> = curves
        .iter()
        .enumerate()
        .map(|(i, (label, x, y))| Curve {
            label,
            x,
            y,
            color: PALETTE[i % PALETTE.len()],
        })
        .collect();
    render(out, CURVE_SIZE, |root| {
        line_chart(root, spec, &curves, text, legend)
    })
}

/// Draws named curves, each the polyline through its points `(x[i], y[i])`, on one
/// chart at `out` (a PNG): for plots that are not of a run directory, e.g. a path in
/// parameter space (`x` = θ₀, `y` = θ₁ over iterations); a one-point curve is a dot.
/// The legend goes in the corner `legend`. Axis text only where a font is found, as for
/// every plot here.
pub fn plot_curves(
    out: &Path,
    (title, x_desc, y_desc): (&str, &str, &str),
    curves: &[(String, Vec<f64>, Vec<f64>)],
    legend: SeriesLabelPosition,
) -> Result<()> {
    let spec = ChartText {
        title,
        x_desc,
        y_desc,
    };
    draw_curves(out, &spec, curves, font_available(), legend)
}

// ---------------------------------------------------------------------------------------
// Trajectories
// ---------------------------------------------------------------------------------------

/// One trajectory point `(t, x, y)`.
type TrajPoint = (f64, f64, f64);

/// The rollouts and goals of one task, read from `trajectories.csv`.
#[derive(Default)]
struct TaskTraj {
    /// Points `(t, x, y)` of each `(phase, rollout)`, in file order until sorted.
    paths: BTreeMap<(String, String), Vec<TrajPoint>>,
    /// Distinct goal positions.
    goals: Vec<(f64, f64)>,
    /// The task's one-number target (a row with `goal_x` and no `goal_y`): d or v*.
    target: Option<f64>,
}

impl TaskTraj {
    /// The panel title of task `name`, with its target when it has one.
    fn title(&self, name: &str) -> String {
        match self.target {
            Some(v) => format!("task {name}: target {v:.3}"),
            None => format!("task {name}"),
        }
    }
}

/// Index of a required column, or an error naming it.
fn column_index(header: &[String], name: &str, path: &Path) -> Result<usize> {
    header
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| Error::Other(format!("{}: missing column `{name}`", path.display())))
}

/// Reads `trajectories.csv` into tasks keyed by their `task` cell; rows with a
/// non-numeric `x` or `y` are skipped.
fn read_trajectories(path: &Path) -> Result<BTreeMap<String, TaskTraj>> {
    let (header, rows) = read_table(path)?;
    let idx = |name| column_index(&header, name, path);
    let (phase, task, rollout) = (idx("phase")?, idx("task")?, idx("rollout")?);
    let (t, x, y) = (idx("t")?, idx("x")?, idx("y")?);
    let goal = (idx("goal_x").ok(), idx("goal_y").ok());
    let cell = |row: &[String], i: usize| row.get(i).map_or("", String::as_str).to_string();
    let num =
        |row: &[String], i: Option<usize>| i.and_then(|i| row.get(i)).and_then(|c| parse_cell(c));
    let mut tasks: BTreeMap<String, TaskTraj> = BTreeMap::new();
    for row in &rows {
        let entry = tasks.entry(cell(row, task)).or_default();
        if let (Some(v), None) = (num(row, goal.0), num(row, goal.1)) {
            entry.target = Some(v);
        }
        if let (Some(gx), Some(gy)) = (num(row, goal.0), num(row, goal.1)) {
            if !entry
                .goals
                .iter()
                .any(|&(a, b)| (a - gx).abs() < 1e-9 && (b - gy).abs() < 1e-9)
            {
                entry.goals.push((gx, gy));
            }
        }
        let (Some(px), Some(py)) = (num(row, Some(x)), num(row, Some(y))) else {
            continue;
        };
        let step = num(row, Some(t)).unwrap_or(f64::NAN);
        let key = (cell(row, phase), cell(row, rollout));
        entry.paths.entry(key).or_default().push((step, px, py));
    }
    Ok(tasks)
}

/// Orders labels numerically when both parse as numbers, else as text.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// Orders phases: `pre…` first, then by the trailing number (`post-1`, `post-2`, …).
fn phase_cmp(a: &str, b: &str) -> Ordering {
    let key = |p: &str| {
        let digits = p.trim_start_matches(|c: char| !c.is_ascii_digit());
        (!p.starts_with("pre"), digits.parse::<u64>().unwrap_or(0))
    };
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

/// Distinct phases of the shown tasks, in [`phase_cmp`] order.
fn phases_of(tasks: &[(&String, &TaskTraj)]) -> Vec<String> {
    let mut phases: Vec<String> = tasks
        .iter()
        .flat_map(|(_, t)| t.paths.keys().map(|(p, _)| p.clone()))
        .collect();
    phases.sort_by(|a, b| phase_cmp(a, b));
    phases.dedup();
    phases
}

/// The first [`MAX_TASKS`] tasks in natural order.
fn shown_tasks(tasks: &BTreeMap<String, TaskTraj>) -> Vec<(&String, &TaskTraj)> {
    let mut shown: Vec<(&String, &TaskTraj)> = tasks.iter().collect();
    shown.sort_by(|a, b| natural_cmp(a.0, b.0));
    shown.truncate(MAX_TASKS);
    shown
}

/// Draws `trajectories.png`: one panel per task (first [`MAX_TASKS`] in natural
/// order); returns false (nothing written) when the file holds no rows.
fn plot_trajectories(tasks: &BTreeMap<String, TaskTraj>, out: &Path, text: bool) -> Result<bool> {
    let shown = shown_tasks(tasks);
    if shown.is_empty() {
        return Ok(false);
    }
    let phases = phases_of(&shown);
    let bounds = traj_bounds(&shown);
    render_task_grid(out, &shown, TRAJ_PANEL, |panel, i, name, task| {
        let title = task.title(name);
        task_panel(panel, &title, task, &phases, bounds, (text, i == 0))
    })?;
    Ok(true)
}

/// Renders one panel per shown task, in rows of at most three, `cell` pixels each;
/// `panel(area, i, name, task)` draws the `i`-th.
fn render_task_grid(
    out: &Path,
    shown: &[(&String, &TaskTraj)],
    cell: (u32, u32),
    mut panel: impl FnMut(&Area, usize, &str, &TaskTraj) -> Result<()>,
) -> Result<()> {
    let (rows, cols) = grid_shape(shown.len(), 3);
    let size = (cell.0 * cols as u32, cell.1 * rows as u32);
    render(out, size, |root| {
        for (i, ((name, task), area)) in shown
            .iter()
            .zip(root.split_evenly((rows, cols)))
            .enumerate()
        {
            panel(&area, i, name, task)?;
        }
        Ok(())
    })
}

/// Draws `x-over-time.png`: one panel per task (first [`MAX_TASKS`]), x against the step
/// of every rollout, coloured by phase, on common axes; false (nothing written) when no
/// path has a numeric step.
fn plot_x_over_time(tasks: &BTreeMap<String, TaskTraj>, out: &Path, text: bool) -> Result<bool> {
    let shown = shown_tasks(tasks);
    let points = || {
        shown
            .iter()
            .flat_map(|(_, t)| t.paths.values().flatten())
            .filter(|p| p.0.is_finite())
    };
    let (Some(t), Some(x)) = (
        finite_bounds(points().map(|p| p.0)),
        finite_bounds(points().map(|p| p.1)),
    ) else {
        return Ok(false);
    };
    let ranges = (padded(t), padded(x));
    let phases = phases_of(&shown);
    render_task_grid(out, &shown, METRIC_CELL, |panel, i, name, task| {
        let title = task.title(name);
        let spec = ChartText {
            title: &title,
            x_desc: "step",
            y_desc: "x",
        };
        let mut chart = new_chart(panel, &spec, ranges, text)?;
        for (k, phase) in phases.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            draw_phase(&mut chart, task, phase, color, |&(t, x, _)| (t, x))?;
            legend_entry(&mut chart, phase, color)?;
        }
        if i == 0 && phases.len() > 1 {
            draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, text)?;
        }
        Ok(())
    })?;
    Ok(true)
}

/// Common x and y bounds of all points and goals of the shown tasks.
fn traj_bounds(tasks: &[(&String, &TaskTraj)]) -> ((f64, f64), (f64, f64)) {
    let points = || {
        tasks.iter().flat_map(|(_, t)| {
            let path_pts = t.paths.values().flatten().map(|&(_, x, y)| (x, y));
            path_pts.chain(t.goals.iter().copied())
        })
    };
    let x = finite_bounds(points().map(|p| p.0)).unwrap_or((0.0, 1.0));
    let y = finite_bounds(points().map(|p| p.1)).unwrap_or((0.0, 1.0));
    (padded(x), padded(y))
}

/// Widens the shorter range so one data unit spans as many pixels on both axes.
fn equal_aspect((x, y): ((f64, f64), (f64, f64)), (w, h): (u32, u32)) -> ((f64, f64), (f64, f64)) {
    if w == 0 || h == 0 {
        return (x, y);
    }
    let (sx, sy) = (x.1 - x.0, y.1 - y.0);
    let ratio = f64::from(w) / f64::from(h);
    if sx / sy < ratio {
        let grow = (sy * ratio - sx) / 2.0;
        ((x.0 - grow, x.1 + grow), y)
    } else {
        let grow = (sx / ratio - sy) / 2.0;
        (x, (y.0 - grow, y.1 + grow))
    }
}

/// Pixel size of the plotting area that [`new_chart`] leaves inside `area`.
fn plot_size(area: &Area, text: bool) -> (u32, u32) {
    let (w, h) = area.dim_in_pixel();
    let (lx, ly) = if text { LABEL_AREA } else { (0, 0) };
    (
        w.saturating_sub(2 * MARGIN + ly),
        h.saturating_sub(2 * MARGIN + lx),
    )
}

/// Draws one task's rollouts (colored by phase) and goals on `panel`; with
/// `(text, legend)` both true, also the legend.
fn task_panel(
    panel: &Area,
    title: &str,
    task: &TaskTraj,
    phases: &[String],
    bounds: ((f64, f64), (f64, f64)),
    (text, legend): (bool, bool),
) -> Result<()> {
    // The caption is drawn here (not by the chart builder) so that the remaining area,
    // and thus the aspect ratio, is known exactly.
    let area = if text {
        panel.titled(title, (FONT, 18)).map_err(draw_err)?
    } else {
        panel.clone()
    };
    let ranges = equal_aspect(bounds, plot_size(&area, text));
    let spec = ChartText {
        title: "",
        x_desc: "x",
        y_desc: "y",
    };
    let mut chart = new_chart(&area, &spec, ranges, text)?;
    for (i, phase) in phases.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        draw_phase(&mut chart, task, phase, color, |&(_, x, y)| (x, y))?;
        legend_entry(&mut chart, phase, color)?;
    }
    draw_goals(&mut chart, &task.goals)?;
    if legend {
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight, text)?;
    }
    Ok(())
}

/// Draws one phase of a task: up to [`SAMPLED_SHOWN`] sampled rollouts, faint when a
/// mean-action path is recorded and drawn bold over them; a lone path is drawn bold.
/// `point` picks the chart coordinates of a `(t, x, y)` point.
fn draw_phase<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    task: &TaskTraj,
    phase: &str,
    color: RGBColor,
    point: impl Fn(&TrajPoint) -> (f64, f64),
) -> Result<()> {
    let mut sampled: Vec<_> = task
        .paths
        .iter()
        .filter(|((p, r), _)| p == phase && r != MEAN_ROLLOUT)
        .collect();
    sampled.sort_by(|a, b| natural_cmp(&a.0 .1, &b.0 .1));
    let mean = task
        .paths
        .get(&(phase.to_string(), MEAN_ROLLOUT.to_string()));
    let sampled_style = match (mean, sampled.len()) {
        (Some(_), _) => color.mix(0.3).stroke_width(1),
        (None, 1) => color.stroke_width(3),
        (None, _) => color.mix(0.8).stroke_width(2),
    };
    for (_, points) in sampled.into_iter().take(SAMPLED_SHOWN) {
        draw_path(chart, points, &point, sampled_style)?;
    }
    if let Some(points) = mean {
        draw_path(chart, points, &point, color.stroke_width(3))?;
    }
    Ok(())
}

/// Draws a path in time order, one segment at a time ([`draw_segments`]).
fn draw_path<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    points: &[TrajPoint],
    point: impl Fn(&TrajPoint) -> (f64, f64),
    style: ShapeStyle,
) -> Result<()> {
    let mut points: Vec<TrajPoint> = points.iter().filter(|p| !p.0.is_nan()).copied().collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let xy: Vec<(f64, f64)> = points.iter().map(point).collect();
    draw_segments(chart, &xy, style)
}

/// Draws the polyline through `xy` one segment at a time: plotters joins the segments of
/// a wide polyline with miter joins, which shoot far past the data (and out of the panel)
/// where a path doubles back on itself.
fn draw_segments(chart: &mut Chart, xy: &[(f64, f64)], style: ShapeStyle) -> Result<()> {
    chart
        .draw_series(
            xy.windows(2)
                .map(|w| PathElement::new(vec![w[0], w[1]], style)),
        )
        .map_err(draw_err)?;
    Ok(())
}

/// Pixel offsets of the corners of a five-pointed star of outer radius `r`.
fn star_outline(r: f64) -> Vec<(i32, i32)> {
    (0..10)
        .map(|i| {
            let radius = if i % 2 == 0 { r } else { 0.42 * r };
            let angle = std::f64::consts::PI * f64::from(i) / 5.0 - std::f64::consts::FRAC_PI_2;
            (
                (radius * angle.cos()).round() as i32,
                (radius * angle.sin()).round() as i32,
            )
        })
        .collect()
}

/// The element type of a goal marker.
type Star<C, DB> = ComposedElement<C, DB, Polygon<(i32, i32)>, PathElement<(i32, i32)>>;

/// A gold, black-outlined star of outer radius `r` pixels centred on `at`.
fn star<C, DB: DrawingBackend>(at: C, r: f64) -> Star<C, DB> {
    let corners = star_outline(r);
    let mut ring = corners.clone();
    ring.push(corners[0]);
    EmptyElement::at(at)
        + Polygon::new(corners, GOAL_COLOR.filled())
        + PathElement::new(ring, BLACK.stroke_width(1))
}

/// Draws each goal as a star, with a legend entry when there is any.
fn draw_goals<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, goals: &[(f64, f64)]) -> Result<()> {
    if goals.is_empty() {
        return Ok(());
    }
    chart
        .draw_series(goals.iter().map(|&g| star(g, 10.0)))
        .map_err(draw_err)?
        .label("goal")
        .legend(|(x, y)| star((x + 10, y), 7.0));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Width and height from a PNG's signature and IHDR chunk; panics if not a PNG.
    fn png_size(path: &Path) -> (u32, u32) {
        let bytes = std::fs::read(path).unwrap();
        assert!(bytes.len() > 24, "{} is too short", path.display());
        assert_eq!(
            &bytes[..8],
            b"\x89PNG\r\n\x1a\n",
            "{} is not a PNG",
            path.display()
        );
        assert_eq!(&bytes[12..16], b"IHDR");
        let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
        (be(16), be(20))
    }

    /// Asserts `path` is a PNG of `size` with more than a blank canvas's worth of bytes.
    fn assert_png(path: &Path, size: (u32, u32)) {
        assert_eq!(png_size(path), size, "{}", path.display());
        let len = std::fs::metadata(path).unwrap().len();
        assert!(len > 2_000, "{} has only {len} bytes", path.display());
    }

    const PROGRESS: &str = "iteration,env_steps,pre_return,post_return_1,post_return_2,\
meta_loss,kl,grad_norm,sample_seconds\n\
0,100,-50.0,-45.0,-42.0,1.5,0.010,3.0,0.5\n\
1,200,-40.0,-33.0,-30.0,1.2,0.012,2.5,0.5\n\
2,300,-35.0,-25.0,-21.0,0.9,0.008,2.2,0.5\n\
3,400,-30.0,-18.0,-15.0,0.7,0.009,1.9,0.5\n\
4,500,-28.0,-14.0,-11.0,0.6,0.007,1.7,0.5\n";

    /// Three tasks × two phases × two rollouts of 20 steps, with goals.
    fn trajectories_csv() -> String {
        let mut s = String::from("phase,task,rollout,t,x,y,goal_x,goal_y\n");
        let goals = [(1.0, 0.5), (-0.8, 0.9), (0.3, -1.0)];
        for (task, &(gx, gy)) in goals.iter().enumerate() {
            for (phase, reach) in [("pre", 0.4), ("post-1", 1.0)] {
                for rollout in 0..2 {
                    for t in 0..20 {
                        let f = f64::from(t) / 19.0 * reach;
                        let wiggle = 0.05 * f64::from(rollout) * (f64::from(t) * 0.7).sin();
                        let (x, y) = (gx * f + wiggle, gy * f - wiggle);
                        s += &format!("{phase},{task},{rollout},{t},{x},{y},{gx},{gy}\n");
                    }
                }
            }
        }
        s
    }

    #[test]
    fn plot_run_writes_all_pngs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PROGRESS_FILE), PROGRESS).unwrap();
        std::fs::write(dir.path().join(TRAJECTORIES_FILE), trajectories_csv()).unwrap();
        let written = plot_run(dir.path()).unwrap();
        let plots = dir.path().join(PLOTS_DIR);
        let names = [RETURNS_PNG, METRICS_PNG, TRAJECTORIES_PNG];
        assert_eq!(written, names.map(|n| plots.join(n)).to_vec());
        assert_png(&written[0], CURVE_SIZE);
        // meta_loss, kl, grad_norm: one row of three cells.
        assert_png(&written[1], (3 * METRIC_CELL.0, METRIC_CELL.1));
        // Three tasks: one row of three panels.
        assert_png(&written[2], (3 * TRAJ_PANEL.0, TRAJ_PANEL.1));
    }

    #[test]
    fn trajectories_without_goals_also_get_x_over_time() {
        // A locomotion evaluation: no goal cells; the post-update rollouts run backwards.
        let mut csv = String::from("phase,task,rollout,t,x,y,goal_x,goal_y\n");
        for task in 0..4 {
            for (phase, v) in [("pre", 0.3), ("post-1", -0.5)] {
                for t in 0..30 {
                    let x = v * f64::from(t);
                    csv += &format!("{phase},{task},0,{t},{x},0.6,,\n");
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TRAJECTORIES_FILE), &csv).unwrap();
        let written = plot_run(dir.path()).unwrap();
        let plots = dir.path().join(PLOTS_DIR);
        assert_eq!(
            written,
            vec![plots.join(TRAJECTORIES_PNG), plots.join(X_OVER_TIME_PNG)]
        );
        // Four tasks: two rows of two panels.
        assert_png(&written[1], (2 * METRIC_CELL.0, 2 * METRIC_CELL.1));
        // A path per phase that acted with the mean action is drawn over a few samples.
        for phase in ["pre", "post-1"] {
            for t in 0..30 {
                csv += &format!(
                    "{phase},0,{MEAN_ROLLOUT},{t},{},0.6,,\n",
                    0.1 * f64::from(t)
                );
            }
        }
        std::fs::write(dir.path().join(TRAJECTORIES_FILE), &csv).unwrap();
        assert_eq!(plot_run(dir.path()).unwrap().len(), 2);
        // With goals (the point tasks) there is no x-over-time chart.
        std::fs::write(dir.path().join(TRAJECTORIES_FILE), trajectories_csv()).unwrap();
        std::fs::remove_dir_all(&plots).unwrap();
        assert_eq!(
            plot_run(dir.path()).unwrap(),
            vec![plots.join(TRAJECTORIES_PNG)]
        );
    }

    #[test]
    fn goal_only_rows_add_goals_and_no_path() {
        let mut csv = String::from("phase,task,rollout,t,x,y,goal_x,goal_y\n");
        csv += "pre,0,0,0,0,0,1,0\npre,0,0,1,0.1,0,1,0\n";
        csv += &crate::traj::task_marker_rows(0, &[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], None);
        csv += &crate::traj::task_marker_rows(1, &[], Some(-1.0));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TRAJECTORIES_FILE);
        std::fs::write(&path, &csv).unwrap();
        let tasks = read_trajectories(&path).unwrap();
        let t = &tasks["0"];
        assert_eq!(t.goals, vec![(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0)]);
        assert_eq!(t.paths.len(), 1, "the goal rows are not a path");
        assert_eq!((t.target, t.title("0")), (None, "task 0".to_string()));
        let t1 = &tasks["1"];
        assert!(t1.goals.is_empty() && t1.paths.is_empty());
        assert_eq!(t1.title("1"), "task 1: target -1.000");
        let shown = shown_tasks(&tasks);
        assert_eq!(phases_of(&shown), vec!["pre".to_string()]);
    }

    #[test]
    fn missing_inputs_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = plot_run(dir.path()).unwrap_err();
        assert!(matches!(err, Error::RunDir { .. }), "{err}");
        assert!(!dir.path().join(PLOTS_DIR).exists());
    }

    #[test]
    fn blank_cells_and_column_subsets_still_plot() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "iteration,post_return_1,loss,note\n0,-10,,a\n1,,0.5,b\n2,-7,0.4,\n3,-5,x,c\n4,-4,0.2,d\n";
        std::fs::write(dir.path().join(PROGRESS_FILE), csv).unwrap();
        let written = plot_run(dir.path()).unwrap();
        let plots = dir.path().join(PLOTS_DIR);
        // `note` has no numbers, so only `loss` gets a metrics chart.
        assert_eq!(
            written,
            vec![plots.join(RETURNS_PNG), plots.join(METRICS_PNG)]
        );
        assert_png(&written[0], CURVE_SIZE);
        assert_png(&written[1], METRIC_CELL);
    }

    #[test]
    fn plots_without_a_font() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(PROGRESS_FILE), PROGRESS).unwrap();
        std::fs::write(dir.path().join(TRAJECTORIES_FILE), trajectories_csv()).unwrap();
        let written = plot_run_with(dir.path(), false).unwrap();
        assert_eq!(written.len(), 3);
        assert_png(&written[2], (3 * TRAJ_PANEL.0, TRAJ_PANEL.1));
    }

    #[test]
    fn text_with_an_unregistered_font_fails_in_plotters() {
        // Why the no-font path must avoid every text call: plotters reports an error.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.png");
        let root = BitMapBackend::new(&path, (50, 50)).into_drawing_area();
        let style = ("metarl-no-such-font", 12).into_text_style(&root);
        assert!(root.draw_text("x", &style, (5, 5)).is_err());
    }

    #[test]
    fn plot_runs_compares_runs() {
        let parent = tempfile::tempdir().unwrap();
        let dirs: Vec<PathBuf> = ["a", "b"].iter().map(|n| parent.path().join(n)).collect();
        for dir in &dirs {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join(PROGRESS_FILE), PROGRESS).unwrap();
        }
        let written = plot_runs(&dirs).unwrap();
        assert_eq!(written.len(), 5);
        assert_eq!(written[4], parent.path().join(COMPARE_PNG));
        assert_png(&written[4], CURVE_SIZE);
    }

    #[test]
    fn helpers() {
        assert_eq!(return_step("pre_return"), Some(0));
        assert_eq!(return_step("post_return_3"), Some(3));
        assert_eq!(return_step("post_return_1_std"), None);
        assert_eq!(grid_shape(4, 3), (2, 2));
        assert_eq!(grid_shape(5, 3), (2, 3));
        let segs = segments(&[0.0, 1.0, 2.0, 3.0], &[1.0, f64::NAN, 2.0, 3.0]);
        assert_eq!(segs, vec![vec![(0.0, 1.0)], vec![(2.0, 2.0), (3.0, 3.0)]]);
        let (x, y) = equal_aspect(((0.0, 1.0), (0.0, 4.0)), (200, 400));
        assert!(((x.1 - x.0) / (y.1 - y.0) - 0.5).abs() < 1e-12);
        assert_eq!(phase_cmp("pre", "post-1"), Ordering::Less);
        assert_eq!(phase_cmp("post-2", "post-10"), Ordering::Less);
        assert_eq!(tick_label(-1e-17, tick_decimals(2.0)), "0.0");
        assert_eq!(tick_label(0.0095, tick_decimals(0.005)), "0.0095");
        assert_eq!(tick_label(-50.0, tick_decimals(40.0)), "-50");
        // A constant series (ProMP's η = 5e-4) gets an axis around its value that its
        // ticks can tell apart from 0.
        let (lo, hi) = padded((5e-4, 5e-4));
        assert!((lo - 4.5e-4).abs() < 1e-15 && (hi - 5.5e-4).abs() < 1e-15);
        assert_eq!(tick_label(5e-4, tick_decimals(hi - lo)), "0.00050");
        assert_eq!(padded((0.0, 0.0)), (-0.5, 0.5));
    }
}
