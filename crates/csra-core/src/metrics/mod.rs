//! Multi-label metrics, computed as the official CSRA code does (`cal_mAP.py`, `cal_PR.py`).
//!
//! - mAP: the mean over classes of the non-interpolated average precision
//!   ([`average_precision`]);
//! - CP/CR/CF1 (per-class averages) and OP/OR/OF1 (overall), at threshold [`THRESHOLD`]
//!   (`score >= 0.5`), over all predictions and over each sample's [`TOP_K`] highest scores
//!   ([`PrecisionRecall`]).
//!
//! [`evaluate`] computes all of them from row-major `[N, C]` matrices, the layout of
//! `Dataset::target_matrix` and `Dataset::ignore_matrix` (feature `datasets`). Scores are sigmoid probabilities:
//! mAP only uses their order, but the precision/recall threshold of 0.5 assumes probabilities.
//!
//! Every value is a fraction in `[0, 1]` (command-line tools print percent), and no value is
//! ever NaN. Where the official code is silent or divides by zero, the behaviour is defined here:
//!
//! - **Ties.** Samples are ranked by score, descending, with a stable sort on [`f32::total_cmp`]:
//!   equal scores keep sample order, so the lower sample index ranks first. The reference's numpy
//!   `argsort` leaves the order of ties unspecified, so on tied scores its AP is not well defined
//!   and may differ from ours. For the top-k selection, equal scores in a sample go to the lower
//!   class index.
//! - **Ignored labels** (VOC "difficult", WIDER "unspecified"; `ignore == true`) are dropped
//!   before scoring, from mAP and from the precision/recall counts alike, whatever their target
//!   says. The official `cal_mAP.py` drops both kinds, but the official `cal_PR.py` counts WIDER
//!   "unspecified" as negatives; we drop them consistently. The top-k selection still runs over
//!   all classes of a sample, ignored ones included, as the official code picks the top k before
//!   dropping anything.
//! - **Classes without a positive** (after ignoring): their AP is `None` and they are left out
//!   of mAP, CP and CR, which average over the classes that have at least one positive. When
//!   every class has a positive this is exactly the official mean over all classes (which would
//!   otherwise turn CR into NaN). If no class has a positive, mAP, CP and CR are 0. Their
//!   predictions still count as false positives in OP.
//! - **Divisions by zero.** As in the official code, a class with no prediction has precision 0
//!   (`predict_num[predict_num == 0] = 1`) in CP. The official code also sums the clamped
//!   counts into OP's denominator, so each class without a prediction counts as a false
//!   positive and a perfect model scored on a split that lacks some class gets OP < 1; OP here
//!   counts real predictions, which equals the official OP whenever every class has a
//!   prediction. OP with no prediction at all, and OR with no positive, are 0; any F1 whose
//!   precision and recall are both 0 is 0.
//!
mod average_precision;
mod precision_recall;

pub use average_precision::average_precision;
pub use precision_recall::{class_counts, precision_recall, ClassCounts, PrecisionRecall};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A class is predicted for a sample when its score is at least this (`score >= 0.5`).
pub const THRESHOLD: f32 = 0.5;

/// How many of a sample's highest scores can be predictions in the top-k metrics.
pub const TOP_K: usize = 3;

/// Every metric of one evaluation, as written to JSON reports.
///
/// All metric values are fractions in `[0, 1]`, never NaN; see the [module docs](self) for how
/// ties, ignored labels and classes without positives are handled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Number of samples `N`.
    pub num_samples: usize,
    /// Number of classes `C`.
    pub num_classes: usize,
    /// Number of classes with at least one non-ignored positive: those averaged in mAP, CP and
    /// CR.
    pub num_map_classes: usize,
    /// Mean average precision over the classes with a positive (0 if there is none).
    pub map: f64,
    /// Average precision of each class, `None` for a class without a non-ignored positive.
    pub per_class_ap: Vec<Option<f64>>,
    /// Precision and recall at [`THRESHOLD`] over all predictions.
    pub all: PrecisionRecall,
    /// Precision and recall at [`THRESHOLD`] when only each sample's [`TOP_K`] highest scores can
    /// be predictions.
    pub top3: PrecisionRecall,
}

/// Why metrics could not be computed. Every variant says what to fix.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum MetricsError {
    /// `num_classes` is 0.
    #[error("num_classes is 0: metrics need at least one class")]
    NoClasses,
    /// The score matrix length is not a multiple of the number of classes.
    #[error(
        "scores has {len} entries, which is not a whole number of rows of {num_classes} classes \
         (expected a row-major [N, C] matrix)"
    )]
    RaggedScores {
        /// Length of `scores`.
        len: usize,
        /// The number of classes given.
        num_classes: usize,
    },
    /// `targets` or `ignore` does not have as many entries as `scores`.
    #[error(
        "{slice} has {actual} entries but scores has {expected}; both must be [N, C] row-major"
    )]
    LengthMismatch {
        /// Which slice is wrong: `"targets"` or `"ignore"`.
        slice: &'static str,
        /// Length of `scores`.
        expected: usize,
        /// Length of the wrong slice.
        actual: usize,
    },
    /// A score is NaN or infinite, so samples cannot be ranked.
    #[error("score of sample {sample}, class {class} is {value}, not a finite number")]
    NonFiniteScore {
        /// 0-based sample (row) index.
        sample: usize,
        /// 0-based class (column) index.
        class: usize,
        /// The offending score.
        value: f32,
    },
}

