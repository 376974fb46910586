//! Pretrained weights: torchvision `.pth` files as `torch.save` writes them, and
//! `.safetensors` files, loaded into a backbone by name with every shape checked.

mod load;
mod pth;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use tch::{TchError, Tensor};
use thiserror::Error;

use crate::backbone::Arch;

pub use load::{load_backbone, LoadReport};

/// What to do with a state dict this reader cannot take.
const EXPORT_HINT: &str = "if PyTorch loads the file, export it with \
     `safetensors.torch.save_file(model.state_dict(), \"weights.safetensors\")` and use that";

/// A weights file that cannot be read or does not fit the model.
#[derive(Debug, Error)]
pub enum WeightsError {
    /// The file cannot be opened or read.
    #[error("{}: cannot read the weights file: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Neither a `torch.save` zip archive nor a safetensors file.
    #[error("{}: not a weights file ({found}); expected a state dict written by torch.save \
             (.pth, .pt) or a .safetensors file", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// What its first bytes look like.
        found: String,
    },
    /// A `torch.save` file from before PyTorch 1.6 (a bare pickle, not a zip archive).
    #[error("{}: this is the legacy torch.save format (before PyTorch 1.6), which is not \
             supported; re-save it with a current torch.save, or {EXPORT_HINT}", path.display())]
    LegacyPth {
        /// The file.
        path: PathBuf,
    },
    /// The file starts like a zip archive but is not a readable one.
    #[error("{}: broken zip archive ({source}); the file is truncated or corrupt, or not \
             written by torch.save", path.display())]
    Zip {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: zip::result::ZipError,
    },
    /// The content is not a state dict this reader understands.
    #[error("{}: {message}; {EXPORT_HINT}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
    /// The safetensors reader rejected the file.
    #[error("{}: not a valid safetensors file: {source}", path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: TchError,
    },
    /// libtorch refused a tensor.
    #[error("{}: libtorch cannot build {name}: {source}", path.display())]
    Tch {
        /// The file.
        path: PathBuf,
        /// The tensor or storage.
        name: String,
        /// The cause.
        source: TchError,
    },
    /// The weights are for another architecture than the model's.
    #[error("{}: these are {file_arch} weights but the model is {model_arch}; use --arch \
             {file_arch}", path.display())]
    WrongArch {
        /// The file.
        path: PathBuf,
        /// The architecture the file's names belong to.
        file_arch: Arch,
        /// The model's architecture.
        model_arch: Arch,
    },
    /// The `VarStore` has no backbone variables to load into.
    #[error("cannot load {}: the VarStore has no variables under \"backbone.\"; build the \
             CsraModel on this VarStore's root first", path.display())]
    NoBackbone {
        /// The file.
        path: PathBuf,
    },
    /// Backbone tensors the file does not have.
    #[error("{}: {} backbone tensors are missing, e.g. {}; {hint}", path.display(),
            missing.len(), missing.iter().take(5).cloned().collect::<Vec<_>>().join(", "))]
    Missing {
        /// The file.
        path: PathBuf,
        /// The missing names, torchvision style (`features.0.0.weight`).
        missing: Vec<String>,
        /// Which architecture the file looks like.
        hint: String,
    },
    /// A tensor whose shape or type differs from the model's.
    #[error("{}: tensor {name} is {found} in the file but the model expects {expected}; {hint}",
            path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The tensor, torchvision style.
        name: String,
        /// The model's shape and type.
        expected: String,
        /// The file's shape and type.
        found: String,
        /// Which architecture the file looks like.
        hint: String,
    },
}

impl WeightsError {
    fn invalid(path: &Path, message: impl Into<String>) -> Self {
        WeightsError::Invalid {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// Every tensor of a weights file, in file order, as CPU tensors: a state dict written by
/// `torch.save` (a zip archive) or a `.safetensors` file, told apart by their content.
pub fn read_tensors(path: &Path) -> Result<Vec<(String, Tensor)>, WeightsError> {
    match sniff(path)? {
        Format::Pth => pth::read_pth(path),
        Format::Safetensors => {
            Tensor::read_safetensors(path).map_err(|source| WeightsError::Safetensors {
                path: path.to_owned(),
                source,
            })
        }
    }
}

/// A weights file read by [`read_checkpoint`]: its state dict and what surrounded it.
#[derive(Debug)]
pub struct CheckpointTensors {
    /// The state dict's tensors, in file order, as CPU tensors.
    pub tensors: Vec<(String, Tensor)>,
    /// The top-level key a training checkpoint kept them under; `None` for a plain state dict.
    pub nested_under: Option<String>,
    /// The checkpoint's other top-level entries, each with a short description.
    pub other_entries: Vec<(String, String)>,
    /// Class names the checkpoint's metadata records (mmpretrain, mmcls).
    pub classes: Option<Vec<String>>,
}

/// Like [`read_tensors`], and a `torch.save`d training checkpoint may nest the state dict
/// under `state_dict` or `model` next to plain metadata (mmpretrain's `{"meta": ...,
/// "state_dict": ...}`), which is reported rather than refused.
pub fn read_checkpoint(path: &Path) -> Result<CheckpointTensors, WeightsError> {
    match sniff(path)? {
        Format::Pth => {
            let (tensors, file) = pth::read_pth_checkpoint(path)?;
            Ok(CheckpointTensors {
                tensors,
                nested_under: file.nested_under,
                other_entries: file.other_entries,
                classes: file.classes,
            })
        }
        Format::Safetensors => Ok(CheckpointTensors {
            tensors: read_tensors(path)?,
            nested_under: None,
            other_entries: Vec::new(),
            classes: None,
        }),
    }
}

enum Format {
    Pth,
    Safetensors,
}

/// Tells the formats apart by their first bytes, whatever the file is called.
fn sniff(path: &Path) -> Result<Format, WeightsError> {
    let io_error = |source| WeightsError::Io {
        path: path.to_owned(),
        source,
    };
    let mut head = Vec::with_capacity(16);
    File::open(path)
        .map_err(io_error)?
        .take(16)
        .read_to_end(&mut head)
        .map_err(io_error)?;
    match head.as_slice() {
        [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] => Ok(Format::Pth),
        // A bare pickle (protocol 2 and up) holding torch's legacy magic number.
        [csra_pickle::op::PROTO, 2..=5, ..] => Err(WeightsError::LegacyPth {
            path: path.to_owned(),
        }),
        // safetensors: an 8-byte little-endian header length, then the JSON header.
        [_, _, _, _, _, _, _, _, b'{', ..] => Ok(Format::Safetensors),
        [] => Err(WeightsError::UnknownFormat {
            path: path.to_owned(),
            found: "the file is empty".into(),
        }),
        bytes => Err(WeightsError::UnknownFormat {
            path: path.to_owned(),
            found: format!("it starts with the bytes {bytes:02x?}"),
        }),
    }
}
