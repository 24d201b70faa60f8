// SPDX-License-Identifier: GPL-2.0
//! Draws `make bench`'s figure from the `plot.json` that `tools/bench.py`
//! writes: one panel per release workload (host RSS change over time, one
//! line per configuration, a marker where the free began and where all of it
//! would be back) and a trade-off panel (seconds until 90% back against the
//! guest's churn throughput, one point per configuration).
//!
//! Usage: `bench-plot PLOT.json OUT.png`

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use serde::Deserialize;
use std::error::Error;

#[derive(Deserialize)]
struct Spec {
    title: String,
    panels: Vec<Panel>,
}

#[derive(Deserialize)]
struct Panel {
    title: String,
    xlabel: String,
    ylabel: String,
    #[serde(default)]
    series: Vec<Series>,
    #[serde(default)]
    points: Vec<Point>,
    vline: Option<VLine>,
    hline: Option<HLine>,
}

#[derive(Deserialize)]
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    #[serde(default)]
    thin: bool,
}

#[derive(Deserialize)]
struct Point {
    name: String,
    x: f64,
    y: f64,
    #[serde(default)]
    never: bool,
}

#[derive(Deserialize)]
struct VLine {
    x: f64,
    label: String,
}

#[derive(Deserialize)]
struct HLine {
    y: f64,
    label: String,
}

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// One colour per configuration name, the same in every panel.
fn colour(name: &str) -> RGBColor {
    match name {
        "none" => RGBColor(120, 120, 120),
        "linux" => RGBColor(214, 39, 40),
        "linux-o0" => RGBColor(255, 127, 14),
        "ph" => RGBColor(31, 119, 180),
        "ph-o0" => RGBColor(44, 160, 44),
        "ph-t256" => RGBColor(148, 103, 189),
        "ph-t65536" => RGBColor(140, 86, 75),
        "ph-f10" => RGBColor(227, 119, 194),
        "ph-f1000" => RGBColor(23, 190, 207),
        "ph-d1000" => RGBColor(188, 189, 34),
        "ph-d100" => RGBColor(0, 0, 128),
        _ => RGBColor(0, 0, 0),
    }
}

fn bounds(it: impl Iterator<Item = f64>) -> (f64, f64) {
    it.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// Widens a range by a margin so nothing sits on the frame.
fn pad((lo, hi): (f64, f64), frac: f64) -> (f64, f64) {
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let m = ((hi - lo) * frac).max(1e-9);
    (lo - m, hi + m)
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A panel's chart over `xr` x `yr`: caption, axes, their descriptions,
/// tick labels with `decimals` digits.
fn new_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    p: &Panel,
    xr: (f64, f64),
    yr: (f64, f64),
    decimals: usize,
) -> Result<Chart<'a, DB>, Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)?;
    let label = |v: &f64| format!("{v:.decimals$}");
    chart
        .configure_mesh()
        .x_desc(&p.xlabel)
        .y_desc(&p.ylabel)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .x_label_formatter(&label)
        .y_label_formatter(&label)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    Ok(chart)
}

/// A thin dashed black line from `a` to `b`, `alpha` opaque.
fn dashed<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    a: (f64, f64),
    b: (f64, f64),
    alpha: f64,
) -> Result<(), Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    let style = BLACK.mix(alpha).stroke_width(1);
    chart.draw_series(DashedLineSeries::new([a, b], 6, 4, style))?;
    Ok(())
}

/// `s` at `at`, in the panels' text size.
fn text<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    s: String,
    at: (f64, f64),
) -> Result<(), Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    chart.draw_series(std::iter::once(Text::new(s, at, ("sans-serif", 15))))?;
    Ok(())
}

fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
) -> Result<(), Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    let pts = || p.series.iter().flat_map(|s| s.points.iter());
    let xr = pad(bounds(pts().map(|q| q.0)), 0.02);
    let mut yr = bounds(pts().map(|q| q.1).chain(p.hline.iter().map(|h| h.y)));
    // Room above the lines for the legend.
    yr.1 = yr.1.max(0.0) + (yr.1.max(0.0) - yr.0) * 0.45;
    let yr = pad(yr, 0.04);
    let mut chart = new_chart(area, p, xr, yr, 0)?;
    if let Some(v) = &p.vline {
        dashed(&mut chart, (v.x, yr.0), (v.x, yr.1), 0.6)?;
        let at = (v.x + (xr.1 - xr.0) * 0.01, yr.1 - (yr.1 - yr.0) * 0.04);
        text(&mut chart, v.label.clone(), at)?;
    }
    if let Some(h) = &p.hline {
        dashed(&mut chart, (xr.0, h.y), (xr.1, h.y), 0.4)?;
        let at = (xr.0 + (xr.1 - xr.0) * 0.7, h.y - (yr.1 - yr.0) * 0.01);
        text(&mut chart, h.label.clone(), at)?;
    }
    for s in &p.series {
        let style = colour(&s.name).stroke_width(if s.thin { 1 } else { 3 });
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), style))?
            .label(s.name.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.5))
        .label_font(("sans-serif", 15))
        .draw()?;
    Ok(())
}

fn draw_points<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
) -> Result<(), Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    let (x0, x1) = pad(bounds(p.points.iter().map(|q| q.x).chain([0.0])), 0.08);
    // Room on the right for the labels.
    let xr = (x0, x1 + (x1 - x0) * 0.2);
    let yr = pad(bounds(p.points.iter().map(|q| q.y).chain([100.0])), 0.2);
    let mut chart = new_chart(area, p, xr, yr, 1)?;
    // 100% of no hinting: the line the targets are measured against.
    dashed(&mut chart, (xr.0, 100.0), (xr.1, 100.0), 0.4)?;
    for q in &p.points {
        let c = colour(&q.name);
        chart.draw_series(std::iter::once(Circle::new((q.x, q.y), 7, c.filled())))?;
        let label = if q.never {
            format!("{} (never)", q.name)
        } else {
            q.name.clone()
        };
        let at = (q.x + (xr.1 - xr.0) * 0.015, q.y + (yr.1 - yr.0) * 0.02);
        text(&mut chart, label, at)?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        return Err("usage: bench-plot PLOT.json OUT.png".into());
    }
    let spec: Spec = serde_json::from_str(&std::fs::read_to_string(&args[1])?)?;
    let font: &'static [u8] = std::fs::read(FONT)
        .map_err(|e| format!("{FONT}: {e} (Debian package fonts-dejavu-core)"))?
        .leak();
    register_font("sans-serif", FontStyle::Normal, font).map_err(|_| "bad font")?;

    // Panels without data (workloads left out of this run) are not drawn.
    let panels: Vec<&Panel> = spec
        .panels
        .iter()
        .filter(|p| !p.series.is_empty() || !p.points.is_empty())
        .collect();
    let n = panels.len().max(1);
    let cols = 2;
    let rows = n.div_ceil(cols);
    let root = BitMapBackend::new(&args[2], (1600, 60 + 520 * rows as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(60);
    top.titled(&spec.title, ("sans-serif", 26))?;
    for (area, p) in body.split_evenly((rows, cols)).iter().zip(panels) {
        if p.series.is_empty() {
            draw_points(area, p)?;
        } else {
            draw_lines(area, p)?;
        }
    }
    root.present()?;
    Ok(())
}
