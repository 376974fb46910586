//! The backbone as ONNX, emitted once and completed with any head.

use csra_core::manifest::{ColorOrder, InputSpec, Layout, OutputNames};
use csra_onnx::pb::tensor_proto::DataType;
use csra_onnx::pb::ModelProto;
use csra_onnx::{emit_head, Dim, FeatureShape, GraphBuilder, HeadWeights, Value};

use super::ExportError;
use crate::backbone::Backbone;

/// The name of the image input of every exported model.
pub const INPUT_NAME: &str = "input";

/// The input of an exported graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphOptions {
    /// The square input side in pixels.
    pub input_size: usize,
    /// A symbolic batch `N` instead of a batch of 1.
    pub dynamic_batch: bool,
}

/// The number format of an exported model's weights and compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `f32` throughout.
    Fp32,
    /// `f16` weights and compute; `f32` inputs and outputs (see [`csra_onnx::fp16`]).
    Fp16,
}

/// An image input `[N, 3, S, S]` and the backbone's eval-mode network up to its feature map.
#[derive(Debug, Clone)]
pub struct BackboneGraph {
    builder: GraphBuilder,
    features: Value,
    shape: FeatureShape,
    options: GraphOptions,
}

impl BackboneGraph {
    /// Emits `backbone` on an `input` `[N, 3, S, S]` image tensor.
    pub fn new(backbone: &Backbone, options: GraphOptions) -> Result<Self, ExportError> {
        if options.input_size == 0 {
            return Err(ExportError::Unsupported(
                "the input size must be at least one pixel".to_owned(),
            ));
        }
        let arch = backbone.arch();
        let batch = Dim::batch(options.dynamic_batch);
        let side = Dim::Fixed(options.input_size);
        let mut builder = GraphBuilder::new(&format!("csra-{arch}"));
        let images = builder.input(
            INPUT_NAME,
            DataType::Float,
            &[batch.clone(), Dim::Fixed(3), side.clone(), side],
        )?;
        let features = backbone.emit(&mut builder, &images)?;
        let feature_side = arch.feature_size(options.input_size);
        let shape = FeatureShape {
            batch,
            channels: usize::try_from(arch.feature_dim()).unwrap_or(0),
            height: feature_side,
            width: feature_side,
        };
        Ok(Self {
            builder,
            features,
            shape,
            options,
        })
    }

    /// The feature map's shape.
    pub fn feature_shape(&self) -> &FeatureShape {
        &self.shape
    }

    /// The input as the manifest describes it.
    pub fn input_spec(&self) -> InputSpec {
        let side = u32::try_from(self.options.input_size).unwrap_or(u32::MAX);
        InputSpec {
            name: INPUT_NAME.to_owned(),
            layout: Layout::Nchw,
            width: side,
            height: side,
            color: ColorOrder::Rgb,
            dynamic_batch: self.options.dynamic_batch,
        }
    }

    /// The whole model: this backbone, then `head` with outputs named `outputs`, in
    /// `precision`.
    pub fn with_head(
        &self,
        head: &HeadWeights,
        outputs: &OutputNames,
        precision: Precision,
    ) -> Result<ModelProto, ExportError> {
        let mut builder = self.builder.clone();
        emit_head(&mut builder, &self.features, &self.shape, head, outputs)?;
        let mut model = builder.finish()?;
        if precision == Precision::Fp16 {
            csra_onnx::fp16::convert(&mut model)?;
        }
        Ok(model)
    }
}
