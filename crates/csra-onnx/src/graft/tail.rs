//! Recognises the standard classifier tail
//! `GlobalAveragePool → Flatten/Reshape → Gemm | MatMul (+ Add)` that ends in a logits tensor,
//! as torchvision and most CNN exports write it, and reads its classifier.

use std::collections::HashMap;

use crate::pb::{AttributeProto, GraphProto, NodeProto, TensorProto};

use crate::error::OnnxError;
use crate::head::ClassifierWeights;
use crate::tensor_data::{dims, f32_data};

/// A recognised tail: the feature map it pools and its classifier as `[C, d]` plus bias.
#[derive(Debug)]
pub(super) struct ClassifierTail {
    /// The `[N, d, h, w]` tensor the GlobalAveragePool reads.
    pub feature: String,
    /// The classifier, with Gemm's α and β folded in.
    pub classifier: ClassifierWeights,
    /// The class count C.
    pub num_classes: usize,
    /// The feature width d.
    pub dim: usize,
}

/// A classifier read from the graph, as `[num_classes, dim]`.
struct Linear {
    classifier: ClassifierWeights,
    num_classes: usize,
    dim: usize,
}

/// Ops that pass their input through unchanged at inference time.
const PASS_THROUGH: &[&str] = &["Identity", "Dropout"];

struct Graph<'a> {
    producers: HashMap<&'a str, &'a NodeProto>,
    initializers: HashMap<&'a str, &'a TensorProto>,
    logits: &'a str,
}

impl<'a> Graph<'a> {
    fn new(graph: &'a GraphProto, logits: &'a str) -> Self {
        Self {
            producers: graph
                .node
                .iter()
                .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
                .collect(),
            initializers: graph
                .initializer
                .iter()
                .map(|i| (i.name.as_str(), i))
                .collect(),
            logits,
        }
    }

    fn mismatch(&self, reason: String) -> OnnxError {
        OnnxError::NoClassifierTail {
            logits: self.logits.to_owned(),
            reason,
        }
    }

    /// The node producing `tensor`, looking through pass-through ops.
    fn producer(&self, tensor: &str) -> Result<&'a NodeProto, OnnxError> {
        let mut tensor = tensor;
        loop {
            let node = self.producers.get(tensor).copied().ok_or_else(|| {
                self.mismatch(format!(
                    "`{tensor}` is not computed by any node (it is a graph input or a constant)"
                ))
            })?;
            match node.input.first() {
                Some(input) if PASS_THROUGH.contains(&node.op_type.as_str()) => tensor = input,
                _ => return Ok(node),
            }
        }
    }

    /// The data of the `f32` initializer `name`, with its dimensions.
    fn constant(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), OnnxError> {
        let tensor = self
            .initializers
            .get(name)
            .ok_or_else(|| OnnxError::ClassifierTensor {
                name: name.to_owned(),
                reason: "it is not a constant initializer, so the classifier cannot be read; \
                         export the model with its weights as initializers"
                    .to_owned(),
            })?;
        let classifier_error = |reason: String| OnnxError::ClassifierTensor {
            name: name.to_owned(),
            reason,
        };
        let data = f32_data(tensor).map_err(classifier_error)?;
        let dims = dims(tensor)
            .ok_or_else(|| classifier_error("it has a negative dimension".to_owned()))?;
        Ok((dims, data))
    }
}

/// Finds the classifier tail that ends in `logits`.
pub(super) fn find(graph: &GraphProto, logits: &str) -> Result<ClassifierTail, OnnxError> {
    let g = Graph::new(graph, logits);
    let last = g.producer(logits)?;
    let (input, linear) = match last.op_type.as_str() {
        "Gemm" => gemm(&g, last)?,
        "MatMul" => matmul(&g, last)?,
        "Add" => add(&g, last)?,
        other => {
            return Err(g.mismatch(format!(
                "`{logits}` is computed by a {other} node (`{}`), not Gemm, MatMul or Add",
                last.name
            )))
        }
    };
    let flatten = g.producer(input)?;
    let flat_axis_ok = flatten.op_type == "Reshape"
        || (flatten.op_type == "Flatten" && int_attribute(flatten, "axis").unwrap_or(1) == 1);
    if !flat_axis_ok {
        return Err(g.mismatch(format!(
            "the classifier reads `{input}`, computed by a {} node (`{}`), not Flatten(axis = 1) \
             or Reshape",
            flatten.op_type, flatten.name
        )));
    }
    let pooled = first_input(&g, flatten)?;
    let pool = g.producer(pooled)?;
    if pool.op_type != "GlobalAveragePool" {
        return Err(g.mismatch(format!(
            "the {} reads `{pooled}`, computed by a {} node (`{}`), not GlobalAveragePool",
            flatten.op_type, pool.op_type, pool.name
        )));
    }
    Ok(ClassifierTail {
        feature: first_input(&g, pool)?.to_owned(),
        classifier: linear.classifier,
        num_classes: linear.num_classes,
        dim: linear.dim,
    })
}

