//! `csra-edge graft` end to end: a hand-made GAP + FC classifier becomes the Max head, whose
//! logits, run in tract, equal `mean + λ·max` of the per-location class scores computed here by
//! hand; a model without that tail is refused with a clear error and nothing written.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use csra_core::manifest::Manifest;
use csra_onnx::pb::tensor_proto::DataType;
use csra_onnx::{Dim, GraphBuilder, Op};
use tract_onnx::prelude::*;

/// Classes and the `[1, 3, 2, 2]` input, whose `Relu` is the feature map: d = 3, 2×2.
const CLASSES: usize = 2;
const SIZE: usize = 2;
const CHANNELS: usize = 3;

/// The classifier `W` (`[C, d]`, as torchvision's Gemm with transB = 1 holds it) and bias.
const WEIGHT: [f32; CLASSES * CHANNELS] = [0.5, -1.0, 2.0, 1.5, 0.25, -0.75];
const BIAS: [f32; CLASSES] = [0.1, -0.2];

/// Writes `x → Relu → GlobalAveragePool → Flatten → Gemm → logits`, or without the Gemm (no
/// classifier tail) when `tail` is false.
fn write_classifier(path: &Path, tail: bool) {
    let mut g = GraphBuilder::new("classifier");
    let image = [
        Dim::Fixed(1),
        Dim::Fixed(CHANNELS),
        Dim::Fixed(SIZE),
        Dim::Fixed(SIZE),
    ];
    let x = g.input("x", DataType::Float, &image).unwrap();
    let features = g.node_named("features", Op::new("Relu"), &[&x]).unwrap();
    let pooled = g.node("pooled", Op::new("GlobalAveragePool"), &[&features]);
    let flat = g.node("flat", Op::new("Flatten").int("axis", 1), &[&pooled]);
    if tail {
        let w = g
            .initializer_f32("fc.weight", &[CLASSES, CHANNELS], &WEIGHT)
            .unwrap();
        let b = g.initializer_f32("fc.bias", &[CLASSES], &BIAS).unwrap();
        let logits = g
            .node_named("logits", Op::new("Gemm").int("transB", 1), &[&flat, &w, &b])
            .unwrap();
        g.output(
            &logits,
            DataType::Float,
            &[Dim::Fixed(1), Dim::Fixed(CLASSES)],
        );
    } else {
        g.output(
            &flat,
            DataType::Float,
            &[Dim::Fixed(1), Dim::Fixed(CHANNELS)],
        );
    }
    csra_onnx::write_model(path, &g.finish().unwrap()).unwrap();
}

fn graft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_csra-edge"))
        .arg("graft")
        .args(args)
        .output()
        .unwrap()
}

/// The first output of `path` in tract on the `[1, 3, 2, 2]` input `pixels`.
fn tract_logits(path: &Path, pixels: &[f32]) -> Vec<f32> {
    let plan = tract_onnx::onnx()
        .model_for_path(path)
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let input = Tensor::from_shape(&[1, CHANNELS, SIZE, SIZE], pixels).unwrap();
    let outputs = plan.run(tvec!(input.into_tvalue())).unwrap();
    outputs[0]
        .try_as_plain_ram()
        .unwrap()
        .as_slice::<f32>()
        .unwrap()
        .to_vec()
}

