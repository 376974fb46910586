//! The model manifest: the versioned JSON that sits beside every exported `.onnx`.
//!
//! It carries everything a runtime needs besides the network itself: the classes in output
//! order, the input tensor, the pixel pipeline (resize policy, scale, mean, std), the head,
//! the output names, the decision thresholds, where the model came from and how well it did.
//!
//! A model `model.onnx` has its manifest in `model.manifest.json` beside it
//! ([`manifest_path_for`]). Reading one ([`Manifest::read`]) checks it completely and reports
//! every problem at once, not just the first.
//!
//! ```json
//! {
//!   "format": "csra-manifest",
//!   "version": 1,
//!   "model": "model.onnx",
//!   "num_classes": 2,
//!   "classes": ["cat", "dog"],
//!   "input": { "name": "input", "layout": "nchw", "width": 224, "height": 224,
//!              "color": "rgb", "dynamic_batch": false },
//!   "preprocess": { "resize": { "kind": "squash" }, "scale": 0.00392156862745098,
//!                   "mean": [0, 0, 0], "std": [1, 1, 1] },
//!   "head": { "variant": "max", "lambda": 0.2, "temperatures": ["max"], "normalize": true },
//!   "outputs": { "logits": "logits", "probs": "probs", "attention": null },
//!   "thresholds": { "default": 0.5, "per_class": { "dog": 0.6 } },
//!   "provenance": { "backbone": "mobilenet_v2", "dataset": "coco-mini train2017",
//!                   "epochs": 12, "commit": "0123abc", "created_by": "csra-host 0.1.0" },
//!   "metrics": { "dataset": "coco-mini val2017", "values": { "map": 0.25 } }
//! }
//! ```

mod check;
mod resize;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::head::HeadSpec;
use crate::labels::LabelSet;

pub use resize::Rect;

/// The value of the `format` field, which tells a manifest from any other JSON.
pub const MANIFEST_FORMAT: &str = "csra-manifest";

/// The manifest version this build writes and the newest it reads.
pub const MANIFEST_VERSION: u32 = 1;

/// The largest input side a manifest may ask for. CSRA models run at 224 to 576 pixels; a
/// bound keeps a mistyped or hostile manifest from asking for a tensor of gigabytes, which
/// would abort the process instead of failing with an error.
pub const MAX_INPUT_SIDE: u32 = 4096;

/// The manifest file for an ONNX model: `model.onnx` → `model.manifest.json`, in the same folder.
pub fn manifest_path_for(onnx: &Path) -> PathBuf {
    onnx.with_extension("manifest.json")
}

/// A model manifest. See the [module docs](self) for the JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// The manifest version, [`MANIFEST_VERSION`] when written by this build.
    pub version: u32,
    /// The ONNX file, relative to the manifest's folder.
    pub model: PathBuf,
    /// The number of classes; equals `classes.len()` and the network's output width.
    pub num_classes: usize,
    /// Class names in output order.
    pub classes: Vec<String>,
    /// The network input.
    pub input: InputSpec,
    /// How camera or file pixels become the input tensor.
    pub preprocess: Preprocess,
    /// The head the network ends with.
    pub head: HeadSpec,
    /// The names of the network outputs.
    pub outputs: OutputNames,
    /// Decision thresholds on the sigmoid probabilities.
    pub thresholds: Thresholds,
    /// Where the model came from.
    pub provenance: Provenance,
    /// Measured quality, when the model was evaluated.
    #[serde(default)]
    pub metrics: Option<MeasuredMetrics>,
}

/// The network's input tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// The ONNX input name.
    pub name: String,
    /// The memory layout of the batch.
    pub layout: Layout,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The channel order of the three colour channels.
    pub color: ColorOrder,
    /// Whether the batch dimension is symbolic (`N`) rather than fixed to 1.
    #[serde(default)]
    pub dynamic_batch: bool,
}

/// Tensor layout of the input batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `[N, 3, H, W]`, as PyTorch and every csra export use.
    Nchw,
    /// `[N, H, W, 3]`.
    Nhwc,
}

