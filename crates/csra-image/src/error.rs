//! The crate's one error type.

use std::path::PathBuf;

use thiserror::Error;

use crate::PixelFormat;

/// An error decoding, resizing or normalising a picture, or drawing over one.
#[derive(Debug, Error)]
pub enum ImageError {
    /// A picture file could not be read from disk.
    #[error("cannot read {}: {source}; check that the file exists and is readable", path.display())]
    Read {
        /// The picture file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A picture file was read but is not a decodable JPEG, PNG or BMP.
    #[error("cannot decode {}: {reason}; the file may be truncated or not an image", path.display())]
    File {
        /// The picture file.
        path: PathBuf,
        /// What the decoder reported.
        reason: String,
    },
    /// Picture bytes in memory (a camera frame, a file's contents) are corrupt, truncated or of
    /// an unknown type.
    #[error("cannot decode the picture: {reason}")]
    Decode {
        /// What the decoder reported.
        reason: String,
    },
    /// A raw frame's bytes do not fill its stated size.
    #[error("a {width}×{height} {format:?} frame with {stride} bytes per row needs {needed} bytes, it has {actual}")]
    Truncated {
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
    /// A picture whose size cannot be processed (no pixels, an odd YUYV width).
    #[error("{0}")]
    Geometry(String),
    /// The resizer refused the picture or the crop.
    #[error("resizing failed: {0}")]
    Resize(String),
    /// The output buffer does not have the input tensor's length.
    #[error("the input buffer has {actual} values, the network takes {expected}")]
    OutputLength {
        /// The tensor length.
        expected: usize,
        /// The buffer length.
        actual: usize,
    },
    /// The attention values do not fill the stated `[h, w]` grid.
    #[error("attention map has {len} values but its shape is {h}x{w}; pass the non-empty [h, w] map of one class")]
    AttentionShape {
        /// Number of values passed.
        len: usize,
        /// Stated height.
        h: usize,
        /// Stated width.
        w: usize,
    },
    /// An attention value is NaN or infinite.
    #[error("attention value {value} at row {row}, column {col} is not finite; the model produced NaN or infinite scores")]
    NonFiniteAttention {
        /// Row of the value.
        row: usize,
        /// Column of the value.
        col: usize,
        /// The value.
        value: f32,
    },
    /// The embedded font could not be loaded.
    #[error("the embedded DejaVu font could not be loaded; rebuild with an intact `dejavu` crate")]
    Font,
}
