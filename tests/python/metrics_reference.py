#!/usr/bin/env python3
"""Independent reference for csra-core's metrics, run by tests/metrics_vs_sklearn.rs.

Reads one case as JSON on stdin:

    {"scores": [...], "targets": [...], "ignore": [...], "num_classes": C}

where scores (floats), targets and ignore (booleans) are row-major [N, C] matrices, or a JSON
list of such cases (one process for many cases: importing sklearn takes about a second), and
prints JSON on stdout, a report per case (a list of reports for a list of cases):

    {"per_class_ap": [AP or null per class], "map": float,
     "all":  {"per_class": [{"positives", "predicted", "true_positives", "precision",
                             "recall" (null without positives)}, ...],
              "cp", "cr", "cf1", "op", "or", "of1"},
     "top3": {same, with only each sample's 3 highest scores kept, as the official cal_PR.py}}

AP comes from sklearn.metrics.average_precision_score, which equals the non-interpolated AP of
the official cal_mAP.py only when there are no tied scores, so tied input is refused. Ignored
entries are dropped per class; classes without a (non-ignored) positive get null and are left
out of the mAP, CP and CR averages, as csra-core documents. Counts and aggregates follow the
official cal_PR.py formulas (predict_num == 0 counts as 1 in CP), written with numpy, except
that OP divides by the real number of predictions, as csra-core documents.
"""

import json
import sys

import numpy as np
from sklearn.metrics import average_precision_score

THRESHOLD = 0.5
TOP_K = 3


def load_case(case):
    num_classes = int(case["num_classes"])
    scores = np.asarray(case["scores"], dtype=np.float64).reshape(-1, num_classes)
    targets = np.asarray(case["targets"], dtype=bool).reshape(-1, num_classes)
    ignore = np.asarray(case["ignore"], dtype=bool).reshape(-1, num_classes)
    if targets.shape != scores.shape or ignore.shape != scores.shape:
        sys.exit("scores, targets and ignore must have the same [N, C] shape")
    return scores, targets, ignore


def refuse_ties(scores):
    """Ties would make sklearn's AP (and the top-k selection) differ from the ranked AP."""
    for what, lines in (("class", scores.T), ("sample", scores)):
        for index, line in enumerate(lines):
            if np.unique(line).size != line.size:
                sys.exit(f"tied scores in {what} {index}: the sklearn reference needs tie-free data")


def per_class_ap(scores, targets, ignore):
    aps = []
    for c in range(scores.shape[1]):
        keep = ~ignore[:, c]
        y_true = targets[keep, c]
        if not y_true.any():
            aps.append(None)
            continue
        aps.append(float(average_precision_score(y_true, scores[keep, c])))
    return aps


def keep_top_k(scores, k):
    """The official top-3 step: every score outside a sample's k highest is set to 0."""
    kept = scores.copy()
    for row in kept:
        row[np.argsort(-row)[k:]] = 0
    return kept


def precision_recall(scores, targets, ignore):
    per_class = []
    for c in range(scores.shape[1]):
        keep = ~ignore[:, c]
        y_true = targets[keep, c]
        y_pred = scores[keep, c] >= THRESHOLD
        positives = int(np.sum(y_true))
        predicted = int(np.sum(y_pred))
        true_positives = int(np.sum(y_true & y_pred))
        per_class.append(
            {
                "positives": positives,
                "predicted": predicted,
                "true_positives": true_positives,
                "precision": true_positives / max(predicted, 1),
                "recall": true_positives / positives if positives else None,
            }
        )

    gt_num = np.array([p["positives"] for p in per_class], dtype=np.float64)
    tp_num = np.array([p["true_positives"] for p in per_class], dtype=np.float64)
    predicted = np.array([p["predicted"] for p in per_class], dtype=np.float64)
    predict_num = np.maximum(predicted, 1)  # as cal_PR.py: avoid dividing by 0 in CP

    # cal_PR.py divides by sum(predict_num), counting a class without predictions as one.
    op = ratio(np.sum(tp_num), np.sum(predicted))
    or_ = ratio(np.sum(tp_num), np.sum(gt_num))
    scored = gt_num > 0  # cal_PR.py averages over all classes; csra-core over these
    cp = float(np.mean(tp_num[scored] / predict_num[scored])) if scored.any() else 0.0
    cr = float(np.mean(tp_num[scored] / gt_num[scored])) if scored.any() else 0.0
    return {
        "per_class": per_class,
        "cp": cp,
        "cr": cr,
        "cf1": f1(cp, cr),
        "op": op,
        "or": or_,
        "of1": f1(op, or_),
    }


def ratio(numerator, denominator):
    return float(numerator / denominator) if denominator else 0.0


def f1(precision, recall):
    total = precision + recall
    return 2 * precision * recall / total if total > 0 else 0.0


def evaluate(case):
    scores, targets, ignore = load_case(case)
    refuse_ties(scores)
    aps = per_class_ap(scores, targets, ignore)
    present = [ap for ap in aps if ap is not None]
    return {
        "per_class_ap": aps,
        "map": float(np.mean(present)) if present else 0.0,
        "all": precision_recall(scores, targets, ignore),
        "top3": precision_recall(keep_top_k(scores, TOP_K), targets, ignore),
    }


def main():
    request = json.load(sys.stdin)
    if isinstance(request, list):
        json.dump([evaluate(case) for case in request], sys.stdout)
    else:
        json.dump(evaluate(request), sys.stdout)


if __name__ == "__main__":
    main()
