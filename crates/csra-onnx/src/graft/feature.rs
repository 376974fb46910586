//! Finding a feature tensor in a backbone and its static `[N, d, h, w]` shape, the one job
//! csra-onnx needs tract's shape inference for.

use prost::Message;
use tract_onnx::prelude::{Framework, InferenceModelExt, TDim};
use tract_onnx::tract_hir::internal::DimLike;

use crate::error::OnnxError;
use crate::head::FeatureShape;
use crate::pb::{GraphProto, ModelProto};
use crate::shape::Dim;

/// The error for a tensor name the graph does not define, with the names that would work.
pub(super) fn unknown_tensor(graph: &GraphProto, name: &str) -> OnnxError {
    let pooled: Vec<String> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "GlobalAveragePool")
        .filter_map(|n| n.input.first())
        .map(|i| format!("`{i}`"))
        .collect();
    let hint = if pooled.is_empty() {
        let last: Vec<String> = graph
            .node
            .iter()
            .rev()
            .take(5)
            .flat_map(|n| n.output.iter().map(|o| format!("`{o}`")))
            .collect();
        format!(
            "the last tensors the graph computes are {}",
            last.join(", ")
        )
    } else {
        format!(
            "feature maps usually enter a GlobalAveragePool, and this graph pools {}",
            pooled.join(", ")
        )
    };
    OnnxError::UnknownTensor {
        name: name.to_owned(),
        hint,
    }
}

/// The shape of tensor `name`, inferred by tract; it must be `[N, d, h, w]` with static d, h,
/// w. A symbolic batch stays symbolic. tract reads the model as bytes, decoded with its own
/// copy of the schema, so csra-onnx's prost version is free of tract's.
pub(super) fn feature_shape(model: &ModelProto, name: &str) -> Result<FeatureShape, OnnxError> {
    let inference = |message: String| OnnxError::ShapeInference {
        name: name.to_owned(),
        message,
    };
    let onnx = tract_onnx::onnx();
    let proto = onnx
        .proto_model_for_read(&mut model.encode_to_vec().as_slice())
        .map_err(|e| inference(format!("{e:#}")))?;
    let parsed = onnx
        .parse(&proto, None)
        .map_err(|e| inference(format!("{e:#}")))?;
    let outlet = *parsed
        .outlets_by_name
        .get(name)
        .ok_or_else(|| inference("tract does not see this tensor".to_owned()))?;
    let mut inference_model = parsed.model;
    inference_model
        .select_output_outlets(&[outlet])
        .map_err(|e| inference(format!("{e:#}")))?;
    let typed = inference_model
        .into_typed()
        .map_err(|e| inference(format!("{e:#}")))?;
    let fact = typed
        .output_fact(0)
        .map_err(|e| inference(format!("{e:#}")))?;
    let dims: Vec<&TDim> = fact.shape.iter().collect();
    let not_feature_map = || OnnxError::NotFeatureMap {
        name: name.to_owned(),
        shape: format!(
            "[{}]",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let [batch, channels, height, width] = dims.as_slice() else {
        return Err(not_feature_map());
    };
    let fixed = |d: &TDim| d.to_usize().ok().filter(|&n| n > 0);
    match (fixed(channels), fixed(height), fixed(width)) {
        (Some(channels), Some(height), Some(width)) => Ok(FeatureShape {
            batch: fixed(batch).map_or_else(|| Dim::Named(batch.to_string()), Dim::Fixed),
            channels,
            height,
            width,
        }),
        _ => Err(not_feature_map()),
    }
}
