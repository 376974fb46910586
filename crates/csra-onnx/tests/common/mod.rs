//! Shared helpers: running models in tract, reading them back with prost, seeded data, `.npy`
//! files for the Python cross-check.

#![allow(dead_code, clippy::unwrap_used)]

pub mod npy;

use std::collections::BTreeMap;
use std::path::Path;

use csra_onnx::pb::ModelProto;
use prost::Message;
use rand::rngs::StdRng;
use rand::RngExt;
use tract_onnx::prelude::*;

/// One output tensor of a tract run.
#[derive(Debug, Clone)]
pub struct Output {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Loads `path` in tract, optimises it and runs it on `inputs` (shape, data), in input order.
pub fn run(path: &Path, inputs: &[(Vec<usize>, Vec<f32>)]) -> Vec<Output> {
    let model = tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let inputs: TVec<TValue> = inputs
        .iter()
        .map(|(shape, data)| Tensor::from_shape(shape, data).unwrap().into_tvalue())
        .collect();
    model
        .run(inputs)
        .unwrap()
        .iter()
        .map(|t| Output {
            shape: t.shape().to_vec(),
            data: t
                .try_as_plain_ram()
                .unwrap()
                .as_slice::<f32>()
                .unwrap()
                .to_vec(),
        })
        .collect()
}

/// Decodes `path` with prost, as any ONNX consumer would.
pub fn decode(path: &Path) -> ModelProto {
    ModelProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap()
}

/// The op histogram of the file at `path`, decoded independently of `csra_onnx::inspect`.
pub fn histogram(path: &Path) -> BTreeMap<String, usize> {
    let mut histogram = BTreeMap::new();
    for node in decode(path).graph.unwrap().node {
        *histogram.entry(node.op_type).or_insert(0) += 1;
    }
    histogram
}

/// A histogram from `(op, count)` pairs, leaving out zero counts.
pub fn ops(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(op, n)| ((*op).to_owned(), *n))
        .collect()
}

/// `n` values drawn uniformly from `[lo, hi)`.
pub fn uniform(rng: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// The normwise relative error `max_i |a_i − b_i| / max_i |b_i|` of two equally long vectors:
/// elementwise ratios are meaningless for logits that cancel to near zero.
pub fn relative_error(actual: &[f32], expected: &[f32]) -> f64 {
    assert_eq!(actual.len(), expected.len());
    let scale = expected
        .iter()
        .map(|&b| f64::from(b).abs())
        .fold(f64::MIN_POSITIVE, f64::max);
    max_abs_error(actual, expected) / scale
}

/// The largest `|a_i − b_i|`.
pub fn max_abs_error(actual: &[f32], expected: &[f32]) -> f64 {
    assert_eq!(actual.len(), expected.len());
    actual
        .iter()
        .zip(expected)
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).abs())
        .fold(0.0, f64::max)
}

pub fn sigmoid(x: f32) -> f32 {
    (1.0 / (1.0 + (-f64::from(x)).exp())) as f32
}

/// How the tiny backbone's classifier tail is written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tail {
    /// `GlobalAveragePool → Flatten → Gemm(transB = 1)`, as torchvision exports a Linear.
    Gemm,
    /// `GlobalAveragePool → Reshape → Gemm(transB = 0, α = 0.5, β = 2)`.
    GemmScaled,
    /// `GlobalAveragePool → Identity → Flatten → MatMul → Add(bias, product)`.
    MatMulAdd,
    /// `ReduceMean(axes = [2, 3]) → Flatten → Gemm`: not the standard tail.
    ReduceMean,
}

/// A tiny backbone: two strided 3×3 convolutions with ReLU (`image` [N, 3, 32, 32] →
/// `features` [N, 16, 8, 8]), then a classifier tail to `logits` [N, 10].
pub struct Backbone {
    pub model: ModelProto,
    /// The classifier as the graph computes it, `[C, d]` row-major, α and β folded in.
    pub weight: Vec<f32>,
    /// The classifier bias, β folded in.
    pub bias: Vec<f32>,
}

pub const CLASSES: usize = 10;
pub const FEATURE_DIM: usize = 16;
pub const FEATURE_SIZE: usize = 8;
pub const IMAGE_SIZE: usize = 32;

/// What the backbone exposes besides `logits`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras {
    /// Also output `features`, to compute expected values by hand.
    pub features_output: bool,
    /// Also output `softmax`, a node that reads `logits`.
    pub softmax_output: bool,
}

