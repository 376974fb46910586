//! `csra-host import` against checkpoints torch writes as the official CSRA repository and
//! mmpretrain save them (`tests/python/foreign_csra_checkpoints.py`, the official head code):
//! the imported run predicts what torch computes on real photos, exports to ONNX, and bad
//! files are refused with the file and the fix.
//!
//! Needs the Python references (`CSRA_PYTHON` or the workspace's `.venv`, see
//! csra-test-support); fails without them.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use csra_host::evaluate::sigmoid;
use csra_host::train::Checkpoint;
use csra_host::CsraModel;
use csra_onnx::graft::Normalization;
use serde_json::Value;
use tch::nn::VarStore;
use tch::{Device, Tensor};

const SIZE: u32 = 448;
const PHOTOS: [&str; 2] = ["cat_0.jpg", "dog_0.jpg"];

fn photos() -> Vec<PathBuf> {
    let dir = common::data_dir().join("photos");
    PHOTOS.iter().map(|p| dir.join(p)).collect()
}

/// The photos as the imported checkpoints preprocess them: squash-resized RGB in [0, 1].
fn input() -> Tensor {
    let preprocess = Normalization::Official.preprocess();
    let mut pixels = Vec::new();
    for photo in photos() {
        let image = csra_image::load_rgb(&photo).unwrap();
        pixels.extend(csra_image::preprocess_image(&image, (SIZE, SIZE), &preprocess).unwrap());
    }
    let n = i64::try_from(PHOTOS.len()).unwrap();
    let side = i64::from(SIZE);
    Tensor::from_slice(&pixels).view([n, 3, side, side])
}

/// Writes the checkpoints, and with `input` torch's logits of it, into a new folder.
fn fixtures(input: Option<&Tensor>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    match input {
        Some(input) => {
            let file = dir.path().join("input.f32");
            std::fs::write(&file, common::bytes(input)).unwrap();
            let n = PHOTOS.len().to_string();
            let size = SIZE.to_string();
            common::run_python(
                "foreign_csra_checkpoints.py",
                &[dir.path(), &file, Path::new(&n), Path::new(&size)],
            );
        }
        None => common::run_python("foreign_csra_checkpoints.py", &[dir.path()]),
    }
    dir
}

fn expected(dir: &Path, key: &str) -> Tensor {
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let rows: Vec<Vec<f32>> = serde_json::from_value(json[key].clone()).unwrap();
    let n = i64::try_from(rows.len()).unwrap();
    Tensor::from_slice(&rows.concat()).view([n, -1])
}

/// The imported run's logits, through the checkpoint reader every command uses.
fn logits(run: &Path, input: &Tensor) -> (Tensor, Checkpoint, VarStore, CsraModel) {
    let checkpoint = Checkpoint::read(run).unwrap();
    let mut vs = VarStore::new(Device::Cpu);
    let model = CsraModel::new(&vs.root(), &checkpoint.meta.model).unwrap();
    checkpoint.restore(&mut vs).unwrap();
    let logits = tch::no_grad(|| model.forward_t(input, false));
    (logits, checkpoint, vs, model)
}

/// `predict --json --threshold 0`: every class's probability per photo.
fn predicted(run: &Path) -> Vec<HashMap<String, f32>> {
    let mut args = vec![
        "predict",
        run.to_str().unwrap(),
        "--json",
        "--threshold",
        "0",
    ];
    let photos = photos();
    args.extend(photos.iter().map(|p| p.to_str().unwrap()));
    args.extend(["--device", "cpu"]);
    common::ok(&args)
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap();
            value["labels"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    let p = l["probability"].as_f64().unwrap() as f32;
                    (l["label"].as_str().unwrap().to_owned(), p)
                })
                .collect()
        })
        .collect()
}

fn assert_predictions_match(run: &Path, classes: &[String], expected: &Tensor) {
    let predicted = predicted(run);
    assert_eq!(predicted.len(), PHOTOS.len());
    for (i, probs) in predicted.iter().enumerate() {
        assert_eq!(probs.len(), classes.len());
        for (c, class) in classes.iter().enumerate() {
            let torch = sigmoid(expected.double_value(&[i as i64, c as i64]) as f32);
            let ours = probs[class];
            assert!(
                (ours - torch).abs() < 1e-4,
                "{class}: {ours} vs torch {torch}"
            );
        }
    }
}

