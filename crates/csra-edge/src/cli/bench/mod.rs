//! `csra-edge bench`: network latency per model in one process, so the ratios between models
//! (e.g. H = 1, 2, 4, 8 heads) compare like with like; with `--pipeline`, the whole frame path
//! too.

mod backbone;
mod ops;
mod pipeline;
mod plot;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::engine::EngineArgs;
use super::BenchArgs;
use csra_edge::backend::load_backend;
use csra_edge::model::ModelFiles;
use csra_edge::pipeline::nearest_rank;
use csra_edge::profile::DeviceProfile;

/// One model's measurement.
#[derive(Debug, Clone, Serialize)]
struct Measurement {
    model: String,
    /// The engine, as it describes itself.
    backend: String,
    variant: String,
    heads: usize,
    input: String,
    threads: usize,
    runs: usize,
    #[serde(flatten)]
    latency: Latency,
    /// The process's resident-memory high-water mark after this model ran (VmHWM), MiB.
    peak_rss_mib: Option<f64>,
    /// p50 over the fastest model's p50.
    ratio_to_fastest: f64,
    /// p50 minus the GAP baseline's p50 on the same engine, when the run has a baseline.
    head_overhead_ms: Option<f64>,
    /// `head_overhead_ms` as a percentage of the baseline's p50.
    head_overhead_pct: Option<f64>,
    /// The frame path per camera codec (`--pipeline`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pipeline: Vec<pipeline::PipelineRow>,
}

/// Latency statistics of timed runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Latency {
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
    /// Inferences per second, one after another: 1000 / mean.
    throughput_per_s: f64,
}

impl Latency {
    /// The statistics of `times` (ms), nearest-rank percentiles; `None` for no times.
    fn of(mut times: Vec<f64>) -> Option<Latency> {
        times.sort_by(f64::total_cmp);
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        Some(Latency {
            p50_ms: nearest_rank(&times, 0.5)?,
            p90_ms: nearest_rank(&times, 0.9)?,
            p99_ms: nearest_rank(&times, 0.99)?,
            mean_ms: mean,
            throughput_per_s: 1e3 / mean,
        })
    }
}

/// The head's cost over the GAP baseline: `(ms, % of the baseline)` of p50s.
fn head_overhead(p50_ms: f64, baseline_p50_ms: f64) -> (f64, f64) {
    let ms = p50_ms - baseline_p50_ms;
    (ms, 100.0 * ms / baseline_p50_ms)
}

/// Measures every model and prints a table, or with `--json` one JSON line per model, on
/// stdout.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.runs == 0 {
        bail!("--runs 0: pass at least one timed run");
    }
    super::run::check_threads(args.threads)?;
    // Each model and the name its row shows.
    let mut models: Vec<(PathBuf, String)> = Vec::new();
    for path in &args.models {
        let family = expand_family(path)?;
        models.extend(
            family
                .into_iter()
                .map(|p| (p.clone(), p.display().to_string())),
        );
    }
    // Kept until the end: the grafted family lives in it.
    let mut grafted = None;
    if let Some(path) = &args.backbone {
        let dir = tempfile::tempdir().context("creating a temporary folder for --backbone")?;
        let family = backbone::Family {
            backbone: path,
            heads: &args.heads,
            variants: &args.variants,
            classes: args.classes,
        };
        let name = path
            .file_name()
            .map_or(path.as_os_str(), |n| n)
            .to_string_lossy();
        for folder in backbone::graft_family(&family, dir.path())? {
            let member = folder.file_name().map(|n| n.to_string_lossy().into_owned());
            let label = format!("{name}:{}", member.unwrap_or_default());
            models.push((folder, label));
        }
        grafted = Some(dir);
    }
    if args.profile_ops {
        return ops::run(&models, args);
    }
    let profile = super::run::profile(args.device.as_deref())?;
    let mut results = Vec::new();
    // One broken model (a stale `heads-*` member) must not cost the others' measurements.
    let mut failures = Vec::new();
    // Each engine in turn over every model (`--backends`), else the one `--backend` picks.
    let engines: Vec<EngineArgs> = match args.backends.as_slice() {
        [] => vec![args.engine.clone()],
        kinds => kinds
            .iter()
            .map(|&kind| EngineArgs {
                backend: Some(kind),
                ..args.engine.clone()
            })
            .collect(),
    };
    for engine in &engines {
        for (path, label) in &models {
            log::info!("measuring {label}");
            match measure(path, engine, args, &profile) {
                Ok(measurement) => results.push(Measurement {
                    model: label.clone(),
                    ..measurement
                }),
                Err(error) => {
                    let error = csra_core::error_chain(error.as_ref());
                    log::error!("{label}: not measured: {error}");
                    failures.push(format!("{label}: {error}"));
                }
            }
        }
    }
    compare(&mut results);
    report(&results, args.json)?;
    if let Some(path) = &args.plot {
        plot::write(path, &results)?;
        log::info!("wrote the plot to {}", path.display());
    }
    drop(grafted);
    if !failures.is_empty() {
        bail!(
            "{} of {} measurement(s) could not be made:\n{}",
            failures.len(),
            models.len() * engines.len(),
            failures.join("\n")
        );
    }
    Ok(())
}

