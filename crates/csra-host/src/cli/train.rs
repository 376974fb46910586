//! `csra-host train`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use csra_core::{Dataset, HeadSpec, LabelSet};
use csra_host::data::Augment;
use csra_host::data_source::{describe_sources, read_mixed, DataFormat, DataSource, Role};
use csra_host::train::{self, Checkpoint, LrSchedule, Outcome, Recipe, TrainJob};
use csra_host::{Arch, ModelConfig};

use super::common::{DataArgs, DeviceArgs, HeadArgs, Normalize};

/// `csra-host train` flags.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training data: --data DIR[:SPLIT] (COCO or VOC layout), repeated to train on several
    /// datasets, or a data spec .toml; or one --format/--annotations/--images source.
    #[command(flatten)]
    data: DataArgs,
    /// The training classes, one per line [default: the first source's]. Sources are mapped
    /// onto them by name (VOC's aeroplane→airplane, motorbike→motorcycle, sofa→couch,
    /// tvmonitor→tv, ...); a class a source does not label is ignored in the loss for its
    /// images, and a source's classes that are not listed are dropped.
    #[arg(long)]
    classes: Option<PathBuf>,
    /// Validation data: a folder, DIR:SPLIT or a spec of one source, mapped onto the training
    /// classes [default: the first --data folder's evaluation split].
    #[arg(long)]
    val_data: Option<PathBuf>,
    /// The validation split inside the first --data folder (default: val2017 for COCO, test
    /// for VOC).
    #[arg(long)]
    val_split: Option<String>,
    /// Validation annotations, with --format (same format as the training data).
    #[arg(long)]
    val_annotations: Option<PathBuf>,
    /// Validation images, with --val-annotations.
    #[arg(long)]
    val_images: Option<PathBuf>,
    /// Skip validation after each epoch.
    #[arg(long)]
    no_val: bool,

    /// Backbone: resnet18, resnet34, resnet50, resnet101 or mobilenet_v2.
    #[arg(long, default_value = "resnet101")]
    arch: Arch,
    /// ImageNet weights for the backbone: a torchvision .pth or .safetensors state dict.
    #[arg(long)]
    pretrained: Option<PathBuf>,
    #[command(flatten)]
    head: HeadArgs,
    /// Keep BatchNorm statistics fixed (eval mode) while training; needed for weights whose
    /// BatchNorm was folded into the convolutions, such as the shipped MobileNetV2.
    #[arg(long)]
    freeze_bn: bool,
    /// Input normalisation; must match the pretrained weights.
    #[arg(long, value_enum, default_value = "official")]
    normalize: Normalize,

    /// Epochs [default: 30, or the resumed run's].
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per step.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Square input side (the paper: 448 for VOC and COCO).
    #[arg(long, default_value_t = 448)]
    image_size: u32,
    /// Backbone learning rate.
    #[arg(long, default_value_t = 0.01)]
    lr_backbone: f64,
    /// Head learning rate.
    #[arg(long, default_value_t = 0.1)]
    lr_head: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    momentum: f64,
    /// Weight decay.
    #[arg(long, default_value_t = 1e-4)]
    weight_decay: f64,
    /// Linear warm-up epochs.
    #[arg(long, default_value_t = 2)]
    warmup_epochs: usize,
    /// Multiply the learning rates by --gamma every this many epochs.
    #[arg(long, default_value_t = 4)]
    step_size: usize,
    /// Step-decay factor.
    #[arg(long, default_value_t = 0.1)]
    gamma: f64,
    /// Seed for initialisation, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Mixed precision (float16 autocast with loss scaling) on CUDA.
    #[arg(long)]
    amp: bool,
    /// Keep convolutions in the NCHW layout instead of channels-last (NHWC), which is faster
    /// on CPU with oneDNN.
    #[arg(long)]
    no_channels_last: bool,
    /// Stop each epoch after this many steps (smoke tests).
    #[arg(long)]
    max_steps_per_epoch: Option<usize>,
    /// Keep up to this many MiB of decoded pictures per split in memory, so later epochs skip
    /// JPEG decoding (0 decodes every picture every epoch).
    #[arg(long, default_value_t = 4096)]
    cache_mb: usize,
    #[command(flatten)]
    device: DeviceArgs,

    /// The run directory: checkpoints, train-log.jsonl, training.png.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Continue a run from its directory or a checkpoint .json; its settings are kept, except
    /// --epochs when given explicitly.
    #[arg(long)]
    resume: Option<PathBuf>,
}

/// Runs `csra-host train`.
pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let device = args.device.device()?;
    let job = match &args.resume {
        Some(path) => resumed_job(&args, path, device)?,
        None => fresh_job(&args, device)?,
    };
    log::info!(
        "training {} ({:?} head, λ {}) on {} for {} epochs into {}",
        job.model.arch,
        job.model.head.variant(),
        job.model.head.lambda(),
        describe_sources(&job.train_data),
        job.recipe.epochs,
        job.out_dir.display()
    );
    let stop = interrupt_flag()?;
    match train::run(job, &stop)? {
        Outcome::Finished(path) => {
            outln!("{}", path.display())?;
            Ok(ExitCode::SUCCESS)
        }
        Outcome::Interrupted(path) => {
            log::warn!("interrupted; resume with --resume {}", path.display());
            outln!("{}", path.display())?;
            Ok(ExitCode::from(130))
        }
    }
}

