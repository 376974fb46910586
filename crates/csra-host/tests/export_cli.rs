//! `csra-host export` and `csra-host graft` end to end on a briefly trained MobileNetV2 CSRA
//! model (64×64, real coco-mini images): the files and manifest an export writes, verification
//! in tract on real validation images, the head variants, FP16, head families, grafting, and
//! the messages for bad input.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use csra_core::head::HeadSpec;
use csra_core::manifest::Manifest;
use csra_host::export::tract_run::TractModel;
use csra_host::export::verify::Comparison;

use common::{data_dir, host, ok};

fn fails(args: &[&str]) -> String {
    let quiet: Vec<&str> = ["-q"].iter().chain(args).copied().collect();
    let out = host(&quiet);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "csra-host {args:?} succeeded");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Two training steps of MobileNetV2 CSRA (H = 1) at 64×64; returns the run directory.
fn train(dir: &Path) -> PathBuf {
    let data = data_dir();
    let run = dir.join("run");
    let coco = data.join("coco-mini");
    let weights = data.join("weights/mobilenet_v2_imagenet.safetensors");
    ok(&[
        "-q",
        "train",
        "--data",
        s(&coco),
        "--arch",
        "mobilenet_v2",
        "--pretrained",
        s(&weights),
        "--normalize",
        "tf",
        "--freeze-bn",
        "--head",
        "csra",
        "--image-size",
        "64",
        "--batch-size",
        "8",
        "--epochs",
        "1",
        "--max-steps-per-epoch",
        "2",
        "--out",
        s(&run),
    ]);
    run
}

/// Writes `model` with only its `logits` output, as a classifier exported without a sigmoid.
fn logits_only(model: &Path, out: &Path) {
    let mut proto = csra_onnx::read_model(model).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    graph.output.retain(|o| o.name == "logits");
    graph.node.retain(|n| n.op_type != "Sigmoid");
    csra_onnx::write_model(out, &proto).unwrap();
}

fn logits(model: &Path, pixels: &[f32]) -> Vec<f32> {
    TractModel::load(model, "logits")
        .unwrap()
        .logits(pixels, 1)
        .unwrap()
}

