//! Arguments and helpers several subcommands share.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use csra_core::manifest::Preprocess;
use csra_core::{HeadSpec, HeadVariant};
use csra_host::data_source::{DataFormat, DataSource, DataSpec, Role};
use csra_host::train::Checkpoint;
use csra_host::CsraModel;
use csra_onnx::graft::Normalization;
use tch::nn::VarStore;
use tch::Device;

/// Where the model runs.
#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// `auto` (CUDA when present), `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// libtorch compute threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Image-decoding threads (default: all cores).
    #[arg(long)]
    pub workers: Option<usize>,
}

impl DeviceArgs {
    /// Applies the thread count and resolves the device.
    pub fn device(&self) -> anyhow::Result<Device> {
        if let Some(threads) = self.threads {
            tch::set_num_threads(i32::try_from(threads.max(1)).unwrap_or(i32::MAX));
        }
        let device = match self.device.as_str() {
            "auto" => Device::cuda_if_available(),
            "cpu" => Device::Cpu,
            "cuda" => Device::Cuda(0),
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Device::Cuda(n),
                _ => bail!("--device {other}: expected auto, cpu, cuda or cuda:N"),
            },
        };
        if let Device::Cuda(n) = device {
            let available = tch::Cuda::device_count();
            if i64::try_from(n).map_or(true, |n| n >= available) {
                bail!(
                    "--device {}: this machine has {available} CUDA device(s); use --device cpu",
                    self.device
                );
            }
        }
        log::info!(
            "device {device:?}, {} libtorch threads",
            tch::get_num_threads()
        );
        Ok(device)
    }

    /// Decoding threads: the flag, or every core.
    pub fn workers(&self) -> usize {
        self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        })
    }
}

/// The pixel normalisation, which must match the pretrained weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Normalize {
    /// RGB in [0, 1], no mean or std: the official CSRA pipeline.
    Official,
    /// `x / 127.5 − 1`: TensorFlow-trained weights, such as the shipped MobileNetV2.
    Tf,
    /// ImageNet mean and std: torchvision's own weights.
    Imagenet,
}

impl Normalize {
    /// The squash-resize pipeline with this normalisation (csra-onnx's table, which the
    /// libtorch-free `graft` commands share).
    pub fn preprocess(self) -> Preprocess {
        Normalization::from(self).preprocess()
    }
}

impl From<Normalize> for Normalization {
    fn from(normalize: Normalize) -> Self {
        match normalize {
            Normalize::Official => Self::Official,
            Normalize::Tf => Self::Tf,
            Normalize::Imagenet => Self::Imagenet,
        }
    }
}

/// The head to build or to evaluate with.
#[derive(Debug, Args)]
pub struct HeadArgs {
    /// csra (the paper's multi-head attention), max (`mean + λ·max`, training-free) or baseline
    /// (GAP + FC).
    #[arg(long = "head", value_enum, ignore_case = true)]
    pub variant: Option<VariantArg>,
    /// Attention heads for `csra`: 1, 2, 4, 6 or 8 (the paper's temperature lists).
    #[arg(long)]
    pub heads: Option<usize>,
    /// λ, the weight of the attention logits.
    #[arg(long)]
    pub lambda: Option<f32>,
    /// Leave the CSRA class rows unnormalised (the paper's Table 8 ablation; it normalises
    /// them by default, for faster convergence).
    #[arg(long)]
    pub no_normalize: bool,
}

/// `--head` and `export --variant`: csra-core's [`HeadVariant`] as clap lists and parses it
/// (csra-core stays free of clap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VariantArg {
    /// The paper's multi-head class-specific residual attention.
    Csra,
    /// `mean + λ·max`, training-free.
    Max,
    /// Global average pooling, then the classifier (GAP + FC).
    #[value(alias = "gap")]
    Baseline,
}

impl From<VariantArg> for HeadVariant {
    fn from(variant: VariantArg) -> HeadVariant {
        match variant {
            VariantArg::Csra => HeadVariant::Csra,
            VariantArg::Max => HeadVariant::Max,
            VariantArg::Baseline => HeadVariant::Baseline,
        }
    }
}

impl HeadArgs {
    /// The spec these flags ask for, or `None` when no flag was given.
    pub fn spec(&self) -> anyhow::Result<Option<HeadSpec>> {
        let Some(variant) = self.variant.map(HeadVariant::from) else {
            if self.heads.is_some() || self.lambda.is_some() || self.no_normalize {
                bail!("--heads, --lambda and --no-normalize need --head csra|max|baseline");
            }
            return Ok(None);
        };
        let spec = match variant {
            HeadVariant::Csra => {
                HeadSpec::csra(self.heads.unwrap_or(1), self.lambda.unwrap_or(0.1))?
            }
            HeadVariant::Max => HeadSpec::max(self.lambda.unwrap_or(0.2))?,
            HeadVariant::Baseline => HeadSpec::baseline(),
        };
        if variant != HeadVariant::Csra && (self.heads.is_some() || self.no_normalize) {
            bail!("--heads and --no-normalize apply to --head csra only");
        }
        Ok(Some(if self.no_normalize {
            spec.with_normalize(false)
        } else {
            spec
        }))
    }
}

