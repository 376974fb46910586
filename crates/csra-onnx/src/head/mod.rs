//! The CSRA head as ONNX: the weights it needs ([`HeadWeights`]) and its fused emission
//! ([`emit_head`]).

mod emit;
mod fold;

pub use emit::{emit_head, HeadOutputs};

use csra_core::head::HeadSpec;

use crate::error::OnnxError;
use crate::shape::Dim;

/// One head's classifier: row-major `[C, d]` weights (a 1×1 convolution or linear layer) and
/// an optional `[C]` bias, before any normalisation.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassifierWeights {
    /// The `[C, d]` weights, row-major.
    pub weight: Vec<f32>,
    /// The `[C]` bias; the official CSRA classifiers have none, a GAP + FC layer has one.
    pub bias: Option<Vec<f32>>,
}

/// A head spec with its classifiers, checked to fit together: one classifier per head, all
/// `[C, d]` with the same C and d, biases of length C, and class rows that can be normalised
/// when the spec normalises.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadWeights {
    spec: HeadSpec,
    num_classes: usize,
    dim: usize,
    classifiers: Vec<ClassifierWeights>,
}

impl HeadWeights {
    /// Checks that `classifiers` fit `spec`: one per head, each `[num_classes, dim]`.
    pub fn new(
        spec: HeadSpec,
        num_classes: usize,
        dim: usize,
        classifiers: Vec<ClassifierWeights>,
    ) -> Result<Self, OnnxError> {
        spec.validate()?;
        if classifiers.len() != spec.num_heads() {
            return Err(OnnxError::HeadCount {
                expected: spec.num_heads(),
                actual: classifiers.len(),
            });
        }
        for (head, classifier) in classifiers.iter().enumerate() {
            check_classifier(head, classifier, num_classes, dim, spec.normalize())?;
        }
        Ok(Self {
            spec,
            num_classes,
            dim,
            classifiers,
        })
    }

    /// The head spec.
    pub fn spec(&self) -> &HeadSpec {
        &self.spec
    }

    /// The class count C.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The feature width d the classifiers expect.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The classifiers, one per head in the spec's temperature order.
    pub fn classifiers(&self) -> &[ClassifierWeights] {
        &self.classifiers
    }
}

fn check_classifier(
    head: usize,
    classifier: &ClassifierWeights,
    num_classes: usize,
    dim: usize,
    normalize: bool,
) -> Result<(), OnnxError> {
    let actual = classifier.weight.len();
    if num_classes == 0 || dim == 0 || actual != num_classes * dim {
        return Err(OnnxError::WeightShape {
            head,
            num_classes,
            dim,
            actual,
        });
    }
    if let Some(bias) = &classifier.bias {
        if bias.len() != num_classes {
            return Err(OnnxError::BiasShape {
                head,
                num_classes,
                actual: bias.len(),
            });
        }
    }
    if normalize {
        if let Some(class) = fold::row_norms(&classifier.weight, dim)
            .iter()
            .position(|n| *n == 0.0 || !n.is_finite())
        {
            return Err(OnnxError::DegenerateClassRow { head, class });
        }
    }
    Ok(())
}

/// The shape of the feature map a head reads: `[batch, channels, height, width]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureShape {
    /// The batch dimension: fixed, or symbolic for a dynamic batch.
    pub batch: Dim,
    /// The channel count d.
    pub channels: usize,
    /// The height h.
    pub height: usize,
    /// The width w.
    pub width: usize,
}

impl FeatureShape {
    /// The number of locations h·w.
    pub fn locations(&self) -> usize {
        self.height * self.width
    }
}