#[test]
fn export_graft_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let run = train(dir.path());

    // The trained head, verified on real validation images.
    let out = dir.path().join("csra");
    let printed = ok(&[
        "-q",
        "export",
        s(&run),
        "--out",
        s(&out),
        "--verify-count",
        "3",
    ]);
    assert!(printed.contains("verified in tract"), "{printed}");
    let manifest = Manifest::read(&out.join("model.manifest.json")).unwrap();
    assert_eq!(manifest.num_classes, 80);
    assert_eq!(manifest.head, HeadSpec::csra(1, 0.1).unwrap());
    assert_eq!((manifest.input.width, manifest.input.height), (64, 64));
    assert_eq!(manifest.preprocess.mean, [0.5; 3]);
    assert_eq!(manifest.provenance.backbone, "mobilenet_v2");
    assert_eq!(manifest.provenance.dataset, "coco-mini train2017");
    let metrics = manifest.metrics.unwrap();
    assert_eq!(metrics.dataset, "coco-mini val2017");
    assert!(metrics.values.contains_key("map"));
    let labels = std::fs::read_to_string(out.join("labels.txt")).unwrap();
    assert_eq!(labels.lines().count(), 80);
    assert_eq!(labels.lines().next(), Some("person"));

    // `eval` scores the exported file in tract as `eval` scores the checkpoint in tch.
    let coco = data_dir().join("coco-mini");
    let map = |args: &[&str]| -> f64 {
        let report: serde_json::Value = serde_json::from_str(&ok(args)).unwrap();
        report["metrics"]["map"].as_f64().unwrap()
    };
    let tch = map(&["-q", "eval", s(&run), "--json"]);
    let model = out.join("model.onnx");
    let tract = map(&["-q", "eval", s(&model), "--data", s(&coco), "--json"]);
    assert!(
        (tch - tract).abs() < 1e-3,
        "tch mAP {tch}, tract mAP {tract}"
    );
    let err = fails(&["eval", s(&model)]);
    assert!(err.contains("--data"), "{err}");

    // The Max variant with attention and a dynamic batch: a training-free head, so no metrics
    // from the checkpoint; the note says what it is.
    let max = dir.path().join("max");
    ok(&[
        "-q",
        "export",
        s(&run),
        "--out",
        s(&max),
        "--variant",
        "max",
        "--lambda",
        "0.2",
        "--attention",
        "--dynamic-batch",
        "--verify-count",
        "2",
    ]);
    let manifest = Manifest::read(&max.join("model.manifest.json")).unwrap();
    assert_eq!(
        manifest.head,
        HeadSpec::max(0.2).unwrap().with_normalize(true)
    );
    assert!(manifest.input.dynamic_batch);
    assert_eq!(manifest.outputs.attention.as_deref(), Some("attention"));
    assert!(manifest.metrics.is_none());
    assert!(manifest.provenance.note.unwrap().contains("training-free"));

    // FP16 runs in tract and stays close to the f32 file.
    let half = dir.path().join("fp16");
    let printed = ok(&[
        "-q",
        "export",
        s(&run),
        "--out",
        s(&half),
        "--fp16",
        "--verify-count",
        "2",
    ]);
    assert!(printed.contains("verified in tract"), "{printed}");
    let histogram = csra_onnx::inspect(&half.join("model.onnx"))
        .unwrap()
        .op_histogram;
    assert_eq!(histogram.get("Cast"), Some(&3), "{histogram:?}");

    // A head family for benchmarking.
    let family = dir.path().join("family");
    ok(&[
        "-q",
        "export",
        s(&run),
        "--out",
        s(&family),
        "--heads",
        "1,2",
        "--no-verify",
    ]);
    for member in ["heads-1", "heads-2", "heads-baseline", "heads-max"] {
        let manifest = Manifest::read(&family.join(member).join("model.manifest.json")).unwrap();
        assert!(family.join(member).join("labels.txt").is_file(), "{member}");
        if member == "heads-2" {
            assert_eq!(manifest.head.num_heads(), 2);
            assert!(manifest.provenance.note.unwrap().contains("latency"));
        }
    }

    // graft turns a plain GAP + FC classifier (the exported baseline, cut down to its logits
    // as a torchvision export would be) into the same Max head the export writes.
    let baseline = dir.path().join("baseline");
    ok(&[
        "-q",
        "export",
        s(&run),
        "--out",
        s(&baseline),
        "--variant",
        "baseline",
        "--no-verify",
    ]);
    let classifier = dir.path().join("classifier.onnx");
    logits_only(&baseline.join("model.onnx"), &classifier);
    let grafted = dir.path().join("grafted");
    let printed = ok(&[
        "-q",
        "graft",
        s(&classifier),
        "--out",
        s(&grafted),
        "--labels",
        "coco",
        "--lambda",
        "0.2",
        "--normalize",
        "tf",
    ]);
    assert!(printed.contains("runs in tract"), "{printed}");
    let static_max = dir.path().join("max-static");
    ok(&[
        "-q",
        "export",
        s(&run),
        "--out",
        s(&static_max),
        "--variant",
        "max",
        "--no-verify",
    ]);
    let pixels: Vec<f32> = (0..3 * 64 * 64)
        .map(|i| ((i % 251) as f32 / 125.0) - 1.0)
        .collect();
    let exported = logits(&static_max.join("model.onnx"), &pixels);
    let graft = logits(&grafted.join("model.onnx"), &pixels);
    let comparison = Comparison::new(&exported, &graft, 80).unwrap();
    assert!(comparison.within(1e-5), "{comparison}");
    let manifest = Manifest::read(&grafted.join("model.manifest.json")).unwrap();
    assert_eq!(manifest.preprocess.mean, [0.5; 3]);

    bad_input(dir.path(), &run);
}

fn bad_input(dir: &Path, run: &Path) {
    // A checkpoint whose description names another architecture than its tensors.
    let latest = std::fs::read_to_string(run.join("latest.json")).unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(&latest).unwrap();
    meta["model"]["arch"] = "resnet18".into();
    let other = run.join("other-arch.json");
    std::fs::write(&other, serde_json::to_string(&meta).unwrap()).unwrap();
    let out = dir.join("never");
    let err = fails(&["export", s(&other), "--out", s(&out)]);
    assert!(err.contains(s(&other)), "{err}");
    assert!(
        err.contains("says resnet18") && err.contains("mobilenet_v2"),
        "{err}"
    );

    // Labels that disagree with the model's class count.
    let labels = dir.join("three.txt");
    std::fs::write(&labels, "cat\ndog\nbird\n").unwrap();
    let err = fails(&["export", s(run), "--out", s(&out), "--labels", s(&labels)]);
    assert!(
        err.contains(s(&labels)) && err.contains("3 classes"),
        "{err}"
    );
    assert!(err.contains("predicts 80"), "{err}");

    // An output folder that cannot be created: its parent is a file.
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let unwritable = file.join("out");
    let err = fails(&["export", s(run), "--out", s(&unwritable), "--no-verify"]);
    assert!(
        err.contains(s(&unwritable)) && err.contains("writable --out"),
        "{err}"
    );

    // A tolerance nothing meets: the export fails, names the worst class and image, and
    // leaves no files behind.
    let strict = dir.join("strict");
    let err = fails(&[
        "export",
        s(run),
        "--out",
        s(&strict),
        "--tolerance",
        "1e-12",
        "--verify-count",
        "2",
    ]);
    assert!(
        err.contains("verification failed") && err.contains("val2017"),
        "{err}"
    );
    assert!(!strict.join("model.onnx").exists());
    assert!(!out.exists());
}
