//! Sweep plots: the data side (series from rows, the log-log slope fit, E11 handling of zeros
//! and NaN) shared with the GUI, and a small PNG line-plot renderer (`image` + the `font8x8`
//! bitmap font the heatmap PNGs use; no system fonts).
//!
//! E11: on a log axis an exact zero cannot be drawn; it is shown at a floor one decade below
//! the smallest positive value, with a hollow marker and the floor labelled `exact`, and the
//! axis bounds stay positive. A NaN (or infinite) value is left out: its neighbours stay
//! connected, so only that point is missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use font8x8::UnicodeFonts;
use image::{Rgba, RgbaImage};

use super::ExperimentError;
use super::sweep::SweepRow;
use crate::render::RenderError;

/// Scale of a plot axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AxisScale {
    /// Values as they are.
    Linear,
    /// log10 of the values; non-positive values need special handling (E11).
    Log,
}

/// A least-squares line through `(log10 x, log10 y)`: `y ≈ 10^intercept · x^slope`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlopeFit {
    /// Fitted exponent (2 for O(L²), 1 for O(L)).
    pub slope: f64,
    /// log10 of the prefactor.
    pub intercept: f64,
    /// Points used (finite and positive).
    pub points: usize,
    /// Coefficient of determination of the fit in log space (1 when every point is on it).
    pub r_squared: f64,
}

/// Fits `log10 y = slope · log10 x + intercept` by ordinary least squares over the pairs where
/// both values are finite and positive (NaN, infinite, zero and negative values are ignored).
///
/// Returns `None` with fewer than two usable points or when all usable x are equal.
///
/// ```
/// use attnscope::experiment::fit_loglog_slope;
/// let xs = [1024.0, 2048.0, 4096.0];
/// let ys = [1.0, 4.0, 16.0]; // y ∝ x²
/// let fit = fit_loglog_slope(&xs, &ys).unwrap();
/// assert!((fit.slope - 2.0).abs() < 1e-12);
/// ```
pub fn fit_loglog_slope(xs: &[f64], ys: &[f64]) -> Option<SlopeFit> {
    let pts: Vec<(f64, f64)> = xs
        .iter()
        .zip(ys)
        .filter(|(x, y)| x.is_finite() && y.is_finite() && **x > 0.0 && **y > 0.0)
        .map(|(x, y)| (x.log10(), y.log10()))
        .collect();
    let n = pts.len();
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / nf;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / nf;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = pts.iter().map(|p| (p.1 - my).powi(2)).sum();
    if sxx <= f64::EPSILON * nf {
        return None;
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let ss_res: f64 = pts
        .iter()
        .map(|p| (p.1 - (slope * p.0 + intercept)).powi(2))
        .sum();
    let r_squared = if syy > 0.0 { 1.0 - ss_res / syy } else { 1.0 };
    Some(SlopeFit {
        slope,
        intercept,
        points: n,
        r_squared,
    })
}

/// How a prepared point is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointKind {
    /// An ordinary value.
    Value,
    /// An exact zero on a log axis, drawn at the floor (hollow marker, labelled `exact`).
    ExactZero,
}

/// A point ready to draw (in data units; the floor substituted for exact zeros).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlotPoint {
    /// x in data units.
    pub x: f64,
    /// y in data units (the floor for [`PointKind::ExactZero`]).
    pub y: f64,
    /// Value or exact zero.
    pub kind: PointKind,
}

/// A series after E11 handling.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedSeries {
    /// Drawable points sorted by x; consecutive points are joined by the line.
    pub points: Vec<PlotPoint>,
    /// Points left out because x or y was NaN/infinite (or ≤ 0 on a log axis, y < 0).
    pub missing: usize,
    /// Points that are exact zeros drawn at the floor.
    pub exact_zeros: usize,
}

/// The floor for exact zeros on a log y axis: one decade below the smallest positive finite
/// value (rounded down to a power of 10), or 1e-8 when there is none, so bounds stay positive.
pub fn log_floor(values: impl IntoIterator<Item = f64>) -> f64 {
    let min_pos = values
        .into_iter()
        .filter(|y| y.is_finite() && *y > 0.0)
        .fold(f64::INFINITY, f64::min);
    if min_pos.is_finite() {
        10f64.powf(min_pos.log10().floor() - 1.0)
    } else {
        1e-8
    }
}

