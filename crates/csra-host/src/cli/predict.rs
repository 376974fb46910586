//! `csra-host predict`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use csra_host::evaluate::sigmoid;
use serde::Serialize;
use tch::Device;

use super::common::{
    collect_images, image_input, load_model, to_vec, DeviceArgs, HeadArgs, LoadedModel,
};

/// `csra-host predict` flags.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// A checkpoint .json, or a run directory (its latest checkpoint).
    checkpoint: PathBuf,
    /// Images, folders or glob patterns (quote globs: 'photos/*.jpg').
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Report labels with at least this probability.
    #[arg(long, default_value_t = 0.5)]
    threshold: f32,
    /// At most this many labels per image.
    #[arg(long)]
    top_k: Option<usize>,
    /// One JSON object per image on stdout.
    #[arg(long)]
    json: bool,
    /// Another head on the same weights (e.g. `--head max --lambda 0.2`).
    #[command(flatten)]
    head: HeadArgs,
    #[command(flatten)]
    device: DeviceArgs,
}

/// One image's labels, as printed with `--json`.
#[derive(Debug, Serialize)]
struct ImageLabels {
    image: PathBuf,
    labels: Vec<Label>,
}

#[derive(Debug, Serialize)]
struct Label {
    label: String,
    probability: f32,
}

/// Runs `csra-host predict`. Images that cannot be read are reported and skipped; the exit code
/// is 1 when any was.
pub fn run(args: PredictArgs) -> anyhow::Result<ExitCode> {
    let device = args.device.device()?;
    let loaded = load_model(&args.checkpoint, device, args.head.spec()?)?;
    let mut failed = 0usize;
    for path in collect_images(&args.inputs)? {
        match probabilities(&loaded, &path, device) {
            Ok(probs) => print(&args, &loaded, path, &probs)?,
            Err(err) => {
                failed += 1;
                log::error!("{err:#}");
            }
        }
    }
    if failed > 0 {
        log::error!("{failed} image(s) could not be read");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Every class's probability for one image, preprocessed as in training.
fn probabilities(loaded: &LoadedModel, path: &Path, device: Device) -> anyhow::Result<Vec<f32>> {
    let (_, input) = image_input(loaded, path, device)?;
    let logits = tch::no_grad(|| loaded.model.forward_t(&input, false));
    Ok(to_vec(&logits)?.into_iter().map(sigmoid).collect())
}

fn print(
    args: &PredictArgs,
    loaded: &LoadedModel,
    image: PathBuf,
    probs: &[f32],
) -> std::io::Result<()> {
    let classes = &loaded.checkpoint.meta.classes;
    let mut labels: Vec<Label> = probs
        .iter()
        .zip(classes)
        .filter(|(p, _)| **p >= args.threshold)
        .map(|(&probability, label)| Label {
            label: label.clone(),
            probability,
        })
        .collect();
    labels.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    if let Some(k) = args.top_k {
        labels.truncate(k);
    }
    let result = ImageLabels { image, labels };
    if args.json {
        let line = serde_json::to_string(&result).map_err(std::io::Error::other)?;
        return outln!("{line}");
    }
    let text: Vec<String> = result
        .labels
        .iter()
        .map(|l| format!("{} {:.2}", l.label, l.probability))
        .collect();
    outln!("{}: {}", result.image.display(), text.join(", "))
}
