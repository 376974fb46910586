//! From the network's probabilities to reported labels: temporal smoothing, per-class
//! thresholds with hysteresis, top-k, and the labels that appeared or disappeared since the
//! last frame.

mod hysteresis;
mod smoothing;

use hysteresis::Hysteresis;
use smoothing::Smoother;
pub use smoothing::Smoothing;

use csra_core::manifest::Manifest;

/// How probabilities become labels.
#[derive(Debug, Clone, PartialEq)]
pub struct PostprocessConfig {
    /// The threshold of each class, in class order.
    pub thresholds: Vec<f32>,
    /// Report at most this many labels per frame (the most probable), if set.
    pub topk: Option<usize>,
    /// Smoothing over frames.
    pub smoothing: Smoothing,
    /// A label on stays on until its smoothed probability falls below `threshold − margin`.
    pub margin: f32,
}

impl PostprocessConfig {
    /// Thresholds from `global` when given, else the manifest's per-class and default values;
    /// no top-k, smoothing or margin.
    pub fn from_manifest(manifest: &Manifest, global: Option<f32>) -> Self {
        let thresholds = (0..manifest.num_classes)
            .map(|c| global.unwrap_or_else(|| manifest.threshold(c)))
            .collect();
        Self {
            thresholds,
            topk: None,
            smoothing: Smoothing::None,
            margin: 0.0,
        }
    }
}

/// A reported label: its class index and (smoothed) probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Label {
    /// The class index.
    pub index: usize,
    /// Its smoothed probability.
    pub prob: f32,
}

/// Whether a label came or went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Reported now, not on the previous frame.
    Appeared,
    /// Reported on the previous frame, not now.
    Disappeared,
}

/// A label that appeared or disappeared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    /// The class index.
    pub index: usize,
    /// What happened.
    pub change: Change,
    /// Its smoothed probability now.
    pub prob: f32,
}

/// What one frame's probabilities gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// Every class's smoothed probability.
    pub scores: Vec<f32>,
    /// The reported labels, most probable first.
    pub labels: Vec<Label>,
    /// Changes since the previous frame: appearances (most probable first), then
    /// disappearances (in class order).
    pub events: Vec<Event>,
}

/// The post-processing state of one stream. Its buffers are reused from frame to frame, so
/// a frame allocates nothing once the label lists have grown to their longest.
#[derive(Debug, Clone)]
pub struct Postprocessor {
    topk: Option<usize>,
    smoother: Smoother,
    hysteresis: Hysteresis,
    /// The classes reported for the last frame.
    reported: Vec<bool>,
    /// The classes reported for this frame, while events are worked out.
    now: Vec<bool>,
    decision: Decision,
}

impl Postprocessor {
    /// A post-processor that has seen no frame yet.
    pub fn new(config: PostprocessConfig) -> Self {
        let reported = vec![false; config.thresholds.len()];
        Self {
            topk: config.topk,
            smoother: Smoother::new(config.smoothing),
            hysteresis: Hysteresis::new(config.thresholds, config.margin),
            now: reported.clone(),
            reported,
            decision: Decision::default(),
        }
    }

    /// Takes one frame's probabilities (class order) and decides its labels and events.
    pub fn update(&mut self, probs: &[f32]) -> &Decision {
        let scores = self.smoother.update(probs);
        let on = self.hysteresis.update(scores);
        let Decision {
            scores: kept,
            labels,
            events,
        } = &mut self.decision;
        kept.clear();
        kept.extend_from_slice(scores);
        labels.clear();
        labels.extend(
            on.iter()
                .zip(scores)
                .enumerate()
                .filter(|(_, (&on, _))| on)
                .map(|(index, (_, &prob))| Label { index, prob }),
        );
        // The index breaks ties, so the order is total and an unstable sort (which needs no
        // buffer) gives the stable one's result.
        labels.sort_unstable_by(|a, b| b.prob.total_cmp(&a.prob).then(a.index.cmp(&b.index)));
        if let Some(k) = self.topk {
            labels.truncate(k);
        }
        self.now.fill(false);
        for label in labels.iter() {
            self.now[label.index] = true;
        }
        events.clear();
        events.extend(
            labels
                .iter()
                .filter(|l| !self.reported[l.index])
                .map(|l| Event {
                    index: l.index,
                    change: Change::Appeared,
                    prob: l.prob,
                }),
        );
        events.extend(
            (0..self.now.len())
                .filter(|&c| self.reported[c] && !self.now[c])
                .map(|index| Event {
                    index,
                    change: Change::Disappeared,
                    prob: scores[index],
                }),
        );
        std::mem::swap(&mut self.reported, &mut self.now);
        &self.decision
    }

