//! Which model to run: `--model DIR|model.onnx` (or the shipped default) resolved to an ONNX
//! file and its manifest, and the check that the two describe the same network.

use std::path::{Path, PathBuf};

use csra_core::manifest::{manifest_path_for, Layout, Manifest, ManifestError};
use csra_onnx::inspect::TensorInfo;
use csra_onnx::{Dim, ModelInfo, OnnxError, ShapeDisplay};
use thiserror::Error;

/// The shipped default model, relative to the current directory (a checkout's root).
pub const DEFAULT_MODEL_DIR: &str = "models/mobilenet_v2-coco-mini";

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
        let manifest = Manifest::read(&manifest_path)?;
        Ok(Self {
            onnx: path.to_owned(),
            manifest_path,
            manifest,
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
    let mut check_output =
        |name: &str, what: &str| match info.outputs.iter().find(|o| o.name == name) {
            None => problems.push(format!(
                "the manifest's {what} output `{name}` is not an ONNX output (it has {})",
                info.outputs
                    .iter()
                    .map(|o| format!("`{}`", o.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Some(output) => {
                let classes = declared_shape(output).and_then(|d| d.get(1).and_then(Dim::fixed));
                if let Some(classes) = classes.filter(|&c| c != manifest.num_classes) {
                    problems.push(format!(
                    "the manifest lists {} classes, the ONNX {what} output `{name}` has {classes}",
                    manifest.num_classes
                ));
                }
            }
        };
    check_output(&outputs.logits, "logits");
    check_output(&outputs.probs, "probs");
    if let Some(attention) = &outputs.attention {
        check_output(attention, "attention");
    }
    problems
}

fn declared_shape(tensor: &TensorInfo) -> Option<&[Dim]> {
    tensor.tensor_type.as_ref()?.shape.as_deref()
}
