//! The files of an export: `model.onnx`, `model.manifest.json` and `labels.txt` in one folder,
//! each written atomically (temporary file, then rename), the manifest last so it never
//! describes a model that is not there yet.

use std::path::{Path, PathBuf};

use crate::error::OnnxError;
use crate::model_io::write_model;
use crate::pb::ModelProto;
use csra_core::labels::LabelSet;
use csra_core::manifest::{manifest_path_for, Manifest};

/// The model file's name inside an export folder.
pub const MODEL_FILE: &str = "model.onnx";
/// The labels file's name inside an export folder.
pub const LABELS_FILE: &str = "labels.txt";

/// Where an export's files go: what `csra-host export` and every `graft` command write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFiles {
    /// The folder.
    pub dir: PathBuf,
    /// `DIR/model.onnx`.
    pub model: PathBuf,
    /// `DIR/model.manifest.json`.
    pub manifest: PathBuf,
    /// `DIR/labels.txt`.
    pub labels: PathBuf,
}

impl ExportFiles {
    /// The files of an export into `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        let model = dir.join(MODEL_FILE);
        Self {
            dir: dir.to_owned(),
            manifest: manifest_path_for(&model),
            labels: dir.join(LABELS_FILE),
            model,
        }
    }

    /// Creates the folder (and its parents) and writes the three files.
    ///
    /// # Errors
    ///
    /// [`OnnxError::Io`] naming the folder or file that could not be written.
    pub fn write(
        &self,
        model: &ModelProto,
        manifest: &Manifest,
        labels: &LabelSet,
    ) -> Result<(), OnnxError> {
        self.create_dir()?;
        write_model(&self.model, model)?;
        labels.write(&self.labels)?;
        manifest.write(&self.manifest)?;
        Ok(())
    }

    /// Creates the folder and its parents.
    ///
    /// # Errors
    ///
    /// [`OnnxError::Io`] naming the folder.
    pub fn create_dir(&self) -> Result<(), OnnxError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| OnnxError::Io {
            path: self.dir.clone(),
            source,
        })
    }

    /// Removes the three files, as far as they exist: an export that failed its verification
    /// must not be mistaken for a good one.
    pub fn remove(&self) {
        for path in [&self.manifest, &self.labels, &self.model] {
            if let Err(err) = std::fs::remove_file(path) {
                if err.kind() != std::io::ErrorKind::NotFound {
                    log::warn!("cannot remove {}: {err}", path.display());
                }
            }
        }
    }
}
