use csra_core::manifest::{Preprocess, ResizePolicy};
use image::{Rgb, RgbImage};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::*;

/// No normalisation: the output floats are the 8-bit levels themselves.
fn levels(resize: ResizePolicy) -> Preprocess {
    Preprocess {
        resize,
        scale: 1.0,
        mean: [0.0; 3],
        std: [1.0; 3],
    }
}

fn random_image(rng: &mut StdRng, width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |_, _| {
        Rgb([rng.random::<u8>(), rng.random::<u8>(), rng.random::<u8>()])
    })
}

/// Pillow's antialiased bilinear weights along one axis, written out directly: the triangle
/// filter widened by the downscale factor, centred on each output pixel's source position,
/// over the whole source line, normalised.
fn triangle_weights(in_size: u32, start: f64, length: f64, out_size: u32) -> Vec<Vec<f64>> {
    let scale = length / f64::from(out_size);
    let support = scale.max(1.0);
    (0..out_size)
        .map(|o| {
            let centre = start + (f64::from(o) + 0.5) * scale;
            let raw: Vec<f64> = (0..in_size)
                .map(|j| (1.0 - ((f64::from(j) + 0.5 - centre) / support).abs()).max(0.0))
                .collect();
            let sum: f64 = raw.iter().sum();
            raw.iter().map(|w| w / sum).collect()
        })
        .collect()
}

/// The reference resize of `rect` to `out_w × out_h`, as CHW floats in 8-bit levels.
fn reference_resize(image: &RgbImage, rect: Rect, out_w: u32, out_h: u32) -> Vec<f64> {
    let wx = triangle_weights(image.width(), rect.left, rect.width, out_w);
    let wy = triangle_weights(image.height(), rect.top, rect.height, out_h);
    let mut out = vec![0.0; (3 * out_w * out_h) as usize];
    for c in 0..3 {
        for (oy, row_w) in wy.iter().enumerate() {
            for (ox, col_w) in wx.iter().enumerate() {
                let mut acc = 0.0;
                for (y, &a) in row_w.iter().enumerate() {
                    for (x, &b) in col_w.iter().enumerate() {
                        if a * b != 0.0 {
                            let p = image.get_pixel(x as u32, y as u32)[c];
                            acc += a * b * f64::from(p);
                        }
                    }
                }
                out[(c * out_h as usize + oy) * out_w as usize + ox] = acc;
            }
        }
    }
    out
}

fn render(image: &RgbImage, rect: Rect, flip: bool, size: (u32, u32), p: &Preprocess) -> Vec<f32> {
    let mut renderer = Renderer::new(size, p, Layout::Nchw, ColorOrder::Rgb);
    let mut out = vec![f32::NAN; renderer.len()];
    renderer.render(image.into(), rect, flip, &mut out).unwrap();
    out
}

#[test]
fn squash_matches_a_hand_computed_bilinear_downscale() {
    // Columns 0, 100, 200, 40 in every row and channel. Halving the width widens the triangle
    // to two source pixels: output column 0 sits at x = 1 and weighs pixels 0, 1, 2 by
    // 0.75, 0.75, 0.25 (pixel −1 is outside), giving (75 + 50) / 1.75 = 71.4; column 1 sits at
    // x = 3 and weighs pixels 1, 2, 3 by 0.25, 0.75, 0.75: (25 + 150 + 30) / 1.75 = 117.1.
    // Two rows to two rows is the identity.
    let columns = [0u8, 100, 200, 40];
    let image = RgbImage::from_fn(4, 2, |x, _| Rgb([columns[x as usize]; 3]));
    let out = preprocess_image(&image, (2, 2), &levels(ResizePolicy::Squash)).unwrap();
    assert_eq!(out.len(), 3 * 2 * 2);
    for plane in out.chunks(4) {
        assert_eq!(plane, [71.0, 117.0, 71.0, 117.0]);
    }
}

