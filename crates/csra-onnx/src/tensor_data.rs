//! Initializer tensors: encoding `f32` and `i64` data, and reading `f32` data back.

#[cfg(feature = "graft")]
use crate::pb::tensor_proto::DataLocation;
use crate::pb::tensor_proto::DataType;
use crate::pb::TensorProto;

use crate::shape::i64_from;

/// An `f32` tensor in `raw_data`, the little-endian layout every exporter and runtime reads.
pub(crate) fn f32_tensor(name: &str, dims: &[usize], data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.to_owned(),
        dims: dims.iter().map(|&d| i64_from(d)).collect(),
        data_type: DataType::Float as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..TensorProto::default()
    }
}

/// An `i64` tensor (shapes, axes, split sizes) in `raw_data`.
pub(crate) fn i64_tensor(name: &str, dims: &[usize], data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.to_owned(),
        dims: dims.iter().map(|&d| i64_from(d)).collect(),
        data_type: DataType::Int64 as i32,
        raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..TensorProto::default()
    }
}

/// The number of elements the tensor's dimensions describe (1 for a scalar), saturating: a
/// file's dimensions are untrusted, and fuzzing found ones whose product overflows.
pub(crate) fn element_count(tensor: &TensorProto) -> u64 {
    tensor
        .dims
        .iter()
        .map(|&d| u64::try_from(d).unwrap_or(0))
        .fold(1, u64::saturating_mul)
}

/// The dimensions as sizes; `None` if one is negative.
#[cfg(feature = "graft")]
pub(crate) fn dims(tensor: &TensorProto) -> Option<Vec<usize>> {
    tensor
        .dims
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect()
}

/// The data of an `f32` tensor, or why it cannot be read.
#[cfg(feature = "graft")]
pub(crate) fn f32_data(tensor: &TensorProto) -> Result<Vec<f32>, String> {
    if tensor.data_location == DataLocation::External as i32 {
        return Err(
            "its data lives in an external file, which csra-onnx does not read; \
                    re-export the model with its weights inside the .onnx file"
                .to_owned(),
        );
    }
    if tensor.data_type != DataType::Float as i32 {
        let name = DataType::try_from(tensor.data_type).map_or("unknown", |t| t.as_str_name());
        return Err(format!("it holds {name} values, expected FLOAT"));
    }
    let data: Vec<f32> = if tensor.raw_data.is_empty() {
        tensor.float_data.clone()
    } else {
        tensor
            .raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    let expected = element_count(tensor);
    if data.len() as u64 != expected {
        return Err(format!(
            "it stores {} values but its shape {:?} needs {expected}",
            data.len(),
            tensor.dims
        ));
    }
    Ok(data)
}
