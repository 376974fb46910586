//! Which rectangle of the source picture becomes the network input.

pub use csra_core::manifest::Rect;
use csra_core::BBox;
use rand::{Rng, RngExt};

/// How many crops [`random_resized_crop`] tries before it falls back to a centre crop,
/// as in torchvision.
const CROP_ATTEMPTS: usize = 10;

/// Draws a crop of a `width × height` picture the way torchvision's
/// `RandomResizedCrop.get_params` does: area a uniform fraction of `scale`, aspect ratio
/// (width / height) log-uniform in `ratio`, sides rounded to whole pixels, position uniform.
///
/// After ten draws that do not fit it takes the largest centred crop whose aspect ratio is
/// within `ratio` (the whole picture when its own ratio is), which for a very elongated picture
/// covers less than `scale.0` of it.
pub fn random_resized_crop<R: Rng + ?Sized>(
    rng: &mut R,
    width: u32,
    height: u32,
    scale: (f32, f32),
    ratio: (f32, f32),
) -> Rect {
    let (w_img, h_img) = (f64::from(width), f64::from(height));
    let area = w_img * h_img;
    let (log_lo, log_hi) = (f64::from(ratio.0).ln(), f64::from(ratio.1).ln());
    for _ in 0..CROP_ATTEMPTS {
        let target_area = area * uniform(rng, f64::from(scale.0), f64::from(scale.1));
        let aspect = uniform(rng, log_lo, log_hi).exp();
        // Python's round(), which torchvision uses, rounds halves to even.
        let w = (target_area * aspect).sqrt().round_ties_even();
        let h = (target_area / aspect).sqrt().round_ties_even();
        if w > 0.0 && w <= w_img && h > 0.0 && h <= h_img {
            // Both offsets are whole numbers in 0..=free, so the casts are exact.
            let top = rng.random_range(0..=(h_img - h) as u32);
            let left = rng.random_range(0..=(w_img - w) as u32);
            return Rect {
                left: f64::from(left),
                top: f64::from(top),
                width: w,
                height: h,
            };
        }
    }
    centre_fallback(w_img, h_img, ratio)
}

fn centre_fallback(w_img: f64, h_img: f64, ratio: (f32, f32)) -> Rect {
    let (lo, hi) = (f64::from(ratio.0), f64::from(ratio.1));
    let own = w_img / h_img;
    let (w, h) = if own < lo {
        (w_img, (w_img / lo).round_ties_even())
    } else if own > hi {
        ((h_img * hi).round_ties_even(), h_img)
    } else {
        (w_img, h_img)
    };
    // torchvision floors the offsets: (height - h) // 2.
    Rect {
        left: ((w_img - w) / 2.0).floor(),
        top: ((h_img - h) / 2.0).floor(),
        width: w,
        height: h,
    }
}

/// A uniform draw in `[lo, hi)`, or `lo` when the range is empty (`scale = (1, 1)` is valid).
fn uniform<R: Rng + ?Sized>(rng: &mut R, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// The part of a `width × height` picture a sample describes: its box with edges rounded to
/// whole pixels (as PIL's `Image.crop` in the official code) and clipped to the picture, or the
/// whole picture. `None` when the box holds no pixel of the picture.
pub(crate) fn sample_region(bbox: Option<&BBox>, width: u32, height: u32) -> Option<Rect> {
    let Some(b) = bbox else {
        return Some(Rect::full(width, height));
    };
    let clip = |v: f32, max: u32| f64::from(v).round_ties_even().clamp(0.0, f64::from(max));
    let (x0, x1) = (clip(b.x, width), clip(b.x + b.width, width));
    let (y0, y1) = (clip(b.y, height), clip(b.y + b.height, height));
    (x1 > x0 && y1 > y0).then_some(Rect {
        left: x0,
        top: y0,
        width: x1 - x0,
        height: y1 - y0,
    })
}

/// The crop for training: [`random_resized_crop`] inside `region`.
pub(crate) fn train_rect<R: Rng + ?Sized>(
    rng: &mut R,
    region: Rect,
    scale: (f32, f32),
    ratio: (f32, f32),
) -> Rect {
    // Regions have whole-pixel sides (see `sample_region`), so the casts are exact.
    let crop = random_resized_crop(rng, region.width as u32, region.height as u32, scale, ratio);
    crop.shifted(region.left, region.top)
}

#[cfg(test)]
mod tests;
