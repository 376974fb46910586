//! `csra-host import`: a CSRA checkpoint trained in PyTorch becomes a run directory that
//! `eval`, `predict`, `explain` and `export` read like one `train` wrote.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use csra_core::LabelSet;
use csra_host::import::{import_checkpoint, ImportOptions, ImportReport, Imported};
use csra_host::train::{checkpoint, CheckpointMeta, Progress, Recipe};
use csra_host::Arch;
use csra_onnx::graft::labels_from_arg;
use serde::Serialize;
use tch::Tensor;

use super::common::Normalize;

/// The checkpoint name an import writes (`imported.json`, `imported.safetensors`).
const CHECKPOINT_NAME: &str = "imported";

/// What `import --help` adds after the flags.
const AFTER_HELP: &str = "\
Reads, without running any Python:
  - the official CSRA repository's checkpoints, torch.save(model.state_dict()) of ResNet_CSRA:
    torchvision names (conv1.weight, layer1.0.conv1.weight, ...) and
    classifier.multi_head.N.head.weight [C, 2048, 1, 1];
  - mmpretrain's CSRA checkpoints, {\"meta\": ..., \"state_dict\": ...}: backbone.<torchvision
    name> and head.csra_heads.N.head.weight; their class names are taken from the metadata;
  - either one nested under \"state_dict\" or \"model\", with a DataParallel \"module.\" prefix,
    or as a .safetensors file of the same names.
The head count H comes from the number of heads (temperatures as the official code: 1: [1];
2: [1, 99]; 4: [1, 2, 4, 99]; 6: [1..5, 99]; 8: [1..7, 99]), the class count from their shape.
λ is not saved in these files: pass the model's --lambda (the official --lam; default 0.1).

Example:
  csra-host import resnet101_voc07_head1_lam0.1_94.7.pth --out runs/official-voc --classes voc
  csra-host predict runs/official-voc photo.jpg
  csra-host export runs/official-voc --out exported/";

/// `csra-host import` flags.
#[derive(Debug, Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct ImportArgs {
    /// The PyTorch checkpoint (.pth, .pt or .safetensors).
    checkpoint: PathBuf,
    /// The run directory to write: imported.json, imported.safetensors and latest.json.
    #[arg(long, short)]
    out: PathBuf,
    /// The backbone: resnet18, resnet34, resnet50, resnet101 or mobilenet_v2 [default:
    /// inferred from the block counts].
    #[arg(long)]
    arch: Option<Arch>,
    /// λ the model was trained with (the official --lam; mmpretrain's `lam`).
    #[arg(long, default_value_t = 0.1)]
    lambda: f32,
    /// The classes in output order: voc, coco, wider, or a file with one name per line
    /// [default: the names an mmpretrain checkpoint records].
    #[arg(long)]
    classes: Option<String>,
    /// The pixel normalisation the model was trained with (both the official code and
    /// mmpretrain's CSRA config feed RGB in [0, 1]).
    #[arg(long, value_enum, default_value = "official")]
    normalize: Normalize,
    /// Square input side the model was trained at.
    #[arg(long, default_value_t = 448)]
    image_size: u32,
    /// Print the whole report (every tensor used and left over) as JSON.
    #[arg(long)]
    json: bool,
}

/// The report `--json` prints.
#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    checkpoint: &'a Path,
    source: String,
    arch: &'a str,
    head: String,
    num_classes: usize,
    classes: &'a [String],
    nested_under: Option<&'a str>,
    data_parallel: bool,
    used: Vec<JsonTensor<'a>>,
    left_over: Vec<JsonTensor<'a>>,
    other_entries: Vec<[&'a str; 2]>,
}

#[derive(Debug, Serialize)]
struct JsonTensor<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<&'a str>,
    shape: &'a [i64],
}

