//! Attention overlays as in the paper's Fig. 4: a class's attention map upsampled to the picture,
//! coloured with the jet colour map and blended over it, plus a text caption in a corner.

use crate::{font, ImageError};
use ab_glyph::{point, Font, PxScale, ScaleFont};
use image::{Rgb, RgbImage};

/// Weight of the colour map in the blend: at one half the picture stays recognisable under the
/// heat map, as in the paper's figures.
pub const OVERLAY_ALPHA: f32 = 0.5;

/// Fill colour of the caption box: dark enough for white text on any picture.
const CAPTION_BOX: Rgb<u8> = Rgb([24, 24, 24]);
/// Colour of the caption text.
const CAPTION_TEXT: [f32; 3] = [255.0, 255.0, 255.0];

/// Lays the `[h, w]` attention map (row-major) over `image`: bilinear upsampling to the image
/// size (PyTorch's `align_corners=False` convention), min-max normalisation to [0, 1], the jet
/// colour map, and an [`OVERLAY_ALPHA`] blend. A constant map gives a uniform cold tint.
pub fn overlay_attention(
    image: &RgbImage,
    attention: &[f32],
    (h, w): (usize, usize),
) -> Result<RgbImage, ImageError> {
    if h == 0 || w == 0 || h.checked_mul(w) != Some(attention.len()) {
        return Err(ImageError::AttentionShape {
            len: attention.len(),
            h,
            w,
        });
    }
    if let Some(i) = attention.iter().position(|v| !v.is_finite()) {
        return Err(ImageError::NonFiniteAttention {
            row: i / w,
            col: i % w,
            value: attention[i],
        });
    }
    let (width, height) = image.dimensions();
    let heat = upsample_bilinear(attention, (h, w), (height as usize, width as usize));
    let (lo, hi) = heat
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let span = hi - lo;
    let mut out = image.clone();
    for (pixel, &v) in out.pixels_mut().zip(&heat) {
        let level = if span > 0.0 { (v - lo) / span } else { 0.0 };
        let colour = jet(level);
        for (channel, c) in pixel.0.iter_mut().zip(colour) {
            *channel = blend(*channel, 255.0 * c, OVERLAY_ALPHA);
        }
    }
    Ok(out)
}

/// Draws `text` (one line, e.g. "dog 0.93") in white on a dark box in the top-left corner. The
/// font size follows the image size; text that does not fit is clipped at the image edge.
pub fn caption(image: &mut RgbImage, text: &str) -> Result<(), ImageError> {
    let (width, height) = image.dimensions();
    if text.is_empty() || width == 0 || height == 0 {
        return Ok(());
    }
    let font = font::sans().ok_or(ImageError::Font)?;
    let scale = PxScale::from(caption_px(width, height));
    let scaled = font.as_scaled(scale);
    let pad = (0.3 * scale.y).ceil();
    let glyphs = layout(&scaled, text, point(pad, pad + scaled.ascent()));
    let text_width = glyphs
        .last()
        .map_or(0.0, |g| g.position.x + scaled.h_advance(g.id) - pad);
    let box_w = ((text_width + 2.0 * pad).ceil() as u32).min(width);
    let box_h = ((scaled.ascent() - scaled.descent() + 2.0 * pad).ceil() as u32).min(height);
    for y in 0..box_h {
        for x in 0..box_w {
            image.put_pixel(x, y, CAPTION_BOX);
        }
    }
    for glyph in glyphs {
        let Some(outline) = font.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let x = bounds.min.x as i64 + i64::from(gx);
            let y = bounds.min.y as i64 + i64::from(gy);
            if (0..i64::from(box_w)).contains(&x) && (0..i64::from(box_h)).contains(&y) {
                let pixel = image.get_pixel_mut(x as u32, y as u32);
                for (channel, c) in pixel.0.iter_mut().zip(CAPTION_TEXT) {
                    *channel = blend(*channel, c, coverage);
                }
            }
        });
    }
    Ok(())
}

/// Caption font size in pixels: readable on a 224-pixel thumbnail, not huge on a photo.
fn caption_px(width: u32, height: u32) -> f32 {
    (width.min(height) as f32 / 14.0).clamp(12.0, 40.0)
}

/// Positions the glyphs of `text` on one line starting at `origin` (the baseline), with kerning.
fn layout<F: Font>(
    scaled: &ab_glyph::PxScaleFont<&F>,
    text: &str,
    origin: ab_glyph::Point,
) -> Vec<ab_glyph::Glyph> {
    let mut caret = origin.x;
    let mut previous = None;
    let mut glyphs = Vec::with_capacity(text.len());
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(prev) = previous {
            caret += scaled.kern(prev, id);
        }
        glyphs.push(id.with_scale_and_position(scaled.scale(), point(caret, origin.y)));
        caret += scaled.h_advance(id);
        previous = Some(id);
    }
    glyphs
}

