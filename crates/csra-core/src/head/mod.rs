//! The CSRA head: its description ([`HeadSpec`]) and its reference math ([`math::forward`]).

pub mod math;
mod spec;

pub use math::{Classifier, FeatureMap, HeadOutput, HeadTrace};
pub use spec::{paper_temperatures, HeadSpec, HeadVariant, Temperature, OFFICIAL_MAX_TEMPERATURE};

use thiserror::Error;

/// An invalid head spec, or inputs that do not fit it.
#[derive(Debug, Error, PartialEq)]
pub enum HeadError {
    /// The paper defines temperature lists only for some head counts.
    #[error("no default temperatures for {0} heads: the paper defines H = 1, 2, 4, 6 or 8; pass explicit temperatures for other counts")]
    UnsupportedHeadCount(usize),
    /// A temperature must be finite and positive, or mean max pooling.
    #[error("invalid temperature {0}: use a finite T > 0, or 99 / \"max\" for max pooling")]
    InvalidTemperature(f32),
    /// λ must be a finite number.
    #[error("invalid lambda {0}: λ must be a finite number (the paper uses 0.02 to 1.0)")]
    InvalidLambda(f32),
    /// The variant name is not one of csra, max, baseline.
    #[error("unknown head variant {0:?}: expected csra, max or baseline")]
    UnknownVariant(String),
    /// The temperatures do not fit the variant.
    #[error("a {variant} head cannot have temperatures {temperatures:?}: csra needs at least one, max exactly [max], baseline none (and λ = 0)")]
    TemperaturesDontFit {
        /// The variant.
        variant: HeadVariant,
        /// The temperatures given.
        temperatures: Vec<Temperature>,
    },
    /// The number of classifiers differs from the number of heads.
    #[error("the head spec has {expected} heads but {actual} classifiers were given")]
    HeadCount {
        /// Heads in the spec.
        expected: usize,
        /// Classifiers given.
        actual: usize,
    },
    /// A tensor has the wrong number of values.
    #[error("{what} has {actual} values, expected {expected}")]
    Shape {
        /// Which tensor.
        what: &'static str,
        /// The expected shape.
        expected: String,
        /// The number of values found.
        actual: usize,
    },
    /// A class row has zero (or non-finite) norm and cannot be normalised.
    #[error("classifier row of class {class} has zero or non-finite norm, so it cannot be normalised; the weights are uninitialised or corrupt")]
    DegenerateClassRow {
        /// The class.
        class: usize,
    },
}

#[cfg(test)]
mod tests;
