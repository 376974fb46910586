//! The data loader's error type.

use std::path::PathBuf;

use csra_image::ImageError;
use thiserror::Error;

/// An error loading an image or setting up a [`Loader`](super::Loader).
#[derive(Debug, Error)]
pub enum DataError {
    /// The image file could not be read or decoded (the error names the file).
    #[error(transparent)]
    Image(#[from] ImageError),
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
    /// Resizing or normalising a decoded picture failed (one the resizer cannot handle).
    #[error("cannot render {}: {source}", path.display())]
    Render {
        /// The image file.
        path: PathBuf,
        /// What went wrong.
        source: ImageError,
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
