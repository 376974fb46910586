//! Precision and recall at [`THRESHOLD`], as in the official `cal_PR.py`.

use serde::{Deserialize, Serialize};

use super::{mean, Matrix, MetricsError, THRESHOLD};

/// One class's counts over its non-ignored entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCounts {
    /// Entries that are positives (`gt_num` in the official code).
    pub positives: usize,
    /// Entries predicted, i.e. with `score >= 0.5` (and, for top-k, among the sample's k highest
    /// scores) (`predict_num`).
    pub predicted: usize,
    /// Predicted entries that are positives (`tp_num`).
    pub true_positives: usize,
}

impl ClassCounts {
    /// `true_positives / predicted`, where no prediction counts as one, as the official code's
    /// `predict_num[predict_num == 0] = 1` does: a class that predicts nothing has precision 0.
    pub fn precision(&self) -> f64 {
        self.true_positives as f64 / self.predicted.max(1) as f64
    }

    /// `true_positives / positives`, or `None` for a class without a positive.
    pub fn recall(&self) -> Option<f64> {
        (self.positives > 0).then(|| self.true_positives as f64 / self.positives as f64)
    }
}

/// Per-class (CP, CR, CF1) and overall (OP, OR, OF1) precision, recall and F1.
///
/// All values are fractions in `[0, 1]`, never NaN. Computed by [`PrecisionRecall::from_counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PrecisionRecall {
    /// Per-class precision averaged over the classes with a positive.
    pub cp: f64,
    /// Per-class recall averaged over the classes with a positive.
    pub cr: f64,
    /// `2 * CP * CR / (CP + CR)`, or 0 when both are 0.
    pub cf1: f64,
    /// Overall precision: all true positives over all predictions.
    pub op: f64,
    /// Overall recall: all true positives over all positives.
    pub or: f64,
    /// `2 * OP * OR / (OP + OR)`, or 0 when both are 0.
    pub of1: f64,
}

impl PrecisionRecall {
    /// The official formulas, applied to per-class counts:
    ///
    /// ```text
    /// predict_num = max(predicted, 1)              per class
    /// OP = sum(tp) / sum(predicted)                over all classes
    /// OR = sum(tp) / sum(positives)                over all classes
    /// CP = mean(tp / predict_num)                  over the classes with a positive
    /// CR = mean(tp / positives)                    over the classes with a positive
    /// F1 = 2 * P * R / (P + R)
    /// ```
    ///
    /// Two deviations from the official code, both only where it is degenerate. It averages CP
    /// and CR over all classes, which is the same whenever every class has a positive (and NaN
    /// otherwise). And it applies the `predict_num == 0 → 1` clamp, meant for CP, before
    /// summing OP's denominator too, so each class without a prediction would count as one
    /// false positive: a perfect model scored on a split where some class is absent would get
    /// OP < 1. OP here counts real predictions, which equals the official value whenever every
    /// class has a prediction. A ratio or mean with nothing to divide by is 0.
    pub fn from_counts(counts: &[ClassCounts]) -> Self {
        let with_positive = || counts.iter().filter(|c| c.positives > 0);
        let cp = mean(with_positive().map(ClassCounts::precision));
        let cr = mean(with_positive().filter_map(ClassCounts::recall));

        let true_positives: usize = counts.iter().map(|c| c.true_positives).sum();
        let predicted: usize = counts.iter().map(|c| c.predicted).sum();
        let positives: usize = counts.iter().map(|c| c.positives).sum();
        let op = ratio(true_positives, predicted);
        let or = ratio(true_positives, positives);

        Self {
            cp,
            cr,
            cf1: f1(cp, cr),
            op,
            or,
            of1: f1(op, or),
        }
    }
}

