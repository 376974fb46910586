//! Training augmentation: random resized crop and horizontal flip.

use csra_core::manifest::ResizePolicy;
use rand::{Rng, RngExt};

use super::crop::{train_rect, Rect};

/// What happens to a picture before it is resized to the input size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Augment {
    /// Evaluation: the preprocessing's resize policy, no randomness.
    None,
    /// Training: a random resized crop (which replaces the resize policy), then an optional
    /// horizontal flip with probability 0.5.
    Train {
        /// The crop's area as a fraction of the picture, `(min, max)`.
        scale: (f32, f32),
        /// The crop's aspect ratio (width / height), `(min, max)`; drawn log-uniformly.
        ratio: (f32, f32),
        /// Whether to flip half of the pictures left-right.
        hflip: bool,
    },
}

impl Augment {
    /// The official CSRA training augmentation: `RandomHorizontalFlip()` and
    /// `RandomResizedCrop(S, scale=(0.7, 1.0))` with torchvision's default ratios 3/4..4/3.
    pub fn official_train() -> Self {
        Self::Train {
            scale: (0.7, 1.0),
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            hflip: true,
        }
    }

    /// Explains what is wrong with the ranges, if anything.
    pub(crate) fn problem(&self) -> Option<String> {
        let Self::Train { scale, ratio, .. } = *self else {
            return None;
        };
        if !(scale.0 > 0.0 && scale.0 <= scale.1 && scale.1 <= 1.0) {
            return Some(format!(
                "the crop scale range {scale:?} must satisfy 0 < min <= max <= 1"
            ));
        }
        if !(ratio.0 > 0.0 && ratio.0 <= ratio.1 && ratio.1.is_finite()) {
            return Some(format!(
                "the crop aspect ratio range {ratio:?} must satisfy 0 < min <= max"
            ));
        }
        None
    }

    /// The source rectangle and the flip for one sample whose labelled part is `region`.
    pub(crate) fn plan<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        policy: ResizePolicy,
        region: Rect,
        size: (u32, u32),
    ) -> (Rect, bool) {
        match *self {
            Self::None => (policy.source_rect(region, size), false),
            Self::Train {
                scale,
                ratio,
                hflip,
            } => {
                let rect = train_rect(rng, region, scale, ratio);
                (rect, hflip && rng.random_bool(0.5))
            }
        }
    }
}