/// Applies E11 to one series: drops non-finite points (and values a log axis cannot show),
/// moves exact zeros on a log y axis to `y_floor` as [`PointKind::ExactZero`], sorts by x.
pub fn prepare_series(
    points: &[(f64, f64)],
    x_scale: AxisScale,
    y_scale: AxisScale,
    y_floor: f64,
) -> PreparedSeries {
    let mut out = Vec::with_capacity(points.len());
    let mut missing = 0;
    let mut exact_zeros = 0;
    for &(x, y) in points {
        let x_ok = x.is_finite() && (x_scale == AxisScale::Linear || x > 0.0);
        if !x_ok || !y.is_finite() {
            missing += 1;
            continue;
        }
        match y_scale {
            AxisScale::Log if y == 0.0 => {
                exact_zeros += 1;
                out.push(PlotPoint {
                    x,
                    y: y_floor,
                    kind: PointKind::ExactZero,
                });
            }
            AxisScale::Log if y < 0.0 => missing += 1,
            _ => out.push(PlotPoint {
                x,
                y,
                kind: PointKind::Value,
            }),
        }
    }
    out.sort_by(|a, b| a.x.total_cmp(&b.x));
    PreparedSeries {
        points: out,
        missing,
        exact_zeros,
    }
}

/// One named line of a plot, in data units (NaN allowed).
#[derive(Debug, Clone, PartialEq)]
pub struct PlotSeries {
    /// Legend text (for runtime plots it includes the fitted slope).
    pub label: String,
    /// `(x, y)` points.
    pub points: Vec<(f64, f64)>,
}

/// A whole plot: titles, axes and series.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotSpec {
    /// Title line.
    pub title: String,
    /// x axis label.
    pub x_label: String,
    /// y axis label.
    pub y_label: String,
    /// x axis scale.
    pub x_scale: AxisScale,
    /// y axis scale.
    pub y_scale: AxisScale,
    /// The lines.
    pub series: Vec<PlotSeries>,
}

/// The four sweep plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlotKind {
    /// Median runtime against L, log-log, with the fitted slope per series in the legend.
    RuntimeVsLen,
    /// Output relative error against L (log-log).
    ErrorVsLen,
    /// Output relative error against the rank-like parameter (log y).
    ErrorVsRank,
    /// Output relative error against bandwidth (log y).
    ErrorVsBandwidth,
}

/// x of a row in a plot (None = the row is not on this plot).
type XOf<'a> = Box<dyn Fn(&SweepRow) -> Option<f64> + 'a>;
/// Series key (legend text) of a row.
type KeyOf<'a> = Box<dyn Fn(&SweepRow) -> String + 'a>;
/// One series' values per x (keyed by the bits of x, which order like x for positive x).
type ByX = BTreeMap<u64, (f64, Vec<f64>)>;

/// Lengths below this are left out of the runtime slope when at least two longer points
/// exist (fixed overheads dominate short sequences).
pub const SLOPE_MIN_LEN: f64 = 1024.0;

impl PlotKind {
    /// Every plot, in display order.
    pub const ALL: [PlotKind; 4] = [
        PlotKind::RuntimeVsLen,
        PlotKind::ErrorVsLen,
        PlotKind::ErrorVsRank,
        PlotKind::ErrorVsBandwidth,
    ];

