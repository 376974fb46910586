//! Finding and loading the shim `libcsra_trt.so`, and what it reports about TensorRT, CUDA and
//! the GPU.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::TrtError;
use crate::ffi::{self, OpenError, Shim};

/// The shim's file name.
pub const LIBRARY_NAME: &str = "libcsra_trt.so";
/// The environment variable naming the shim to load (and only that one).
pub const LIBRARY_ENV: &str = "CSRA_TRT_LIBRARY";

/// A library version `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    /// Major version.
    pub major: i32,
    /// Minor version.
    pub minor: i32,
    /// Patch version.
    pub patch: i32,
}

impl Version {
    /// Decodes `major*10000 + minor*100 + patch`, the shim's encoding of TensorRT versions.
    pub fn from_tensorrt(v: i32) -> Version {
        Version {
            major: v / 10000,
            minor: (v / 100) % 100,
            patch: v % 100,
        }
    }

    /// Decodes CUDA's `major*1000 + minor*10`.
    pub fn from_cuda(v: i32) -> Version {
        Version {
            major: v / 1000,
            minor: (v / 10) % 100,
            patch: 0,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The versions of what the shim runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    /// The TensorRT headers the shim was compiled against.
    pub tensorrt_compiled: Version,
    /// The libnvinfer loaded.
    pub tensorrt: Version,
    /// `getNvOnnxParserVersion()` as the parser reports it.
    pub onnx_parser: i32,
    /// The CUDA runtime.
    pub cuda_runtime: Version,
    /// The newest CUDA the driver supports.
    pub cuda_driver: Version,
}

/// A CUDA device as TensorRT sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The CUDA device index.
    pub index: u32,
    /// The GPU's name, e.g. `Orin`.
    pub name: String,
    /// Compute capability (major, minor).
    pub compute: (i32, i32),
    /// Whether the GPU shares memory with the CPU (every Jetson).
    pub integrated: bool,
    /// Whether inputs and outputs live in mapped pinned memory, with no copies.
    pub zero_copy: bool,
    /// Whether TensorRT has fast FP16 kernels here.
    pub fast_fp16: bool,
    /// Whether TensorRT has fast INT8 kernels here.
    pub fast_int8: bool,
    /// The number of DLA cores.
    pub dla_cores: u32,
    /// Device memory in bytes.
    pub total_memory: u64,
}

impl fmt::Display for DeviceInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (sm{}{}, {} DLA cores{})",
            self.name,
            self.compute.0,
            self.compute.1,
            self.dla_cores,
            if self.zero_copy { ", zero-copy" } else { "" }
        )
    }
}

/// The loaded shim, with TensorRT and CUDA started.
pub struct Library {
    pub(crate) shim: Arc<Shim>,
    path: PathBuf,
    versions: Versions,
}

impl fmt::Debug for Library {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Library")
            .field("path", &self.path)
            .field("versions", &self.versions)
            .finish()
    }
}

impl Library {
    /// Where the shim is looked for, in order: `$CSRA_TRT_LIBRARY` alone when set; else next
    /// to the executable, in `../lib` beside it, where this crate's build put it, and the
    /// system's library path.
    pub fn candidates() -> Vec<PathBuf> {
        if let Some(path) = std::env::var_os(LIBRARY_ENV) {
            return vec![PathBuf::from(path)];
        }
        let mut out = Vec::new();
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
        {
            out.push(dir.join(LIBRARY_NAME));
            out.push(dir.join("../lib").join(LIBRARY_NAME));
        }
        if let Some(built) = option_env!("CSRA_TRT_BUILT_LIBRARY") {
            out.push(PathBuf::from(built));
        }
        // A bare name: the dynamic loader searches LD_LIBRARY_PATH and ldconfig's directories.
        out.push(PathBuf::from(LIBRARY_NAME));
        out
    }

    /// Whether this build compiled the shim (TensorRT headers were found).
    pub fn shim_built() -> bool {
        cfg!(csra_trt_shim)
    }

