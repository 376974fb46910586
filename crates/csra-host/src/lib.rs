//! csra-host: train, evaluate and export CSRA models on a workstation with libtorch.
//!
//! - [`allocator`]: glibc malloc tuned for libtorch's step-by-step reuse of large blocks;
//! - [`backbone`], [`head`], [`model`]: the networks in tch, with torchvision's parameter names;
//! - [`weights`]: torchvision `.pth` and `.safetensors` files;
//! - [`import`]: CSRA checkpoints from the official repository and mmpretrain;
//! - [`data`]: decoding, augmentation and batching in worker threads;
//! - [`data_source`]: which dataset files to read;
//! - [`train`]: the official recipe, checkpoints, the JSON-lines log;
//! - [`evaluate`]: predictions over a dataset and the paper's metrics;
//! - [`export`]: the eval-mode network as verified ONNX with a manifest;
//! - [`plot`]: the training plot (attention heat maps are drawn by `csra_image::overlay`).

pub mod allocator;
pub mod backbone;
pub mod data;
pub mod data_source;
pub mod evaluate;
pub mod export;
pub mod head;
pub mod import;
pub mod model;
pub mod plot;
pub mod train;
pub mod weights;

pub use backbone::Arch;
pub use model::{CsraModel, ModelConfig, ModelError, BACKBONE_PREFIX, HEAD_PREFIX};

/// The `created_by` string written into checkpoints and manifests.
pub fn created_by() -> String {
    format!("csra-host {}", env!("CARGO_PKG_VERSION"))
}
