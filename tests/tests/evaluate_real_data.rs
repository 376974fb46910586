//! Readers feeding the metrics on the real data: the matrices line up, ignored labels are
//! dropped, and classes absent from a split leave mAP defined.

// A panic with the unwrapped error is the clearest failure report a test can give.
#![allow(clippy::unwrap_used)]

use csra_core::dataset::{coco, voc, Dataset};
use csra_core::metrics::evaluate;

/// Scores that rank every positive first: 0.9 for positives, 0.1 for negatives, and `ignored`
/// for ignored labels.
fn oracle_scores(data: &Dataset, ignored: f32) -> Vec<f32> {
    data.target_matrix()
        .iter()
        .zip(data.ignore_matrix())
        .map(|(&t, i)| match (t, i) {
            (_, true) => ignored,
            (true, false) => 0.9,
            (false, false) => 0.1,
        })
        .collect()
}

#[test]
fn coco_val_subset_oracle_scores_are_perfect_and_absent_classes_are_left_out() {
    let root = csra_test_support::data_dir().join("coco-mini");
    let mut data = coco::read(
        &root.join("annotations/instances_val2017.json"),
        &root.join("val2017"),
    )
    .unwrap();
    // The first images only: every class occurs somewhere in val2017, but not in these.
    data.samples.truncate(20);
    let n = data.classes.len();
    let eval = evaluate(
        &oracle_scores(&data, 0.0),
        &data.target_matrix(),
        &data.ignore_matrix(),
        n,
    )
    .unwrap();

    let present = data.positive_counts().iter().filter(|&&c| c > 0).count();
    assert!(
        present < n,
        "the first 20 val images should lack some classes"
    );
    assert_eq!(eval.num_map_classes, present);
    assert_eq!(eval.map, 1.0);
    assert_eq!(
        (eval.all.cp, eval.all.cr, eval.all.op, eval.all.or),
        (1.0, 1.0, 1.0, 1.0)
    );
    for (ap, count) in eval.per_class_ap.iter().zip(data.positive_counts()) {
        assert_eq!(ap.is_some(), count > 0);
    }
    // Top-3 cannot recall the positives of images with more than three labels.
    assert!(eval.top3.or < 1.0 && eval.top3.op == 1.0, "{:?}", eval.top3);
}

#[test]
fn voc_test_ignored_difficult_labels_do_not_count_against_a_model() {
    let main = csra_test_support::data_dir().join("voc2007-imagesets/Main");
    let data = voc::read_imagesets(&main, "test", &main.join("../JPEGImages")).unwrap();
    let n = data.classes.len();
    assert!(data.ignored_counts().iter().sum::<usize>() > 0);

    // A model confident about every difficult-only object: had those labels been negatives,
    // each would be a top-ranked false positive.
    let scores = oracle_scores(&data, 0.99);
    let eval = evaluate(&scores, &data.target_matrix(), &data.ignore_matrix(), n).unwrap();
    assert_eq!(eval.num_map_classes, 20);
    assert_eq!(eval.map, 1.0);
    assert_eq!(eval.all.op, 1.0);

    // The same scores judged without the ignore mask: precision and mAP must drop.
    let no_ignore = vec![false; scores.len()];
    let strict = evaluate(&scores, &data.target_matrix(), &no_ignore, n).unwrap();
    assert!(strict.map < 1.0 && strict.all.op < 1.0, "{strict:?}");
}
