//! How far one backend's outputs are from tract's on the same inputs: the numbers
//! `csra-edge verify` prints and judges an engine by.
//!
//! There are no ground-truth labels on a device, so the ranking check scores the engine
//! against tract's own decisions: a class is a positive of an image when tract's probability
//! reaches the manifest threshold. Against its own decisions tract ranks every positive above
//! every negative (mAP 1 wherever a class has a positive), so the engine's mAP on the same
//! targets is how much of that ranking it keeps.

use csra_core::metrics::{evaluate, MetricsError};
use serde::Serialize;

use crate::backend::Outputs;

/// The comparison of a candidate backend's outputs with tract's, over the same images.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Images compared.
    pub images: usize,
    /// The largest |Δ logit| over every image and class.
    pub max_abs_logit_delta: f64,
    /// Where it is: (image index, class index), `None` without images.
    pub worst: Option<(usize, usize)>,
    /// The largest |Δ probability|.
    pub max_abs_prob_delta: f64,
    /// Images whose set of `k` most probable classes differs.
    pub topk_differs: usize,
    /// The `k` of [`Comparison::topk_differs`].
    pub k: usize,
    /// Images whose thresholded labels differ.
    pub labels_differ: usize,
    /// The candidate's mAP against tract's thresholded labels (tract's own is 1).
    pub map_vs_reference_labels: f64,
}

impl Comparison {
    /// Compares `candidate` with `reference` (tract) image by image; `thresholds` are the
    /// per-class decision thresholds, `k` the top-k size.
    pub fn new(
        reference: &[Outputs],
        candidate: &[Outputs],
        thresholds: &[f32],
        k: usize,
    ) -> Result<Self, MetricsError> {
        let classes = thresholds.len();
        let mut comparison = Self {
            images: reference.len().min(candidate.len()),
            max_abs_logit_delta: 0.0,
            worst: None,
            max_abs_prob_delta: 0.0,
            topk_differs: 0,
            k,
            labels_differ: 0,
            map_vs_reference_labels: 0.0,
        };
        let mut scores = Vec::with_capacity(comparison.images * classes);
        let mut targets = Vec::with_capacity(comparison.images * classes);
        for (image, (r, c)) in reference.iter().zip(candidate).enumerate() {
            for (class, (a, b)) in r.logits.iter().zip(&c.logits).enumerate() {
                let delta = f64::from((a - b).abs());
                if comparison.worst.is_none() || delta > comparison.max_abs_logit_delta {
                    comparison.max_abs_logit_delta = delta;
                    comparison.worst = Some((image, class));
                }
            }
            for (a, b) in r.probs.iter().zip(&c.probs) {
                comparison.max_abs_prob_delta =
                    comparison.max_abs_prob_delta.max(f64::from((a - b).abs()));
            }
            if top_k(&r.probs, k) != top_k(&c.probs, k) {
                comparison.topk_differs += 1;
            }
            let labels = |probs: &[f32]| -> Vec<bool> {
                probs.iter().zip(thresholds).map(|(p, t)| p >= t).collect()
            };
            let reference_labels = labels(&r.probs);
            if reference_labels != labels(&c.probs) {
                comparison.labels_differ += 1;
            }
            scores.extend_from_slice(&c.probs);
            targets.extend(reference_labels);
        }
        let ignore = vec![false; targets.len()];
        comparison.map_vs_reference_labels = evaluate(&scores, &targets, &ignore, classes)?.map;
        Ok(comparison)
    }
}

/// The indices of the `k` largest values, sorted (ties: the lower index first).
fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order.truncate(k);
    order.sort_unstable();
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs(logits: &[f32]) -> Outputs {
        Outputs {
            logits: logits.to_vec(),
            probs: logits.iter().map(|l| 1.0 / (1.0 + (-l).exp())).collect(),
            attention: None,
            network_ms: None,
        }
    }

    #[test]
    fn identical_outputs_agree_completely() {
        let a = [outputs(&[2.0, -1.0, 0.5]), outputs(&[-3.0, 1.0, 0.0])];
        let c = Comparison::new(&a, &a, &[0.5; 3], 2).unwrap();
        assert_eq!(c.images, 2);
        assert_eq!(c.max_abs_logit_delta, 0.0);
        assert_eq!((c.topk_differs, c.labels_differ), (0, 0));
        assert_eq!(c.map_vs_reference_labels, 1.0);
    }

    #[test]
    fn hand_computed_differences() {
        // Image 0: class 2 moves by 0.75 and overtakes class 1 in the top 2; its label at 0.5
        // (logit 0) flips on. Image 1: classes 0 and 1 swap ranks inside the top 1.
        let reference = [outputs(&[2.0, 1.0, -0.5]), outputs(&[1.0, 0.9, -2.0])];
        let candidate = [outputs(&[2.0, 0.0, 0.25]), outputs(&[0.8, 0.9, -2.0])];
        let c = Comparison::new(&reference, &candidate, &[0.5; 3], 2).unwrap();
        assert!((c.max_abs_logit_delta - 1.0).abs() < 1e-6, "{c:?}");
        assert_eq!(c.worst, Some((0, 1)));
        assert_eq!(c.topk_differs, 1);
        assert_eq!(c.labels_differ, 1);
        // Tract's positives: image 0 classes 0, 1; image 1 classes 0, 1. Candidate ranks:
        // class 0: 2.0 > 0.8, both positive → AP 1; class 1: 0.9 > 0.0, both positive → AP 1;
        // class 2 has no positive. mAP 1 although a label flipped: ranking, not thresholds.
        assert_eq!(c.map_vs_reference_labels, 1.0);
    }

    #[test]
    fn a_reversed_ranking_lowers_map() {
        // One class; tract says image 0 is positive, image 1 negative; the candidate ranks
        // image 1 first: AP = 1/2.
        let reference = [outputs(&[3.0]), outputs(&[-3.0])];
        let candidate = [outputs(&[-1.0]), outputs(&[1.0])];
        let c = Comparison::new(&reference, &candidate, &[0.5], 1).unwrap();
        assert!((c.map_vs_reference_labels - 0.5).abs() < 1e-12, "{c:?}");
        assert_eq!(c.labels_differ, 2);
    }

    #[test]
    fn top_k_breaks_ties_by_index() {
        assert_eq!(top_k(&[0.5, 0.9, 0.5, 0.1], 2), vec![0, 1]);
        assert_eq!(top_k(&[0.1, 0.2], 5), vec![0, 1]);
    }
}
