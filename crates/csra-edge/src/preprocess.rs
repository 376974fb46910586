//! Frames to network input through csra-image's [`Preprocessor`](csra_image::Preprocessor)
//! (decode, resize by the manifest's policy, normalise; buffers reused across frames), the
//! same code `csra-host` trains and evaluates with, so edge and host see the same input. This
//! adapter only names the frame in errors.

use csra_core::manifest::Manifest;
use csra_image::ImageError;
use thiserror::Error;

use crate::source::Frame;

/// An error turning one frame into network input; the pipeline skips such frames.
#[derive(Debug, Error)]
#[error("{origin}: {source}")]
pub struct PreprocessError {
    /// Where the frame came from.
    pub origin: String,
    /// What went wrong.
    pub source: ImageError,
}

/// Turns frames into the input tensor of one model; keep one per stream so its buffers are
/// reused.
pub struct Preprocessor(csra_image::Preprocessor);

impl Preprocessor {
    /// A preprocessor for `manifest`'s input size, resize policy, normalisation, layout and
    /// channel order.
    pub fn new(manifest: &Manifest) -> Self {
        Self(csra_image::Preprocessor::new(manifest))
    }

    /// The number of floats one input takes.
    pub fn input_len(&self) -> usize {
        self.0.input_len()
    }

    /// The resized RGB8 picture of the last frame, `(width, height, pixels)`: what the network
    /// saw, before normalisation (attention maps are drawn over it).
    pub fn resized(&self) -> (u32, u32, &[u8]) {
        self.0.resized()
    }

    /// Decodes, resizes and normalises `frame` into `out` ([`Self::input_len`] floats).
    pub fn run(&mut self, frame: &Frame, out: &mut [f32]) -> Result<(), PreprocessError> {
        self.0
            .run(frame.raw(), out)
            .map_err(|source| PreprocessError {
                origin: frame.origin.clone(),
                source,
            })
    }
}
