//! `csra-host export`: a checkpoint to `model.onnx`, its manifest and labels, verified in tract.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use csra_core::head::{HeadSpec, HeadVariant};
use csra_core::labels::LabelSet;
use csra_core::manifest::{Manifest, MeasuredMetrics, OutputNames, Provenance};
use csra_host::export::heads::{self, Derivation};
use csra_host::export::tract_run::TractModel;
use csra_host::export::verify::{tch_head_logits, Comparison, F16_TOLERANCE, F32_TOLERANCE};
use csra_host::export::{BackboneGraph, GraphOptions, Precision};
use csra_host::train::{Checkpoint, ValMetrics};
use csra_onnx::HeadWeights;
use csra_onnx::{ExportFiles, MODEL_FILE};
use tch::{Device, Tensor};

use super::common::{load_model, DeviceArgs, LoadedModel, VariantArg};
use super::export_check::{score, verification_images, VerificationImages};

/// `csra-host export` flags.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A checkpoint .json, or a run directory (its latest checkpoint).
    checkpoint: PathBuf,
    /// The output folder for model.onnx, model.manifest.json and labels.txt; with --heads, the
    /// folder of the heads-H/ sub-folders.
    #[arg(long)]
    out: PathBuf,
    /// The head: csra, max (`mean + λ·max`, the fast device head; training-free on any model)
    /// or baseline (GAP + FC) [default: the trained head].
    #[arg(long, value_enum, ignore_case = true)]
    variant: Option<VariantArg>,
    /// λ, the weight of the attention logits [default: the trained λ for the trained variant,
    /// 0.1 for csra, 0.2 for max].
    #[arg(long)]
    lambda: Option<f32>,
    /// Write a head family for benchmarking instead: one model per head count (csra with the
    /// paper's temperatures) in DIR/heads-H/, plus DIR/heads-baseline/ and DIR/heads-max/,
    /// all on the same backbone. Head counts other than the trained one replicate the trained
    /// classifier: their latency is real, their accuracy is not a trained model's.
    #[arg(long, value_delimiter = ',')]
    heads: Vec<usize>,
    /// Square input side in pixels [default: the training size].
    #[arg(long)]
    input_size: Option<usize>,
    /// A symbolic batch dimension `N` instead of a batch of 1.
    #[arg(long)]
    dynamic_batch: bool,
    /// Add the last head's attention maps `[N, C, h, w]` as the output `attention`.
    #[arg(long)]
    attention: bool,
    /// FP16 weights and compute with FP32 inputs and outputs (Cast nodes at the boundary), for
    /// TensorRT's strongly typed networks.
    #[arg(long)]
    fp16: bool,
    /// Class names to write, one per line [default: the checkpoint's classes].
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Compare the written file against tch (the default).
    #[arg(long, overrides_with = "no_verify")]
    verify: bool,
    /// Do not compare the written file against tch.
    #[arg(long, overrides_with = "verify")]
    no_verify: bool,
    /// Images to verify on (repeat the flag) [default: the first --verify-count images of the
    /// checkpoint's validation set, else random pixels].
    #[arg(long = "verify-image")]
    verify_images: Vec<PathBuf>,
    /// How many validation (or random) images to verify on.
    #[arg(long, default_value_t = 8)]
    verify_count: usize,
    /// The verification bound: max |Δlogit| ≤ tol · max(1, |logit|) [default: 1e-4; 5e-2 with
    /// --fp16].
    #[arg(long)]
    tolerance: Option<f64>,
    /// Also score the export on the checkpoint's validation set, in tch and in tract on the
    /// written file, and record tract's metrics in the manifest.
    #[arg(long)]
    eval: bool,
    #[command(flatten)]
    device: DeviceArgs,
}

/// One model to write: its folder and head spec.
struct Member {
    files: ExportFiles,
    spec: HeadSpec,
}

/// What every member shares.
struct Shared<'a> {
    args: &'a ExportArgs,
    loaded: &'a LoadedModel,
    device: Device,
    labels: LabelSet,
    trained: HeadWeights,
    graph: BackboneGraph,
    precision: Precision,
    outputs: OutputNames,
    /// The verification images and tch's eval-mode feature map of them.
    check: Option<(VerificationImages, Tensor)>,
}

