//! Non-interpolated average precision of one class, as in the official `cal_mAP.py`.

use super::{Entry, Matrix, MetricsError};

/// The non-interpolated average precision of one class column.
///
/// Non-ignored samples are ranked by score, descending; AP is the mean, over the positives, of
/// the precision at the positive's rank: (positives within the top `i`) / `i`. Entries with
/// `ignore == true` are dropped first, whatever their target. Equal scores keep sample order
/// (the lower index ranks first; see the [module docs](super) on ties).
///
/// Returns `None` when no non-ignored entry is a positive: AP is undefined there, and
/// [`evaluate`](super::evaluate) leaves such a class out of mAP.
///
/// # Errors
///
/// [`MetricsError`] when `scores`, `targets` and `ignore` (one column each) differ in length,
/// or a score is not finite.
///
/// ```
/// use csra_core::metrics::average_precision;
///
/// // Positives at ranks 1 and 3: AP = (1/1 + 2/3) / 2.
/// let ap = average_precision(&[0.9, 0.8, 0.7], &[true, false, true], &[false; 3])?;
/// assert_eq!(ap, Some((1.0 + 2.0 / 3.0) / 2.0));
/// # Ok::<(), csra_core::metrics::MetricsError>(())
/// ```
pub fn average_precision(
    scores: &[f32],
    targets: &[bool],
    ignore: &[bool],
) -> Result<Option<f64>, MetricsError> {
    let column = Matrix::new(scores, targets, ignore, 1)?;
    Ok(ranked_ap(column.column(0)))
}

/// AP of the (already non-ignored) entries of one class, given in sample order.
pub(super) fn ranked_ap(column: impl Iterator<Item = Entry>) -> Option<f64> {
    let mut ranked: Vec<Entry> = column.collect();
    // `sort_by` is stable, so tied scores keep sample order: the documented tie rule.
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut positives = 0_u64;
    let mut precision_sum = 0.0_f64;
    for (rank, entry) in (1_u64..).zip(&ranked) {
        if entry.positive {
            positives += 1;
            precision_sum += positives as f64 / rank as f64;
        }
    }
    (positives > 0).then(|| precision_sum / positives as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column_ap(scores: &[f32], targets: &[bool], ignore: &[bool]) -> Option<f64> {
        average_precision(scores, targets, ignore).unwrap()
    }

    fn assert_close(actual: Option<f64>, expected: f64) {
        let actual = actual.expect("AP should be defined");
        assert!(
            (actual - expected).abs() < 1e-12,
            "{actual} != {expected} (expected)"
        );
    }

    #[test]
    fn worked_example_with_positives_at_ranks_1_3_4() {
        // Ranked by score: 0.95 (pos), 0.9, 0.6 (pos), 0.5 (pos), 0.1.
        // Precision at each positive: 1/1, 2/3, 3/4; AP = (1 + 2/3 + 3/4) / 3 = 29/36.
        let scores = [0.6, 0.1, 0.95, 0.5, 0.9];
        let targets = [true, false, true, true, false];
        let ap = column_ap(&scores, &targets, &[false; 5]);
        assert_close(ap, (1.0 + 2.0 / 3.0 + 3.0 / 4.0) / 3.0);
        assert_close(ap, 29.0 / 36.0);
    }

    #[test]
    fn all_positives_on_top_is_one() {
        let ap = column_ap(&[0.2, 0.9, 0.8], &[false, true, true], &[false; 3]);
        assert_eq!(ap, Some(1.0));
    }

    #[test]
    fn ties_keep_sample_order() {
        // A positive and a negative tied at 0.5 behind a positive at 0.9.
        // Negative first (sample 1 before sample 2): ranks 1 and 3, AP = (1 + 2/3) / 2 = 5/6.
        let scores = [0.9, 0.5, 0.5];
        let negative_first = column_ap(&scores, &[true, false, true], &[false; 3]);
        assert_close(negative_first, 5.0 / 6.0);
        // Positive first (sample 1 before sample 2): ranks 1 and 2, AP = 1.
        let positive_first = column_ap(&scores, &[true, true, false], &[false; 3]);
        assert_eq!(positive_first, Some(1.0));
    }

    #[test]
    fn ties_at_the_top_rank_by_index() {
        // All tied: the order is the sample order, positives at ranks 2 and 4.
        // AP = (1/2 + 2/4) / 2 = 1/2.
        let ap = column_ap(&[0.3; 4], &[false, true, false, true], &[false; 4]);
        assert_close(ap, 0.5);
    }

    #[test]
    fn ignored_entries_are_dropped_before_ranking() {
        let scores = [0.9, 0.8, 0.7];
        let targets = [false, false, true];
        // Nothing ignored: the positive is at rank 3, AP = 1/3.
        assert_close(column_ap(&scores, &targets, &[false; 3]), 1.0 / 3.0);
        // The top negative ignored: rank 2, AP = 1/2.
        let ap = column_ap(&scores, &targets, &[true, false, false]);
        assert_close(ap, 0.5);
        // Both negatives ignored: rank 1, AP = 1.
        let ap = column_ap(&scores, &targets, &[true, true, false]);
        assert_eq!(ap, Some(1.0));
    }

    #[test]
    fn an_ignored_positive_is_not_a_positive() {
        // Sample 0 is a positive but ignored; the remaining positive ranks 2nd of 2: AP = 1/2.
        let ap = column_ap(
            &[0.9, 0.8, 0.7],
            &[true, false, true],
            &[true, false, false],
        );
        assert_close(ap, 0.5);
    }

    #[test]
    fn no_positive_is_none() {
        assert_eq!(column_ap(&[0.9, 0.1], &[false, false], &[false; 2]), None);
        // The only positive ignored.
        assert_eq!(column_ap(&[0.9, 0.1], &[true, false], &[true, false]), None);
        assert_eq!(column_ap(&[], &[], &[]), None);
    }

    #[test]
    fn bad_input_is_an_error_not_a_guess() {
        let err = average_precision(&[f32::NAN, 0.5], &[false, true], &[false; 2]).unwrap_err();
        assert!(
            err.to_string().contains("sample 0, class 0 is NaN"),
            "{err}"
        );
        let err = average_precision(&[0.9, 0.8, 0.7], &[false, true], &[false; 3]).unwrap_err();
        assert!(err.to_string().contains("targets has 2 entries"), "{err}");
    }
}
