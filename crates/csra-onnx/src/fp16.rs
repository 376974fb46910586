//! FP16 weights and compute behind FP32 inputs and outputs, as TensorRT 10's strongly typed
//! networks take them: every `f32` initializer and constant becomes `f16`, a `Cast` to `f16`
//! follows each `f32` graph input and a `Cast` to `f32` produces each `f32` graph output, so
//! callers keep feeding and reading `f32` under the same names.
//!
//! Inside the graph, whatever named a `f32` type now names `f16`: the `to` of `Cast`, the
//! `dtype` of ops that make tensors, the tensors of `Constant` and `ConstantOfShape`, and the
//! intermediate types in `value_info`. Graphs this cannot rewrite faithfully are refused before
//! anything changes: subgraphs (`If`, `Loop`, `Scan`), sparse tensors, external data, and graph
//! inputs or outputs that are initializers or that no node computes.

use std::collections::HashSet;

use half::f16;

use crate::error::OnnxError;
use crate::pb::attribute_proto::AttributeType;
use crate::pb::tensor_proto::{DataLocation, DataType};
use crate::pb::{
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto,
};
use crate::shape::TensorType;

/// The suffix of the internal `f16` twin of a graph input or output.
const HALF_SUFFIX: &str = ".fp16";

/// The attributes that name an element type an op produces (`Cast`'s `to`; `dtype` of
/// `EyeLike`, `RandomNormal` and the like).
const TYPE_ATTRIBUTES: [&str; 2] = ["to", "dtype"];

/// Rewrites an `f32` model into `f16` compute with `f32` inputs and outputs.
///
/// # Errors
///
/// [`OnnxError::NoGraph`] for a model without a graph, [`OnnxError::Fp16Unsupported`] naming
/// what cannot be converted; the model is then left as it was.
pub fn convert(model: &mut ModelProto) -> Result<(), OnnxError> {
    let graph = model.graph.as_mut().ok_or(OnnxError::NoGraph)?;
    check(graph)?;
    let boundary: HashSet<String> = graph
        .input
        .iter()
        .chain(&graph.output)
        .map(|v| v.name.clone())
        .collect();
    for tensor in &mut graph.initializer {
        half_tensor(tensor);
    }
    for node in &mut graph.node {
        retarget_node(node);
    }
    for info in &mut graph.value_info {
        if !boundary.contains(&info.name) {
            retarget_value_info(info);
        }
    }
    let inputs: Vec<String> = float_names(&graph.input);
    let outputs: Vec<String> = float_names(&graph.output);
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
    Ok(())
}

/// Everything the conversion cannot rewrite faithfully, found before anything changes.
fn check(graph: &GraphProto) -> Result<(), OnnxError> {
    let unsupported = |what: String| Err(OnnxError::Fp16Unsupported(what));
    if let Some(sparse) = graph.sparse_initializer.first() {
        let name = sparse.values.as_ref().map_or("?", |v| v.name.as_str());
        return unsupported(format!("sparse initializer `{name}` is not converted"));
    }
    for tensor in &graph.initializer {
        check_tensor(tensor, &format!("initializer `{}`", tensor.name))?;
    }
    let initializers: HashSet<&str> = graph.initializer.iter().map(|i| i.name.as_str()).collect();
    let produced: HashSet<&str> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(String::as_str))
        .collect();
    let mut names: HashSet<&str> = produced.clone();
    names.extend(&initializers);
    names.extend(graph.input.iter().map(|i| i.name.as_str()));
    for input in &graph.input {
        if initializers.contains(input.name.as_str()) {
            return unsupported(format!(
                "graph input `{}` is also an initializer (a pre-IR-4 default value), which would \
                 have to change type",
                input.name
            ));
        }
    }
    for output in &graph.output {
        if is_float(output) && !produced.contains(output.name.as_str()) {
            return unsupported(format!(
                "graph output `{}` is not computed by a node, so no Cast can produce it",
                output.name
            ));
        }
    }
    for boundary in float_names(&graph.input)
        .iter()
        .chain(&float_names(&graph.output))
    {
        let half = format!("{boundary}{HALF_SUFFIX}");
        if names.contains(half.as_str()) {
            return unsupported(format!(
                "the graph already has a tensor named `{half}`, the name the f16 twin of \
                 `{boundary}` needs"
            ));
        }
    }
    for node in &graph.node {
        for attribute in &node.attribute {
            let at = || format!("attribute `{}` of node `{}`", attribute.name, node.name);
            if attribute.g.is_some() || !attribute.graphs.is_empty() {
                return unsupported(format!("{} holds a subgraph", at()));
            }
            if attribute.sparse_tensor.is_some() || !attribute.sparse_tensors.is_empty() {
                return unsupported(format!("{} holds a sparse tensor", at()));
            }
            if attribute.tensors.iter().any(is_float_tensor) {
                return unsupported(format!("{} holds a list of float tensors", at()));
            }
            if let Some(tensor) = &attribute.t {
                check_tensor(tensor, &at())?;
            }
        }
    }
    Ok(())
}

