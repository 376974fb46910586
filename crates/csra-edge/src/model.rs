//! Which model to run: `--model DIR|model.onnx` (or the shipped default) resolved to an ONNX
//! file and its manifest, and the check that the two describe the same network.

use std::path::{Path, PathBuf};

use csra_core::manifest::{manifest_path_for, Layout, Manifest, ManifestError};
use csra_core::LabelSet;
use csra_onnx::inspect::TensorInfo;
use csra_onnx::pb::tensor_proto::DataType;
use csra_onnx::{Dim, ModelInfo, OnnxError, ShapeDisplay, LABELS_FILE};
use thiserror::Error;

/// The shipped default model, relative to the current directory (a checkout's root).
pub const DEFAULT_MODEL_DIR: &str = "models/mobilenet_v2-coco-voc-mini";

/// The file name a model folder's manifest has when the folder holds one model.
const MANIFEST_FILE: &str = "model.manifest.json";

/// An error finding or checking a model.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The path given with `--model` does not exist.
    #[error("model {}: no such file or folder; pass --model DIR (holding model.onnx and model.manifest.json) or --model path/to/model.onnx", path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// No `--model` was given and the shipped default is not there.
    #[error("no --model given and the default model is missing (looked in {}); pass --model DIR or --model model.onnx", Tried(tried))]
    NoDefault {
        /// The folders looked in, in order.
        tried: Vec<PathBuf>,
    },
    /// A model folder without exactly one manifest.
    #[error("{}: {reason}; a model folder holds model.onnx and model.manifest.json as `csra-host export` writes them", dir.display())]
    Folder {
        /// The folder.
        dir: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// An `.onnx` file without the manifest csra-edge needs beside it.
    #[error("{}: no manifest beside it ({} is missing); csra-edge needs one for the input size, the preprocessing and the class names: export the model with `csra-host export`, or turn any GAP + FC classifier into a model with `csra-edge graft`, which writes both", onnx.display(), manifest.display())]
    NoManifest {
        /// The ONNX file.
        onnx: PathBuf,
        /// Where its manifest should be.
        manifest: PathBuf,
    },
    /// The labels file beside the manifest names other classes.
    #[error("{} and {} list different classes ({reason}); they come from different exports: re-export the model, or delete the stale labels file", labels.display(), manifest.display())]
    Labels {
        /// The labels file.
        labels: PathBuf,
        /// The manifest.
        manifest: PathBuf,
        /// The first difference.
        reason: String,
    },
    /// The manifest cannot be read or is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The ONNX file cannot be read.
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    /// The manifest and the ONNX file disagree.
    #[error("{} and {} disagree:\n{}\nre-export the model so both come from the same run, or fix the manifest", manifest.display(), onnx.display(), problems.join("\n"))]
    Mismatch {
        /// The ONNX file.
        onnx: PathBuf,
        /// The manifest file.
        manifest: PathBuf,
        /// Every disagreement, one line each.
        problems: Vec<String>,
    },
}

struct Tried<'a>(&'a [PathBuf]);

impl std::fmt::Display for Tried<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let paths: Vec<String> = self.0.iter().map(|p| p.display().to_string()).collect();
        f.write_str(&paths.join(", "))
    }
}

/// A model's two files and its parsed manifest.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// The ONNX network.
    pub onnx: PathBuf,
    /// The manifest file.
    pub manifest_path: PathBuf,
    /// The manifest, fully checked on its own.
    pub manifest: Manifest,
}

impl ModelFiles {
    /// Resolves `--model`: a folder (its `model.manifest.json`, or its only `*.manifest.json`),
    /// an `.onnx` file (the manifest beside it) or a `.manifest.json` file (the ONNX it names).
    /// `None` means the shipped default ([`default_model_dirs`]).
    pub fn locate(model: Option<&Path>) -> Result<Self, ModelError> {
        match model {
            Some(path) => Self::open(path),
            None => {
                let tried = default_model_dirs();
                let found = tried.iter().find(|dir| dir.join(MANIFEST_FILE).is_file());
                match found {
                    Some(dir) => {
                        log::info!(
                            "no --model given: using the default model in {}",
                            dir.display()
                        );
                        Self::open(dir)
                    }
                    None => Err(ModelError::NoDefault { tried }),
                }
            }
        }
    }

