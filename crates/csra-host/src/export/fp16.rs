//! FP16 weights and compute behind FP32 inputs and outputs, as TensorRT 10's strongly typed
//! networks take them: every `f32` initializer becomes `f16`, a `Cast` to `f16` follows each
//! graph input and a `Cast` to `f32` produces each graph output, so callers keep feeding and
//! reading `f32` under the same names.

use csra_onnx::pb::attribute_proto::AttributeType;
use csra_onnx::pb::tensor_proto::DataType;
use csra_onnx::pb::{AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto};
use half::f16;

/// The suffix of the internal `f16` twin of a graph input or output.
const HALF_SUFFIX: &str = ".fp16";

/// Rewrites an `f32` model into `f16` compute with `f32` inputs and outputs.
pub fn convert(model: &mut ModelProto) {
    let Some(graph) = model.graph.as_mut() else {
        return;
    };
    for tensor in &mut graph.initializer {
        if tensor.data_type == DataType::Float as i32 {
            to_half(tensor);
        }
    }
    for node in &mut graph.node {
        retarget_float_casts(node);
    }
    let inputs: Vec<String> = graph.input.iter().map(|i| i.name.clone()).collect();
    let outputs: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let mut casts_in = Vec::new();
    for input in inputs {
        let half = format!("{input}{HALF_SUFFIX}");
        rename_reads(graph, &input, &half);
        casts_in.push(cast(&input, &half, DataType::Float16));
    }
    for output in outputs {
        let half = format!("{output}{HALF_SUFFIX}");
        rename_reads(graph, &output, &half);
        for node in &mut graph.node {
            for name in node.output.iter_mut().filter(|o| **o == output) {
                name.clone_from(&half);
            }
        }
        graph.node.push(cast(&half, &output, DataType::Float));
    }
    casts_in.append(&mut graph.node);
    graph.node = casts_in;
}

/// Stores an `f32` initializer's values as `f16` (rounded to nearest).
fn to_half(tensor: &mut TensorProto) {
    let values: Vec<f32> = if tensor.raw_data.is_empty() {
        std::mem::take(&mut tensor.float_data)
    } else {
        tensor
            .raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    tensor.raw_data = values
        .iter()
        .flat_map(|&v| f16::from_f32(v).to_le_bytes())
        .collect();
    tensor.data_type = DataType::Float16 as i32;
}

/// A `Cast` to `f32` inside the graph (the attention's one-hot) now casts to `f16`.
fn retarget_float_casts(node: &mut NodeProto) {
    if node.op_type != "Cast" {
        return;
    }
    for attribute in &mut node.attribute {
        if attribute.name == "to" && attribute.i == DataType::Float as i64 {
            attribute.i = DataType::Float16 as i64;
        }
    }
}

/// Every node that reads `from` reads `to` instead.
fn rename_reads(graph: &mut GraphProto, from: &str, to: &str) {
    for node in &mut graph.node {
        for name in node.input.iter_mut().filter(|i| *i == from) {
            *name = to.to_owned();
        }
    }
}

fn cast(input: &str, output: &str, to: DataType) -> NodeProto {
    NodeProto {
        input: vec![input.to_owned()],
        output: vec![output.to_owned()],
        // The producer of a graph output is already named after it.
        name: format!("{output}.cast"),
        op_type: "Cast".to_owned(),
        attribute: vec![AttributeProto {
            name: "to".to_owned(),
            r#type: AttributeType::Int as i32,
            i: to as i64,
            ..AttributeProto::default()
        }],
        ..NodeProto::default()
    }
}

#[cfg(test)]
mod tests {
    use csra_onnx::{Dim, GraphBuilder, Op};

    use super::*;

    #[test]
    fn weights_become_half_and_the_boundary_stays_float() {
        let mut g = GraphBuilder::new("g");
        let x = g.input("x", DataType::Float, &[Dim::Fixed(2)]).unwrap();
        let w = g.initializer_f32("w", &[2], &[1.0, 1.0 / 3.0]).unwrap();
        let y = g.node_named("y", Op::new("Mul"), &[&x, &w]).unwrap();
        g.output(&y, DataType::Float, &[Dim::Fixed(2)]);
        let mut model = g.finish().unwrap();
        convert(&mut model);
        let graph = model.graph.unwrap();
        let w = &graph.initializer[0];
        assert_eq!(w.data_type, DataType::Float16 as i32);
        // 1/3 rounds to 0x3555 in IEEE half precision.
        assert_eq!(w.raw_data, [0x00, 0x3c, 0x55, 0x35]);
        let ops: Vec<(&str, &[String], &[String])> = graph
            .node
            .iter()
            .map(|n| (n.op_type.as_str(), &n.input[..], &n.output[..]))
            .collect();
        assert_eq!(
            ops[0],
            ("Cast", &["x".to_owned()][..], &["x.fp16".to_owned()][..])
        );
        assert_eq!(ops[1].1, ["x.fp16", "w"]);
        assert_eq!(ops[1].2, ["y.fp16"]);
        assert_eq!(
            ops[2],
            ("Cast", &["y.fp16".to_owned()][..], &["y".to_owned()][..])
        );
        assert_eq!(graph.input[0].name, "x");
        assert_eq!(graph.output[0].name, "y");
    }
}
