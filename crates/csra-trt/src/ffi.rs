//! The shim's C ABI (`shim/csra_trt.h`), mirrored field for field, and the loaded library's
//! function table. All of the crate's `unsafe` is here.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_void, CStr};
use std::path::Path;
use std::sync::Arc;

use libloading::Library;

use crate::error::{ShimError, Status};

/// `CSRA_TRT_ABI_VERSION` of the header this crate mirrors.
pub const ABI_VERSION: u32 = 1;
/// `CSRA_TRT_NAME_LEN`.
const NAME_LEN: usize = 256;
/// `CSRA_TRT_MAX_DIMS`.
pub const MAX_DIMS: usize = 8;
/// The size of the error buffer handed to every call.
const ERR_LEN: usize = 8192;

/// `csra_trt_versions`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct RawVersions {
    pub tensorrt_compiled: i32,
    pub tensorrt_loaded: i32,
    pub onnx_parser: i32,
    pub cuda_runtime: i32,
    pub cuda_driver: i32,
}

/// `csra_trt_device`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RawDevice {
    pub name: [c_char; NAME_LEN],
    pub compute_major: i32,
    pub compute_minor: i32,
    pub integrated: i32,
    pub can_map_host_memory: i32,
    pub fast_fp16: i32,
    pub fast_int8: i32,
    pub dla_cores: i32,
    pub total_memory: u64,
}

/// `csra_trt_progress_fn`.
pub type ProgressFn = unsafe extern "C" fn(*mut c_void, *const c_char, i32, i32);

/// `csra_trt_build_options`.
#[repr(C)]
pub struct RawBuildOptions {
    pub device: i32,
    pub precision: i32,
    pub dla_core: i32,
    pub workspace_bytes: u64,
    pub timing_cache_path: *const c_char,
    pub min_batch: i32,
    pub opt_batch: i32,
    pub max_batch: i32,
    pub calibration_data: *const f32,
    pub calibration_len: u64,
    pub calibration_cache_path: *const c_char,
    pub progress: Option<ProgressFn>,
    pub progress_user: *mut c_void,
}

/// `csra_trt_tensor`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RawTensor {
    pub name: [c_char; NAME_LEN],
    pub is_input: i32,
    pub nb_dims: i32,
    pub dims: [i64; MAX_DIMS],
}

/// The opaque `csra_trt_engine`.
#[repr(C)]
pub struct RawEngine {
    _private: [u8; 0],
}

type ErrBuf = *mut c_char;

/// The shim's functions, resolved once; valid as long as `_library` is loaded.
pub struct Shim {
    init: unsafe extern "C" fn(*mut RawVersions, ErrBuf, usize) -> i32,
    device_info: unsafe extern "C" fn(i32, *mut RawDevice, ErrBuf, usize) -> i32,
    build: unsafe extern "C" fn(
        *const RawBuildOptions,
        *const u8,
        usize,
        *mut *mut u8,
        *mut usize,
        ErrBuf,
        usize,
    ) -> i32,
    free_plan: unsafe extern "C" fn(*mut u8),
    engine_load: unsafe extern "C" fn(
        i32,
        i32,
        *const u8,
        usize,
        i32,
        *mut *mut RawEngine,
        ErrBuf,
        usize,
    ) -> i32,
    engine_tensor_count: unsafe extern "C" fn(*const RawEngine) -> i32,
    engine_tensor:
        unsafe extern "C" fn(*const RawEngine, i32, *mut RawTensor, ErrBuf, usize) -> i32,
    engine_set_input:
        unsafe extern "C" fn(*mut RawEngine, i32, *const f32, usize, ErrBuf, usize) -> i32,
    engine_run: unsafe extern "C" fn(*mut RawEngine, *mut f32, ErrBuf, usize) -> i32,
    engine_get_output:
        unsafe extern "C" fn(*const RawEngine, i32, *mut f32, usize, ErrBuf, usize) -> i32,
    engine_free: unsafe extern "C" fn(*mut RawEngine),
    _library: Library,
}

/// Why a file could not serve as the shim.
#[derive(Debug)]
pub enum OpenError {
    /// The dynamic loader refused it (missing file, or a missing libnvinfer/libcudart).
    Load(String),
    /// It loaded but is another ABI than this crate's.
    Abi { found: u32 },
    /// Its structs differ in size from this crate's mirror of them.
    Layout(String),
    /// A function is missing.
    Symbol(String),
}

/// Resolves `name` from `library` as a function pointer of type `T`.
///
/// # Safety
/// `T` must be the function's true signature.
unsafe fn symbol<T: Copy>(library: &Library, name: &str) -> Result<T, OpenError> {
    let c_name = format!("{name}\0");
    // SAFETY: the caller guarantees the signature; the pointer is copied out and used only
    // while `library` stays loaded (Shim keeps it).
    unsafe { library.get::<T>(c_name.as_bytes()) }
        .map(|s| *s)
        .map_err(|e| OpenError::Symbol(format!("{name}: {e}")))
}

