//! Every operator csra exports is imported by TensorRT 8.5, 8.6 and 10.3's ONNX parsers, within
//! their documented restrictions: the heads csra-onnx emits (every variant, H = 1..8, with and
//! without attention output, static and dynamic batch) and the shipped MobileNetV2 model.
// Test helpers panic on failure by design: a failed set-up is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;

use csra_core::head::{paper_temperatures, HeadSpec, Temperature};
use csra_core::manifest::OutputNames;
use csra_onnx::pb::tensor_proto::DataType;
use csra_onnx::pb::{GraphProto, ModelProto};
use csra_onnx::{emit_head, ClassifierWeights, Dim, FeatureShape, GraphBuilder, HeadWeights};
use csra_trt::onnx_ops::{restriction_violations, unsupported_ops, NodeView, Release};

/// What the backbones add to a head (csra-host's emitters, BatchNorm folded into Conv):
/// ResNet-18/34/50/101 Conv, Relu, MaxPool and the residual Add; MobileNetV2 Conv, Clip (ReLU6)
/// and Add; `--fp16` a Cast at each graph input and output.
const BACKBONE_OPS: &[&str] = &["Conv", "Relu", "MaxPool", "Add", "Clip", "Cast"];

fn spec(variant: &str, heads: usize) -> HeadSpec {
    match variant {
        "baseline" => HeadSpec::baseline(),
        "max" => HeadSpec::max(0.5).unwrap(),
        _ => {
            let temperatures = paper_temperatures(heads).unwrap_or_else(|| {
                (1..heads)
                    .map(|t| Temperature::Softmax(t as f32))
                    .chain([Temperature::Max])
                    .collect()
            });
            HeadSpec::csra_with_temperatures(temperatures, 0.1).unwrap()
        }
    }
}

fn head_model(spec: HeadSpec, attention: bool, dynamic: bool) -> ModelProto {
    let (classes, dim) = (4, 6);
    let shape = FeatureShape {
        batch: Dim::batch(dynamic),
        channels: dim,
        height: 3,
        width: 3,
    };
    let classifiers = (0..spec.num_heads())
        .map(|h| ClassifierWeights {
            weight: (0..classes * dim)
                .map(|i| ((i + h) % 7) as f32 * 0.1 + 0.05)
                .collect(),
            bias: None,
        })
        .collect();
    let weights = HeadWeights::new(spec, classes, dim, classifiers).unwrap();
    let mut g = GraphBuilder::new("head");
    let features = g
        .input(
            "features",
            DataType::Float,
            &[
                shape.batch.clone(),
                Dim::Fixed(dim),
                Dim::Fixed(3),
                Dim::Fixed(3),
            ],
        )
        .unwrap();
    let names = OutputNames {
        attention: attention.then(|| "attention".to_owned()),
        ..OutputNames::default()
    };
    emit_head(&mut g, &features, &shape, &weights, &names).unwrap();
    g.finish().unwrap()
}

/// Unsupported operators and broken restrictions of `graph` for `release`.
fn problems(release: Release, model: &ModelProto) -> Vec<String> {
    let graph: &GraphProto = model.graph.as_ref().unwrap();
    let ops = graph.node.iter().map(|n| n.op_type.as_str());
    let mut out: Vec<String> = unsupported_ops(release, ops)
        .into_iter()
        .map(|op| format!("{}: no {op}", release.name()))
        .collect();
    let constants: BTreeSet<&str> = graph
        .initializer
        .iter()
        .map(|t| t.name.as_str())
        .chain(
            graph
                .node
                .iter()
                .filter(|n| n.op_type == "Constant")
                .flat_map(|n| n.output.iter().map(String::as_str)),
        )
        .collect();
    let nodes: Vec<NodeView<'_>> = graph
        .node
        .iter()
        .map(|n| NodeView {
            op_type: &n.op_type,
            inputs: &n.input,
            outputs: n.output.len(),
        })
        .collect();
    out.extend(restriction_violations(release, &nodes, |name| {
        constants.contains(name)
    }));
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(0, |o| o.version);
    if opset > release.max_opset() {
        out.push(format!(
            "{}: opset {opset} > {}",
            release.name(),
            release.max_opset()
        ));
    }
    out
}

#[test]
fn every_emitted_head_imports_on_every_release() {
    let mut seen = BTreeSet::new();
    let mut cases = vec![("baseline", 1), ("max", 1)];
    cases.extend((1..=8).map(|h| ("csra", h)));
    for (variant, heads) in cases {
        for attention in [false, true] {
            for dynamic in [false, true] {
                let model = head_model(spec(variant, heads), attention, dynamic);
                for node in &model.graph.as_ref().unwrap().node {
                    seen.insert(node.op_type.clone());
                }
                for release in Release::ALL {
                    let found = problems(release, &model);
                    assert!(
                        found.is_empty(),
                        "{variant} H={heads} attention={attention} dynamic={dynamic}: {found:?}"
                    );
                }
            }
        }
    }
    // The heads use the operators the README's table lists, and no others.
    let expected: BTreeSet<String> = [
        "Add",
        "ArgMax",
        "Cast",
        "Concat",
        "Equal",
        "Expand",
        "Flatten",
        "Gemm",
        "GlobalAveragePool",
        "MatMul",
        "Mul",
        "ReduceMax",
        "ReduceSum",
        "Reshape",
        "Shape",
        "Sigmoid",
        "Slice",
        "Softmax",
        "Split",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(seen, expected);
    for release in Release::ALL {
        assert!(unsupported_ops(release, BACKBONE_OPS.iter().copied()).is_empty());
    }
}

#[test]
fn the_shipped_model_imports_on_every_release() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/mobilenet_v2-coco-voc-mini/model.onnx");
    let model = csra_onnx::read_model(&path).unwrap();
    assert!(model.graph.as_ref().unwrap().node.len() > 50);
    for release in Release::ALL {
        let found = problems(release, &model);
        assert!(found.is_empty(), "{}: {found:?}", path.display());
    }
}

#[test]
fn the_check_does_fail_on_an_operator_a_release_lacks() {
    // LayerNormalization arrived with TensorRT 8.6's parser.
    let mut g = GraphBuilder::new("g");
    let x = g
        .input("x", DataType::Float, &[Dim::Fixed(1), Dim::Fixed(4)])
        .unwrap();
    let y = g
        .node_named("y", csra_onnx::Op::new("LayerNormalization"), &[&x])
        .unwrap();
    g.output(&y, DataType::Float, &[Dim::Fixed(1), Dim::Fixed(4)]);
    let model = g.finish().unwrap();
    assert_eq!(
        problems(Release::V8_5, &model),
        ["TensorRT 8.5: no LayerNormalization"]
    );
    assert!(problems(Release::V8_6, &model).is_empty());
}
