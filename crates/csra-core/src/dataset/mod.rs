//! Dataset readers: every supported annotation format becomes the same list of [`Sample`]s.
//!
//! | format | reader |
//! |---|---|
//! | COCO `instances_*.json` | [`coco::read`] |
//! | PASCAL VOC `Annotations/*.xml` | [`voc::read_annotations`] |
//! | PASCAL VOC `ImageSets/Main/<class>_<split>.txt` | [`voc::read_imagesets`] |
//! | WIDER-Attribute JSON | [`wider::read`] |
//! | the official CSRA JSON lists | [`json_list::read`] |
//! | `path,label1;label2` CSV | [`csv_list::read`] |
//!
//! Readers never turn a bad record into a silent default: they fail with a [`DatasetError`] that
//! names the file, the record and what is wrong. Lines are numbered from 1; entries of a JSON
//! array or XML objects (`record #0`, `object #0`) from 0, as their index.

pub mod coco;
pub mod csv_list;
pub mod json_list;
pub mod voc;
pub mod wider;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::labels::LabelSet;

/// An axis-aligned box in pixels: top-left corner, width and height (the COCO/WIDER convention).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

/// One training or evaluation example.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The image file.
    pub image: PathBuf,
    /// Multi-hot target, one entry per class: `true` where the class is present.
    pub target: Vec<bool>,
    /// Ignore mask, one entry per class: `true` where the label is unknown (VOC "difficult"-only,
    /// WIDER "unspecified") and must be left out of scoring. An ignored class is never a target.
    pub ignore: Vec<bool>,
    /// The region of the image the labels describe (WIDER persons); `None` for the whole image.
    pub bbox: Option<BBox>,
}

/// One class's label in one sample, as annotation files encode it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Label {
    /// The class is present.
    Positive,
    /// The class is absent.
    Negative,
    /// Unknown (VOC "difficult" only, WIDER "unspecified"): left out of scoring.
    Ignored,
}

impl Label {
    /// The ternary code of the VOC ImageSets and WIDER files: 1 present, -1 absent, 0 unknown.
    pub(crate) fn from_ternary(value: i64) -> Option<Self> {
        match value {
            1 => Some(Self::Positive),
            -1 => Some(Self::Negative),
            0 => Some(Self::Ignored),
            _ => None,
        }
    }
}

impl Sample {
    /// A sample whose target and ignore mask come from one label per class.
    pub(crate) fn from_labels(image: PathBuf, labels: &[Label], bbox: Option<BBox>) -> Self {
        Self {
            image,
            target: labels.iter().map(|&l| l == Label::Positive).collect(),
            ignore: labels.iter().map(|&l| l == Label::Ignored).collect(),
            bbox,
        }
    }
}

/// An image a reader left out on purpose, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The image that was left out.
    pub image: PathBuf,
    /// Why it was left out.
    pub reason: String,
}

/// The result of reading a dataset: its classes, its samples and what was skipped.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The classes; every sample's `target` and `ignore` have this length.
    pub classes: LabelSet,
    /// The samples, in the order the reader documents.
    pub samples: Vec<Sample>,
    /// Images left out on purpose (for example COCO images without annotations).
    pub skipped: Vec<Skipped>,
}

impl Dataset {
    /// The number of samples in which each class is a (non-ignored) positive.
    pub fn positive_counts(&self) -> Vec<usize> {
        self.count_per_class(|s, c| s.target[c])
    }

    /// The number of samples in which each class is ignored.
    pub fn ignored_counts(&self) -> Vec<usize> {
        self.count_per_class(|s, c| s.ignore[c])
    }

    fn count_per_class(&self, hit: impl Fn(&Sample, usize) -> bool) -> Vec<usize> {
        (0..self.classes.len())
            .map(|c| self.samples.iter().filter(|s| hit(s, c)).count())
            .collect()
    }

    /// All targets as one row-major `[N, C]` matrix, the layout [`crate::metrics`] takes.
    pub fn target_matrix(&self) -> Vec<bool> {
        self.samples
            .iter()
            .flat_map(|s| s.target.iter().copied())
            .collect()
    }

    /// All ignore masks as one row-major `[N, C]` matrix, the layout [`crate::metrics`] takes.
    pub fn ignore_matrix(&self) -> Vec<bool> {
        self.samples
            .iter()
            .flat_map(|s| s.ignore.iter().copied())
            .collect()
    }
}

/// An error reading a dataset. Every variant names the file; record errors also name the line
/// or record and say what is wrong.
#[derive(Debug, Error)]
pub enum DatasetError {
    /// The file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file is not well-formed JSON, XML or CSV.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser reported.
        message: String,
    },
    /// One record (a line, an image entry, an annotation) is wrong.
    #[error("{}: {record}: {reason}", path.display())]
    Record {
        /// The file.
        path: PathBuf,
        /// Which record, for example `line 12` or `annotation #34 (id 284647)`.
        record: String,
        /// What is wrong with it, and how to fix it where that is not obvious.
        reason: String,
    },
    /// The file as a whole is not in the expected format.
    #[error("{}: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what format was expected.
        reason: String,
    },
    /// The class names given or found are unusable.
    #[error(transparent)]
    Labels(#[from] crate::labels::LabelError),
}

impl DatasetError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// A record-level error.
    pub(crate) fn record(
        path: impl Into<PathBuf>,
        record: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::Record {
            path: path.into(),
            record: record.into(),
            reason: reason.into(),
        }
    }

    /// A serde_json error, with its line and column, for `path`.
    pub(crate) fn json(path: impl Into<PathBuf>, err: &serde_json::Error) -> Self {
        Self::Syntax {
            path: path.into(),
            line: err.line(),
            column: err.column(),
            message: crate::json_error_message(err),
        }
    }
}

/// Reads and deserializes a whole JSON file; shape errors (a missing key, a wrong type) come
/// back as [`DatasetError::Syntax`] with their position.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, DatasetError> {
    // Parsing from one buffer is much faster than from a reader on large files (full COCO).
    let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| DatasetError::json(path, &e))
}

impl BBox {
    /// Reads a JSON `[x, y, width, height]` array; the error says what was found instead.
    pub(crate) fn from_json(value: &serde_json::Value) -> Result<Self, String> {
        let numbers: Option<Vec<f32>> = value
            .as_array()
            .and_then(|items| items.iter().map(|v| v.as_f64().map(|n| n as f32)).collect());
        match numbers.as_deref() {
            Some(&[x, y, width, height]) => Ok(Self {
                x,
                y,
                width,
                height,
            }),
            _ => Err(format!(
                "bbox must be 4 numbers [x, y, width, height], found {value}"
            )),
        }
    }
}
