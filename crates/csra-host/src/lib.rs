//! csra-host: train, evaluate and export CSRA models on a workstation with libtorch.

pub mod data;
