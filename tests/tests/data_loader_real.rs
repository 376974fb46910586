//! The data loader on real pictures: COCO-mini and the shared photos.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use csra_core::dataset::coco;
use csra_core::manifest::Preprocess;
use csra_core::Sample;
use csra_host::data::{measure_throughput, Batch, Loader, LoaderConfig};
use csra_test_support::data_dir;

fn coco_mini_train() -> (Vec<Sample>, usize) {
    let root = data_dir().join("coco-mini");
    let dataset = coco::read(
        &root.join("annotations/instances_train2017.json"),
        &root.join("train2017"),
    )
    .unwrap();
    (dataset.samples, dataset.classes.len())
}

fn sample(image: PathBuf) -> Sample {
    Sample {
        image,
        target: vec![true, false],
        ignore: vec![false, true],
        bbox: None,
    }
}

#[test]
fn truncated_and_non_image_files_are_skipped_and_counted() {
    let photos = data_dir().join("photos");
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(photos.join("city_0.jpg")).unwrap();
    let half = &whole[..whole.len() / 2];
    // A lenient decoder would hand this half picture over with its bottom filled grey.
    assert!(image::load_from_memory(half).is_ok());
    let truncated = dir.path().join("truncated.jpg");
    std::fs::write(&truncated, half).unwrap();
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, "these are not pixels\n").unwrap();

    let good = [
        "bird_0.jpg",
        "cat_1.jpg",
        "coral_cat.bmp",
        "dog_0.jpg",
        "desk.jpg",
    ];
    let mut images: Vec<PathBuf> = good.iter().map(|name| photos.join(name)).collect();
    images.insert(1, truncated.clone());
    images.insert(4, text.clone());
    let samples: Arc<[Sample]> = images.into_iter().map(sample).collect();
    let config = LoaderConfig {
        workers: 2,
        ..LoaderConfig::eval(3, (64, 48), Preprocess::official())
    };
    let loader = Loader::new(samples, 2, config).unwrap();
    for epoch in 0..2 {
        let mut batches = loader.epoch(epoch);
        let delivered: Vec<Batch> = batches.by_ref().collect();
        let sizes: Vec<usize> = delivered.iter().map(Batch::len).collect();
        assert_eq!(sizes, [2, 2, 1]);
        let indices: Vec<usize> = delivered.iter().flat_map(|b| b.indices.clone()).collect();
        assert_eq!(indices, [0, 2, 3, 5, 6]);
        let skipped = batches.skipped();
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert_eq!(skipped[0].image, truncated);
        assert!(
            skipped[0].reason.contains("truncated.jpg"),
            "{}",
            skipped[0].reason
        );
        assert_eq!(skipped[1].image, text);
        assert!(
            skipped[1].reason.contains("notes.jpg"),
            "{}",
            skipped[1].reason
        );
        for b in &delivered {
            assert_eq!(b.shape, [b.len(), 3, 48, 64]);
            assert_eq!(b.targets, [1.0, 0.0].repeat(b.len()));
            assert_eq!(b.mask, [1.0, 0.0].repeat(b.len()));
        }
    }
}

#[test]
fn a_coco_mini_training_epoch_has_the_right_shapes_and_values() {
    let (samples, classes) = coco_mini_train();
    let samples: Arc<[Sample]> = samples.into_iter().take(32).collect();
    let config = LoaderConfig {
        workers: 2,
        ..LoaderConfig::official_train(8, (224, 224), 1)
    };
    let loader = Loader::new(Arc::clone(&samples), classes, config).unwrap();
    let mut batches = loader.epoch(0);
    let mut seen = Vec::new();
    for b in batches.by_ref() {
        assert_eq!(b.shape, [8, 3, 224, 224]);
        assert_eq!(b.images.len(), 8 * 3 * 224 * 224);
        assert_eq!(b.targets.len(), 8 * classes);
        for (row, &index) in b.indices.iter().enumerate() {
            let image = &b.images[row * 3 * 224 * 224..(row + 1) * 3 * 224 * 224];
            assert!(image.iter().all(|v| (0.0..=1.0).contains(v)));
            let mean = image.iter().sum::<f32>() / image.len() as f32;
            let var = image.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / image.len() as f32;
            assert!(var.sqrt() > 0.05, "sample {index} is nearly flat");
            let targets = &b.targets[row * classes..(row + 1) * classes];
            let expected: Vec<f32> = samples[index]
                .target
                .iter()
                .map(|&t| if t { 1.0 } else { 0.0 })
                .collect();
            assert_eq!(targets, expected);
            assert!(targets.contains(&1.0));
        }
        seen.extend(b.indices);
    }
    assert!(batches.skipped().is_empty());
    seen.sort_unstable();
    assert_eq!(seen, (0..32).collect::<Vec<_>>());
}

/// `cargo test --release -p csra-host --test data_real -- --ignored --nocapture`
#[test]
#[ignore = "a benchmark: run it in release mode"]
fn loader_throughput_on_coco_mini_train2017() {
    let (samples, classes) = coco_mini_train();
    let samples: Arc<[Sample]> = samples.into();
    for workers in [1, 2] {
        let config = LoaderConfig {
            workers,
            prefetch: workers + 2,
            ..LoaderConfig::official_train(16, (224, 224), 0)
        };
        let loader = Loader::new(Arc::clone(&samples), classes, config).unwrap();
        let t = measure_throughput(&loader, 0, usize::MAX);
        println!(
            "{workers} worker(s): {} images in {:.2} s, {:.0} images/s",
            t.images,
            t.seconds,
            t.images_per_second()
        );
        assert_eq!(t.images, samples.len());
    }
}