#[test]
fn grafts_the_max_head_that_tract_runs() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("classifier.onnx");
    write_classifier(&source, true);
    let labels = dir.path().join("classes.txt");
    std::fs::write(&labels, "cat\ndog\n").unwrap();
    let out = dir.path().join("grafted");
    let output = graft(&[
        source.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--lambda",
        "0.5",
        "--normalize",
        "tf",
        "--bgr",
        "--dataset",
        "pets",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("on feature map `features` 3×2×2; runs in tract"),
        "{stdout}"
    );

    let manifest = Manifest::read(&out.join("model.manifest.json")).unwrap();
    assert_eq!(manifest.classes, ["cat", "dog"]);
    assert_eq!(manifest.head.to_string(), "max (mean + 0.5·max)");
    assert_eq!(manifest.preprocess.mean, [0.5; 3]);
    assert_eq!(manifest.preprocess.std, [0.5; 3]);
    assert_eq!(manifest.input.color, csra_core::manifest::ColorOrder::Bgr);
    assert_eq!(manifest.provenance.dataset, "pets");
    assert_eq!(manifest.provenance.backbone, "classifier");
    assert!(manifest.provenance.created_by.starts_with("csra-edge "));
    assert_eq!(
        std::fs::read_to_string(out.join("labels.txt")).unwrap(),
        "cat\ndog\n"
    );

    // Location j of channel c is pixels[c·4 + j]; all positive, so Relu keeps them.
    let pixels: Vec<f32> = (0..CHANNELS * SIZE * SIZE)
        .map(|i| 0.25 + (i * 7 % 5) as f32)
        .collect();
    let locations = SIZE * SIZE;
    let expected: Vec<f32> = (0..CLASSES)
        .map(|class| {
            let scores: Vec<f32> = (0..locations)
                .map(|j| {
                    let dot: f32 = (0..CHANNELS)
                        .map(|c| WEIGHT[class * CHANNELS + c] * pixels[c * locations + j])
                        .sum();
                    dot + BIAS[class]
                })
                .collect();
            let mean = scores.iter().sum::<f32>() / locations as f32;
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            mean + 0.5 * max
        })
        .collect();
    let logits = tract_logits(&out.join("model.onnx"), &pixels);
    assert_eq!(logits.len(), CLASSES);
    for (got, want) in logits.iter().zip(&expected) {
        assert!(
            (got - want).abs() <= 1e-5 * want.abs().max(1.0),
            "{logits:?} vs {expected:?}"
        );
    }
}

#[test]
fn a_model_without_a_classifier_tail_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("features.onnx");
    write_classifier(&source, false);
    let out = dir.path().join("grafted");
    let output = graft(&[
        source.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--labels",
        "voc",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("features.onnx"), "{stderr}");
    assert!(stderr.contains("no classifier tail"), "{stderr}");
    assert!(!out.join("model.onnx").exists());
    assert!(!out.join("model.manifest.json").exists());
    assert!(!out.join("labels.txt").exists());
}

#[test]
fn bench_grafts_a_head_family_onto_a_backbone_and_measures_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("classifier.onnx");
    write_classifier(&model, true);
    let output = Command::new(env!("CARGO_BIN_EXE_csra-edge"))
        .args([
            "bench",
            "--json",
            "--device",
            "x86-cpu",
            "--backend",
            "tract",
        ])
        .args([
            "--runs",
            "2",
            "--warmup",
            "0",
            "--heads",
            "1,4",
            "--classes",
            "5",
        ])
        .arg("--backbone")
        .arg(&model)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let rows: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let members: Vec<(String, String, u64)> = rows
        .iter()
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap().to_owned();
            (
                field("model"),
                field("variant"),
                r["heads"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("classifier.onnx:heads-1", "csra", 1),
        ("classifier.onnx:heads-4", "csra", 4),
        ("classifier.onnx:heads-max", "max", 1),
        ("classifier.onnx:heads-baseline", "baseline", 1),
    ]
    .map(|(m, v, h)| (m.to_owned(), v.to_owned(), h));
    assert_eq!(members, expected);
    // The baseline is there, so every row has its overhead; the baseline's own is zero.
    assert_eq!(rows[3]["head_overhead_ms"], 0.0);
    assert!(rows.iter().all(|r| r["head_overhead_pct"].is_f64()));

    // A model without the GAP + FC tail is refused, naming the flag and the file.
    let bare = dir.path().join("bare.onnx");
    write_classifier(&bare, false);
    let output = Command::new(env!("CARGO_BIN_EXE_csra-edge"))
        .args(["bench", "--device", "x86-cpu", "--backbone"])
        .arg(&bare)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--backbone") && stderr.contains("bare.onnx"),
        "{stderr}"
    );
}