/// Order of the colour channels in the input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorOrder {
    /// Red, green, blue: the official CSRA and torchvision order.
    Rgb,
    /// Blue, green, red: OpenCV-style models.
    Bgr,
}

/// How an image of any size becomes `width × height`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ResizePolicy {
    /// Resize straight to `width × height`, ignoring aspect ratio (the official CSRA pipeline).
    Squash,
    /// Resize so the shorter side is `side / crop_fraction`, then take the centre
    /// `width × height` (torchvision's Resize(256) + CenterCrop(224) is `crop_fraction = 0.875`).
    CenterCrop {
        /// The fraction of the resized shorter side that the crop keeps, in (0, 1].
        crop_fraction: f32,
    },
}

/// The pixel pipeline: resize, then `value = (pixel · scale − mean[c]) / std[c]` per channel,
/// where `pixel` is the 8-bit value 0..=255.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// The resize policy.
    pub resize: ResizePolicy,
    /// Multiplies the 0..=255 pixel first (1/255 maps to [0, 1]).
    pub scale: f32,
    /// Per-channel mean, subtracted after scaling, in the input's channel order.
    pub mean: [f32; 3],
    /// Per-channel standard deviation, divided by last, in the input's channel order.
    pub std: [f32; 3],
}

impl Preprocess {
    /// The official CSRA pipeline: squash resize, RGB in [0, 1], no mean or std.
    pub fn official() -> Self {
        Self {
            resize: ResizePolicy::Squash,
            scale: 1.0 / 255.0,
            mean: [0.0; 3],
            std: [1.0; 3],
        }
    }

    /// Maps one 8-bit pixel value of channel `c` to the network's input value.
    pub fn normalize(&self, pixel: u8, c: usize) -> f32 {
        (f32::from(pixel) * self.scale - self.mean[c]) / self.std[c]
    }
}

/// The names of the network's outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputNames {
    /// Raw scores `[N, C]`.
    pub logits: String,
    /// Sigmoid probabilities `[N, C]`.
    pub probs: String,
    /// The last head's attention `[N, C, h, w]`, when the model was exported with it.
    #[serde(default)]
    pub attention: Option<String>,
}

impl Default for OutputNames {
    fn default() -> Self {
        Self {
            logits: "logits".into(),
            probs: "probs".into(),
            attention: None,
        }
    }
}

/// Decision thresholds on the sigmoid probabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// The threshold for every class not listed in `per_class` (the paper's metrics use 0.5).
    pub default: f32,
    /// Class-specific thresholds, by class name.
    #[serde(default)]
    pub per_class: BTreeMap<String, f32>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            default: 0.5,
            per_class: BTreeMap::new(),
        }
    }
}

/// Where a model came from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The backbone architecture, e.g. `mobilenet_v2` or `resnet101`.
    pub backbone: String,
    /// The training data, e.g. `coco-mini train2017`.
    pub dataset: String,
    /// Training epochs; 0 for a training-free graft.
    pub epochs: u32,
    /// The source commit of the tool that made the model, when known.
    #[serde(default)]
    pub commit: Option<String>,
    /// The tool and version that wrote the manifest, e.g. `csra-host 0.1.0`.
    pub created_by: String,
    /// Anything a user of the model must know about how it was made, e.g. that its extra
    /// heads replicate one trained classifier and serve latency measurements only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Quality measured on a named evaluation set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasuredMetrics {
    /// The evaluation set, e.g. `coco-mini val2017`.
    pub dataset: String,
    /// Metric name to value, fractions in [0, 1] (`map`, `cf1`, `of1`, ...).
    pub values: BTreeMap<String, f64>,
}