/// Computes mAP and the precision/recall metrics from row-major `[N, C]` matrices.
///
/// `scores` are sigmoid probabilities; `targets` and `ignore` are the multi-hot targets and
/// ignore masks (see `Dataset::target_matrix`, feature `datasets`). All three must
/// have `N * C` entries. `N = 0` is allowed and gives all-zero metrics.
///
/// # Errors
///
/// [`MetricsError`] when `num_classes` is 0, the lengths do not form `[N, C]` matrices, or a
/// score is not finite.
///
/// # Example
///
/// ```
/// use csra_core::metrics::evaluate;
///
/// // Two samples, two classes.
/// let scores = [0.9, 0.2, 0.4, 0.7];
/// let targets = [true, false, false, true];
/// let ignore = [false; 4];
/// let eval = evaluate(&scores, &targets, &ignore, 2)?;
/// assert_eq!(eval.map, 1.0);
/// assert_eq!(eval.all.of1, 1.0);
/// # Ok::<(), csra_core::metrics::MetricsError>(())
/// ```
pub fn evaluate(
    scores: &[f32],
    targets: &[bool],
    ignore: &[bool],
    num_classes: usize,
) -> Result<Evaluation, MetricsError> {
    let m = Matrix::new(scores, targets, ignore, num_classes)?;
    let per_class_ap: Vec<Option<f64>> = (0..num_classes)
        .map(|class| average_precision::ranked_ap(m.column(class)))
        .collect();
    Ok(Evaluation {
        num_samples: m.num_samples,
        num_classes,
        num_map_classes: per_class_ap.iter().flatten().count(),
        map: mean(per_class_ap.iter().flatten().copied()),
        per_class_ap,
        all: PrecisionRecall::from_counts(&precision_recall::counts(&m, None)),
        top3: PrecisionRecall::from_counts(&precision_recall::counts(&m, Some(TOP_K))),
    })
}

/// The mean of `values`, or 0 when there are none (never NaN).
fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .into_iter()
        .fold((0.0_f64, 0_usize), |(sum, n), v| (sum + v, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// Checked row-major `[N, C]` views of scores, targets and ignore masks.
#[derive(Debug, Clone, Copy)]
struct Matrix<'a> {
    scores: &'a [f32],
    targets: &'a [bool],
    ignore: &'a [bool],
    num_samples: usize,
    num_classes: usize,
}

/// One matrix entry: a score and whether it is a positive.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Entry {
    score: f32,
    positive: bool,
}