    /// Loads the first usable shim of [`Library::candidates`].
    pub fn load() -> Result<Library, TrtError> {
        let mut tried = Vec::new();
        for path in Self::candidates() {
            let bare = path.components().count() == 1;
            if !bare && !path.exists() {
                tried.push(format!("{} (no such file)", path.display()));
                continue;
            }
            match Self::load_from(&path) {
                Ok(library) => return Ok(library),
                Err(TrtError::NotAvailable { reason }) => tried.push(reason),
                Err(other) => return Err(other),
            }
        }
        let mut reason = format!("no usable {LIBRARY_NAME}: tried {}", tried.join("; "));
        if !Self::shim_built() {
            reason += "; this build has no TensorRT shim because TensorRT's headers were not \
                       found when it was compiled (set TENSORRT_INCLUDE_DIR and CUDA_INCLUDE_DIR)";
        }
        Err(TrtError::NotAvailable { reason })
    }

    /// Loads the shim at `path` (a bare file name searches the system's library path).
    pub fn load_from(path: &Path) -> Result<Library, TrtError> {
        let shim = Shim::open(path).map_err(|e| match e {
            OpenError::Load(reason) => TrtError::NotAvailable {
                reason: format!("{}: {reason}", path.display()),
            },
            OpenError::Abi { found } => TrtError::Abi {
                path: path.to_path_buf(),
                reason: format!(
                    "its ABI version is {found}, this csra-trt needs {}",
                    ffi::ABI_VERSION
                ),
            },
            OpenError::Layout(reason) | OpenError::Symbol(reason) => TrtError::Abi {
                path: path.to_path_buf(),
                reason,
            },
        })?;
        let raw = shim.init().map_err(|e| TrtError::from_shim(e, path))?;
        let versions = Versions {
            tensorrt_compiled: Version::from_tensorrt(raw.tensorrt_compiled),
            tensorrt: Version::from_tensorrt(raw.tensorrt_loaded),
            onnx_parser: raw.onnx_parser,
            cuda_runtime: Version::from_cuda(raw.cuda_runtime),
            cuda_driver: Version::from_cuda(raw.cuda_driver),
        };
        log::debug!(
            "{}: TensorRT {} (compiled against {}), CUDA runtime {}, driver {}",
            path.display(),
            versions.tensorrt,
            versions.tensorrt_compiled,
            versions.cuda_runtime,
            versions.cuda_driver
        );
        Ok(Library {
            shim: Arc::new(shim),
            path: path.to_path_buf(),
            versions,
        })
    }

    /// The shim's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// TensorRT's and CUDA's versions.
    pub fn versions(&self) -> &Versions {
        &self.versions
    }

    /// Describes CUDA device `index`.
    pub fn device(&self, index: u32) -> Result<DeviceInfo, TrtError> {
        let raw_index = i32::try_from(index)
            .map_err(|_| TrtError::Options(format!("there is no CUDA device {index}")))?;
        let raw = self
            .shim
            .device_info(raw_index)
            .map_err(|e| TrtError::from_shim(e, &self.path))?;
        Ok(DeviceInfo {
            index,
            name: ffi::device_name(&raw),
            compute: (raw.compute_major, raw.compute_minor),
            integrated: raw.integrated != 0,
            zero_copy: raw.integrated != 0 && raw.can_map_host_memory != 0,
            fast_fp16: raw.fast_fp16 != 0,
            fast_int8: raw.fast_int8 != 0,
            dla_cores: u32::try_from(raw.dla_cores).unwrap_or(0),
            total_memory: raw.total_memory,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensorrt_and_cuda_versions_decode() {
        assert_eq!(Version::from_tensorrt(80502).to_string(), "8.5.2");
        assert_eq!(Version::from_tensorrt(100300).to_string(), "10.3.0");
        assert_eq!(Version::from_cuda(12060).to_string(), "12.6.0");
        assert_eq!(Version::from_cuda(11040).to_string(), "11.4.0");
    }

    #[test]
    fn a_shim_that_does_not_exist_is_tensorrt_not_available() {
        let err = Library::load_from(Path::new("/nonexistent/libcsra_trt.so")).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, TrtError::NotAvailable { .. }), "{text}");
        assert!(text.starts_with("TensorRT is not available: /nonexistent/libcsra_trt.so"));
        assert!(text.contains("--backend tract"), "{text}");
    }
}