/// An error reading, checking or writing a manifest.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The manifest file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{}:{line}:{column}: not valid JSON: {message}", path.display())]
    Syntax {
        /// The manifest file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The manifest is JSON but breaks one or more rules.
    #[error("{}: invalid manifest:\n{}\nfix the file, or re-export the model with `csra-host export` to get a fresh one", path.display(), Problems(problems))]
    Invalid {
        /// The manifest file.
        path: PathBuf,
        /// Every problem found, one sentence each.
        problems: Vec<String>,
    },
    /// The manifest disagrees with the network it describes.
    #[error("{}: the manifest lists {expected} classes but {what} has {actual}; re-export the model, or fix `classes` and `num_classes` to match the network", path.display())]
    ClassCount {
        /// The manifest file.
        path: PathBuf,
        /// The manifest's class count.
        expected: usize,
        /// What was compared, e.g. "the ONNX output `logits`".
        what: String,
        /// Its class count.
        actual: usize,
    },
}

struct Problems<'a>(&'a [String]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(|p| format!("  - {p}")).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl Manifest {
    /// A manifest for `classes` with the current format and version, the official preprocessing,
    /// the default output names and thresholds, and no metrics.
    pub fn new(
        model: impl Into<PathBuf>,
        classes: &LabelSet,
        input: InputSpec,
        head: HeadSpec,
        provenance: Provenance,
    ) -> Self {
        Self {
            format: MANIFEST_FORMAT.to_owned(),
            version: MANIFEST_VERSION,
            model: model.into(),
            num_classes: classes.len(),
            classes: classes.names().to_vec(),
            input,
            preprocess: Preprocess::official(),
            head,
            outputs: OutputNames::default(),
            thresholds: Thresholds::default(),
            provenance,
            metrics: None,
        }
    }

    /// Reads and fully checks a manifest file.
    pub fn read(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and fully checks manifest JSON; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ManifestError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|err| ManifestError::Syntax {
                path: path.to_owned(),
                line: err.line(),
                column: err.column(),
                message: crate::json_error_message(&err),
            })?;
        let invalid = |problems| ManifestError::Invalid {
            path: path.to_owned(),
            problems,
        };
        let problems = check::structure(&value);
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        let manifest: Manifest = serde_path_to_error::deserialize(value).map_err(|err| {
            invalid(vec![format!(
                "`{}`: {}",
                err.path(),
                crate::json_error_message(err.inner())
            )])
        })?;
        manifest.validate_at(path)?;
        Ok(manifest)
    }

    /// Checks the rules that tie fields together (class count, thresholds, pixel pipeline).
    pub fn validate(&self) -> Result<(), ManifestError> {
        self.validate_at(Path::new("<manifest>"))
    }

    fn validate_at(&self, path: &Path) -> Result<(), ManifestError> {
        let problems = check::semantics(self);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ManifestError::Invalid {
                path: path.to_owned(),
                problems,
            })
        }
    }

    /// Checks and writes the manifest as pretty JSON, atomically.
    pub fn write(&self, path: &Path) -> Result<(), ManifestError> {
        self.validate_at(path)?;
        let io = |source| ManifestError::Io {
            path: path.to_owned(),
            source,
        };
        let mut json = serde_json::to_string_pretty(self).map_err(|e| io(e.into()))?;
        json.push('\n');
        crate::fsutil::write_atomic(path, json.as_bytes()).map_err(io)
    }

    /// The classes as a [`LabelSet`].
    pub fn labels(&self) -> Result<LabelSet, crate::labels::LabelError> {
        LabelSet::new(self.classes.iter().cloned(), "manifest classes")
    }

    /// The threshold for class `index`: its per-class value, or the default.
    pub fn threshold(&self, index: usize) -> f32 {
        self.classes
            .get(index)
            .and_then(|name| self.thresholds.per_class.get(name))
            .copied()
            .unwrap_or(self.thresholds.default)
    }

    /// Fails unless `actual`, the class count of `what` (an ONNX output, a checkpoint), matches.
    pub fn expect_num_classes(
        &self,
        path: &Path,
        what: &str,
        actual: usize,
    ) -> Result<(), ManifestError> {
        if actual == self.num_classes {
            Ok(())
        } else {
            Err(ManifestError::ClassCount {
                path: path.to_owned(),
                expected: self.num_classes,
                what: what.to_owned(),
                actual,
            })
        }
    }
}

#[cfg(test)]
mod tests;
