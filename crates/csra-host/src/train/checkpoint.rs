//! Checkpoints: a tensor file (model variables and momentum buffers) plus a JSON description,
//! each written atomically, the JSON last so it never points at a half-written tensor file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use csra_core::manifest::Preprocess;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Tensor};

use super::history::EpochRecord;
use super::{Recipe, TrainError};
use crate::data_source::{DataSource, SourceMapping};
use crate::{Arch, ModelConfig};

/// The `format` field of every checkpoint description.
pub const FORMAT: &str = "csra-checkpoint";
/// The description version this build writes and reads.
pub const VERSION: u32 = 1;
/// The description of the newest checkpoint in a run directory.
pub const LATEST: &str = "latest.json";

/// How many missing or misshapen tensors an error lists before it only counts the rest.
const MAX_LISTED_PROBLEMS: usize = 8;

/// How far training got when a checkpoint was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Epochs fully done, evaluation included.
    pub epochs_done: usize,
    /// Steps done in the epoch after those (non-zero only for an interrupted epoch).
    pub steps_into_epoch: usize,
    /// Optimiser steps since the start of training.
    pub global_step: u64,
}

/// Everything needed to rebuild, resume, evaluate or export a trained model.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointMeta {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`] for files this build writes.
    pub version: u32,
    /// The tensor file, relative to this description's directory.
    pub weights: String,
    /// The network.
    pub model: ModelConfig,
    /// Class names, in output order.
    pub classes: Vec<String>,
    /// Square input side the model was trained at.
    pub image_size: u32,
    /// The pixel pipeline the model was trained with.
    pub preprocess: Preprocess,
    /// The optimisation recipe.
    pub recipe: Recipe,
    /// Where training stood.
    pub progress: Progress,
    /// One record per finished epoch.
    pub history: Vec<EpochRecord>,
    /// The training sources, so `--resume` needs no data flags (a single object in
    /// checkpoints written before several sources could be given).
    #[serde(deserialize_with = "one_or_many")]
    pub train_data: Vec<DataSource>,
    /// How each training source's classes map onto `classes` (empty in older checkpoints).
    #[serde(default)]
    pub class_mapping: Vec<SourceMapping>,
    /// The validation set, when there was one.
    pub val_data: Option<DataSource>,
    /// The tool that wrote it, e.g. `csra-host 0.1.0`.
    pub created_by: String,
}

/// A checkpoint read back: its description and its tensors.
#[derive(Debug)]
pub struct Checkpoint {
    /// The description.
    pub meta: CheckpointMeta,
    /// The description file it came from.
    pub path: PathBuf,
    /// Model variables by name, plus the optimiser's momentum buffers.
    pub tensors: HashMap<String, Tensor>,
}

