//! `csra-edge graft MODEL --out DIR --labels L`: any ONNX classifier with a GAP + FC tail becomes
//! the training-free Max head, with the flags of `csra-host graft`, in a build without libtorch.
//! The work is `csra_onnx::graft::graft_command`; this file only maps the flags.

use std::path::PathBuf;

use clap::Args;
use csra_core::manifest::ColorOrder;
use csra_onnx::graft::{
    graft_command, labels_from_arg, GraftOptions, Normalization, DEFAULT_MAX_LAMBDA,
};

/// `csra-edge graft` flags, the same as `csra-host graft`'s.
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
    /// The pixel normalisation the classifier expects: official, tf or imagenet.
    #[arg(long, default_value = "imagenet")]
    normalize: Normalization,
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

/// Runs `csra-edge graft`.
pub fn run(args: GraftArgs) -> anyhow::Result<()> {
    let options = GraftOptions {
        labels: labels_from_arg(&args.labels)?,
        preprocess: args.normalize.preprocess(),
        color: if args.bgr {
            ColorOrder::Bgr
        } else {
            ColorOrder::Rgb
        },
        model: args.model,
        out: args.out,
        lambda: args.lambda,
        logits: args.logits,
        backbone: args.backbone,
        dataset: args.dataset,
        created_by: format!("csra-edge {}", env!("CARGO_PKG_VERSION")),
    };
    let grafted = graft_command(&options)?;
    println!(
        "{}: {} on feature map `{}` {}×{}×{}; runs in tract",
        grafted.model_path.display(),
        grafted.manifest.head,
        grafted.feature,
        grafted.feature_shape.channels,
        grafted.feature_shape.height,
        grafted.feature_shape.width
    );
    Ok(())
}
