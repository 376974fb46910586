//! Export to ONNX: the eval-mode network, backbone and head, written through `csra-onnx` with a
//! manifest and a labels file, and checked against tch in tract.
//!
//! - [`BackboneGraph`]: the backbone emitted once (BatchNorm folded into each convolution,
//!   ReLU6 as Clip, residual adds and depthwise groups kept), onto which any number of heads
//!   are put ([`BackboneGraph::with_head`]);
//! - [`heads`]: the head an export writes, derived from the trained one, and head families for
//!   benchmarking;
//! - the folding of BatchNorm, the FP16 conversion and the files of a model folder are
//!   csra-onnx's ([`csra_onnx::batchnorm`], [`csra_onnx::fp16`], [`csra_onnx::ExportFiles`]),
//!   as none of them needs libtorch;
//! - [`tract_run`]: running a written file in tract;
//! - [`verify`]: the logit comparison `--verify` applies.

mod graph;
pub mod heads;
pub mod tract_run;
pub mod verify;

use std::path::PathBuf;

use csra_core::head::HeadError;
use csra_core::labels::LabelError;
use csra_core::manifest::ManifestError;
use csra_onnx::OnnxError;
use tch::{Device, Kind, TchError, Tensor};
use thiserror::Error;

pub use graph::{BackboneGraph, GraphOptions, Precision, INPUT_NAME};

/// An export that cannot be built, written or run.
#[derive(Debug, Error)]
pub enum ExportError {
    /// The ONNX graph could not be built or written.
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    /// libtorch failed reading the weights.
    #[error("libtorch: {0}")]
    Tch(#[from] TchError),
    /// tract cannot load or run the written file.
    #[error("{}: tract cannot run it: {message}", path.display())]
    Tract {
        /// The model file.
        path: PathBuf,
        /// tract's message.
        message: String,
    },
    /// A file could not be written or read. The I/O error is part of the message, not a
    /// separate cause, so it is printed once.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The manifest could not be written.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The labels file could not be read or written.
    #[error(transparent)]
    Labels(#[from] LabelError),
    /// The requested head is invalid.
    #[error("invalid head: {0}")]
    Head(#[from] HeadError),
    /// Something the exporter does not handle.
    #[error("{0}")]
    Unsupported(String),
}

/// A tensor's values as a flat `f32` vector on the CPU, in row-major order whatever its memory
/// layout (channels-last weights included).
pub(crate) fn tensor_values(t: &Tensor) -> Result<Vec<f32>, TchError> {
    Vec::try_from(
        t.to_kind(Kind::Float)
            .to_device(Device::Cpu)
            .contiguous()
            .flatten(0, -1),
    )
}
