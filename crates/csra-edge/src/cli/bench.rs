//! `csra-edge bench`: network latency per model in one process, so the ratios between models
//! (e.g. H = 1, 2, 4, 8 heads) compare like with like.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;

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
    p50_ms: f64,
    p99_ms: f64,
    mean_ms: f64,
    /// p50 over the fastest model's p50.
    ratio_to_fastest: f64,
}

/// Measures every model and prints a table (stderr) and one JSON line per model (stdout).
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.runs == 0 {
        bail!("--runs 0: pass at least one timed run");
    }
    super::run::check_threads(args.threads)?;
    let mut models = Vec::new();
    for path in &args.models {
        models.extend(expand_family(path)?);
    }
    let profile = super::run::profile(args.device.as_deref())?;
    let mut results = Vec::new();
    // One broken model (a stale `heads-*` member) must not cost the others' measurements.
    let mut failures = Vec::new();
    for path in &models {
        log::info!("measuring {}", path.display());
        match measure(path, args, &profile) {
            Ok(measurement) => results.push(measurement),
            Err(error) => {
                let error = csra_core::error_chain(error.as_ref());
                log::error!("{}: not measured: {error}", path.display());
                failures.push(format!("{}: {error}", path.display()));
            }
        }
    }
    report(&mut results)?;
    if !failures.is_empty() {
        bail!(
            "{} of {} model(s) could not be measured:\n{}",
            failures.len(),
            models.len(),
            failures.join("\n")
        );
    }
    Ok(())
}

/// The table on stderr and one JSON line per measured model on stdout.
fn report(results: &mut [Measurement]) -> anyhow::Result<()> {
    if results.is_empty() {
        return Ok(());
    }
    let fastest = results
        .iter()
        .map(|m| m.p50_ms)
        .fold(f64::INFINITY, f64::min);
    for m in results.iter_mut() {
        m.ratio_to_fastest = m.p50_ms / fastest;
    }
    eprintln!("{}", table(results));
    for m in results.iter() {
        println!("{}", serde_json::to_string(m)?);
    }
    Ok(())
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

fn measure(path: &Path, args: &BenchArgs, profile: &DeviceProfile) -> anyhow::Result<Measurement> {
    let model = ModelFiles::open(path)?;
    let config = args.engine.config(profile, &model, args.threads)?;
    let selected = load_backend(&model, &config)?;
    log::info!("engine: {}", selected.reason);
    let mut backend = selected.backend;
    // A fixed, non-constant input: constant inputs can take shortcuts in some kernels.
    let input: Vec<f32> = (0..backend.input_len())
        .map(|i| ((i % 251) as f32 / 125.0) - 1.0)
        .collect();
    for _ in 0..args.warmup {
        backend.run(&input)?;
    }
    let mut times = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let start = Instant::now();
        backend.run(&input)?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let manifest = &model.manifest;
    Ok(Measurement {
        model: path.display().to_string(),
        backend: backend.describe(),
        variant: manifest.head.variant().to_string(),
        heads: manifest.head.num_heads(),
        input: format!("{}x{}", manifest.input.width, manifest.input.height),
        threads: args.threads,
        runs: args.runs,
        p50_ms: nearest_rank(&times, 0.5).unwrap_or(0.0),
        p99_ms: nearest_rank(&times, 0.99).unwrap_or(0.0),
        mean_ms: times.iter().sum::<f64>() / times.len() as f64,
        ratio_to_fastest: 1.0,
    })
}

fn table(results: &[Measurement]) -> String {
    let mut lines = vec![format!(
        "{:<40} {:>8} {:>5} {:>9} {:>9} {:>9} {:>7}",
        "model", "variant", "heads", "p50 ms", "p99 ms", "mean ms", "ratio"
    )];
    for m in results {
        lines.push(format!(
            "{:<40} {:>8} {:>5} {:>9.2} {:>9.2} {:>9.2} {:>7.2}",
            m.model, m.variant, m.heads, m.p50_ms, m.p99_ms, m.mean_ms, m.ratio_to_fastest
        ));
    }
    lines.join("\n")
}
