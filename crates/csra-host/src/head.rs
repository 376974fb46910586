//! The classification heads on a feature map `[N, d, h, w]`, in tch: multi-head CSRA, the
//! training-free `Max` head and the GAP + FC baseline. They compute what
//! [`csra_core::head::math::forward`] computes, batched and differentiable.
//!
//! Parameters, under the head's path:
//! - `Csra`: `multi_head.{i}.head.weight` `[C, d, 1, 1]`, one bias-free 1×1 convolution per
//!   attention head, as the official `MHA` module names them;
//! - `Baseline` and `Max`: `fc.weight` `[C, d]` and `fc.bias` `[C]`, one linear layer, so a
//!   trained baseline can be evaluated with the `Max` head unchanged.

use csra_core::head::{HeadSpec, HeadVariant, Temperature};
use csra_onnx::{ClassifierWeights, HeadWeights};
use tch::nn::init::{FanInOut, NonLinearity, NormalOrUniform};
use tch::nn::{Init, Path};
use tch::{Device, Kind, TchError, Tensor};

use crate::export::{tensor_values, ExportError};

/// PyTorch's default for `nn.Conv2d` and `nn.Linear` weights: `kaiming_uniform_(a=√5)`, which
/// is uniform in `±1/√fan_in`.
const TORCH_DEFAULT_INIT: Init = Init::Kaiming {
    dist: NormalOrUniform::Uniform,
    fan: FanInOut::FanIn,
    non_linearity: NonLinearity::ExplicitGain(0.577_350_269_189_625_8), // √(1/3) = √(2/(1+5))
};

/// How a head's parameters are laid out; heads with the same layout can swap specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadLayout {
    /// `multi_head.{i}.head.weight` for `heads` attention heads.
    Csra {
        /// The number of attention heads.
        heads: usize,
    },
    /// `fc.weight` and `fc.bias`.
    Fc,
}

impl HeadLayout {
    /// The layout a spec needs.
    pub fn of(spec: &HeadSpec) -> Self {
        match spec.variant() {
            HeadVariant::Csra => HeadLayout::Csra {
                heads: spec.num_heads(),
            },
            HeadVariant::Max | HeadVariant::Baseline => HeadLayout::Fc,
        }
    }
}

#[derive(Debug)]
enum Classifiers {
    /// One `[C, d, 1, 1]` weight per attention head.
    Csra(Vec<Tensor>),
    /// `[C, d]` weight and `[C]` bias.
    Fc { weight: Tensor, bias: Tensor },
}

/// A head: its spec and its classifiers.
#[derive(Debug)]
pub struct Head {
    spec: HeadSpec,
    classifiers: Classifiers,
}

/// The head's result before it is reduced to logits: one entry per attention head.
struct HeadScores {
    /// Class scores at every location, `[N, C, h·w]`.
    scores: Tensor,
    temperature: Option<Temperature>,
}

impl Head {
    /// Creates the parameters `spec` needs under `path`, initialised as PyTorch's defaults.
    pub fn new(
        path: &Path<'_>,
        spec: HeadSpec,
        dim: i64,
        num_classes: i64,
    ) -> Result<Self, TchError> {
        let classifiers = match HeadLayout::of(&spec) {
            HeadLayout::Csra { heads } => Classifiers::Csra(
                (0..heads)
                    .map(|i| {
                        let head = path / "multi_head" / i / "head";
                        head.f_var("weight", &[num_classes, dim, 1, 1], TORCH_DEFAULT_INIT)
                    })
                    .collect::<Result<_, _>>()?,
            ),
            HeadLayout::Fc => {
                let fc = path / "fc";
                let bound = 1.0 / (dim as f64).sqrt();
                Classifiers::Fc {
                    weight: fc.f_var("weight", &[num_classes, dim], TORCH_DEFAULT_INIT)?,
                    bias: fc.f_var(
                        "bias",
                        &[num_classes],
                        Init::Uniform {
                            lo: -bound,
                            up: bound,
                        },
                    )?,
                }
            }
        };
        Ok(Self { spec, classifiers })
    }

    /// The spec.
    pub fn spec(&self) -> &HeadSpec {
        &self.spec
    }

    /// The same parameters under another spec with the same [`HeadLayout`]; the head itself
    /// when the layouts differ.
    pub fn with_spec(self, spec: HeadSpec) -> Result<Self, Box<Self>> {
        if HeadLayout::of(&spec) == HeadLayout::of(&self.spec) {
            Ok(Self { spec, ..self })
        } else {
            Err(Box::new(self))
        }
    }

    /// The spec with its classifiers as plain `f32` weights, ready for ONNX emission.
    pub fn weights(&self) -> Result<HeadWeights, ExportError> {
        let (classifiers, shape) = match &self.classifiers {
            Classifiers::Csra(weights) => {
                let classifiers = weights
                    .iter()
                    .map(|w| {
                        Ok(ClassifierWeights {
                            weight: tensor_values(w)?,
                            bias: None,
                        })
                    })
                    .collect::<Result<Vec<_>, ExportError>>()?;
                (classifiers, weights.first().map(Tensor::size))
            }
            Classifiers::Fc { weight, bias } => (
                vec![ClassifierWeights {
                    weight: tensor_values(weight)?,
                    bias: Some(tensor_values(bias)?),
                }],
                Some(weight.size()),
            ),
        };
        let shape = shape.unwrap_or_default();
        let dim = |i: usize| shape.get(i).map_or(0, |&d| usize::try_from(d).unwrap_or(0));
        Ok(HeadWeights::new(
            self.spec.clone(),
            dim(0),
            dim(1),
            classifiers,
        )?)
    }

