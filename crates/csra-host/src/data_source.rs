//! Which dataset to read and how: the `--data`/`--format` arguments, kept in checkpoints so a
//! run can be resumed or evaluated without repeating them.

use std::fmt;
use std::path::{Path, PathBuf};

use csra_core::dataset::{coco, csv_list, json_list, voc, wider};
use csra_core::{Dataset, DatasetError, LabelSet};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The dataset formats `csra-core` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DataFormat {
    /// COCO instances JSON; `images` is the image folder.
    Coco,
    /// A VOCdevkit year folder (`Annotations/`, `ImageSets/Main/`, `JPEGImages/`); `split`
    /// names the image set.
    Voc,
    /// The 20 official VOC `ImageSets/Main/<class>_<split>.txt` files; `annotations` is that
    /// folder.
    VocImagesets,
    /// WIDER-Attribute JSON (one sample per person box).
    Wider,
    /// The official CSRA JSON list (`img_path` + `target`); needs `labels`.
    Json,
    /// CSV: an image column and one 0/1 column per class; needs `labels`.
    Csv,
}

/// One dataset split on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSource {
    /// How to read it.
    pub format: DataFormat,
    /// The annotation file or folder.
    pub annotations: PathBuf,
    /// The image folder (for lists: the folder relative paths start from).
    pub images: PathBuf,
    /// The split name, for VOC formats (`trainval`, `test`, ...).
    pub split: Option<String>,
    /// The labels file, for JSON and CSV lists.
    pub labels: Option<PathBuf>,
}

/// A data source that cannot be resolved or read.
#[derive(Debug, Error)]
pub enum DataSourceError {
    /// `--data DIR` matched no known layout.
    #[error(
        "{dir}: not a known dataset layout (expected annotations/instances_<split>.json with \
         <split>/ images for COCO, or Annotations/ + ImageSets/Main/ + JPEGImages/ for VOC); \
         give --format, --annotations and --images instead"
    )]
    UnknownLayout {
        /// The folder given.
        dir: PathBuf,
    },
    /// A VOC format without a split.
    #[error("{format:?} needs a split (for example --split trainval)")]
    MissingSplit {
        /// The format.
        format: DataFormat,
    },
    /// A list format without a labels file.
    #[error("{path}: a {format:?} list needs --labels FILE (one class name per line)")]
    MissingLabels {
        /// The list.
        path: PathBuf,
        /// The format.
        format: DataFormat,
    },
    /// The labels file could not be read.
    #[error(transparent)]
    Labels(#[from] csra_core::labels::LabelError),
    /// The reader failed.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
}

impl DataSource {
    /// Recognises a dataset folder: COCO (`annotations/instances_<split>.json` + `<split>/`)
    /// or a VOCdevkit year folder.
    ///
    /// # Errors
    ///
    /// [`DataSourceError::UnknownLayout`] when neither matches.
    pub fn detect(dir: &Path, split: &str) -> Result<Self, DataSourceError> {
        let coco_ann = dir
            .join("annotations")
            .join(format!("instances_{split}.json"));
        if coco_ann.is_file() {
            return Ok(Self {
                format: DataFormat::Coco,
                annotations: coco_ann,
                images: dir.join(split),
                split: None,
                labels: None,
            });
        }
        if dir.join("Annotations").is_dir() && dir.join("ImageSets").join("Main").is_dir() {
            return Ok(Self {
                format: DataFormat::Voc,
                annotations: dir.to_path_buf(),
                images: dir.join("JPEGImages"),
                split: Some(split.to_string()),
                labels: None,
            });
        }
        Err(DataSourceError::UnknownLayout {
            dir: dir.to_path_buf(),
        })
    }

    /// A short human name for manifests and reports: `coco-mini val2017` for a COCO folder
    /// laid out as [`DataSource::detect`] expects, `VOC2007 test` for a VOCdevkit year, else
    /// the format and annotation path.
    pub fn short_name(&self) -> String {
        let file_name = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        match self.format {
            DataFormat::Coco => {
                let split = self
                    .annotations
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.strip_prefix("instances_"));
                let root = self.annotations.parent().and_then(Path::parent);
                match (root, split) {
                    (Some(root), Some(split)) => format!("{} {split}", file_name(root)),
                    _ => self.to_string(),
                }
            }
            DataFormat::Voc => match &self.split {
                Some(split) => format!("{} {split}", file_name(&self.annotations)),
                None => self.to_string(),
            },
            _ => self.to_string(),
        }
    }

    /// Reads the split with the matching `csra-core` reader.
    ///
    /// # Errors
    ///
    /// [`DataSourceError`] naming the file and what is wrong.
    pub fn read(&self) -> Result<Dataset, DataSourceError> {
        let split = || {
            self.split.as_deref().ok_or(DataSourceError::MissingSplit {
                format: self.format,
            })
        };
        let labels = || -> Result<LabelSet, DataSourceError> {
            let path = self
                .labels
                .as_ref()
                .ok_or_else(|| DataSourceError::MissingLabels {
                    path: self.annotations.clone(),
                    format: self.format,
                })?;
            Ok(LabelSet::read(path)?)
        };
        let dataset = match self.format {
            DataFormat::Coco => coco::read(&self.annotations, &self.images)?,
            DataFormat::Voc => voc::read_annotations(&self.annotations, split()?)?,
            DataFormat::VocImagesets => {
                voc::read_imagesets(&self.annotations, split()?, &self.images)?
            }
            DataFormat::Wider => wider::read(&self.annotations, &self.images)?,
            DataFormat::Json => json_list::read(
                &self.annotations,
                &labels()?,
                &self.images,
                json_list::TargetEncoding::Auto,
            )?,
            DataFormat::Csv => csv_list::read(&self.annotations, &labels()?, &self.images)?,
        };
        Ok(dataset)
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use clap::ValueEnum;
        let format = self
            .format
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        write!(f, "{format} {}", self.annotations.display())?;
        if let Some(split) = &self.split {
            write!(f, " ({split})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_coco_and_voc_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let coco = dir.path().join("coco");
        std::fs::create_dir_all(coco.join("annotations")).unwrap();
        std::fs::write(coco.join("annotations/instances_val2017.json"), "{}").unwrap();
        let s = DataSource::detect(&coco, "val2017").unwrap();
        assert_eq!(s.format, DataFormat::Coco);
        assert_eq!(s.images, coco.join("val2017"));

        let voc = dir.path().join("VOC2007");
        std::fs::create_dir_all(voc.join("Annotations")).unwrap();
        std::fs::create_dir_all(voc.join("ImageSets/Main")).unwrap();
        let s = DataSource::detect(&voc, "test").unwrap();
        assert_eq!(
            (s.format, s.split.as_deref()),
            (DataFormat::Voc, Some("test"))
        );

        let err = DataSource::detect(dir.path(), "test")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--format"), "{err}");
    }

    #[test]
    fn list_formats_ask_for_labels() {
        let s = DataSource {
            format: DataFormat::Json,
            annotations: "train.json".into(),
            images: ".".into(),
            split: None,
            labels: None,
        };
        let err = s.read().unwrap_err().to_string();
        assert!(err.contains("--labels"), "{err}");
    }
}
