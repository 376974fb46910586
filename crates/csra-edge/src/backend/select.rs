//! Which backend runs a model: `auto` (TensorRT when it loads and a GPU is there, else
//! tract), `tensorrt` (or an error saying what is missing) or `tract`, with the reason for the
//! choice logged.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Backend, BackendError, TensorrtBackend, TractBackend};
use crate::model::ModelFiles;

/// The engine to run, as `--backend` and the device profiles name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// TensorRT when its libraries load and a GPU is present, else tract.
    Auto,
    /// NVIDIA TensorRT on the GPU (and DLA); an error when it cannot run.
    Tensorrt,
    /// tract on the CPU.
    Tract,
}

/// Everything needed to load a model into either engine.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// The engine asked for.
    pub kind: BackendKind,
    /// CPU threads for tract.
    pub threads: usize,
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
/// `auto` falls back to tract when TensorRT is missing, finds no GPU or cannot build the
/// model, and says which in [`Selected::reason`]; an explicit `tensorrt` returns those as
/// errors instead.
pub fn load_backend(model: &ModelFiles, config: &BackendConfig) -> Result<Selected, BackendError> {
    match config.kind {
        BackendKind::Tract => tract(model, config, "--backend tract".to_owned()),
        BackendKind::Tensorrt => {
            let backend = tensorrt(model, config)?;
            Ok(Selected {
                backend: Box::new(backend),
                reason: "--backend tensorrt".to_owned(),
            })
        }
        BackendKind::Auto => match tensorrt(model, config) {
            Ok(backend) => Ok(Selected {
                backend: Box::new(backend),
                reason: "auto: TensorRT loaded and found a GPU".to_owned(),
            }),
            Err(error) => tract(
                model,
                config,
                format!("auto: not TensorRT, because {error}"),
            ),
        },
    }
}

fn tensorrt(model: &ModelFiles, config: &BackendConfig) -> Result<TensorrtBackend, BackendError> {
    // A flag combination no device can build is the user's to fix, whatever is installed.
    config.tensorrt.validate()?;
    let library = csra_trt::Library::load()?;
    TensorrtBackend::load(model, &library, &config.tensorrt)
}

fn tract(
    model: &ModelFiles,
    config: &BackendConfig,
    reason: String,
) -> Result<Selected, BackendError> {
    Ok(Selected {
        backend: Box::new(TractBackend::load(model, config.threads)?),
        reason,
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