    /// A head computing what `weights` describe, on `device`: CSRA classifiers (which have no
    /// bias) as `multi_head` weights, a `Max` or `Baseline` classifier as `fc`. Its tensors
    /// belong to no `VarStore`; it is for inference.
    pub fn from_weights(weights: &HeadWeights, device: Device) -> Result<Self, ExportError> {
        let (c, d) = (weights.num_classes() as i64, weights.dim() as i64);
        let tensor = |values: &[f32], shape: &[i64]| -> Result<Tensor, ExportError> {
            Ok(Tensor::from_slice(values).f_view(shape)?.to_device(device))
        };
        let spec = weights.spec().clone();
        let classifiers = match HeadLayout::of(&spec) {
            HeadLayout::Csra { .. } => Classifiers::Csra(
                weights
                    .classifiers()
                    .iter()
                    .map(|classifier| match classifier.bias {
                        Some(_) => Err(ExportError::Unsupported(
                            "a csra head's classifiers have no bias".to_owned(),
                        )),
                        None => tensor(&classifier.weight, &[c, d, 1, 1]),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            HeadLayout::Fc => {
                let classifier = weights.classifiers().first().ok_or_else(|| {
                    ExportError::Unsupported("a head needs one classifier".to_owned())
                })?;
                let zeros = vec![0.0; weights.num_classes()];
                Classifiers::Fc {
                    weight: tensor(&classifier.weight, &[c, d])?,
                    bias: tensor(classifier.bias.as_deref().unwrap_or(&zeros), &[c])?,
                }
            }
        };
        Ok(Self { spec, classifiers })
    }

    /// Logits `[N, C]` of a feature map `[N, d, h, w]`: each head's `base + λ·att`, summed.
    pub fn forward(&self, features: &Tensor) -> Tensor {
        self.logits(&self.scores(features))
    }

    /// Logits `[N, C]` and the last head's attention maps `[N, C, h, w]` (each class's map sums
    /// to one; the baseline's is uniform, a `T = ∞` head's one-hot at the arg-max).
    pub fn forward_with_attention(&self, features: &Tensor) -> (Tensor, Tensor) {
        let heads = self.scores(features);
        let logits = self.logits(&heads);
        let last = heads
            .last()
            .expect("a validated HeadSpec has at least one head");
        let attention = match last.temperature {
            Some(t) => attention_map(&last.scores, t),
            None => last.scores.ones_like() / last.scores.size()[2] as f64,
        };
        let (size, classes) = (features.size(), attention.size()[1]);
        (
            logits,
            attention.reshape([size[0], classes, size[2], size[3]]),
        )
    }

    fn logits(&self, heads: &[HeadScores]) -> Tensor {
        let lambda = f64::from(self.spec.lambda());
        let per_head: Vec<Tensor> = heads
            .iter()
            .map(|head| {
                let base = head.scores.mean_dim(2, false, Kind::Float);
                match head.temperature {
                    None => base,
                    Some(t) => base + attention_pool(&head.scores, t) * lambda,
                }
            })
            .collect();
        Tensor::stack(&per_head, 0).sum_dim_intlist(0, false, Kind::Float)
    }

    /// Every head's class scores `[N, C, h·w]`: the (row-normalised) classifier at each
    /// location, plus the bias of an FC classifier.
    fn scores(&self, features: &Tensor) -> Vec<HeadScores> {
        let size = features.size();
        let flat = features.reshape([size[0], size[1], -1]);
        let normalize = self.spec.normalize();
        match &self.classifiers {
            Classifiers::Csra(weights) => weights
                .iter()
                .zip(self.spec.temperatures())
                .map(|(weight, &t)| {
                    let weight = weight.flatten(1, -1);
                    HeadScores {
                        scores: class_scores(&flat, &weight, normalize),
                        temperature: Some(t),
                    }
                })
                .collect(),
            Classifiers::Fc { weight, bias } => {
                let scores = class_scores(&flat, weight, normalize) + bias.unsqueeze(-1);
                vec![HeadScores {
                    scores,
                    temperature: self.spec.temperatures().first().copied(),
                }]
            }
        }
    }
}

/// `weight · x` at every location, `[N, C, L]` from `[N, d, L]` and `[C, d]`, divided by each
/// class row's L2 norm when `normalize` (the official `score / ||w_c||`; the gradient flows
/// through the norm too).
fn class_scores(flat: &Tensor, weight: &Tensor, normalize: bool) -> Tensor {
    let scores = weight.matmul(flat);
    if normalize {
        let norm = weight.norm_scalaropt_dim(2, [1], true);
        scores / norm
    } else {
        scores
    }
}

/// The attention term `Σ_j s_j · score_j` over locations, `[N, C]`: the maximum for T = ∞.
fn attention_pool(scores: &Tensor, temperature: Temperature) -> Tensor {
    match temperature {
        Temperature::Max => scores.amax([2], false),
        Temperature::Softmax(_) => {
            (attention_map(scores, temperature) * scores).sum_dim_intlist(2, false, Kind::Float)
        }
    }
}

/// The attention maps `s_j` `[N, C, L]` (Eq. 2): `softmax(T·score)` over locations, or a
/// one-hot at the arg-max for T = ∞.
fn attention_map(scores: &Tensor, temperature: Temperature) -> Tensor {
    match temperature {
        Temperature::Max => {
            let locations = scores.size()[2];
            scores
                .argmax(2, false)
                .one_hot(locations)
                .to_kind(scores.kind())
        }
        Temperature::Softmax(t) => (scores * f64::from(t)).softmax(2, scores.kind()),
    }
}
