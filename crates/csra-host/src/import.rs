//! Checkpoints trained in PyTorch elsewhere, renamed onto this crate's parameters: the
//! official CSRA repository's `ResNet_CSRA` (`torch.save(model.state_dict())`) and mmpretrain's
//! `CSRAClsHead` configs (`{"meta": ..., "state_dict": ...}`).
//!
//! Both use torchvision's ResNet names for the backbone, as [`crate::backbone`] does; only the
//! prefixes differ. Each attention head is a bias-free 1×1 convolution `[C, d, 1, 1]`, the
//! same tensor as `head.multi_head.{i}.head.weight` here, and the temperatures follow from
//! the head count as in the official `MHA.temp_settings`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use csra_core::head::{paper_temperatures, HeadError, HeadSpec};
use tch::nn::VarStore;
use tch::{Device, TchError, Tensor};
use thiserror::Error;

use crate::weights::{read_checkpoint, WeightsError};
use crate::{Arch, CsraModel, ModelConfig, ModelError, BACKBONE_PREFIX, HEAD_PREFIX};

/// The prefix `torch.nn.DataParallel` and `DistributedDataParallel` put before every name.
const DATA_PARALLEL_PREFIX: &str = "module.";

/// The code base a checkpoint was written by, told apart by its head's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The official repository (Kevinz-code/CSRA): bare torchvision backbone names and
    /// `classifier.multi_head.{i}.head.weight`.
    Official,
    /// mmpretrain: `backbone.<torchvision name>` and `head.csra_heads.{i}.head.weight`.
    Mmpretrain,
}

impl Origin {
    /// Both origins, in the order they are recognised.
    const ALL: [Origin; 2] = [Origin::Official, Origin::Mmpretrain];

    /// What every backbone tensor's name starts with.
    fn backbone_prefix(self) -> &'static str {
        match self {
            Origin::Official => "",
            Origin::Mmpretrain => "backbone.",
        }
    }

    /// The module that holds the head: every name under it belongs to the head.
    fn head_module(self) -> &'static str {
        match self {
            Origin::Official => "classifier.",
            Origin::Mmpretrain => "head.",
        }
    }

    /// The list of attention heads inside [`Origin::head_module`].
    fn heads_prefix(self) -> &'static str {
        match self {
            Origin::Official => "classifier.multi_head.",
            Origin::Mmpretrain => "head.csra_heads.",
        }
    }

    /// The weight of attention head `i`.
    fn head_weight(self, i: usize) -> String {
        format!("{}{i}.head.weight", self.heads_prefix())
    }

    /// The origin whose heads the names hold, if any.
    fn detect<'a>(names: impl IntoIterator<Item = &'a str> + Clone) -> Option<Origin> {
        Origin::ALL.into_iter().find(|origin| {
            names
                .clone()
                .into_iter()
                .any(|n| n.starts_with(origin.heads_prefix()))
        })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Official => "official CSRA (ResNet_CSRA)",
            Origin::Mmpretrain => "mmpretrain (CSRAClsHead)",
        })
    }
}

/// What the user says about a checkpoint that the file does not.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOptions {
    /// The backbone; inferred from the block counts when `None`.
    pub arch: Option<Arch>,
    /// λ, which the official code takes on the command line and does not save.
    pub lambda: f32,
}

/// One tensor taken from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedTensor {
    /// Its name in the file (after any `module.` prefix was dropped).
    pub from: String,
    /// Its name in this crate's checkpoint.
    pub to: String,
    /// Its shape.
    pub shape: Vec<i64>,
}

/// What an import found, used and left over.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    /// The file.
    pub path: PathBuf,
    /// Whose names it uses.
    pub origin: Origin,
    /// The key a training checkpoint nested the state dict under.
    pub nested_under: Option<String>,
    /// Whether every name carried the `module.` prefix of a data-parallel wrapper.
    pub data_parallel: bool,
    /// Whether the backbone was inferred from the file rather than given.
    pub arch_inferred: bool,
    /// Every model tensor, in this crate's name order.
    pub used: Vec<UsedTensor>,
    /// Tensors of the file the model does not have (a leftover ImageNet `fc`, say), with
    /// their shapes, in file order.
    pub left_over: Vec<(String, Vec<i64>)>,
    /// The checkpoint's top-level entries other than the state dict, described.
    pub other_entries: Vec<(String, String)>,
    /// Class names the checkpoint's metadata records.
    pub classes: Option<Vec<String>>,
}

