//! Grafting CSRA heads onto existing ONNX backbones.
//!
//! - [`graft_head`] appends a head to a named `[N, d, h, w]` feature tensor and drops what the
//!   backbone computed after it.
//! - [`classifier_feature`] names the feature tensor under a classifier's GAP + FC tail.
//! - [`graft_max`] finds the standard classifier tail
//!   `GlobalAveragePool → Flatten/Reshape → Gemm | MatMul (+ Add)` ending in the logits and
//!   rewrites it into the training-free `Max` head, `mean + λ·max` over the per-location class
//!   scores `W·x_j + b` (the paper's Table 1). With λ = 0 it reproduces the original logits.
//!
//! Both write the model and its manifest ([`csra_core::manifest::manifest_path_for`]) and
//! accept models of opset 13 to 17 whose feature map has a static size. [`graft_command`] is
//! the whole `graft` command of the binaries: options in, a checked model folder out.
//!
//! This module (feature `graft`) is the part of csra-onnx that builds tract, whose shape
//! inference finds the feature map's size.

mod command;
mod feature;
mod tail;

pub use command::{
    graft_command, labels_from_arg, GraftOptions, Normalization, DEFAULT_MAX_LAMBDA,
};

use std::path::{Path, PathBuf};

use csra_core::head::HeadSpec;
use csra_core::labels::LabelSet;
use csra_core::manifest::{
    manifest_path_for, ColorOrder, InputSpec, Layout, Manifest, OutputNames, Preprocess, Provenance,
};

use crate::builder::{GraphBuilder, Value};
use crate::error::OnnxError;
use crate::head::{emit_head, FeatureShape, HeadWeights};
use crate::model_io::{read_model, write_model};
use crate::pb::tensor_proto::DataType;
use crate::pb::{GraphProto, ModelProto, ValueInfoProto};
use crate::shape::{Dim, ShapeDisplay, TensorType};

/// Where and how a grafted model is written, and what its manifest says.
#[derive(Debug, Clone)]
pub struct GraftTarget {
    /// The output `.onnx` file; the manifest is written beside it.
    pub path: PathBuf,
    /// The classes in output order; their count must match the classifier's.
    pub labels: LabelSet,
    /// Where the model came from.
    pub provenance: Provenance,
    /// The pixel pipeline the backbone expects (torchvision models use ImageNet mean and std).
    pub preprocess: Preprocess,
    /// The channel order of the backbone's input.
    pub color: ColorOrder,
    /// The output names. [`graft_max`] keeps the tail's own logits name instead of
    /// `outputs.logits`, so nodes that read the logits keep working.
    pub outputs: OutputNames,
}

/// What a graft wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Grafted {
    /// The model file.
    pub model_path: PathBuf,
    /// The manifest file beside it.
    pub manifest_path: PathBuf,
    /// The manifest as written.
    pub manifest: Manifest,
    /// The feature tensor the head reads.
    pub feature: String,
    /// Its shape.
    pub feature_shape: FeatureShape,
}

/// Appends the head `head` to the feature tensor named `feature` of the model at `source`,
/// replacing the model's outputs with the head's, and writes the result to `target`.
pub fn graft_head(
    source: &Path,
    feature: &str,
    head: &HeadWeights,
    target: &GraftTarget,
) -> Result<Grafted, OnnxError> {
    check_class_count(&target.labels, head.num_classes())?;
    let model = read_model(source)?;
    let graft = || -> Result<_, OnnxError> {
        let input = image_input(graph_of(&model)?, target.color)?;
        let (model, shape) = head_onto_feature(model, feature, head, &target.outputs, None)?;
        Ok((model, shape, input))
    };
    let (model, shape, input) = graft().map_err(|e| e.in_model(source))?;
    Built::new(
        model,
        input,
        head.spec().clone(),
        target.outputs.clone(),
        feature,
        shape,
        target,
    )
    .write(target)
}

