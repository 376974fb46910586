//! The plots, as PNGs: training progress (train loss and val mAP per epoch), and mAP against a
//! swept setting (λ, the number of heads) for `csra-host paper-tables`.

use std::path::{Path, PathBuf};

use image::ImageEncoder;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use thiserror::Error;

use csra_image::font::{register_with_plotters, PLOT_FAMILY as FAMILY};

/// Size of the rendered plot in pixels (width, height).
pub const PLOT_SIZE: (u32, u32) = (900, 720);

/// Colour of the train-loss curve.
const LOSS_COLOUR: RGBColor = RGBColor(31, 119, 180);
/// Colour of the val-mAP curve.
const MAP_COLOUR: RGBColor = RGBColor(214, 39, 40);

/// One epoch's record for the plot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochPoint {
    /// Epoch number (as logged; the plot only needs them strictly increasing).
    pub epoch: usize,
    /// Mean training loss over the epoch.
    pub train_loss: f64,
    /// Validation mAP as a fraction in [0, 1] (plotted as %), or `None` if not evaluated.
    pub val_map: Option<f64>,
}

/// An error drawing or writing the training plot.
#[derive(Debug, Error)]
pub enum PlotError {
    /// There is no epoch to plot.
    #[error("{}: no epochs to plot; the plot is written after at least one finished epoch", path.display())]
    Empty {
        /// The plot file.
        path: PathBuf,
    },
    /// A loss or mAP is NaN or infinite.
    #[error("{}: epoch {epoch} has a non-finite {quantity} ({value}); check the training log for divergence", path.display())]
    NonFinite {
        /// The plot file.
        path: PathBuf,
        /// The epoch holding the value.
        epoch: usize,
        /// Which value ("train loss" or "val mAP").
        quantity: &'static str,
        /// The offending value.
        value: f64,
    },
    /// A val mAP lies outside [0, 1].
    #[error("{}: epoch {epoch} has val mAP {value}, outside [0, 1]; pass mAP as a fraction, not a percentage", path.display())]
    MapOutOfRange {
        /// The plot file.
        path: PathBuf,
        /// The epoch holding the value.
        epoch: usize,
        /// The offending value.
        value: f64,
    },
    /// Epoch numbers do not strictly increase.
    #[error("{}: epoch {epoch} follows epoch {previous}; pass one point per epoch in increasing order", path.display())]
    EpochOrder {
        /// The plot file.
        path: PathBuf,
        /// The earlier epoch number.
        previous: usize,
        /// The epoch number that does not exceed it.
        epoch: usize,
    },
    /// The embedded font could not be registered with plotters.
    #[error("{}: the embedded DejaVu font could not be loaded; rebuild csra-host", path.display())]
    Font {
        /// The plot file.
        path: PathBuf,
    },
    /// plotters failed to draw.
    #[error("{}: drawing the plot failed: {message}", path.display())]
    Draw {
        /// The plot file.
        path: PathBuf,
        /// plotters' description of the failure.
        message: String,
    },
    /// The PNG could not be encoded.
    #[error("{}: encoding the PNG failed: {source}", path.display())]
    Encode {
        /// The plot file.
        path: PathBuf,
        /// The encoder's error.
        source: image::ImageError,
    },
    /// The PNG could not be written.
    #[error("{}: cannot write the plot: {source}; check that the directory exists and is writable", path.display())]
    Io {
        /// The plot file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
}

/// Draws train loss (top panel) and val mAP in % (bottom panel) per epoch and writes the PNG
/// atomically to `path`.
pub fn write_training_plot(
    path: &Path,
    points: &[EpochPoint],
    title: &str,
) -> Result<(), PlotError> {
    let pixels = render_pixels(path, points, title)?;
    write_png(path, &pixels)
}

/// Encodes RGB pixels of [`PLOT_SIZE`] and writes the PNG atomically to `path`.
fn write_png(path: &Path, pixels: &[u8]) -> Result<(), PlotError> {
    let (width, height) = PLOT_SIZE;
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(pixels, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|source| PlotError::Encode {
            path: path.into(),
            source,
        })?;
    csra_core::fsutil::write_atomic(path, &png).map_err(|source| PlotError::Io {
        path: path.into(),
        source,
    })
}

/// Validates the points and renders the plot as RGB pixels of [`PLOT_SIZE`].
fn render_pixels(path: &Path, points: &[EpochPoint], title: &str) -> Result<Vec<u8>, PlotError> {
    validate(path, points)?;
    if !register_with_plotters() {
        return Err(PlotError::Font { path: path.into() });
    }
    let (width, height) = PLOT_SIZE;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    render(&mut pixels, points, title).map_err(|e| PlotError::Draw {
        path: path.into(),
        message: e.to_string(),
    })?;
    Ok(pixels)
}

/// Checks that there is something to plot and that every value can be drawn.
fn validate(path: &Path, points: &[EpochPoint]) -> Result<(), PlotError> {
    if points.is_empty() {
        return Err(PlotError::Empty { path: path.into() });
    }
    for pair in points.windows(2) {
        if pair[1].epoch <= pair[0].epoch {
            return Err(PlotError::EpochOrder {
                path: path.into(),
                previous: pair[0].epoch,
                epoch: pair[1].epoch,
            });
        }
    }
    for point in points {
        let non_finite = |quantity, value| PlotError::NonFinite {
            path: path.into(),
            epoch: point.epoch,
            quantity,
            value,
        };
        if !point.train_loss.is_finite() {
            return Err(non_finite("train loss", point.train_loss));
        }
        if let Some(map) = point.val_map {
            if !map.is_finite() {
                return Err(non_finite("val mAP", map));
            }
            if !(0.0..=1.0).contains(&map) {
                return Err(PlotError::MapOutOfRange {
                    path: path.into(),
                    epoch: point.epoch,
                    value: map,
                });
            }
        }
    }
    Ok(())
}

/// What plotters' drawing calls on the RGB buffer return.
type DrawResult =
    Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

/// Draws title and both panels into `pixels` (RGB, [`PLOT_SIZE`]).
fn render(pixels: &mut [u8], points: &[EpochPoint], title: &str) -> DrawResult {
    let root = BitMapBackend::with_buffer(pixels, PLOT_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let body = root.titled(title, (FAMILY, 26))?;
    let (top, bottom) = body.split_vertically(body.dim_in_pixel().1 / 2);
    let epochs = epoch_range(points);
    draw_loss(&top, points, epochs.clone())?;
    draw_map(&bottom, points, epochs)?;
    root.present()
}

/// The x range: the epochs plus half an epoch either side, so end markers are not cut off.
fn epoch_range(points: &[EpochPoint]) -> std::ops::Range<f64> {
    let first = points.first().map_or(0, |p| p.epoch) as f64;
    let last = points.last().map_or(0, |p| p.epoch) as f64;
    first - 0.5..last + 0.5
}

/// Loss y range: the data with 10 % headroom, widened when the loss is flat.
fn loss_range(points: &[EpochPoint]) -> std::ops::Range<f64> {
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.train_loss), hi.max(p.train_loss))
        });
    let pad = if hi > lo {
        0.1 * (hi - lo)
    } else {
        0.1 * hi.abs().max(1e-3)
    };
    lo - pad..hi + pad
}