/// A foreign checkpoint as a model of this crate.
#[derive(Debug)]
pub struct Imported {
    /// The network the weights describe.
    pub model: ModelConfig,
    /// Its variables, on the CPU, set from the file.
    pub vs: VarStore,
    /// What was read.
    pub report: ImportReport,
}

impl From<WeightsError> for ImportError {
    fn from(err: WeightsError) -> Self {
        Self::Weights(Box::new(err))
    }
}

/// A checkpoint that cannot be imported; every message names the file and the fix.
#[derive(Debug, Error)]
pub enum ImportError {
    /// The file cannot be read as a state dict at all (boxed: it is much larger than the
    /// other variants).
    #[error(transparent)]
    Weights(Box<WeightsError>),
    /// No tensor has the name of an official or mmpretrain CSRA head.
    #[error("{}: no CSRA head: expected `classifier.multi_head.N.head.weight` (the official \
             ResNet_CSRA) or `head.csra_heads.N.head.weight` (mmpretrain's CSRAClsHead); the \
             file's names start {first_names}. A plain torchvision classifier is trained with \
             `csra-host train --pretrained`, or given the training-free Max head by \
             `csra-host graft` after ONNX export", path.display())]
    NoHead {
        /// The file.
        path: PathBuf,
        /// The first few names, for the message.
        first_names: String,
    },
    /// The attention heads are not numbered 0..H for a supported H.
    #[error("{}: the file has attention heads {found:?} (from {prefix}N.head.weight); CSRA has \
             1, 2, 4, 6 or 8 heads numbered from 0, so {problem}; save the whole head \
             (model.state_dict()) again", path.display())]
    HeadCount {
        /// The file.
        path: PathBuf,
        /// The head indices present.
        found: Vec<usize>,
        /// The names' prefix.
        prefix: &'static str,
        /// What is wrong with them.
        problem: String,
    },
    /// A head tensor with a shape no CSRA head on this backbone has.
    #[error("{}: {name} is {found:?}, but a CSRA head on {arch} needs [C, {dim}, 1, 1] (a \
             bias-free 1×1 convolution over the backbone's {dim} channels, C the same for \
             every head){hint}", path.display())]
    HeadShape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its shape.
        found: Vec<i64>,
        /// The backbone.
        arch: Arch,
        /// The backbone's channels.
        dim: i64,
        /// Which `--arch` fits better, when one does.
        hint: String,
    },
    /// A tensor in the head module that a CSRA head does not have (a bias, another layer).
    #[error("{}: the head holds {name} {shape:?}, which the CSRA head (bias-free 1×1 \
             convolutions only) does not have; its logits would differ, so it is not imported",
            path.display())]
    ExtraHeadTensor {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its shape.
        shape: Vec<i64>,
    },
    /// The backbone's names fit no supported architecture and none was given.
    #[error("{}: cannot tell the backbone from its names{prefix_note} (expected torchvision \
             ResNet or MobileNetV2 names such as {prefix}layer1.0.conv1.weight); pass --arch \
             resnet18|resnet34|resnet50|resnet101|mobilenet_v2", path.display())]
    UnknownArch {
        /// The file.
        path: PathBuf,
        /// The backbone names' prefix.
        prefix: &'static str,
        /// `under <prefix>` when there is one.
        prefix_note: String,
    },
    /// `--arch` differs from the architecture the block counts show.
    #[error("{}: the backbone is a {found} (by its block counts), not {asked}; pass --arch \
             {found} or leave --arch out", path.display())]
    WrongArch {
        /// The file.
        path: PathBuf,
        /// The architecture asked for.
        asked: Arch,
        /// The architecture the names belong to.
        found: Arch,
    },
    /// Backbone tensors the model needs that the file lacks.
    #[error("{}: {} backbone tensors of a {arch} are missing, e.g. {}; the backbone is not a \
             torchvision-style {arch} (deep-stem or avg-down ResNet variants are not \
             supported)", path.display(), missing.len(),
            missing.iter().take(5).cloned().collect::<Vec<_>>().join(", "))]
    Missing {
        /// The file.
        path: PathBuf,
        /// The backbone.
        arch: Arch,
        /// The missing names, as the file would call them.
        missing: Vec<String>,
    },
    /// A backbone tensor whose shape or type differs from the model's.
    #[error("{}: {name} is {found} in the file but a {arch} needs {expected}", path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The backbone.
        arch: Arch,
        /// The tensor, as the file calls it.
        name: String,
        /// The model's shape and type.
        expected: String,
        /// The file's shape and type.
        found: String,
    },
    /// λ or the head count do not make a valid head.
    #[error("{}: {source}", path.display())]
    Head {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: HeadError,
    },
    /// The model cannot be built.
    #[error("{}: {source}", path.display())]
    Model {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: ModelError,
    },
    /// libtorch refused to copy a tensor.
    #[error("{}: cannot copy {name}: {source}", path.display())]
    Tch {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The cause.
        source: TchError,
    },
}

