//! Loading a torchvision state dict into a model's backbone, name for name.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use tch::nn::VarStore;
use tch::Tensor;

use super::{read_tensors, WeightsError};
use crate::backbone::Arch;
use crate::model::BACKBONE_PREFIX;

/// What [`load_backbone`] loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Backbone tensors set from the file: all of them.
    pub loaded: usize,
    /// Tensors of the file that the backbone does not have (an ImageNet classifier, say), in
    /// file order.
    pub unexpected: Vec<String>,
}

/// Sets every `backbone.<name>` variable of `vs` from the tensor `<name>` of a torchvision
/// weights file ([`super::read_tensors`]).
///
/// Every backbone variable must be in the file with the same shape and a compatible type
/// (floating point or integer); half-precision tensors are widened. Nothing is changed
/// unless all of them fit. Tensors the backbone does not have are reported, not loaded.
pub fn load_backbone(vs: &mut VarStore, path: &Path) -> Result<LoadReport, WeightsError> {
    let tensors = read_tensors(path)?;
    let prefix = format!("{BACKBONE_PREFIX}.");
    let mut targets: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter_map(|(name, var)| Some((name.strip_prefix(&prefix)?.to_owned(), var)))
        .collect();
    if targets.is_empty() {
        return Err(WeightsError::NoBackbone {
            path: path.to_owned(),
        });
    }
    targets.sort_by(|a, b| a.0.cmp(&b.0));
    let sources: HashMap<&str, &Tensor> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();

    let file_arch = Arch::guess_from_names(tensors.iter().map(|(n, _)| n.as_str()));
    let model_arch = Arch::guess_from_names(targets.iter().map(|(n, _)| n.as_str()));
    if let (Some(file_arch), Some(model_arch)) = (file_arch, model_arch) {
        if file_arch != model_arch {
            return Err(WeightsError::WrongArch {
                path: path.to_owned(),
                file_arch,
                model_arch,
            });
        }
    }
    let hint = match file_arch {
        Some(arch) => format!("the file looks like {arch} weights (--arch {arch})"),
        None => "the file's names fit none of resnet18, resnet34, resnet50, resnet101 and \
                 mobilenet_v2 as torchvision names them"
            .to_owned(),
    };

    let missing: Vec<String> = targets
        .iter()
        .filter(|(name, _)| !sources.contains_key(name.as_str()))
        .map(|(name, _)| name.clone())
        .collect();
    if !missing.is_empty() {
        return Err(WeightsError::Missing {
            path: path.to_owned(),
            missing,
            hint,
        });
    }
    let pairs: Vec<(&str, &Tensor, &Tensor)> = targets
        .iter()
        .filter_map(|(name, var)| Some((name.as_str(), var, *sources.get(name.as_str())?)))
        .collect();
    for &(name, var, source) in &pairs {
        if var.size() != source.size() || var.is_floating_point() != source.is_floating_point() {
            return Err(WeightsError::Mismatch {
                path: path.to_owned(),
                name: name.to_owned(),
                expected: describe(var),
                found: describe(source),
                hint,
            });
        }
    }
    for (name, var, source) in pairs {
        let mut var = var.shallow_clone();
        tch::no_grad(|| var.f_copy_(source)).map_err(|source| WeightsError::Tch {
            path: path.to_owned(),
            name: name.to_owned(),
            source,
        })?;
    }

    let known: HashSet<&str> = targets.iter().map(|(n, _)| n.as_str()).collect();
    let unexpected = tensors
        .iter()
        .map(|(name, _)| name)
        .filter(|name| !known.contains(name.as_str()))
        .cloned()
        .collect();
    Ok(LoadReport {
        loaded: targets.len(),
        unexpected,
    })
}

fn describe(tensor: &Tensor) -> String {
    format!("{:?} {:?}", tensor.size(), tensor.kind())
}