/// Fills in each row's ratio to the fastest and its overhead over the baseline measured on
/// the same engine at the same input size, if any.
fn compare(results: &mut [Measurement]) {
    let fastest = results
        .iter()
        .map(|m| m.latency.p50_ms)
        .fold(f64::INFINITY, f64::min);
    let baselines: Vec<(String, String, f64)> = results
        .iter()
        .filter(|m| m.variant == "baseline")
        .map(|m| (m.backend.clone(), m.input.clone(), m.latency.p50_ms))
        .collect();
    for m in results.iter_mut() {
        m.ratio_to_fastest = m.latency.p50_ms / fastest;
        let baseline = baselines
            .iter()
            .find(|(backend, input, _)| *backend == m.backend && *input == m.input)
            .map(|(_, _, p50)| p50);
        if let Some(baseline) = baseline {
            let (ms, pct) = head_overhead(m.latency.p50_ms, *baseline);
            (m.head_overhead_ms, m.head_overhead_pct) = (Some(ms), Some(pct));
        }
    }
}

/// The table, or one JSON line per measured model, on stdout.
fn report(results: &[Measurement], json: bool) -> anyhow::Result<()> {
    if results.is_empty() {
        return Ok(());
    }
    if json {
        for m in results {
            println!("{}", serde_json::to_string(m)?);
        }
    } else {
        println!("{}", table(results));
    }
    Ok(())
}

/// A fixed, non-constant input of `len` values in [-1, 1]: constant inputs can take shortcuts
/// in some kernels.
fn bench_input(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i % 251) as f32 / 125.0) - 1.0).collect()
}

/// A model path, or the `heads-*` model folders inside a family folder (by head count, then
/// the named variants).
fn expand_family(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("listing {}", path.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    // A folder with a manifest is a model, even a broken one: its error is the useful one.
    let is_manifest = |p: &PathBuf| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".manifest.json"))
    };
    if entries.iter().any(is_manifest) {
        return Ok(vec![path.to_owned()]);
    }
    // `heads-1` … `heads-8` by head count, then the named variants (`heads-baseline`,
    // `heads-max`) that `csra-host export --heads` writes beside them.
    let mut members: Vec<((usize, usize, String), PathBuf)> = entries
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| {
            let member = p.file_name()?.to_str()?.strip_prefix("heads-")?.to_owned();
            let order = member.parse().map_or((1, 0), |heads| (0, heads));
            Some(((order.0, order.1, member), p))
        })
        .collect();
    if members.is_empty() {
        bail!(
            "{}: neither a model folder nor a family of heads-* model folders",
            path.display()
        );
    }
    members.sort();
    Ok(members.into_iter().map(|(_, p)| p).collect())
}

fn measure(
    path: &Path,
    engine: &EngineArgs,
    args: &BenchArgs,
    profile: &DeviceProfile,
) -> anyhow::Result<Measurement> {
    let model = ModelFiles::open(path)?;
    let config = engine.config(profile, &model, args.threads)?;
    let selected = load_backend(&model, &config)?;
    log::info!("engine: {}", selected.reason);
    let mut backend = selected.backend;
    let input = bench_input(backend.input_len());
    for _ in 0..args.warmup {
        backend.run(&input)?;
    }
    let mut times = Vec::with_capacity(args.runs);
    let progress = progress_bar(args.runs, path);
    for _ in 0..args.runs {
        let start = Instant::now();
        backend.run(&input)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        progress.inc(1);
    }
    progress.finish_and_clear();
    let latency = Latency::of(times).context("--runs 0: pass at least one timed run")?;
    let manifest = &model.manifest;
    let pipeline = match &args.pipeline {
        Some(photo) => {
            let (rows, returned) =
                pipeline::measure(photo, manifest, backend, args.warmup, args.runs)?;
            backend = returned;
            rows
        }
        None => Vec::new(),
    };
    Ok(Measurement {
        model: path.display().to_string(),
        backend: backend.describe(),
        variant: manifest.head.variant().to_string(),
        heads: manifest.head.num_heads(),
        input: format!("{}x{}", manifest.input.width, manifest.input.height),
        threads: args.threads,
        runs: args.runs,
        latency,
        peak_rss_mib: peak_rss_mib(),
        ratio_to_fastest: 1.0,
        head_overhead_ms: None,
        head_overhead_pct: None,
        pipeline,
    })
}

/// This process's resident-memory high-water mark in MiB (`VmHWM`).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// An engine's name without its details: `tract (CPU, f32), 1 thread` → `tract`.
fn engine_name(description: &str) -> &str {
    description.split(" (").next().unwrap_or(description)
}

