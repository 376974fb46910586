//! Which backend runs a model: `auto` (TensorRT when it loads and a GPU is there, else ONNX
//! Runtime when this build has it and its library loads, else tract), `tensorrt` or
//! `onnxruntime` (or an error saying what is missing) or `tract`, with the reason for the
//! choice logged.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Backend, BackendError, TensorrtBackend, TractBackend};
use crate::model::ModelFiles;

/// The engine to run, as `--backend` and the device profiles name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// TensorRT when its libraries load and a GPU is present, else ONNX Runtime when built in
    /// and loadable, else tract.
    Auto,
    /// NVIDIA TensorRT on the GPU (and DLA); an error when it cannot run.
    Tensorrt,
    /// ONNX Runtime on the CPU (feature `onnxruntime`); an error when it cannot run.
    Onnxruntime,
    /// tract on the CPU.
    Tract,
}

/// Everything needed to load a model into either engine.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// The engine asked for.
    pub kind: BackendKind,
    /// CPU threads for tract and ONNX Runtime.
    pub threads: usize,
    /// `libonnxruntime.so` [default: `ORT_DYLIB_PATH`, else the dynamic loader's search].
    pub onnxruntime_library: Option<PathBuf>,
    /// How TensorRT builds and caches engines.
    pub tensorrt: csra_trt::Options,
}

/// A loaded backend and why it was chosen.
pub struct Selected {
    /// The backend, ready to run.
    pub backend: Box<dyn Backend>,
    /// Why this engine runs, for the log.
    pub reason: String,
}

/// Loads `model` into the engine `config` asks for.
///
/// `auto` falls back when TensorRT is missing, finds no GPU or cannot build the model (and
/// again when ONNX Runtime is not built in or does not load), and says why in
/// [`Selected::reason`]; an explicit `tensorrt` or `onnxruntime` returns those as errors
/// instead.
pub fn load_backend(model: &ModelFiles, config: &BackendConfig) -> Result<Selected, BackendError> {
    let selected = |backend: Box<dyn Backend>, reason: String| Selected { backend, reason };
    match config.kind {
        BackendKind::Tract => Ok(selected(tract(model, config)?, "--backend tract".into())),
        BackendKind::Onnxruntime => Ok(selected(
            onnxruntime(model, config)?,
            "--backend onnxruntime".into(),
        )),
        BackendKind::Tensorrt => Ok(selected(
            Box::new(tensorrt(model, config)?),
            "--backend tensorrt".into(),
        )),
        BackendKind::Auto => {
            let not_tensorrt = match tensorrt(model, config) {
                Ok(backend) => {
                    let reason = "auto: TensorRT loaded and found a GPU".into();
                    return Ok(selected(Box::new(backend), reason));
                }
                Err(error) => format!("not TensorRT, because {error}"),
            };
            let not_onnxruntime = match onnxruntime(model, config) {
                Ok(backend) => {
                    let reason = format!("auto: ONNX Runtime ({not_tensorrt})");
                    return Ok(selected(backend, reason));
                }
                // Without the feature there is nothing to explain: tract is the CPU engine.
                Err(BackendError::NotBuilt { .. }) => String::new(),
                Err(error) => format!("; not ONNX Runtime, because {error}"),
            };
            let reason = format!("auto: tract ({not_tensorrt}{not_onnxruntime})");
            Ok(selected(tract(model, config)?, reason))
        }
    }
}

fn tensorrt(model: &ModelFiles, config: &BackendConfig) -> Result<TensorrtBackend, BackendError> {
    // A flag combination no device can build is the user's to fix, whatever is installed.
    config.tensorrt.validate()?;
    let library = csra_trt::Library::load()?;
    TensorrtBackend::load(model, &library, &config.tensorrt)
}

fn tract(model: &ModelFiles, config: &BackendConfig) -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(TractBackend::load(model, config.threads)?))
}

#[cfg(feature = "onnxruntime")]
fn onnxruntime(
    model: &ModelFiles,
    config: &BackendConfig,
) -> Result<Box<dyn Backend>, BackendError> {
    let library = config.onnxruntime_library.as_deref();
    Ok(Box::new(super::OnnxruntimeBackend::load(
        model,
        config.threads,
        library,
    )?))
}

#[cfg(not(feature = "onnxruntime"))]
fn onnxruntime(
    _model: &ModelFiles,
    _config: &BackendConfig,
) -> Result<Box<dyn Backend>, BackendError> {
    Err(BackendError::NotBuilt {
        engine: "ONNX Runtime",
        feature: "onnxruntime",
    })
}

/// Where TensorRT engines are cached unless `--engine-cache` says otherwise: `engines/` in the
/// state directory systemd gives the unit (`StateDirectory=`, as `$STATE_DIRECTORY`), else in
/// the user's cache directory (`$XDG_CACHE_HOME` or `~/.cache`), else in the current one.
pub fn default_engine_cache() -> PathBuf {
    engine_cache_from(|name| std::env::var_os(name).filter(|v| !v.is_empty()))
}

fn engine_cache_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    if let Some(state) = var("STATE_DIRECTORY") {
        // systemd separates several state directories with colons; the first is the unit's.
        let first = state
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_owned();
        return PathBuf::from(first).join("engines");
    }
    if let Some(cache) = var("XDG_CACHE_HOME") {
        return PathBuf::from(cache).join("csra-edge/engines");
    }
    if let Some(home) = var("HOME") {
        return PathBuf::from(home).join(".cache/csra-edge/engines");
    }
    PathBuf::from("csra-edge-engines")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.into())
        }
    }

    #[test]
    fn the_engine_cache_follows_systemd_then_xdg_then_home() {
        let all = [
            ("STATE_DIRECTORY", "/var/lib/csra-edge:/var/lib/other"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(
            engine_cache_from(env(&all)),
            PathBuf::from("/var/lib/csra-edge/engines")
        );
        assert_eq!(
            engine_cache_from(env(&all[1..])),
            PathBuf::from("/x/csra-edge/engines")
        );
        assert_eq!(
            engine_cache_from(env(&all[2..])),
            PathBuf::from("/home/u/.cache/csra-edge/engines")
        );
        assert_eq!(
            engine_cache_from(env(&[])),
            PathBuf::from("csra-edge-engines")
        );
    }
}
