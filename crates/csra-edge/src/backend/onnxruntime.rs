//! The ONNX Runtime backend (feature `onnxruntime`): Microsoft's CPU kernels through the `ort`
//! crate, with `libonnxruntime.so` loaded at run time, so the build needs no native library
//! and a device without one still runs tract.
//!
//! It exists because speed matters on the CPU fallback: on the shipped MobileNetV2, tract runs
//! at about a quarter of this machine's FMA peak and ONNX Runtime at about 70% (README,
//! "Speed").

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

use super::{check_input_len, cpu_description, AttentionMaps, Backend, BackendError, Outputs};
use crate::model::ModelFiles;

const ENGINE: &str = "onnxruntime";

/// The library the dynamic loader finds when neither `--onnxruntime-library` nor
/// `ORT_DYLIB_PATH` names one.
const DEFAULT_LIBRARY: &str = "libonnxruntime.so";

/// A network in an ONNX Runtime session, its input pinned to the manifest's shape.
pub struct OnnxruntimeBackend {
    session: Session,
    input_shape: [usize; 4],
    num_classes: usize,
    /// `logits`, `probs` and, when exported, `attention`: the manifest's output names.
    outputs: Vec<String>,
    threads: usize,
    model: PathBuf,
}

impl OnnxruntimeBackend {
    /// Loads ONNX Runtime from `library` (else `ORT_DYLIB_PATH`, else the loader's search
    /// path), checks `model`'s ONNX against its manifest and opens a session with `threads`
    /// intra-op threads.
    pub fn load(
        model: &ModelFiles,
        threads: usize,
        library: Option<&Path>,
    ) -> Result<Self, BackendError> {
        model.check_onnx()?;
        let library = library_path(library);
        let load_error = |reason: String| BackendError::Load {
            model: model.onnx.clone(),
            engine: ENGINE,
            reason,
        };
        let environment = environment(&library).map_err(load_error)?;
        let threads = threads.max(1);
        let failed = |e: ort::Error<_>| load_error(e.to_string());
        let session = Session::builder(&environment)
            .map_err(|e| load_error(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(failed)?
            .with_intra_threads(threads)
            .map_err(failed)?
            .with_inter_threads(1)
            .map_err(failed)?
            .commit_from_file(&model.onnx)
            .map_err(|e| load_error(e.to_string()))?;
        let manifest = &model.manifest;
        let mut outputs = vec![
            manifest.outputs.logits.clone(),
            manifest.outputs.probs.clone(),
        ];
        outputs.extend(manifest.outputs.attention.clone());
        Ok(Self {
            session,
            input_shape: model.input_shape(),
            num_classes: manifest.num_classes,
            outputs,
            threads,
            model: model.onnx.clone(),
        })
    }

    fn output_error(&self, reason: String) -> BackendError {
        output_error(&self.model, reason)
    }
}

fn output_error(model: &Path, reason: String) -> BackendError {
    BackendError::Outputs {
        model: model.to_owned(),
        reason,
    }
}

/// The process's ONNX Runtime and the library it came from: `ort` allows one environment per
/// process, and a library once loaded stays.
static ENVIRONMENT: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

/// The environment, loading ONNX Runtime from `library` the first time.
fn environment(library: &Path) -> Result<Environment, String> {
    let mut slot = ENVIRONMENT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((loaded, environment)) = slot.as_ref() {
        if loaded != library {
            return Err(format!(
                "ONNX Runtime is already loaded from {} in this process, and one process can \
                 load only one; pass the same --onnxruntime-library for every model",
                loaded.display()
            ));
        }
        return Ok(environment.clone());
    }
    let environment = ort::init_from(library)
        .map_err(|e| {
            format!(
                "{e}; install ONNX Runtime (e.g. `pip install onnxruntime`) and pass its \
                 libonnxruntime.so with --onnxruntime-library or ORT_DYLIB_PATH"
            )
        })?
        .with_name("csra-edge")
        .build()
        .map_err(|e| e.to_string())?;
    *slot = Some((library.to_owned(), environment.clone()));
    Ok(environment)
}

/// `library`, else `ORT_DYLIB_PATH` (the `ort` crate's own variable), else the bare file name
/// for the dynamic loader to search.
fn library_path(library: Option<&Path>) -> PathBuf {
    library
        .map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os("ORT_DYLIB_PATH")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LIBRARY))
}

impl Backend for OnnxruntimeBackend {
    fn describe(&self) -> String {
        cpu_description("ONNX Runtime", self.threads)
    }

    fn input_len(&self) -> usize {
        self.input_shape.iter().product()
    }

    fn run(&mut self, input: &[f32]) -> Result<Outputs, BackendError> {
        check_input_len(self.input_len(), input)?;
        let run_error = |e: ort::Error| BackendError::Run(e.to_string());
        let tensor = TensorRef::from_array_view((self.input_shape, input)).map_err(run_error)?;
        let model = &self.model;
        let results = self.session.run(ort::inputs![tensor]).map_err(run_error)?;
        let mut values = Vec::with_capacity(self.outputs.len());
        for name in &self.outputs {
            let value = results.get(name).ok_or_else(|| {
                output_error(model, format!("the network has no output `{name}`"))
            })?;
            let (shape, data) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| output_error(model, format!("{name}: {e}")))?;
            values.push((shape.to_vec(), data.to_vec()));
        }
        drop(results);
        let mut values = values.into_iter();
        let mut class_vector = |what: &str| -> Result<Vec<f32>, BackendError> {
            let (shape, data) = values.next().unwrap_or_default();
            if shape != [1, self.num_classes as i64] {
                return Err(self.output_error(format!(
                    "the {what} output has shape {shape:?}, the manifest promises [1, {}]",
                    self.num_classes
                )));
            }
            Ok(data)
        };
        let logits = class_vector("logits")?;
        let probs = class_vector("probs")?;
        let attention = match values.next() {
            Some((shape, data)) => Some(self.attention_maps(&shape, data)?),
            None => None,
        };
        Ok(Outputs {
            logits,
            probs,
            attention,
            network_ms: None,
        })
    }

    fn cpu_threads(&self) -> usize {
        self.threads
    }
}

impl OnnxruntimeBackend {
    fn attention_maps(&self, shape: &[i64], data: Vec<f32>) -> Result<AttentionMaps, BackendError> {
        match *shape {
            [1, c, height, width] if c == self.num_classes as i64 && height > 0 && width > 0 => {
                Ok(AttentionMaps {
                    height: height as usize,
                    width: width as usize,
                    data,
                })
            }
            _ => Err(self.output_error(format!(
                "the attention output has shape {shape:?}, not [1, {}, h, w]",
                self.num_classes
            ))),
        }
    }
}
