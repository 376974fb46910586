//! `bench --plot out.png`: p50 latency against the head count, one line per engine and head
//! variant (the GAP baseline and the Max head, which have no head count to vary, are drawn as
//! points at H = 1 with their names).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use csra_image::font::{register_with_plotters, PLOT_FAMILY};
use image::ImageEncoder;
use plotters::prelude::*;

use super::Measurement;

/// The plot's size in pixels.
const SIZE: (u32, u32) = (900, 600);

/// Line colours, one per series in turn.
const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One series: `(heads, p50 ms)` points of one engine and variant, by head count.
type Series = BTreeMap<(String, String), Vec<(f64, f64)>>;

fn series(results: &[Measurement]) -> Series {
    let mut series = Series::new();
    for m in results {
        let points = series
            .entry((m.backend.clone(), m.variant.clone()))
            .or_default();
        points.push((m.heads as f64, m.latency.p50_ms));
    }
    for points in series.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    series
}

/// Draws the plot and writes it to `path` as a PNG.
pub fn write(path: &Path, results: &[Measurement]) -> anyhow::Result<()> {
    if results.is_empty() {
        bail!("--plot {}: no model was measured", path.display());
    }
    if !register_with_plotters() {
        bail!("--plot {}: the embedded font did not load", path.display());
    }
    let (width, height) = SIZE;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    draw(&mut pixels, &series(results))
        .map_err(|e| anyhow::anyhow!("--plot {}: drawing failed: {e}", path.display()))?;
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&pixels, width, height, image::ExtendedColorType::Rgb8)
        .with_context(|| format!("--plot {}: encoding the PNG", path.display()))?;
    csra_core::fsutil::write_atomic(path, &png)
        .with_context(|| format!("--plot {}: writing it; check the folder", path.display()))
}

/// What plotters' drawing calls on the RGB buffer return.
type DrawResult =
    Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

fn draw(pixels: &mut [u8], series: &Series) -> DrawResult {
    let root = BitMapBackend::with_buffer(pixels, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let points = series.values().flatten();
    let max_heads = points.clone().map(|p| p.0).fold(1.0, f64::max);
    let max_ms = points.map(|p| p.1).fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "csra-edge bench: p50 latency per head count",
            (PLOT_FAMILY, 24),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0.5..max_heads + 0.5, 0.0..max_ms * 1.15)?;
    chart
        .configure_mesh()
        .x_desc("heads H")
        .y_desc("p50 latency (ms)")
        .x_label_formatter(&|x| {
            let whole = (x - x.round()).abs() < 1e-9;
            if whole {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .label_style((PLOT_FAMILY, 14))
        .axis_desc_style((PLOT_FAMILY, 16))
        .draw()?;
    for (i, ((backend, variant), points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let label = format!("{variant}, {backend}");
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2))
            });
        chart.draw_series(
            points
                .iter()
                .map(|&(x, y)| Circle::new((x, y), 4, colour.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .label_font((PLOT_FAMILY, 14))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()
}
