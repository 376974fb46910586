//! Host and edge feed a model bit-identical input tensors for the same file: csra-host's
//! evaluation loader (and the one-off `preprocess_image` its `predict`, `explain` and export
//! checks use) against csra-edge's per-stream `Preprocessor`, on real photos (JPEG, BMP) and a
//! PNG written here, under the squash and centre-crop policies, square and not.
//!
//! Any difference between the two sides (another resize filter, crop rounding, decoder mode,
//! channel order or normalisation formula) changes real-photo values and fails the bit
//! comparison: train/deploy skew in preprocessing is otherwise a silent accuracy loss.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use csra_core::manifest::{Manifest, Preprocess, ResizePolicy};
use csra_core::Sample;
use csra_edge::preprocess::Preprocessor;
use csra_edge::source::Frame;
use csra_host::data::{Loader, LoaderConfig};
use csra_image::{load_rgb, preprocess_image};
use csra_test_support::{data_dir, workspace_root};
use image::{Rgba, RgbaImage};

/// Real photos of assorted sizes and JPEG subsamplings, and a BMP.
const PHOTOS: [&str; 6] = [
    "cat_0.jpg",
    "city_0.jpg",
    "coral_cat_720p.jpg",
    "coral_parrot.jpg",
    "desk.jpg",
    "coral_grace_hopper.bmp",
];

/// A PNG made from a real photo: cut to an odd size, with a varying alpha channel (which both
/// sides must drop the same way).
fn png_fixture(dir: &Path) -> PathBuf {
    let photo = load_rgb(&data_dir().join("photos/dog_0.jpg")).unwrap();
    let (w, h) = (photo.width().min(301), photo.height().min(217));
    let png = RgbaImage::from_fn(w, h, |x, y| {
        let [r, g, b] = photo.get_pixel(x, y).0;
        Rgba([r, g, b, ((x + y) % 256) as u8])
    });
    let path = dir.join("dog_0_cut.png");
    png.save(&path).unwrap();
    path
}

/// The shipped model's manifest with the input size and preprocessing under test. ImageNet's
/// per-channel mean and std make every channel's table different.
fn manifest(size: (u32, u32), resize: ResizePolicy) -> Manifest {
    let path = workspace_root().join("models/mobilenet_v2-coco-voc-mini/model.manifest.json");
    let mut manifest = Manifest::read(&path).unwrap();
    manifest.input.width = size.0;
    manifest.input.height = size.1;
    manifest.preprocess = Preprocess {
        resize,
        scale: 1.0 / 255.0,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
    manifest
}

/// csra-host's evaluation loader over `files`: one input tensor per file, in order.
fn host_loader(files: &[PathBuf], manifest: &Manifest) -> Vec<Vec<f32>> {
    let size = (manifest.input.width, manifest.input.height);
    let samples: Arc<[Sample]> = files
        .iter()
        .map(|image| Sample {
            image: image.clone(),
            target: vec![true],
            ignore: vec![false],
            bbox: None,
        })
        .collect();
    let config = LoaderConfig {
        workers: 2,
        ..LoaderConfig::eval(3, size, manifest.preprocess.clone())
    };
    let loader = Loader::new(samples, 1, config).unwrap();
    let mut epoch = loader.epoch(0);
    let mut tensors = Vec::new();
    for batch in epoch.by_ref() {
        let per = batch.images.len() / batch.indices.len();
        assert_eq!(
            batch.indices,
            (tensors.len()..tensors.len() + batch.indices.len()).collect::<Vec<_>>()
        );
        tensors.extend(batch.images.chunks_exact(per).map(<[f32]>::to_vec));
    }
    assert!(epoch.skipped().is_empty(), "{:?}", epoch.skipped());
    tensors
}

/// csra-edge's preprocessor over `files`, one reused across them as on a stream.
fn edge(files: &[PathBuf], manifest: &Manifest) -> Vec<Vec<f32>> {
    let mut pre = Preprocessor::new(manifest);
    files
        .iter()
        .map(|path| {
            let frame = Frame::encoded(std::fs::read(path).unwrap(), 0, path.display().to_string());
            let mut out = vec![f32::NAN; pre.input_len()];
            pre.run(&frame, &mut out).unwrap();
            out
        })
        .collect()
}

fn assert_bit_identical(what: &str, ours: &[f32], edge: &[f32]) {
    assert_eq!(ours.len(), edge.len(), "{what}: tensor lengths");
    for (i, (a, b)) in ours.iter().zip(edge).enumerate() {
        assert_eq!(
            a.to_bits(),
            b.to_bits(),
            "{what}: value {i} is {a} on the host, {b} on the edge"
        );
    }
}

#[test]
fn host_and_edge_make_bit_identical_input_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let photos = data_dir().join("photos");
    let mut files: Vec<PathBuf> = PHOTOS.iter().map(|name| photos.join(name)).collect();
    files.push(png_fixture(dir.path()));
    let policies = [
        ResizePolicy::Squash,
        ResizePolicy::CenterCrop {
            crop_fraction: 0.875,
        },
    ];
    for size in [(224, 224), (160, 96)] {
        let mut by_policy = Vec::new();
        for resize in policies {
            let manifest = manifest(size, resize);
            let loader = host_loader(&files, &manifest);
            let edge = edge(&files, &manifest);
            assert_eq!(loader.len(), files.len());
            for ((file, host), edge) in files.iter().zip(&loader).zip(&edge) {
                let what = format!("{} {size:?} {resize:?}", file.display());
                assert_bit_identical(&format!("{what}, eval loader"), host, edge);
                let image = load_rgb(file).unwrap();
                let one = preprocess_image(&image, size, &manifest.preprocess).unwrap();
                assert_bit_identical(&format!("{what}, preprocess_image"), &one, edge);
                // A real picture, not a constant or unwritten buffer.
                assert!(edge.iter().all(|v| v.is_finite()), "{what}");
                let first = edge[0];
                assert!(edge.iter().any(|&v| v != first), "{what}: constant tensor");
            }
            by_policy.push(edge);
        }
        // The two policies see different pixels of every (non-square) picture, so the
        // comparison above covers two different source rectangles.
        for (file, (squash, crop)) in files.iter().zip(by_policy[0].iter().zip(&by_policy[1])) {
            assert_ne!(squash, crop, "{} {size:?}", file.display());
        }
    }
}