/// The head as the file describes it.
struct HeadLayout {
    heads: usize,
    num_classes: usize,
}

/// Reads an official or mmpretrain CSRA checkpoint (`.pth`, a nested training checkpoint, or
/// `.safetensors` of the same names) into a model of this crate on the CPU.
///
/// # Errors
///
/// [`ImportError`], naming the file and what to change.
pub fn import_checkpoint(path: &Path, options: &ImportOptions) -> Result<Imported, ImportError> {
    let file = read_checkpoint(path)?;
    let (tensors, data_parallel) = strip_data_parallel(file.tensors);
    let names = || tensors.iter().map(|(n, _)| n.as_str());
    let origin = Origin::detect(names()).ok_or_else(|| ImportError::NoHead {
        path: path.to_owned(),
        first_names: first_names(names()),
    })?;
    let (arch, arch_inferred) = backbone_arch(path, origin, names(), options.arch)?;
    let shapes: HashMap<&str, Vec<i64>> = tensors
        .iter()
        .map(|(n, t)| (n.as_str(), t.size()))
        .collect();
    let head = head_layout(path, origin, arch, &shapes)?;
    let spec = HeadSpec::csra(head.heads, options.lambda).map_err(|source| ImportError::Head {
        path: path.to_owned(),
        source,
    })?;
    let model = ModelConfig {
        arch,
        head: spec,
        num_classes: head.num_classes,
        freeze_bn: false,
    };
    let sources: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let (vs, used) = fill(path, origin, &model, &sources)?;
    let taken: BTreeSet<&str> = used.iter().map(|u| u.from.as_str()).collect();
    let left_over = tensors
        .iter()
        .filter(|(name, _)| !taken.contains(name.as_str()))
        .map(|(name, t)| (name.clone(), t.size()))
        .collect();
    Ok(Imported {
        model,
        vs,
        report: ImportReport {
            path: path.to_owned(),
            origin,
            nested_under: file.nested_under,
            data_parallel,
            arch_inferred,
            used,
            left_over,
            other_entries: file.other_entries,
            classes: file.classes,
        },
    })
}

/// Drops the `module.` prefix when every name has it (a model saved inside a data-parallel
/// wrapper); says whether it did.
fn strip_data_parallel(tensors: Vec<(String, Tensor)>) -> (Vec<(String, Tensor)>, bool) {
    let wrapped = !tensors.is_empty()
        && tensors
            .iter()
            .all(|(n, _)| n.starts_with(DATA_PARALLEL_PREFIX));
    if !wrapped {
        return (tensors, false);
    }
    let stripped = tensors
        .into_iter()
        .map(|(n, t)| (n[DATA_PARALLEL_PREFIX.len()..].to_owned(), t))
        .collect();
    (stripped, true)
}

fn first_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let shown: Vec<&str> = names.take(4).collect();
    if shown.is_empty() {
        "with nothing: the state dict is empty".to_owned()
    } else {
        format!("{}, ...", shown.join(", "))
    }
}