    /// File name of the PNG.
    pub fn file_name(self) -> &'static str {
        match self {
            PlotKind::RuntimeVsLen => "runtime_vs_len.png",
            PlotKind::ErrorVsLen => "error_vs_len.png",
            PlotKind::ErrorVsRank => "error_vs_rank.png",
            PlotKind::ErrorVsBandwidth => "error_vs_bandwidth.png",
        }
    }

    /// Short name for menus.
    pub fn name(self) -> &'static str {
        match self {
            PlotKind::RuntimeVsLen => "runtime vs L",
            PlotKind::ErrorVsLen => "error vs L",
            PlotKind::ErrorVsRank => "error vs rank",
            PlotKind::ErrorVsBandwidth => "error vs bandwidth",
        }
    }

    /// Builds the plot from sweep rows (skipped rows are ignored; several seeds at the same x
    /// are averaged, NaN-free values only). `None` when there is nothing to plot (e.g. error
    /// vs rank without a rank-like parameter swept over at least two values).
    pub fn build(self, rows: &[SweepRow]) -> Option<PlotSpec> {
        let ran: Vec<&SweepRow> = rows.iter().filter(|r| r.skipped.is_none()).collect();
        if ran.is_empty() {
            return None;
        }
        let distinct = |f: &dyn Fn(&SweepRow) -> Option<usize>, m: &str| {
            let mut v: Vec<usize> = ran
                .iter()
                .filter(|r| r.method == m)
                .filter_map(|r| f(r))
                .collect();
            v.sort_unstable();
            v.dedup();
            v.len()
        };
        let bw_varies = |m: &str| distinct(&|r| Some(r.bandwidth), m) > 1;
        let rank_varies = |m: &str| distinct(&|r| r.rank_value(), m) > 1;
        let len_label = |r: &SweepRow| format!(" L={}", r.seq_len);
        let (x_of, key_of, x_label, y_label, x_scale): (XOf<'_>, KeyOf<'_>, &str, &str, AxisScale) =
            match self {
                PlotKind::RuntimeVsLen | PlotKind::ErrorVsLen => (
                    Box::new(|r: &SweepRow| Some(r.seq_len as f64)),
                    Box::new(|r: &SweepRow| {
                        let mut k = r.method.clone();
                        if bw_varies(&r.method) {
                            k += &format!(" b={}", r.bandwidth);
                        }
                        if rank_varies(&r.method)
                            && let Some(v) = r.rank_value()
                        {
                            k += &format!(" {}={v}", r.rank_param);
                        }
                        k
                    }),
                    "sequence length L",
                    if self == PlotKind::RuntimeVsLen {
                        "median runtime [s]"
                    } else {
                        "output rel. error |O'-O|/|O|"
                    },
                    AxisScale::Log,
                ),
                PlotKind::ErrorVsRank => (
                    Box::new(|r: &SweepRow| r.rank_value().map(|v| v as f64)),
                    Box::new(move |r: &SweepRow| {
                        let mut k = format!("{}{}", r.method, len_label(r));
                        if bw_varies(&r.method) {
                            k += &format!(" b={}", r.bandwidth);
                        }
                        k
                    }),
                    "rank (rank-like parameter)",
                    "output rel. error |O'-O|/|O|",
                    AxisScale::Log,
                ),
                PlotKind::ErrorVsBandwidth => (
                    Box::new(|r: &SweepRow| {
                        super::sweep::uses_bandwidth_id(&r.method).then_some(r.bandwidth as f64)
                    }),
                    Box::new(move |r: &SweepRow| {
                        let mut k = format!("{}{}", r.method, len_label(r));
                        if rank_varies(&r.method)
                            && let Some(v) = r.rank_value()
                        {
                            k += &format!(" {}={v}", r.rank_param);
                        }
                        k
                    }),
                    "bandwidth b",
                    "output rel. error |O'-O|/|O|",
                    AxisScale::Linear,
                ),
            };
        let y_of = |r: &SweepRow| match self {
            PlotKind::RuntimeVsLen => r.runtime_median_s,
            _ => r.output_rel,
        };
        // Series in order of first appearance in the grid; per series x(bits) → values.
        let mut groups: Vec<(String, ByX)> = Vec::new();
        for r in &ran {
            let Some(x) = x_of(r) else { continue };
            let y = y_of(r).unwrap_or(f64::NAN);
            let key = key_of(r);
            let slot = match groups.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    groups.push((key, BTreeMap::new()));
                    groups.len() - 1
                }
            };
            groups[slot]
                .1
                .entry(x.to_bits())
                .or_insert_with(|| (x, Vec::new()))
                .1
                .push(y);
        }
        let mut series = Vec::new();
        for (key, by_x) in groups {
            let points: Vec<(f64, f64)> = by_x
                .values()
                .map(|(x, ys)| {
                    let finite: Vec<f64> = ys.iter().copied().filter(|y| y.is_finite()).collect();
                    let y = if finite.is_empty() {
                        f64::NAN
                    } else {
                        finite.iter().sum::<f64>() / finite.len() as f64
                    };
                    (*x, y)
                })
                .collect();
            if matches!(self, PlotKind::ErrorVsRank | PlotKind::ErrorVsBandwidth)
                && points.len() < 2
            {
                continue;
            }
            let label = if self == PlotKind::RuntimeVsLen {
                slope_label(&key, &points)
            } else {
                key
            };
            series.push(PlotSeries { label, points });
        }
        if series.is_empty() {
            return None;
        }
        let first = ran.first().map(|r| r.data.clone()).unwrap_or_default();
        let source = first.split(" L=").next().unwrap_or_default().to_string();
        Some(PlotSpec {
            title: format!("{} - {source}", self.name()),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_scale,
            y_scale: AxisScale::Log,
            series,
        })
    }
}