/// Epoch tick labels: integers only, since fractional epochs are meaningless here.
fn epoch_label(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        String::new()
    }
}

/// The top panel: train loss per epoch, with the last value in the legend.
fn draw_loss(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    points: &[EpochPoint],
    epochs: std::ops::Range<f64>,
) -> DrawResult {
    let series: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.epoch as f64, p.train_loss))
        .collect();
    let mut chart = ChartBuilder::on(area)
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(epochs, loss_range(points))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("train loss (BCE)")
        .x_label_formatter(&epoch_label)
        .y_label_formatter(&|v| format!("{v:.3}"))
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .draw()?;
    let last = points.last().map_or(0.0, |p| p.train_loss);
    draw_curve(
        &mut chart,
        &series,
        LOSS_COLOUR,
        format!("train loss (last {last:.4})"),
        SeriesLabelPosition::UpperRight,
    )
}

/// The bottom panel: val mAP in % for the epochs that were evaluated, with the best in the legend.
fn draw_map(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    points: &[EpochPoint],
    epochs: std::ops::Range<f64>,
) -> DrawResult {
    let series: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| p.val_map.map(|m| (p.epoch as f64, 100.0 * m)))
        .collect();
    let best = series
        .iter()
        .copied()
        .fold(None, |best: Option<(f64, f64)>, p| match best {
            Some(b) if b.1 >= p.1 => Some(b),
            _ => Some(p),
        });
    // Start at 0 so mAP levels compare across runs; leave headroom above the best value.
    let top = best.map_or(100.0, |(_, m)| (m * 1.15).clamp(5.0, 100.0));
    let middle_epoch = (epochs.start + epochs.end) / 2.0;
    let mut chart = ChartBuilder::on(area)
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(epochs, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("val mAP (%)")
        .x_label_formatter(&epoch_label)
        .y_label_formatter(&|v| format!("{v:.1}"))
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .draw()?;
    let Some((best_epoch, best_map)) = best else {
        let style =
            TextStyle::from((FAMILY, 18).into_font()).pos(Pos::new(HPos::Center, VPos::Center));
        return chart.plotting_area().draw(&Text::new(
            "no validation mAP recorded",
            (middle_epoch, top / 2.0),
            style,
        ));
    };
    draw_curve(
        &mut chart,
        &series,
        MAP_COLOUR,
        format!("val mAP (best {best_map:.1} % at epoch {best_epoch:.0})"),
        SeriesLabelPosition::LowerRight,
    )
}