/// Runs `csra-host import`.
pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    if args.out.join(checkpoint::LATEST).exists() {
        bail!(
            "{} already holds a run; choose another --out",
            args.out.display()
        );
    }
    let imported = import_checkpoint(
        &args.checkpoint,
        &ImportOptions {
            arch: args.arch,
            lambda: args.lambda,
        },
    )?;
    let classes = class_names(&args, &imported)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let meta = meta(&args, &imported, classes);
    let mut tensors: Vec<(String, Tensor)> = imported.vs.variables().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let written = checkpoint::write(&args.out, CHECKPOINT_NAME, &meta, &tensors)?;
    if args.json {
        print_json(&imported.report, &meta, &written)?;
    } else {
        print_summary(&imported.report, &meta, &written)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--classes`, or the checkpoint's own names; either must have one name per class.
fn class_names(args: &ImportArgs, imported: &Imported) -> anyhow::Result<Vec<String>> {
    let path = &imported.report.path;
    let wanted = imported.model.num_classes;
    let (names, origin) = match (&args.classes, &imported.report.classes) {
        (Some(arg), _) => (
            labels_from_arg(arg)?.names().to_vec(),
            format!("--classes {arg}"),
        ),
        (None, Some(names)) => (
            LabelSet::new(names.iter().cloned(), "the checkpoint's meta")?
                .names()
                .to_vec(),
            "the checkpoint's meta".to_owned(),
        ),
        (None, None) => bail!(
            "{}: the checkpoint has {wanted} classes but does not name them; pass --classes \
             voc, coco, wider or a file with one name per line",
            path.display()
        ),
    };
    if names.len() != wanted {
        bail!(
            "{}: the head has {wanted} classes but {origin} names {}; pass the class list \
             the model was trained with",
            path.display(),
            names.len()
        );
    }
    Ok(names)
}

/// The description of an imported checkpoint: the network and its input, and honestly no
/// training done here (no epochs, no history, no validation data).
fn meta(args: &ImportArgs, imported: &Imported, classes: Vec<String>) -> CheckpointMeta {
    CheckpointMeta {
        format: checkpoint::FORMAT.into(),
        version: checkpoint::VERSION,
        weights: String::new(),
        model: imported.model.clone(),
        classes,
        image_size: args.image_size,
        preprocess: args.normalize.preprocess(),
        recipe: Recipe::official(0),
        progress: Progress::default(),
        history: Vec::new(),
        train_data: Vec::new(),
        class_mapping: Vec::new(),
        val_data: None,
        created_by: csra_host::created_by(),
    }
}

fn print_summary(
    report: &ImportReport,
    meta: &CheckpointMeta,
    written: &Path,
) -> std::io::Result<()> {
    let model = &meta.model;
    outln!("{}: {}", report.path.display(), report.origin)?;
    if let Some(key) = &report.nested_under {
        let others: Vec<String> = report
            .other_entries
            .iter()
            .map(|(k, v)| format!("{k} ({v})"))
            .collect();
        outln!(
            "  state dict under {key:?}; skipped: {}",
            if others.is_empty() {
                "nothing".to_owned()
            } else {
                others.join(", ")
            }
        )?;
    }
    if report.data_parallel {
        outln!("  dropped the DataParallel prefix \"module.\"")?;
    }
    let inferred = if report.arch_inferred {
        " (inferred from the block counts)"
    } else {
        ""
    };
    outln!("  backbone {}{inferred}", model.arch)?;
    outln!("  head {}, {} classes", model.head, model.num_classes)?;
    let (head, backbone): (Vec<_>, Vec<_>) = report
        .used
        .iter()
        .partition(|u| u.to.starts_with(csra_host::HEAD_PREFIX));
    outln!("  used {} tensors:", report.used.len())?;
    outln!(
        "    {} backbone tensors (e.g. {} → {})",
        backbone.len(),
        backbone.first().map_or("", |u| u.from.as_str()),
        backbone.first().map_or("", |u| u.to.as_str())
    )?;
    for used in head {
        outln!("    {} {:?} → {}", used.from, used.shape, used.to)?;
    }
    if report.left_over.is_empty() {
        outln!("  left over: none")?;
    } else {
        outln!("  left over (not part of the model):")?;
        for (name, shape) in &report.left_over {
            outln!("    {name} {shape:?}")?;
        }
    }
    outln!("{}", written.display())
}

fn print_json(report: &ImportReport, meta: &CheckpointMeta, written: &Path) -> anyhow::Result<()> {
    let json = JsonReport {
        checkpoint: written,
        source: report.origin.to_string(),
        arch: meta.model.arch.name(),
        head: meta.model.head.to_string(),
        num_classes: meta.model.num_classes,
        classes: &meta.classes,
        nested_under: report.nested_under.as_deref(),
        data_parallel: report.data_parallel,
        used: report
            .used
            .iter()
            .map(|u| JsonTensor {
                name: &u.from,
                to: Some(u.to.as_str()),
                shape: &u.shape,
            })
            .collect(),
        left_over: report
            .left_over
            .iter()
            .map(|(name, shape)| JsonTensor {
                name,
                to: None,
                shape,
            })
            .collect(),
        other_entries: report
            .other_entries
            .iter()
            .map(|(k, v)| [k.as_str(), v.as_str()])
            .collect(),
    };
    outln!("{}", serde_json::to_string_pretty(&json)?)?;
    Ok(())
}