    /// What the last frame gave (empty before the first).
    pub fn decision(&self) -> &Decision {
        &self.decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(thresholds: &[f32]) -> PostprocessConfig {
        PostprocessConfig {
            thresholds: thresholds.to_vec(),
            topk: None,
            smoothing: Smoothing::None,
            margin: 0.0,
        }
    }

    fn indices(labels: &[Label]) -> Vec<usize> {
        labels.iter().map(|l| l.index).collect()
    }

    #[test]
    fn labels_are_above_threshold_most_probable_first() {
        let mut p = Postprocessor::new(config(&[0.5, 0.5, 0.5, 0.9]));
        let d = p.update(&[0.6, 0.2, 0.95, 0.8]);
        assert_eq!(indices(&d.labels), [2, 0]);
        assert_eq!(d.scores, [0.6, 0.2, 0.95, 0.8]);
    }

    #[test]
    fn topk_keeps_the_most_probable() {
        let mut p = Postprocessor::new(PostprocessConfig {
            topk: Some(1),
            ..config(&[0.5; 3])
        });
        assert_eq!(indices(&p.update(&[0.7, 0.9, 0.8]).labels), [1]);
    }

    #[test]
    fn events_follow_the_reported_set() {
        let mut p = Postprocessor::new(config(&[0.5; 3]));
        let e = p.update(&[0.6, 0.1, 0.9]).events.clone();
        assert_eq!(
            e.iter().map(|e| (e.index, e.change)).collect::<Vec<_>>(),
            [(2, Change::Appeared), (0, Change::Appeared)]
        );
        assert!(p.update(&[0.7, 0.2, 0.8]).events.is_empty());
        let e = p.update(&[0.2, 0.6, 0.8]).events.clone();
        assert_eq!(
            e.iter().map(|e| (e.index, e.change)).collect::<Vec<_>>(),
            [(1, Change::Appeared), (0, Change::Disappeared)]
        );
        assert!((e[1].prob - 0.2).abs() < 1e-7);
    }

    #[test]
    fn smoothing_and_hysteresis_stop_a_flickering_label() {
        // A class alternating 0.7 / 0.3 at threshold 0.5: raw, it toggles every frame.
        let frames = [0.7, 0.3, 0.7, 0.3, 0.7, 0.3];
        let mut raw = Postprocessor::new(config(&[0.5]));
        let raw_events: usize = frames.iter().map(|&x| raw.update(&[x]).events.len()).sum();
        assert_eq!(raw_events, 6);
        // Window of 2 (means 0.7, 0.5, 0.5, ...) with margin 0.1: on at the first frame, then
        // stays on (0.5 ≥ 0.4): one event.
        let mut smooth = Postprocessor::new(PostprocessConfig {
            smoothing: Smoothing::Window(2),
            margin: 0.1,
            ..config(&[0.5])
        });
        let events: Vec<Event> = frames
            .iter()
            .flat_map(|&x| smooth.update(&[x]).events.clone())
            .collect();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].change, Change::Appeared);
    }

    #[test]
    fn thresholds_come_from_the_flag_or_the_manifest() {
        let labels = csra_core::labels::LabelSet::new(["cat", "dog"], "test").unwrap();
        let mut manifest = Manifest::new(
            "model.onnx",
            &labels,
            csra_core::manifest::InputSpec {
                name: "input".into(),
                layout: csra_core::manifest::Layout::Nchw,
                width: 32,
                height: 32,
                color: csra_core::manifest::ColorOrder::Rgb,
                dynamic_batch: false,
            },
            csra_core::head::HeadSpec::baseline(),
            csra_core::manifest::Provenance::default(),
        );
        manifest.thresholds.per_class.insert("dog".into(), 0.7);
        assert_eq!(
            PostprocessConfig::from_manifest(&manifest, None).thresholds,
            [0.5, 0.7]
        );
        assert_eq!(
            PostprocessConfig::from_manifest(&manifest, Some(0.3)).thresholds,
            [0.3, 0.3]
        );
    }
}
