//! Which ONNX operators TensorRT's ONNX parser (onnx-tensorrt) imports, per TensorRT release,
//! and the restrictions on them that csra's exported graphs must respect.
//!
//! The sets are the operators marked supported in onnx-tensorrt's `docs/operators.md` at the
//! parser commit each TensorRT release pins: 8.5.3 (`fd119fe`), 8.6.1 (`6ba67d3`) and, for 10.3,
//! the 10.1-GA branch, the newest 10.x list available here (10.2 and 10.3 only added `Slice`
//! tensor axes and changed internals; see the crate README).

use std::collections::BTreeSet;

/// A TensorRT release line with its own ONNX parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Release {
    /// TensorRT 8.5 (JetPack 5.1), opsets up to 17.
    V8_5,
    /// TensorRT 8.6 (JetPack 6.0), opsets up to 17.
    V8_6,
    /// TensorRT 10.3 (JetPack 6.1/6.2), opsets 9 to 20.
    V10_3,
}

impl Release {
    /// Every release csra-trt supports.
    pub const ALL: [Release; 3] = [Release::V8_5, Release::V8_6, Release::V10_3];

    /// The highest `ai.onnx` opset the release's parser reads.
    pub fn max_opset(self) -> i64 {
        match self {
            Release::V8_5 | Release::V8_6 => 17,
            Release::V10_3 => 20,
        }
    }

    /// The release's name, e.g. `TensorRT 8.5`.
    pub fn name(self) -> &'static str {
        match self {
            Release::V8_5 => "TensorRT 8.5",
            Release::V8_6 => "TensorRT 8.6",
            Release::V10_3 => "TensorRT 10.3",
        }
    }

    /// Whether the release's ONNX parser imports `op`.
    pub fn supports(self, op: &str) -> bool {
        SUPPORTED_8_5.contains(&op)
            || (self >= Release::V8_6 && ADDED_8_6.contains(&op))
            || (self >= Release::V10_3 && ADDED_10.contains(&op))
    }
}

/// Operators TensorRT 8.5's parser imports.
const SUPPORTED_8_5: &[&str] = &[
    "Abs",
    "Acos",
    "Acosh",
    "Add",
    "And",
    "ArgMax",
    "ArgMin",
    "Asin",
    "Asinh",
    "Atan",
    "Atanh",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Ceil",
    "Celu",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvTranspose",
    "Cos",
    "Cosh",
    "CumSum",
    "DepthToSpace",
    "DequantizeLinear",
    "Div",
    "Dropout",
    "Einsum",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "EyeLike",
    "Flatten",
    "Floor",
    "GRU",
    "Gather",
    "GatherElements",
    "GatherND",
    "Gemm",
    "GlobalAveragePool",
    "GlobalLpPool",
    "GlobalMaxPool",
    "Greater",
    "GreaterOrEqual",
    "GridSample",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "If",
    "ImageScaler",
    "InstanceNormalization",
    "IsNaN",
    "LRN",
    "LSTM",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "LogSoftmax",
    "Loop",
    "LpNormalization",
    "LpPool",
    "MatMul",
    "Max",
    "MaxPool",
    "Mean",
    "MeanVarianceNormalization",
    "Min",
    "Mod",
    "Mul",
    "Neg",
    "NonMaxSuppression",
    "NonZero",
    "Not",
    "OneHot",
    "Or",
    "PRelu",
    "Pad",
    "ParametricSoftplus",
    "Pow",
    "QuantizeLinear",
    "RNN",
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Range",
    "Reciprocal",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "Relu",
    "Reshape",
    "Resize",
    "ReverseSequence",
    "RoiAlign",
    "Round",
    "ScaledTanh",
    "Scan",
    "Scatter",
    "ScatterElements",
    "ScatterND",
    "Selu",
    "Shape",
    "Shrink",
    "Sigmoid",
    "Sign",
    "Sin",
    "Sinh",
    "Size",
    "Slice",
    "Softmax",
    "Softplus",
    "Softsign",
    "SpaceToDepth",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Tan",
    "Tanh",
    "ThresholdedRelu",
    "Tile",
    "TopK",
    "Transpose",
    "Trilu",
    "Unsqueeze",
    "Upsample",
    "Where",
    "Xor",
];

/// Operators added by TensorRT 8.6's parser.
const ADDED_8_6: &[&str] = &["GroupNormalization", "IsInf", "LayerNormalization"];

