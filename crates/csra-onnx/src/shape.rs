//! Tensor dimensions and the `ValueInfoProto`s that declare graph inputs and outputs.

use std::fmt;

use crate::pb::tensor_proto::DataType;
use crate::pb::tensor_shape_proto::{dimension, Dimension};
use crate::pb::{type_proto, TensorShapeProto, TypeProto, ValueInfoProto};

/// The symbolic name of the dynamic batch dimension in every csra model.
pub const BATCH_DIM: &str = "N";

/// One dimension of a declared tensor shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A static size.
    Fixed(usize),
    /// A symbolic size, such as the dynamic batch `N`.
    Named(String),
    /// A size the file leaves unspecified.
    Unknown,
}

impl Dim {
    /// The batch dimension: symbolic [`BATCH_DIM`] when `dynamic`, else 1.
    pub fn batch(dynamic: bool) -> Self {
        if dynamic {
            Self::Named(BATCH_DIM.to_owned())
        } else {
            Self::Fixed(1)
        }
    }

    /// The static size, if there is one.
    pub fn fixed(&self) -> Option<usize> {
        match self {
            Self::Fixed(n) => Some(*n),
            Self::Named(_) | Self::Unknown => None,
        }
    }

    fn to_proto(&self) -> Dimension {
        let value = match self {
            Self::Fixed(n) => Some(dimension::Value::DimValue(i64_from(*n))),
            Self::Named(name) => Some(dimension::Value::DimParam(name.clone())),
            Self::Unknown => None,
        };
        Dimension {
            value,
            ..Dimension::default()
        }
    }

    fn from_proto(dim: &Dimension) -> Self {
        match &dim.value {
            Some(dimension::Value::DimValue(n)) => {
                usize::try_from(*n).map_or(Self::Unknown, Self::Fixed)
            }
            Some(dimension::Value::DimParam(name)) if !name.is_empty() => Self::Named(name.clone()),
            _ => Self::Unknown,
        }
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fixed(n) => write!(f, "{n}"),
            Self::Named(name) => f.write_str(name),
            Self::Unknown => f.write_str("?"),
        }
    }
}

/// A shape written as `[N, 3, 224, 224]`.
pub struct ShapeDisplay<'a>(pub &'a [Dim]);

impl fmt::Display for ShapeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.0.iter().map(Dim::to_string).collect();
        write!(f, "[{}]", dims.join(", "))
    }
}

/// The declared element type and shape of a graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorType {
    /// The element type.
    pub elem_type: DataType,
    /// The shape, or `None` when the file declares no shape.
    pub shape: Option<Vec<Dim>>,
}

impl TensorType {
    /// Reads the tensor type of a value declaration; `None` for non-tensor values.
    pub fn of(info: &ValueInfoProto) -> Option<Self> {
        let Some(type_proto::Value::TensorType(tensor)) = info.r#type.as_ref()?.value.as_ref()
        else {
            return None;
        };
        Some(Self {
            elem_type: DataType::try_from(tensor.elem_type).unwrap_or(DataType::Undefined),
            shape: tensor
                .shape
                .as_ref()
                .map(|shape| shape.dim.iter().map(Dim::from_proto).collect()),
        })
    }
}

/// The declaration of a tensor named `name` of `elem_type` and `shape`.
pub(crate) fn value_info(name: &str, elem_type: DataType, shape: &[Dim]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem_type as i32,
                shape: Some(TensorShapeProto {
                    dim: shape.iter().map(Dim::to_proto).collect(),
                }),
            })),
            ..TypeProto::default()
        }),
        ..ValueInfoProto::default()
    }
}

/// ONNX stores sizes as `i64`; no tensor that fits in memory has a dimension beyond `i64::MAX`.
pub(crate) fn i64_from(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
