//! `csra-host train` against plain PyTorch, step for step: a run on 16 real VOC pictures is
//! continued from its first checkpoint by `torch.optim.SGD` with the reference models of
//! `scripts/pytorch_reference.py` (`tests/python/train_step_reference.py`), and every
//! parameter and BatchNorm statistic both trainers end with must agree to rounding.
//!
//! The pictures are written as PNGs at the input size, so both sides feed the network the very
//! same numbers (no decoder or resampler in between) and only the trainers are compared: the
//! loss with its ignored labels, frozen BatchNorm, the two learning-rate groups, weight decay,
//! momentum carried over from the checkpoint, warm-up and step decay. Over 12 epochs on
//! different random crops the two drift apart as any two float implementations do; this test
//! is what says the recipe is the same.
//!
//! Needs the Python references with torch and torchvision (`CSRA_PYTHON` or the workspace's
//! `.venv`, see csra-test-support); fails without them.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use csra_core::{Dataset, HeadSpec};
use csra_host::data::Augment;
use csra_host::data_source::{DataSource, Role};
use csra_host::train::{self, Checkpoint, LrSchedule, Outcome, Recipe, TrainJob};
use csra_host::{Arch, ModelConfig};
use csra_test_support::{data_dir, run_python, workspace_root};
use serde_json::{json, Value};
use tch::{Device, Tensor};

/// Input side: small, so a step takes a fraction of a second.
const SIZE: u32 = 96;
/// One batch of this many pictures: one step per epoch.
const PICTURES: usize = 16;
/// Warm-up over epochs 1–2, then ×0.1 from epoch 3: three epochs see all three phases.
const EPOCHS: usize = 3;
/// The worst parameter's distance between the two trainers, as a fraction of how far csra's
/// steps moved it. Rounding stays below 0.5% (a few parameters that barely move); momentum
/// 0.8 instead of 0.9, no weight decay, no step decay or BatchNorm in train mode each put
/// some parameter 14% to 10¹³ of its move away, and dropping the loss mask 2.5–13% (and the
/// loss 0.4–8% off, which the loss check sees).
const TOLERANCE: f64 = 0.02;

/// libtorch's random generator is process-global and seeded per run: runs in parallel test
/// threads would draw each other's initial weights, and a failure would not repeat.
static TORCH_RNG: Mutex<()> = Mutex::new(());

/// 16 voc2007-mini trainval pictures with their official labels, half of them with a label
/// that is ignored (VOC "difficult" only), written as `SIZE × SIZE` PNGs into `dir`.
fn pictures(dir: &Path) -> (DataSource, Dataset) {
    let root = data_dir().join("voc2007-mini");
    let source = DataSource::detect(&root, Some("trainval"), Role::Train).unwrap();
    let mut set = source.read().unwrap();
    // The first 8 pictures with an ignored label, then the first others.
    let (ignored, plain): (Vec<_>, Vec<_>) = set
        .samples
        .into_iter()
        .partition(|s| s.ignore.contains(&true));
    set.samples = ignored
        .into_iter()
        .take(PICTURES / 2)
        .chain(plain)
        .take(PICTURES)
        .collect();
    let with_ignored = set.samples.iter().filter(|s| s.ignore.contains(&true));
    assert_eq!(with_ignored.count(), PICTURES / 2);
    for (i, sample) in set.samples.iter_mut().enumerate() {
        let picture = image::open(&sample.image).unwrap().to_rgb8();
        let small =
            image::imageops::resize(&picture, SIZE, SIZE, image::imageops::FilterType::Triangle);
        sample.image = dir.join(format!("{i:02}.png"));
        small.save(&sample.image).unwrap();
    }
    (source, set)
}

fn job(dir: &Path, head: HeadSpec) -> TrainJob {
    let (source, train_set) = pictures(dir);
    TrainJob {
        model: ModelConfig {
            arch: Arch::MobileNetV2,
            head,
            num_classes: train_set.classes.len(),
            freeze_bn: true,
        },
        recipe: Recipe {
            schedule: LrSchedule {
                step_size: 2,
                ..LrSchedule::official()
            },
            ..Recipe::official(EPOCHS)
        },
        image_size: SIZE,
        // x / 127.5 - 1, as the shipped TensorFlow-origin weights expect.
        preprocess: csra_core::manifest::Preprocess {
            mean: [0.5; 3],
            std: [0.5; 3],
            ..csra_core::manifest::Preprocess::official()
        },
        augment: Augment::None,
        train_data: vec![source],
        class_mapping: Vec::new(),
        train_set,
        val_data: None,
        val_set: None,
        pretrained: Some(data_dir().join("weights/mobilenet_v2_imagenet.safetensors")),
        out_dir: dir.join("run"),
        device: Device::Cpu,
        workers: 2,
        // PyTorch's layout, so both sides run the same kernels.
        channels_last: false,
        max_steps_per_epoch: None,
        decoded_cache_bytes: 0,
        resume: None,
    }
}