#[test]
fn center_crop_takes_the_middle_of_a_hand_made_picture() {
    // 4×2 to 2×2 with crop fraction 1: the shorter side stays 2 pixels, so no resampling, and
    // the centre 2×2 is columns 1 and 2.
    let image = RgbImage::from_fn(4, 2, |x, y| Rgb([(10 * x + y) as u8, 50 + x as u8, 200]));
    let policy = ResizePolicy::CenterCrop { crop_fraction: 1.0 };
    let out = preprocess_image(&image, (2, 2), &levels(policy)).unwrap();
    assert_eq!(
        out,
        [
            10.0, 20.0, 11.0, 21.0, // red: 10x + y at x = 1, 2
            51.0, 52.0, 51.0, 52.0, // green
            200.0, 200.0, 200.0, 200.0, // blue
        ]
    );
    // Squash on the same picture differs: it resamples all four columns.
    let squashed = preprocess_image(&image, (2, 2), &levels(ResizePolicy::Squash)).unwrap();
    assert_ne!(squashed, out);
}

#[test]
fn resizing_agrees_with_a_direct_antialiased_bilinear() {
    let mut rng = StdRng::seed_from_u64(21);
    let p = levels(ResizePolicy::Squash);
    for _ in 0..6 {
        let (w, h) = (rng.random_range(9..60), rng.random_range(9..60));
        let image = random_image(&mut rng, w, h);
        let (out_w, out_h) = (rng.random_range(3..24), rng.random_range(3..24));
        let rect = Rect {
            left: f64::from(rng.random_range(0..w / 3)),
            top: f64::from(rng.random_range(0..h / 3)),
            width: f64::from(w / 2 + rng.random_range(0..w / 6)),
            height: f64::from(h / 2 + rng.random_range(0..h / 6)),
        };
        let ours = render(&image, rect, false, (out_w, out_h), &p);
        let reference = reference_resize(&image, rect, out_w, out_h);
        for (i, (&a, &b)) in ours.iter().zip(&reference).enumerate() {
            // The resizer rounds to 8 bits between its horizontal and vertical passes.
            assert!(
                (f64::from(a) - b).abs() <= 1.0,
                "{w}×{h} {rect:?} → {out_w}×{out_h}: value {i} is {a}, reference {b}"
            );
        }
    }
}

#[test]
fn flipping_mirrors_the_picture_left_to_right() {
    let mut rng = StdRng::seed_from_u64(4);
    let image = random_image(&mut rng, 5, 3);
    let mirrored = RgbImage::from_fn(5, 3, |x, y| *image.get_pixel(4 - x, y));
    let p = levels(ResizePolicy::Squash);
    let whole = Rect::full(5, 3);
    let flipped = render(&image, whole, true, (5, 3), &p);
    assert_eq!(flipped, render(&mirrored, whole, false, (5, 3), &p));
    assert_ne!(flipped, render(&image, whole, false, (5, 3), &p));
    // Same size and no flip is an exact copy, in CHW order.
    let plain = render(&image, whole, false, (5, 3), &p);
    assert_eq!(plain[5 + 2], f32::from(image.get_pixel(2, 1)[0]));
    assert_eq!(plain[15 + 5 * 2 + 4], f32::from(image.get_pixel(4, 2)[1]));
}

#[test]
fn normalisation_is_applied_per_channel() {
    let image = RgbImage::from_pixel(6, 4, Rgb([10, 128, 250]));
    let p = Preprocess {
        resize: ResizePolicy::Squash,
        scale: 1.0 / 255.0,
        mean: [0.1, 0.2, 0.3],
        std: [0.5, 0.25, 2.0],
    };
    let out = preprocess_image(&image, (3, 2), &p).unwrap();
    let expected = [
        (10.0 / 255.0 - 0.1) / 0.5,
        (128.0 / 255.0 - 0.2) / 0.25,
        (250.0 / 255.0 - 0.3) / 2.0,
    ];
    for (c, plane) in out.chunks(6).enumerate() {
        for &v in plane {
            assert!(
                (f64::from(v) - expected[c]).abs() < 1e-6,
                "channel {c}: {v}"
            );
        }
    }
}

#[test]
fn an_empty_picture_is_an_error() {
    let err = preprocess_image(&RgbImage::new(0, 5), (4, 4), &Preprocess::official()).unwrap_err();
    assert!(err.to_string().contains("no pixels"), "{err}");
}
