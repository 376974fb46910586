//! torchvision's ResNet (v1.5: the stride sits in the 3×3 convolution) up to `layer4`, with its
//! parameter names: `conv1`, `bn1`, `layerL.B.{conv1,bn1,...}`, `layerL.B.downsample.{0,1}`.

use csra_onnx::{GraphBuilder, Op, Value};
use tch::nn::Path;
use tch::{TchError, Tensor};

use super::layers::{emit_conv_bn, emit_relu, BatchNorm, Conv, ConvBn, ConvSpec};
use crate::export::ExportError;

/// Which residual block a ResNet stacks, and how many per stage.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResNetSpec {
    /// Bottleneck (1×1, 3×3, 1×1 with 4× expansion) or basic (two 3×3) blocks.
    pub bottleneck: bool,
    /// Blocks in `layer1` to `layer4`.
    pub blocks: [usize; 4],
}

impl ResNetSpec {
    /// The channels of the final feature map.
    pub fn feature_dim(self) -> i64 {
        512 * self.expansion()
    }

    fn expansion(self) -> i64 {
        if self.bottleneck {
            4
        } else {
            1
        }
    }
}

/// One residual block: basic (two 3×3 convolutions) or bottleneck (1×1, 3×3, 1×1).
#[derive(Debug)]
struct Block {
    /// torchvision's name of the block, `layerL.B`, for the ONNX node names.
    name: String,
    convs: Vec<ConvBn>,
    /// The 1×1 projection on the shortcut of a block that changes shape.
    downsample: Option<ConvBn>,
}

impl Block {
    fn new(
        path: &Path<'_>,
        name: String,
        spec: ResNetSpec,
        in_channels: i64,
        planes: i64,
        stride: i64,
    ) -> Result<Self, TchError> {
        let out_channels = planes * spec.expansion();
        let shapes = if spec.bottleneck {
            vec![
                ConvSpec::new(in_channels, planes, 1, 1),
                ConvSpec::new(planes, planes, 3, stride),
                ConvSpec::new(planes, out_channels, 1, 1),
            ]
        } else {
            vec![
                ConvSpec::new(in_channels, planes, 3, stride),
                ConvSpec::new(planes, planes, 3, 1),
            ]
        };
        let convs = shapes
            .into_iter()
            .enumerate()
            .map(|(i, shape)| {
                let n = i + 1;
                ConvBn::new(
                    &(path / format!("conv{n}")),
                    &(path / format!("bn{n}")),
                    shape,
                )
            })
            .collect::<Result<_, _>>()?;
        let downsample = if stride != 1 || in_channels != out_channels {
            let path = path / "downsample";
            let shape = ConvSpec::new(in_channels, out_channels, 1, stride);
            Some(ConvBn::new(&(&path / 0), &(&path / 1), shape)?)
        } else {
            None
        };
        Ok(Self {
            name,
            convs,
            downsample,
        })
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let last = self.convs.len() - 1;
        let mut y = x.shallow_clone();
        for (i, conv) in self.convs.iter().enumerate() {
            y = conv.forward(&y, train);
            if i < last {
                y = y.relu_();
            }
        }
        let shortcut = match &self.downsample {
            Some(projection) => projection.forward(x, train),
            None => x.shallow_clone(),
        };
        (y + shortcut).relu_()
    }

    fn emit(&self, g: &mut GraphBuilder, x: &Value) -> Result<Value, ExportError> {
        let name = &self.name;
        let last = self.convs.len() - 1;
        let mut y = x.clone();
        for (i, conv) in self.convs.iter().enumerate() {
            y = conv.emit(g, &y, &format!("{name}.conv{}", i + 1))?;
            if i < last {
                y = emit_relu(g, &y, &format!("{name}.relu{}", i + 1));
            }
        }
        let shortcut = match &self.downsample {
            Some(projection) => projection.emit(g, x, &format!("{name}.downsample"))?,
            None => x.clone(),
        };
        let sum = g.node(&format!("{name}.add"), Op::new("Add"), &[&y, &shortcut]);
        Ok(emit_relu(g, &sum, &format!("{name}.out")))
    }
}

/// ResNet-18/34/50/101 without `avgpool` and `fc`: `[N, 3, H, W]` → `[N, 512·e, H/32, W/32]`.
#[derive(Debug)]
pub(crate) struct ResNet {
    conv1: Conv,
    bn1: BatchNorm,
    layers: Vec<Block>,
}

impl ResNet {
    /// Creates every parameter under `path` with torchvision's names and initialisation.
    pub fn new(path: &Path<'_>, spec: ResNetSpec) -> Result<Self, TchError> {
        let conv1 = Conv::new(&(path / "conv1"), ConvSpec::new(3, 64, 7, 2))?;
        let bn1 = BatchNorm::new(&(path / "bn1"), 64)?;
        let mut layers = Vec::new();
        let mut in_channels = 64;
        for (stage, &count) in spec.blocks.iter().enumerate() {
            let planes = 64 << stage;
            let layer = path / format!("layer{}", stage + 1);
            for b in 0..count {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                layers.push(Block::new(
                    &(&layer / b),
                    format!("layer{}.{b}", stage + 1),
                    spec,
                    in_channels,
                    planes,
                    stride,
                )?);
                in_channels = planes * spec.expansion();
            }
        }
        Ok(Self { conv1, bn1, layers })
    }

    /// The final feature map; BatchNorm uses batch statistics only when `bn_train`.
    pub fn forward(&self, x: &Tensor, bn_train: bool) -> Tensor {
        let x = self.bn1.forward(&self.conv1.forward(x), bn_train).relu_();
        let x = x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        self.layers
            .iter()
            .fold(x, |x, block| block.forward(&x, bn_train))
    }

    /// The ONNX form of [`ResNet::forward`] in eval mode, from `x` to the final feature map.
    pub fn emit(&self, g: &mut GraphBuilder, x: &Value) -> Result<Value, ExportError> {
        let x = emit_conv_bn(g, x, "conv1", &self.conv1, &self.bn1)?;
        let x = emit_relu(g, &x, "relu");
        let pool = Op::new("MaxPool")
            .ints("kernel_shape", &[3, 3])
            .ints("strides", &[2, 2])
            .ints("pads", &[1, 1, 1, 1]);
        let mut x = g.node("maxpool", pool, &[&x]);
        for block in &self.layers {
            x = block.emit(g, &x)?;
        }
        Ok(x)
    }
}