impl<'a> Matrix<'a> {
    /// Checks the shapes and that every score is finite.
    fn new(
        scores: &'a [f32],
        targets: &'a [bool],
        ignore: &'a [bool],
        num_classes: usize,
    ) -> Result<Self, MetricsError> {
        if num_classes == 0 {
            return Err(MetricsError::NoClasses);
        }
        if !scores.len().is_multiple_of(num_classes) {
            return Err(MetricsError::RaggedScores {
                len: scores.len(),
                num_classes,
            });
        }
        for (slice, actual) in [("targets", targets.len()), ("ignore", ignore.len())] {
            if actual != scores.len() {
                return Err(MetricsError::LengthMismatch {
                    slice,
                    expected: scores.len(),
                    actual,
                });
            }
        }
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            return Err(MetricsError::NonFiniteScore {
                sample: i / num_classes,
                class: i % num_classes,
                value: scores[i],
            });
        }
        Ok(Self {
            scores,
            targets,
            ignore,
            num_samples: scores.len() / num_classes,
            num_classes,
        })
    }

    /// The non-ignored entries of one class, in sample order.
    fn column(&self, class: usize) -> impl Iterator<Item = Entry> + 'a {
        let this = *self;
        (0..self.num_samples)
            .map(move |sample| sample * this.num_classes + class)
            .filter(move |&i| !this.ignore[i])
            .map(move |i| Entry {
                score: this.scores[i],
                positive: this.targets[i],
            })
    }

    /// The scores of one sample.
    fn row_scores(&self, sample: usize) -> &'a [f32] {
        let start = sample * self.num_classes;
        &self.scores[start..start + self.num_classes]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() < 1e-12,
            "{actual} != {expected} (expected)"
        );
    }

    /// Three samples, three classes; class 2 has no positive once its one positive is ignored.
    ///
    /// ```text
    ///            class 0       class 1       class 2
    /// sample 0   0.9  pos      0.6           0.3  pos, ignored
    /// sample 1   0.8           0.7  pos      0.2
    /// sample 2   0.1  pos      0.4           0.6
    /// ```
    ///
    /// Class 0 ranks samples 0, 1, 2: positives at ranks 1 and 3, AP = (1/1 + 2/3)/2 = 5/6.
    /// Class 1 ranks samples 1, 0, 2: positive at rank 1, AP = 1. Class 2: None.
    /// mAP = (5/6 + 1)/2 = 11/12.
    ///
    /// Precision/recall at 0.5 (all): class 0 predicts samples 0, 1 (tp 1, gt 2); class 1
    /// predicts samples 0, 1 (tp 1, gt 1); class 2 predicts sample 2 (tp 0, gt 0).
    /// CP = (1/2 + 1/2)/2 = 1/2, CR = (1/2 + 1)/2 = 3/4; OP = 2/5, OR = 2/3.
    fn example() -> (Vec<f32>, Vec<bool>, Vec<bool>) {
        let scores = vec![0.9, 0.6, 0.3, 0.8, 0.7, 0.2, 0.1, 0.4, 0.6];
        let targets = vec![true, false, true, false, true, false, true, false, false];
        let mut ignore = vec![false; 9];
        ignore[2] = true;
        (scores, targets, ignore)
    }

    #[test]
    fn evaluates_the_hand_computed_example() {
        let (scores, targets, ignore) = example();
        let eval = evaluate(&scores, &targets, &ignore, 3).unwrap();
        assert_eq!(eval.num_samples, 3);
        assert_eq!(eval.num_classes, 3);
        assert_eq!(eval.num_map_classes, 2);
        assert_eq!(eval.per_class_ap[2], None);
        assert_close(eval.per_class_ap[0].unwrap(), 5.0 / 6.0);
        assert_close(eval.per_class_ap[1].unwrap(), 1.0);
        assert_close(eval.map, 11.0 / 12.0);
        assert_close(eval.all.cp, 0.5);
        assert_close(eval.all.cr, 0.75);
        assert_close(eval.all.op, 0.4);
        assert_close(eval.all.or, 2.0 / 3.0);
        // Only 3 classes, so the top-3 selection changes nothing.
        assert_eq!(eval.top3, eval.all);
    }

    #[test]
    fn the_report_round_trips_through_json_with_null_for_missing_ap() {
        let (scores, targets, ignore) = example();
        let eval = evaluate(&scores, &targets, &ignore, 3).unwrap();
        let json = serde_json::to_string(&eval).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["per_class_ap"][1], 1.0);
        assert!(value["per_class_ap"][2].is_null());
        assert_eq!(value["num_map_classes"], 2);
        assert_eq!(value["top3"]["op"], 0.4);
        let back: Evaluation = serde_json::from_str(&json).unwrap();
        assert_eq!(back, eval);
    }

    #[test]
    fn no_positive_at_all_gives_zeros_not_nan() {
        let scores = [0.9, 0.1, 0.6, 0.4];
        let eval = evaluate(&scores, &[false; 4], &[false; 4], 2).unwrap();
        assert_eq!(eval.num_map_classes, 0);
        assert_eq!(eval.per_class_ap, vec![None, None]);
        assert_eq!(eval.map, 0.0);
        for pr in [eval.all, eval.top3] {
            assert_eq!(pr, PrecisionRecall::default());
        }
    }

    #[test]
    fn no_samples_gives_zeros() {
        let eval = evaluate(&[], &[], &[], 4).unwrap();
        assert_eq!(eval.num_samples, 0);
        assert_eq!(eval.per_class_ap, vec![None; 4]);
        assert_eq!(eval.map, 0.0);
        assert_eq!(eval.all, PrecisionRecall::default());
    }

    #[test]
    fn zero_classes_is_an_error() {
        let err = evaluate(&[], &[], &[], 0).unwrap_err();
        assert_eq!(err, MetricsError::NoClasses);
        assert_eq!(
            err.to_string(),
            "num_classes is 0: metrics need at least one class"
        );
    }

    #[test]
    fn a_ragged_score_matrix_is_an_error() {
        let err = evaluate(&[0.5; 5], &[false; 5], &[false; 5], 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "scores has 5 entries, which is not a whole number of rows of 2 classes \
             (expected a row-major [N, C] matrix)"
        );
    }

    #[test]
    fn a_length_mismatch_names_the_slice_and_both_sizes() {
        let err = evaluate(&[0.5; 4], &[false; 6], &[false; 4], 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "targets has 6 entries but scores has 4; both must be [N, C] row-major"
        );
        let err = evaluate(&[0.5; 4], &[false; 4], &[false; 2], 2).unwrap_err();
        assert_eq!(
            err,
            MetricsError::LengthMismatch {
                slice: "ignore",
                expected: 4,
                actual: 2
            }
        );
    }

    #[test]
    fn a_non_finite_score_names_sample_and_class() {
        let mut scores = [0.5; 6];
        scores[5] = f32::NAN;
        let err = evaluate(&scores, &[false; 6], &[false; 6], 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "score of sample 1, class 2 is NaN, not a finite number"
        );
        scores[5] = 0.5;
        scores[1] = f32::NEG_INFINITY;
        let err = evaluate(&scores, &[false; 6], &[false; 6], 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "score of sample 0, class 1 is -inf, not a finite number"
        );
    }
}