/// `Y = α·A·B' + β·C`: B is the weight (`[C, d]` when transB = 1, else `[d, C]`), C the bias.
fn gemm<'a>(g: &Graph<'a>, node: &'a NodeProto) -> Result<(&'a str, Linear), OnnxError> {
    if int_attribute(node, "transA").unwrap_or(0) != 0 {
        return Err(g.mismatch(format!(
            "Gemm `{}` transposes its input (transA = 1), which no classifier tail does",
            node.name
        )));
    }
    let [input, weight, rest @ ..] = node.input.as_slice() else {
        return Err(g.mismatch(format!("Gemm `{}` has fewer than two inputs", node.name)));
    };
    let alpha = float_attribute(node, "alpha").unwrap_or(1.0);
    let beta = float_attribute(node, "beta").unwrap_or(1.0);
    let transposed = int_attribute(node, "transB").unwrap_or(0) != 0;
    let mut linear = weight_matrix(g, weight, transposed)?;
    if alpha != 1.0 {
        linear
            .classifier
            .weight
            .iter_mut()
            .for_each(|w| *w *= alpha);
    }
    if let Some(bias) = rest.first().filter(|b| !b.is_empty()) {
        let mut bias = bias_vector(g, bias, linear.num_classes)?;
        if beta != 1.0 {
            bias.iter_mut().for_each(|b| *b *= beta);
        }
        linear.classifier.bias = Some(bias);
    }
    Ok((input, linear))
}

/// `Y = A·B` with B the `[d, C]` weight.
fn matmul<'a>(g: &Graph<'a>, node: &'a NodeProto) -> Result<(&'a str, Linear), OnnxError> {
    let [input, weight] = node.input.as_slice() else {
        return Err(g.mismatch(format!("MatMul `{}` does not have two inputs", node.name)));
    };
    Ok((input, weight_matrix(g, weight, false)?))
}

/// `MatMul + bias`, in either operand order.
fn add<'a>(g: &Graph<'a>, node: &'a NodeProto) -> Result<(&'a str, Linear), OnnxError> {
    let [a, b] = node.input.as_slice() else {
        return Err(g.mismatch(format!("Add `{}` does not have two inputs", node.name)));
    };
    let (product, bias) = if g.initializers.contains_key(b.as_str()) {
        (a, b)
    } else {
        (b, a)
    };
    let product_node = g.producer(product)?;
    if product_node.op_type != "MatMul" || !g.initializers.contains_key(bias.as_str()) {
        return Err(g.mismatch(format!(
            "Add `{}` is not a MatMul plus a constant bias",
            node.name
        )));
    }
    let (input, mut linear) = matmul(g, product_node)?;
    linear.classifier.bias = Some(bias_vector(g, bias, linear.num_classes)?);
    Ok((input, linear))
}

/// Reads a 2-D weight as row-major `[C, d]`: as stored when `class_major`, else transposed
/// from `[d, C]`.
fn weight_matrix(g: &Graph<'_>, name: &str, class_major: bool) -> Result<Linear, OnnxError> {
    let (dims, data) = g.constant(name)?;
    let [rows, cols] = dims.as_slice() else {
        return Err(OnnxError::ClassifierTensor {
            name: name.to_owned(),
            reason: format!("it has shape {dims:?}, expected a 2-D matrix"),
        });
    };
    let (num_classes, dim) = if class_major {
        (*rows, *cols)
    } else {
        (*cols, *rows)
    };
    let weight = if class_major {
        data
    } else {
        (0..num_classes)
            .flat_map(|c| (0..dim).map(move |k| (c, k)))
            .map(|(c, k)| data[k * num_classes + c])
            .collect()
    };
    Ok(Linear {
        classifier: ClassifierWeights { weight, bias: None },
        num_classes,
        dim,
    })
}

/// Reads a bias of C values (any shape holding C values), or one value broadcast to all.
fn bias_vector(g: &Graph<'_>, name: &str, num_classes: usize) -> Result<Vec<f32>, OnnxError> {
    let (_, data) = g.constant(name)?;
    match data.as_slice() {
        [single] => Ok(vec![*single; num_classes]),
        values if values.len() == num_classes => Ok(data),
        values => Err(OnnxError::ClassifierTensor {
            name: name.to_owned(),
            reason: format!(
                "it has {} values but the classifier has {num_classes} classes",
                values.len()
            ),
        }),
    }
}

fn first_input<'a>(g: &Graph<'a>, node: &'a NodeProto) -> Result<&'a str, OnnxError> {
    node.input
        .first()
        .map(String::as_str)
        .ok_or_else(|| g.mismatch(format!("{} `{}` has no input", node.op_type, node.name)))
}

fn attribute<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn int_attribute(node: &NodeProto, name: &str) -> Option<i64> {
    attribute(node, name).map(|a| a.i)
}

fn float_attribute(node: &NodeProto, name: &str) -> Option<f32> {
    attribute(node, name).map(|a| a.f)
}