/// Operators added by TensorRT 10's parser.
const ADDED_10: &[&str] = &["CastLike", "DeformConv", "Gelu", "Hardmax", "Mish"];

/// The operators of `ops` that `release` cannot import.
pub fn unsupported_ops<'a>(
    release: Release,
    ops: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<String> {
    ops.into_iter()
        .filter(|op| !release.supports(op))
        .map(str::to_owned)
        .collect()
}

/// One node of a graph, as far as the restrictions below look at it.
#[derive(Debug, Clone, Copy)]
pub struct NodeView<'a> {
    /// The operator, e.g. `Slice`.
    pub op_type: &'a str,
    /// The input tensor names (empty for an omitted optional input).
    pub inputs: &'a [String],
    /// The number of outputs.
    pub outputs: usize,
}

/// The documented restrictions of `release` that `nodes` break, one sentence each.
/// `is_initializer` says whether a tensor name is a graph initializer (or a `Constant`).
pub fn restriction_violations(
    release: Release,
    nodes: &[NodeView<'_>],
    is_initializer: impl Fn(&str) -> bool,
) -> Vec<String> {
    let computed =
        |input: Option<&String>| input.is_some_and(|n| !n.is_empty() && !is_initializer(n));
    let mut out = Vec::new();
    for node in nodes {
        match node.op_type {
            // "`axes` must be an initializer" (every release).
            "Slice" if computed(node.inputs.get(3)) => out.push(format!(
                "{}: Slice axes must be an initializer",
                release.name()
            )),
            // 10.x: "`axes` must be an initializer" for the reductions that take axes as input.
            "ReduceMax" | "ReduceMean" | "ReduceSum"
                if release >= Release::V10_3 && computed(node.inputs.get(1)) =>
            {
                out.push(format!(
                    "{}: {} axes must be an initializer",
                    release.name(),
                    node.op_type
                ))
            }
            // "`Indices` output tensor unsupported".
            "MaxPool" if node.outputs > 1 => out.push(format!(
                "{}: MaxPool's Indices output is unsupported",
                release.name()
            )),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_releases_add_operators_and_drop_none() {
        assert!(!Release::V8_5.supports("LayerNormalization"));
        assert!(Release::V8_6.supports("LayerNormalization"));
        assert!(!Release::V8_6.supports("Gelu"));
        assert!(Release::V10_3.supports("Gelu"));
        for op in SUPPORTED_8_5.iter().chain(ADDED_8_6) {
            assert!(Release::V10_3.supports(op), "{op}");
        }
        // Marked unsupported in every list.
        for r in Release::ALL {
            assert!(!r.supports("BitShift"), "{r:?}");
        }
    }

    #[test]
    fn unsupported_ops_names_only_the_missing_ones() {
        let ops = ["Conv", "Gelu", "Relu", "StringNormalizer"];
        let missing = unsupported_ops(Release::V8_5, ops);
        assert_eq!(
            missing.into_iter().collect::<Vec<_>>(),
            ["Gelu", "StringNormalizer"]
        );
    }

    #[test]
    fn computed_slice_and_reduce_axes_and_maxpool_indices_are_flagged() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let slice_in = names(&["x", "starts", "ends", "axes_from_shape"]);
        let reduce_in = names(&["x", "axes_const"]);
        let reduce_computed = names(&["x", "axes_from_shape"]);
        let nodes = [
            NodeView {
                op_type: "Slice",
                inputs: &slice_in,
                outputs: 1,
            },
            NodeView {
                op_type: "ReduceSum",
                inputs: &reduce_in,
                outputs: 1,
            },
            NodeView {
                op_type: "ReduceMax",
                inputs: &reduce_computed,
                outputs: 1,
            },
            NodeView {
                op_type: "MaxPool",
                inputs: &reduce_in[..1],
                outputs: 2,
            },
        ];
        let init = |n: &str| n != "axes_from_shape" && n != "x";
        let v85 = restriction_violations(Release::V8_5, &nodes, init);
        assert_eq!(v85.len(), 2, "{v85:?}");
        let v10 = restriction_violations(Release::V10_3, &nodes, init);
        assert_eq!(v10.len(), 3, "{v10:?}");
        assert!(v10.iter().any(|v| v.contains("ReduceMax axes")));
    }
}