impl Shim {
    /// Loads the shim at `path` and checks its ABI version and struct layouts.
    pub fn open(path: &Path) -> Result<Shim, OpenError> {
        // SAFETY: loading runs the library's initialisers; libcsra_trt.so and the TensorRT and
        // CUDA libraries it links have no initialisers with preconditions on the caller.
        let library = unsafe { Library::new(path) }.map_err(|e| OpenError::Load(e.to_string()))?;
        // SAFETY: the signatures below are those of csra_trt.h, checked by the ABI version
        // before any other call is made.
        unsafe {
            let abi: unsafe extern "C" fn() -> u32 = symbol(&library, "csra_trt_abi_version")?;
            let found = abi();
            if found != ABI_VERSION {
                return Err(OpenError::Abi { found });
            }
            let size: unsafe extern "C" fn(i32) -> usize =
                symbol(&library, "csra_trt_struct_size")?;
            let expected = [
                ("csra_trt_versions", std::mem::size_of::<RawVersions>()),
                ("csra_trt_device", std::mem::size_of::<RawDevice>()),
                (
                    "csra_trt_build_options",
                    std::mem::size_of::<RawBuildOptions>(),
                ),
                ("csra_trt_tensor", std::mem::size_of::<RawTensor>()),
            ];
            for (which, (name, ours)) in (0i32..).zip(expected) {
                let theirs = size(which);
                if theirs != ours {
                    return Err(OpenError::Layout(format!(
                        "{name} is {theirs} bytes in the library, {ours} in csra-trt"
                    )));
                }
            }
            Ok(Shim {
                init: symbol(&library, "csra_trt_init")?,
                device_info: symbol(&library, "csra_trt_device_info")?,
                build: symbol(&library, "csra_trt_build")?,
                free_plan: symbol(&library, "csra_trt_free_plan")?,
                engine_load: symbol(&library, "csra_trt_engine_load")?,
                engine_tensor_count: symbol(&library, "csra_trt_engine_tensor_count")?,
                engine_tensor: symbol(&library, "csra_trt_engine_tensor")?,
                engine_set_input: symbol(&library, "csra_trt_engine_set_input")?,
                engine_run: symbol(&library, "csra_trt_engine_run")?,
                engine_get_output: symbol(&library, "csra_trt_engine_get_output")?,
                engine_free: symbol(&library, "csra_trt_engine_free")?,
                _library: library,
            })
        }
    }

