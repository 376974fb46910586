//! The resize step: a source rectangle of a packed RGB8 picture to the input size with
//! Pillow's antialiased bilinear filter (which torchvision uses on PIL images, so training,
//! export checks and the edge all see what the official code trains on).

use csra_core::manifest::Rect;
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::{ImageError, RgbView};

/// Resizes into one output size, reusing its buffers.
pub(crate) struct Resampler {
    resizer: Resizer,
    options: ResizeOptions,
    resized: Image<'static>,
}

impl Resampler {
    /// A resampler to `size = (width, height)`.
    pub(crate) fn new(size: (u32, u32)) -> Self {
        Self {
            resizer: Resizer::new(),
            options: ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
            resized: Image::new(size.0, size.1, PixelType::U8x3),
        }
    }

    /// The output `(width, height)`.
    pub(crate) fn size(&self) -> (u32, u32) {
        (self.resized.width(), self.resized.height())
    }

    /// The last output, packed RGB8.
    pub(crate) fn pixels(&self) -> &[u8] {
        self.resized.buffer()
    }

    /// Resizes `rect` of `image` to the output size.
    pub(crate) fn resize(&mut self, image: RgbView<'_>, rect: Rect) -> Result<(), ImageError> {
        let (width, height) = (image.width, image.height);
        if width == 0 || height == 0 {
            return Err(ImageError::Geometry("the picture has no pixels".into()));
        }
        let source = ImageRef::new(width, height, image.pixels, PixelType::U8x3)
            .map_err(|e| ImageError::Resize(e.to_string()))?;
        let rect = clip(rect, width, height);
        let options = self
            .options
            .crop(rect.left, rect.top, rect.width, rect.height);
        self.resizer
            .resize(&source, &mut self.resized, &options)
            .map_err(|e| ImageError::Resize(e.to_string()))
    }
}

/// Keeps `rect` inside the picture: the resizer rejects a crop that pokes out by a rounding
/// error.
fn clip(rect: Rect, width: u32, height: u32) -> Rect {
    let (w, h) = (f64::from(width), f64::from(height));
    let left = rect.left.clamp(0.0, w - 1.0);
    let top = rect.top.clamp(0.0, h - 1.0);
    Rect {
        left,
        top,
        width: rect.width.min(w - left),
        height: rect.height.min(h - top),
    }
}
