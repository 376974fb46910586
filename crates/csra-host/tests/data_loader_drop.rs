//! Dropping an epoch midway stops its worker threads. Alone in its test binary, so that no
//! other test's loader threads are counted.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use csra_core::Sample;
use csra_host::data::{Loader, LoaderConfig};
use csra_image::load_rgb;
use image::{Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Live threads of this process whose name starts with the loader's `csra-data-`.
fn loader_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("csra-data-"))
        .count()
}

fn noise_jpeg(path: &Path) {
    let mut rng = StdRng::seed_from_u64(0);
    let image = RgbImage::from_fn(1600, 1200, |_, _| {
        Rgb([rng.random::<u8>(), rng.random::<u8>(), rng.random::<u8>()])
    });
    image.save(path).unwrap();
}

#[test]
fn dropping_an_epoch_midway_stops_its_workers_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noise.jpg");
    noise_jpeg(&path);
    let start = Instant::now();
    load_rgb(&path).unwrap();
    let one_image = start.elapsed();

    let sample = Sample {
        image: path,
        target: vec![true],
        ignore: vec![false],
        bbox: None,
    };
    // A thousand images: the rest of the epoch takes hundreds of times longer than one image.
    let samples: Arc<[Sample]> = vec![sample; 1000].into();
    let config = LoaderConfig {
        workers: 2,
        prefetch: 4,
        ..LoaderConfig::official_train(4, (64, 64), 0)
    };
    let loader = Loader::new(samples, 1, config).unwrap();
    let mut batches = loader.epoch(0);
    assert_eq!(batches.next().unwrap().len(), 4);
    assert_eq!(loader_threads(), 2);

    // Dropped on another thread, so that a hang fails the test instead of stalling it.
    let (done, dropped) = mpsc::channel();
    let start = Instant::now();
    thread::spawn(move || {
        drop(batches);
        done.send(start.elapsed()).unwrap();
    });
    // Each worker finishes at most the image it is on.
    let limit = (one_image * 4).max(Duration::from_millis(500));
    let stopping = dropped
        .recv_timeout(limit * 10)
        .expect("dropping the epoch did not return: its workers did not stop");
    assert!(
        stopping < limit,
        "stopping took {stopping:?}; one image takes {one_image:?}"
    );
    assert_eq!(loader_threads(), 0);
}
