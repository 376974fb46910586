//! torchvision's MobileNetV2 (width 1.0) `features`, with its parameter names:
//! `features.0.{0,1}` (stem), `features.1..=17.conv.*` (inverted residuals),
//! `features.18.{0,1}` (the final 1×1 convolution to 1280 channels).

use csra_onnx::{GraphBuilder, Op, Value};
use tch::nn::Path;
use tch::{TchError, Tensor};

use super::layers::{emit_relu6, ConvBn, ConvSpec};
use crate::export::ExportError;

/// The final feature map's channels.
pub(crate) const FEATURE_DIM: i64 = 1280;

/// torchvision's `inverted_residual_setting`: expansion t, output channels c, repeats n,
/// stride s of the first repeat.
const SETTINGS: [(i64, i64, usize, i64); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

const STEM_CHANNELS: i64 = 32;

/// An inverted residual block: optional 1×1 expansion, 3×3 depthwise, 1×1 linear projection.
#[derive(Debug)]
struct InvertedResidual {
    /// Expansion (when t ≠ 1) and depthwise convolutions, each followed by ReLU6.
    activated: Vec<ConvBn>,
    project: ConvBn,
    residual: bool,
}

impl InvertedResidual {
    fn new(
        path: &Path<'_>,
        in_channels: i64,
        out_channels: i64,
        stride: i64,
        expansion: i64,
    ) -> Result<Self, TchError> {
        let conv = path / "conv";
        let hidden = in_channels * expansion;
        let mut shapes = Vec::new();
        if expansion != 1 {
            shapes.push(ConvSpec::new(in_channels, hidden, 1, 1));
        }
        shapes.push(ConvSpec::new(hidden, hidden, 3, stride).grouped(hidden));
        // Conv2dNormActivation sub-modules are named `conv.i.0` (conv) and `conv.i.1` (bn).
        let activated = shapes
            .iter()
            .enumerate()
            .map(|(i, &shape)| {
                let block = &conv / i;
                ConvBn::new(&(&block / 0), &(&block / 1), shape)
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The projection is a bare Conv2d and BatchNorm2d: `conv.i` and `conv.i+1`.
        let i = activated.len();
        let project = ConvBn::new(
            &(&conv / i),
            &(&conv / (i + 1)),
            ConvSpec::new(hidden, out_channels, 1, 1),
        )?;
        Ok(Self {
            activated,
            project,
            residual: stride == 1 && in_channels == out_channels,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let hidden = self.activated.iter().fold(x.shallow_clone(), |y, layer| {
            layer.forward(&y, train).relu6_()
        });
        let y = self.project.forward(&hidden, train);
        if self.residual {
            y + x
        } else {
            y
        }
    }

    /// The ONNX form, its nodes named after torchvision's `name.conv.i`.
    fn emit(&self, g: &mut GraphBuilder, x: &Value, name: &str) -> Result<Value, ExportError> {
        let mut hidden = x.clone();
        for (i, layer) in self.activated.iter().enumerate() {
            let conv = layer.emit(g, &hidden, &format!("{name}.conv.{i}"))?;
            hidden = emit_relu6(g, &conv, &format!("{name}.conv.{i}.relu6"))?;
        }
        let project = format!("{name}.conv.{}", self.activated.len());
        let y = self.project.emit(g, &hidden, &project)?;
        Ok(if self.residual {
            g.node(&format!("{name}.add"), Op::new("Add"), &[&y, x])
        } else {
            y
        })
    }
}

/// MobileNetV2's `features`: `[N, 3, H, W]` → `[N, 1280, H/32, W/32]`.
#[derive(Debug)]
pub(crate) struct MobileNetV2 {
    stem: ConvBn,
    blocks: Vec<InvertedResidual>,
    head: ConvBn,
}

impl MobileNetV2 {
    /// Creates every parameter under `path / "features"` with torchvision's names and
    /// initialisation.
    pub fn new(path: &Path<'_>) -> Result<Self, TchError> {
        let features = path / "features";
        let stem = ConvBn::new(
            &(&features / 0 / 0),
            &(&features / 0 / 1),
            ConvSpec::new(3, STEM_CHANNELS, 3, 2),
        )?;
        let mut blocks = Vec::new();
        let mut in_channels = STEM_CHANNELS;
        for &(expansion, out_channels, repeats, first_stride) in &SETTINGS {
            for r in 0..repeats {
                let stride = if r == 0 { first_stride } else { 1 };
                let index = blocks.len() + 1;
                blocks.push(InvertedResidual::new(
                    &(&features / index),
                    in_channels,
                    out_channels,
                    stride,
                    expansion,
                )?);
                in_channels = out_channels;
            }
        }
        let index = blocks.len() + 1;
        let head = ConvBn::new(
            &(&features / index / 0),
            &(&features / index / 1),
            ConvSpec::new(in_channels, FEATURE_DIM, 1, 1),
        )?;
        Ok(Self { stem, blocks, head })
    }

    /// The final feature map; BatchNorm uses batch statistics only when `bn_train`.
    pub fn forward(&self, x: &Tensor, bn_train: bool) -> Tensor {
        let x = self.stem.forward(x, bn_train).relu6_();
        let x = self
            .blocks
            .iter()
            .fold(x, |x, block| block.forward(&x, bn_train));
        self.head.forward(&x, bn_train).relu6_()
    }

    /// The ONNX form of [`MobileNetV2::forward`] in eval mode, from `x` to the final feature
    /// map; ReLU6 becomes `Clip(0, 6)`, depthwise convolutions keep their `group`.
    pub fn emit(&self, g: &mut GraphBuilder, x: &Value) -> Result<Value, ExportError> {
        let stem = self.stem.emit(g, x, "features.0")?;
        let mut x = emit_relu6(g, &stem, "features.0.relu6")?;
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.emit(g, &x, &format!("features.{}", i + 1))?;
        }
        let last = format!("features.{}", self.blocks.len() + 1);
        let head = self.head.emit(g, &x, &last)?;
        emit_relu6(g, &head, &format!("{last}.relu6"))
    }
}