/// Mixes `over` into `base` with weight `alpha` in [0, 1].
fn blend(base: u8, over: f32, alpha: f32) -> u8 {
    let alpha = alpha.clamp(0.0, 1.0);
    ((1.0 - alpha) * f32::from(base) + alpha * over)
        .round()
        .clamp(0.0, 255.0) as u8
}

/// The jet colour map: dark blue (0) through cyan, green and yellow to dark red (1), as RGB in [0, 1].
fn jet(level: f32) -> [f32; 3] {
    let v = 4.0 * level.clamp(0.0, 1.0);
    [3.0, 2.0, 1.0].map(|centre: f32| (1.5 - (v - centre).abs()).clamp(0.0, 1.0))
}

/// Bilinear resize of a row-major `src` grid to `dst` (height, width), sampling pixel centres and
/// clamping at the borders (PyTorch's `interpolate(mode="bilinear", align_corners=False)`).
fn upsample_bilinear(
    src: &[f32],
    (h, w): (usize, usize),
    (out_h, out_w): (usize, usize),
) -> Vec<f32> {
    let rows = axis_taps(h, out_h);
    let cols = axis_taps(w, out_w);
    let mut out = Vec::with_capacity(out_h * out_w);
    for &(y0, y1, fy) in &rows {
        for &(x0, x1, fx) in &cols {
            let top = (1.0 - fx) * src[y0 * w + x0] + fx * src[y0 * w + x1];
            let bottom = (1.0 - fx) * src[y1 * w + x0] + fx * src[y1 * w + x1];
            out.push((1.0 - fy) * top + fy * bottom);
        }
    }
    out
}

