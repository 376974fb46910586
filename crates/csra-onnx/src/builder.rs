//! [`GraphBuilder`]: typed construction of an ONNX graph with readable, unique names.

use std::collections::HashSet;

use crate::pb::tensor_proto::DataType;
#[cfg(feature = "graft")]
use crate::pb::ValueInfoProto;
use crate::pb::{GraphProto, ModelProto, NodeProto, OperatorSetIdProto};

use crate::error::OnnxError;
use crate::graph_order;
use crate::op::Op;
use crate::shape::{value_info, Dim};
use crate::tensor_data::{f32_tensor, i64_tensor};

/// The `ai.onnx` opset every new model is written with.
pub const OPSET: i64 = 17;

/// The IR version every new model is written with (the one that goes with opset 17).
pub const IR_VERSION: i64 = 8;

/// The oldest opset a graft may extend: the head's ReduceSum and Split take their axes and
/// sizes as inputs, which opset 13 introduced.
pub(crate) const MIN_GRAFT_OPSET: i64 = 13;

/// A tensor of the graph being built, by name. Only a [`GraphBuilder`] hands these out, so a
/// `Value` always names a tensor that the graph defines.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Value {
    name: String,
}

impl Value {
    /// The tensor's name in the graph.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Builds an ONNX model: inputs, initializers, nodes and outputs, with every name unique.
///
/// Names are hints made unique by a numeric suffix (`conv_3.weight`, then `conv_3.weight_1`),
/// except where an exact name is asked for ([`GraphBuilder::input`],
/// [`GraphBuilder::node_named`]). Nodes are named after their first output. [`finish`] sorts the
/// nodes topologically and checks that every tensor read is defined.
///
/// [`finish`]: GraphBuilder::finish
#[derive(Debug, Clone)]
pub struct GraphBuilder {
    /// Everything but the graph: opsets, producer, metadata.
    model: ModelProto,
    graph: GraphProto,
    names: HashSet<String>,
}

impl GraphBuilder {
    /// An empty graph for a new model: opset [`OPSET`], IR version [`IR_VERSION`].
    pub fn new(graph_name: &str) -> Self {
        let model = ModelProto {
            ir_version: IR_VERSION,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: "csra-onnx".to_owned(),
            producer_version: env!("CARGO_PKG_VERSION").to_owned(),
            ..ModelProto::default()
        };
        let graph = GraphProto {
            name: graph_name.to_owned(),
            ..GraphProto::default()
        };
        Self {
            model,
            graph,
            names: HashSet::new(),
        }
    }

    /// Continues an existing model, keeping its opset, IR version and metadata.
    ///
    /// Only models of opset 13 to 17 are accepted: the ops this crate adds are written for that
    /// range.
    pub fn from_model(mut model: ModelProto) -> Result<Self, OnnxError> {
        let graph = model.graph.take().ok_or(OnnxError::NoGraph)?;
        let version = default_opset(&model);
        if !(MIN_GRAFT_OPSET..=OPSET).contains(&version) {
            return Err(OnnxError::UnsupportedOpset { version });
        }
        let mut builder = Self {
            model,
            graph,
            names: HashSet::new(),
        };
        builder.collect_names();
        Ok(builder)
    }

    /// The graph as built so far, for reading.
    pub fn graph(&self) -> &GraphProto {
        &self.graph
    }

    /// The tensor called `name`, if the graph defines one (input, initializer or node output).
    pub fn value(&self, name: &str) -> Option<Value> {
        self.defines(name).then(|| Value {
            name: name.to_owned(),
        })
    }

    /// Declares a graph input named exactly `name`.
    pub fn input(
        &mut self,
        name: &str,
        elem_type: DataType,
        shape: &[Dim],
    ) -> Result<Value, OnnxError> {
        let value = self.claim(name)?;
        self.graph.input.push(value_info(name, elem_type, shape));
        Ok(value)
    }

    /// Adds an `f32` initializer of shape `dims` (row-major `data`) under a unique name.
    pub fn initializer_f32(
        &mut self,
        name_hint: &str,
        dims: &[usize],
        data: &[f32],
    ) -> Result<Value, OnnxError> {
        check_len(name_hint, dims, data.len())?;
        let value = self.fresh(name_hint);
        self.graph
            .initializer
            .push(f32_tensor(&value.name, dims, data));
        Ok(value)
    }