/// `"fmm: slope 1.02 (L 1024-16384)"`: the log-log slope over points with L ≥
/// [`SLOPE_MIN_LEN`] when at least two exist, else over all points.
pub fn slope_label(key: &str, points: &[(f64, f64)]) -> String {
    let usable = |p: &&(f64, f64)| p.1.is_finite() && p.1 > 0.0;
    let long: Vec<(f64, f64)> = points
        .iter()
        .filter(usable)
        .filter(|p| p.0 >= SLOPE_MIN_LEN)
        .copied()
        .collect();
    let chosen: Vec<(f64, f64)> = if long.len() >= 2 {
        long
    } else {
        points.iter().filter(usable).copied().collect()
    };
    let xs: Vec<f64> = chosen.iter().map(|p| p.0).collect();
    let ys: Vec<f64> = chosen.iter().map(|p| p.1).collect();
    match fit_loglog_slope(&xs, &ys) {
        Some(fit) => {
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{key}: slope {:.2} (L {lo}-{hi})", fit.slope)
        }
        None => format!("{key}: slope n/a"),
    }
}

// ---------------------------------------------------------------------------------------------
// PNG rendering

/// Default plot size in pixels.
pub const PLOT_SIZE: (u32, u32) = (1000, 640);

const WHITE: Rgba<u8> = Rgba([255, 255, 255, 255]);
const INK: Rgba<u8> = Rgba([25, 25, 25, 255]);
const GRID: Rgba<u8> = Rgba([225, 225, 225, 255]);
const FLOOR_INK: Rgba<u8> = Rgba([150, 150, 150, 255]);

/// Colour of series `i` (Tableau 10, colour-blind friendly ordering).
pub fn series_color(i: usize) -> [u8; 3] {
    let c = colorous::TABLEAU10[i % colorous::TABLEAU10.len()];
    [c.r, c.g, c.b]
}

fn glyph(c: char) -> [u8; 8] {
    font8x8::BASIC_FONTS
        .get(c)
        .or_else(|| font8x8::LATIN_FONTS.get(c))
        .or_else(|| font8x8::GREEK_FONTS.get(c))
        .or_else(|| font8x8::BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

fn text_width(s: &str, size: u32) -> i64 {
    i64::from(8 * size) * s.chars().count() as i64
}

fn put(img: &mut RgbaImage, x: i64, y: i64, c: Rgba<u8>) {
    if x >= 0 && y >= 0 && x < i64::from(img.width()) && y < i64::from(img.height()) {
        img.put_pixel(x as u32, y as u32, c);
    }
}

fn draw_text(img: &mut RgbaImage, x: i64, y: i64, s: &str, size: u32, c: Rgba<u8>) {
    let size = i64::from(size.max(1));
    for (n, ch) in s.chars().enumerate() {
        let g = glyph(ch);
        for (row, bits) in g.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    for dy in 0..size {
                        for dx in 0..size {
                            put(
                                img,
                                x + (8 * n as i64 + col) * size + dx,
                                y + row as i64 * size + dy,
                                c,
                            );
                        }
                    }
                }
            }
        }
    }
}

