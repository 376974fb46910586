//! `csra-host train` on real coco-mini images: a few steps lower the loss, and a run that is
//! interrupted mid-epoch and resumed ends in exactly the state of an uninterrupted one.

// A panic with the unwrapped error is the clearest failure report a test can give.
#![allow(clippy::unwrap_used)]
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use csra_core::{Dataset, HeadSpec};
use csra_host::data::{Augment, Loader, LoaderConfig};
use csra_host::data_source::{DataFormat, DataSource, Role};
use csra_host::evaluate::predict;
use csra_host::train::{self, Checkpoint, LrSchedule, Outcome, Recipe, TrainJob};
use csra_host::{Arch, CsraModel, ModelConfig};
use csra_test_support::data_dir;
use tch::nn::VarStore;
use tch::{Device, Tensor};

const SIZE: u32 = 96;

/// libtorch's random generator is process-global and seeded per run, so runs in parallel test
/// threads would draw each other's initial weights.
static TORCH_RNG: Mutex<()> = Mutex::new(());

fn coco_train() -> (DataSource, Dataset) {
    let root = data_dir().join("coco-mini");
    let source = DataSource::detect(&root, Some("train2017"), Role::Train).unwrap();
    assert_eq!(source.format, DataFormat::Coco);
    let mut set = source.read().unwrap();
    set.samples.truncate(8);
    (source, set)
}

fn job(out: &Path, epochs: usize, pretrained: bool, resume: Option<Checkpoint>) -> TrainJob {
    let (train_data, train_set) = coco_train();
    let preprocess = csra_core::manifest::Preprocess {
        mean: [0.5; 3],
        std: [0.5; 3],
        ..csra_core::manifest::Preprocess::official()
    };
    TrainJob {
        model: ModelConfig {
            arch: Arch::MobileNetV2,
            head: HeadSpec::csra(1, 0.1).unwrap(),
            num_classes: train_set.classes.len(),
            freeze_bn: true,
        },
        recipe: Recipe {
            batch_size: 4,
            schedule: LrSchedule {
                warmup_epochs: 1,
                ..LrSchedule::official()
            },
            ..Recipe::official(epochs)
        },
        image_size: SIZE,
        preprocess,
        augment: Augment::official_train(),
        train_data: vec![train_data],
        class_mapping: Vec::new(),
        train_set,
        val_data: None,
        val_set: None,
        pretrained: pretrained
            .then(|| data_dir().join("weights/mobilenet_v2_imagenet.safetensors")),
        out_dir: out.to_path_buf(),
        device: Device::Cpu,
        workers: 2,
        channels_last: true,
        max_steps_per_epoch: None,
        decoded_cache_bytes: 0,
        resume,
    }
}

/// The mean BCE of a checkpoint (or of the pretrained start) on the 8 images, unaugmented.
fn eval_loss(job: &TrainJob, checkpoint: Option<&Checkpoint>) -> f64 {
    let mut vs = VarStore::new(Device::Cpu);
    let model = CsraModel::new(&vs.root(), &job.model).unwrap();
    match checkpoint {
        Some(c) => c.restore(&mut vs).unwrap(),
        None => {
            csra_host::weights::load_backbone(&mut vs, job.pretrained.as_ref().unwrap()).unwrap();
        }
    }
    let loader = Loader::new(
        Arc::from(job.train_set.samples.clone()),
        job.train_set.classes.len(),
        LoaderConfig {
            batch_size: 8,
            image_size: (SIZE, SIZE),
            preprocess: job.preprocess.clone(),
            augment: Augment::None,
            shuffle: false,
            seed: 0,
            workers: 2,
            prefetch: 1,
            drop_last: false,
        },
    )
    .unwrap();
    predict(&model, &loader, Device::Cpu)
        .unwrap()
        .mean_bce(&job.train_set.samples)
}

fn finished(outcome: Outcome) -> Checkpoint {
    match outcome {
        Outcome::Finished(path) => Checkpoint::read(&path).unwrap(),
        Outcome::Interrupted(path) => panic!("interrupted at {}", path.display()),
    }
}

#[test]
fn a_few_steps_lower_the_loss_and_write_the_records() {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let job = job(dir.path(), 3, true, None);
    tch::manual_seed(0);
    let before = eval_loss(&job, None);
    let out = dir.path().to_path_buf();
    let checkpoint = finished(train::run(job, &AtomicBool::new(false)).unwrap());
    let after = eval_loss(&self::job(&out, 3, true, None), Some(&checkpoint));
    assert!(after < 0.8 * before, "loss {before:.4} -> {after:.4}");

    let log = std::fs::read_to_string(out.join(train::history::LOG_FILE)).unwrap();
    let epochs: Vec<u64> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(epochs, [1, 2, 3]);
    assert!(out.join(train::PLOT_FILE).is_file());
    assert_eq!(checkpoint.meta.progress.epochs_done, 3);
    assert_eq!(checkpoint.meta.history.len(), 3);
}

fn model_tensors(c: &Checkpoint) -> HashMap<String, Tensor> {
    c.tensors
        .iter()
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .collect()
}

#[test]
fn an_interrupted_run_resumes_to_the_same_state() {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let straight_dir = tempfile::tempdir().unwrap();
    let straight = finished(
        train::run(
            job(straight_dir.path(), 2, false, None),
            &AtomicBool::new(false),
        )
        .unwrap(),
    );

    // Stop requested from the start: the run saves after its first step.
    let dir = tempfile::tempdir().unwrap();
    let outcome = train::run(job(dir.path(), 2, false, None), &AtomicBool::new(true)).unwrap();
    let Outcome::Interrupted(path) = outcome else {
        panic!("expected an interruption, got {outcome:?}");
    };
    let partial = Checkpoint::read(&path).unwrap();
    assert_eq!(
        (
            partial.meta.progress.epochs_done,
            partial.meta.progress.steps_into_epoch
        ),
        (0, 1)
    );
    let resumed = finished(
        train::run(
            job(dir.path(), 2, false, Some(partial)),
            &AtomicBool::new(false),
        )
        .unwrap(),
    );

    let (a, b) = (model_tensors(&straight), model_tensors(&resumed));
    assert_eq!(a.len(), b.len());
    assert!(a.keys().any(|k| k.starts_with("sgd.momentum.")));
    for (name, x) in &a {
        let y = &b[name];
        let diff = (x - y).abs().max().double_value(&[]);
        assert!(diff <= 1e-5, "{name} differs by {diff}");
    }
    assert_eq!(straight.meta.progress, resumed.meta.progress);
}

#[test]
fn a_diverging_loss_stops_with_the_step_and_keeps_the_last_checkpoint() {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut job = job(dir.path(), 3, false, None);
    // Learning rates this large overflow the weights within the first epoch.
    job.recipe.lr_head = 1e38;
    job.recipe.lr_backbone = 1e38;
    job.recipe.schedule.warmup_epochs = 0;
    let err = train::run(job, &AtomicBool::new(false)).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, train::TrainError::Diverged { epoch: 1, .. }),
        "{message}"
    );
    assert!(message.contains("epoch 1, step"), "{message}");
    assert!(!dir.path().join(train::checkpoint::LATEST).exists());
}
