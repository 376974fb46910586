//! The `graft` command of the binaries (`csra-host graft`, `csra-edge graft`): an ONNX
//! classifier with a GAP + FC tail becomes the training-free Max head, written as a model folder
//! (`model.onnx`, `model.manifest.json`, `labels.txt`) once tract has run it.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use csra_core::labels::{LabelError, LabelSet};
use csra_core::manifest::{ColorOrder, OutputNames, Preprocess, Provenance};
use prost::Message;
use tract_onnx::prelude::{Framework, InferenceModelExt, IntoRunnable, TValue, TVec, Tensor};

use super::{build_max, GraftTarget, Grafted};
use crate::error::OnnxError;
use crate::files::ExportFiles;
use crate::pb::ModelProto;
use crate::shape::{Dim, TensorType};

/// λ of a `max` head when none is given: the value the README's coco-mini results use.
pub const DEFAULT_MAX_LAMBDA: f32 = 0.2;

/// The pixel normalisation a classifier expects, which must match its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalization {
    /// RGB in [0, 1], no mean or std: the official CSRA pipeline.
    Official,
    /// `x / 127.5 − 1`: TensorFlow-trained weights, such as the shipped MobileNetV2.
    Tf,
    /// ImageNet mean and std: torchvision's own weights.
    Imagenet,
}

impl Normalization {
    /// Every normalisation, in the order the flags list them.
    pub const ALL: [Self; 3] = [Self::Official, Self::Tf, Self::Imagenet];

    /// The flag value: `official`, `tf` or `imagenet`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Official => "official",
            Self::Tf => "tf",
            Self::Imagenet => "imagenet",
        }
    }

    /// The squash-resize pipeline with this normalisation.
    pub fn preprocess(self) -> Preprocess {
        let base = Preprocess::official();
        match self {
            Self::Official => base,
            Self::Tf => Preprocess {
                mean: [0.5; 3],
                std: [0.5; 3],
                ..base
            },
            Self::Imagenet => Preprocess {
                mean: [0.485, 0.456, 0.406],
                std: [0.229, 0.224, 0.225],
                ..base
            },
        }
    }
}

impl FromStr for Normalization {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|n| n.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|n| n.name()).collect();
                format!(
                    "unknown normalisation `{s}`; use one of {}",
                    names.join(", ")
                )
            })
    }
}

impl std::fmt::Display for Normalization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The classes of a `--labels` argument: `coco`, `voc` or `wider` for the built-in lists, else
/// a file with one name per line.
///
/// # Errors
///
/// [`LabelError`] when the file cannot be read or lists no usable classes.
pub fn labels_from_arg(arg: &str) -> Result<LabelSet, LabelError> {
    match arg {
        "coco" => Ok(LabelSet::coco()),
        "voc" => Ok(LabelSet::voc()),
        "wider" => Ok(LabelSet::wider()),
        path => LabelSet::read(Path::new(path)),
    }
}

/// What the `graft` command reads and writes.
#[derive(Debug, Clone)]
pub struct GraftOptions {
    /// The ONNX classifier (opset 13 to 17, static input size), ending in
    /// `GlobalAveragePool → Flatten/Reshape → Gemm | MatMul (+ Add)`.
    pub model: PathBuf,
    /// The output folder; created if missing.
    pub out: PathBuf,
    /// The classes in output order.
    pub labels: LabelSet,
    /// λ of `mean + λ·max`.
    pub lambda: f32,
    /// The logits tensor the tail ends in; `None` for the model's only output.
    pub logits: Option<String>,
    /// The pixel pipeline the classifier expects.
    pub preprocess: Preprocess,
    /// The channel order of the classifier's input.
    pub color: ColorOrder,
    /// The backbone's name for the manifest; `None` for the model file's stem.
    pub backbone: Option<String>,
    /// The training data's name for the manifest.
    pub dataset: String,
    /// The program that grafts, for the manifest (`csra-host 0.1.0`).
    pub created_by: String,
}

/// Grafts the Max head onto the classifier `options.model`, checks that tract runs the result
/// on a zero image, and writes the model folder `options.out`: each file atomically, the
/// manifest last, and nothing at all when the graft or the check fails.
///
/// # Errors
///
/// Any [`OnnxError`] of [`super::graft_max`], [`OnnxError::TractRun`] when tract cannot run the
/// grafted model, and the I/O errors of writing the folder.
pub fn graft_command(options: &GraftOptions) -> Result<Grafted, OnnxError> {
    let files = ExportFiles::in_dir(&options.out);
    let source = options.model.display().to_string();
    let backbone = options.backbone.clone().unwrap_or_else(|| {
        options
            .model
            .file_stem()
            .map_or_else(|| source.clone(), |s| s.to_string_lossy().into_owned())
    });
    let target = GraftTarget {
        path: files.model.clone(),
        labels: options.labels.clone(),
        provenance: Provenance {
            backbone,
            dataset: options.dataset.clone(),
            epochs: 0,
            commit: None,
            created_by: options.created_by.clone(),
            note: Some(format!(
                "training-free max head (mean + {}·max) grafted onto the classifier tail of {source}",
                options.lambda
            )),
        },
        preprocess: options.preprocess.clone(),
        color: options.color,
        outputs: OutputNames::default(),
    };
    let built = build_max(
        &options.model,
        options.logits.as_deref(),
        options.lambda,
        &target,
    )?;
    runs_in_tract(&built.model).map_err(|e| e.in_model(&options.model))?;
    files
        .write(&built.model, &built.manifest, &options.labels)
        .map_err(|cause| OnnxError::ModelFolder {
            dir: files.dir.clone(),
            cause: Box::new(cause),
        })?;
    Ok(Grafted {
        model_path: files.model,
        manifest_path: files.manifest,
        manifest: built.manifest,
        feature: built.feature,
        feature_shape: built.feature_shape,
    })
}

/// Runs the model in tract, the edge's CPU runtime, on one zero input: the grafted file must be
/// one the edge can load. A symbolic dimension is taken as 1.
fn runs_in_tract(model: &ModelProto) -> Result<(), OnnxError> {
    let tract = |message: String| OnnxError::TractRun { message };
    let graph = model.graph.as_ref().ok_or(OnnxError::NoGraph)?;
    let initializers: Vec<&str> = graph.initializer.iter().map(|i| i.name.as_str()).collect();
    let inputs: TVec<TValue> = graph
        .input
        .iter()
        .filter(|i| !initializers.contains(&i.name.as_str()))
        .map(|input| {
            let shape: Vec<usize> = TensorType::of(input)
                .and_then(|t| t.shape)
                .unwrap_or_default()
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => *n,
                    Dim::Named(_) | Dim::Unknown => 1,
                })
                .collect();
            let len = shape.iter().product();
            Tensor::from_shape(&shape, &vec![0.0_f32; len]).map(Into::into)
        })
        .collect::<Result<_, _>>()
        .map_err(|e| tract(format!("{e:#}")))?;
    let onnx = tract_onnx::onnx();
    onnx.model_for_read(&mut model.encode_to_vec().as_slice())
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .and_then(|plan| plan.run(inputs))
        .map_err(|e| tract(format!("{e:#}")))?;
    Ok(())
}