struct Frame {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    x_scale: AxisScale,
    y_scale: AxisScale,
}

fn tf(v: f64, s: AxisScale) -> f64 {
    match s {
        AxisScale::Linear => v,
        AxisScale::Log => v.log10(),
    }
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        self.left + (tf(x, self.x_scale) - self.x0) / (self.x1 - self.x0) * (self.right - self.left)
    }
    fn py(&self, y: f64) -> f64 {
        self.bottom
            - (tf(y, self.y_scale) - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)
    }
    fn inside(&self, x: f64, y: f64) -> bool {
        x >= self.left - 0.5
            && x <= self.right + 0.5
            && y >= self.top - 0.5
            && y <= self.bottom + 0.5
    }
}

fn stamp(img: &mut RgbaImage, f: &Frame, x: f64, y: f64, r: f64, c: Rgba<u8>) {
    let ri = r.ceil() as i64;
    for dy in -ri..=ri {
        for dx in -ri..=ri {
            let (px, py) = (x + dx as f64, y + dy as f64);
            if (dx * dx + dy * dy) as f64 <= r * r && f.inside(px, py) {
                put(img, px.round() as i64, py.round() as i64, c);
            }
        }
    }
}

fn line(
    img: &mut RgbaImage,
    f: &Frame,
    a: (f64, f64),
    b: (f64, f64),
    r: f64,
    c: Rgba<u8>,
    dash: bool,
) {
    let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
    let steps = (len * 2.0).ceil().max(1.0) as usize;
    for s in 0..=steps {
        if dash && (s / 12) % 2 == 1 {
            continue;
        }
        let t = s as f64 / steps as f64;
        stamp(img, f, a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1), r, c);
    }
}

fn hollow(img: &mut RgbaImage, f: &Frame, x: f64, y: f64, c: Rgba<u8>) {
    let r = 5.0;
    let ri = 6_i64;
    for dy in -ri..=ri {
        for dx in -ri..=ri {
            let d = ((dx * dx + dy * dy) as f64).sqrt();
            let (px, py) = (x + dx as f64, y + dy as f64);
            if f.inside(px, py) {
                if (d - r).abs() <= 0.9 {
                    put(img, px.round() as i64, py.round() as i64, c);
                } else if d < r - 0.9 {
                    put(img, px.round() as i64, py.round() as i64, WHITE);
                }
            }
        }
    }
}

/// Compact tick text: integers as integers, else 3 significant digits or `1e-3`.
pub fn format_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if (v.fract() == 0.0) && a < 1e6 {
        format!("{v:.0}")
    } else if (1e-2..1e4).contains(&a) {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        let e = a.log10().floor();
        let m = v / 10f64.powf(e);
        if (m.abs() - 1.0).abs() < 1e-9 {
            format!("{}1e{e:.0}", if v < 0.0 { "-" } else { "" })
        } else {
            format!("{m:.1}e{e:.0}")
        }
    }
}

fn nice_linear_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).abs().max(1e-300);
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 8.0)
        .unwrap_or(10.0 * mag);
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + 1e-9 * step && out.len() < 50 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

/// Tick positions in transformed units (log10 for log axes) and their labels.
fn ticks(lo: f64, hi: f64, scale: AxisScale, data_xs: &[f64]) -> Vec<(f64, String)> {
    match scale {
        AxisScale::Linear => nice_linear_ticks(lo, hi)
            .into_iter()
            .map(|t| (t, format_tick(t)))
            .collect(),
        AxisScale::Log => {
            if !data_xs.is_empty() && data_xs.len() <= 10 {
                return data_xs
                    .iter()
                    .map(|&x| (x.log10(), format_tick(x)))
                    .collect();
            }
            let (a, b) = (lo.floor() as i64, hi.ceil() as i64);
            let mut out = Vec::new();
            for e in a..=b {
                for m in [1.0, 2.0, 5.0] {
                    let t = (m * 10f64.powi(e as i32)).log10();
                    if t >= lo && t <= hi && (m == 1.0 || b - a <= 2) {
                        out.push((t, format_tick(10f64.powf(t))));
                    }
                }
            }
            out
        }
    }
}