/// The timed runs' bar on stderr; indicatif draws nothing when stderr is not a terminal.
fn progress_bar(runs: usize, model: &Path) -> ProgressBar {
    let bar = ProgressBar::new(runs as u64);
    if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} ({eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(model.display().to_string());
    bar
}

fn table(results: &[Measurement]) -> String {
    let mut lines = vec![format!(
        "{:<40} {:<13} {:>8} {:>5} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7} {:>9} {:>8}",
        "model",
        "engine",
        "variant",
        "heads",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "mean ms",
        "per s",
        "ratio",
        "head ms",
        "head %"
    )];
    let optional = |value: Option<f64>, digits: usize| {
        value.map_or("-".to_owned(), |v| format!("{v:+.digits$}"))
    };
    for m in results {
        let l = &m.latency;
        lines.push(format!(
            "{:<40} {:<13} {:>8} {:>5} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>8.1} {:>7.2} {:>9} {:>8}",
            m.model,
            engine_name(&m.backend),
            m.variant,
            m.heads,
            l.p50_ms,
            l.p90_ms,
            l.p99_ms,
            l.mean_ms,
            l.throughput_per_s,
            m.ratio_to_fastest,
            optional(m.head_overhead_ms, 3),
            optional(m.head_overhead_pct, 1),
        ));
    }
    let mut engines: Vec<&str> = results.iter().map(|m| m.backend.as_str()).collect();
    engines.dedup();
    lines.extend(engines.iter().map(|e| format!("engine: {e}")));
    if results.iter().any(|m| !m.pipeline.is_empty()) {
        let (width, height) = pipeline::FRAME_SIZE;
        lines.push(format!(
            "\nframe path on {width}x{height} camera frames, p50 ms"
        ));
        lines.push(format!(
            "{:<40} {:<13} {:>6} {:>7} {:>10} {:>8} {:>8} {:>7} {:>9} {:>8} {:>8} {:>9}",
            "model",
            "engine",
            "codec",
            "decode",
            "preprocess",
            "network",
            "post",
            "total",
            "overhead",
            "fps",
            "fps pre",
            "overh pre"
        ));
        for m in results {
            for row in &m.pipeline {
                lines.push(format!(
                    "{:<40} {:<13} {:>6} {:>7.2} {:>10.2} {:>8.2} {:>8.3} {:>7.2} {:>8.1}% {:>8.1} {:>8.1} {:>8.1}%",
                    m.model,
                    engine_name(&m.backend),
                    row.codec,
                    row.decode_ms,
                    row.preprocess_ms,
                    row.network_ms,
                    row.postprocess_ms,
                    row.total_ms,
                    row.overhead_pct,
                    row.in_turn_fps,
                    row.prefetch_fps,
                    row.prefetch_overhead_pct
                ));
            }
        }
        lines.push(
            "fps: frames per second through the run loop, in turn and with --prefetch (pre); \
             overh pre: its time per frame beyond the network p50"
                .to_owned(),
        );
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_statistics_on_known_times() {
        // 1..=100 ms, shuffled: nearest rank puts p50 at 50, p90 at 90, p99 at 99.
        let times: Vec<f64> = (1..=100).map(|i| ((i * 37) % 100 + 1) as f64).collect();
        let latency = Latency::of(times).unwrap();
        assert_eq!(
            latency,
            Latency {
                p50_ms: 50.0,
                p90_ms: 90.0,
                p99_ms: 99.0,
                mean_ms: 50.5,
                throughput_per_s: 1e3 / 50.5,
            }
        );
        let one = Latency::of(vec![4.0]).unwrap();
        assert_eq!(
            (one.p50_ms, one.p99_ms, one.throughput_per_s),
            (4.0, 4.0, 250.0)
        );
        assert_eq!(Latency::of(Vec::new()), None);
    }

    #[test]
    fn head_overhead_is_against_the_baseline_on_the_same_engine() {
        assert_eq!(head_overhead(10.3, 10.0).1.round(), 3.0);
        let (ms, pct) = head_overhead(9.0, 10.0);
        assert!((ms + 1.0).abs() < 1e-12 && (pct + 10.0).abs() < 1e-9);
        let row = |variant: &str, backend: &str, p50_ms: f64| Measurement {
            model: variant.into(),
            backend: backend.into(),
            variant: variant.into(),
            heads: 1,
            input: "448x448".into(),
            threads: 1,
            runs: 1,
            latency: Latency::of(vec![p50_ms]).unwrap(),
            peak_rss_mib: None,
            ratio_to_fastest: 0.0,
            head_overhead_ms: None,
            head_overhead_pct: None,
            pipeline: Vec::new(),
        };
        let mut rows = vec![
            row("baseline", "tract", 20.0),
            row("csra", "tract", 20.6),
            row("csra", "onnxruntime", 5.0),
        ];
        compare(&mut rows);
        assert_eq!(rows[0].head_overhead_pct, Some(0.0));
        assert!((rows[1].head_overhead_pct.unwrap() - 3.0).abs() < 1e-9);
        assert_eq!(rows[2].head_overhead_ms, None, "no baseline on that engine");
        assert_eq!(rows[2].ratio_to_fastest, 1.0);
        assert_eq!(rows[0].ratio_to_fastest, 4.0);
        // A model at another input size is not compared with the 448 baseline.
        let mut rows = vec![row("baseline", "tract", 20.0), row("csra", "tract", 6.0)];
        rows[1].input = "224x224".into();
        compare(&mut rows);
        assert_eq!(rows[1].head_overhead_ms, None, "no baseline at that size");
    }
}
