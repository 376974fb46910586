//! Errors: the shim's status codes and the typed errors users see, each saying what to do.

use std::path::PathBuf;

use thiserror::Error;

/// What to do when TensorRT cannot serve: the two ways forward.
const INSTALL_OR_TRACT: &str = "install JetPack's TensorRT (libnvinfer, libnvonnxparsers and \
     the CUDA runtime) and build csra-edge on the device, or pass --backend tract";

/// A `csra_trt_status` code of the shim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `CSRA_TRT_NO_CUDA`: no CUDA driver or no GPU.
    NoCuda,
    /// `CSRA_TRT_VERSION_MISMATCH`: libnvinfer is not the version the shim was compiled for.
    VersionMismatch,
    /// `CSRA_TRT_PARSE`: the ONNX parser rejected the model.
    Parse,
    /// `CSRA_TRT_BUILD`: TensorRT could not build an engine.
    Build,
    /// `CSRA_TRT_UNSUPPORTED`: the device cannot do what was asked.
    Unsupported,
    /// `CSRA_TRT_DESERIALIZE`: a serialized engine cannot be loaded.
    Deserialize,
    /// `CSRA_TRT_RUN`: inference failed.
    Run,
    /// `CSRA_TRT_INVALID_ARGUMENT`: a caller error.
    InvalidArgument,
    /// `CSRA_TRT_IO`: a cache file cannot be read or written.
    Io,
    /// `CSRA_TRT_INTERNAL` or a code this crate does not know.
    Internal,
}

impl Status {
    /// The status for a shim return code (never called with 0, success).
    pub fn from_code(code: i32) -> Status {
        match code {
            1 => Status::NoCuda,
            2 => Status::VersionMismatch,
            3 => Status::Parse,
            4 => Status::Build,
            5 => Status::Unsupported,
            6 => Status::Deserialize,
            7 => Status::Run,
            8 => Status::InvalidArgument,
            9 => Status::Io,
            _ => Status::Internal,
        }
    }
}

/// A failed shim call: its status and message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message} ({status:?})")]
pub struct ShimError {
    /// The status code.
    pub status: Status,
    /// The shim's message (TensorRT's and CUDA's own words included).
    pub message: String,
}

/// An error of the TensorRT backend.
#[derive(Debug, Error)]
pub enum TrtError {
    /// The shim or the TensorRT/CUDA libraries it needs cannot be loaded.
    #[error("TensorRT is not available: {reason}; {INSTALL_OR_TRACT}")]
    NotAvailable {
        /// What is missing: every place tried and the loader's complaint.
        reason: String,
    },
    /// The shim found is another build than this binary's.
    #[error(
        "{}: {reason}; it belongs to another csra-edge build: rebuild csra-edge \
         (cargo build --release) so the binary and libcsra_trt.so match",
        path.display()
    )]
    Abi {
        /// The shim's path.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// CUDA cannot start, or there is no GPU.
    #[error("no usable GPU: {0}; check the NVIDIA driver (nvidia-smi, or tegrastats on a Jetson), or pass --backend tract")]
    NoGpu(String),
    /// libnvinfer is not the TensorRT version the shim was compiled against.
    #[error("{0}")]
    VersionMismatch(String),
    /// The options contradict each other or the device.
    #[error("{0}")]
    Options(String),
    /// TensorRT's ONNX parser rejects the model.
    #[error(
        "{}: {message}\nre-export the model with csra-host, or run it with --backend tract",
        model.display()
    )]
    Parse {
        /// The ONNX file.
        model: PathBuf,
        /// Every parser error.
        message: String,
    },
    /// TensorRT cannot build an engine.
    #[error(
        "{}: building the TensorRT engine failed: {message}; try --precision fp32, no --dla, \
         or a larger workspace",
        model.display()
    )]
    Build {
        /// The ONNX file.
        model: PathBuf,
        /// TensorRT's reason.
        message: String,
    },
    /// A serialized engine cannot be loaded (stale, corrupt or from another TensorRT).
    #[error("{}: cannot load the TensorRT engine: {message}", path.display())]
    Deserialize {
        /// The engine file.
        path: PathBuf,
        /// TensorRT's reason.
        message: String,
    },
    /// Inference failed.
    #[error("TensorRT inference failed: {0}")]
    Run(String),
    /// A file cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's complaint.
        source: std::io::Error,
    },
    /// Any other shim failure.
    #[error("TensorRT shim: {0}")]
    Shim(ShimError),
}

impl TrtError {
    /// Maps a shim failure while working on `model` to the error a user acts on.
    pub fn from_shim(err: ShimError, model: &std::path::Path) -> TrtError {
        let model = model.to_path_buf();
        match err.status {
            Status::NoCuda => TrtError::NoGpu(err.message),
            Status::VersionMismatch => TrtError::VersionMismatch(err.message),
            Status::Parse => TrtError::Parse {
                model,
                message: err.message,
            },
            Status::Build => TrtError::Build {
                model,
                message: err.message,
            },
            Status::Unsupported => TrtError::Options(err.message),
            Status::Deserialize => TrtError::Deserialize {
                path: model,
                message: err.message,
            },
            Status::Run => TrtError::Run(err.message),
            Status::InvalidArgument | Status::Io | Status::Internal => TrtError::Shim(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn shim(code: i32, message: &str) -> TrtError {
        let err = ShimError {
            status: Status::from_code(code),
            message: message.to_owned(),
        };
        TrtError::from_shim(err, Path::new("m.onnx"))
    }

    #[test]
    fn every_status_code_maps_to_the_variant_that_says_what_to_do() {
        assert!(matches!(shim(1, "x"), TrtError::NoGpu(_)));
        assert!(matches!(shim(2, "x"), TrtError::VersionMismatch(_)));
        assert!(matches!(shim(3, "x"), TrtError::Parse { .. }));
        assert!(matches!(shim(4, "x"), TrtError::Build { .. }));
        assert!(matches!(shim(5, "x"), TrtError::Options(_)));
        assert!(matches!(shim(6, "x"), TrtError::Deserialize { .. }));
        assert!(matches!(shim(7, "x"), TrtError::Run(_)));
        for code in [8, 9, 10, 42, -1] {
            assert!(matches!(shim(code, "x"), TrtError::Shim(_)), "code {code}");
        }
        assert_eq!(Status::from_code(42), Status::Internal);
    }

    #[test]
    fn messages_name_the_file_and_the_way_out() {
        let parse = shim(3, "node 4 (Foo f): unsupported").to_string();
        assert!(
            parse.starts_with("m.onnx: node 4 (Foo f): unsupported"),
            "{parse}"
        );
        assert!(parse.contains("--backend tract"), "{parse}");
        let gpu = shim(1, "the CUDA runtime sees no GPU").to_string();
        assert!(gpu.contains("the CUDA runtime sees no GPU") && gpu.contains("--backend tract"));
        let missing = TrtError::NotAvailable {
            reason: "libnvinfer.so.8: cannot open shared object file".to_owned(),
        }
        .to_string();
        assert!(missing.starts_with("TensorRT is not available: libnvinfer.so.8"));
        assert!(missing.contains("JetPack") && missing.contains("--backend tract"));
    }
}
