//! `csra-host eval`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use csra_core::manifest::{manifest_path_for, Manifest, Preprocess};
use csra_core::metrics::Evaluation;
use csra_core::{ClassMap, Dataset, HeadSpec, LabelSet};
use csra_host::data::{Augment, Loader, LoaderConfig};
use csra_host::data_source::{DataSource, Role};
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
    /// The data to score [default: the checkpoint's validation set]. Data with other class
    /// names is mapped onto the model's by name (VOC's aeroplane→airplane, ...): only the
    /// classes both have are scored, under the data's names.
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
    /// The data's class name.
    class: String,
    /// The model's name for it, where that differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    model_class: Option<String>,
    ap: Option<f64>,
}

/// What one evaluation scored: the data, the head, the predictions and their time.
struct Scored {
    /// The checkpoint description or model file that was scored.
    source: PathBuf,
    data: DataSource,
    /// The data, restricted to the classes the model predicts.
    dataset: Dataset,
    /// The model's name of each of `dataset`'s classes.
    model_classes: Vec<String>,
    head: HeadSpec,
    /// The model's outputs for `dataset`'s classes.
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
        model_classes,
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
            .zip(&model_classes)
            .zip(&metrics.per_class_ap)
            .map(|((class, model_class), ap)| ClassAp {
                class: class.clone(),
                model_class: (model_class != class).then(|| model_class.clone()),
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
    let data = match args.data.source(Role::Eval)? {
        Some(data) => data,
        None => meta.val_data.clone().with_context(|| {
            format!(
                "{} was trained without a validation set; name the data with --data or --format",
                loaded.checkpoint.path.display()
            )
        })?,
    };
    let classes = LabelSet::new(meta.classes.iter().cloned(), "the checkpoint's classes")?;
    let scoring = read_data(&data, &classes)?;
    let loader = loader(
        &scoring.dataset,
        args,
        (meta.image_size, meta.image_size),
        &meta.preprocess,
    )?;
    let started = Instant::now();
    let predictions = predict(&loaded.model, &loader, device)?;
    Ok(Scored {
        source: loaded.checkpoint.path.clone(),
        data,
        model_classes: scoring.model_classes(&classes),
        dataset: scoring.dataset,
        head: loaded.model.config().head.clone(),
        predictions: predictions.select_classes(&scoring.columns),
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
    let data = args.data.source(Role::Eval)?.with_context(|| {
        format!(
            "{}: an exported model does not record its data; name it with --data or --format",
            path.display()
        )
    })?;
    let classes = manifest.labels()?;
    let scoring = read_data(&data, &classes)?;
    let input = (manifest.input.width, manifest.input.height);
    let loader = loader(&scoring.dataset, args, input, &manifest.preprocess)?;
    let model = TractModel::load(path, &manifest.outputs.logits)?;
    let started = Instant::now();
    let predictions = predict_with(&loader, manifest.num_classes, |pixels, shape| {
        model.logits(pixels, shape[0])
    })?;
    Ok(Scored {
        source: path.clone(),
        data,
        model_classes: scoring.model_classes(&classes),
        dataset: scoring.dataset,
        head: manifest.head,
        predictions: predictions.select_classes(&scoring.columns),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A dataset in its own label space, restricted to the classes the model predicts.
struct Scoring {
    /// The data, with only the classes the model has.
    dataset: Dataset,
    /// The model's output column of each of `dataset`'s classes.
    columns: Vec<usize>,
}

impl Scoring {
    /// The model's name of each scored class.
    fn model_classes(&self, classes: &LabelSet) -> Vec<String> {
        self.columns
            .iter()
            .map(|&c| classes.names()[c].clone())
            .collect()
    }
}

/// Reads `data` and matches its classes to the model's `classes` by name.
fn read_data(data: &DataSource, classes: &LabelSet) -> anyhow::Result<Scoring> {
    scoring(data.read()?, classes, data)
}

/// Matches `dataset`'s classes (read from `data`) to the model's `classes` by name.
fn scoring(dataset: Dataset, classes: &LabelSet, data: &DataSource) -> anyhow::Result<Scoring> {
    let map = ClassMap::by_name(&dataset.classes, classes, &data.short_name())?;
    if map.is_identity() {
        return Ok(Scoring {
            columns: (0..classes.len()).collect(),
            dataset,
        });
    }
    let (data_classes, columns): (Vec<usize>, Vec<usize>) = map.pairs().into_iter().unzip();
    if columns.is_empty() {
        bail!(
            "{}: none of the dataset's {} classes is among the model's {} ({}, ...); evaluate on \
             data labelled with the classes it was trained on",
            data.annotations.display(),
            dataset.classes.len(),
            classes.len(),
            classes
                .names()
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let record = map.describe(&dataset.classes, classes);
    log::info!(
        "scoring the {} classes the data and the model share ({} renamed)",
        columns.len(),
        record.renamed.len()
    );
    if !record.dropped.is_empty() {
        log::warn!(
            "{}: classes the model does not predict, not scored: {}",
            data.short_name(),
            record.dropped.join(", ")
        );
    }
    Ok(Scoring {
        dataset: dataset.select_classes(&data_classes),
        columns,
    })
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

#[cfg(test)]
mod tests {
    use csra_core::Sample;
    use csra_host::data_source::DataFormat;

    use super::*;

    fn sample(target: [bool; 3]) -> Sample {
        Sample {
            image: "x.jpg".into(),
            target: target.to_vec(),
            ignore: vec![false; 3],
            bbox: None,
        }
    }

    /// A 3-class model (airplane, dog, cat) scored on data labelled aeroplane, cat and unicorn:
    /// only aeroplane (its airplane output) and cat count.
    #[test]
    fn data_of_another_label_space_is_scored_on_the_shared_classes_only() {
        let model = LabelSet::new(["airplane", "dog", "cat"], "model").unwrap();
        let dataset = Dataset {
            classes: LabelSet::new(["aeroplane", "cat", "unicorn"], "data").unwrap(),
            samples: vec![
                sample([true, false, true]),
                sample([false, true, false]),
                sample([true, false, true]),
            ],
            skipped: vec![],
        };
        let data = DataSource {
            format: DataFormat::Csv,
            annotations: "data.csv".into(),
            images: ".".into(),
            split: None,
            labels: None,
        };
        let scoring = scoring(dataset, &model, &data).unwrap();
        assert_eq!(scoring.columns, [0, 2]);
        assert_eq!(scoring.model_classes(&model), ["airplane", "cat"]);
        assert_eq!(scoring.dataset.classes.names(), ["aeroplane", "cat"]);
        // Logits per image: airplane, dog, cat. Read by position instead of by name, "cat"
        // would take the dog column and score 1/3.
        let predictions = Predictions {
            logits: vec![2.0, 0.0, -1.0, 1.0, -3.0, 3.0, -2.0, 5.0, 0.0],
            indices: vec![0, 1, 2],
            num_classes: 3,
            skipped: vec![],
        }
        .select_classes(&scoring.columns);
        let metrics = predictions.evaluate(&scoring.dataset.samples).unwrap();
        // airplane: scores 2, 1, -2 for labels 1, 0, 1 → precisions 1/1 and 2/3 → AP 5/6.
        // cat: scores -1, 3, 0 for labels 0, 1, 0 → AP 1.
        let ap: Vec<f64> = metrics.per_class_ap.iter().map(|a| a.unwrap()).collect();
        assert!((ap[0] - 5.0 / 6.0).abs() < 1e-9, "{ap:?}");
        assert!((ap[1] - 1.0).abs() < 1e-9, "{ap:?}");
        assert!((metrics.map - 11.0 / 12.0).abs() < 1e-9, "{}", metrics.map);
    }

    #[test]
    fn data_sharing_no_class_with_the_model_is_an_error() {
        let model = LabelSet::new(["airplane"], "model").unwrap();
        let dataset = Dataset {
            classes: LabelSet::new(["unicorn"], "data").unwrap(),
            samples: vec![],
            skipped: vec![],
        };
        let data = DataSource {
            format: DataFormat::Csv,
            annotations: "data.csv".into(),
            images: ".".into(),
            split: None,
            labels: None,
        };
        let err = scoring(dataset, &model, &data).err().unwrap().to_string();
        assert!(err.contains("data.csv") && err.contains("none of"), "{err}");
    }
}
