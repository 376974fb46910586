//! csra-host: train, evaluate and export CSRA models on a workstation with libtorch.

pub mod backbone;
pub mod head;
pub mod model;
pub mod weights;

pub use backbone::Arch;
pub use model::{CsraModel, ModelConfig, ModelError, BACKBONE_PREFIX, HEAD_PREFIX};