/// The backbone: the one its block counts show, checked against `asked`; and whether it was
/// inferred.
fn backbone_arch<'a>(
    path: &Path,
    origin: Origin,
    names: impl Iterator<Item = &'a str>,
    asked: Option<Arch>,
) -> Result<(Arch, bool), ImportError> {
    let prefix = origin.backbone_prefix();
    let head = origin.head_module();
    let backbone = names
        .filter(|n| !n.starts_with(head))
        .filter_map(|n| n.strip_prefix(prefix));
    match (Arch::guess_from_names(backbone), asked) {
        (Some(found), Some(asked)) if found != asked => Err(ImportError::WrongArch {
            path: path.to_owned(),
            asked,
            found,
        }),
        (_, Some(asked)) => Ok((asked, false)),
        (Some(found), None) => Ok((found, true)),
        (None, None) => Err(ImportError::UnknownArch {
            path: path.to_owned(),
            prefix,
            prefix_note: if prefix.is_empty() {
                String::new()
            } else {
                format!(" under {prefix}")
            },
        }),
    }
}

/// The number of heads and classes, from the head's tensors, every one checked.
fn head_layout(
    path: &Path,
    origin: Origin,
    arch: Arch,
    shapes: &HashMap<&str, Vec<i64>>,
) -> Result<HeadLayout, ImportError> {
    let mut indices = BTreeSet::new();
    let mut names: Vec<&&str> = shapes
        .keys()
        .filter(|n| n.starts_with(origin.head_module()))
        .collect();
    names.sort();
    for name in names {
        let index = name
            .strip_prefix(origin.heads_prefix())
            .and_then(|rest| rest.strip_suffix(".head.weight"))
            .and_then(|i| i.parse::<usize>().ok());
        match index {
            Some(i) if origin.head_weight(i) == **name => {
                indices.insert(i);
            }
            _ => {
                return Err(ImportError::ExtraHeadTensor {
                    path: path.to_owned(),
                    name: (*name).to_owned(),
                    shape: shapes.get(*name).cloned().unwrap_or_default(),
                })
            }
        }
    }
    let found: Vec<usize> = indices.into_iter().collect();
    let heads = found.len();
    let problem = if found.iter().enumerate().any(|(i, &j)| i != j) {
        let missing = (0..).find(|i| !found.contains(i)).unwrap_or_default();
        Some(format!("head {missing} is missing"))
    } else if paper_temperatures(heads).is_none() {
        Some(format!("{heads} heads is not one of them"))
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(ImportError::HeadCount {
            path: path.to_owned(),
            found,
            prefix: origin.heads_prefix(),
            problem,
        });
    }
    let dim = arch.feature_dim();
    let mut classes = None;
    for i in 0..heads {
        let name = origin.head_weight(i);
        let shape = shapes.get(name.as_str()).cloned().unwrap_or_default();
        let fits = matches!(shape.as_slice(), [c, d, 1, 1] if *c > 0 && *d == dim
            && classes.is_none_or(|classes| classes == *c));
        if !fits {
            return Err(ImportError::HeadShape {
                path: path.to_owned(),
                name,
                arch,
                dim,
                hint: channel_hint(&shape, dim),
                found: shape,
            });
        }
        classes = shape.first().copied();
    }
    let num_classes = classes
        .and_then(|c| usize::try_from(c).ok())
        .unwrap_or_default();
    Ok(HeadLayout { heads, num_classes })
}

/// Which backbones a head over `shape[1]` channels fits, when that is not `dim`.
fn channel_hint(shape: &[i64], dim: i64) -> String {
    let Some(&channels) = shape.get(1).filter(|&&d| d != dim) else {
        return String::new();
    };
    let fitting: Vec<&str> = Arch::ALL
        .iter()
        .filter(|a| a.feature_dim() == channels)
        .map(|a| a.name())
        .collect();
    if fitting.is_empty() {
        String::new()
    } else {
        format!("; {channels} channels fit --arch {}", fitting.join(" or "))
    }
}

/// The file's name for one of this crate's variables.
fn source_name(origin: Origin, ours: &str) -> Option<String> {
    if let Some(rest) = ours.strip_prefix(&format!("{BACKBONE_PREFIX}.")) {
        return Some(format!("{}{rest}", origin.backbone_prefix()));
    }
    let rest = ours.strip_prefix(&format!("{HEAD_PREFIX}.multi_head."))?;
    let index = rest.strip_suffix(".head.weight")?.parse().ok()?;
    Some(origin.head_weight(index))
}

