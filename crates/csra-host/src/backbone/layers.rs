//! The two building blocks every backbone is made of: a bias-free convolution and BatchNorm,
//! with torchvision's parameter names, defaults and initialisation; and their ONNX form, one
//! `Conv` with BatchNorm folded in, plus the activations.

use csra_onnx::batchnorm::{fold, BatchNormParams};
use csra_onnx::{GraphBuilder, Op, Value};
use tch::nn::init::{FanInOut, NonLinearity, NormalOrUniform};
use tch::nn::{Init, Path};
use tch::{Kind, TchError, Tensor};

use crate::export::{tensor_values, ExportError};

/// torchvision's `nn.BatchNorm2d` defaults.
const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

/// torchvision initialises backbone convolutions with `kaiming_normal_(mode="fan_out",
/// nonlinearity="relu")`.
const CONV_INIT: Init = Init::Kaiming {
    dist: NormalOrUniform::Normal,
    fan: FanInOut::FanOut,
    non_linearity: NonLinearity::ReLU,
};

/// A square 2-D convolution without bias (`weight` `[out, in/groups, k, k]`).
#[derive(Debug)]
pub(crate) struct Conv {
    weight: Tensor,
    stride: i64,
    padding: i64,
    groups: i64,
}

/// The shape and placement of a [`Conv`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvSpec {
    pub in_channels: i64,
    pub out_channels: i64,
    pub kernel: i64,
    pub stride: i64,
    pub groups: i64,
}

impl ConvSpec {
    /// A dense convolution; padding is `kernel / 2`, as torchvision uses everywhere.
    pub fn new(in_channels: i64, out_channels: i64, kernel: i64, stride: i64) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel,
            stride,
            groups: 1,
        }
    }

    /// The same convolution split into `groups` groups (depthwise when it equals the channels).
    pub fn grouped(self, groups: i64) -> Self {
        Self { groups, ..self }
    }
}

impl Conv {
    /// Creates `weight` under `path`.
    pub fn new(path: &Path<'_>, spec: ConvSpec) -> Result<Self, TchError> {
        let weight = path.f_var(
            "weight",
            &[
                spec.out_channels,
                spec.in_channels / spec.groups,
                spec.kernel,
                spec.kernel,
            ],
            CONV_INIT,
        )?;
        Ok(Self {
            weight,
            stride: spec.stride,
            padding: spec.kernel / 2,
            groups: spec.groups,
        })
    }

    /// Applies the convolution.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(
            &self.weight,
            None::<Tensor>,
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            self.groups,
        )
    }
}

/// `nn.BatchNorm2d` with torchvision's names: `weight`, `bias`, `running_mean`, `running_var`
/// and `num_batches_tracked`, so a state dict loads name for name.
#[derive(Debug)]
pub(crate) struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    num_batches_tracked: Tensor,
}

impl BatchNorm {
    /// Creates the parameters (weight 1, bias 0) and statistics (mean 0, variance 1) under `path`.
    pub fn new(path: &Path<'_>, channels: i64) -> Result<Self, TchError> {
        let device = path.device();
        Ok(Self {
            weight: path.f_ones("weight", &[channels])?,
            bias: path.f_zeros("bias", &[channels])?,
            running_mean: path.f_zeros_no_train("running_mean", &[channels])?,
            running_var: path.f_ones_no_train("running_var", &[channels])?,
            num_batches_tracked: path.add(
                "num_batches_tracked",
                Tensor::f_zeros([], (Kind::Int64, device))?,
                false,
            ),
        })
    }

    /// Normalises with batch statistics and updates the running ones when `train`, and with
    /// the running statistics otherwise. The affine parameters train either way.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        if train {
            // Only bookkeeping with momentum 0.1, but kept so a saved state dict matches
            // torchvision's after the same steps.
            let mut tracked = self.num_batches_tracked.shallow_clone();
            tch::no_grad(|| tracked += 1);
        }
        x.batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            BN_MOMENTUM,
            BN_EPS,
            true,
        )
    }
}

/// torchvision's `Conv2dNormActivation` without its activation: convolution then BatchNorm,
/// named `<path>.<conv>` and `<path>.<bn>`.
#[derive(Debug)]
pub(crate) struct ConvBn {
    conv: Conv,
    bn: BatchNorm,
}

impl ConvBn {
    /// Creates the pair under the given paths.
    pub fn new(conv_path: &Path<'_>, bn_path: &Path<'_>, spec: ConvSpec) -> Result<Self, TchError> {
        Ok(Self {
            conv: Conv::new(conv_path, spec)?,
            bn: BatchNorm::new(bn_path, spec.out_channels)?,
        })
    }

    /// Convolution then BatchNorm.
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.bn.forward(&self.conv.forward(x), train)
    }

    /// The ONNX form: one `Conv` named `name`, with the BatchNorm folded in.
    pub fn emit(&self, g: &mut GraphBuilder, x: &Value, name: &str) -> Result<Value, ExportError> {
        emit_conv_bn(g, x, name, &self.conv, &self.bn)
    }
}

/// Emits `conv` followed by eval-mode `bn` as one ONNX `Conv` named `name`, BatchNorm folded
/// into its weight and bias.
pub(crate) fn emit_conv_bn(
    g: &mut GraphBuilder,
    x: &Value,
    name: &str,
    conv: &Conv,
    bn: &BatchNorm,
) -> Result<Value, ExportError> {
    let dims: Vec<usize> = conv
        .weight
        .size()
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect();
    let (gamma, beta) = (tensor_values(&bn.weight)?, tensor_values(&bn.bias)?);
    let (mean, var) = (
        tensor_values(&bn.running_mean)?,
        tensor_values(&bn.running_var)?,
    );
    let (weight, bias) = fold(
        &tensor_values(&conv.weight)?,
        BatchNormParams {
            gamma: &gamma,
            beta: &beta,
            mean: &mean,
            var: &var,
            eps: BN_EPS,
        },
    );
    let weight = g.initializer_f32(&format!("{name}.weight"), &dims, &weight)?;
    let bias = g.initializer_f32(&format!("{name}.bias"), &dims[..1], &bias)?;
    let kernel: Vec<i64> = conv.weight.size().into_iter().skip(2).collect();
    let op = Op::new("Conv")
        .ints("kernel_shape", &kernel)
        .ints("strides", &[conv.stride, conv.stride])
        .ints("pads", &[conv.padding; 4])
        .int("group", conv.groups);
    Ok(g.node(name, op, &[x, &weight, &bias]))
}

/// `Relu`.
pub(crate) fn emit_relu(g: &mut GraphBuilder, x: &Value, name: &str) -> Value {
    g.node(name, Op::new("Relu"), &[x])
}

/// ReLU6 as `Clip(x, 0, 6)`, its bounds shared by every Clip of the graph as 0-d tensors
/// (ONNX Runtime and TensorRT want scalars there).
pub(crate) fn emit_relu6(
    g: &mut GraphBuilder,
    x: &Value,
    name: &str,
) -> Result<Value, ExportError> {
    let bound = |g: &mut GraphBuilder, name: &str, value: f32| match g.value(name) {
        Some(existing) => Ok(existing),
        None => g.initializer_f32(name, &[], &[value]),
    };
    let low = bound(g, "relu6.min", 0.0)?;
    let high = bound(g, "relu6.max", 6.0)?;
    Ok(g.node(name, Op::new("Clip"), &[x, &low, &high]))
}
