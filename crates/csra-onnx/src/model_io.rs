//! Reading and writing `.onnx` files.

use std::path::Path;

use crate::pb::ModelProto;
use prost::Message;

use crate::error::OnnxError;

/// Reads and decodes an ONNX model file.
pub fn read_model(path: &Path) -> Result<ModelProto, OnnxError> {
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
        path: path.to_owned(),
        source,
    })?;
    ModelProto::decode(bytes.as_slice()).map_err(|source| OnnxError::Decode {
        path: path.to_owned(),
        source,
    })
}

/// Encodes a model and writes it atomically, so a crash never leaves half a file.
pub fn write_model(path: &Path, model: &ModelProto) -> Result<(), OnnxError> {
    csra_core::fsutil::write_atomic(path, &model.encode_to_vec()).map_err(|source| OnnxError::Io {
        path: path.to_owned(),
        source,
    })
}