/// What PyTorch needs besides the checkpoint: model, recipe, epochs and samples.
fn reference_spec(job: &TrainJob, head: &str) -> Value {
    let r = &job.recipe;
    let samples: Vec<Value> = job
        .train_set
        .samples
        .iter()
        .map(|s| {
            json!({
                "image": s.image,
                "targets": s.target.iter().map(|&t| u8::from(t)).collect::<Vec<_>>(),
                "mask": s.ignore.iter().map(|&i| u8::from(!i)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "head": head,
        "lambda": 0.1,
        "weights": data_dir().join("weights/mobilenet_v2_imagenet.pth"),
        "recipe": {
            "lr_backbone": r.lr_backbone, "lr_head": r.lr_head, "momentum": r.momentum,
            "weight_decay": r.weight_decay, "warmup_epochs": r.schedule.warmup_epochs,
            "step_size": r.schedule.step_size, "gamma": r.schedule.gamma,
        },
        "first_epoch": 1,
        "end_epoch": EPOCHS,
        "samples": samples,
    })
}

/// Trains `head` for three epochs with csra, continues the first epoch's checkpoint in
/// PyTorch, and compares what both end with.
fn same_steps_as_pytorch(head: HeadSpec, name: &str) {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let job = job(dir.path(), head);
    let spec = reference_spec(&job, name);
    let run = job.out_dir.clone();
    match train::run(job, &AtomicBool::new(false)).unwrap() {
        Outcome::Finished(_) => {}
        Outcome::Interrupted(path) => panic!("interrupted at {}", path.display()),
    }
    let first = Checkpoint::read(&run.join("epoch-001.json")).unwrap();
    let last = Checkpoint::read(&run.join("epoch-003.json")).unwrap();

    let start = dir.path().join("start.npz");
    let tensors: Vec<(&String, &Tensor)> = first.tensors.iter().collect();
    Tensor::write_npz(&tensors, &start).unwrap();
    let samples = dir.path().join("samples.json");
    std::fs::write(&samples, spec.to_string()).unwrap();
    let out = dir.path().join("pytorch.npz");
    let script = workspace_root().join("tests/python/train_step_reference.py");
    let stdout = run_python(&script, [&start, &samples, &out]);
    let torch: HashMap<String, Tensor> = Tensor::read_npz(&out).unwrap().into_iter().collect();

    // Every tensor PyTorch has (parameters and BatchNorm statistics), under csra's names.
    assert!(torch.len() > 200, "{} tensors from PyTorch", torch.len());
    let mut worst = (0.0, String::new());
    for (key, theirs) in &torch {
        let ours = &last.tensors[key];
        let moved = (ours - &first.tensors[key]).norm().double_value(&[]);
        let apart = (ours - theirs).norm().double_value(&[]);
        let scale = ours.norm().double_value(&[]);
        // Frozen statistics do not move; they must stay equal up to float rounding.
        let ratio = apart / moved.max(1e-6 * scale).max(1e-12);
        if ratio > worst.0 {
            worst = (ratio, key.clone());
        }
    }
    eprintln!(
        "{name}: the furthest apart is {} at {:.2e} of its move",
        worst.1, worst.0
    );
    assert!(
        worst.0 <= TOLERANCE,
        "{name}: {} ends {:.1}% of its move away from PyTorch's",
        worst.1,
        100.0 * worst.0
    );
    // The head did train, so the comparison is not of two unmoved copies.
    let fc = torch.keys().find(|k| k.starts_with("head.")).unwrap();
    let moved = (&last.tensors[fc] - &first.tensors[fc])
        .norm()
        .double_value(&[]);
    assert!(moved > 1e-3, "{fc} moved only {moved}");

    // The loss of each step, as csra's log recorded it.
    let reported: Value = serde_json::from_slice(&stdout).unwrap();
    let losses: Vec<f64> = last.meta.history[1..]
        .iter()
        .map(|e| e.train_loss)
        .collect();
    let theirs = reported["losses"].as_array().unwrap();
    assert_eq!((losses.len(), theirs.len()), (EPOCHS - 1, EPOCHS - 1));
    for (ours, theirs) in losses.iter().zip(theirs) {
        let theirs = theirs.as_f64().unwrap();
        assert!(
            (ours - theirs).abs() <= 1e-4 * theirs,
            "{name}: loss {ours} against PyTorch's {theirs}"
        );
    }
}

#[test]
fn the_baseline_trains_as_in_pytorch() {
    same_steps_as_pytorch(HeadSpec::baseline(), "baseline");
}

#[test]
fn csra_trains_as_in_pytorch() {
    same_steps_as_pytorch(HeadSpec::csra(1, 0.1).unwrap(), "csra");
}
