//! Writes CSRA models as ONNX, from Rust, with no Python and no protoc.
//!
//! - [`GraphBuilder`]: a small typed builder over the prost types of [`pb`] (tract's ONNX
//!   schema) that writes opset 17, IR version 8, with static shapes and an optional dynamic
//!   batch;
//! - [`emit_head`]: the CSRA head of a [`HeadWeights`] (a `HeadSpec` plus its classifiers) as
//!   one fused, inference-optimised graph on any `[N, d, h, w]` feature tensor;
//! - [`graft`]: appends a head to a named feature map of an existing backbone file, or turns
//!   a standard GAP + FC classifier tail into the training-free `mean + λ·max` head, and writes
//!   the manifest beside the result;
//! - [`inspect()`]: what an ONNX file holds (inputs, outputs, opsets, op histogram, parameters).

mod builder;
mod error;
pub mod graft;
mod graph_order;
mod head;
pub mod inspect;
mod model_io;
mod op;
mod shape;
mod tensor_data;

pub use builder::{GraphBuilder, Value, IR_VERSION, OPSET};
pub use error::OnnxError;
pub use head::{emit_head, ClassifierWeights, FeatureShape, HeadOutputs, HeadWeights};
pub use inspect::{inspect, ModelInfo};
pub use model_io::{read_model, write_model};
pub use op::Op;
pub use shape::{Dim, ShapeDisplay, TensorType, BATCH_DIM};
/// The ONNX protobuf messages (tract's generated types), re-exported so callers need no
/// second copy of the schema.
pub use tract_onnx::pb;