pub fn tiny_backbone(tail: Tail, extras: Extras, rng: &mut StdRng) -> Backbone {
    use csra_onnx::pb::tensor_proto::DataType;
    use csra_onnx::{Dim, GraphBuilder, Op};

    let mut b = GraphBuilder::new("tiny");
    let image = b
        .input(
            "image",
            DataType::Float,
            &[
                Dim::batch(true),
                Dim::Fixed(3),
                Dim::Fixed(IMAGE_SIZE),
                Dim::Fixed(IMAGE_SIZE),
            ],
        )
        .unwrap();
    let conv = |b: &mut GraphBuilder,
                name: &str,
                x: &csra_onnx::Value,
                cin: usize,
                cout: usize,
                rng: &mut StdRng| {
        let scale = 1.0 / (cin as f32 * 9.0).sqrt();
        let w = b
            .initializer_f32(
                &format!("{name}.weight"),
                &[cout, cin, 3, 3],
                &uniform(rng, cout * cin * 9, -scale, scale),
            )
            .unwrap();
        let bias = b
            .initializer_f32(
                &format!("{name}.bias"),
                &[cout],
                &uniform(rng, cout, -0.1, 0.1),
            )
            .unwrap();
        let op = Op::new("Conv")
            .ints("kernel_shape", &[3, 3])
            .ints("strides", &[2, 2])
            .ints("pads", &[1, 1, 1, 1]);
        b.node(name, op, &[x, &w, &bias])
    };
    let x = conv(&mut b, "conv_1", &image, 3, 8, rng);
    let x = b.node("relu_1", Op::new("Relu"), &[&x]);
    let x = conv(&mut b, "conv_2", &x, 8, FEATURE_DIM, rng);
    let features = b.node("features", Op::new("Relu"), &[&x]);

    let pooled = match tail {
        Tail::ReduceMean => b.node(
            "pool",
            Op::new("ReduceMean")
                .ints("axes", &[2, 3])
                .int("keepdims", 1),
            &[&features],
        ),
        _ => b.node("pool", Op::new("GlobalAveragePool"), &[&features]),
    };
    let weight = uniform(rng, CLASSES * FEATURE_DIM, -1.0, 1.0);
    let bias = uniform(rng, CLASSES, -0.5, 0.5);
    let transposed: Vec<f32> = (0..FEATURE_DIM)
        .flat_map(|k| (0..CLASSES).map(move |c| (k, c)))
        .map(|(k, c)| weight[c * FEATURE_DIM + k])
        .collect();
    let (logits, weight, bias) = match tail {
        Tail::Gemm | Tail::ReduceMean => {
            let flat = b.node("flatten", Op::new("Flatten").int("axis", 1), &[&pooled]);
            let w = b
                .initializer_f32("fc.weight", &[CLASSES, FEATURE_DIM], &weight)
                .unwrap();
            let bb = b.initializer_f32("fc.bias", &[CLASSES], &bias).unwrap();
            let logits = b
                .node_named(
                    "logits",
                    Op::new("Gemm").int("transB", 1),
                    &[&flat, &w, &bb],
                )
                .unwrap();
            (logits, weight, bias)
        }
        Tail::GemmScaled => {
            let shape = b.ints("flat_shape", &[-1, FEATURE_DIM as i64]);
            let flat = b.node("reshape", Op::new("Reshape"), &[&pooled, &shape]);
            let w = b
                .initializer_f32("fc.weight", &[FEATURE_DIM, CLASSES], &transposed)
                .unwrap();
            let bb = b.initializer_f32("fc.bias", &[1, CLASSES], &bias).unwrap();
            let op = Op::new("Gemm").float("alpha", 0.5).float("beta", 2.0);
            let logits = b.node_named("logits", op, &[&flat, &w, &bb]).unwrap();
            (
                logits,
                weight.iter().map(|w| w * 0.5).collect(),
                bias.iter().map(|b| b * 2.0).collect(),
            )
        }
        Tail::MatMulAdd => {
            let same = b.node("identity", Op::new("Identity"), &[&pooled]);
            let flat = b.node("flatten", Op::new("Flatten").int("axis", 1), &[&same]);
            let w = b
                .initializer_f32("fc.weight", &[FEATURE_DIM, CLASSES], &transposed)
                .unwrap();
            let bb = b.initializer_f32("fc.bias", &[CLASSES], &bias).unwrap();
            let product = b.node("fc.matmul", Op::new("MatMul"), &[&flat, &w]);
            let logits = b
                .node_named("logits", Op::new("Add"), &[&bb, &product])
                .unwrap();
            (logits, weight, bias)
        }
    };
    let batch_classes = [Dim::batch(true), Dim::Fixed(CLASSES)];
    b.output(&logits, DataType::Float, &batch_classes);
    if extras.softmax_output {
        let softmax = b
            .node_named("softmax", Op::new("Softmax").int("axis", 1), &[&logits])
            .unwrap();
        b.output(&softmax, DataType::Float, &batch_classes);
    }
    if extras.features_output {
        b.output(
            &features,
            DataType::Float,
            &[
                Dim::batch(true),
                Dim::Fixed(FEATURE_DIM),
                Dim::Fixed(FEATURE_SIZE),
                Dim::Fixed(FEATURE_SIZE),
            ],
        );
    }
    Backbone {
        model: b.finish().unwrap(),
        weight,
        bias,
    }
}

/// Writes `model` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, model: &ModelProto) -> std::path::PathBuf {
    let path = dir.join(name);
    csra_onnx::write_model(&path, model).unwrap();
    path
}

/// A graft target in `dir` with `classes` numbered class names.
#[cfg(feature = "graft")]
pub fn target(dir: &Path, name: &str, classes: usize) -> csra_onnx::graft::GraftTarget {
    use csra_core::manifest::{ColorOrder, OutputNames, Preprocess, Provenance};
    csra_onnx::graft::GraftTarget {
        path: dir.join(name),
        labels: csra_core::LabelSet::new((0..classes).map(|c| format!("class_{c}")), "test")
            .unwrap(),
        provenance: Provenance {
            backbone: "tiny".to_owned(),
            dataset: "random".to_owned(),
            epochs: 0,
            commit: None,
            created_by: "csra-onnx tests".to_owned(),
            note: None,
        },
        preprocess: Preprocess::official(),
        color: ColorOrder::Rgb,
        outputs: OutputNames::default(),
    }
}
