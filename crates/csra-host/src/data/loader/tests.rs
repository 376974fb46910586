use std::path::Path;
use std::sync::Arc;

use csra_core::manifest::{Preprocess, ResizePolicy};
use csra_core::{BBox, Sample};
use image::{Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::*;
use csra_image::{load_rgb, preprocess_image};

const CLASSES: usize = 5;
const SIZE: (u32, u32) = (16, 12);

/// `count` random PNG pictures of assorted sizes in `dir`, with random labels. Their aspect
/// ratios stay near 1, where random resized crops vary (on a long strip they fall back to a
/// fixed centre crop).
fn dataset(dir: &Path, count: usize) -> Arc<[Sample]> {
    let mut rng = StdRng::seed_from_u64(count as u64);
    (0..count)
        .map(|i| {
            let w = rng.random_range(24..60);
            let h = w * rng.random_range(8..13) / 10;
            let image = RgbImage::from_fn(w, h, |_, _| {
                Rgb([rng.random::<u8>(), rng.random::<u8>(), rng.random::<u8>()])
            });
            let path = dir.join(format!("{i}.png"));
            image.save(&path).unwrap();
            let target: Vec<bool> = (0..CLASSES).map(|_| rng.random_bool(0.4)).collect();
            let ignore = target.iter().map(|&t| !t && rng.random_bool(0.2)).collect();
            Sample {
                image: path,
                target,
                ignore,
                bbox: None,
            }
        })
        .collect()
}

fn config(workers: usize, prefetch: usize) -> LoaderConfig {
    LoaderConfig {
        workers,
        prefetch,
        ..LoaderConfig::official_train(4, SIZE, 9)
    }
}

fn epoch(samples: &Arc<[Sample]>, config: LoaderConfig, e: u64) -> Vec<Batch> {
    Loader::new(Arc::clone(samples), CLASSES, config)
        .unwrap()
        .epoch(e)
        .collect()
}

fn indices(batches: &[Batch]) -> Vec<usize> {
    batches.iter().flat_map(|b| b.indices.clone()).collect()
}

#[test]
fn batches_do_not_depend_on_the_number_of_workers() {
    let dir = tempfile::tempdir().unwrap();
    let samples = dataset(dir.path(), 11);
    for e in [0, 1] {
        let one = epoch(&samples, config(1, 1), e);
        assert_eq!(one.len(), 3);
        assert_eq!(one, epoch(&samples, config(3, 2), e), "epoch {e}");
        assert_eq!(one, epoch(&samples, config(2, 6), e), "epoch {e}");
    }
}

#[test]
fn the_decoded_cache_changes_no_batch_and_spares_later_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let samples = dataset(dir.path(), 11);
    let cached = Loader::new(Arc::clone(&samples), CLASSES, config(2, 2))
        .unwrap()
        .with_decoded_cache(1 << 20);
    let first: Vec<Batch> = cached.epoch(0).collect();
    assert_eq!(first, epoch(&samples, config(2, 2), 0));
    let pixels: usize = samples
        .iter()
        .map(|s| image::open(&s.image).unwrap().to_rgb8().into_raw().len())
        .sum();
    assert_eq!(cached.cached_bytes(), pixels);
    // With the files gone, the next epochs still render from memory, as uncached epochs would.
    let expected: Vec<Vec<Batch>> = (1..3).map(|e| epoch(&samples, config(2, 2), e)).collect();
    for s in samples.iter() {
        std::fs::remove_file(&s.image).unwrap();
    }
    for (e, want) in (1..3).zip(expected) {
        let batches: Vec<Batch> = cached.epoch(e).collect();
        assert_eq!(batches, want, "epoch {e}");
    }
}

#[test]
fn every_sample_appears_once_per_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let samples = dataset(dir.path(), 11);
    let loader = Loader::new(Arc::clone(&samples), CLASSES, config(2, 2)).unwrap();
    assert_eq!(loader.len(), 3);
    let batches: Vec<Batch> = loader.epoch(4).collect();
    let sizes: Vec<usize> = batches.iter().map(Batch::len).collect();
    assert_eq!(sizes, [4, 4, 3]);
    let mut seen = indices(&batches);
    seen.sort_unstable();
    assert_eq!(seen, (0..11).collect::<Vec<_>>());
    for b in &batches {
        assert_eq!(b.shape, [b.len(), 3, 12, 16]);
        assert_eq!(b.images.len(), b.len() * 3 * 12 * 16);
    }

    let dropping = LoaderConfig {
        drop_last: true,
        ..config(2, 2)
    };
    let loader = Loader::new(Arc::clone(&samples), CLASSES, dropping).unwrap();
    assert_eq!(loader.len(), 2);
    let batches: Vec<Batch> = loader.epoch(4).collect();
    let mut seen = indices(&batches);
    assert_eq!(seen.len(), 8);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 8);
}

#[test]
fn each_epoch_has_its_own_order_and_augmentation() {
    let dir = tempfile::tempdir().unwrap();
    let samples = dataset(dir.path(), 11);
    let first = epoch(&samples, config(2, 2), 0);
    let again = epoch(&samples, config(2, 2), 0);
    let second = epoch(&samples, config(2, 2), 1);
    assert_eq!(first, again);
    assert_ne!(indices(&first), indices(&second));
    assert_ne!(indices(&first), (0..11).collect::<Vec<_>>());
    // The same sample is cropped or flipped differently in another epoch.
    let image_of = |batches: &[Batch], index: usize| {
        let per = 3 * 12 * 16;
        batches
            .iter()
            .find_map(|b| {
                let row = b.indices.iter().position(|&i| i == index)?;
                Some(b.images[row * per..(row + 1) * per].to_vec())
            })
            .unwrap()
    };
    let changed = (0..11)
        .filter(|&i| image_of(&first, i) != image_of(&second, i))
        .count();
    assert!(changed >= 10, "only {changed} of 11 samples look different");

    let in_order = LoaderConfig {
        shuffle: false,
        ..config(2, 2)
    };
    assert_eq!(
        indices(&epoch(&samples, in_order, 3)),
        (0..11).collect::<Vec<_>>()
    );
}

