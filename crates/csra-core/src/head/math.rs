//! The reference CSRA head in plain Rust over `f32` slices, accumulated in `f64`.
//!
//! This is the oracle that the tch head and every exported ONNX head are tested against, and
//! the code the edge runtime uses to draw attention maps. It follows the official module
//! line by line:
//!
//! ```text
//! score  = conv1x1(x) / ||w_c||            # [C, h·w]; the norm only when the spec normalises
//! base   = mean(score, locations)
//! att    = max(score)                      # T = ∞ (the official T = 99)
//!        | sum(softmax(T·score) · score)   # finite T
//! logit  = base + λ·att                    # per head; Csra sums the heads (Eq. 13)
//! ```
//!
//! Both attention terms are `Σ_j s_j^i · score_j` with `s_j^i` the attention map of Eq. 2: a
//! softmax for finite T and a one-hot at the arg-max for T = ∞ (the first location wins a tie),
//! so both are returned as maps that sum to one.

use super::spec::{HeadSpec, HeadVariant, Temperature};
use super::HeadError;

/// A backbone feature map `[d, h, w]` in row-major order.
#[derive(Debug, Clone, Copy)]
pub struct FeatureMap<'a> {
    data: &'a [f32],
    dim: usize,
    height: usize,
    width: usize,
}

impl<'a> FeatureMap<'a> {
    /// Wraps `data` as a `[dim, height, width]` map, checking its length.
    pub fn new(
        data: &'a [f32],
        dim: usize,
        height: usize,
        width: usize,
    ) -> Result<Self, HeadError> {
        let expected = dim * height * width;
        if expected == 0 || data.len() != expected {
            return Err(HeadError::Shape {
                what: "feature map",
                expected: format!("[{dim}, {height}, {width}] = {expected} non-zero values"),
                actual: data.len(),
            });
        }
        Ok(Self {
            data,
            dim,
            height,
            width,
        })
    }

    /// The channel count d.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of locations h·w.
    pub fn locations(&self) -> usize {
        self.height * self.width
    }

    /// The spatial size `(h, w)`.
    pub fn size(&self) -> (usize, usize) {
        (self.height, self.width)
    }
}

/// One head's classifier: row-major `[C, d]` weights (a 1×1 convolution) and an optional bias.
///
/// The official CSRA convolution has no bias; a GAP + FC baseline's linear layer does.
#[derive(Debug, Clone, Copy)]
pub struct Classifier<'a> {
    weight: &'a [f32],
    bias: Option<&'a [f32]>,
    num_classes: usize,
}

impl<'a> Classifier<'a> {
    /// A classifier without bias; `weight.len()` must be a multiple of `num_classes`.
    pub fn new(weight: &'a [f32], num_classes: usize) -> Result<Self, HeadError> {
        if num_classes == 0 || weight.is_empty() || !weight.len().is_multiple_of(num_classes) {
            return Err(HeadError::Shape {
                what: "classifier weight",
                expected: format!("[{num_classes}, d] with d > 0"),
                actual: weight.len(),
            });
        }
        Ok(Self {
            weight,
            bias: None,
            num_classes,
        })
    }

    /// The same classifier with a `[C]` bias.
    pub fn with_bias(mut self, bias: &'a [f32]) -> Result<Self, HeadError> {
        if bias.len() != self.num_classes {
            return Err(HeadError::Shape {
                what: "classifier bias",
                expected: format!("[{}]", self.num_classes),
                actual: bias.len(),
            });
        }
        self.bias = Some(bias);
        Ok(self)
    }

    /// The class count C.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// The input dimension d.
    pub fn dim(&self) -> usize {
        self.weight.len() / self.num_classes
    }

    fn row(&self, class: usize) -> &[f32] {
        let d = self.dim();
        &self.weight[class * d..(class + 1) * d]
    }
}

/// The full result of the reference head.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadOutput {
    /// The final `[C]` logits: the sum of every head's logits.
    pub logits: Vec<f32>,
    /// What each head computed, in the spec's temperature order.
    pub heads: Vec<HeadTrace>,
}

/// What one head computed.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadTrace {
    /// The head's temperature; `None` for the baseline, which has no attention term.
    pub temperature: Option<Temperature>,
    /// The head's `[C]` logits, `base + λ·att`.
    pub logits: Vec<f32>,
    /// The class scores `[C, h·w]`: the (normalised) classifier applied at every location.
    pub scores: Vec<f32>,
    /// The attention maps `s_j^i` as `[C, h·w]`; each class's row sums to one. The baseline
    /// reports the uniform weights of average pooling.
    pub attention: Vec<f32>,
}

