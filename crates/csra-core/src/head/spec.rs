//! What a CSRA head is: its variant, λ, and one temperature per attention head.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::HeadError;

/// The temperature the official code uses to mean "T = ∞" (max pooling).
pub const OFFICIAL_MAX_TEMPERATURE: f32 = 99.0;

/// An attention head's temperature T (Eq. 2 of the paper).
///
/// In JSON a finite temperature is a number and T = ∞ is the string `"max"`. On input, the
/// official code's `99`, and the strings `"inf"` and `"infinity"`, also mean T = ∞.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Temperature {
    /// Softmax attention `softmax(T·s)` with a finite T > 0.
    Softmax(f32),
    /// T = ∞: the attention is one-hot at each class's highest-scoring location (max pooling).
    Max,
}

impl Temperature {
    /// Interprets a temperature as the official code does: 99 (or +∞) means max pooling.
    pub fn from_official(t: f32) -> Result<Self, HeadError> {
        if t == OFFICIAL_MAX_TEMPERATURE || t == f32::INFINITY {
            Ok(Self::Max)
        } else if t.is_finite() && t > 0.0 {
            Ok(Self::Softmax(t))
        } else {
            Err(HeadError::InvalidTemperature(t))
        }
    }

    /// The official code's number for this temperature (99 for max pooling).
    pub fn to_official(self) -> f32 {
        match self {
            Self::Softmax(t) => t,
            Self::Max => OFFICIAL_MAX_TEMPERATURE,
        }
    }
}

impl fmt::Display for Temperature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Softmax(t) => write!(f, "{t}"),
            Self::Max => f.write_str("max"),
        }
    }
}

impl Serialize for Temperature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Softmax(t) => serializer.serialize_f32(*t),
            Self::Max => serializer.serialize_str("max"),
        }
    }
}

impl<'de> Deserialize<'de> for Temperature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f32),
            Word(String),
        }
        let t = match Raw::deserialize(deserializer)? {
            Raw::Number(t) => t,
            Raw::Word(word) => match word.to_ascii_lowercase().as_str() {
                "max" | "inf" | "infinity" => f32::INFINITY,
                _ => {
                    return Err(serde::de::Error::custom(format!(
                        "temperature {word:?} is neither a number nor \"max\""
                    )))
                }
            },
        };
        Temperature::from_official(t).map_err(serde::de::Error::custom)
    }
}

/// How the class scores of a feature map are pooled into logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadVariant {
    /// Class-specific residual attention: one classifier per temperature, heads summed (Eq. 13).
    Csra,
    /// One classifier, `mean + λ·max` over locations: the paper's training-free "4 lines" (Fig. 1).
    Max,
    /// Global average pooling, then the classifier: the usual GAP + FC tail.
    Baseline,
}

impl fmt::Display for HeadVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Csra => "csra",
            Self::Max => "max",
            Self::Baseline => "baseline",
        })
    }
}

impl std::str::FromStr for HeadVariant {
    type Err = HeadError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "csra" => Ok(Self::Csra),
            "max" => Ok(Self::Max),
            "baseline" | "gap" => Ok(Self::Baseline),
            _ => Err(HeadError::UnknownVariant(s.to_owned())),
        }
    }
}

/// A complete head description: variant, λ, the per-head temperatures, and whether class rows
/// are L2-normalised.
///
/// The number of classifiers is [`HeadSpec::num_heads`]: one per temperature for `Csra`, one for
/// `Max` and `Baseline`. Build one with [`HeadSpec::csra`], [`HeadSpec::max`] or
/// [`HeadSpec::baseline`]; every constructor and deserialisation validates the spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawHeadSpec", into = "RawHeadSpec")]
pub struct HeadSpec {
    variant: HeadVariant,
    lambda: f32,
    temperatures: Vec<Temperature>,
    normalize: bool,
}

/// The serialised form of [`HeadSpec`], checked by `TryFrom` on the way in.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeadSpec {
    variant: HeadVariant,
    #[serde(default)]
    lambda: f32,
    #[serde(default)]
    temperatures: Vec<Temperature>,
    normalize: bool,
}

impl TryFrom<RawHeadSpec> for HeadSpec {
    type Error = HeadError;

    fn try_from(raw: RawHeadSpec) -> Result<Self, Self::Error> {
        let spec = Self {
            variant: raw.variant,
            lambda: raw.lambda,
            temperatures: raw.temperatures,
            normalize: raw.normalize,
        };
        spec.validate()?;
        Ok(spec)
    }
}

impl From<HeadSpec> for RawHeadSpec {
    fn from(spec: HeadSpec) -> Self {
        Self {
            variant: spec.variant,
            lambda: spec.lambda,
            temperatures: spec.temperatures,
            normalize: spec.normalize,
        }
    }
}

