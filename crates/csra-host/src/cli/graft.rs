//! `csra-host graft`: any ONNX classifier with a GAP + FC tail becomes the training-free Max head,
//! through `csra_onnx::graft::graft_max`. No checkpoint and no libtorch involved.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use csra_core::labels::LabelSet;
use csra_core::manifest::{ColorOrder, OutputNames, Provenance};
use csra_host::export::files::ExportFiles;
use csra_host::export::heads::DEFAULT_MAX_LAMBDA;
use csra_host::export::tract_run::TractModel;
use csra_onnx::graft::{graft_max, GraftTarget};

use super::common::Normalize;

/// `csra-host graft` flags.
#[derive(Debug, Args)]
pub struct GraftArgs {
    /// The ONNX classifier (opset 13 to 17, static input size), ending in
    /// GlobalAveragePool → Flatten/Reshape → Gemm or MatMul (+ Add).
    model: PathBuf,
    /// The output folder: model.onnx, model.manifest.json and labels.txt.
    #[arg(long)]
    out: PathBuf,
    /// The classes in output order: a file with one name per line, or `coco`, `voc`, `wider`
    /// for the built-in lists.
    #[arg(long)]
    labels: String,
    /// λ of `mean + λ·max`.
    #[arg(long, default_value_t = DEFAULT_MAX_LAMBDA)]
    lambda: f32,
    /// The logits tensor the classifier tail ends in [default: the model's only output].
    #[arg(long)]
    logits: Option<String>,
    /// The pixel normalisation the classifier expects.
    #[arg(long, value_enum, default_value = "imagenet")]
    normalize: Normalize,
    /// The classifier takes BGR input instead of RGB.
    #[arg(long)]
    bgr: bool,
    /// The backbone's name for the manifest [default: the file's name].
    #[arg(long)]
    backbone: Option<String>,
    /// The training data's name for the manifest.
    #[arg(long, default_value = "unknown")]
    dataset: String,
}

/// Runs `csra-host graft`.
pub fn run(args: GraftArgs) -> anyhow::Result<ExitCode> {
    let labels = match args.labels.as_str() {
        "coco" => LabelSet::coco(),
        "voc" => LabelSet::voc(),
        "wider" => LabelSet::wider(),
        path => LabelSet::read(path.as_ref())?,
    };
    let files = ExportFiles::in_dir(&args.out);
    std::fs::create_dir_all(&files.dir).with_context(|| {
        format!(
            "cannot create the output folder {}; choose a writable --out folder",
            files.dir.display()
        )
    })?;
    let source = args.model.display().to_string();
    let backbone = args.backbone.clone().unwrap_or_else(|| {
        args.model
            .file_stem()
            .map_or_else(|| source.clone(), |s| s.to_string_lossy().into_owned())
    });
    let target = GraftTarget {
        path: files.model.clone(),
        labels: labels.clone(),
        provenance: Provenance {
            backbone,
            dataset: args.dataset.clone(),
            epochs: 0,
            commit: None,
            created_by: csra_host::created_by(),
            note: Some(format!(
                "training-free max head (mean + {}·max) grafted onto the classifier tail of {source}",
                args.lambda
            )),
        },
        preprocess: args.normalize.preprocess(),
        color: if args.bgr {
            ColorOrder::Bgr
        } else {
            ColorOrder::Rgb
        },
        outputs: OutputNames::default(),
    };
    let grafted = graft_max(&args.model, args.logits.as_deref(), args.lambda, &target)?;
    labels.write(&files.labels)?;
    // The edge runs it in tract: make sure tract takes it before calling it done.
    let tract = TractModel::load(&grafted.model_path, &grafted.manifest.outputs.logits)?;
    let [c, h, w] = tract.image_shape();
    tract.logits(&vec![0.0; c * h * w], 1)?;
    outln!(
        "{}: {} on feature map `{}` {}×{}×{}; runs in tract",
        grafted.model_path.display(),
        grafted.manifest.head,
        grafted.feature,
        grafted.feature_shape.channels,
        grafted.feature_shape.height,
        grafted.feature_shape.width
    )?;
    Ok(ExitCode::SUCCESS)
}