    /// Adds a one-dimensional `i64` initializer, the form ONNX wants for shapes and axes.
    pub fn ints(&mut self, name_hint: &str, data: &[i64]) -> Value {
        let value = self.fresh(name_hint);
        self.graph
            .initializer
            .push(i64_tensor(&value.name, &[data.len()], data));
        value
    }

    /// Adds a one-element `f32` initializer of shape `[1]`. It broadcasts like a scalar, and
    /// unlike a 0-d tensor every runtime's constant handling accepts it.
    pub fn scalar(&mut self, name_hint: &str, value: f32) -> Value {
        let tensor = self.fresh(name_hint);
        self.graph
            .initializer
            .push(f32_tensor(&tensor.name, &[1], &[value]));
        tensor
    }

    /// Adds a node with one output, named after `name_hint` (made unique).
    pub fn node(&mut self, name_hint: &str, op: Op, inputs: &[&Value]) -> Value {
        let output = self.fresh(name_hint);
        self.push_node(op, inputs, std::slice::from_ref(&output));
        output
    }

    /// Adds a node whose one output is named exactly `name`, such as a graph output `logits`.
    pub fn node_named(
        &mut self,
        name: &str,
        op: Op,
        inputs: &[&Value],
    ) -> Result<Value, OnnxError> {
        let output = self.claim(name)?;
        self.push_node(op, inputs, std::slice::from_ref(&output));
        Ok(output)
    }

    /// Adds a node with one output per hint in `output_hints` (e.g. a `Split`).
    pub fn node_multi<const K: usize>(
        &mut self,
        op: Op,
        inputs: &[&Value],
        output_hints: [&str; K],
    ) -> [Value; K] {
        let outputs = output_hints.map(|hint| self.fresh(hint));
        self.push_node(op, inputs, &outputs);
        outputs
    }

    /// Declares `value` a graph output of `elem_type` and `shape`.
    pub fn output(&mut self, value: &Value, elem_type: DataType, shape: &[Dim]) {
        self.graph
            .output
            .push(value_info(&value.name, elem_type, shape));
    }

    /// Sorts the nodes topologically, checks that every tensor read is defined, and returns
    /// the model.
    pub fn finish(mut self) -> Result<ModelProto, OnnxError> {
        graph_order::sort_and_check(&mut self.graph)?;
        self.model.graph = Some(self.graph);
        Ok(self.model)
    }

    /// Runs `f` on the model as built so far, without copying it.
    #[cfg(feature = "graft")]
    pub(crate) fn with_model<R>(&mut self, f: impl FnOnce(&ModelProto) -> R) -> R {
        self.model.graph = Some(std::mem::take(&mut self.graph));
        let result = f(&self.model);
        self.graph = self.model.graph.take().unwrap_or_default();
        result
    }

    /// Removes the graph outputs and returns their declarations.
    #[cfg(feature = "graft")]
    pub(crate) fn take_outputs(&mut self) -> Vec<ValueInfoProto> {
        std::mem::take(&mut self.graph.output)
    }

    /// Declares graph outputs again, as they were declared before.
    #[cfg(feature = "graft")]
    pub(crate) fn restore_outputs(&mut self, outputs: impl IntoIterator<Item = ValueInfoProto>) {
        self.graph.output.extend(outputs);
    }

    /// Removes the node that produces `tensor`, if any.
    #[cfg(feature = "graft")]
    pub(crate) fn remove_producer(&mut self, tensor: &str) {
        self.graph
            .node
            .retain(|node| !node.output.iter().any(|o| o == tensor));
        self.collect_names();
    }

    /// Drops every node, initializer and value declaration that no graph output depends on,
    /// and frees their names.
    #[cfg(feature = "graft")]
    pub(crate) fn prune(&mut self) {
        graph_order::prune(&mut self.graph);
        self.collect_names();
    }