/// The paper's temperature lists (Sec. 3.4), as the official code's `temp_settings`.
pub fn paper_temperatures(num_heads: usize) -> Option<Vec<Temperature>> {
    use Temperature::{Max, Softmax};
    let finite: &[f32] = match num_heads {
        1 => return Some(vec![Softmax(1.0)]),
        2 => &[1.0],
        4 => &[1.0, 2.0, 4.0],
        6 => &[1.0, 2.0, 3.0, 4.0, 5.0],
        8 => &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
        _ => return None,
    };
    Some(finite.iter().map(|&t| Softmax(t)).chain([Max]).collect())
}

impl HeadSpec {
    /// Multi-head CSRA with the paper's temperatures for H ∈ {1, 2, 4, 6, 8} and normalised
    /// classifiers, as the official `MHA` module builds it.
    pub fn csra(num_heads: usize, lambda: f32) -> Result<Self, HeadError> {
        let temperatures =
            paper_temperatures(num_heads).ok_or(HeadError::UnsupportedHeadCount(num_heads))?;
        Self::csra_with_temperatures(temperatures, lambda)
    }

    /// Multi-head CSRA with explicit temperatures (one head each) and normalised classifiers.
    pub fn csra_with_temperatures(
        temperatures: Vec<Temperature>,
        lambda: f32,
    ) -> Result<Self, HeadError> {
        Self {
            variant: HeadVariant::Csra,
            lambda,
            temperatures,
            normalize: true,
        }
        .validated()
    }

    /// The training-free `mean + λ·max` head of Fig. 1 over a plain (unnormalised) classifier.
    pub fn max(lambda: f32) -> Result<Self, HeadError> {
        Self {
            variant: HeadVariant::Max,
            lambda,
            temperatures: vec![Temperature::Max],
            normalize: false,
        }
        .validated()
    }

    /// Global average pooling followed by a plain (unnormalised) classifier.
    pub fn baseline() -> Self {
        Self {
            variant: HeadVariant::Baseline,
            lambda: 0.0,
            temperatures: Vec::new(),
            normalize: false,
        }
    }

    /// The same spec with class-row normalisation switched on or off.
    ///
    /// A `Max` head derived from a trained CSRA classifier keeps the normalisation it was
    /// trained with; one applied to an ImageNet-style FC layer does not.
    pub fn with_normalize(mut self, normalize: bool) -> Self {
        self.normalize = normalize;
        self
    }

    fn validated(self) -> Result<Self, HeadError> {
        self.validate()?;
        Ok(self)
    }

    /// Checks the invariants: a finite λ, and temperatures that fit the variant.
    pub fn validate(&self) -> Result<(), HeadError> {
        if !self.lambda.is_finite() {
            return Err(HeadError::InvalidLambda(self.lambda));
        }
        for t in &self.temperatures {
            if let Temperature::Softmax(value) = *t {
                Temperature::from_official(value)?;
            }
        }
        let temperatures_fit = match self.variant {
            HeadVariant::Csra => !self.temperatures.is_empty(),
            HeadVariant::Max => self.temperatures == [Temperature::Max],
            HeadVariant::Baseline => self.temperatures.is_empty() && self.lambda == 0.0,
        };
        if temperatures_fit {
            Ok(())
        } else {
            Err(HeadError::TemperaturesDontFit {
                variant: self.variant,
                temperatures: self.temperatures.clone(),
            })
        }
    }

    /// The variant.
    pub fn variant(&self) -> HeadVariant {
        self.variant
    }

    /// λ, the weight of the attention term (shared by all heads).
    pub fn lambda(&self) -> f32 {
        self.lambda
    }

    /// One temperature per attention head; empty for `Baseline`.
    pub fn temperatures(&self) -> &[Temperature] {
        &self.temperatures
    }

    /// Whether each class row is divided by its L2 norm, as the official CSRA module does.
    pub fn normalize(&self) -> bool {
        self.normalize
    }

    /// The number of classifiers (`[C, d]` weight matrices) the head needs.
    pub fn num_heads(&self) -> usize {
        self.temperatures.len().max(1)
    }
}

impl fmt::Display for HeadSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.variant {
            HeadVariant::Baseline => f.write_str("baseline (GAP + FC)"),
            HeadVariant::Max => write!(f, "max (mean + {}·max)", self.lambda),
            HeadVariant::Csra => {
                let temps: Vec<String> = self.temperatures.iter().map(|t| t.to_string()).collect();
                write!(
                    f,
                    "csra H={} λ={} T=[{}]",
                    self.num_heads(),
                    self.lambda,
                    temps.join(", ")
                )
            }
        }
    }
}