fn fresh_job(args: &TrainArgs, device: tch::Device) -> anyhow::Result<TrainJob> {
    let out_dir = args
        .out
        .clone()
        .context("name the run directory with --out DIR")?;
    if out_dir.join(train::checkpoint::LATEST).exists() {
        bail!(
            "{} already holds a run; continue it with --resume {0} or choose another --out",
            out_dir.display()
        );
    }
    let named = args.data.sources(Role::Train)?;
    if named.sources.is_empty() {
        bail!("name the training data: --data DIR (repeated for several), or --format with --annotations and --images");
    }
    let classes = args
        .classes
        .as_ref()
        .or(named.classes.as_ref())
        .map(|path| LabelSet::read(path))
        .transpose()?;
    let mixed = read_mixed(&named.sources, classes.as_ref())?;
    let val_data = if args.no_val {
        None
    } else {
        val_source(args, &named.sources[0])?
    };
    let val_set = read_val(val_data.as_ref(), &mixed.dataset.classes)?;
    let head = args
        .head
        .spec()?
        .map_or_else(|| HeadSpec::csra(1, 0.1), Ok)?;
    Ok(TrainJob {
        model: ModelConfig {
            arch: args.arch,
            head,
            num_classes: mixed.dataset.classes.len(),
            freeze_bn: args.freeze_bn,
        },
        recipe: Recipe {
            epochs: args.epochs.unwrap_or(30),
            batch_size: args.batch_size,
            lr_backbone: args.lr_backbone,
            lr_head: args.lr_head,
            momentum: args.momentum,
            weight_decay: args.weight_decay,
            schedule: LrSchedule {
                warmup_epochs: args.warmup_epochs,
                step_size: args.step_size,
                gamma: args.gamma,
            },
            seed: args.seed,
            amp: args.amp,
        },
        image_size: args.image_size,
        preprocess: args.normalize.preprocess(),
        augment: Augment::official_train(),
        train_data: named.sources,
        class_mapping: mixed.mappings,
        train_set: mixed.dataset,
        val_data,
        val_set,
        pretrained: args.pretrained.clone(),
        out_dir,
        device,
        workers: args.device.workers(),
        channels_last: !args.no_channels_last,
        max_steps_per_epoch: args.max_steps_per_epoch,
        decoded_cache_bytes: args.cache_mb.saturating_mul(1 << 20),
        resume: None,
    })
}

/// The validation split in the training label space.
fn read_val(data: Option<&DataSource>, classes: &LabelSet) -> anyhow::Result<Option<Dataset>> {
    Ok(data
        .map(|data| data.read_onto(classes))
        .transpose()?
        .map(|(dataset, _)| dataset))
}

fn val_source(args: &TrainArgs, train: &DataSource) -> anyhow::Result<Option<DataSource>> {
    if let Some(value) = &args.val_data {
        let data = DataArgs {
            data: vec![value.clone()],
            split: args.val_split.clone(),
            format: None,
            annotations: None,
            images: None,
            labels: None,
        };
        return data.source(Role::Eval);
    }
    if let Some(annotations) = &args.val_annotations {
        return Ok(Some(DataSource {
            annotations: annotations.clone(),
            images: args
                .val_images
                .clone()
                .unwrap_or_else(|| train.images.clone()),
            split: args.val_split.clone().or_else(|| train.split.clone()),
            ..train.clone()
        }));
    }
    let Some(value) = args.data.data.first() else {
        return Ok(None);
    };
    if value.extension().is_some_and(|e| e == "toml") {
        return Ok(None);
    }
    // The folder of `DIR:SPLIT`, or DIR itself.
    let dir = match train.format {
        DataFormat::Coco => train.annotations.parent().and_then(Path::parent),
        DataFormat::Voc => Some(train.annotations.as_path()),
        DataFormat::VocImagesets => train.annotations.parent().and_then(Path::parent),
        _ => None,
    };
    let Some(dir) = dir else {
        return Ok(None);
    };
    Ok(Some(DataSource::detect(
        dir,
        args.val_split.as_deref(),
        Role::Eval,
    )?))
}

fn resumed_job(args: &TrainArgs, path: &Path, device: tch::Device) -> anyhow::Result<TrainJob> {
    let checkpoint = Checkpoint::read(path)?;
    let meta = &checkpoint.meta;
    if meta.train_data.is_empty() {
        bail!(
            "{} records no training data (it was imported, not trained here), so it cannot be \
             resumed; evaluate, predict with or export it instead",
            checkpoint.path.display()
        );
    }
    let out_dir = checkpoint
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut recipe = meta.recipe.clone();
    recipe.epochs = args.epochs.unwrap_or(recipe.epochs);
    let classes = LabelSet::new(meta.classes.iter().cloned(), "the checkpoint's classes")?;
    let mixed = read_mixed(&meta.train_data, Some(&classes))?;
    let val_set = read_val(meta.val_data.as_ref(), &classes)?;
    Ok(TrainJob {
        model: meta.model.clone(),
        recipe,
        image_size: meta.image_size,
        preprocess: meta.preprocess.clone(),
        augment: Augment::official_train(),
        train_data: meta.train_data.clone(),
        class_mapping: mixed.mappings,
        train_set: mixed.dataset,
        val_data: meta.val_data.clone(),
        val_set,
        pretrained: None,
        out_dir,
        device,
        workers: args.device.workers(),
        channels_last: !args.no_channels_last,
        max_steps_per_epoch: args.max_steps_per_epoch,
        decoded_cache_bytes: args.cache_mb.saturating_mul(1 << 20),
        resume: Some(checkpoint),
    })
}

/// The first Ctrl-C or SIGTERM asks training to save and stop after the current step; a
/// second one exits at once.
fn interrupt_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let count = AtomicUsize::new(0);
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if count.fetch_add(1, Ordering::SeqCst) > 0 {
            eprintln!("second interrupt: exiting without saving");
            std::process::exit(130);
        }
        eprintln!("interrupt: finishing this step and saving a checkpoint (again to abort)");
        flag.store(true, Ordering::SeqCst);
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(stop)
}
