//! csra-host: train, evaluate and export CSRA models on a workstation with libtorch.

mod font;
pub mod overlay;
pub mod plot;
