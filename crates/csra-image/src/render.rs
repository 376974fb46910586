//! A decoded picture to the network input: a source rectangle resized to the input size
//! ([`crate::resize`]), optionally mirrored, then normalised into the input tensor
//! ([`crate::normalize`]). The one renderer behind training, evaluation, export checks and the
//! edge.

use csra_core::manifest::{ColorOrder, Layout, Preprocess, Rect};
use image::RgbImage;

use crate::normalize::Levels;
use crate::resize::Resampler;
use crate::{ImageError, RgbView};

/// Renders pictures into one input size, layout and normalisation, reusing its buffers; one
/// per worker thread or stream.
pub struct Renderer {
    resampler: Resampler,
    levels: Levels,
}

impl Renderer {
    /// A renderer for `size = (width, height)` inputs normalised by `preprocess`, written in
    /// `layout` with channels in `color` order.
    pub fn new(
        size: (u32, u32),
        preprocess: &Preprocess,
        layout: Layout,
        color: ColorOrder,
    ) -> Self {
        Self {
            resampler: Resampler::new(size),
            levels: Levels::new(preprocess, layout, color),
        }
    }

    /// The output `(width, height)`.
    pub fn size(&self) -> (u32, u32) {
        self.resampler.size()
    }

    /// The number of floats one rendered picture takes.
    pub fn len(&self) -> usize {
        let (width, height) = self.size();
        3 * width as usize * height as usize
    }

    /// Whether the output size has no pixels (a zero input width or height).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The resized RGB8 picture of the last render, `(width, height, pixels)`: what the network
    /// saw, before normalisation and flipping (attention maps are drawn over it).
    pub fn resized(&self) -> (u32, u32, &[u8]) {
        let (width, height) = self.size();
        (width, height, self.resampler.pixels())
    }

    /// Resizes `rect` of `image` to the output size, mirrors it left-right when `flip`, and
    /// writes the normalised floats to `out` (exactly [`Self::len`] long).
    pub fn render(
        &mut self,
        image: RgbView<'_>,
        rect: Rect,
        flip: bool,
        out: &mut [f32],
    ) -> Result<(), ImageError> {
        if out.len() != self.len() {
            return Err(ImageError::OutputLength {
                expected: self.len(),
                actual: out.len(),
            });
        }
        self.resampler.resize(image, rect)?;
        let width = self.size().0 as usize;
        self.levels.write(self.resampler.pixels(), width, flip, out);
        Ok(())
    }
}

/// Turns a picture into the network input for evaluation or prediction: the resize policy of
/// `preprocess` to `size = (width, height)`, then its per-channel normalisation; NCHW floats
/// in RGB order, `3 × height × width` of them.
pub fn preprocess_image(
    image: &RgbImage,
    size: (u32, u32),
    preprocess: &Preprocess,
) -> Result<Vec<f32>, ImageError> {
    let rect = preprocess
        .resize
        .source_rect(Rect::full(image.width(), image.height()), size);
    let mut renderer = Renderer::new(size, preprocess, Layout::Nchw, ColorOrder::Rgb);
    let mut out = vec![0.0; renderer.len()];
    renderer.render(image.into(), rect, false, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests;