/// Per-class counts at [`THRESHOLD`] from row-major `[N, C]` matrices (see
/// [`evaluate`](super::evaluate) for the layout).
///
/// With `top_k = Some(k)`, only a sample's `k` highest scores can be predictions (the official
/// top-3 metric zeroes the other scores before thresholding). The `k` are picked among all of
/// the sample's classes, ignored ones included; equal scores go to the lower class index.
/// Ignored entries are then left out of every count.
///
/// # Errors
///
/// As [`evaluate`](super::evaluate).
pub fn class_counts(
    scores: &[f32],
    targets: &[bool],
    ignore: &[bool],
    num_classes: usize,
    top_k: Option<usize>,
) -> Result<Vec<ClassCounts>, MetricsError> {
    let m = Matrix::new(scores, targets, ignore, num_classes)?;
    Ok(counts(&m, top_k))
}

/// CP/CR/CF1 and OP/OR/OF1 at [`THRESHOLD`] from row-major `[N, C]` matrices: the
/// [`class_counts`] put through [`PrecisionRecall::from_counts`].
///
/// # Errors
///
/// As [`evaluate`](super::evaluate).
pub fn precision_recall(
    scores: &[f32],
    targets: &[bool],
    ignore: &[bool],
    num_classes: usize,
    top_k: Option<usize>,
) -> Result<PrecisionRecall, MetricsError> {
    let counts = class_counts(scores, targets, ignore, num_classes, top_k)?;
    Ok(PrecisionRecall::from_counts(&counts))
}

/// Per-class counts of a checked matrix.
pub(super) fn counts(m: &Matrix<'_>, top_k: Option<usize>) -> Vec<ClassCounts> {
    let mut counts = vec![ClassCounts::default(); m.num_classes];
    let mut selected = vec![true; m.num_classes];
    for sample in 0..m.num_samples {
        let row = m.row_scores(sample);
        if let Some(k) = top_k {
            select_top_k(row, k, &mut selected);
        }
        let start = sample * m.num_classes;
        for (class, count) in counts.iter_mut().enumerate() {
            let i = start + class;
            if m.ignore[i] {
                continue;
            }
            let positive = m.targets[i];
            let predicted = selected[class] && m.scores[i] >= THRESHOLD;
            count.positives += usize::from(positive);
            count.predicted += usize::from(predicted);
            count.true_positives += usize::from(positive && predicted);
        }
    }
    counts
}

/// Marks in `selected` the `k` highest scores of `row`; ties go to the lower class index.
fn select_top_k(row: &[f32], k: usize, selected: &mut [bool]) {
    let mut order: Vec<usize> = (0..row.len()).collect();
    // Stable sort: equal scores keep class order, so the lower index wins a tie.
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
    selected.fill(false);
    for &class in order.iter().take(k) {
        selected[class] = true;
    }
}

