//! An engine ready to run: found in the engine cache or built (and cached) from the ONNX model.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::cache::CacheKey;
use crate::error::{Status, TrtError};
use crate::ffi::{log_progress, EngineHandle, RawBuildOptions};
use crate::library::{DeviceInfo, Library};
use crate::options::Options;

/// How often a running build says it is still running.
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// Where an engine came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Deserialized from the engine cache.
    Cache,
    /// Built from the ONNX model (nothing was cached).
    Built,
    /// Built again because the cached engine could not be deserialized.
    Rebuilt {
        /// TensorRT's reason for refusing the cached engine.
        reason: String,
    },
}

/// One input or output tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The ONNX name.
    pub name: String,
    /// The shape the buffers hold (the batch resolved).
    pub shape: Vec<usize>,
    index: i32,
}

impl TensorInfo {
    /// The number of values.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One output of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The ONNX name.
    pub name: String,
    /// The shape.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f32>,
}

/// The outputs of one run and how long the GPU took.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    /// Every output, in the engine's order.
    pub outputs: Vec<Output>,
    /// Milliseconds between CUDA events around the input copy, the network and the output
    /// copy, on the engine's stream.
    pub network_ms: f64,
}

impl RunOutput {
    /// The output named `name`.
    pub fn get(&self, name: &str) -> Option<&Output> {
        self.outputs.iter().find(|o| o.name == name)
    }
}

/// A TensorRT engine with its buffers allocated once, ready to run.
pub struct Engine {
    handle: EngineHandle,
    input: TensorInfo,
    outputs: Vec<TensorInfo>,
    origin: Origin,
    path: PathBuf,
    device: DeviceInfo,
    precision: crate::options::Precision,
    dla_core: Option<u32>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("path", &self.path)
            .field("origin", &self.origin)
            .field("input", &self.input)
            .field("outputs", &self.outputs)
            .finish()
    }
}