    /// Resolves one model path as [`ModelFiles::locate`] does.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let files = Self::resolve(path)?;
        files.check_labels()?;
        Ok(files)
    }

    fn resolve(path: &Path) -> Result<Self, ModelError> {
        if path.is_dir() {
            let manifest_path = folder_manifest(path)?;
            let manifest = Manifest::read(&manifest_path)?;
            let onnx = path.join(&manifest.model);
            return Ok(Self {
                onnx,
                manifest_path,
                manifest,
            });
        }
        if !path.is_file() {
            return Err(ModelError::NotFound {
                path: path.to_owned(),
            });
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(".manifest.json") {
            let manifest = Manifest::read(path)?;
            let folder = path.parent().unwrap_or(Path::new("."));
            return Ok(Self {
                onnx: folder.join(&manifest.model),
                manifest_path: path.to_owned(),
                manifest,
            });
        }
        let manifest_path = manifest_path_for(path);
        if !manifest_path.exists() {
            return Err(ModelError::NoManifest {
                onnx: path.to_owned(),
                manifest: manifest_path,
            });
        }
        let manifest = Manifest::read(&manifest_path)?;
        Ok(Self {
            onnx: path.to_owned(),
            manifest_path,
            manifest,
        })
    }

    /// The labels file an export writes beside its manifest, when there is one, must list
    /// the manifest's classes: a stale one would mislabel every result of whoever reads it.
    fn check_labels(&self) -> Result<(), ModelError> {
        let folder = self.manifest_path.parent().unwrap_or(Path::new("."));
        let path = folder.join(LABELS_FILE);
        if !path.is_file() {
            return Ok(());
        }
        let labels = LabelSet::read(&path).map_err(|e| ModelError::Labels {
            labels: path.clone(),
            manifest: self.manifest_path.clone(),
            reason: e.to_string(),
        })?;
        let classes = &self.manifest.classes;
        let reason = if labels.len() != classes.len() {
            format!("{} names against {}", labels.len(), classes.len())
        } else {
            match labels.names().iter().zip(classes).position(|(a, b)| a != b) {
                None => return Ok(()),
                Some(i) => format!(
                    "class {i} is {:?} in one and {:?} in the other",
                    labels.names()[i],
                    classes[i]
                ),
            }
        };
        Err(ModelError::Labels {
            labels: path,
            manifest: self.manifest_path.clone(),
            reason,
        })
    }

    /// Reads the ONNX file's interface and checks it against the manifest: the input's name,
    /// layout and size, and the outputs' names and class counts.
    pub fn check_onnx(&self) -> Result<ModelInfo, ModelError> {
        let info = csra_onnx::inspect(&self.onnx)?;
        let problems = interface_problems(&self.manifest, &info);
        if problems.is_empty() {
            Ok(info)
        } else {
            Err(self.mismatch(problems))
        }
    }

    /// A [`ModelError::Mismatch`] for these files.
    pub fn mismatch(&self, problems: Vec<String>) -> ModelError {
        ModelError::Mismatch {
            onnx: self.onnx.clone(),
            manifest: self.manifest_path.clone(),
            problems,
        }
    }

    /// The input tensor's shape with batch 1, in the manifest's layout.
    pub fn input_shape(&self) -> [usize; 4] {
        let input = &self.manifest.input;
        let (h, w) = (input.height as usize, input.width as usize);
        match input.layout {
            Layout::Nchw => [1, 3, h, w],
            Layout::Nhwc => [1, h, w, 3],
        }
    }
}

/// Where the default model is looked for: under the current directory, then in the checkout
/// this binary was built from.
pub fn default_model_dirs() -> Vec<PathBuf> {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // crates/csra-edge → the checkout's root.
    let checkout = crate_dir.ancestors().nth(2).unwrap_or(crate_dir);
    vec![
        PathBuf::from(DEFAULT_MODEL_DIR),
        checkout.join(DEFAULT_MODEL_DIR),
    ]
}

