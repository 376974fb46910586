//! The ONNX Runtime backend (feature `onnxruntime`) against tract on the same files: the
//! shipped model on real photos, and a test model with an attention output; and its errors,
//! through the binary (ONNX Runtime's library is loaded once per process).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use csra_edge::backend::{Backend, OnnxruntimeBackend, TractBackend};
use csra_edge::model::ModelFiles;
use csra_edge::pictures::Pictures;
use csra_test_support::{data_dir, onnxruntime_library, workspace_root};

/// The largest difference between two engines' outputs that still counts as the same network:
/// different kernels sum in different orders.
const TOLERANCE: f32 = 1e-4;

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn onnxruntime_agrees_with_tract_on_the_shipped_model_and_real_photos() {
    let model =
        ModelFiles::open(&workspace_root().join("models/mobilenet_v2-coco-voc-mini")).unwrap();
    let library = onnxruntime_library();
    let photos = data_dir().join("photos/*_0.jpg");
    let pictures = Pictures::read(photos.to_str().unwrap(), &model.manifest, 4).unwrap();
    for threads in [1, 2] {
        let mut ort = OnnxruntimeBackend::load(&model, threads, Some(&library)).unwrap();
        let mut tract = TractBackend::load(&model, threads).unwrap();
        assert!(
            ort.describe().starts_with("ONNX Runtime"),
            "{}",
            ort.describe()
        );
        for (name, input) in pictures
            .names
            .iter()
            .zip(pictures.data.chunks(ort.input_len()))
        {
            let (a, b) = (ort.run(input).unwrap(), tract.run(input).unwrap());
            let logits = max_difference(&a.logits, &b.logits);
            let probs = max_difference(&a.probs, &b.probs);
            assert!(
                logits < 1e-3 && probs < TOLERANCE,
                "{name}: {logits} {probs}"
            );
        }
    }
}

#[test]
fn onnxruntime_returns_the_attention_maps_tract_returns() {
    let dir = tempfile::tempdir().unwrap();
    let test = common::write_model(dir.path(), 21);
    let model = ModelFiles::open(&test.dir).unwrap();
    let mut ort = OnnxruntimeBackend::load(&model, 1, Some(&onnxruntime_library())).unwrap();
    let mut tract = TractBackend::load(&model, 1).unwrap();
    let input: Vec<f32> = (0..ort.input_len())
        .map(|i| ((i * 7919) % 255) as f32 / 127.5 - 1.0)
        .collect();
    let (a, b) = (ort.run(&input).unwrap(), tract.run(&input).unwrap());
    let (maps, reference) = (a.attention.unwrap(), b.attention.unwrap());
    assert_eq!(
        (maps.height, maps.width),
        (reference.height, reference.width)
    );
    assert!(max_difference(&maps.data, &reference.data) < TOLERANCE);
    assert!(max_difference(&a.probs, &b.probs) < TOLERANCE);
    assert!(
        ort.run(&input[1..]).is_err(),
        "a short input must be refused"
    );
}

/// csra-edge on the shipped model with `args`, TensorRT pointed at nothing.
fn edge(args: &[&str]) -> std::process::Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_csra-edge"))
        .args(["--device", "x86-cpu", "--threads", "1", "--model"])
        .arg(workspace_root().join("models/mobilenet_v2-coco-voc-mini"))
        .arg("--engine-cache")
        .arg(cache.path())
        .args(args)
        .env("RUST_LOG", "info")
        .env(
            "CSRA_TRT_LIBRARY",
            cache.path().join("nowhere/libcsra_trt.so"),
        )
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap()
}

#[test]
fn the_binary_runs_onnxruntime_when_asked_and_names_a_missing_library() {
    let photo = data_dir().join("photos/dog_0.jpg");
    let photo = photo.to_str().unwrap();
    let library = onnxruntime_library();
    let output = edge(&[
        "--backend",
        "onnxruntime",
        "--onnxruntime-library",
        library.to_str().unwrap(),
        "--input",
        photo,
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("ONNX Runtime (CPU, f32)"), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");

    let missing = "/nowhere/libonnxruntime.so";
    let output = edge(&[
        "--backend",
        "onnxruntime",
        "--onnxruntime-library",
        missing,
        "--input",
        photo,
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for needed in [missing, "--onnxruntime-library", "pip install onnxruntime"] {
        assert!(stderr.contains(needed), "no `{needed}` in: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");

    // auto, with TensorRT absent, takes ONNX Runtime and says why.
    let output = edge(&[
        "--backend",
        "auto",
        "--onnxruntime-library",
        library.to_str().unwrap(),
        "--input",
        photo,
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("auto: ONNX Runtime (not TensorRT"),
        "{stderr}"
    );
}

#[test]
fn bench_measures_each_engine_in_one_run() {
    let output = Command::new(env!("CARGO_BIN_EXE_csra-edge"))
        .args([
            "bench", "--json", "--runs", "2", "--warmup", "0", "--device", "x86-cpu",
        ])
        .args(["--backends", "tract,onnxruntime", "--onnxruntime-library"])
        .arg(onnxruntime_library())
        .arg(workspace_root().join("models/mobilenet_v2-coco-voc-mini"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let engines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            row["backend"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(engines.len(), 2, "{engines:?}");
    assert!(engines[0].starts_with("tract") && engines[1].starts_with("ONNX Runtime"));
}