impl Engine {
    /// Loads the engine for `model` (an ONNX file) from `options.engine_cache`, or builds it
    /// with `options` and caches it. A cached engine that cannot be deserialized is deleted and
    /// rebuilt, with a warning saying why.
    pub fn open(library: &Library, model: &Path, options: &Options) -> Result<Engine, TrtError> {
        options.validate()?;
        let device = library.device(options.device)?;
        options.validate_for(&device)?;
        let onnx = std::fs::read(model).map_err(|source| TrtError::Io {
            path: model.to_path_buf(),
            source,
        })?;
        let calibration_cache = match &options.calibration {
            Some(c) if c.data.is_empty() => std::fs::read(&c.cache).ok(),
            _ => None,
        };
        let stem = model
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = CacheKey::new(
            &stem,
            &onnx,
            library.versions().tensorrt,
            &device,
            options,
            calibration_cache.as_deref(),
        );
        std::fs::create_dir_all(&options.engine_cache).map_err(|source| TrtError::Io {
            path: options.engine_cache.clone(),
            source,
        })?;
        let path = options.engine_cache.join(key.file_name());
        let mut origin = Origin::Built;
        if path.is_file() {
            let plan = std::fs::read(&path).map_err(|source| TrtError::Io {
                path: path.clone(),
                source,
            })?;
            match Self::load(library, &path, &plan, options, &device) {
                Ok(handle) => {
                    log::info!("{}: TensorRT engine from the cache", path.display());
                    return Self::finish(handle, Origin::Cache, path, device, options);
                }
                Err(TrtError::Deserialize { message, .. }) => {
                    log::warn!(
                        "{}: the cached TensorRT engine cannot be deserialized ({message}); \
                         deleting it and rebuilding",
                        path.display()
                    );
                    std::fs::remove_file(&path).map_err(|source| TrtError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    origin = Origin::Rebuilt { reason: message };
                }
                Err(other) => return Err(other),
            }
        }
        let timing_cache = options
            .timing_cache
            .clone()
            .unwrap_or_else(|| options.engine_cache.join(key.timing_cache_name()));
        let plan = build(library, model, &onnx, options, &device, &timing_cache)?;
        csra_core::fsutil::write_atomic(&path, &plan).map_err(|source| TrtError::Io {
            path: path.clone(),
            source,
        })?;
        log::info!("{}: TensorRT engine built and cached", path.display());
        let handle = Self::load(library, &path, &plan, options, &device)?;
        Self::finish(handle, origin, path, device, options)
    }

    fn load(
        library: &Library,
        path: &Path,
        plan: &[u8],
        options: &Options,
        device: &DeviceInfo,
    ) -> Result<EngineHandle, TrtError> {
        let dla = options
            .dla_core
            .map_or(-1, |c| i32::try_from(c).unwrap_or(i32::MAX));
        let batch = i32::try_from(options.batch.opt).unwrap_or(i32::MAX);
        let device_index = i32::try_from(device.index).unwrap_or(i32::MAX);
        library
            .shim
            .engine_load(device_index, dla, plan, batch)
            .map_err(|e| TrtError::from_shim(e, path))
    }

    fn finish(
        handle: EngineHandle,
        origin: Origin,
        path: PathBuf,
        device: DeviceInfo,
        options: &Options,
    ) -> Result<Engine, TrtError> {
        let tensors = handle
            .tensors()
            .map_err(|e| TrtError::from_shim(e, &path))?;
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        for (index, (name, is_input, dims)) in (0i32..).zip(tensors) {
            let shape = dims
                .iter()
                .map(|&d| usize::try_from(d).unwrap_or(0))
                .collect();
            let info = TensorInfo { name, shape, index };
            if is_input {
                inputs.push(info);
            } else {
                outputs.push(info);
            }
        }
        if inputs.len() != 1 {
            return Err(TrtError::Deserialize {
                path,
                message: format!(
                    "the engine has {} inputs; csra models have one image input",
                    inputs.len()
                ),
            });
        }
        let input = inputs.remove(0);
        Ok(Engine {
            handle,
            input,
            outputs,
            origin,
            path,
            device,
            precision: options.precision,
            dla_core: options.dla_core,
        })
    }

    /// Where the engine came from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The engine-cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The image input.
    pub fn input(&self) -> &TensorInfo {
        &self.input
    }

    /// The outputs, in the engine's order.
    pub fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    /// A short description for logs, e.g. `TensorRT fp16 on Orin (sm87, 2 DLA cores), GPU`.
    pub fn describe(&self) -> String {
        let target = match self.dla_core {
            Some(core) => format!("DLA core {core} with GPU fallback"),
            None => "GPU".to_owned(),
        };
        format!("TensorRT {} on {}, {target}", self.precision, self.device)
    }

    /// Runs the network on `input` (the input tensor's values, row-major).
    pub fn run(&mut self, input: &[f32]) -> Result<RunOutput, TrtError> {
        if input.len() != self.input.len() {
            return Err(TrtError::Run(format!(
                "the input has {} values, the engine takes {} ({:?})",
                input.len(),
                self.input.len(),
                self.input.shape
            )));
        }
        let path = self.path.clone();
        let shim_err = |e| TrtError::from_shim(e, &path);
        self.handle
            .set_input(self.input.index, input)
            .map_err(shim_err)?;
        let network_ms = f64::from(self.handle.run().map_err(shim_err)?);
        let mut outputs = Vec::with_capacity(self.outputs.len());
        for info in &self.outputs {
            let mut data = vec![0f32; info.len()];
            self.handle
                .get_output(info.index, &mut data)
                .map_err(shim_err)?;
            outputs.push(Output {
                name: info.name.clone(),
                shape: info.shape.clone(),
                data,
            });
        }
        Ok(RunOutput {
            outputs,
            network_ms,
        })
    }
}

/// Builds a serialized engine on a worker thread while this one logs that it is still running
/// (TensorRT 8.x has no progress callback; 10.x's phases are logged as they start).
fn build(
    library: &Library,
    model: &Path,
    onnx: &[u8],
    options: &Options,
    device: &DeviceInfo,
    timing_cache: &Path,
) -> Result<Vec<u8>, TrtError> {
    let c_path = |p: &Path| {
        CString::new(p.as_os_str().as_encoded_bytes())
            .map_err(|_| TrtError::Options(format!("{}: the path holds a NUL byte", p.display())))
    };
    let timing = c_path(timing_cache)?;
    let calibration_cache = match &options.calibration {
        Some(c) => Some(c_path(&c.cache)?),
        None => None,
    };
    let calibration_data = options
        .calibration
        .as_ref()
        .map(|c| c.data.as_slice())
        .filter(|d| !d.is_empty());
    log::info!(
        "{}: building a TensorRT {} engine on {}; this takes minutes on a Jetson",
        model.display(),
        options.precision,
        device
    );
    let started = Instant::now();
    let (done_tx, done_rx) = mpsc::channel();
    let shim = &library.shim;
    let result = std::thread::scope(|scope| {
        scope.spawn(move || {
            let raw = RawBuildOptions {
                device: i32::try_from(options.device).unwrap_or(i32::MAX),
                precision: options.precision.code(),
                dla_core: options
                    .dla_core
                    .map_or(-1, |c| i32::try_from(c).unwrap_or(i32::MAX)),
                workspace_bytes: options.workspace_mib.saturating_mul(1 << 20),
                timing_cache_path: timing.as_ptr(),
                min_batch: i32::try_from(options.batch.min).unwrap_or(i32::MAX),
                opt_batch: i32::try_from(options.batch.opt).unwrap_or(i32::MAX),
                max_batch: i32::try_from(options.batch.max).unwrap_or(i32::MAX),
                calibration_data: calibration_data.map_or(std::ptr::null(), <[f32]>::as_ptr),
                calibration_len: calibration_data.map_or(0, |d| d.len() as u64),
                calibration_cache_path: calibration_cache
                    .as_ref()
                    .map_or(std::ptr::null(), |c| c.as_ptr()),
                progress: Some(log_progress),
                progress_user: std::ptr::null_mut(),
            };
            // The receiver outlives the scope; a send cannot fail before it is dropped.
            let _ = done_tx.send(shim.build(&raw, onnx));
        });
        loop {
            match done_rx.recv_timeout(PROGRESS_EVERY) {
                Ok(result) => break result,
                Err(mpsc::RecvTimeoutError::Timeout) => log::info!(
                    "{}: still building the TensorRT engine, {} s",
                    model.display(),
                    started.elapsed().as_secs()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    break Err(crate::error::ShimError {
                        status: Status::Internal,
                        message: "the build thread ended without a result".to_owned(),
                    })
                }
            }
        }
    });
    let plan = result.map_err(|e| TrtError::from_shim(e, model))?;
    log::info!(
        "{}: TensorRT engine built in {} s",
        model.display(),
        started.elapsed().as_secs()
    );
    Ok(plan)
}
