//! Cross-checks `csra_core::metrics` against an independent reference: scikit-learn's
//! `average_precision_score` and numpy counts, in `tests/python/metrics_reference.py`.
//!
//! The reference needs Python with `requirements/test.txt`:
//!
//! ```text
//! python3 -m venv .venv && .venv/bin/pip install -r requirements/test.txt
//! CSRA_PYTHON=.venv/bin/python cargo test -p csra-tests --test metrics_vs_sklearn
//! ```
//!
//! A relative `CSRA_PYTHON` path is taken from the workspace root; without `CSRA_PYTHON` the
//! workspace's `.venv` is used, and without either the test fails with what to set up.
//!
//! The random cases are tie-free: sklearn's AP equals the non-interpolated AP only without ties
//! (tie handling has its own hand-computed unit tests in csra-core).

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use csra_core::metrics::{class_counts, evaluate, ClassCounts, PrecisionRecall, TOP_K};
use csra_test_support::{python, PYTHON_SETUP};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value};

/// Both sides accumulate in f64 but in different orders; anything above rounding is a bug.
const TOLERANCE: f64 = 1e-9;

/// One random evaluation input, row-major `[N, C]`.
struct Case {
    seed: u64,
    scores: Vec<f32>,
    targets: Vec<bool>,
    ignore: Vec<bool>,
    num_classes: usize,
}

/// A tie-free random case with ignored entries, a score of exactly 0.5 (the threshold is
/// inclusive), one class whose only positives are ignored, so it has no positive, and one class
/// scored below 0.5 throughout, so it predicts nothing (the official `predict_num == 0` case).
fn random_case(seed: u64, num_samples: usize, num_classes: usize) -> Case {
    let mut rng = StdRng::seed_from_u64(seed);
    let len = num_samples * num_classes;
    let empty_class = rng.random_range(0..num_classes);
    // Another class where there is one, so it has positives but no prediction.
    let quiet_class = (empty_class + 1 + rng.random_range(0..num_classes.max(2) - 1)) % num_classes;

    // All scores distinct, so no column or row has a tie.
    let mut scores = Vec::with_capacity(len);
    let mut seen = HashSet::from([0.5_f32.to_bits()]);
    while scores.len() < len {
        let mut score = rng.random::<f32>();
        if scores.len() % num_classes == quiet_class {
            score *= 0.5; // exact: below 0.5
        }
        if seen.insert(score.to_bits()) {
            scores.push(score);
        }
    }
    if num_classes > 1 {
        // Outside the quiet class, where it is a prediction.
        let class = (quiet_class + 1) % num_classes;
        scores[rng.random_range(0..num_samples) * num_classes + class] = 0.5;
    }

    let mut ignore: Vec<bool> = (0..len).map(|_| rng.random_bool(0.15)).collect();
    ignore[empty_class] = true; // sample 0 of the empty class
    let targets = (0..len)
        .map(|i| {
            if i % num_classes == empty_class {
                // Positive exactly where ignored: both sides must drop these, leaving the class
                // without a positive. (Readers never mark an ignored label positive; the
                // metrics must not count it if one does.)
                ignore[i]
            } else {
                !ignore[i] && rng.random_bool(0.35)
            }
        })
        .collect();
    Case {
        seed,
        scores,
        targets,
        ignore,
        num_classes,
    }
}

/// Runs the reference on all cases in one process (importing sklearn takes about a second) and
/// returns a report per case.
fn reference(python: &Path, cases: &[Case]) -> Vec<Value> {
    let script = csra_test_support::workspace_root().join("tests/python/metrics_reference.py");
    let input: Vec<Value> = cases
        .iter()
        .map(|case| {
            json!({
                // f64 holds every f32 exactly, so Python ranks and thresholds the same numbers.
                "scores": case.scores.iter().map(|&s| f64::from(s)).collect::<Vec<_>>(),
                "targets": case.targets,
                "ignore": case.ignore,
                "num_classes": case.num_classes,
            })
        })
        .collect();
    let mut child = Command::new(python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {PYTHON_SETUP}", python.display()));
    let input = serde_json::to_vec(&input).expect("the cases serialise");
    // Closing stdin (the drop) ends the input. A write error is reported after the exit status:
    // a Python that fails early (no numpy, say) closes the pipe, and its stderr says why.
    let written = child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(&input);
    let output = child.wait_with_output().expect("wait for the reference");
    assert!(
        output.status.success(),
        "{} {} failed ({}):\n{}\nIs requirements/test.txt installed? {PYTHON_SETUP}",
        python.display(),
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    written.expect("write the cases to the reference");
    let reports: Vec<Value> =
        serde_json::from_slice(&output.stdout).expect("the reference prints a JSON list");
    assert_eq!(reports.len(), cases.len(), "one reference report per case");
    reports
}

fn number(value: &Value, what: &str) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: expected a number in the reference, got {value}"))
}

fn count(value: &Value, what: &str) -> usize {
    let n = value
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: expected a count in the reference, got {value}"));
    usize::try_from(n).expect("count fits usize")
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= TOLERANCE,
        "{what}: csra-core {actual} != reference {expected}"
    );
}