/// `numerator / denominator`, or 0 when the denominator is 0.
fn ratio(numerator: usize, denominator: usize) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// The harmonic mean of a precision and a recall, or 0 when both are 0.
fn f1(precision: f64, recall: f64) -> f64 {
    let sum = precision + recall;
    if sum > 0.0 {
        2.0 * precision * recall / sum
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::TOP_K;

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() < 1e-12,
            "{actual} != {expected} (expected)"
        );
    }

    fn counts(positives: usize, predicted: usize, true_positives: usize) -> ClassCounts {
        ClassCounts {
            positives,
            predicted,
            true_positives,
        }
    }

    /// Three samples, three classes, nothing ignored:
    ///
    /// ```text
    ///            class 0      class 1      class 2
    /// sample 0   0.9  pos     0.6          0.1
    /// sample 1   0.8  pos     0.2  pos     0.7
    /// sample 2   0.3          0.4          0.55 pos
    /// ```
    ///
    /// Class 0: predicted 2, positives 2, tp 2 -> P 1,   R 1.
    /// Class 1: predicted 1, positives 1, tp 0 -> P 0,   R 0.
    /// Class 2: predicted 2, positives 1, tp 1 -> P 1/2, R 1.
    ///
    /// CP = (1 + 0 + 1/2)/3 = 1/2, CR = (1 + 0 + 1)/3 = 2/3, CF1 = 2(1/2)(2/3)/(7/6) = 4/7.
    /// OP = 3/5, OR = 3/4, OF1 = 2(3/5)(3/4)/(27/20) = 2/3.
    #[test]
    fn per_class_and_overall_on_a_hand_computed_3x3() {
        let scores = [0.9, 0.6, 0.1, 0.8, 0.2, 0.7, 0.3, 0.4, 0.55];
        let targets = [true, false, false, true, true, false, false, false, true];
        let got = class_counts(&scores, &targets, &[false; 9], 3, None).unwrap();
        assert_eq!(got, vec![counts(2, 2, 2), counts(1, 1, 0), counts(1, 2, 1)]);
        let pr = PrecisionRecall::from_counts(&got);
        assert_close(pr.cp, 0.5);
        assert_close(pr.cr, 2.0 / 3.0);
        assert_close(pr.cf1, 4.0 / 7.0);
        assert_close(pr.op, 0.6);
        assert_close(pr.or, 0.75);
        assert_close(pr.of1, 2.0 / 3.0);
    }

    #[test]
    fn the_threshold_is_inclusive() {
        let got = class_counts(&[0.5, 0.499_999_97], &[true, true], &[false; 2], 1, None);
        assert_eq!(got.unwrap(), vec![counts(2, 1, 1)]);
    }

    /// Two samples, four classes:
    ///
    /// ```text
    ///            class 0     class 1     class 2     class 3
    /// sample 0   0.9  pos    0.8         0.7         0.6  pos
    /// sample 1   0.1         0.2         0.3  pos    0.95 pos
    /// ```
    ///
    /// All: class 0 (pos 1, pred 1, tp 1), class 1 (0, 1, 0), class 2 (1, 1, 0),
    /// class 3 (2, 2, 2). OP = 3/5, OR = 3/4; class 1 has no positive, so CP and CR average
    /// classes 0, 2, 3: CP = (1 + 0 + 1)/3 = 2/3, CR = (1 + 0 + 1)/3 = 2/3.
    ///
    /// Top 3: sample 0 keeps classes 0, 1, 2, so class 3 loses its prediction there:
    /// class 3 becomes (2, 1, 1). OP = 2/4, OR = 2/4, CP = (1 + 0 + 1)/3 = 2/3,
    /// CR = (1 + 0 + 1/2)/3 = 1/2.
    #[test]
    fn top_3_differs_from_all() {
        let scores = [0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3, 0.95];
        let targets = [true, false, false, true, false, false, true, true];
        let ignore = [false; 8];

        let all = class_counts(&scores, &targets, &ignore, 4, None).unwrap();
        assert_eq!(
            all,
            vec![
                counts(1, 1, 1),
                counts(0, 1, 0),
                counts(1, 1, 0),
                counts(2, 2, 2)
            ]
        );
        let pr = PrecisionRecall::from_counts(&all);
        assert_close(pr.op, 0.6);
        assert_close(pr.or, 0.75);
        assert_close(pr.cp, 2.0 / 3.0);
        assert_close(pr.cr, 2.0 / 3.0);

        let top3 = class_counts(&scores, &targets, &ignore, 4, Some(TOP_K)).unwrap();
        assert_eq!(top3[3], counts(2, 1, 1));
        let pr = PrecisionRecall::from_counts(&top3);
        assert_close(pr.op, 0.5);
        assert_close(pr.or, 0.5);
        assert_close(pr.cp, 2.0 / 3.0);
        assert_close(pr.cr, 0.5);
        assert_close(pr.cf1, 2.0 * (2.0 / 3.0) * 0.5 / (2.0 / 3.0 + 0.5));
    }

    #[test]
    fn top_k_ties_go_to_the_lower_class_index() {
        // Classes 1 to 4 tie at 0.7 for 3 slots: classes 1, 2, 3 win, class 4 is not predicted
        // although it scores as high. Class 0 ranks last and is not selected either.
        let scores = [0.6, 0.7, 0.7, 0.7, 0.7];
        let got = class_counts(&scores, &[true; 5], &[false; 5], 5, Some(3)).unwrap();
        let predicted: Vec<usize> = got.iter().map(|c| c.predicted).collect();
        assert_eq!(predicted, vec![0, 1, 1, 1, 0]);
    }

    #[test]
    fn ignored_entries_are_dropped_from_counts_but_take_top_k_slots() {
        // One sample, four classes, all scores above the threshold; class 0 is ignored.
        let scores = [0.9, 0.8, 0.7, 0.6];
        let targets = [false, true, false, true];
        let ignore = [true, false, false, false];
        let all = class_counts(&scores, &targets, &ignore, 4, None).unwrap();
        // Class 0's prediction is not a false positive: it is not counted at all.
        assert_eq!(all[0], ClassCounts::default());
        assert_eq!(all[3], counts(1, 1, 1));
        // The ignored class 0 still takes one of the 3 slots, so class 3 is not predicted.
        let top3 = class_counts(&scores, &targets, &ignore, 4, Some(3)).unwrap();
        assert_eq!(top3[0], ClassCounts::default());
        assert_eq!(top3[3], counts(1, 0, 0));
    }

    #[test]
    fn ignoring_a_false_positive_raises_precision() {
        let scores = [0.9, 0.8];
        let targets = [true, false];
        let pr = precision_recall(&scores, &targets, &[false; 2], 1, None).unwrap();
        assert_close(pr.op, 0.5);
        let pr = precision_recall(&scores, &targets, &[false, true], 1, None).unwrap();
        assert_close(pr.op, 1.0);
    }

    #[test]
    fn a_class_without_predictions_has_precision_zero_but_adds_no_false_positive() {
        // Class 0: positives 2, predicted 2, tp 2. Class 1: positives 1, predicted 0 -> 1, tp 0.
        // CP = CR = (1 + 0)/2 = 1/2 (the official clamp), OR = 2/3, and OP = 2/2: nothing
        // predicted is nothing wrongly predicted (the official code would say 2/3).
        let pr = PrecisionRecall::from_counts(&[counts(2, 2, 2), counts(1, 0, 0)]);
        assert_close(pr.op, 1.0);
        assert_close(pr.or, 2.0 / 3.0);
        assert_close(pr.cp, 0.5);
        assert_close(pr.cr, 0.5);
        assert_close(pr.cf1, 0.5);
    }

    #[test]
    fn a_class_without_positives_is_left_out_of_cp_and_cr_only() {
        // Class 1 has no positive but two false positives: they lower OP, not CP.
        let pr = PrecisionRecall::from_counts(&[counts(2, 2, 2), counts(0, 2, 0)]);
        assert_close(pr.cp, 1.0);
        assert_close(pr.cr, 1.0);
        assert_close(pr.op, 0.5);
        assert_close(pr.or, 1.0);
        assert!(!pr.cf1.is_nan() && !pr.of1.is_nan());
    }

    #[test]
    fn nothing_to_divide_is_zero_not_nan() {
        assert_eq!(
            PrecisionRecall::from_counts(&[]),
            PrecisionRecall::default()
        );
        let none = PrecisionRecall::from_counts(&[counts(0, 0, 0), counts(0, 3, 0)]);
        assert_eq!(none, PrecisionRecall::default());
        // Positives but no hit at all: P = R = 0, so both F1 are 0.
        let missed = PrecisionRecall::from_counts(&[counts(3, 2, 0)]);
        assert_eq!(missed, PrecisionRecall::default());
    }

    #[test]
    fn per_class_precision_and_recall() {
        assert_eq!(counts(4, 0, 0).precision(), 0.0);
        assert_eq!(counts(4, 2, 1).precision(), 0.5);
        assert_eq!(counts(4, 2, 1).recall(), Some(0.25));
        assert_eq!(counts(0, 2, 0).recall(), None);
    }

    #[test]
    fn errors_are_reported_not_panicked() {
        let err = class_counts(&[0.5; 3], &[false; 3], &[false; 3], 2, Some(3)).unwrap_err();
        assert!(matches!(
            err,
            MetricsError::RaggedScores {
                len: 3,
                num_classes: 2
            }
        ));
    }
}