#[test]
fn official_and_mmpretrain_checkpoints_predict_what_torch_computes() {
    let input = input();
    let dir = fixtures(Some(&input));
    let runs = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], &str, &str); 3] = [
        (
            "official.pth",
            &["--classes", "voc", "--lambda", "0.3"],
            "official",
            "csra H=4 λ=0.3",
        ),
        (
            "official_ddp.pth",
            &["--classes", "voc", "--lambda", "0.3"],
            "official",
            "\"module.\"",
        ),
        (
            "mmpretrain.pth",
            &[],
            "mmpretrain",
            "state dict under \"state_dict\"",
        ),
    ];
    for (file, flags, key, said) in cases {
        let run = runs.path().join(file);
        let source = dir.path().join(file);
        let mut args = vec![
            "import",
            source.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
        ];
        args.extend(flags);
        let report = common::ok(&args);
        assert!(
            report.contains("resnet18 (inferred from the block counts)"),
            "{report}"
        );
        assert!(report.contains(said), "{file}: {report}");
        assert!(report.contains("left over: none"), "{file}: {report}");

        let expected = expected(dir.path(), key);
        let (ours, checkpoint, vs, model) = logits(&run, &input);
        let error = common::relative_error(&ours, &expected);
        assert!(
            error < 1e-4,
            "{file}: logits differ from torch's by {error}"
        );
        assert_eq!(checkpoint.meta.progress.epochs_done, 0);
        assert!(checkpoint.meta.history.is_empty());
        assert_predictions_match(&run, &checkpoint.meta.classes, &expected);

        // The comparison sees a misplaced head: swapping two of them changes the logits.
        let variables = vs.variables();
        let (mut a, mut b) = (
            variables["head.multi_head.0.head.weight"].shallow_clone(),
            variables["head.multi_head.1.head.weight"].shallow_clone(),
        );
        let saved = a.copy();
        tch::no_grad(|| {
            a.copy_(&b);
            b.copy_(&saved);
        });
        let swapped = tch::no_grad(|| model.forward_t(&input, false));
        let error = common::relative_error(&swapped, &expected);
        assert!(error > 1e-2, "{file}: swapped heads still match ({error})");
    }
    let classes = Checkpoint::read(&runs.path().join("mmpretrain.pth"))
        .unwrap()
        .meta
        .classes;
    assert_eq!(
        classes.first().map(String::as_str),
        Some("aeroplane"),
        "mmpretrain's meta names"
    );

    let out = runs.path().join("onnx");
    let run = runs.path().join("official.pth");
    let cat = photos()[0].clone();
    common::ok(&[
        "export",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--input-size",
        "224",
        "--verify-image",
        cat.to_str().unwrap(),
        "--verify-count",
        "1",
        "--device",
        "cpu",
    ]);
    for file in ["model.onnx", "model.manifest.json", "labels.txt"] {
        assert!(out.join(file).is_file(), "export wrote no {file}");
    }
}

/// `import` fails, and its message holds every one of `wanted`.
fn refused(args: &[&str], wanted: &[&str]) {
    let out = common::host(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} succeeded");
    for text in wanted {
        assert!(stderr.contains(text), "{args:?}: no {text:?} in {stderr}");
    }
}

#[test]
fn bad_checkpoints_are_refused_with_the_file_and_the_fix() {
    let dir = fixtures(None);
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let run = path("run");
    let truncated = path("truncated.pth");
    let bytes = std::fs::read(dir.path().join("official.pth")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();

    let cases: [(Vec<String>, &[&str]); 6] = [
        (vec![truncated.clone()], &["truncated.pth", "truncated"]),
        (
            vec![path("missing_head.pth")],
            &["missing_head.pth", "heads [0, 1, 3]", "head 2 is missing"],
        ),
        (
            vec![path("official.pth"), "--arch".into(), "resnet50".into()],
            &[
                "official.pth",
                "is a resnet18",
                "not resnet50",
                "--arch resnet18",
            ],
        ),
        (
            vec![path("torchvision.pth")],
            &[
                "torchvision.pth",
                "no CSRA head",
                "classifier.multi_head.N.head.weight",
            ],
        ),
        (
            vec![path("official.pth"), "--classes".into(), "coco".into()],
            &["official.pth", "20 classes", "names 80"],
        ),
        (
            vec![path("official.pth")],
            &["official.pth", "does not name them", "--classes"],
        ),
    ];
    for (file_args, wanted) in cases {
        let mut args = vec!["import"];
        args.extend(file_args.iter().map(String::as_str));
        args.extend(["--out", run.as_str()]);
        refused(&args, wanted);
        assert!(
            !Path::new(&run).join("latest.json").exists(),
            "{args:?} wrote a run"
        );
    }
}
