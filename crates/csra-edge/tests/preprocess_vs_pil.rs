//! csra-edge's preprocessing against an independent implementation: PIL's antialiased
//! BILINEAR resize of the same source box, then numpy's `(pixel · scale − mean) / std`
//! (`tests/python/pil_preprocess.py`), on real photos.
//!
//! Needs the pinned Python packages (Pillow, numpy):
//!
//! ```sh
//! python3 -m venv .venv && .venv/bin/pip install -r requirements/test.txt
//! CSRA_PYTHON=.venv/bin/python cargo test -p csra-edge --test preprocess_vs_pil
//! ```

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use csra_core::manifest::{Manifest, Preprocess, Rect, ResizePolicy};
use csra_edge::preprocess::Preprocessor;
use csra_edge::source::{Frame, PixelFormat};
use csra_test_support::{python, PYTHON_SETUP};

/// ImageNet normalisation: the std below 1 magnifies level differences, so the bounds hold
/// for any manifest with std ≥ 0.224.
fn imagenet(resize: ResizePolicy) -> Preprocess {
    Preprocess {
        resize,
        scale: 1.0 / 255.0,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    }
}

/// csra-edge's input tensor for `image`, and the source box it resized.
fn ours(image: &Path, manifest: &Manifest) -> (Vec<f32>, [f64; 4]) {
    let data = std::fs::read(image).unwrap();
    let frame = Frame {
        format: PixelFormat::Encoded,
        width: 0,
        height: 0,
        stride: 0,
        data,
        sequence: 0,
        captured: Instant::now(),
        origin: image.display().to_string(),
        pts: None,
        in_source: None,
    };
    let mut pre = Preprocessor::new(manifest);
    let mut out = vec![0.0; pre.input_len()];
    pre.run(&frame, &mut out).unwrap();
    let (w, h) = image::image_dimensions(image).unwrap();
    let size = manifest.input.width;
    let r = manifest
        .preprocess
        .resize
        .source_rect(Rect::full(w, h), (size, size));
    (out, [r.left, r.top, r.left + r.width, r.top + r.height])
}

fn pil(
    python: &Path,
    image: &Path,
    size: u32,
    b: [f64; 4],
    p: &Preprocess,
    out: &Path,
) -> Vec<f32> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/pil_preprocess.py");
    let triple = |v: [f32; 3]| v.map(|x| x.to_string()).join(",");
    let status = Command::new(python)
        .arg(&script)
        .arg(image)
        .arg(size.to_string())
        .args(b.map(|v| v.to_string()))
        .arg(p.scale.to_string())
        .arg(triple(p.mean))
        .arg(triple(p.std))
        .arg(out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {PYTHON_SETUP}", python.display()));
    assert!(
        status.success(),
        "{} failed; is requirements/test.txt installed? {PYTHON_SETUP}",
        script.display()
    );
    std::fs::read(out)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The largest and the mean difference, in 8-bit levels (undoing each channel's scale/std).
fn level_differences(ours: &[f32], theirs: &[f32], p: &Preprocess) -> (f64, f64) {
    let plane = ours.len() / 3;
    let mut max = 0.0f64;
    let mut sum = 0.0f64;
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let c = i / plane;
        let levels = f64::from((a - b).abs()) * f64::from(p.std[c]) / f64::from(p.scale);
        max = max.max(levels);
        sum += levels;
    }
    (max, sum / ours.len() as f64)
}

fn compare(image: &str, resize: ResizePolicy, max_levels: f64, mean_levels: f64) {
    let python = python();
    let image = common::photos_dir().join(image);
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 1);
    let mut manifest = model.manifest.clone();
    manifest.input.width = 224;
    manifest.input.height = 224;
    manifest.preprocess = imagenet(resize);
    let (ours, b) = ours(&image, &manifest);
    let theirs = pil(
        &python,
        &image,
        224,
        b,
        &manifest.preprocess,
        &dir.path().join("pil.f32"),
    );
    assert_eq!(ours.len(), theirs.len());
    let (max, mean) = level_differences(&ours, &theirs, &manifest.preprocess);
    eprintln!(
        "{} {resize:?}: max {max:.3} levels, mean {mean:.4}",
        image.display()
    );
    assert!(
        max <= max_levels,
        "{}: max difference {max} levels",
        image.display()
    );
    assert!(
        mean <= mean_levels,
        "{}: mean difference {mean} levels",
        image.display()
    );
}

/// A BMP decodes to identical pixels in both, so only the resize can differ. Both apply
/// Pillow's triangle-filter weights in two fixed-point passes (horizontal, then vertical) with
/// a rounding to 8 bits in between, but with different coefficient precision (Pillow 22 bits,
/// fast_image_resize's normaliser its own), so a value landing near a half level can round
/// the other way: at most one level, on about a sixth of the values (measured 1 level max,
/// 0.17 mean on this photo).
#[test]
fn bmp_squash_matches_pil_within_one_level() {
    compare(
        "coral_grace_hopper.bmp",
        ResizePolicy::Squash,
        1.0 + 1e-3,
        0.25,
    );
}

/// The centre crop passes the same fractional source box to both resizers.
#[test]
fn bmp_centre_crop_matches_pil_within_one_level() {
    let crop = ResizePolicy::CenterCrop {
        crop_fraction: 0.875,
    };
    compare("coral_grace_hopper.bmp", crop, 1.0 + 1e-3, 0.25);
}

/// A JPEG adds the decoders: zune-jpeg and PIL's libjpeg-turbo may differ by a level on some
/// pixels (IDCT and chroma-upsampling arithmetic), which the resize mostly averages away
/// (measured 1 level max, 0.16 mean on this photo).
#[test]
fn jpeg_squash_matches_pil_within_two_levels() {
    compare("cat_0.jpg", ResizePolicy::Squash, 2.0 + 1e-3, 0.3);
}
