//! Bad input gets an error that names the file or tensor and says what to do, never a panic.

#![allow(clippy::unwrap_used)]

mod common;

use csra_core::head::HeadSpec;
use csra_onnx::graft::{graft_head, graft_max};
use csra_onnx::pb::tensor_proto::DataType;
use csra_onnx::{
    emit_head, ClassifierWeights, Dim, FeatureShape, GraphBuilder, HeadWeights, OnnxError,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

use common::{tiny_backbone, uniform, Extras, Tail, CLASSES, FEATURE_DIM};

fn max_head(classes: usize, dim: usize) -> HeadWeights {
    let classifier = ClassifierWeights {
        weight: vec![0.5; classes * dim],
        bias: None,
    };
    HeadWeights::new(HeadSpec::max(0.5).unwrap(), classes, dim, vec![classifier]).unwrap()
}

/// Writes the tiny backbone with `tail` and returns the temporary folder and its path.
fn backbone_file(tail: Tail, extras: Extras) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_backbone(tail, extras, &mut StdRng::seed_from_u64(20)).model;
    let path = common::write(dir.path(), "backbone.onnx", &model);
    (dir, path)
}

fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
}

#[test]
fn an_unknown_feature_tensor_is_named_with_the_ones_that_would_work() {
    let (dir, source) = backbone_file(Tail::Gemm, Extras::default());
    let target = common::target(dir.path(), "out.onnx", CLASSES);
    let err = graft_head(&source, "layer4", &max_head(CLASSES, FEATURE_DIM), &target).unwrap_err();
    assert!(matches!(&err, OnnxError::InModel { source, .. }
        if matches!(**source, OnnxError::UnknownTensor { .. })));
    assert_mentions(
        &err.to_string(),
        &["backbone.onnx", "no tensor named `layer4`", "`features`"],
    );
    assert!(!target.path.exists(), "nothing is written on error");
}

#[test]
fn a_tensor_that_is_not_a_feature_map_is_refused() {
    let (dir, source) = backbone_file(Tail::Gemm, Extras::default());
    let target = common::target(dir.path(), "out.onnx", CLASSES);
    let err = graft_head(&source, "logits", &max_head(CLASSES, FEATURE_DIM), &target).unwrap_err();
    assert_mentions(
        &err.to_string(),
        &[
            "backbone.onnx",
            "`logits` has shape [N, 10]",
            "[N, d, h, w]",
        ],
    );
}

#[test]
fn a_classifier_of_another_width_is_refused() {
    let (dir, source) = backbone_file(Tail::Gemm, Extras::default());
    let target = common::target(dir.path(), "out.onnx", CLASSES);
    let err = graft_head(&source, "features", &max_head(CLASSES, 7), &target).unwrap_err();
    assert_mentions(
        &err.to_string(),
        &["classifier expects 7 input channels", "`features` has 16"],
    );
}

#[test]
fn a_tail_that_does_not_match_says_where_it_broke() {
    let (dir, source) = backbone_file(Tail::ReduceMean, Extras::default());
    let target = common::target(dir.path(), "out.onnx", CLASSES);
    let err = graft_max(&source, None, 0.5, &target).unwrap_err();
    assert_mentions(
        &err.to_string(),
        &[
            "backbone.onnx",
            "GlobalAveragePool → Flatten/Reshape → Gemm/MatMul (+Add)",
            "ReduceMean",
            "graft a head onto the feature map by name",
        ],
    );

    let (dir, source) = backbone_file(
        Tail::Gemm,
        Extras {
            softmax_output: true,
            ..Extras::default()
        },
    );
    let err = graft_max(
        &source,
        Some("softmax"),
        0.5,
        &common::target(dir.path(), "o.onnx", CLASSES),
    )
    .unwrap_err();
    assert_mentions(
        &err.to_string(),
        &["`softmax` is computed by a Softmax node"],
    );
}

#[test]
fn several_outputs_need_the_logits_named() {
    let (dir, source) = backbone_file(
        Tail::Gemm,
        Extras {
            features_output: true,
            ..Extras::default()
        },
    );
    let err = graft_max(
        &source,
        None,
        0.5,
        &common::target(dir.path(), "o.onnx", CLASSES),
    )
    .unwrap_err();
    assert_mentions(
        &err.to_string(),
        &[
            "2 outputs (logits, features)",
            "say which one holds the classifier logits",
        ],
    );
}