/// Runs `csra-host export`.
pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let device = args.device.device()?;
    let loaded = load_model(&args.checkpoint, device, None)?;
    let meta = &loaded.checkpoint.meta;
    let labels = class_labels(&args, &loaded.checkpoint)?;
    let members = members(&args, &meta.model.head)?;
    let input_size = args.input_size.unwrap_or(meta.image_size as usize);
    if !(1..=csra_core::manifest::MAX_INPUT_SIDE as usize).contains(&input_size) {
        bail!(
            "--input-size {input_size}: pass the side in pixels, 1 to {} (CSRA models run at 224 to 576)",
            csra_core::manifest::MAX_INPUT_SIDE
        );
    }
    let options = GraphOptions {
        input_size,
        dynamic_batch: args.dynamic_batch,
    };
    let graph =
        BackboneGraph::new(loaded.model.backbone(), options).context("cannot emit the backbone")?;
    let trained = loaded
        .model
        .head()
        .weights()
        .context("cannot read the trained head")?;
    // The flags override each other, so at most one is set; neither means verify.
    let verify = args.verify || !args.no_verify;
    let check = if !verify {
        None
    } else {
        let images = verification_images(&args.verify_images, args.verify_count, meta, input_size)?;
        let tensor = images.tensor(input_size)?.to_device(device);
        let features = tch::no_grad(|| loaded.model.features(&tensor, false));
        Some((images, features))
    };
    let ctx = Shared {
        args: &args,
        loaded: &loaded,
        device,
        labels,
        trained,
        graph,
        precision: if args.fp16 {
            Precision::Fp16
        } else {
            Precision::Fp32
        },
        outputs: OutputNames {
            attention: args.attention.then(|| "attention".to_owned()),
            ..OutputNames::default()
        },
        check,
    };
    for member in &members {
        export_member(&ctx, member)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The class names: `--labels`, else the checkpoint's; their count must be the model's.
fn class_labels(args: &ExportArgs, checkpoint: &Checkpoint) -> anyhow::Result<LabelSet> {
    let meta = &checkpoint.meta;
    let (labels, origin) = match &args.labels {
        Some(path) => (LabelSet::read(path)?, path.clone()),
        None => (
            LabelSet::new(meta.classes.iter().cloned(), "checkpoint classes")?,
            checkpoint.path.clone(),
        ),
    };
    if labels.len() != meta.model.num_classes {
        bail!(
            "{}: lists {} classes but the model in {} predicts {}; pass the labels file of the \
             data this model was trained on",
            origin.display(),
            labels.len(),
            checkpoint.path.display(),
            meta.model.num_classes
        );
    }
    Ok(labels)
}

/// The models to write: one, or a head family.
fn members(args: &ExportArgs, trained: &HeadSpec) -> anyhow::Result<Vec<Member>> {
    if args.heads.is_empty() {
        let spec =
            heads::requested_spec(trained, args.variant.map(HeadVariant::from), args.lambda)?;
        return Ok(vec![Member {
            files: ExportFiles::in_dir(&args.out),
            spec,
        }]);
    }
    if args.variant.is_some() {
        bail!("--heads writes every variant (heads-H, heads-baseline, heads-max); drop --variant");
    }
    let csra_lambda = args
        .lambda
        .unwrap_or_else(|| heads::default_lambda(trained, HeadVariant::Csra));
    let max_lambda = args
        .lambda
        .unwrap_or_else(|| heads::default_lambda(trained, HeadVariant::Max));
    let family = heads::family(&args.heads, csra_lambda, max_lambda)
        .with_context(|| format!("--heads {:?}", args.heads))?;
    Ok(family
        .into_iter()
        .map(|(name, spec)| Member {
            files: ExportFiles::in_dir(&args.out.join(name)),
            spec,
        })
        .collect())
}

/// Writes one model, verifies it (removing it again when it fails) and reports.
fn export_member(ctx: &Shared<'_>, member: &Member) -> anyhow::Result<()> {
    let (head, derivation) = heads::derive(&ctx.trained, member.spec.clone())?;
    let model = ctx
        .graph
        .with_head(&head, &ctx.outputs, ctx.precision)
        .context("cannot build the ONNX graph")?;
    let mut manifest = manifest(ctx, &head, derivation);
    let files = &member.files;
    files
        .write(&model, &manifest, &ctx.labels)
        .with_context(|| {
            format!(
                "cannot write the export into {}; choose a writable --out folder",
                files.dir.display()
            )
        })?;
    let verified = match &ctx.check {
        Some((images, features)) => match verify(ctx, &head, files, images, features) {
            Ok(comparison) => Some(comparison),
            Err(err) => {
                files.remove();
                return Err(err);
            }
        },
        None => None,
    };
    if ctx.args.eval {
        let scores = score(
            ctx.loaded,
            ctx.device,
            &head,
            &files.model,
            &ctx.outputs.logits,
        )?;
        outln!(
            "{}: mAP on {} ({} images): tch {:.2}, tract {:.2}; logits: {}",
            files.dir.display(),
            scores.dataset,
            scores.tract.num_samples,
            100.0 * scores.tch.map,
            100.0 * scores.tract.map,
            scores
                .logits
                .map_or_else(|| "none".to_owned(), |c| c.to_string())
        )?;
        manifest.metrics = Some(MeasuredMetrics {
            dataset: format!("{} (tract, this file)", scores.dataset),
            values: metric_values(&ValMetrics::from(&scores.tract)),
        });
        manifest
            .write(&files.manifest)
            .with_context(|| format!("cannot rewrite {}", files.manifest.display()))?;
    }
    let size = std::fs::metadata(&files.model).map_or(0, |m| m.len());
    outln!(
        "{}: {} ({:.1} MB), {}",
        files.model.display(),
        head.spec(),
        size as f64 / 1e6,
        match (verified, &ctx.check) {
            (Some(c), Some((images, _))) => format!(
                "verified in tract on {} images: max |Δlogit| {:.2e}, worst {:.2e} · \
                 max(1, |logit|) on class {} of {}",
                images.names.len(),
                c.max_abs,
                c.worst.relative,
                ctx.labels.name(c.worst.class).unwrap_or("?"),
                images.names[c.worst.image]
            ),
            _ => "not verified".to_owned(),
        }
    )?;
    Ok(())
}

/// Runs the written file in tract on the verification images and compares with tch.
fn verify(
    ctx: &Shared<'_>,
    head: &HeadWeights,
    files: &ExportFiles,
    images: &VerificationImages,
    features: &Tensor,
) -> anyhow::Result<Comparison> {
    let reference = tch_head_logits(head, features)?;
    let tract = TractModel::load(&files.model, &ctx.outputs.logits)?;
    let exported = tract.logits(&images.pixels, images.names.len())?;
    let comparison = Comparison::new(&reference, &exported, head.num_classes())
        .context("tract returned no logits to compare")?;
    let tolerance = ctx.args.tolerance.unwrap_or(match ctx.precision {
        Precision::Fp32 => F32_TOLERANCE,
        Precision::Fp16 => F16_TOLERANCE,
    });
    if !comparison.within(tolerance) {
        let worst = comparison.worst;
        bail!(
            "{}: verification failed: tract's logits differ from tch's by more than {tolerance:e} \
             · max(1, |logit|); worst: class {} ({}) on {}: tch {}, tract {} ({comparison}); \
             the export was removed",
            files.model.display(),
            worst.class,
            ctx.labels.name(worst.class).unwrap_or("?"),
            images.names[worst.image],
            worst.reference,
            worst.exported,
        );
    }
    Ok(comparison)
}

/// The manifest of one export: classes, input, the checkpoint's pixel pipeline, head, outputs,
/// provenance, and the checkpoint's last validation metrics when the head is the trained one.
fn manifest(ctx: &Shared<'_>, head: &HeadWeights, derivation: Derivation) -> Manifest {
    let meta = &ctx.loaded.checkpoint.meta;
    let trained = ctx.trained.spec();
    let is_trained = head.spec() == trained && derivation == Derivation::Trained;
    // The checkpoint's metrics describe the trained network at its training size in f32.
    let same_network = is_trained
        && ctx.precision == Precision::Fp32
        && ctx.graph.input_spec().width == meta.image_size;
    let note = match derivation {
        _ if is_trained => None,
        Derivation::Trained => Some(format!(
            "training-free {} head on the classifier of the trained {trained} head",
            head.spec()
        )),
        Derivation::Replicated => Some(format!(
            "{} head whose classifiers replicate those of the trained {trained} head: for \
             latency benchmarking only, its accuracy is not that of a trained model",
            head.spec()
        )),
    };
    let provenance = Provenance {
        backbone: meta.model.arch.name().to_owned(),
        dataset: csra_host::data_source::describe_sources(&meta.train_data),
        epochs: u32::try_from(meta.progress.epochs_done).unwrap_or(u32::MAX),
        commit: None,
        created_by: csra_host::created_by(),
        note,
    };
    let mut manifest = Manifest::new(
        MODEL_FILE,
        &ctx.labels,
        ctx.graph.input_spec(),
        head.spec().clone(),
        provenance,
    );
    manifest.preprocess = meta.preprocess.clone();
    manifest.outputs = ctx.outputs.clone();
    let last_val = meta.history.iter().rev().find_map(|r| r.val.as_ref());
    if let (true, Some(val), Some(data)) = (same_network, last_val, &meta.val_data) {
        manifest.metrics = Some(MeasuredMetrics {
            dataset: data.short_name(),
            values: metric_values(val),
        });
    }
    manifest
}

fn metric_values(val: &ValMetrics) -> BTreeMap<String, f64> {
    BTreeMap::from([
        ("map".to_owned(), val.map),
        ("cf1".to_owned(), val.cf1),
        ("of1".to_owned(), val.of1),
        ("cf1_top3".to_owned(), val.cf1_top3),
        ("of1_top3".to_owned(), val.of1_top3),
    ])
}
