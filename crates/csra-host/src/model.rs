//! A CSRA model: a backbone and a head, with their parameters in one `VarStore`.

use csra_core::head::{HeadError, HeadSpec};
use serde::{Deserialize, Serialize};
use tch::nn::{Path, VarStore};
use tch::{TchError, Tensor};
use thiserror::Error;

use crate::backbone::{Arch, Backbone};
use crate::head::Head;

/// The path of the backbone's parameters: `backbone.<torchvision name>`.
pub const BACKBONE_PREFIX: &str = "backbone";
/// The path of the head's parameters: `head.fc.weight`, `head.multi_head.0.head.weight`.
pub const HEAD_PREFIX: &str = "head";

/// Everything needed to rebuild a model's parameter layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The backbone.
    pub arch: Arch,
    /// The head on top of it.
    pub head: HeadSpec,
    /// The number of classes C.
    pub num_classes: usize,
    /// Keep BatchNorm in eval mode (running statistics, no updates) while training; its
    /// affine parameters still train. Needed for backbones whose BatchNorm was folded.
    pub freeze_bn: bool,
}

/// A model that cannot be built or changed as asked.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The head spec is invalid.
    #[error("invalid head: {0}")]
    Head(#[from] HeadError),
    /// Zero classes, or more than libtorch can index.
    #[error("invalid class count {0}: a model needs at least one class")]
    ClassCount(usize),
    /// libtorch could not create the parameters (out of memory, say).
    #[error("cannot create the model's parameters: {0}")]
    Tch(#[from] TchError),
    /// The new head spec needs other parameters than the trained head has.
    #[error(
        "cannot switch the head from {from} to {to}: they have different parameters; only \
         baseline and max (both head.fc) or csra heads with the same number of heads can be \
         swapped"
    )]
    HeadLayout {
        /// The head the model has.
        from: String,
        /// The head asked for.
        to: String,
    },
}

/// Backbone + head. Parameters live under [`BACKBONE_PREFIX`] (torchvision names) and
/// [`HEAD_PREFIX`] of the path the model was built on.
#[derive(Debug)]
pub struct CsraModel {
    config: ModelConfig,
    backbone: Backbone,
    head: Head,
    channels_last: bool,
}

impl CsraModel {
    /// Creates the parameters under `root`, initialised as torchvision (backbone) and PyTorch
    /// (head) do by default.
    pub fn new(root: &Path<'_>, config: &ModelConfig) -> Result<CsraModel, ModelError> {
        config.head.validate()?;
        let num_classes = i64::try_from(config.num_classes)
            .ok()
            .filter(|&c| c > 0)
            .ok_or(ModelError::ClassCount(config.num_classes))?;
        let backbone = Backbone::new(&(root / BACKBONE_PREFIX), config.arch)?;
        let head = Head::new(
            &(root / HEAD_PREFIX),
            config.head.clone(),
            config.arch.feature_dim(),
            num_classes,
        )?;
        Ok(CsraModel {
            config: config.clone(),
            backbone,
            head,
            channels_last: false,
        })
    }

    /// The configuration the model was built with (its head spec after any
    /// [`CsraModel::with_head_spec`]).
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The backbone.
    pub fn backbone(&self) -> &Backbone {
        &self.backbone
    }

    /// The head.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The backbone's feature map `[N, d, h, w]` of `[N, 3, H, W]` images. BatchNorm uses batch
    /// statistics only when `train` and BatchNorm is not frozen.
    pub fn features(&self, images: &Tensor, train: bool) -> Tensor {
        let bn_train = train && !self.config.freeze_bn;
        if self.channels_last {
            self.backbone.forward(&channels_last(images), bn_train)
        } else {
            self.backbone.forward(images, bn_train)
        }
    }

    /// Logits `[N, C]`.
    pub fn forward_t(&self, images: &Tensor, train: bool) -> Tensor {
        self.head.forward(&self.features(images, train))
    }

    /// Logits `[N, C]` and the last head's attention maps `[N, C, h, w]`, in eval mode.
    pub fn forward_with_attention(&self, images: &Tensor) -> (Tensor, Tensor) {
        self.head
            .forward_with_attention(&self.features(images, false))
    }

    /// The same model with another head spec over the same parameters: a trained GAP baseline
    /// evaluated with the training-free `Max` head, or a CSRA head with another λ.
    pub fn with_head_spec(self, spec: HeadSpec) -> Result<CsraModel, ModelError> {
        spec.validate()?;
        let head = self
            .head
            .with_spec(spec.clone())
            .map_err(|head| ModelError::HeadLayout {
                from: head.spec().to_string(),
                to: spec.to_string(),
            })?;
        Ok(CsraModel {
            config: ModelConfig {
                head: spec,
                ..self.config
            },
            head,
            ..self
        })
    }

    /// Stores every 4-D parameter of `vs` (the convolution weights) in channels-last (NHWC)
    /// layout and feeds images that way, which oneDNN convolves faster on CPU. Values, names
    /// and shapes stay the same; call it after loading weights and before building the
    /// optimizer. tch's safetensors writer refuses such non-contiguous tensors, so save the
    /// `VarStore` in libtorch's format (any other extension) or from contiguous copies.
    pub fn to_channels_last(&mut self, vs: &VarStore) -> Result<(), TchError> {
        for (_, mut var) in vs.variables() {
            if var.dim() == 4 {
                let nhwc = channels_last(&var);
                tch::no_grad(|| var.f_set_data(&nhwc))?;
            }
        }
        self.channels_last = true;
        Ok(())
    }
}

/// The same values with NHWC strides: libtorch's `contiguous(ChannelsLast)`, which tch does
/// not wrap.
fn channels_last(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}