#[test]
fn weights_that_disagree_with_the_class_count_are_refused() {
    let (dir, source) = backbone_file(Tail::Gemm, Extras::default());
    // The labels say 5 classes, the backbone's classifier has 10.
    let err = graft_max(&source, None, 0.5, &common::target(dir.path(), "o.onnx", 5)).unwrap_err();
    assert!(matches!(&err, OnnxError::InModel { source, .. }
        if matches!(**source, OnnxError::ClassCount { labels: 5, classifier: 10 })));
    assert_mentions(
        &err.to_string(),
        &[
            "backbone.onnx",
            "labels list 5 classes but the classifier has 10",
        ],
    );

    // 10 classes of width 16 is 160 values, not 150.
    let weights = ClassifierWeights {
        weight: vec![0.5; 150],
        bias: None,
    };
    let err = HeadWeights::new(HeadSpec::max(0.5).unwrap(), 10, 16, vec![weights]).unwrap_err();
    assert_mentions(
        &err.to_string(),
        &[
            "head 0",
            "150 values, which is not 10 classes × 16 channels",
        ],
    );

    let weights = ClassifierWeights {
        weight: vec![0.5; 160],
        bias: Some(vec![0.0; 9]),
    };
    let err = HeadWeights::new(HeadSpec::max(0.5).unwrap(), 10, 16, vec![weights]).unwrap_err();
    assert_mentions(
        &err.to_string(),
        &["bias has 9 values but there are 10 classes"],
    );

    let err = HeadWeights::new(HeadSpec::csra(2, 0.1).unwrap(), 10, 16, vec![]).unwrap_err();
    assert_mentions(&err.to_string(), &["2 heads but 0 classifiers"]);

    let graft = graft_head(
        &source,
        "features",
        &max_head(CLASSES, FEATURE_DIM),
        &common::target(dir.path(), "o.onnx", 3),
    );
    assert_mentions(
        &graft.unwrap_err().to_string(),
        &["labels list 3 classes but the classifier has 10"],
    );
}

#[test]
fn a_class_row_of_zeros_cannot_be_normalised() {
    let mut weight = uniform(&mut StdRng::seed_from_u64(21), 4 * 3, 0.1, 1.0);
    weight[3..6].fill(0.0);
    let classifier = ClassifierWeights { weight, bias: None };
    let err =
        HeadWeights::new(HeadSpec::csra(1, 0.1).unwrap(), 4, 3, vec![classifier]).unwrap_err();
    assert!(matches!(
        err,
        OnnxError::DegenerateClassRow { head: 0, class: 1 }
    ));
}

#[test]
fn missing_and_corrupt_files_are_reported_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let target = common::target(dir.path(), "o.onnx", CLASSES);
    let missing = dir.path().join("missing.onnx");
    let err = graft_max(&missing, None, 0.5, &target).unwrap_err();
    assert!(matches!(err, OnnxError::Io { .. }));
    assert_mentions(&err.to_string(), &["missing.onnx"]);

    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"\xff\xff\xff not protobuf").unwrap();
    let err = csra_onnx::inspect(&garbage).unwrap_err();
    assert_mentions(&err.to_string(), &["garbage.onnx", "not an ONNX model"]);
}

#[test]
fn opsets_the_head_cannot_be_written_in_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = tiny_backbone(
        Tail::Gemm,
        Extras::default(),
        &mut StdRng::seed_from_u64(22),
    )
    .model;
    model.opset_import[0].version = 18;
    let source = common::write(dir.path(), "opset18.onnx", &model);
    let err = graft_max(
        &source,
        None,
        0.5,
        &common::target(dir.path(), "o.onnx", CLASSES),
    )
    .unwrap_err();
    assert_mentions(
        &err.to_string(),
        &[
            "opset18.onnx",
            "opset 18",
            "re-export the backbone with opset_version=17",
        ],
    );
}

#[test]
fn an_output_name_already_in_the_graph_is_refused() {
    let mut builder = GraphBuilder::new("taken");
    let shape = FeatureShape {
        batch: Dim::Fixed(1),
        channels: 2,
        height: 2,
        width: 2,
    };
    let features = builder
        .input(
            "logits",
            DataType::Float,
            &[Dim::Fixed(1), Dim::Fixed(2), Dim::Fixed(2), Dim::Fixed(2)],
        )
        .unwrap();
    let err = emit_head(
        &mut builder,
        &features,
        &shape,
        &max_head(3, 2),
        &Default::default(),
    )
    .unwrap_err();
    assert_mentions(&err.to_string(), &["already has a tensor named `logits`"]);
    let err = builder.input("logits", DataType::Float, &[]).unwrap_err();
    assert!(matches!(err, OnnxError::NameTaken { .. }));
    let err = builder
        .initializer_f32("w", &[2, 3], &[0.0; 5])
        .unwrap_err();
    assert_mentions(
        &err.to_string(),
        &["`w` has 5 values but its shape [2, 3] needs 6"],
    );
}
