//! Writes CSRA models as ONNX, from Rust, with no Python and no protoc.
//!
//! - [`pb`]: the ONNX protobuf messages, generated from `onnx.proto` into this crate;
//! - [`GraphBuilder`]: a small typed builder over them that writes opset 17, IR version 8,
//!   with static shapes and an optional dynamic batch;
//! - [`emit_head`]: the CSRA head of a [`HeadWeights`] (a `HeadSpec` plus its classifiers) as
//!   one fused, inference-optimised graph on any `[N, d, h, w]` feature tensor;
//! - [`fp16`]: FP16 weights and compute behind FP32 inputs and outputs;
//! - [`batchnorm`]: folding an eval-mode BatchNorm into the convolution before it;
//! - [`ExportFiles`]: the model, manifest and labels files of a model folder, written
//!   atomically;
//! - [`inspect()`]: what an ONNX file holds (inputs, outputs, opsets, op histogram, parameters);
//! - `graft` (feature `graft`, on by default, the one part that builds tract for its shape
//!   inference): appends a head to a named feature map of an existing backbone file, or turns
//!   a standard GAP + FC classifier tail into the training-free `mean + λ·max` head, and writes
//!   the manifest beside the result; [`graft::graft_command`] is the whole `graft` command of
//!   the binaries.

pub mod batchnorm;
mod builder;
mod error;
mod files;
pub mod fp16;
#[cfg(feature = "graft")]
pub mod graft;
mod graph_order;
mod head;
pub mod inspect;
mod model_io;
mod op;
pub mod pb;
mod shape;
mod tensor_data;

pub use builder::{GraphBuilder, Value, IR_VERSION, OPSET};
pub use error::OnnxError;
pub use files::{ExportFiles, LABELS_FILE, MODEL_FILE};
pub use head::{emit_head, ClassifierWeights, FeatureShape, HeadOutputs, HeadWeights};
pub use inspect::{inspect, ModelInfo};
pub use model_io::{read_model, write_model};
pub use op::Op;
pub use shape::{Dim, ShapeDisplay, TensorType, BATCH_DIM};
