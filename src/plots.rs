//! Plots (SVG and PNG, with plotters) of what the demo and the benchmarks
//! measured. Text is drawn with ab_glyph from the DejaVu Sans font embedded
//! in the binary (crate `dejavu`), so plotting needs no system font library
//! and looks the same on every machine.

use crate::demo::Figures;
use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};
use std::sync::Once;

const SIZE: (u32, u32) = (900, 500);

/// A grouped bar chart: one group per x label, one bar per series in each.
pub struct Bars {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub groups: Vec<String>,
    /// (series name, one value per group)
    pub series: Vec<(String, Vec<f64>)>,
    /// Fixed top of the y axis (e.g. 1.0 for rates); default: from the data.
    pub y_max: Option<f64>,
}

fn register_font() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut r = Ok(());
    ONCE.call_once(|| {
        r = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
            .map_err(|_| anyhow!("the embedded DejaVu Sans font does not load"));
    });
    r
}

fn e<E: std::fmt::Debug>(err: E) -> anyhow::Error {
    anyhow!("drawing the plot: {err:?}")
}

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, b: &Bars) -> Result<()> {
    root.fill(&WHITE).map_err(e)?;
    let n = b.groups.len().max(1);
    let top = b.y_max.unwrap_or_else(|| {
        let m = b.series.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0, f64::max);
        if m > 0.0 {
            m * 1.2
        } else {
            1.0
        }
    });
    let mut chart = ChartBuilder::on(&root)
        .caption(&b.title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..n as f64, 0f64..top)
        .map_err(e)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .x_desc(b.x_desc.as_str())
        .y_desc(b.y_desc.as_str())
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    let k = b.series.len().max(1) as f64;
    let width = 0.8 / k;
    for (si, (name, values)) in b.series.iter().enumerate() {
        let color = Palette99::pick(si).to_rgba();
        chart
            .draw_series(values.iter().enumerate().map(|(g, &v)| {
                let x0 = g as f64 + 0.1 + si as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width * 0.92, v)], color.filled())
            }))
            .map_err(e)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    // Group labels under the axis, centred on each group.
    let style = TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (g, label) in b.groups.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(g as f64 + 0.5, 0.0));
        root.draw(&Text::new(label.as_str(), (px, py + 6), style.clone())).map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
}

/// Writes `dir/stem.svg` and `dir/stem.png`; returns both paths.
pub fn bars(dir: &Path, stem: &str, b: &Bars) -> Result<Vec<PathBuf>> {
    register_font()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let svg = dir.join(format!("{stem}.svg"));
    let png = dir.join(format!("{stem}.png"));
    draw(SVGBackend::new(&svg, SIZE).into_drawing_area(), b).with_context(|| svg.display().to_string())?;
    draw(BitMapBackend::new(&png, SIZE).into_drawing_area(), b).with_context(|| png.display().to_string())?;
    Ok(vec![svg, png])
}

fn paths(n: usize) -> Vec<String> {
    (0..n).map(|p| format!("path {p}")).collect()
}

/// The demo's plots: per-path load of one flow per policy (through the card
/// and the fabric model), and the tagged cache's hit rate and occupancy per
/// tenant, shared and partitioned.
pub fn demo_plots(dir: &Path, f: &Figures) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    if !f.path_load.is_empty() {
        let n = f.path_load[0].1.len();
        out.extend(bars(
            dir,
            "demo_path_load",
            &Bars {
                title: "One flow per tenant through the card: packets per fabric path".into(),
                x_desc: "ECMP path".into(),
                y_desc: "packets".into(),
                groups: paths(n),
                series: f.path_load.iter().map(|(p, l)| (p.clone(), l.iter().map(|&v| v as f64).collect())).collect(),
                y_max: None,
            },
        )?);
    }
    if !f.cache.is_empty() {
        let groups: Vec<String> = f.cache.iter().map(|(m, _)| m.clone()).collect();
        let series = |i: usize, name: &str| (name.to_string(), f.cache.iter().map(|(_, t)| t[i].0).collect::<Vec<f64>>());
        out.extend(bars(
            dir,
            "demo_cache_hit_rate",
            &Bars {
                title: "Tagged cache: hit rate per tenant (1 reuses, 2 scans)".into(),
                x_desc: "way allocation".into(),
                y_desc: "hit rate".into(),
                groups: groups.clone(),
                series: vec![series(0, "tenant 1"), series(1, "tenant 2")],
                y_max: Some(1.0),
            },
        )?);
        let occ = |i: usize, name: &str| (name.to_string(), f.cache.iter().map(|(_, t)| t[i].1 as f64).collect::<Vec<f64>>());
        out.extend(bars(
            dir,
            "demo_cache_occupancy",
            &Bars {
                title: "Tagged cache: lines held per tenant".into(),
                x_desc: "way allocation".into(),
                y_desc: "lines".into(),
                groups,
                series: vec![occ(0, "tenant 1"), occ(1, "tenant 2")],
                y_max: None,
            },
        )?);
    }
    Ok(out)
}
