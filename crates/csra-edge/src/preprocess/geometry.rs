//! Which rectangle of the source picture the manifest's resize policy maps onto the input.

use csra_core::manifest::ResizePolicy;

/// A rectangle of the source picture in pixels; fractional edges are allowed (the resizer
/// samples them exactly).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Left edge.
    pub left: f64,
    /// Top edge.
    pub top: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
}

/// The part of a `width × height` picture that `policy` resizes to `out = (width, height)`:
/// all of it for a squash; for a centre crop, the centred rectangle of the output's aspect
/// ratio that a resize of the shorter side to `min(out) / crop_fraction` followed by a centre
/// crop keeps. Same geometry as `csra-host`'s evaluation, so both see the same pixels.
pub fn source_rect(policy: ResizePolicy, width: u32, height: u32, out: (u32, u32)) -> Rect {
    let (w, h) = (f64::from(width), f64::from(height));
    match policy {
        ResizePolicy::Squash => Rect {
            left: 0.0,
            top: 0.0,
            width: w,
            height: h,
        },
        ResizePolicy::CenterCrop { crop_fraction } => {
            let (out_w, out_h) = (f64::from(out.0), f64::from(out.1));
            let resized_short = out_w.min(out_h) / f64::from(crop_fraction);
            let per_pixel = w.min(h) / resized_short;
            // Clamped: an output wider than the picture would need pixels outside it.
            let crop_w = (out_w * per_pixel).min(w);
            let crop_h = (out_h * per_pixel).min(h);
            Rect {
                left: (w - crop_w) / 2.0,
                top: (h - crop_h) / 2.0,
                width: crop_w,
                height: crop_h,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squash_takes_the_whole_picture() {
        let r = source_rect(ResizePolicy::Squash, 640, 480, (224, 224));
        assert_eq!((r.left, r.top, r.width, r.height), (0.0, 0.0, 640.0, 480.0));
    }

    #[test]
    fn centre_crop_is_torchvision_resize_256_crop_224() {
        // 640×480 → shorter side 256 (scale 480/256 = 1.875 source pixels per output pixel),
        // then the centre 224×224: 224·1.875 = 420 source pixels, centred.
        let policy = ResizePolicy::CenterCrop {
            crop_fraction: 0.875,
        };
        let r = source_rect(policy, 640, 480, (224, 224));
        assert!((r.width - 420.0).abs() < 1e-9 && (r.height - 420.0).abs() < 1e-9);
        assert!((r.left - 110.0).abs() < 1e-9 && (r.top - 30.0).abs() < 1e-9);
    }
}