    fn push_node(&mut self, op: Op, inputs: &[&Value], outputs: &[Value]) {
        let name = outputs.first().map(|o| o.name.clone()).unwrap_or_default();
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|v| v.name.clone()).collect(),
            output: outputs.iter().map(|v| v.name.clone()).collect(),
            name,
            op_type: op.op_type,
            attribute: op.attributes,
            ..NodeProto::default()
        });
    }

    fn defines(&self, name: &str) -> bool {
        self.graph.input.iter().any(|i| i.name == name)
            || self.graph.initializer.iter().any(|i| i.name == name)
            || self
                .graph
                .node
                .iter()
                .any(|n| n.output.iter().any(|o| o == name))
    }

    /// Reserves exactly `name`.
    fn claim(&mut self, name: &str) -> Result<Value, OnnxError> {
        if !self.names.insert(name.to_owned()) {
            return Err(OnnxError::NameTaken {
                name: name.to_owned(),
            });
        }
        Ok(Value {
            name: name.to_owned(),
        })
    }

    /// Reserves `hint`, or `hint_1`, `hint_2`, ... if it is taken.
    fn fresh(&mut self, hint: &str) -> Value {
        let mut name = hint.to_owned();
        let mut suffix = 0;
        while self.names.contains(&name) {
            suffix += 1;
            name = format!("{hint}_{suffix}");
        }
        self.names.insert(name.clone());
        Value { name }
    }

    fn collect_names(&mut self) {
        let graph = &self.graph;
        self.names = graph
            .input
            .iter()
            .map(|i| i.name.clone())
            .chain(graph.initializer.iter().map(|i| i.name.clone()))
            .chain(graph.node.iter().map(|n| n.name.clone()))
            .chain(graph.node.iter().flat_map(|n| n.output.iter().cloned()))
            .filter(|name| !name.is_empty())
            .collect();
    }
}

/// The version of the default (`ai.onnx`) opset a model imports; 0 when it imports none.
pub(crate) fn default_opset(model: &ModelProto) -> i64 {
    model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(0, |o| o.version)
}

fn check_len(name: &str, dims: &[usize], actual: usize) -> Result<(), OnnxError> {
    let expected: usize = dims.iter().product();
    if expected == actual {
        Ok(())
    } else {
        Err(OnnxError::InitializerShape {
            name: name.to_owned(),
            shape: dims.to_vec(),
            expected,
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_unique_and_exact_names_are_guarded() {
        let mut b = GraphBuilder::new("g");
        let x = b.input("x", DataType::Float, &[Dim::Fixed(1)]).unwrap();
        let first = b.node("conv_3.weight", Op::new("Relu"), &[&x]);
        let second = b.node("conv_3.weight", Op::new("Relu"), &[&first]);
        assert_eq!(first.name(), "conv_3.weight");
        assert_eq!(second.name(), "conv_3.weight_1");
        assert!(matches!(
            b.node_named("x", Op::new("Relu"), &[&x]),
            Err(OnnxError::NameTaken { .. })
        ));
        assert_eq!(b.value("conv_3.weight_1"), Some(second));
        assert_eq!(b.value("nothing"), None);
    }

    #[test]
    fn a_new_model_is_opset_17_ir_8() {
        let mut b = GraphBuilder::new("g");
        let x = b.input("x", DataType::Float, &[Dim::batch(true)]).unwrap();
        let y = b.node("y", Op::new("Relu"), &[&x]);
        b.output(&y, DataType::Float, &[Dim::batch(true)]);
        let model = b.finish().unwrap();
        assert_eq!(model.ir_version, 8);
        assert_eq!(default_opset(&model), 17);
        assert_eq!(model.graph.unwrap().node[0].name, "y");
    }

    #[test]
    fn grafting_needs_opset_13_to_17() {
        for (version, ok) in [(12, false), (13, true), (17, true), (18, false)] {
            let mut model = GraphBuilder::new("g").finish().unwrap();
            model.opset_import[0].version = version;
            let result = GraphBuilder::from_model(model);
            assert_eq!(result.is_ok(), ok, "opset {version}");
        }
        let model = ModelProto::default();
        assert!(matches!(
            GraphBuilder::from_model(model),
            Err(OnnxError::NoGraph)
        ));
    }
}