#[test]
fn targets_and_mask_follow_the_samples() {
    let dir = tempfile::tempdir().unwrap();
    let samples = dataset(dir.path(), 11);
    for b in epoch(&samples, config(2, 2), 0) {
        assert_eq!(b.num_classes, CLASSES);
        assert_eq!(b.targets.len(), b.len() * CLASSES);
        for (row, &index) in b.indices.iter().enumerate() {
            let s = &samples[index];
            for c in 0..CLASSES {
                let at = row * CLASSES + c;
                assert_eq!(b.targets[at], if s.target[c] { 1.0 } else { 0.0 });
                assert_eq!(b.mask[at], if s.ignore[c] { 0.0 } else { 1.0 });
            }
        }
    }
    assert!(samples.iter().any(|s| s.ignore.contains(&true)));
}

#[test]
fn the_eval_loader_renders_what_preprocess_image_does() {
    let dir = tempfile::tempdir().unwrap();
    let samples = dataset(dir.path(), 6);
    let preprocess = Preprocess {
        resize: ResizePolicy::CenterCrop { crop_fraction: 0.8 },
        scale: 1.0 / 127.5,
        mean: [1.0; 3],
        std: [1.0; 3],
    };
    let config = LoaderConfig {
        workers: 2,
        ..LoaderConfig::eval(4, SIZE, preprocess.clone())
    };
    let batches = epoch(&samples, config, 7);
    assert_eq!(indices(&batches), (0..6).collect::<Vec<_>>());
    let per = 3 * 12 * 16;
    for b in &batches {
        for (row, &index) in b.indices.iter().enumerate() {
            let image = load_rgb(&samples[index].image).unwrap();
            let expected = preprocess_image(&image, SIZE, &preprocess).unwrap();
            assert_eq!(b.images[row * per..(row + 1) * per], expected[..]);
        }
    }
}

#[test]
fn a_sample_box_is_cut_out_before_resizing() {
    let dir = tempfile::tempdir().unwrap();
    let image = RgbImage::from_fn(40, 30, |x, y| Rgb([x as u8, y as u8, (x * y) as u8]));
    let path = dir.path().join("boxed.png");
    image.save(&path).unwrap();
    let sample = Sample {
        image: path,
        target: vec![true; CLASSES],
        ignore: vec![false; CLASSES],
        bbox: Some(BBox {
            x: 5.0,
            y: 4.0,
            width: 16.0,
            height: 12.0,
        }),
    };
    let config = LoaderConfig {
        preprocess: Preprocess {
            scale: 1.0,
            ..Preprocess::official()
        },
        ..LoaderConfig::eval(1, SIZE, Preprocess::official())
    };
    let batches = epoch(&Arc::from(vec![sample]), config, 0);
    // The box is exactly the output size, so the output is the box's pixels unchanged.
    let expected: Vec<f32> = (0..3)
        .flat_map(|c| {
            let image = &image;
            (4..16).flat_map(move |y| (5..21).map(move |x| f32::from(image.get_pixel(x, y)[c])))
        })
        .collect();
    assert_eq!(batches[0].images, expected);
}

#[test]
fn bad_configurations_and_mislabelled_samples_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let samples = dataset(dir.path(), 2);
    let refuse = |config: LoaderConfig, needle: &str| {
        let err = Loader::new(Arc::clone(&samples), CLASSES, config).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    };
    refuse(
        LoaderConfig {
            batch_size: 0,
            ..config(1, 1)
        },
        "batch size",
    );
    refuse(config(0, 1), "workers");
    refuse(
        LoaderConfig {
            augment: Augment::Train {
                scale: (0.9, 0.5),
                ratio: (0.75, 1.33),
                hflip: true,
            },
            ..config(1, 1)
        },
        "scale",
    );
    refuse(
        LoaderConfig {
            preprocess: Preprocess {
                resize: ResizePolicy::CenterCrop { crop_fraction: 0.9 },
                ..Preprocess::official()
            },
            augment: Augment::Train {
                scale: (0.7, 1.0),
                ratio: (0.0, 1.33),
                hflip: true,
            },
            ..config(1, 1)
        },
        "ratio",
    );
    refuse(
        LoaderConfig {
            preprocess: Preprocess {
                resize: ResizePolicy::CenterCrop { crop_fraction: 1.5 },
                ..Preprocess::official()
            },
            ..config(1, 1)
        },
        "crop fraction",
    );
    let mut zero_std = config(1, 1);
    zero_std.preprocess.std[1] = 0.0;
    refuse(zero_std, "std");
    let err = Loader::new(Arc::clone(&samples), CLASSES + 1, config(1, 1)).unwrap_err();
    assert!(err.to_string().contains("0.png"), "{err}");
    let err = Loader::new(Arc::from(Vec::new()), CLASSES, config(1, 1)).unwrap_err();
    assert!(err.to_string().contains("no samples"), "{err}");
}