/// Rewrites the classifier tail that ends in the tensor `logits` (by default the model's only
/// output) into the `Max` head `mean + λ·max` and writes the result to `target`.
pub fn graft_max(
    source: &Path,
    logits: Option<&str>,
    lambda: f32,
    target: &GraftTarget,
) -> Result<Grafted, OnnxError> {
    build_max(source, logits, lambda, target)?.write(target)
}

/// The feature tensor under the classifier tail that ends in `logits` (by default the model's
/// only output), and its channel count: where [`graft_head`] puts a head in place of the tail.
pub fn classifier_feature(
    source: &Path,
    logits: Option<&str>,
) -> Result<(String, usize), OnnxError> {
    let model = read_model(source)?;
    let find = || -> Result<_, OnnxError> {
        let graph = graph_of(&model)?;
        let logits = match logits {
            Some(name) => name.to_owned(),
            None => only_output(graph)?,
        };
        let tail = tail::find(graph, &logits)?;
        Ok((tail.feature, tail.dim))
    };
    find().map_err(|e| e.in_model(source))
}

/// The model and manifest [`graft_max`] writes.
fn build_max(
    source: &Path,
    logits: Option<&str>,
    lambda: f32,
    target: &GraftTarget,
) -> Result<Built, OnnxError> {
    let spec = HeadSpec::max(lambda)?;
    let model = read_model(source)?;
    let rewrite = || -> Result<_, OnnxError> {
        let graph = graph_of(&model)?;
        let input = image_input(graph, target.color)?;
        let logits = match logits {
            Some(name) => name.to_owned(),
            None => only_output(graph)?,
        };
        let tail = tail::find(graph, &logits)?;
        check_class_count(&target.labels, tail.num_classes)?;
        let head = HeadWeights::new(spec, tail.num_classes, tail.dim, vec![tail.classifier])?;
        let names = OutputNames {
            logits: logits.clone(),
            ..target.outputs.clone()
        };
        let (model, shape) = head_onto_feature(model, &tail.feature, &head, &names, Some(&logits))?;
        Ok((model, shape, input, head, names, tail.feature))
    };
    let (model, shape, input, head, names, feature) = rewrite().map_err(|e| e.in_model(source))?;
    Ok(Built::new(
        model,
        input,
        head.spec().clone(),
        names,
        &feature,
        shape,
        target,
    ))
}

/// Appends the head to `feature`. With `replaced_logits`, the tensor of that name is
/// recomputed by the head and every other output stays; without, the head's outputs replace
/// the model's. Whatever only the old outputs needed is removed.
fn head_onto_feature(
    model: ModelProto,
    feature: &str,
    head: &HeadWeights,
    names: &OutputNames,
    replaced_logits: Option<&str>,
) -> Result<(ModelProto, FeatureShape), OnnxError> {
    let mut builder = GraphBuilder::from_model(model)?;
    let features = builder
        .value(feature)
        .ok_or_else(|| feature::unknown_tensor(builder.graph(), feature))?;
    let shape = builder.with_model(|model| feature::feature_shape(model, feature))?;
    let kept = cut_back(&mut builder, &features, &shape, replaced_logits);
    emit_head(&mut builder, &features, &shape, head, names)?;
    builder.restore_outputs(kept);
    Ok((builder.finish()?, shape))
}

/// Removes the producer of `replaced_logits` and everything that only the dropped outputs
/// needed, keeping `features`. Returns the old outputs that stay: all but the replaced logits,
/// or none when there are no logits to replace.
fn cut_back(
    builder: &mut GraphBuilder,
    features: &Value,
    shape: &FeatureShape,
    replaced_logits: Option<&str>,
) -> Vec<ValueInfoProto> {
    let old_outputs = builder.take_outputs();
    let kept: Vec<ValueInfoProto> = match replaced_logits {
        Some(logits) => {
            builder.remove_producer(logits);
            old_outputs
                .into_iter()
                .filter(|o| o.name != logits)
                .collect()
        }
        None => Vec::new(),
    };
    let feature_dims = [
        shape.batch.clone(),
        Dim::Fixed(shape.channels),
        Dim::Fixed(shape.height),
        Dim::Fixed(shape.width),
    ];
    builder.restore_outputs(kept.iter().cloned());
    builder.output(features, DataType::Float, &feature_dims);
    builder.prune();
    builder.take_outputs();
    kept
}

