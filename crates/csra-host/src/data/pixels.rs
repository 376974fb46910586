//! Crop, resize and normalise a picture into CHW floats.

use csra_core::manifest::Preprocess;
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

use super::crop::Rect;
use super::DataError;

/// Turns a picture into the network input for evaluation or prediction: the resize policy of
/// `preprocess` to `size = (width, height)`, then its per-channel normalisation; CHW floats,
/// `3 × height × width` of them.
pub fn preprocess_image(
    image: &RgbImage,
    size: (u32, u32),
    preprocess: &Preprocess,
) -> Result<Vec<f32>, DataError> {
    let rect = preprocess
        .resize
        .source_rect(Rect::full(image.width(), image.height()), size);
    let mut renderer = Renderer::new(size, preprocess);
    let mut out = vec![0.0; renderer.len()];
    renderer
        .render(image, rect, false, &mut out)
        .map_err(|reason| DataError::Resize {
            image: format!("a {}×{} picture", image.width(), image.height()),
            reason,
        })?;
    Ok(out)
}

/// The normalised value of every 8-bit level, per channel: one lookup per pixel instead of a
/// multiply, subtract and divide, and exactly [`Preprocess::normalize`].
struct Levels([[f32; 256]; 3]);

impl Levels {
    fn new(preprocess: &Preprocess) -> Self {
        let mut table = [[0.0; 256]; 3];
        for (c, row) in table.iter_mut().enumerate() {
            for (level, value) in (0..=u8::MAX).zip(row.iter_mut()) {
                *value = preprocess.normalize(level, c);
            }
        }
        Self(table)
    }
}

/// Renders pictures into one output size, reusing its buffers; one per worker thread.
pub(crate) struct Renderer {
    resizer: Resizer,
    options: ResizeOptions,
    resized: Image<'static>,
    levels: Levels,
}

impl Renderer {
    /// A renderer for `size = (width, height)` outputs normalised by `preprocess`.
    pub(crate) fn new(size: (u32, u32), preprocess: &Preprocess) -> Self {
        Self {
            resizer: Resizer::new(),
            // Pillow's antialiased bilinear, which torchvision uses on PIL images.
            options: ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
            resized: Image::new(size.0, size.1, PixelType::U8x3),
            levels: Levels::new(preprocess),
        }
    }

    /// The number of floats one rendered picture takes.
    pub(crate) fn len(&self) -> usize {
        3 * self.resized.width() as usize * self.resized.height() as usize
    }

    /// Resizes `rect` of `image` to the output size, mirrors it left-right when `flip`, and
    /// writes the normalised CHW floats to `out` (exactly [`Self::len`] long).
    pub(crate) fn render(
        &mut self,
        image: &RgbImage,
        rect: Rect,
        flip: bool,
        out: &mut [f32],
    ) -> Result<(), String> {
        let (width, height) = (image.width(), image.height());
        if width == 0 || height == 0 {
            return Err("the picture has no pixels".into());
        }
        let source = ImageRef::new(width, height, image.as_raw(), PixelType::U8x3)
            .map_err(|e| e.to_string())?;
        let rect = clip(rect, width, height);
        let options = self
            .options
            .crop(rect.left, rect.top, rect.width, rect.height);
        self.resizer
            .resize(&source, &mut self.resized, &options)
            .map_err(|e| e.to_string())?;
        self.write_chw(flip, out);
        Ok(())
    }

    fn write_chw(&self, flip: bool, out: &mut [f32]) {
        let width = self.resized.width() as usize;
        let plane = width * self.resized.height() as usize;
        let (red, rest) = out.split_at_mut(plane);
        let (green, blue) = rest.split_at_mut(plane);
        let [r_levels, g_levels, b_levels] = &self.levels.0;
        let rows = self.resized.buffer().chunks_exact(3 * width);
        for (y, row) in rows.enumerate() {
            let at = y * width;
            let (r_row, g_row, b_row) = (
                &mut red[at..at + width],
                &mut green[at..at + width],
                &mut blue[at..at + width],
            );
            for (x, pixel) in row.chunks_exact(3).enumerate() {
                let column = if flip { width - 1 - x } else { x };
                r_row[column] = r_levels[usize::from(pixel[0])];
                g_row[column] = g_levels[usize::from(pixel[1])];
                b_row[column] = b_levels[usize::from(pixel[2])];
            }
        }
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

#[cfg(test)]
mod tests;
