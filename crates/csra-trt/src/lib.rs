//! Runs exported CSRA models on NVIDIA GPUs through TensorRT 8.5, 8.6 and 10.x.
//!
//! TensorRT is reached through a small C++ shim, `libcsra_trt.so`, built by this crate's
//! build script where TensorRT's headers are installed and loaded at run time, so a binary using
//! this crate starts, and runs its other backends, on machines without TensorRT:
//!
//! ```no_run
//! use csra_trt::{Engine, Library, Options, Precision};
//!
//! let library = Library::load()?; // TrtError::NotAvailable says what is missing
//! let mut options = Options::new("/var/lib/csra-edge/engines");
//! options.precision = Precision::Fp16;
//! let mut engine = Engine::open(&library, "model.onnx".as_ref(), &options)?;
//! let out = engine.run(&vec![0.0; engine.input().len()])?;
//! println!("{:?} in {} ms", out.get("logits"), out.network_ms);
//! # Ok::<(), csra_trt::TrtError>(())
//! ```

mod cache;
mod engine;
mod error;
mod ffi;
mod library;
pub mod onnx_ops;
mod options;

pub use cache::{sha256_hex, CacheKey};
pub use engine::{Engine, Origin, Output, RunOutput, TensorInfo};
pub use error::{ShimError, Status, TrtError};
pub use ffi::ABI_VERSION;
pub use library::{DeviceInfo, Library, Version, Versions, LIBRARY_ENV, LIBRARY_NAME};
pub use options::{BatchProfile, Calibration, Options, Precision};