/// Draws `spec` into an RGBA image of `width × height` pixels: axes with ticks and grid,
/// one coloured line with markers per series (E11: NaN points missing, the line joining its
/// neighbours; exact zeros as hollow markers on a dashed floor line labelled `exact`), and a
/// legend on the right (with counts of missing points).
pub fn render_plot(spec: &PlotSpec, width: u32, height: u32) -> RgbaImage {
    let mut img = RgbaImage::from_pixel(width.max(200), height.max(150), WHITE);
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    let all_y = spec
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1));
    let floor = log_floor(all_y);
    let prepared: Vec<PreparedSeries> = spec
        .series
        .iter()
        .map(|s| prepare_series(&s.points, spec.x_scale, spec.y_scale, floor))
        .collect();
    let legend_w = spec
        .series
        .iter()
        .map(|s| text_width(&s.label, 1))
        .max()
        .unwrap_or(0)
        .clamp(140, 420) as f64
        + 40.0;
    let mut frame = Frame {
        left: 84.0,
        right: (w - legend_w - 20.0).max(140.0),
        top: 48.0,
        bottom: h - 56.0,
        x0: 0.0,
        x1: 1.0,
        y0: 0.0,
        y1: 1.0,
        x_scale: spec.x_scale,
        y_scale: spec.y_scale,
    };
    let pts = prepared.iter().flat_map(|p| p.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for p in pts {
        let (tx, ty) = (tf(p.x, spec.x_scale), tf(p.y, spec.y_scale));
        x0 = x0.min(tx);
        x1 = x1.max(tx);
        y0 = y0.min(ty);
        y1 = y1.max(ty);
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = |lo: f64, hi: f64| {
        if hi - lo < 1e-12 {
            (lo - 0.5, hi + 0.5)
        } else {
            let p = 0.06 * (hi - lo);
            (lo - p, hi + p)
        }
    };
    (frame.x0, frame.x1) = pad(x0, x1);
    (frame.y0, frame.y1) = pad(y0, y1);

    // Grid and ticks.
    let mut distinct_x: Vec<f64> = prepared
        .iter()
        .flat_map(|p| p.points.iter().map(|q| q.x))
        .collect();
    distinct_x.sort_by(f64::total_cmp);
    distinct_x.dedup();
    for (t, label) in ticks(frame.x0, frame.x1, spec.x_scale, &distinct_x) {
        let x = frame.left + (t - frame.x0) / (frame.x1 - frame.x0) * (frame.right - frame.left);
        line(
            &mut img,
            &frame,
            (x, frame.top),
            (x, frame.bottom),
            0.0,
            GRID,
            false,
        );
        draw_text(
            &mut img,
            x as i64 - text_width(&label, 1) / 2,
            frame.bottom as i64 + 8,
            &label,
            1,
            INK,
        );
    }
    let any_exact = prepared.iter().any(|p| p.exact_zeros > 0);
    for (t, label) in ticks(frame.y0, frame.y1, spec.y_scale, &[]) {
        let y = frame.bottom - (t - frame.y0) / (frame.y1 - frame.y0) * (frame.bottom - frame.top);
        if any_exact && (y - frame.py(floor)).abs() < 10.0 {
            continue;
        }
        line(
            &mut img,
            &frame,
            (frame.left, y),
            (frame.right, y),
            0.0,
            GRID,
            false,
        );
        draw_text(
            &mut img,
            frame.left as i64 - 6 - text_width(&label, 1),
            y as i64 - 4,
            &label,
            1,
            INK,
        );
    }
    if any_exact {
        let y = frame.py(floor);
        line(
            &mut img,
            &frame,
            (frame.left, y),
            (frame.right, y),
            0.0,
            FLOOR_INK,
            true,
        );
        draw_text(
            &mut img,
            frame.left as i64 - 6 - text_width("exact", 1),
            y as i64 - 4,
            "exact",
            1,
            INK,
        );
        draw_text(
            &mut img,
            frame.left as i64 + 6,
            y as i64 - 12,
            "exact (error = 0)",
            1,
            FLOOR_INK,
        );
    }
    // Axes box.
    for (a, b) in [
        ((frame.left, frame.top), (frame.left, frame.bottom)),
        ((frame.left, frame.bottom), (frame.right, frame.bottom)),
        ((frame.right, frame.top), (frame.right, frame.bottom)),
        ((frame.left, frame.top), (frame.right, frame.top)),
    ] {
        line(&mut img, &frame, a, b, 0.0, INK, false);
    }
    // Series.
    for (i, p) in prepared.iter().enumerate() {
        let [r, g, b] = series_color(i);
        let c = Rgba([r, g, b, 255]);
        let screen: Vec<(f64, f64, PointKind)> = p
            .points
            .iter()
            .map(|q| (frame.px(q.x), frame.py(q.y), q.kind))
            .collect();
        for pair in screen.windows(2) {
            line(
                &mut img,
                &frame,
                (pair[0].0, pair[0].1),
                (pair[1].0, pair[1].1),
                1.0,
                c,
                false,
            );
        }
        for &(x, y, kind) in &screen {
            match kind {
                PointKind::Value => stamp(&mut img, &frame, x, y, 3.5, c),
                PointKind::ExactZero => hollow(&mut img, &frame, x, y, c),
            }
        }
    }
    // Titles.
    draw_text(&mut img, frame.left as i64, 12, &spec.title, 2, INK);
    draw_text(
        &mut img,
        frame.left as i64,
        frame.top as i64 - 14,
        &spec.y_label,
        1,
        INK,
    );
    let xl = &spec.x_label;
    draw_text(
        &mut img,
        ((frame.left + frame.right) / 2.0) as i64 - text_width(xl, 1) / 2,
        frame.bottom as i64 + 28,
        xl,
        1,
        INK,
    );
    // Legend.
    let lx = frame.right as i64 + 20;
    let mut ly = frame.top as i64;
    for (i, (s, p)) in spec.series.iter().zip(&prepared).enumerate() {
        let [r, g, b] = series_color(i);
        let c = Rgba([r, g, b, 255]);
        for dy in 0..8 {
            for dx in 0..18 {
                put(&mut img, lx + dx, ly + dy, c);
            }
        }
        draw_text(&mut img, lx + 24, ly, &s.label, 1, INK);
        ly += 14;
        if p.missing > 0 {
            let note = format!("{} point(s) missing (NaN)", p.missing);
            draw_text(&mut img, lx + 24, ly, &note, 1, FLOOR_INK);
            ly += 14;
        }
    }
    if any_exact {
        ly += 6;
        draw_text(&mut img, lx, ly, "hollow = exactly 0,", 1, FLOOR_INK);
        draw_text(&mut img, lx, ly + 12, "drawn at the floor", 1, FLOOR_INK);
    }
    img
}

/// Writes every plot that has data ([`PlotKind::build`]) into `dir` as PNG, returning the
/// paths written.
///
/// # Errors
/// [`ExperimentError::Io`] when `dir` cannot be created; [`ExperimentError::Render`] when a
/// PNG cannot be written.
pub fn write_plots(rows: &[SweepRow], dir: &Path) -> Result<Vec<PathBuf>, ExperimentError> {
    std::fs::create_dir_all(dir).map_err(|source| ExperimentError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for kind in PlotKind::ALL {
        let Some(spec) = kind.build(rows) else {
            continue;
        };
        let path = dir.join(kind.file_name());
        write_plot_png(&spec, &path)?;
        written.push(path);
    }
    Ok(written)
}

/// Renders `spec` at [`PLOT_SIZE`] and saves it as PNG.
///
/// # Errors
/// [`ExperimentError::Render`] naming the path.
pub fn write_plot_png(spec: &PlotSpec, path: &Path) -> Result<(), ExperimentError> {
    let img = render_plot(spec, PLOT_SIZE.0, PLOT_SIZE.1);
    img.save(path).map_err(|source| {
        ExperimentError::Render(RenderError::Write {
            path: path.to_path_buf(),
            source,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_of_exact_power_laws() {
        let xs: Vec<f64> = (0..6).map(|i| 1024.0 * 2f64.powi(i)).collect();
        for expo in [1.0, 1.5, 2.0] {
            let ys: Vec<f64> = xs.iter().map(|x| 3e-9 * x.powf(expo)).collect();
            let fit = fit_loglog_slope(&xs, &ys).expect("six points");
            assert!((fit.slope - expo).abs() < 1e-10, "{expo}: {}", fit.slope);
            assert!((fit.intercept - 3e-9f64.log10()).abs() < 1e-9);
            assert!((fit.r_squared - 1.0).abs() < 1e-12);
            assert_eq!(fit.points, 6);
        }
    }

    #[test]
    fn e11c_slope_ignores_nan_zero_and_negative_points() {
        let xs = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let ys = [1.0, 2.0, f64::NAN, 4.0, 0.0, -1.0];
        let fit = fit_loglog_slope(&xs, &ys).expect("three usable points");
        assert_eq!(fit.points, 3);
        assert!((fit.slope - 1.0).abs() < 1e-12);
        assert!(fit_loglog_slope(&[1.0, 2.0], &[f64::NAN, 0.0]).is_none());
        assert!(fit_loglog_slope(&[2.0, 2.0], &[1.0, 3.0]).is_none());
        assert!(fit_loglog_slope(&[], &[]).is_none());
    }

    #[test]
    fn e11c_runtime_nan_point_only_that_point_missing() {
        let pts = [(1.0, 1.0), (2.0, 2.0), (3.0, f64::NAN), (4.0, 4.0)];
        let p = prepare_series(&pts, AxisScale::Log, AxisScale::Log, 0.1);
        assert_eq!(p.missing, 1);
        let xs: Vec<f64> = p.points.iter().map(|q| q.x).collect();
        assert_eq!(xs, vec![1.0, 2.0, 4.0]);
        assert!(p.points.iter().all(|q| q.kind == PointKind::Value));
    }

    #[test]
    fn e11b_exact_zeros_sit_at_a_positive_floor() {
        let ys = [0.0, 0.0, 0.0];
        let floor = log_floor(ys);
        assert!(floor > 0.0 && floor.is_finite());
        let pts = [(1.0, 0.0), (2.0, 0.0), (3.0, 0.0)];
        let p = prepare_series(&pts, AxisScale::Log, AxisScale::Log, floor);
        assert_eq!(p.exact_zeros, 3);
        assert_eq!(p.missing, 0);
        assert!(
            p.points
                .iter()
                .all(|q| q.y == floor && q.kind == PointKind::ExactZero)
        );
        // With positive values the floor is a decade below the smallest.
        assert_eq!(log_floor([0.0, 3e-4, 0.2]), 1e-5);
    }

    #[test]
    fn e11b_render_marks_floor_and_keeps_other_series() {
        let spec = PlotSpec {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            x_scale: AxisScale::Log,
            y_scale: AxisScale::Log,
            series: vec![
                PlotSeries {
                    label: "zero".into(),
                    points: vec![(256.0, 0.0), (512.0, 0.0)],
                },
                PlotSeries {
                    label: "nan".into(),
                    points: vec![(256.0, 1.0), (512.0, f64::NAN), (1024.0, 4.0)],
                },
            ],
        };
        let img = render_plot(&spec, 600, 400);
        assert_eq!(img.dimensions(), (600, 400));
        let [r, g, b] = series_color(1);
        let coloured = img.pixels().filter(|p| p.0 == [r, g, b, 255]).count();
        assert!(coloured > 200, "second series drawn ({coloured} px)");
        let [r0, g0, b0] = series_color(0);
        assert!(
            img.pixels().any(|p| p.0 == [r0, g0, b0, 255]),
            "zero series drawn"
        );
    }

    #[test]
    fn ticks_format_compactly() {
        assert_eq!(format_tick(1024.0), "1024");
        assert_eq!(format_tick(0.25), "0.25");
        assert_eq!(format_tick(1e-5), "1e-5");
        assert_eq!(format_tick(2.5e-5), "2.5e-5");
    }
}