fn graph_of(model: &ModelProto) -> Result<&GraphProto, OnnxError> {
    model.graph.as_ref().ok_or(OnnxError::NoGraph)
}

/// The name of the graph's only output.
fn only_output(graph: &GraphProto) -> Result<String, OnnxError> {
    match graph.output.as_slice() {
        [only] => Ok(only.name.clone()),
        outputs => Err(OnnxError::AmbiguousLogits {
            outputs: outputs.iter().map(|o| o.name.clone()).collect(),
        }),
    }
}

/// The `[N, 3, H, W]` image input with static H and W, for the manifest.
fn image_input(graph: &GraphProto, color: ColorOrder) -> Result<InputSpec, OnnxError> {
    let initializers: Vec<&str> = graph.initializer.iter().map(|i| i.name.as_str()).collect();
    let inputs: Vec<_> = graph
        .input
        .iter()
        .filter(|i| !initializers.contains(&i.name.as_str()))
        .collect();
    for input in &inputs {
        let Some(shape) = TensorType::of(input).and_then(|t| t.shape) else {
            continue;
        };
        let [batch, Dim::Fixed(3), Dim::Fixed(height), Dim::Fixed(width)] = shape.as_slice() else {
            continue;
        };
        if let (Ok(height), Ok(width)) = (u32::try_from(*height), u32::try_from(*width)) {
            return Ok(InputSpec {
                name: input.name.clone(),
                layout: Layout::Nchw,
                width,
                height,
                color,
                dynamic_batch: batch.fixed().is_none(),
            });
        }
    }
    let described: Vec<String> = inputs
        .iter()
        .map(|i| match TensorType::of(i).and_then(|t| t.shape) {
            Some(shape) => format!("`{}` {}", i.name, ShapeDisplay(&shape)),
            None => format!("`{}` without a declared shape", i.name),
        })
        .collect();
    Err(OnnxError::NoImageInput {
        inputs: if described.is_empty() {
            "none".to_owned()
        } else {
            described.join(", ")
        },
    })
}

fn check_class_count(labels: &LabelSet, classifier: usize) -> Result<(), OnnxError> {
    if labels.len() == classifier {
        Ok(())
    } else {
        Err(OnnxError::ClassCount {
            labels: labels.len(),
            classifier,
        })
    }
}

/// A grafted model and its manifest, not yet written.
struct Built {
    model: ModelProto,
    manifest: Manifest,
    feature: String,
    feature_shape: FeatureShape,
}

impl Built {
    /// The manifest of `target` for a model with this input, head and outputs.
    fn new(
        model: ModelProto,
        input: InputSpec,
        spec: HeadSpec,
        outputs: OutputNames,
        feature: &str,
        feature_shape: FeatureShape,
        target: &GraftTarget,
    ) -> Self {
        let file_name = target
            .path
            .file_name()
            .map_or_else(|| target.path.clone(), PathBuf::from);
        let mut manifest = Manifest::new(
            file_name,
            &target.labels,
            input,
            spec,
            target.provenance.clone(),
        );
        manifest.preprocess = target.preprocess.clone();
        manifest.outputs = outputs;
        Self {
            model,
            manifest,
            feature: feature.to_owned(),
            feature_shape,
        }
    }

    /// Writes the model, then the manifest beside it.
    fn write(self, target: &GraftTarget) -> Result<Grafted, OnnxError> {
        write_model(&target.path, &self.model)?;
        let manifest_path = manifest_path_for(&target.path);
        self.manifest.write(&manifest_path)?;
        Ok(Grafted {
            model_path: target.path.clone(),
            manifest_path,
            manifest: self.manifest,
            feature: self.feature,
            feature_shape: self.feature_shape,
        })
    }
}