/// A dataset split named on the command line.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// A dataset folder (COCO: annotations/instances_<split>.json; VOC: ImageSets/Main/ and
    /// JPEGImages/), DIR:SPLIT, or a data spec .toml; `train` takes it more than once.
    #[arg(long)]
    pub data: Vec<PathBuf>,
    /// The split inside --data folders that do not name one [default: COCO train2017 or the
    /// one train* split for training, val2017 or val*/test* for evaluation; VOC trainval, test].
    #[arg(long)]
    pub split: Option<String>,
    /// The annotation format, instead of --data.
    #[arg(long, value_enum)]
    pub format: Option<DataFormat>,
    /// The annotation file or folder, with --format.
    #[arg(long)]
    pub annotations: Option<PathBuf>,
    /// The image folder, with --format.
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Class names, one per line (JSON and CSV lists).
    #[arg(long)]
    pub labels: Option<PathBuf>,
}

/// The sources `--data` or `--format` name, and the class list a data spec gives.
pub struct NamedData {
    /// The sources, in order.
    pub sources: Vec<DataSource>,
    /// A spec's `classes` file.
    pub classes: Option<PathBuf>,
}

impl DataArgs {
    /// Every source these flags name (empty when none was given).
    pub fn sources(&self, role: Role) -> anyhow::Result<NamedData> {
        let mut named = NamedData {
            sources: Vec::new(),
            classes: None,
        };
        match (self.data.as_slice(), self.format) {
            ([], Some(format)) => {
                let annotations = self
                    .annotations
                    .clone()
                    .context("--format needs --annotations FILE")?;
                let images = self.images.clone().unwrap_or_else(|| PathBuf::from("."));
                named.sources.push(DataSource {
                    format,
                    annotations,
                    images,
                    split: self.split.clone(),
                    labels: self.labels.clone(),
                });
            }
            ([], None) => {}
            (_, Some(_)) => bail!("give either --data DIR or --format with --annotations"),
            (values, None) => {
                for value in values {
                    if value.extension().is_some_and(|e| e == "toml") && value.is_file() {
                        let spec = DataSpec::read(value)?;
                        named.sources.extend(spec.sources);
                        named.classes = named.classes.or(spec.classes);
                    } else {
                        named.sources.push(DataSource::parse_arg(
                            value,
                            self.split.as_deref(),
                            role,
                        )?);
                    }
                }
            }
        }
        Ok(named)
    }

    /// The one source these flags name; `None` when none was given.
    pub fn source(&self, role: Role) -> anyhow::Result<Option<DataSource>> {
        let mut named = self.sources(role)?;
        if named.sources.len() > 1 {
            bail!(
                "this command scores one dataset at a time, and --data names {}",
                named.sources.len()
            );
        }
        Ok(named.sources.pop())
    }
}

/// A trained model read back from a checkpoint, optionally with another head.
pub struct LoadedModel {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Keeps the variables alive.
    pub _vs: VarStore,
    /// The network, in eval mode when called with `train = false`.
    pub model: CsraModel,
}

/// Reads `path` (a checkpoint `.json` or a run directory) onto `device`.
pub fn load_model(
    path: &Path,
    device: Device,
    head: Option<HeadSpec>,
) -> anyhow::Result<LoadedModel> {
    let checkpoint = Checkpoint::read(path)?;
    let mut vs = VarStore::new(device);
    let mut model = CsraModel::new(&vs.root(), &checkpoint.meta.model)?;
    checkpoint.restore(&mut vs)?;
    if let Some(spec) = head {
        model = model.with_head_spec(spec).with_context(|| {
            format!(
                "{}: cannot evaluate with another head",
                checkpoint.path.display()
            )
        })?;
    }
    Ok(LoadedModel {
        checkpoint,
        _vs: vs,
        model,
    })
}

/// Reads one image and makes the `[1, 3, S, S]` input the checkpoint was trained on.
pub fn image_input(
    loaded: &LoadedModel,
    path: &Path,
    device: Device,
) -> anyhow::Result<(image::RgbImage, tch::Tensor)> {
    let meta = &loaded.checkpoint.meta;
    let image = csra_image::load_rgb(path)?;
    let size = meta.image_size;
    let pixels = csra_image::preprocess_image(&image, (size, size), &meta.preprocess)?;
    let input = tch::Tensor::from_slice(&pixels)
        .f_view([1, 3, i64::from(size), i64::from(size)])?
        .to_device(device);
    Ok((image, input))
}

/// A tensor's values as a flat `f32` vector on the CPU.
pub fn to_vec(t: &tch::Tensor) -> anyhow::Result<Vec<f32>> {
    Ok(Vec::try_from(
        t.to_kind(tch::Kind::Float)
            .to_device(Device::Cpu)
            .flatten(0, -1),
    )?)
}

/// Image files from paths, folders (their images, sorted) and glob patterns.
pub fn collect_images(inputs: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for input in inputs {
        let path = Path::new(input);
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_image(p))
                .collect();
            entries.sort();
            found.extend(entries);
        } else if path.exists() {
            found.push(path.to_path_buf());
        } else if input.contains(['*', '?', '[']) {
            let matches = glob::glob(input).with_context(|| format!("bad pattern {input}"))?;
            found.extend(matches.filter_map(Result::ok).filter(|p| is_image(p)));
        } else {
            bail!("{input}: no such file, folder or pattern");
        }
    }
    if found.is_empty() {
        bail!("no images found in {}", inputs.join(", "));
    }
    Ok(found)
}

fn is_image(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        matches!(
            e.to_ascii_lowercase().as_str(),
            "jpg" | "jpeg" | "png" | "bmp"
        )
    })
}