    /// Calls `f` with an error buffer and turns its status into a result.
    fn call(f: impl FnOnce(ErrBuf, usize) -> i32) -> Result<(), ShimError> {
        let mut err = vec![0 as c_char; ERR_LEN];
        let code = f(err.as_mut_ptr(), err.len());
        if code == 0 {
            return Ok(());
        }
        // SAFETY: the shim writes a NUL-terminated string into the buffer (or leaves it zeroed,
        // which reads as empty); the last byte is never written, so a NUL is always found.
        let message = unsafe { CStr::from_ptr(err.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        Err(ShimError {
            status: Status::from_code(code),
            message,
        })
    }

    /// `csra_trt_init`.
    pub fn init(&self) -> Result<RawVersions, ShimError> {
        let mut out = RawVersions::default();
        // SAFETY: `out` and the error buffer are valid for the call.
        Self::call(|e, n| unsafe { (self.init)(&mut out, e, n) })?;
        Ok(out)
    }

    /// `csra_trt_device_info`.
    pub fn device_info(&self, device: i32) -> Result<RawDevice, ShimError> {
        let mut out = RawDevice {
            name: [0; NAME_LEN],
            compute_major: 0,
            compute_minor: 0,
            integrated: 0,
            can_map_host_memory: 0,
            fast_fp16: 0,
            fast_int8: 0,
            dla_cores: 0,
            total_memory: 0,
        };
        // SAFETY: `out` and the error buffer are valid for the call.
        Self::call(|e, n| unsafe { (self.device_info)(device, &mut out, e, n) })?;
        Ok(out)
    }

    /// `csra_trt_build`; the plan is copied into Rust memory and the shim's freed.
    pub fn build(&self, options: &RawBuildOptions, onnx: &[u8]) -> Result<Vec<u8>, ShimError> {
        let mut plan: *mut u8 = std::ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: the options' pointers (paths, calibration data, progress user data) are kept
        // alive by the caller for the whole call; `onnx` is a valid slice.
        Self::call(|e, n| unsafe {
            (self.build)(
                options,
                onnx.as_ptr(),
                onnx.len(),
                &mut plan,
                &mut len,
                e,
                n,
            )
        })?;
        if plan.is_null() {
            return Err(ShimError {
                status: Status::Build,
                message: "the shim returned no engine".to_owned(),
            });
        }
        // SAFETY: on success the shim returns a malloc'ed buffer of `len` bytes, which we copy
        // and then hand back to csra_trt_free_plan exactly once.
        let bytes = unsafe { std::slice::from_raw_parts(plan, len) }.to_vec();
        // SAFETY: see above.
        unsafe { (self.free_plan)(plan) };
        Ok(bytes)
    }

    /// `csra_trt_engine_load`.
    pub fn engine_load(
        self: &Arc<Self>,
        device: i32,
        dla_core: i32,
        plan: &[u8],
        batch: i32,
    ) -> Result<EngineHandle, ShimError> {
        let mut raw: *mut RawEngine = std::ptr::null_mut();
        // SAFETY: `plan` is a valid slice and `raw` a valid out-pointer.
        Self::call(|e, n| unsafe {
            (self.engine_load)(
                device,
                dla_core,
                plan.as_ptr(),
                plan.len(),
                batch,
                &mut raw,
                e,
                n,
            )
        })?;
        if raw.is_null() {
            return Err(ShimError {
                status: Status::Deserialize,
                message: "the shim returned no engine".to_owned(),
            });
        }
        Ok(EngineHandle {
            shim: Arc::clone(self),
            raw,
        })
    }
}

/// A loaded engine, freed on drop.
pub struct EngineHandle {
    shim: Arc<Shim>,
    raw: *mut RawEngine,
}

impl EngineHandle {
    /// The I/O tensors: name, whether an input, shape.
    pub fn tensors(&self) -> Result<Vec<(String, bool, Vec<i64>)>, ShimError> {
        // SAFETY: `raw` is a live engine of this shim.
        let count = unsafe { (self.shim.engine_tensor_count)(self.raw) };
        (0..count)
            .map(|i| {
                let mut t = RawTensor {
                    name: [0; NAME_LEN],
                    is_input: 0,
                    nb_dims: 0,
                    dims: [0; MAX_DIMS],
                };
                // SAFETY: `raw` is live, `t` and the error buffer are valid.
                Shim::call(|e, n| unsafe { (self.shim.engine_tensor)(self.raw, i, &mut t, e, n) })?;
                // SAFETY: the shim NUL-terminates the name within its buffer (snprintf).
                let name = unsafe { CStr::from_ptr(t.name.as_ptr()) }
                    .to_string_lossy()
                    .into_owned();
                let rank = usize::try_from(t.nb_dims).unwrap_or(0).min(MAX_DIMS);
                Ok((name, t.is_input != 0, t.dims[..rank].to_vec()))
            })
            .collect()
    }

    /// Copies `data` into input tensor `index`.
    pub fn set_input(&mut self, index: i32, data: &[f32]) -> Result<(), ShimError> {
        // SAFETY: `raw` is live and `data` a valid slice; the shim checks the length.
        Shim::call(|e, n| unsafe {
            (self.shim.engine_set_input)(self.raw, index, data.as_ptr(), data.len(), e, n)
        })
    }

    /// Runs the network; the network time in milliseconds.
    pub fn run(&mut self) -> Result<f32, ShimError> {
        let mut ms = 0f32;
        // SAFETY: `raw` is live and `ms` a valid out-pointer.
        Shim::call(|e, n| unsafe { (self.shim.engine_run)(self.raw, &mut ms, e, n) })?;
        Ok(ms)
    }

    /// Copies output tensor `index` into `data`.
    pub fn get_output(&self, index: i32, data: &mut [f32]) -> Result<(), ShimError> {
        // SAFETY: `raw` is live and `data` a valid mutable slice; the shim checks the length.
        Shim::call(|e, n| unsafe {
            (self.shim.engine_get_output)(self.raw, index, data.as_mut_ptr(), data.len(), e, n)
        })
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        // SAFETY: `raw` came from csra_trt_engine_load and is freed exactly once, here.
        unsafe { (self.shim.engine_free)(self.raw) };
    }
}

// SAFETY: the engine handle is used by one thread at a time (`&mut self` for running); CUDA's
// runtime API and TensorRT's execution context may be driven from any thread, one at a time.
unsafe impl Send for EngineHandle {}

// SAFETY: the function table is immutable after loading, and the shim's entry points that do
// not take an engine (init, device_info, build) are safe to call from any thread.
unsafe impl Sync for Shim {}
// SAFETY: see above; the library handle itself may move between threads.
unsafe impl Send for Shim {}

/// The name in a `csra_trt_device`.
pub fn device_name(device: &RawDevice) -> String {
    // SAFETY: the shim NUL-terminates the name within its buffer (snprintf).
    unsafe { CStr::from_ptr(device.name.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// The progress callback handed to the shim: logs each TensorRT build phase as it starts.
pub unsafe extern "C" fn log_progress(
    _user: *mut c_void,
    phase: *const c_char,
    step: i32,
    steps: i32,
) {
    if phase.is_null() || step >= 0 {
        return;
    }
    // SAFETY: the shim passes TensorRT's NUL-terminated phase name, valid during the call.
    let phase = unsafe { CStr::from_ptr(phase) }.to_string_lossy();
    log::info!("TensorRT: {phase} ({steps} steps)");
}
