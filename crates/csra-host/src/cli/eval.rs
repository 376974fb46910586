//! `csra-host eval`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use csra_core::manifest::{manifest_path_for, Manifest, Preprocess};
use csra_core::metrics::Evaluation;
use csra_core::{Dataset, HeadSpec};
use csra_host::data::{Augment, Loader, LoaderConfig};
use csra_host::data_source::DataSource;
use csra_host::evaluate::{predict, predict_with, Predictions};
use csra_host::export::tract_run::TractModel;
use serde::Serialize;

use super::common::{load_model, DataArgs, DeviceArgs, HeadArgs};

/// `csra-host eval` flags.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A checkpoint .json, a run directory (its latest checkpoint), or an exported
    /// `model.onnx` (run in tract, with the manifest beside it; needs --data or --format).
    checkpoint: PathBuf,
    /// The data to score [default: the checkpoint's validation set].
    #[command(flatten)]
    data: DataArgs,
    /// Evaluate with another head on the same weights, e.g. `--head max --lambda 0.2` on a
    /// trained baseline (the training-free Max head).
    #[command(flatten)]
    head: HeadArgs,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArgs,
}

/// The JSON report of one evaluation.
#[derive(Debug, Serialize)]
struct Report {
    checkpoint: PathBuf,
    data: DataSource,
    head: HeadSpec,
    seconds: f64,
    images_per_second: f64,
    skipped_images: Vec<PathBuf>,
    per_class: Vec<ClassAp>,
    metrics: Evaluation,
}

#[derive(Debug, Serialize)]
struct ClassAp {
    class: String,
    ap: Option<f64>,
}

/// What one evaluation scored: the data, the head, the predictions and their time.
struct Scored {
    /// The checkpoint description or model file that was scored.
    source: PathBuf,
    data: DataSource,
    dataset: Dataset,
    head: HeadSpec,
    predictions: Predictions,
    seconds: f64,
}

/// Runs `csra-host eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let scored = if is_onnx(&args.checkpoint) {
        score_onnx(&args)?
    } else {
        score_checkpoint(&args)?
    };
    let Scored {
        source,
        data,
        dataset,
        head,
        predictions,
        seconds,
    } = scored;
    let metrics = predictions.evaluate(&dataset.samples)?;
    let report = Report {
        checkpoint: source,
        data,
        head,
        seconds,
        images_per_second: predictions.indices.len() as f64 / seconds.max(1e-9),
        skipped_images: predictions
            .skipped
            .iter()
            .map(|s| s.image.clone())
            .collect(),
        per_class: dataset
            .classes
            .names()
            .iter()
            .zip(&metrics.per_class_ap)
            .map(|(class, ap)| ClassAp {
                class: class.clone(),
                ap: *ap,
            })
            .collect(),
        metrics,
    };
    let json = serde_json::to_string_pretty(&report)?;
    if let Some(path) = &args.report {
        csra_core::fsutil::write_atomic(path, json.as_bytes())
            .with_context(|| format!("cannot write the report {}", path.display()))?;
    }
    if args.json {
        outln!("{json}")?;
    } else {
        print_table(&report)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn is_onnx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// A checkpoint in tch.
fn score_checkpoint(args: &EvalArgs) -> anyhow::Result<Scored> {
    let device = args.device.device()?;
    let loaded = load_model(&args.checkpoint, device, args.head.spec()?)?;
    let meta = &loaded.checkpoint.meta;
    let data = match args.data.source("val2017")? {
        Some(data) => data,
        None => meta.val_data.clone().with_context(|| {
            format!(
                "{} was trained without a validation set; name the data with --data or --format",
                loaded.checkpoint.path.display()
            )
        })?,
    };
    let dataset = read_data(&data, meta.model.num_classes)?;
    let loader = loader(
        &dataset,
        args,
        (meta.image_size, meta.image_size),
        &meta.preprocess,
    )?;
    let started = Instant::now();
    let predictions = predict(&loaded.model, &loader, device)?;
    Ok(Scored {
        source: loaded.checkpoint.path.clone(),
        data,
        dataset,
        head: loaded.model.config().head.clone(),
        predictions,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// An exported model in tract, with the manifest beside it.
fn score_onnx(args: &EvalArgs) -> anyhow::Result<Scored> {
    let path = &args.checkpoint;
    if args.head.spec()?.is_some() {
        bail!(
            "{}: an exported model has its head built in; drop --head, --heads and --lambda",
            path.display()
        );
    }
    let manifest = Manifest::read(&manifest_path_for(path))?;
    let data = args.data.source("val2017")?.with_context(|| {
        format!(
            "{}: an exported model does not record its data; name it with --data or --format",
            path.display()
        )
    })?;
    let dataset = read_data(&data, manifest.num_classes)?;
    let input = (manifest.input.width, manifest.input.height);
    let loader = loader(&dataset, args, input, &manifest.preprocess)?;
    let model = TractModel::load(path, &manifest.outputs.logits)?;
    let started = Instant::now();
    let predictions = predict_with(&loader, manifest.num_classes, |pixels, shape| {
        model.logits(pixels, shape[0])
    })?;
    Ok(Scored {
        source: path.clone(),
        data,
        dataset,
        head: manifest.head,
        predictions,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn read_data(data: &DataSource, num_classes: usize) -> anyhow::Result<Dataset> {
    let dataset = data.read()?;
    if dataset.classes.len() != num_classes {
        bail!(
            "{}: the dataset has {} classes but the model predicts {}; evaluate on data with the classes it was trained on",
            data.annotations.display(),
            dataset.classes.len(),
            num_classes
        );
    }
    Ok(dataset)
}

fn loader(
    dataset: &Dataset,
    args: &EvalArgs,
    image_size: (u32, u32),
    preprocess: &Preprocess,
) -> anyhow::Result<Loader> {
    Ok(Loader::new(
        Arc::from(dataset.samples.clone()),
        dataset.classes.len(),
        LoaderConfig {
            batch_size: args.batch_size,
            image_size,
            preprocess: preprocess.clone(),
            augment: Augment::None,
            shuffle: false,
            seed: 0,
            workers: args.device.workers(),
            prefetch: 4,
            drop_last: false,
        },
    )?)
}

fn print_table(r: &Report) -> std::io::Result<()> {
    let m = &r.metrics;
    let pct = |x: f64| 100.0 * x;
    outln!(
        "{} on {} ({} images, {:.1} img/s)",
        r.checkpoint.display(),
        r.data,
        m.num_samples,
        r.images_per_second
    )?;
    outln!(
        "mAP {:.2}  ({} classes with positives)",
        pct(m.map),
        m.num_map_classes
    )?;
    for (name, p) in [("all", &m.all), ("top-3", &m.top3)] {
        outln!(
            "{name:>6}: CP {:.2}  CR {:.2}  CF1 {:.2}  OP {:.2}  OR {:.2}  OF1 {:.2}",
            pct(p.cp),
            pct(p.cr),
            pct(p.cf1),
            pct(p.op),
            pct(p.or),
            pct(p.of1)
        )?;
    }
    outln!("per-class AP:")?;
    for c in &r.per_class {
        match c.ap {
            Some(ap) => outln!("  {:>20} {:6.2}", c.class, pct(ap))?,
            None => outln!("  {:>20}      - (no positives)", c.class)?,
        }
    }
    if !r.skipped_images.is_empty() {
        outln!(
            "{} images could not be decoded and were skipped",
            r.skipped_images.len()
        )?;
    }
    Ok(())
}