/// One line with a marker per epoch, and its legend box at `legend`.
fn draw_curve<'a>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    series: &[(f64, f64)],
    colour: RGBColor,
    label: String,
    legend: SeriesLabelPosition,
) -> DrawResult {
    chart
        .draw_series(LineSeries::new(
            series.iter().copied(),
            colour.stroke_width(2),
        ))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2)));
    chart.draw_series(series.iter().map(|&p| Circle::new(p, 4, colour.filled())))?;
    chart
        .configure_series_labels()
        .position(legend)
        .label_font((FAMILY, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

/// One line of a sweep chart: mAP (a fraction) at each swept value.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// `(setting, mAP)` points, in increasing setting order.
    pub points: Vec<(f64, f64)>,
}

/// Colours of the sweep chart's lines, in series order.
const SERIES_COLOURS: [RGBColor; 4] = [
    MAP_COLOUR,
    LOSS_COLOUR,
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// Draws mAP in % against a swept setting, one line per series (at most four), and writes
/// the PNG atomically to `path`.
///
/// # Errors
///
/// [`PlotError::Empty`] when no series has a point, [`PlotError::NonFinite`] for a value that
/// cannot be drawn, and the drawing and writing errors.
pub fn write_sweep_chart(
    path: &Path,
    series: &[Series],
    title: &str,
    x_desc: &str,
) -> Result<(), PlotError> {
    let points = || series.iter().flat_map(|s| s.points.iter().copied());
    if points().next().is_none() {
        return Err(PlotError::Empty { path: path.into() });
    }
    if let Some((x, y)) = points().find(|(x, y)| !x.is_finite() || !y.is_finite()) {
        return Err(PlotError::NonFinite {
            path: path.into(),
            epoch: 0,
            quantity: "sweep point",
            value: if x.is_finite() { y } else { x },
        });
    }
    if !register_with_plotters() {
        return Err(PlotError::Font { path: path.into() });
    }
    let (width, height) = PLOT_SIZE;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    render_sweep(&mut pixels, series, title, x_desc).map_err(|e| PlotError::Draw {
        path: path.into(),
        message: e.to_string(),
    })?;
    write_png(path, &pixels)
}

fn render_sweep(pixels: &mut [u8], series: &[Series], title: &str, x_desc: &str) -> DrawResult {
    let all = || series.iter().flat_map(|s| s.points.iter().copied());
    let (x_lo, x_hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (x, _)| {
        (lo.min(x), hi.max(x))
    });
    let (y_lo, y_hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, y)| {
        (lo.min(100.0 * y), hi.max(100.0 * y))
    });
    let x_pad = if x_hi > x_lo {
        0.05 * (x_hi - x_lo)
    } else {
        0.5
    };
    let y_pad = if y_hi > y_lo {
        0.15 * (y_hi - y_lo)
    } else {
        1.0
    };
    let root = BitMapBackend::with_buffer(pixels, PLOT_SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let body = root.titled(title, (FAMILY, 24))?;
    let mut chart = ChartBuilder::on(&body)
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(
            x_lo - x_pad..x_hi + x_pad,
            (y_lo - y_pad).max(0.0)..y_hi + y_pad,
        )?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("test mAP (%)")
        .y_label_formatter(&|v| format!("{v:.1}"))
        .label_style((FAMILY, 14))
        .axis_desc_style((FAMILY, 16))
        .draw()?;
    for (s, colour) in series.iter().zip(SERIES_COLOURS) {
        let points: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (x, 100.0 * y)).collect();
        draw_curve(
            &mut chart,
            &points,
            colour,
            s.name.clone(),
            SeriesLabelPosition::LowerRight,
        )?;
    }
    root.present()
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::RgbImage;

    fn point(epoch: usize, train_loss: f64, val_map: Option<f64>) -> EpochPoint {
        EpochPoint {
            epoch,
            train_loss,
            val_map,
        }
    }

    /// Twelve epochs of falling loss and rising mAP, evaluated every other epoch.
    fn run() -> Vec<EpochPoint> {
        (1..=12)
            .map(|e| {
                let t = e as f64;
                let map = (e % 2 == 0).then(|| 0.3 - 0.25 * (-t / 3.0).exp());
                point(e, 0.05 + 0.6 * (-t / 4.0).exp(), map)
            })
            .collect()
    }

    fn plot(points: &[EpochPoint]) -> RgbImage {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plot.png");
        write_training_plot(&path, points, "test run").unwrap();
        image::open(&path).unwrap().to_rgb8()
    }

    /// Mean row of the pixels of `colour` in columns `xs`, and how many there are.
    fn mean_row(image: &RgbImage, colour: RGBColor, xs: std::ops::Range<u32>) -> (f64, usize) {
        let rows: Vec<u32> = image
            .enumerate_pixels()
            .filter(|(x, _, p)| xs.contains(x) && p.0 == [colour.0, colour.1, colour.2])
            .map(|(_, y, _)| y)
            .collect();
        let mean = rows.iter().map(|&y| f64::from(y)).sum::<f64>() / rows.len().max(1) as f64;
        (mean, rows.len())
    }

    #[test]
    fn writes_a_png_atomically_over_an_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("progress.png");
        std::fs::write(&path, b"old").unwrap();
        write_training_plot(&path, &run(), "test run").unwrap();
        let image = image::open(&path).unwrap();
        assert_eq!((image.width(), image.height()), PLOT_SIZE);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["progress.png"]);
    }

    #[test]
    fn each_curve_sits_in_its_panel_and_follows_the_data() {
        let image = plot(&run());
        let half = PLOT_SIZE.1 / 2;
        let (loss_y, loss_total) = mean_row(&image, LOSS_COLOUR, 0..PLOT_SIZE.0);
        let (map_y, map_total) = mean_row(&image, MAP_COLOUR, 0..PLOT_SIZE.0);
        assert!(
            loss_total > 100 && map_total > 100,
            "{loss_total} loss, {map_total} mAP pixels"
        );
        assert!(
            loss_y < f64::from(half) && map_y > f64::from(half),
            "loss row {loss_y}, mAP row {map_y}"
        );
        // The legends sit at the right; compare the left quarter with the middle of the plot.
        let (loss_left, _) = mean_row(&image, LOSS_COLOUR, 90..300);
        let (loss_mid, _) = mean_row(&image, LOSS_COLOUR, 300..600);
        assert!(
            loss_left < loss_mid,
            "falling loss is drawn higher on the left"
        );
        let (map_left, _) = mean_row(&image, MAP_COLOUR, 90..300);
        let (map_mid, _) = mean_row(&image, MAP_COLOUR, 300..600);
        assert!(map_left > map_mid, "rising mAP is drawn lower on the left");
        let title_ink = (0..30 * PLOT_SIZE.0)
            .filter(|i| image.as_raw()[3 * *i as usize] < 100)
            .count();
        assert!(
            title_ink > 50,
            "the title is rendered with the embedded font"
        );
    }

    #[test]
    fn a_single_epoch_and_missing_val_map_still_plot() {
        let image = plot(&[point(1, 0.69, None)]);
        assert!(mean_row(&image, LOSS_COLOUR, 0..PLOT_SIZE.0).1 > 0);
        assert_eq!(mean_row(&image, MAP_COLOUR, 0..PLOT_SIZE.0).1, 0);
        let image = plot(&[point(3, 0.5, Some(0.2))]);
        assert!(mean_row(&image, MAP_COLOUR, 0..PLOT_SIZE.0).1 > 0);
    }

    #[test]
    fn bad_points_are_rejected_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plot.png");
        let write = |points: &[EpochPoint]| write_training_plot(&path, points, "t").unwrap_err();
        assert!(matches!(write(&[]), PlotError::Empty { .. }));
        let err = write(&[point(1, 0.6, None), point(2, f64::NAN, None)]);
        assert!(
            matches!(
                err,
                PlotError::NonFinite {
                    epoch: 2,
                    quantity: "train loss",
                    ..
                }
            ),
            "{err}"
        );
        let err = write(&[point(1, 0.6, Some(f64::INFINITY))]);
        assert!(
            matches!(
                err,
                PlotError::NonFinite {
                    epoch: 1,
                    quantity: "val mAP",
                    ..
                }
            ),
            "{err}"
        );
        let err = write(&[point(1, 0.6, Some(27.2))]);
        assert!(
            matches!(err, PlotError::MapOutOfRange { epoch: 1, .. }),
            "{err}"
        );
        let err = write(&[point(2, 0.6, None), point(2, 0.5, None)]);
        assert!(
            matches!(
                err,
                PlotError::EpochOrder {
                    previous: 2,
                    epoch: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("plot.png"));
        assert!(!path.exists());
    }

    #[test]
    fn a_missing_directory_is_an_io_error_naming_the_file() {
        let path = Path::new("/nonexistent-csra-dir/plot.png");
        let err = write_training_plot(path, &run(), "t").unwrap_err();
        assert!(matches!(err, PlotError::Io { .. }), "{err}");
        assert!(
            err.to_string().contains("/nonexistent-csra-dir/plot.png"),
            "{err}"
        );
    }

    #[test]
    fn a_sweep_chart_draws_each_series_in_its_colour() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.png");
        let series = [
            Series {
                name: "a".into(),
                points: vec![(0.1, 0.40), (0.5, 0.45), (1.0, 0.42)],
            },
            Series {
                name: "b".into(),
                points: vec![(0.1, 0.30), (1.0, 0.31)],
            },
        ];
        write_sweep_chart(&path, &series, "λ", "λ").unwrap();
        let image = image::open(&path).unwrap().to_rgb8();
        let (a_y, a_n) = mean_row(&image, SERIES_COLOURS[0], 0..PLOT_SIZE.0);
        let (b_y, b_n) = mean_row(&image, SERIES_COLOURS[1], 0..PLOT_SIZE.0);
        assert!(a_n > 50 && b_n > 50, "{a_n} {b_n}");
        assert!(a_y < b_y, "the higher mAP is drawn higher: {a_y} vs {b_y}");
        let empty = [Series {
            name: "none".into(),
            points: vec![],
        }];
        let err = write_sweep_chart(&path, &empty, "t", "x").unwrap_err();
        assert!(matches!(err, PlotError::Empty { .. }), "{err}");
    }
}
