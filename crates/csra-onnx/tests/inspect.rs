//! `inspect` reports a file's interface, opsets, op histogram, parameters and size.

#![allow(clippy::unwrap_used)]

mod common;

use csra_onnx::{inspect, Dim, IR_VERSION, OPSET};
use rand::rngs::StdRng;
use rand::SeedableRng;

use common::{tiny_backbone, Extras, Tail, CLASSES, FEATURE_DIM};

#[test]
fn reports_the_tiny_backbone() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_backbone(
        Tail::Gemm,
        Extras::default(),
        &mut StdRng::seed_from_u64(30),
    )
    .model;
    let path = common::write(dir.path(), "tiny.onnx", &model);
    let info = inspect(&path).unwrap();

    assert_eq!(info.file_size, std::fs::metadata(&path).unwrap().len());
    assert_eq!(info.ir_version, IR_VERSION);
    assert_eq!(info.opsets, [("ai.onnx".to_owned(), OPSET)]);
    assert_eq!(
        info.producer,
        format!("csra-onnx {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(info.inputs.len(), 1);
    assert_eq!(info.inputs[0].name, "image");
    let input_shape = info.inputs[0]
        .tensor_type
        .as_ref()
        .unwrap()
        .shape
        .clone()
        .unwrap();
    assert_eq!(
        input_shape,
        [
            Dim::Named("N".into()),
            Dim::Fixed(3),
            Dim::Fixed(32),
            Dim::Fixed(32)
        ]
    );
    assert_eq!(info.outputs.len(), 1);
    assert_eq!(info.op_histogram, common::histogram(&path));
    assert_eq!(
        info.op_histogram,
        common::ops(&[
            ("Conv", 2),
            ("Relu", 2),
            ("GlobalAveragePool", 1),
            ("Flatten", 1),
            ("Gemm", 1),
        ])
    );
    assert_eq!(info.node_count, 7);
    let conv = 8 * 3 * 9 + 8 + FEATURE_DIM * 8 * 9 + FEATURE_DIM;
    let fc = CLASSES * FEATURE_DIM + CLASSES;
    assert_eq!(info.parameter_count, (conv + fc) as u64);
    assert_eq!(info.initializer_count, 6);

    let text = info.to_string();
    for line in [
        "IR version  8",
        "opsets      ai.onnx 17",
        "input       image FLOAT [N, 3, 32, 32]",
        "output      logits FLOAT [N, 10]",
        "parameters  1562 in 6 initializers",
        "nodes       7 (Conv 2, Relu 2, Flatten 1, Gemm 1, GlobalAveragePool 1)",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
}
