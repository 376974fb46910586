//! `csra-host explain`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use csra_host::evaluate::sigmoid;
use csra_image::overlay::{caption, overlay_attention};
use tch::Device;

use super::common::{collect_images, image_input, load_model, to_vec, DeviceArgs, LoadedModel};

/// `csra-host explain` flags.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A checkpoint .json, or a run directory (its latest checkpoint).
    checkpoint: PathBuf,
    /// Images, folders or glob patterns.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Where the PNGs go (`<image>_<class>.png`).
    #[arg(long, short)]
    out: PathBuf,
    /// Classes to show (repeatable); default: each image's most probable ones.
    #[arg(long = "class")]
    classes: Vec<String>,
    /// How many of the most probable classes to show when --class is not given.
    #[arg(long, default_value_t = 3)]
    top: usize,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Runs `csra-host explain`.
pub fn run(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let device = args.device.device()?;
    let loaded = load_model(&args.checkpoint, device, None)?;
    let classes = &loaded.checkpoint.meta.classes;
    let chosen: Vec<usize> = args
        .classes
        .iter()
        .map(|name| {
            classes.iter().position(|c| c == name).with_context(|| {
                format!(
                    "--class {name}: the model has no such class (it knows: {})",
                    classes.join(", ")
                )
            })
        })
        .collect::<anyhow::Result<_>>()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut failed = 0usize;
    for path in collect_images(&args.inputs)? {
        if let Err(err) = explain_image(&args, &loaded, &chosen, &path, device) {
            failed += 1;
            log::error!("{err:#}");
        }
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn explain_image(
    args: &ExplainArgs,
    loaded: &LoadedModel,
    chosen: &[usize],
    path: &Path,
    device: Device,
) -> anyhow::Result<()> {
    let meta = &loaded.checkpoint.meta;
    let (image, input) = image_input(loaded, path, device)?;
    let (logits, attention) = tch::no_grad(|| loaded.model.forward_with_attention(&input));
    let logits = to_vec(&logits)?;
    let dims = attention.size();
    let [_, _, h, w] = dims.as_slice() else {
        bail!("attention has shape {dims:?}, expected [1, C, h, w]");
    };
    let (h, w) = (usize::try_from(*h)?, usize::try_from(*w)?);
    let classes = if chosen.is_empty() {
        top_classes(&logits, args.top)
    } else {
        chosen.to_vec()
    };
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("image");
    for class in classes {
        let map = to_vec(&attention.get(0).get(class as i64))?;
        let mut picture = overlay_attention(&image, &map, (h, w))?;
        let name = &meta.classes[class];
        caption(
            &mut picture,
            &format!("{name} {:.2}", sigmoid(logits[class])),
        )?;
        let out = args
            .out
            .join(format!("{stem}_{}.png", name.replace([' ', '/'], "_")));
        let mut bytes = Vec::new();
        picture
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .with_context(|| format!("cannot encode {}", out.display()))?;
        csra_core::fsutil::write_atomic(&out, &bytes)
            .with_context(|| format!("cannot write {}", out.display()))?;
        outln!("{}", out.display())?;
    }
    Ok(())
}

fn top_classes(logits: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    order.truncate(k);
    order
}
