//! Raw picture bytes to the input tensor of one model, with every buffer reused across
//! pictures: the edge's hot path, one per camera stream.

use csra_core::manifest::{Manifest, Rect, ResizePolicy};

use crate::{Decoder, ImageError, RawImage, Renderer};

/// Decodes, resizes (by the manifest's policy) and normalises pictures into one model's input.
pub struct Preprocessor {
    policy: ResizePolicy,
    decoder: Decoder,
    renderer: Renderer,
}

impl Preprocessor {
    /// A preprocessor for `manifest`'s input size, resize policy, normalisation, layout and
    /// channel order.
    pub fn new(manifest: &Manifest) -> Self {
        let input = &manifest.input;
        Self {
            policy: manifest.preprocess.resize,
            decoder: Decoder::new(),
            renderer: Renderer::new(
                (input.width, input.height),
                &manifest.preprocess,
                input.layout,
                input.color,
            ),
        }
    }

    /// The number of floats one input takes.
    pub fn input_len(&self) -> usize {
        self.renderer.len()
    }

    /// The resized RGB8 picture of the last run, `(width, height, pixels)`: what the network
    /// saw, before normalisation.
    pub fn resized(&self) -> (u32, u32, &[u8]) {
        self.renderer.resized()
    }

    /// Decodes, resizes and normalises `raw` into `out` ([`Self::input_len`] floats).
    pub fn run(&mut self, raw: RawImage<'_>, out: &mut [f32]) -> Result<(), ImageError> {
        if out.len() != self.input_len() {
            return Err(ImageError::OutputLength {
                expected: self.input_len(),
                actual: out.len(),
            });
        }
        let rgb = self.decoder.decode(raw)?;
        let rect = self
            .policy
            .source_rect(Rect::full(rgb.width, rgb.height), self.renderer.size());
        self.renderer.render(rgb, rect, false, out)
    }
}