/// Runs the head described by `spec` on one feature map.
///
/// `classifiers` holds one entry per head ([`HeadSpec::num_heads`]), all with the same class
/// count and a dimension equal to the feature map's.
pub fn forward(
    spec: &HeadSpec,
    features: FeatureMap<'_>,
    classifiers: &[Classifier<'_>],
) -> Result<HeadOutput, HeadError> {
    check_classifiers(spec, features, classifiers)?;
    let heads = match spec.variant() {
        HeadVariant::Baseline => vec![head(features, &classifiers[0], spec, None)?],
        HeadVariant::Csra | HeadVariant::Max => spec
            .temperatures()
            .iter()
            .zip(classifiers)
            .map(|(&t, classifier)| head(features, classifier, spec, Some(t)))
            .collect::<Result<_, _>>()?,
    };
    let num_classes = classifiers[0].num_classes();
    let logits = (0..num_classes)
        .map(|c| heads.iter().map(|h| f64::from(h.logits[c])).sum::<f64>() as f32)
        .collect();
    Ok(HeadOutput { logits, heads })
}

fn check_classifiers(
    spec: &HeadSpec,
    features: FeatureMap<'_>,
    classifiers: &[Classifier<'_>],
) -> Result<(), HeadError> {
    if classifiers.len() != spec.num_heads() {
        return Err(HeadError::HeadCount {
            expected: spec.num_heads(),
            actual: classifiers.len(),
        });
    }
    let num_classes = classifiers[0].num_classes();
    for (i, classifier) in classifiers.iter().enumerate() {
        if classifier.dim() != features.dim() || classifier.num_classes() != num_classes {
            return Err(HeadError::Shape {
                what: "classifier weight",
                expected: format!("[{num_classes}, {}] for head {i}", features.dim()),
                actual: classifier.weight.len(),
            });
        }
    }
    Ok(())
}

fn head(
    features: FeatureMap<'_>,
    classifier: &Classifier<'_>,
    spec: &HeadSpec,
    temperature: Option<Temperature>,
) -> Result<HeadTrace, HeadError> {
    let locations = features.locations();
    let scores = class_scores(features, classifier, spec.normalize())?;
    let mut logits = Vec::with_capacity(classifier.num_classes());
    let mut attention = Vec::with_capacity(scores.len());
    for row in scores.chunks_exact(locations) {
        let base = row.iter().sum::<f64>() / locations as f64;
        let logit = match temperature {
            None => {
                attention.extend(std::iter::repeat_n(1.0 / locations as f64, locations));
                base
            }
            Some(t) => {
                let weights = attention_weights(row, t);
                let att: f64 = weights.iter().zip(row).map(|(s, x)| s * x).sum();
                attention.extend(weights);
                base + f64::from(spec.lambda()) * att
            }
        };
        logits.push(logit as f32);
    }
    Ok(HeadTrace {
        temperature,
        logits,
        scores: scores.iter().map(|&s| s as f32).collect(),
        attention: attention.iter().map(|&s| s as f32).collect(),
    })
}

/// The class scores `[C, h·w]` of one classifier at every location, plus its bias, divided by
/// each class row's L2 norm when `normalize` is set (the official `score / ||w_c||`).
pub fn class_scores(
    features: FeatureMap<'_>,
    classifier: &Classifier<'_>,
    normalize: bool,
) -> Result<Vec<f64>, HeadError> {
    let locations = features.locations();
    let mut scores = vec![0.0f64; classifier.num_classes() * locations];
    for (class, out) in scores.chunks_exact_mut(locations).enumerate() {
        let row = classifier.row(class);
        for (w, channel) in row.iter().zip(features.data.chunks_exact(locations)) {
            let w = f64::from(*w);
            for (o, x) in out.iter_mut().zip(channel) {
                *o += w * f64::from(*x);
            }
        }
        let norm = if normalize {
            let norm = row
                .iter()
                .map(|w| f64::from(*w).powi(2))
                .sum::<f64>()
                .sqrt();
            if norm == 0.0 || !norm.is_finite() {
                return Err(HeadError::DegenerateClassRow { class });
            }
            norm
        } else {
            1.0
        };
        let bias = classifier.bias.map_or(0.0, |b| f64::from(b[class]));
        for o in out.iter_mut() {
            // The official code divides the convolution output, which has no bias; a baseline's
            // bias is never normalised, so it is added after the division.
            *o = *o / norm + bias;
        }
    }
    Ok(scores)
}

/// The attention map `s_j` over one class's scores (Eq. 2): `softmax(T·scores)` for finite T,
/// a one-hot at the first arg-max for T = ∞. It always sums to one.
pub fn attention_weights(scores: &[f64], temperature: Temperature) -> Vec<f64> {
    match temperature {
        Temperature::Max => {
            let argmax = scores
                .iter()
                .enumerate()
                .fold(0, |best, (j, &s)| if s > scores[best] { j } else { best });
            (0..scores.len()).map(|j| f64::from(j == argmax)).collect()
        }
        Temperature::Softmax(t) => {
            let t = f64::from(t);
            // Subtracting the maximum keeps exp() finite for large T without changing the result.
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let exp: Vec<f64> = scores.iter().map(|s| (t * (s - max)).exp()).collect();
            let total: f64 = exp.iter().sum();
            exp.iter().map(|e| e / total).collect()
        }
    }
}