/// Builds the model and sets every variable from the file; nothing is copied unless all fit.
fn fill(
    path: &Path,
    origin: Origin,
    model: &ModelConfig,
    sources: &HashMap<&str, &Tensor>,
) -> Result<(VarStore, Vec<UsedTensor>), ImportError> {
    let vs = VarStore::new(Device::Cpu);
    CsraModel::new(&vs.root(), model).map_err(|source| ImportError::Model {
        path: path.to_owned(),
        source,
    })?;
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    let mut pairs = Vec::with_capacity(variables.len());
    let mut missing = Vec::new();
    for (ours, var) in variables {
        let theirs = source_name(origin, &ours).unwrap_or_else(|| ours.clone());
        match sources.get(theirs.as_str()) {
            Some(source) => pairs.push((ours, theirs, var, *source)),
            None => missing.push(theirs),
        }
    }
    if !missing.is_empty() {
        return Err(ImportError::Missing {
            path: path.to_owned(),
            arch: model.arch,
            missing,
        });
    }
    for (_, theirs, var, source) in &pairs {
        if var.size() != source.size() || var.is_floating_point() != source.is_floating_point() {
            return Err(ImportError::Mismatch {
                path: path.to_owned(),
                arch: model.arch,
                name: theirs.clone(),
                expected: describe(var),
                found: describe(source),
            });
        }
    }
    let mut used = Vec::with_capacity(pairs.len());
    for (ours, theirs, var, source) in pairs {
        let mut var = var.shallow_clone();
        tch::no_grad(|| var.f_copy_(source)).map_err(|source| ImportError::Tch {
            path: path.to_owned(),
            name: theirs.clone(),
            source,
        })?;
        used.push(UsedTensor {
            shape: var.size(),
            from: theirs,
            to: ours,
        });
    }
    Ok((vs, used))
}

fn describe(tensor: &Tensor) -> String {
    format!("{:?} {:?}", tensor.size(), tensor.kind())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_names_map_onto_each_origins_names() {
        let cases = [
            (
                "backbone.layer1.0.conv1.weight",
                "layer1.0.conv1.weight",
                "backbone.layer1.0.conv1.weight",
            ),
            (
                "backbone.bn1.running_mean",
                "bn1.running_mean",
                "backbone.bn1.running_mean",
            ),
            (
                "head.multi_head.3.head.weight",
                "classifier.multi_head.3.head.weight",
                "head.csra_heads.3.head.weight",
            ),
        ];
        for (ours, official, mmpretrain) in cases {
            assert_eq!(
                source_name(Origin::Official, ours).as_deref(),
                Some(official)
            );
            assert_eq!(
                source_name(Origin::Mmpretrain, ours).as_deref(),
                Some(mmpretrain)
            );
        }
    }

    #[test]
    fn origins_are_told_apart_by_their_heads() {
        let official = ["conv1.weight", "classifier.multi_head.0.head.weight"];
        let mmpretrain = ["backbone.conv1.weight", "head.csra_heads.0.head.weight"];
        assert_eq!(Origin::detect(official), Some(Origin::Official));
        assert_eq!(Origin::detect(mmpretrain), Some(Origin::Mmpretrain));
        assert_eq!(Origin::detect(["conv1.weight", "fc.weight"]), None);
    }

    #[test]
    fn a_data_parallel_prefix_is_dropped_only_when_every_name_has_it() {
        let t = || Tensor::zeros([1], (tch::Kind::Float, Device::Cpu));
        let (all, stripped) =
            strip_data_parallel(vec![("module.a".into(), t()), ("module.b".into(), t())]);
        assert!(stripped);
        assert_eq!(
            all.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let (some, stripped) =
            strip_data_parallel(vec![("module.a".into(), t()), ("b".into(), t())]);
        assert!(!stripped);
        assert_eq!(some[0].0, "module.a");
    }

    #[test]
    fn a_head_over_the_wrong_channel_count_names_the_fitting_backbones() {
        assert_eq!(
            channel_hint(&[20, 512, 1, 1], 2048),
            "; 512 channels fit --arch resnet18 or resnet34"
        );
        assert_eq!(channel_hint(&[20, 2048, 1, 1], 2048), "");
        assert_eq!(channel_hint(&[20, 7, 1, 1], 2048), "");
    }
}