/// For each output index along one axis: the two source indices and the weight of the second.
fn axis_taps(src_len: usize, dst_len: usize) -> Vec<(usize, usize, f32)> {
    let scale = src_len as f32 / dst_len as f32;
    (0..dst_len)
        .map(|i| {
            let pos = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (pos.floor() as usize).min(src_len - 1);
            let i1 = (i0 + 1).min(src_len - 1);
            (i0, i1, pos - i0 as f32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    fn grey(width: u32, height: u32, level: u8) -> RgbImage {
        RgbImage::from_pixel(width, height, Rgb([level; 3]))
    }

    #[test]
    fn bilinear_upsampling_matches_pytorch() {
        // torch.nn.functional.interpolate(a[None, None], size=(5, 7), mode="bilinear",
        // align_corners=False) for a = [[0, 1, 4], [2, -1, 3]].
        let expected = [
            0.0, 0.142857, 0.571429, 1.0, 2.285714, 3.571429, 4.0, //
            0.2, 0.285714, 0.542857, 0.8, 2.128571, 3.457143, 3.9, //
            1.0, 0.857143, 0.428571, 0.0, 1.5, 3.0, 3.5, //
            1.8, 1.428571, 0.314286, -0.8, 0.871429, 2.542857, 3.1, //
            2.0, 1.571429, 0.285714, -1.0, 0.714286, 2.428572, 3.0,
        ];
        let got = upsample_bilinear(&[0.0, 1.0, 4.0, 2.0, -1.0, 3.0], (2, 3), (5, 7));
        assert_eq!(got.len(), expected.len());
        for (i, (g, e)) in got.iter().zip(expected).enumerate() {
            assert!((g - e).abs() < 1e-5, "index {i}: {g} vs torch {e}");
        }
    }

    #[test]
    fn jet_matches_matplotlib_at_its_anchor_points() {
        // matplotlib.cm.jet at 0, 0.25, 0.5 and 1 (from its segment data).
        let reference = [
            (0.0, [0.0, 0.0, 0.5]),
            (0.25, [0.0, 0.5, 1.0]),
            (0.5, [0.484, 1.0, 0.484]),
            (1.0, [0.5, 0.0, 0.0]),
        ];
        for (level, rgb) in reference {
            let got = jet(level);
            for k in 0..3 {
                assert!(
                    (got[k] - rgb[k]).abs() < 0.02,
                    "jet({level}) = {got:?}, matplotlib {rgb:?}"
                );
            }
        }
    }

    #[test]
    fn output_has_the_input_size() {
        let image = grey(131, 77, 90);
        let out = overlay_attention(&image, &[0.1, 0.5, 0.2, 0.9, 0.3, 0.0], (2, 3)).unwrap();
        assert_eq!(out.dimensions(), (131, 77));
    }

    #[test]
    fn one_hot_attention_is_hottest_at_its_cell() {
        let (width, height) = (140u32, 100u32);
        let image = grey(width, height, 128);
        let (h, w, row, col) = (7usize, 7usize, 2usize, 5usize);
        let mut attention = vec![0.0f32; h * w];
        attention[row * w + col] = 3.0;
        let out = overlay_attention(&image, &attention, (h, w)).unwrap();
        // Half grey 128, half jet(1) = dark red (127.5, 0, 0).
        let hot = [128, 64, 64];
        let (x, y, hottest) = out
            .enumerate_pixels()
            .min_by_key(|(_, _, p)| {
                p.0.iter()
                    .zip(hot)
                    .map(|(&a, b)| u32::from(a.abs_diff(b)))
                    .sum::<u32>()
            })
            .unwrap();
        let centre_x = (col as f32 + 0.5) * width as f32 / w as f32;
        let centre_y = (row as f32 + 0.5) * height as f32 / h as f32;
        let cell = (width as f32 / w as f32, height as f32 / h as f32);
        assert!(
            (x as f32 - centre_x).abs() <= cell.0 / 2.0,
            "hottest x {x}, cell centre {centre_x}"
        );
        assert!(
            (y as f32 - centre_y).abs() <= cell.1 / 2.0,
            "hottest y {y}, cell centre {centre_y}"
        );
        assert_eq!(hottest.0, hot);
        // Far from the cell the map is at its minimum: half grey, half dark blue (0, 0, 127.5).
        assert_eq!(out.get_pixel(0, height - 1).0, [64, 64, 128]);
    }

    #[test]
    fn uniform_attention_gives_a_uniform_tint() {
        let mut rng = StdRng::seed_from_u64(4);
        let mut image = RgbImage::new(64, 48);
        for p in image.pixels_mut() {
            p.0 = [
                rng.random_range(0..=255),
                rng.random_range(0..=255),
                rng.random_range(0..=255),
            ];
        }
        let out = overlay_attention(&image, &[0.7; 12], (3, 4)).unwrap();
        for (a, b) in image.pixels().zip(out.pixels()) {
            for k in 0..3 {
                let tint = 0.5 * 255.0 * jet(0.0)[k];
                let expected = 0.5 * f32::from(a.0[k]) + tint;
                assert!(
                    (f32::from(b.0[k]) - expected).abs() <= 0.5,
                    "{a:?} -> {b:?}"
                );
            }
        }
    }

    #[test]
    fn bad_attention_is_reported() {
        let image = grey(8, 8, 0);
        assert!(matches!(
            overlay_attention(&image, &[0.0; 5], (2, 3)),
            Err(ImageError::AttentionShape { len: 5, h: 2, w: 3 })
        ));
        assert!(matches!(
            overlay_attention(&image, &[], (0, 3)),
            Err(ImageError::AttentionShape { .. })
        ));
        let err = overlay_attention(&image, &[0.0, 1.0, f32::NAN, 0.0], (2, 2)).unwrap_err();
        assert!(
            matches!(err, ImageError::NonFiniteAttention { row: 1, col: 0, .. }),
            "{err}"
        );
    }

    /// The rectangle (width, height) at the origin that holds every changed pixel.
    fn changed_extent(before: &RgbImage, after: &RgbImage) -> (u32, u32) {
        before
            .enumerate_pixels()
            .filter(|(x, y, p)| after.get_pixel(*x, *y) != *p)
            .fold((0, 0), |(w, h), (x, y, _)| (w.max(x + 1), h.max(y + 1)))
    }

    #[test]
    fn caption_draws_a_dark_box_with_light_text_in_the_corner_only() {
        let before = RgbImage::from_pixel(224, 224, Rgb([200, 180, 160]));
        let mut after = before.clone();
        caption(&mut after, "dog 0.93").unwrap();
        let (w, h) = changed_extent(&before, &after);
        let font_px = caption_px(224, 224);
        assert!(w > 0 && w < 224 / 2, "box width {w}");
        assert!(
            h as f32 > font_px && (h as f32) < 2.5 * font_px,
            "box height {h}"
        );
        // The box is filled: every pixel of it changed, and it holds dark box and light text.
        let mut dark = 0;
        let mut light = 0;
        for y in 0..h {
            for x in 0..w {
                let p = after.get_pixel(x, y);
                assert_ne!(p, before.get_pixel(x, y), "pixel ({x}, {y}) inside the box");
                dark += usize::from(*p == CAPTION_BOX);
                light += usize::from(p.0.iter().all(|&c| c > 160));
            }
        }
        assert!(
            dark > (w * h / 2) as usize && light > 20,
            "dark {dark}, light {light}"
        );

        let mut longer = before.clone();
        caption(&mut longer, "dog 0.93, person 0.71").unwrap();
        assert!(changed_extent(&before, &longer).0 > w);
    }

    #[test]
    fn caption_clips_to_small_images_and_skips_empty_text() {
        let before = grey(30, 10, 255);
        let mut after = before.clone();
        caption(&mut after, "a rather long label that cannot fit").unwrap();
        assert_eq!(changed_extent(&before, &after), (30, 10));
        let mut untouched = before.clone();
        caption(&mut untouched, "").unwrap();
        assert_eq!(untouched, before);
    }
}
