//! An operator to add to a graph: its type and attributes.

use crate::pb::attribute_proto::AttributeType;
use crate::pb::AttributeProto;

/// An ONNX operator of the default domain with its attributes, e.g.
/// `Op::new("Conv").ints("kernel_shape", &[3, 3]).int("group", 32)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub(crate) op_type: String,
    pub(crate) attributes: Vec<AttributeProto>,
}

impl Op {
    /// An operator of type `op_type` (`"Conv"`, `"Gemm"`, ...) without attributes.
    pub fn new(op_type: &str) -> Self {
        Self {
            op_type: op_type.to_owned(),
            attributes: Vec::new(),
        }
    }

    /// Adds an integer attribute.
    pub fn int(self, name: &str, value: i64) -> Self {
        self.with(AttributeProto {
            r#type: AttributeType::Int as i32,
            i: value,
            ..attribute(name)
        })
    }

    /// Adds an integer-list attribute.
    pub fn ints(self, name: &str, values: &[i64]) -> Self {
        self.with(AttributeProto {
            r#type: AttributeType::Ints as i32,
            ints: values.to_vec(),
            ..attribute(name)
        })
    }

    /// Adds a float attribute.
    pub fn float(self, name: &str, value: f32) -> Self {
        self.with(AttributeProto {
            r#type: AttributeType::Float as i32,
            f: value,
            ..attribute(name)
        })
    }

    fn with(mut self, attribute: AttributeProto) -> Self {
        self.attributes.push(attribute);
        self
    }
}

fn attribute(name: &str) -> AttributeProto {
    AttributeProto {
        name: name.to_owned(),
        ..AttributeProto::default()
    }
}
