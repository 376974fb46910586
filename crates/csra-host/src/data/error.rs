//! The data loader's error type.

use std::path::PathBuf;

use thiserror::Error;

/// An error loading an image or setting up a [`Loader`](super::Loader).
#[derive(Debug, Error)]
pub enum DataError {
    /// The image file could not be read from disk.
    #[error("cannot read {}: {source}; check that the file exists and is readable", path.display())]
    Read {
        /// The image file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file was read but is not a decodable JPEG, PNG or BMP.
    #[error("cannot decode {}: {reason}; the file may be truncated or not an image", path.display())]
    Decode {
        /// The image file.
        path: PathBuf,
        /// What the decoder reported.
        reason: String,
    },
    /// The sample's box leaves no pixels of its image.
    #[error("{}: the sample's box {bbox} has no pixels inside the {width}×{height} image; fix the box in the annotations", path.display())]
    EmptyBox {
        /// The image file.
        path: PathBuf,
        /// The box as `x,y,width,height`.
        bbox: String,
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },
    /// Resizing failed (an empty picture, or one the resizer cannot handle).
    #[error("cannot resize {image}: {reason}")]
    Resize {
        /// The image file, or a description of the in-memory picture.
        image: String,
        /// What the resizer reported.
        reason: String,
    },
    /// A sample does not fit the loader: its label vectors have the wrong length.
    #[error("sample #{index} ({}): {reason}", path.display())]
    Sample {
        /// The sample's position in the dataset.
        index: usize,
        /// Its image file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The loader configuration is unusable.
    #[error("invalid data loader configuration: {0}")]
    Config(String),
}
