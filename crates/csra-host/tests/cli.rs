//! The `csra-host` binary end to end on real coco-mini images and photos: train a few steps,
//! resume, evaluate (also with the training-free Max head), predict and explain; and the errors
//! a user sees for a wrong checkpoint.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{data_dir, host, ok};

fn train(run: &Path, epochs: &str) -> String {
    let data = data_dir();
    let coco = data.join("coco-mini");
    let weights = data.join("weights/mobilenet_v2_imagenet.safetensors");
    ok(&[
        "-q",
        "train",
        "--data",
        coco.to_str().unwrap(),
        "--arch",
        "mobilenet_v2",
        "--pretrained",
        weights.to_str().unwrap(),
        "--normalize",
        "tf",
        "--freeze-bn",
        "--head",
        "baseline",
        "--image-size",
        "64",
        "--batch-size",
        "8",
        "--epochs",
        epochs,
        "--max-steps-per-epoch",
        "2",
        "--out",
        run.to_str().unwrap(),
    ])
}

#[test]
fn train_resume_eval_predict_explain() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let first = train(&run, "1");
    assert!(first.trim().ends_with("epoch-001.json"), "{first}");

    // A second `train` into the same directory refuses; `--resume` continues to epoch 2.
    let again = host(&["train", "--data", "x", "--out", run.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && stderr.contains("--resume"),
        "{stderr}"
    );
    let resumed = ok(&[
        "-q",
        "train",
        "--resume",
        run.to_str().unwrap(),
        "--epochs",
        "2",
        "--max-steps-per-epoch",
        "2",
    ]);
    assert!(resumed.trim().ends_with("epoch-002.json"), "{resumed}");
    let log = std::fs::read_to_string(run.join("train-log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2);

    let report: serde_json::Value =
        serde_json::from_str(&ok(&["-q", "eval", run.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(report["metrics"]["num_classes"], 80);
    assert_eq!(report["per_class"].as_array().unwrap().len(), 80);
    let map = report["metrics"]["map"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&map));
    let max: serde_json::Value = serde_json::from_str(&ok(&[
        "-q",
        "eval",
        run.to_str().unwrap(),
        "--json",
        "--head",
        "max",
        "--lambda",
        "0.2",
    ]))
    .unwrap();
    assert_eq!(max["head"]["variant"], "max");
    assert_ne!(max["metrics"]["map"], report["metrics"]["map"]);

    let photos = data_dir().join("photos");
    let dog = photos.join("dog_0.jpg");
    let lines = ok(&[
        "-q",
        "predict",
        run.to_str().unwrap(),
        dog.to_str().unwrap(),
        photos.join("cat_*.jpg").to_str().unwrap(),
        "--json",
        "--threshold",
        "0",
        "--top-k",
        "3",
    ]);
    let results: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 5, "{lines}");
    for r in &results {
        let labels = r["labels"].as_array().unwrap();
        assert_eq!(labels.len(), 3);
        let p: Vec<f64> = labels
            .iter()
            .map(|l| l["probability"].as_f64().unwrap())
            .collect();
        assert!(p.windows(2).all(|w| w[0] >= w[1]), "{p:?}");
    }

    let pictures = dir.path().join("attention");
    let written = ok(&[
        "-q",
        "explain",
        run.to_str().unwrap(),
        dog.to_str().unwrap(),
        "--class",
        "dog",
        "--out",
        pictures.to_str().unwrap(),
    ]);
    let png = pictures.join("dog_0_dog.png");
    assert_eq!(written.trim(), png.to_str().unwrap());
    let image = image::open(&png).unwrap();
    let original = image::open(&dog).unwrap();
    assert_eq!(
        (image.width(), image.height()),
        (original.width(), original.height())
    );
}

#[test]
fn a_wrong_checkpoint_gets_a_message_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("model.json");
    std::fs::write(&bogus, "{\"format\": \"something-else\"}").unwrap();
    for path in [bogus.as_path(), &dir.path().join("missing.json")] {
        let out = host(&["-q", "eval", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.starts_with("error: checkpoint"), "{stderr}");
        assert!(stderr.contains(path.to_str().unwrap()), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// A VOC folder (ImageSets/Main + JPEGImages) of the first `n` voc2007-mini test images, with
/// the official label lines of those images.
fn voc_fixture(root: &Path, n: usize) {
    let voc = data_dir().join("voc2007-mini");
    let main = root.join("ImageSets/Main");
    std::fs::create_dir_all(&main).unwrap();
    std::fs::create_dir_all(root.join("JPEGImages")).unwrap();
    let ids: Vec<String> = std::fs::read_to_string(voc.join("ImageSets/Main/test.txt"))
        .unwrap()
        .lines()
        .take(n)
        .map(|l| l.trim().to_string())
        .collect();
    for id in &ids {
        let name = format!("{id}.jpg");
        std::fs::copy(
            voc.join("JPEGImages").join(&name),
            root.join("JPEGImages").join(&name),
        )
        .unwrap();
    }
    for entry in std::fs::read_dir(voc.join("ImageSets/Main")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let kept: String = text
            .split_inclusive('\n')
            .filter(|l| ids.iter().any(|id| l.starts_with(id.as_str())))
            .collect();
        std::fs::write(main.join(path.file_name().unwrap()), kept).unwrap();
    }
}

/// Trains on coco-mini and VOC together (COCO classes), records both sources and the mapping,
/// and scores the model on VOC data under VOC's names.
#[test]
fn train_on_coco_and_voc_then_score_on_voc() {
    let dir = tempfile::tempdir().unwrap();
    let voc = dir.path().join("voc");
    voc_fixture(&voc, 12);
    let data = data_dir();
    let run = dir.path().join("run");
    let weights = data.join("weights/mobilenet_v2_imagenet.safetensors");
    let coco = format!("{}:train2017", data.join("coco-mini").display());
    let voc_trainval = format!("{}:test", voc.display());
    ok(&[
        "-q",
        "train",
        "--data",
        &coco,
        "--data",
        &voc_trainval,
        "--no-val",
        "--arch",
        "mobilenet_v2",
        "--pretrained",
        weights.to_str().unwrap(),
        "--normalize",
        "tf",
        "--freeze-bn",
        "--image-size",
        "64",
        "--batch-size",
        "8",
        "--epochs",
        "1",
        "--max-steps-per-epoch",
        "1",
        "--out",
        run.to_str().unwrap(),
    ]);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("latest.json")).unwrap()).unwrap();
    assert_eq!(meta["train_data"].as_array().unwrap().len(), 2);
    assert_eq!(meta["classes"].as_array().unwrap().len(), 80);
    let mapping = &meta["class_mapping"][1];
    assert_eq!(mapping["source"], "voc test");
    assert_eq!(mapping["samples"], 12);
    assert_eq!(mapping["renamed"]["tvmonitor"], "tv");
    assert_eq!(mapping["unlabelled"].as_array().unwrap().len(), 60);

    let report: serde_json::Value = serde_json::from_str(&ok(&[
        "-q",
        "eval",
        run.to_str().unwrap(),
        "--data",
        voc.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    let per_class = report["per_class"].as_array().unwrap();
    assert_eq!(per_class.len(), 20);
    assert_eq!(per_class[0]["class"], "aeroplane");
    assert_eq!(per_class[0]["model_class"], "airplane");
    assert!(
        per_class[1].get("model_class").is_none(),
        "bicycle keeps its name"
    );
    assert_eq!(report["metrics"]["num_samples"], 12);
}