impl Checkpoint {
    /// Reads a checkpoint description, or a run directory's [`LATEST`], and its tensor file.
    ///
    /// # Errors
    ///
    /// [`TrainError::Checkpoint`] naming the file when it is missing, not a csra checkpoint, of
    /// a newer version, or its tensor file cannot be read.
    pub fn read(path: &Path) -> Result<Self, TrainError> {
        let path = if path.is_dir() {
            path.join(LATEST)
        } else {
            path.to_path_buf()
        };
        let bad = |reason: String| TrainError::Checkpoint {
            path: path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            bad(format!(
                "cannot read it ({e}); pass a checkpoint .json or the run directory of `csra-host train`"
            ))
        })?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| bad(format!("not a checkpoint description (invalid JSON: {e})")))?;
        let format = value.get("format").and_then(serde_json::Value::as_str);
        if format != Some(FORMAT) {
            return Err(bad(format!(
                "not a csra checkpoint (format {}, expected `{FORMAT}`); pass the .json that \
                 `csra-host train` wrote, or its run directory",
                format.map_or_else(|| "missing".to_string(), |f| format!("`{f}`"))
            )));
        }
        let version = value.get("version").and_then(serde_json::Value::as_u64);
        if version.is_some_and(|v| v > u64::from(VERSION)) {
            return Err(bad(format!(
                "version {} is newer than this build reads ({VERSION}); update csra-host",
                version.unwrap_or_default()
            )));
        }
        let meta: CheckpointMeta = serde_json::from_value(value)
            .map_err(|e| bad(format!("damaged checkpoint description: {e}")))?;
        let weights = path.with_file_name(&meta.weights);
        let tensors = Tensor::read_safetensors(&weights)
            .map_err(|e| {
                bad(format!(
                    "cannot read its tensors {}: {e}",
                    weights.display()
                ))
            })?
            .into_iter()
            .collect();
        Ok(Self {
            meta,
            path,
            tensors,
        })
    }

    /// Copies the model variables into `vs`, which must hold the same architecture.
    ///
    /// # Errors
    ///
    /// [`TrainError::Checkpoint`] listing missing tensors or shape mismatches.
    pub fn restore(&self, vs: &mut VarStore) -> Result<(), TrainError> {
        let mut problems = Vec::new();
        let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        variables.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, mut var) in variables {
            match self.tensors.get(&name) {
                None => problems.push(format!("missing `{name}`")),
                Some(saved) if saved.size() != var.size() => problems.push(format!(
                    "`{name}` has shape {:?}, the model needs {:?}",
                    saved.size(),
                    var.size()
                )),
                Some(saved) => tch::no_grad(|| var.f_copy_(saved))?,
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        let arch = self.meta.model.arch;
        let backbone_names = self.tensors.keys().filter_map(|name| {
            name.strip_prefix(crate::BACKBONE_PREFIX)
                .and_then(|n| n.strip_prefix('.'))
        });
        let reason = match Arch::guess_from_names(backbone_names) {
            Some(found) if found != arch => format!(
                "its description says {arch} but its tensors are those of a {found}; pass the \
                 checkpoint .json that was written with these weights, or its run directory"
            ),
            _ => {
                let shown = problems.len().min(MAX_LISTED_PROBLEMS);
                let more = problems.len() - shown;
                let mut listed = problems[..shown].join("; ");
                if more > 0 {
                    listed.push_str(&format!("; and {more} more"));
                }
                format!("does not fit a {arch} model: {listed}")
            }
        };
        Err(TrainError::Checkpoint {
            path: self.path.clone(),
            reason,
        })
    }
}

/// Writes `NAME.safetensors` then `NAME.json` into `dir`, then points [`LATEST`] at them.
/// Returns the description's path.
///
/// # Errors
///
/// [`TrainError::Io`] naming the file that could not be written.
pub fn write(
    dir: &Path,
    name: &str,
    meta: &CheckpointMeta,
    tensors: &[(String, Tensor)],
) -> Result<PathBuf, TrainError> {
    let weights = dir.join(format!("{name}.safetensors"));
    write_tensors(&weights, tensors)?;
    let meta = CheckpointMeta {
        weights: format!("{name}.safetensors"),
        ..meta.clone()
    };
    let json = serde_json::to_vec_pretty(&meta).map_err(|e| TrainError::Checkpoint {
        path: dir.join(name),
        reason: format!("cannot serialise: {e}"),
    })?;
    let path = dir.join(format!("{name}.json"));
    for target in [&path, &dir.join(LATEST)] {
        csra_core::fsutil::write_atomic(target, &json).map_err(|source| TrainError::Io {
            path: target.clone(),
            source,
        })?;
    }
    Ok(path)
}

/// Safetensors through a temporary file in the same directory, renamed once complete.
fn write_tensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<(), TrainError> {
    let io = |source: std::io::Error| TrainError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".csra-tmp-")
        .suffix(".safetensors")
        .tempfile_in(dir)
        .map_err(io)?;
    let cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.to_device(Device::Cpu).contiguous()))
        .collect();
    Tensor::write_safetensors(&cpu, tmp.path())?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Reads `train_data` as a list, or as the one source older checkpoints hold.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<DataSource>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<DataSource>),
        One(DataSource),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::Many(sources) => sources,
        OneOrMany::One(source) => vec![source],
    })
}
