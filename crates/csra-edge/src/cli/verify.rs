//! `csra-edge verify MODEL IMAGES`: runs the pictures through an engine (TensorRT by default)
//! at each precision asked for and through tract, and reports how far the outputs are apart.
//! The exit code says whether every precision stayed within its tolerance: how a Jetson user
//! checks an engine before trusting it.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use csra_edge::backend::{load_backend, Backend, BackendKind, Outputs};
use csra_edge::model::ModelFiles;
use csra_edge::pictures::Pictures;
use csra_edge::verify::Comparison;
use csra_trt::Precision;
use serde::Serialize;

use super::engine::{BackendArg, EngineArgs, PrecisionArg};

/// `csra-edge verify MODEL IMAGES`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A model folder or .onnx file.
    pub model: PathBuf,
    /// The pictures: a folder, a file or a glob.
    pub images: String,
    /// Precisions to build and compare, comma-separated [default: fp32,fp16, and int8 with
    /// --calibration].
    #[arg(
        long = "precisions",
        value_enum,
        value_delimiter = ',',
        value_name = "LIST"
    )]
    pub precisions: Vec<PrecisionArg>,
    /// The largest |Δ logit| accepted [default: 0.01 at fp32, 0.25 at fp16, 1.0 at int8].
    #[arg(long, value_name = "DELTA")]
    pub tolerance: Option<f64>,
    /// The k of the top-k comparison.
    #[arg(long, default_value_t = 3, value_name = "K")]
    pub topk: usize,
    /// Inference threads for tract.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads: usize,
    /// Device profile: a name from devices/ or a .toml file [default: detected].
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
    /// The engine to check (default tensorrt) and TensorRT's settings.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// One precision's verdict, printed as a JSON line.
#[derive(Debug, Serialize)]
struct Verdict<'a> {
    precision: &'static str,
    backend: String,
    tolerance: f64,
    pass: bool,
    #[serde(flatten)]
    comparison: &'a Comparison,
    worst_image: Option<&'a str>,
    worst_class: Option<&'a str>,
}

/// Runs the check; an error (exit code 1) when a precision is past its tolerance.
pub fn run(args: &VerifyArgs) -> anyhow::Result<()> {
    if args.topk == 0 {
        bail!("--topk 0: pass 1 or more");
    }
    let profile = super::run::profile(args.device.as_deref())?;
    let model = ModelFiles::open(&args.model)?;
    let pictures = Pictures::read(&args.images, &model.manifest, 1)?;
    log::info!(
        "verifying on {} picture(s) from {}",
        pictures.len(),
        args.images
    );
    let reference = run_all(
        &mut csra_edge::backend::TractBackend::load(&model, args.threads)?,
        &pictures,
    )?;
    let kind = args
        .engine
        .backend
        .map_or(BackendKind::Tensorrt, BackendKind::from);
    if args.engine.backend == Some(BackendArg::Auto) {
        bail!("verify --backend auto: name the engine to check, tensorrt (or tract)");
    }
    let thresholds: Vec<f32> = (0..model.manifest.num_classes)
        .map(|c| model.manifest.threshold(c))
        .collect();
    let mut failed = Vec::new();
    for precision in precisions(args) {
        let config = args
            .engine
            .config_at(kind, precision, &profile, &model, args.threads)?;
        let mut backend = load_backend(&model, &config)?.backend;
        let outputs = run_all(backend.as_mut(), &pictures)?;
        let comparison = Comparison::new(&reference, &outputs, &thresholds, args.topk)?;
        let tolerance = args.tolerance.unwrap_or(match precision {
            Precision::Fp32 => 0.01,
            Precision::Fp16 => 0.25,
            Precision::Int8 => 1.0,
        });
        let pass = comparison.max_abs_logit_delta <= tolerance;
        let verdict = Verdict {
            precision: precision.as_str(),
            backend: backend.describe(),
            tolerance,
            pass,
            comparison: &comparison,
            worst_image: comparison.worst.map(|(i, _)| pictures.names[i].as_str()),
            worst_class: comparison
                .worst
                .map(|(_, c)| model.manifest.classes[c].as_str()),
        };
        eprintln!("{}", summary(&verdict));
        println!("{}", serde_json::to_string(&verdict)?);
        if !pass {
            failed.push(precision.as_str());
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} differs from tract past the tolerance at {}; check the JetPack/TensorRT install, try another precision, or pass --tolerance",
            model.onnx.display(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// The precisions asked for, or fp32 and fp16 (and int8 when there are calibration pictures).
fn precisions(args: &VerifyArgs) -> Vec<Precision> {
    if !args.precisions.is_empty() {
        return args.precisions.iter().map(|&p| p.into()).collect();
    }
    let mut list = vec![Precision::Fp32, Precision::Fp16];
    if args.engine.calibration.is_some() {
        list.push(Precision::Int8);
    }
    list
}

fn run_all(backend: &mut dyn Backend, pictures: &Pictures) -> anyhow::Result<Vec<Outputs>> {
    (0..pictures.len())
        .map(|i| Ok(backend.run(pictures.picture(i))?))
        .collect()
}

fn summary(v: &Verdict<'_>) -> String {
    let c = v.comparison;
    format!(
        "{:<5} {}: max |Δlogit| {:.2e} (tolerance {:.2e}{}) at {} / {}; max |Δp| {:.2e}; top-{} differs on {}/{}; labels differ on {}/{}; mAP vs tract's labels {:.2} — {}",
        v.precision,
        v.backend,
        c.max_abs_logit_delta,
        v.tolerance,
        if v.pass { "" } else { ", EXCEEDED" },
        v.worst_image.unwrap_or("-"),
        v.worst_class.unwrap_or("-"),
        c.max_abs_prob_delta,
        c.k,
        c.topk_differs,
        c.images,
        c.labels_differ,
        c.images,
        100.0 * c.map_vs_reference_labels,
        if v.pass { "pass" } else { "FAIL" }
    )
}