fn assert_close_opt(actual: Option<f64>, expected: &Value, what: &str) {
    match (actual, expected.is_null()) {
        (None, true) => {}
        (Some(actual), false) => assert_close(actual, number(expected, what), what),
        _ => panic!("{what}: csra-core {actual:?} != reference {expected}"),
    }
}

fn check_precision_recall(
    counts: &[ClassCounts],
    pr: &PrecisionRecall,
    reference: &Value,
    what: &str,
) {
    let per_class = reference["per_class"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: the reference has no per_class array"));
    assert_eq!(counts.len(), per_class.len(), "{what}: number of classes");
    for (class, (ours, theirs)) in counts.iter().zip(per_class).enumerate() {
        let what = format!("{what}, class {class}");
        let expected = ClassCounts {
            positives: count(&theirs["positives"], &what),
            predicted: count(&theirs["predicted"], &what),
            true_positives: count(&theirs["true_positives"], &what),
        };
        assert_eq!(*ours, expected, "{what}: counts");
        assert_close(ours.precision(), number(&theirs["precision"], &what), &what);
        assert_close_opt(ours.recall(), &theirs["recall"], &what);
    }
    let fields = [
        ("cp", pr.cp),
        ("cr", pr.cr),
        ("cf1", pr.cf1),
        ("op", pr.op),
        ("or", pr.or),
        ("of1", pr.of1),
    ];
    for (name, ours) in fields {
        let what = format!("{what}, {name}");
        assert_close(ours, number(&reference[name], &what), &what);
    }
}

fn check(case: &Case, reference: &Value) {
    let seed = case.seed;
    let (scores, targets, ignore, c) =
        (&case.scores, &case.targets, &case.ignore, case.num_classes);
    let eval = evaluate(scores, targets, ignore, c).expect("valid case");

    let aps = reference["per_class_ap"]
        .as_array()
        .unwrap_or_else(|| panic!("seed {seed}: the reference has no per_class_ap array"));
    assert_eq!(eval.per_class_ap.len(), aps.len(), "seed {seed}: classes");
    for (class, (&ours, theirs)) in eval.per_class_ap.iter().zip(aps).enumerate() {
        assert_close_opt(ours, theirs, &format!("seed {seed}, AP of class {class}"));
    }
    let scored = aps.iter().filter(|ap| !ap.is_null()).count();
    assert_eq!(eval.num_map_classes, scored, "seed {seed}: classes in mAP");
    assert!(
        scored < c,
        "seed {seed}: the case must have a class without positives"
    );
    assert_close(
        eval.map,
        number(&reference["map"], "map"),
        &format!("seed {seed}, mAP"),
    );

    for (name, top_k, pr) in [("all", None, &eval.all), ("top3", Some(TOP_K), &eval.top3)] {
        let counts = class_counts(scores, targets, ignore, c, top_k).expect("valid case");
        check_precision_recall(
            &counts,
            pr,
            &reference[name],
            &format!("seed {seed}, {name}"),
        );
    }
}

#[test]
fn metrics_match_sklearn_on_random_tie_free_cases() {
    let python = python();
    // (samples, classes): a single column, fewer classes than the top 3, and larger matrices.
    let shapes = [
        (1, 1),
        (4, 2),
        (9, 3),
        (30, 4),
        (64, 7),
        (120, 10),
        (300, 20),
        (500, 80),
    ];
    let cases: Vec<Case> = (1_u64..)
        .zip(shapes)
        .map(|(seed, (n, c))| random_case(seed, n, c))
        .collect();
    assert!(
        cases.iter().any(|case| case
            .ignore
            .iter()
            .zip(&case.targets)
            .any(|(&i, &t)| i && !t)),
        "the cases must ignore some negatives"
    );

    let reports = reference(&python, &cases);
    for (case, report) in cases.iter().zip(&reports) {
        check(case, report);
    }
}
