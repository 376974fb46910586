//! The one error type of the crate: every failure names the file, tensor or head it is about
//! and says what to do.

use std::path::PathBuf;

use csra_core::head::HeadError;
use csra_core::labels::LabelError;
use csra_core::manifest::ManifestError;
use thiserror::Error;

/// An error building, reading, grafting or inspecting an ONNX model.
#[derive(Debug, Error)]
pub enum OnnxError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file is not a protobuf-encoded ONNX model.
    #[error("{}: not an ONNX model ({source}); pass a `.onnx` file written by an ONNX exporter", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// The protobuf decoder's complaint.
        source: prost::DecodeError,
    },
    /// Something is wrong with the model read from `path`.
    #[error("{}: {source}", path.display())]
    InModel {
        /// The model file.
        path: PathBuf,
        /// What is wrong with it.
        source: Box<OnnxError>,
    },
    /// The model has no graph at all.
    #[error("the model has no graph; it is not a usable ONNX model")]
    NoGraph,
    /// The model's default-domain opset is one that grafting cannot extend safely.
    #[error("the model uses ONNX opset {version}, but csra-onnx grafts onto opsets 13 to 17 only (opset 18 changed how ReduceMax takes its axes); re-export the backbone with opset_version=17")]
    UnsupportedOpset {
        /// The model's `ai.onnx` opset version.
        version: i64,
    },
    /// No tensor has the requested name.
    #[error("no tensor named `{name}` in the graph; {hint}")]
    UnknownTensor {
        /// The name asked for.
        name: String,
        /// Which names would work, e.g. the inputs of the graph's pooling nodes.
        hint: String,
    },
    /// A tensor is not a `[N, d, h, w]` feature map with static `d`, `h` and `w`.
    #[error("tensor `{name}` has shape {shape}, not a [N, d, h, w] feature map with static d, h and w; pass the name of the backbone's last 4-D feature tensor (the input of its GlobalAveragePool), and export the backbone with a fixed input size")]
    NotFeatureMap {
        /// The tensor.
        name: String,
        /// Its shape as far as it is known.
        shape: String,
    },
    /// tract could not work out a tensor's shape.
    #[error("could not infer the shape of `{name}` with tract: {message}")]
    ShapeInference {
        /// The tensor.
        name: String,
        /// tract's message.
        message: String,
    },
    /// The model folder of a graft could not be written.
    #[error("cannot write the model folder {}: {cause}; choose a writable --out folder", dir.display())]
    ModelFolder {
        /// The folder.
        dir: PathBuf,
        /// What failed, printed as part of this message rather than as a separate cause.
        cause: Box<OnnxError>,
    },
    /// tract, the edge's runtime, cannot load or run a grafted model.
    #[error("tract cannot run the grafted model: {message}; the edge could not load it either, so nothing was written")]
    TractRun {
        /// tract's message.
        message: String,
    },
    /// The logits tensor is not produced by the standard classifier tail.
    #[error("no classifier tail GlobalAveragePool → Flatten/Reshape → Gemm/MatMul (+Add) ends in `{logits}`: {reason}; name the pre-activation logits tensor, or graft a head onto the feature map by name instead")]
    NoClassifierTail {
        /// The tensor that should have been the tail's output.
        logits: String,
        /// Where the pattern broke.
        reason: String,
    },
    /// The model has several outputs and none was named as the logits.
    #[error("the model has {} outputs ({}); say which one holds the classifier logits", outputs.len(), outputs.join(", "))]
    AmbiguousLogits {
        /// The output names.
        outputs: Vec<String>,
    },
    /// A classifier weight or bias cannot be used.
    #[error("classifier tensor `{name}`: {reason}")]
    ClassifierTensor {
        /// The initializer's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The number of classifiers differs from the head spec's head count.
    #[error("the head spec has {expected} heads but {actual} classifiers were given; pass one [C, d] weight per temperature")]
    HeadCount {
        /// Heads in the spec.
        expected: usize,
        /// Classifiers given.
        actual: usize,
    },
    /// A classifier weight does not have `C · d` values for the class count C.
    #[error("head {head}: the classifier weight has {actual} values, which is not {num_classes} classes × {dim} channels (both must be non-zero); pass the weights that belong to this class count and feature width")]
    WeightShape {
        /// The head.
        head: usize,
        /// The class count C.
        num_classes: usize,
        /// The feature width d.
        dim: usize,
        /// The number of values found.
        actual: usize,
    },
    /// A classifier bias does not have C values.
    #[error(
        "head {head}: the classifier bias has {actual} values but there are {num_classes} classes"
    )]
    BiasShape {
        /// The head.
        head: usize,
        /// The class count C.
        num_classes: usize,
        /// The number of values found.
        actual: usize,
    },
    /// A class row with zero or non-finite norm cannot be normalised.
    #[error("head {head}: class row {class} has zero or non-finite norm, so it cannot be normalised; the weights are uninitialised or corrupt")]
    DegenerateClassRow {
        /// The head.
        head: usize,
        /// The class.
        class: usize,
    },
    /// The classifier's input width differs from the feature map's channel count.
    #[error("the classifier expects {weight_dim} input channels but feature map `{feature}` has {feature_dim}; pick the feature tensor the classifier was trained on")]
    FeatureWidth {
        /// The feature tensor.
        feature: String,
        /// d of the classifier.
        weight_dim: usize,
        /// d of the feature map.
        feature_dim: usize,
    },
    /// The label set and the classifier disagree on the class count.
    #[error("the labels list {labels} classes but the classifier has {classifier}; pass the labels file that belongs to this model")]
    ClassCount {
        /// Classes in the label set.
        labels: usize,
        /// Rows of the classifier.
        classifier: usize,
    },
    /// The model has no `[N, 3, H, W]` image input to describe in the manifest.
    #[error("the model has no [N, 3, H, W] image input with a static size (inputs: {inputs}); export the backbone with a fixed input size")]
    NoImageInput {
        /// The inputs found, with their shapes.
        inputs: String,
    },
    /// An initializer's data does not fill its shape.
    #[error("initializer `{name}` has {actual} values but its shape {shape:?} needs {expected}")]
    InitializerShape {
        /// The initializer.
        name: String,
        /// Its dimensions.
        shape: Vec<usize>,
        /// Values the shape needs.
        expected: usize,
        /// Values given.
        actual: usize,
    },
    /// A name asked for exactly is already used in the graph.
    #[error("the graph already has a tensor named `{name}`; choose another output name")]
    NameTaken {
        /// The name.
        name: String,
    },
    /// A node reads a tensor that nothing defines.
    #[error("node `{node}` reads `{tensor}`, which no input, initializer or node defines")]
    UndefinedTensor {
        /// The node.
        node: String,
        /// The missing tensor.
        tensor: String,
    },
    /// A graph output is a tensor that nothing defines.
    #[error("graph output `{0}` is not defined by any input, initializer or node")]
    UndefinedOutput(String),
    /// The nodes depend on each other in a cycle.
    #[error("the graph has a cycle through node `{0}`; ONNX graphs must be acyclic")]
    Cycle(String),
    /// The head spec is invalid.
    #[error(transparent)]
    Head(#[from] HeadError),
    /// The manifest could not be written.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The labels file could not be read or written.
    #[error(transparent)]
    Labels(#[from] LabelError),
    /// A graph that the FP16 conversion cannot rewrite faithfully.
    #[error("FP16 conversion: {0}; export this model in FP32, or simplify the graph (e.g. with onnx-simplifier) first")]
    Fp16Unsupported(String),
}

impl OnnxError {
    /// Attaches the model file this error is about.
    pub(crate) fn in_model(self, path: &std::path::Path) -> Self {
        match self {
            Self::Io { .. }
            | Self::Decode { .. }
            | Self::InModel { .. }
            | Self::Manifest(_)
            | Self::Labels(_)
            | Self::ModelFolder { .. } => self,
            other => Self::InModel {
                path: path.to_owned(),
                source: Box::new(other),
            },
        }
    }
}
