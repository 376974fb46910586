//! The logit comparison behind `--verify`: the exported file must reproduce tch's logits within
//! `max |Δlogit| ≤ tol · max(1, |logit|)`, per image and class.

use std::fmt;

use csra_onnx::HeadWeights;
use tch::Tensor;

use super::{tensor_values, ExportError};
use crate::head::Head;

/// The default `tol` for an `f32` export: summation order and BatchNorm folding only.
pub const F32_TOLERANCE: f64 = 1e-4;

/// The default `tol` for an `f16` export, whose weights and activations keep 11 significant
/// bits; the measured cost is reported, this only catches a broken graph.
pub const F16_TOLERANCE: f64 = 5e-2;

/// tch's logits `[N, C]` (row-major) of `head` on eval-mode backbone `features`
/// `[N, d, h, w]`: the reference every export is checked against.
pub fn tch_head_logits(head: &HeadWeights, features: &Tensor) -> Result<Vec<f32>, ExportError> {
    let head = Head::from_weights(head, features.device())?;
    let logits = tch::no_grad(|| head.forward(features));
    Ok(tensor_values(&logits)?)
}

/// The class and image where the exported logits are furthest from the reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Worst {
    /// The image (row) index.
    pub image: usize,
    /// The class index.
    pub class: usize,
    /// tch's logit.
    pub reference: f32,
    /// The exported model's logit.
    pub exported: f32,
    /// `|Δ| / max(1, |reference|)`; NaN when the exported logit is not a number.
    pub relative: f64,
}

/// How far exported logits are from the reference logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// The largest absolute difference.
    pub max_abs: f64,
    /// Where the scaled difference is largest.
    pub worst: Worst,
}

impl Comparison {
    /// Compares row-major `[N, C]` logits; `None` when there is nothing to compare or the
    /// lengths differ.
    pub fn new(reference: &[f32], exported: &[f32], num_classes: usize) -> Option<Self> {
        if reference.is_empty() || reference.len() != exported.len() || num_classes == 0 {
            return None;
        }
        let mut max_abs = 0.0_f64;
        let mut worst: Option<Worst> = None;
        for (i, (&r, &e)) in reference.iter().zip(exported).enumerate() {
            let delta = (f64::from(e) - f64::from(r)).abs();
            let relative = delta / f64::from(r.abs()).max(1.0);
            max_abs = max_abs.max(delta);
            // A NaN becomes the worst, and fails the check.
            if worst.is_none_or(|w| relative.is_nan() || relative > w.relative) {
                worst = Some(Worst {
                    image: i / num_classes,
                    class: i % num_classes,
                    reference: r,
                    exported: e,
                    relative,
                });
            }
            if relative.is_nan() {
                max_abs = f64::NAN;
                break;
            }
        }
        worst.map(|worst| Self { max_abs, worst })
    }

    /// Whether every logit is within `tolerance · max(1, |logit|)`.
    pub fn within(&self, tolerance: f64) -> bool {
        self.worst.relative <= tolerance
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.worst;
        write!(
            f,
            "max |Δlogit| {:.3e}; worst image {} class {}: reference {} vs exported {} \
             (|Δ|/max(1,|logit|) = {:.3e})",
            self.max_abs, w.image, w.class, w.reference, w.exported, w.relative
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_scales_with_large_logits_only() {
        // Two images, two classes. Δ = 0.5 on a logit of 100 is 5e-3 relative; Δ = 0.01 on a
        // logit of 0.2 is 1e-2 (scaled by 1, not 0.2).
        let reference = [100.0, 0.2, -3.0, 1.0];
        let exported = [100.5, 0.21, -3.0, 1.0];
        let c = Comparison::new(&reference, &exported, 2).unwrap();
        assert_eq!((c.worst.image, c.worst.class), (0, 1));
        assert!((c.worst.relative - 0.01).abs() < 1e-6);
        assert!((c.max_abs - 0.5).abs() < 1e-9);
        assert!(c.within(0.011) && !c.within(0.009));
    }

    #[test]
    fn a_nan_fails_and_is_reported() {
        let c = Comparison::new(&[1.0, 2.0, 3.0], &[1.0, f32::NAN, 3.5], 3).unwrap();
        assert_eq!(c.worst.class, 1);
        assert!(!c.within(1.0));
        assert!(Comparison::new(&[1.0], &[1.0, 2.0], 1).is_none());
    }
}
