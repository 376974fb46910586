//! Image backbones in tch with torchvision's exact parameter names, so a torchvision
//! `state_dict` loads without renaming. Each stops at its final feature map `[N, d, h, w]`
//! (no pooling, no classifier): the CSRA head works on every location.

mod layers;
mod mobilenet_v2;
mod resnet;

use std::fmt;
use std::str::FromStr;

use csra_onnx::{GraphBuilder, Value};
use serde::{Deserialize, Serialize};
use tch::nn::Path;
use tch::{TchError, Tensor};
use thiserror::Error;

use crate::export::ExportError;
use mobilenet_v2::MobileNetV2;
use resnet::{ResNet, ResNetSpec};

/// A backbone architecture, named as torchvision names its model builders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Arch {
    /// ResNet-18: basic blocks [2, 2, 2, 2], 512 channels.
    #[serde(rename = "resnet18")]
    ResNet18,
    /// ResNet-34: basic blocks [3, 4, 6, 3], 512 channels.
    #[serde(rename = "resnet34")]
    ResNet34,
    /// ResNet-50: bottleneck blocks [3, 4, 6, 3], 2048 channels.
    #[serde(rename = "resnet50")]
    ResNet50,
    /// ResNet-101: bottleneck blocks [3, 4, 23, 3], 2048 channels.
    #[serde(rename = "resnet101")]
    ResNet101,
    /// MobileNetV2 (width 1.0): 1280 channels.
    #[serde(rename = "mobilenet_v2")]
    MobileNetV2,
}

/// A name that is not one of [`Arch::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown architecture {0:?}: expected one of resnet18, resnet34, resnet50, resnet101, mobilenet_v2")]
pub struct UnknownArch(pub String);

impl Arch {
    /// Every supported architecture.
    pub const ALL: [Arch; 5] = [
        Arch::ResNet18,
        Arch::ResNet34,
        Arch::ResNet50,
        Arch::ResNet101,
        Arch::MobileNetV2,
    ];

    /// The channel count d of the final feature map.
    pub fn feature_dim(self) -> i64 {
        match self.resnet_spec() {
            Some(spec) => spec.feature_dim(),
            None => mobilenet_v2::FEATURE_DIM,
        }
    }

    /// The side of the final feature map for a square input of side `input`: every backbone
    /// halves the resolution five times, rounding up as its stride-2 convolutions and pooling
    /// (kernel 3, padding 1; kernel 1, padding 0; kernel 7, padding 3) do.
    pub fn feature_size(self, input: usize) -> usize {
        (0..5).fold(input, |side, _| side.div_ceil(2))
    }

    /// torchvision's name for the architecture (`resnet50`, `mobilenet_v2`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::ResNet18 => "resnet18",
            Arch::ResNet34 => "resnet34",
            Arch::ResNet50 => "resnet50",
            Arch::ResNet101 => "resnet101",
            Arch::MobileNetV2 => "mobilenet_v2",
        }
    }

    /// The architecture a torchvision state dict was written for, judged by its names: used
    /// to tell the user which `--arch` a weights file needs.
    pub fn guess_from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<Arch> {
        let names: Vec<&str> = names.into_iter().collect();
        let has = |name: &str| names.contains(&name);
        if has("features.18.0.weight") && has("features.17.conv.2.weight") {
            return Some(Arch::MobileNetV2);
        }
        let layer3_blocks = names
            .iter()
            .filter_map(|n| n.strip_prefix("layer3.")?.strip_suffix(".conv1.weight"))
            .count();
        let bottleneck = has("layer1.0.conv3.weight");
        let basic = has("layer1.0.conv2.weight") && !bottleneck;
        Arch::ALL.into_iter().find(|arch| {
            arch.resnet_spec().is_some_and(|spec| {
                (spec.bottleneck && bottleneck || !spec.bottleneck && basic)
                    && spec.blocks[2] == layer3_blocks
            })
        })
    }

    fn resnet_spec(self) -> Option<ResNetSpec> {
        let (bottleneck, blocks) = match self {
            Arch::ResNet18 => (false, [2, 2, 2, 2]),
            Arch::ResNet34 => (false, [3, 4, 6, 3]),
            Arch::ResNet50 => (true, [3, 4, 6, 3]),
            Arch::ResNet101 => (true, [3, 4, 23, 3]),
            Arch::MobileNetV2 => return None,
        };
        Some(ResNetSpec { bottleneck, blocks })
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = UnknownArch;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        Arch::ALL
            .into_iter()
            .find(|arch| arch.name() == lower)
            .ok_or_else(|| UnknownArch(s.to_owned()))
    }
}

/// A backbone network: its parameters live under the [`Path`] it was built on, with
/// torchvision's names (`features.0.0.weight`, `layer1.0.conv1.weight`).
#[derive(Debug)]
pub struct Backbone {
    arch: Arch,
    net: Net,
}

#[derive(Debug)]
enum Net {
    ResNet(ResNet),
    MobileNetV2(MobileNetV2),
}

impl Backbone {
    /// Creates the backbone's parameters under `path`, initialised as torchvision does.
    pub fn new(path: &Path<'_>, arch: Arch) -> Result<Self, TchError> {
        let net = match arch.resnet_spec() {
            Some(spec) => Net::ResNet(ResNet::new(path, spec)?),
            None => Net::MobileNetV2(MobileNetV2::new(path)?),
        };
        Ok(Self { arch, net })
    }

    /// The architecture.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// The final feature map `[N, d, h, w]` of `[N, 3, H, W]` images. BatchNorm normalises with
    /// batch statistics and updates its running ones only when `bn_train`.
    pub fn forward(&self, images: &Tensor, bn_train: bool) -> Tensor {
        match &self.net {
            Net::ResNet(net) => net.forward(images, bn_train),
            Net::MobileNetV2(net) => net.forward(images, bn_train),
        }
    }

    /// Appends the eval-mode network to `g`, reading the image tensor `images`, and returns
    /// the final feature map: every convolution with its BatchNorm folded in, ReLU6 as Clip,
    /// residual adds and depthwise groups kept.
    pub fn emit(&self, g: &mut GraphBuilder, images: &Value) -> Result<Value, ExportError> {
        match &self.net {
            Net::ResNet(net) => net.emit(g, images),
            Net::MobileNetV2(net) => net.emit(g, images),
        }
    }
}
