//! Frames to network input, in one pass per stage with buffers reused across frames: decode
//! (JPEG with zune-jpeg, YUYV → RGB, PNG/BMP with `image`; packed RGB is used in place), resize
//! of the manifest's source rectangle with `fast_image_resize` (Pillow's antialiased bilinear,
//! as `csra-host` evaluates, so edge and host see the same input), then normalisation through
//! a lookup table straight into the input tensor.

mod decode;
mod tensor;
mod yuyv;

pub use yuyv::{ycbcr_to_rgb, yuyv_to_rgb};

use csra_core::manifest::{Manifest, Rect};
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use thiserror::Error;

use crate::frame::{Frame, PixelFormat};
use tensor::Levels;

/// An error turning one frame into network input; the pipeline skips such frames.
#[derive(Debug, Error)]
pub enum PreprocessError {
    /// The picture is corrupt, truncated or of an unknown type.
    #[error("{origin}: cannot decode the picture: {reason}")]
    Decode {
        /// Where the frame came from.
        origin: String,
        /// The decoder's complaint.
        reason: String,
    },
    /// A raw frame's bytes do not fill its stated size.
    #[error("{origin}: a {width}×{height} {format:?} frame with {stride} bytes per row needs {needed} bytes, it has {actual}")]
    Truncated {
        /// Where the frame came from.
        origin: String,
        /// The pixel format.
        format: PixelFormat,
        /// Stated width.
        width: u32,
        /// Stated height.
        height: u32,
        /// Stated bytes per row.
        stride: u32,
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        actual: usize,
    },
    /// A frame whose size cannot be processed (no pixels, odd YUYV width).
    #[error("{origin}: {reason}")]
    Geometry {
        /// Where the frame came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The resizer refused the picture.
    #[error("{origin}: resizing failed: {reason}")]
    Resize {
        /// Where the frame came from.
        origin: String,
        /// The resizer's complaint.
        reason: String,
    },
    /// The output buffer does not have the input tensor's length.
    #[error("the input buffer has {actual} values, the network takes {expected}")]
    OutputLength {
        /// The tensor length.
        expected: usize,
        /// The buffer length.
        actual: usize,
    },
}

/// Turns frames into the input tensor of one model; keep one per stream so its buffers are
/// reused.
pub struct Preprocessor {
    policy: csra_core::manifest::ResizePolicy,
    resizer: Resizer,
    options: ResizeOptions,
    resized: Image<'static>,
    levels: Levels,
    /// The decoded full-size picture of the last frame that needed decoding.
    rgb: Vec<u8>,
}

impl Preprocessor {
    /// A preprocessor for `manifest`'s input size, resize policy, normalisation, layout and
    /// channel order.
    pub fn new(manifest: &Manifest) -> Self {
        let input = &manifest.input;
        Self {
            policy: manifest.preprocess.resize,
            resizer: Resizer::new(),
            // Pillow's antialiased bilinear, which torchvision uses on PIL images.
            options: ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
            resized: Image::new(input.width, input.height, PixelType::U8x3),
            levels: Levels::new(&manifest.preprocess, input.layout, input.color),
            rgb: Vec::new(),
        }
    }

    /// The number of floats one input takes.
    pub fn input_len(&self) -> usize {
        3 * self.resized.width() as usize * self.resized.height() as usize
    }

    /// The resized RGB8 picture of the last frame, `(width, height, pixels)`: what the network
    /// saw, before normalisation (attention maps are drawn over it).
    pub fn resized(&self) -> (u32, u32, &[u8]) {
        (
            self.resized.width(),
            self.resized.height(),
            self.resized.buffer(),
        )
    }