fn folder_manifest(dir: &Path) -> Result<PathBuf, ModelError> {
    let standard = dir.join(MANIFEST_FILE);
    if standard.is_file() {
        return Ok(standard);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| ModelError::Folder {
        dir: dir.to_owned(),
        reason: format!("cannot list it ({e})"),
    })?;
    let manifests: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".manifest.json"))
        })
        .collect();
    match manifests.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ModelError::Folder {
            dir: dir.to_owned(),
            reason: "it holds no *.manifest.json".into(),
        }),
        _ => Err(ModelError::Folder {
            dir: dir.to_owned(),
            reason: format!(
                "it holds {} manifests; pass the .onnx file you mean",
                manifests.len()
            ),
        }),
    }
}

/// Every way the ONNX interface in `info` disagrees with `manifest`.
pub fn interface_problems(manifest: &Manifest, info: &ModelInfo) -> Vec<String> {
    let mut problems = Vec::new();
    let input = &manifest.input;
    match info.inputs.as_slice() {
        [only] => {
            if only.name != input.name {
                problems.push(format!(
                    "the manifest's input is `{}`, the ONNX input is `{}`",
                    input.name, only.name
                ));
            }
            if let Some(problem) = not_float32(only, "input") {
                problems.push(problem);
            }
            let (h, w) = (input.height as usize, input.width as usize);
            let expected = match input.layout {
                Layout::Nchw => [3, h, w],
                Layout::Nhwc => [h, w, 3],
            };
            if let Some(dims) = declared_shape(only) {
                let fixed: Vec<Option<usize>> = dims.iter().skip(1).map(Dim::fixed).collect();
                let matches = dims.len() == 4
                    && fixed
                        .iter()
                        .zip(expected)
                        .all(|(d, e)| d.is_none_or(|d| d == e));
                if !matches {
                    problems.push(format!(
                        "the manifest's input is {}×{} {:?} ([N, {}, {}, {}]), the ONNX input `{}` is {}",
                        input.width,
                        input.height,
                        input.layout,
                        expected[0],
                        expected[1],
                        expected[2],
                        only.name,
                        ShapeDisplay(dims)
                    ));
                }
            }
        }
        inputs => problems.push(format!(
            "the ONNX model has {} inputs; csra-edge runs single-input image models",
            inputs.len()
        )),
    }
    let outputs = &manifest.outputs;
    let mut check_output = |name: &str, what: &str, rank: usize| {
        let Some(output) = info.outputs.iter().find(|o| o.name == name) else {
            let names: Vec<String> = info
                .outputs
                .iter()
                .map(|o| format!("`{}`", o.name))
                .collect();
            problems.push(format!(
                "the manifest's {what} output `{name}` is not an ONNX output (it has {})",
                names.join(", ")
            ));
            return;
        };
        problems.extend(not_float32(output, what));
        if let Some(dims) = declared_shape(output).filter(|d| d.len() != rank) {
            problems.push(format!(
                "the ONNX {what} output `{name}` is {}, csra-edge reads [N, C{}] (rank {rank})",
                ShapeDisplay(dims),
                if rank == 4 { ", h, w" } else { "" }
            ));
        }
        let classes = declared_shape(output).and_then(|d| d.get(1).and_then(Dim::fixed));
        if let Some(classes) = classes.filter(|&c| c != manifest.num_classes) {
            problems.push(format!(
                "the manifest lists {} classes, the ONNX {what} output `{name}` has {classes}",
                manifest.num_classes
            ));
        }
    };
    check_output(&outputs.logits, "logits", 2);
    check_output(&outputs.probs, "probs", 2);
    if let Some(attention) = &outputs.attention {
        check_output(attention, "attention", 4);
    }
    problems
}

/// A problem when `tensor` is declared with another element type than float32: csra-edge
/// feeds and reads f32 (an FP16 export keeps f32 at its boundary and casts inside).
fn not_float32(tensor: &TensorInfo, what: &str) -> Option<String> {
    let declared = tensor.tensor_type.as_ref()?.elem_type;
    (declared != DataType::Float).then(|| {
        format!(
            "the ONNX {what} `{}` is {}, csra-edge feeds and reads float32; export with f32 inputs and outputs (csra-host export --fp16 keeps them f32)",
            tensor.name,
            declared.as_str_name()
        )
    })
}

fn declared_shape(tensor: &TensorInfo) -> Option<&[Dim]> {
    tensor.tensor_type.as_ref()?.shape.as_deref()
}