/// A float tensor must hold its values inside the file, as many as its shape needs.
fn check_tensor(tensor: &TensorProto, what: &str) -> Result<(), OnnxError> {
    if !is_float_tensor(tensor) {
        return Ok(());
    }
    if tensor.data_location == DataLocation::External as i32 {
        return Err(OnnxError::Fp16Unsupported(format!(
            "{what} keeps its data in an external file, which csra-onnx does not read"
        )));
    }
    if !tensor.raw_data.is_empty() && !tensor.raw_data.len().is_multiple_of(4) {
        return Err(OnnxError::Fp16Unsupported(format!(
            "{what} has {} raw bytes, not a whole number of f32 values",
            tensor.raw_data.len()
        )));
    }
    Ok(())
}

fn is_float_tensor(tensor: &TensorProto) -> bool {
    tensor.data_type == DataType::Float as i32
}

fn is_float(info: &ValueInfoProto) -> bool {
    TensorType::of(info).is_some_and(|t| t.elem_type == DataType::Float)
}

/// The names of the `f32` tensors among graph inputs or outputs.
fn float_names(values: &[ValueInfoProto]) -> Vec<String> {
    values
        .iter()
        .filter(|v| is_float(v))
        .map(|v| v.name.clone())
        .collect()
}

/// Stores an `f32` tensor's values as `f16` (rounded to nearest); other tensors stay.
fn half_tensor(tensor: &mut TensorProto) {
    if !is_float_tensor(tensor) {
        return;
    }
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

/// A node's `f32` type attributes and tensors become `f16`. A `Constant` given as
/// `value_float` or `value_floats` becomes the equivalent `f16` `value` tensor, as the
/// attribute forms have no `f16` spelling.
fn retarget_node(node: &mut NodeProto) {
    for attribute in &mut node.attribute {
        if TYPE_ATTRIBUTES.contains(&attribute.name.as_str())
            && attribute.r#type == AttributeType::Int as i32
            && attribute.i == DataType::Float as i64
        {
            attribute.i = DataType::Float16 as i64;
        }
        if let Some(tensor) = attribute.t.as_mut() {
            half_tensor(tensor);
        }
        if node.op_type == "Constant" {
            let dims = match attribute.name.as_str() {
                "value_float" => Some((Vec::new(), vec![attribute.f])),
                "value_floats" => Some((
                    vec![attribute.floats.len() as i64],
                    std::mem::take(&mut attribute.floats),
                )),
                _ => None,
            };
            if let Some((dims, float_data)) = dims {
                let mut tensor = TensorProto {
                    dims,
                    data_type: DataType::Float as i32,
                    float_data,
                    ..TensorProto::default()
                };
                half_tensor(&mut tensor);
                *attribute = AttributeProto {
                    name: "value".to_owned(),
                    r#type: AttributeType::Tensor as i32,
                    t: Some(tensor),
                    ..AttributeProto::default()
                };
            }
        }
    }
}

/// An intermediate `f32` tensor is now computed in `f16`.
fn retarget_value_info(info: &mut ValueInfoProto) {
    let value = info.r#type.as_mut().and_then(|t| t.value.as_mut());
    if let Some(type_proto::Value::TensorType(tensor)) = value {
        if tensor.elem_type == DataType::Float as i32 {
            tensor.elem_type = DataType::Float16 as i32;
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
    use crate::shape::value_info;
    use crate::{Dim, GraphBuilder, Op};

    use super::*;

    #[test]
    fn weights_become_half_and_the_boundary_stays_float() {
        let mut g = GraphBuilder::new("g");
        let x = g.input("x", DataType::Float, &[Dim::Fixed(2)]).unwrap();
        let w = g.initializer_f32("w", &[2], &[1.0, 1.0 / 3.0]).unwrap();
        let y = g.node_named("y", Op::new("Mul"), &[&x, &w]).unwrap();
        g.output(&y, DataType::Float, &[Dim::Fixed(2)]);
        let mut model = g.finish().unwrap();
        convert(&mut model).unwrap();
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

    /// A graph as the PyTorch exporter writes it: constants as `Constant` nodes (a tensor, a
    /// `value_float` and a `value_floats`), a `ConstantOfShape`, and typed intermediates in
    /// `value_info`.
    fn constants_graph() -> ModelProto {
        let mut g = GraphBuilder::new("g");
        let x = g.input("x", DataType::Float, &[Dim::Fixed(2)]).unwrap();
        let shape = g.ints("shape", &[2]);
        let tensor = AttributeProto {
            name: "value".to_owned(),
            r#type: AttributeType::Tensor as i32,
            t: Some(TensorProto {
                dims: vec![2],
                data_type: DataType::Float as i32,
                float_data: vec![0.5, -2.0],
                ..TensorProto::default()
            }),
            ..AttributeProto::default()
        };
        let scalar = AttributeProto {
            name: "value_float".to_owned(),
            r#type: AttributeType::Float as i32,
            f: 3.0,
            ..AttributeProto::default()
        };
        let floats = AttributeProto {
            name: "value_floats".to_owned(),
            r#type: AttributeType::Floats as i32,
            floats: vec![1.0, 0.25],
            ..AttributeProto::default()
        };
        let a = g.node_named("a", Op::new("Constant"), &[]).unwrap();
        let b = g.node_named("b", Op::new("Constant"), &[]).unwrap();
        let c = g.node_named("c", Op::new("Constant"), &[]).unwrap();
        let fill = AttributeProto {
            name: "value".to_owned(),
            r#type: AttributeType::Tensor as i32,
            t: Some(TensorProto {
                dims: vec![1],
                data_type: DataType::Float as i32,
                raw_data: 1.5_f32.to_le_bytes().to_vec(),
                ..TensorProto::default()
            }),
            ..AttributeProto::default()
        };
        let d = g
            .node_named("d", Op::new("ConstantOfShape"), &[&shape])
            .unwrap();
        let xa = g.node_named("xa", Op::new("Mul"), &[&x, &a]).unwrap();
        let xb = g.node_named("xb", Op::new("Add"), &[&xa, &b]).unwrap();
        let xc = g.node_named("xc", Op::new("Mul"), &[&xb, &c]).unwrap();
        let y = g.node_named("y", Op::new("Add"), &[&xc, &d]).unwrap();
        g.output(&y, DataType::Float, &[Dim::Fixed(2)]);
        let mut model = g.finish().unwrap();
        let graph = model.graph.as_mut().unwrap();
        for (output, attribute) in [("a", tensor), ("b", scalar), ("c", floats), ("d", fill)] {
            let node = graph.node.iter_mut().find(|n| n.output == [output]);
            node.unwrap().attribute.push(attribute);
        }
        graph.value_info = vec![
            value_info("xa", DataType::Float, &[Dim::Fixed(2)]),
            value_info("shape", DataType::Int64, &[Dim::Fixed(1)]),
        ];
        model
    }

    fn tensor_of<'a>(graph: &'a GraphProto, output: &str) -> &'a TensorProto {
        let node = graph.node.iter().find(|n| n.output == [output]).unwrap();
        assert_eq!(node.attribute.len(), 1, "{output}");
        assert_eq!(node.attribute[0].name, "value", "{output}");
        node.attribute[0].t.as_ref().unwrap()
    }

    /// The IEEE half bit patterns of `values`, little-endian, as `raw_data` holds them.
    fn halves(values: &[f32]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect()
    }

    #[test]
    fn constants_and_value_info_become_half() {
        let mut model = constants_graph();
        convert(&mut model).unwrap();
        let graph = model.graph.unwrap();
        for (output, dims, values) in [
            ("a", vec![2], vec![0.5, -2.0]),
            ("b", vec![], vec![3.0]),
            ("c", vec![2], vec![1.0, 0.25]),
            ("d", vec![1], vec![1.5]),
        ] {
            let t = tensor_of(&graph, output);
            assert_eq!(t.data_type, DataType::Float16 as i32, "{output}");
            assert_eq!(t.dims, dims, "{output}");
            assert_eq!(t.raw_data, halves(&values), "{output}");
            assert!(t.float_data.is_empty(), "{output}");
        }
        // 0.5 is 0x3800 and -2 is 0xc000 in half precision, checked by hand once.
        assert_eq!(tensor_of(&graph, "a").raw_data, [0x00, 0x38, 0x00, 0xc0]);
        let types: Vec<(&str, Option<DataType>)> = graph
            .value_info
            .iter()
            .map(|v| (v.name.as_str(), TensorType::of(v).map(|t| t.elem_type)))
            .collect();
        assert_eq!(
            types,
            [
                ("xa", Some(DataType::Float16)),
                ("shape", Some(DataType::Int64))
            ]
        );
        // The integer shape stays an integer.
        assert_eq!(graph.initializer[0].data_type, DataType::Int64 as i32);
    }

    #[test]
    fn refuses_what_it_cannot_convert_and_changes_nothing() {
        let subgraph = {
            let mut model = constants_graph();
            let graph = model.graph.as_mut().unwrap();
            graph.node[0].attribute.push(AttributeProto {
                name: "then_branch".to_owned(),
                r#type: AttributeType::Graph as i32,
                g: Some(GraphProto::default()),
                ..AttributeProto::default()
            });
            (model, "holds a subgraph")
        };
        let external = {
            let mut model = constants_graph();
            let graph = model.graph.as_mut().unwrap();
            graph.initializer.push(TensorProto {
                name: "big".to_owned(),
                data_type: DataType::Float as i32,
                data_location: DataLocation::External as i32,
                ..TensorProto::default()
            });
            (
                model,
                "initializer `big` keeps its data in an external file",
            )
        };
        let default_input = {
            let mut model = constants_graph();
            let graph = model.graph.as_mut().unwrap();
            graph.initializer.push(TensorProto {
                name: "x".to_owned(),
                data_type: DataType::Float as i32,
                dims: vec![2],
                float_data: vec![0.0, 0.0],
                ..TensorProto::default()
            });
            (model, "graph input `x` is also an initializer")
        };
        for (mut model, message) in [subgraph, external, default_input] {
            let before = model.clone();
            let err = convert(&mut model).unwrap_err();
            assert!(matches!(err, OnnxError::Fp16Unsupported(_)), "{err}");
            assert!(err.to_string().contains(message), "{err}");
            assert!(
                err.to_string().contains("export this model in FP32"),
                "{err}"
            );
            assert_eq!(model, before, "{message}");
        }
    }
}