    /// Decodes, resizes and normalises `frame` into `out` ([`Self::input_len`] floats).
    pub fn run(&mut self, frame: &Frame, out: &mut [f32]) -> Result<(), PreprocessError> {
        if out.len() != self.input_len() {
            return Err(PreprocessError::OutputLength {
                expected: self.input_len(),
                actual: out.len(),
            });
        }
        let (width, height, in_place) = self.decode(frame)?;
        if width == 0 || height == 0 {
            return Err(PreprocessError::Geometry {
                origin: frame.origin.clone(),
                reason: "the picture has no pixels".into(),
            });
        }
        let pixels = if in_place { &frame.data } else { &self.rgb };
        let resize_error = |reason: String| PreprocessError::Resize {
            origin: frame.origin.clone(),
            reason,
        };
        let source = ImageRef::new(width, height, pixels, PixelType::U8x3)
            .map_err(|e| resize_error(e.to_string()))?;
        let out_size = (self.resized.width(), self.resized.height());
        let rect = self.policy.source_rect(Rect::full(width, height), out_size);
        let options = self
            .options
            .crop(rect.left, rect.top, rect.width, rect.height);
        self.resizer
            .resize(&source, &mut self.resized, &options)
            .map_err(|e| resize_error(e.to_string()))?;
        self.levels.write(self.resized.buffer(), out);
        Ok(())
    }

    /// Brings the frame's pixels to packed RGB8: into `self.rgb`, or in place (`true`) for
    /// packed RGB frames without row padding. Returns `(width, height, in_place)`.
    fn decode(&mut self, frame: &Frame) -> Result<(u32, u32, bool), PreprocessError> {
        let decode_error = |reason: String| PreprocessError::Decode {
            origin: frame.origin.clone(),
            reason,
        };
        match frame.format {
            PixelFormat::Mjpeg => decode::decode_jpeg(&frame.data, &mut self.rgb)
                .map(|(w, h)| (w, h, false))
                .map_err(decode_error),
            PixelFormat::Encoded if decode::is_jpeg(&frame.data) => {
                decode::decode_jpeg(&frame.data, &mut self.rgb)
                    .map(|(w, h)| (w, h, false))
                    .map_err(decode_error)
            }
            PixelFormat::Encoded => decode::decode_other(&frame.data, &mut self.rgb)
                .map(|(w, h)| (w, h, false))
                .map_err(decode_error),
            PixelFormat::Yuyv => {
                let (width, height, stride) = packed_geometry(frame, 2)?;
                if width % 2 != 0 {
                    return Err(PreprocessError::Geometry {
                        origin: frame.origin.clone(),
                        reason: format!("a YUYV frame must have an even width, not {width}"),
                    });
                }
                self.rgb.resize(3 * width * height, 0);
                yuyv_to_rgb(&frame.data, width, height, stride, &mut self.rgb);
                Ok((frame.width, frame.height, false))
            }
            PixelFormat::Rgb24 => {
                let (width, height, stride) = packed_geometry(frame, 3)?;
                if stride == 3 * width {
                    return Ok((frame.width, frame.height, true));
                }
                self.rgb.clear();
                for row in frame.data.chunks(stride).take(height) {
                    self.rgb.extend_from_slice(&row[..3 * width]);
                }
                Ok((frame.width, frame.height, false))
            }
        }
    }
}

/// `(width, height, stride)` of a packed frame with `bytes_per_pixel`, checked against its data
/// (a stride of 0 means rows are not padded).
fn packed_geometry(
    frame: &Frame,
    bytes_per_pixel: usize,
) -> Result<(usize, usize, usize), PreprocessError> {
    let width = frame.width as usize;
    let height = frame.height as usize;
    let row = bytes_per_pixel * width;
    let stride = if frame.stride == 0 {
        row
    } else {
        frame.stride as usize
    };
    let needed = if height == 0 {
        0
    } else {
        stride * (height - 1) + row
    };
    if stride < row || frame.data.len() < needed {
        return Err(PreprocessError::Truncated {
            origin: frame.origin.clone(),
            format: frame.format,
            width: frame.width,
            height: frame.height,
            stride: frame.stride,
            needed,
            actual: frame.data.len(),
        });
    }
    Ok((width, height, stride))
}
