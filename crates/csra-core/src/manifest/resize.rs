//! Where the resize policy reads from: the rectangle of the source picture that becomes the
//! network input. Training, evaluation and the edge runtime share it, so the exported model
//! sees on the device the pixels it was scored on.

use super::ResizePolicy;

/// A rectangle of a picture in pixels; fractional edges are allowed (a resizer that reads a
/// source rectangle samples them exactly).
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

impl Rect {
    /// The whole of a `width × height` picture.
    pub fn full(width: u32, height: u32) -> Self {
        Self {
            left: 0.0,
            top: 0.0,
            width: f64::from(width),
            height: f64::from(height),
        }
    }

    /// Its area in square pixels.
    pub fn area(&self) -> f64 {
        self.width * self.height
    }

    /// The same rectangle moved by `(dx, dy)`.
    #[must_use]
    pub fn shifted(self, dx: f64, dy: f64) -> Self {
        Self {
            left: self.left + dx,
            top: self.top + dy,
            ..self
        }
    }
}

impl ResizePolicy {
    /// The part of `region` that this policy resizes to `out = (width, height)`: all of it for
    /// a squash; for a centre crop, the centred rectangle of the output's aspect ratio that a
    /// resize of the region's shorter side to `min(out) / crop_fraction` followed by a centre
    /// crop keeps (torchvision's `Resize(256)` + `CenterCrop(224)` for 0.875).
    pub fn source_rect(self, region: Rect, out: (u32, u32)) -> Rect {
        match self {
            ResizePolicy::Squash => region,
            ResizePolicy::CenterCrop { crop_fraction } => {
                let (out_w, out_h) = (f64::from(out.0), f64::from(out.1));
                let resized_short = out_w.min(out_h) / f64::from(crop_fraction);
                let per_pixel = region.width.min(region.height) / resized_short;
                // Clamped: an output much wider than the region would need pixels outside
                // it, which torchvision pads with black; stretching slightly is kinder to the
                // model.
                let width = (out_w * per_pixel).min(region.width);
                let height = (out_h * per_pixel).min(region.height);
                Rect {
                    left: region.left + (region.width - width) / 2.0,
                    top: region.top + (region.height - height) / 2.0,
                    width,
                    height,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squash_takes_the_whole_region() {
        let region = Rect {
            left: 3.0,
            top: 4.0,
            width: 50.0,
            height: 20.0,
        };
        assert_eq!(ResizePolicy::Squash.source_rect(region, (224, 224)), region);
    }

    #[test]
    fn centre_crop_is_torchvision_resize_256_crop_224() {
        // 640×480 → shorter side 256 (480/256 = 1.875 source pixels per output pixel), then the
        // centre 224×224: 224·1.875 = 420 source pixels, centred.
        let policy = ResizePolicy::CenterCrop {
            crop_fraction: 0.875,
        };
        let r = policy.source_rect(Rect::full(640, 480), (224, 224));
        assert!((r.width - 420.0).abs() < 1e-9 && (r.height - 420.0).abs() < 1e-9);
        assert!((r.left - 110.0).abs() < 1e-9 && (r.top - 30.0).abs() < 1e-9);
        // Inside a region, the crop is centred on the region.
        let shifted = policy.source_rect(Rect::full(640, 480).shifted(10.0, 5.0), (224, 224));
        assert_eq!(shifted, r.shifted(10.0, 5.0));
    }

    #[test]
    fn a_wide_output_is_clamped_to_the_region() {
        let policy = ResizePolicy::CenterCrop { crop_fraction: 1.0 };
        let r = policy.source_rect(Rect::full(100, 100), (400, 100));
        assert_eq!(r, Rect::full(100, 100));
    }
}
