//! One result line: what a frame gave, as the JSON object sinks deliver.

use std::time::Duration;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::postprocess::{Change, Decision};

/// Per-stage times of one frame, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageTimings {
    /// From the source handing the frame over to the pipeline taking it.
    pub capture_age: f64,
    /// Decoding, resizing and normalising.
    pub preprocess: f64,
    /// From preprocessed to the network taking the frame: a frame prepared ahead
    /// (`--prefetch`) waits here for the network to finish the one before; about 0 otherwise.
    pub queued: f64,
    /// The network.
    pub network: f64,
    /// Smoothing, thresholds and events.
    pub postprocess: f64,
    /// From capture to the finished result (from the source's input when `source` is known).
    pub total: f64,
    /// In the source before capture: decoding and converting in a GStreamer pipeline; absent
    /// for sources that do not measure it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<f64>,
}

/// A reported label.
#[derive(Debug, Clone, Serialize)]
pub struct LabelRecord<'a> {
    /// The class name.
    pub label: &'a str,
    /// Its (smoothed) probability.
    pub prob: f32,
}

/// A label that appeared or disappeared.
#[derive(Debug, Clone, Serialize)]
pub struct EventRecord<'a> {
    /// The class name.
    pub label: &'a str,
    /// `appeared` or `disappeared`.
    pub change: &'static str,
    /// Its (smoothed) probability now.
    pub prob: f32,
}

/// Every class's probability, as an object in class order.
#[derive(Debug, Clone)]
pub struct Scores<'a> {
    names: &'a [String],
    values: &'a [f32],
}

impl Serialize for Scores<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.names.len()))?;
        for (name, value) in self.names.iter().zip(self.values) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// The JSON object of one processed frame.
#[derive(Debug, Clone, Serialize)]
pub struct Record<'a> {
    /// When the result was ready, RFC 3339 in UTC.
    pub time: String,
    /// When the source captured the frame (handed it over), RFC 3339 in UTC.
    pub captured: String,
    /// The frame's presentation time in its stream in seconds (a video file's position),
    /// when the source has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pts: Option<f64>,
    /// The pipeline's count of processed frames, from 0.
    pub frame: u64,
    /// The source's sequence number (gaps are dropped frames).
    pub sequence: u64,
    /// Where the frame came from.
    pub origin: &'a str,
    /// The reported labels, most probable first.
    pub labels: Vec<LabelRecord<'a>>,
    /// Labels that appeared or disappeared with this frame.
    pub events: Vec<EventRecord<'a>>,
    /// Per-stage times in milliseconds.
    pub timings_ms: StageTimings,
    /// Every class's probability (`--scores all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scores: Option<Scores<'a>>,
}

impl<'a> Record<'a> {
    /// The record of `decision` for classes named `names`.
    pub fn new(
        names: &'a [String],
        decision: &'a Decision,
        frame: u64,
        sequence: u64,
        origin: &'a str,
        timings_ms: StageTimings,
        all_scores: bool,
    ) -> Self {
        let name = |index: usize| names.get(index).map_or("?", String::as_str);
        let now = jiff::Timestamp::now();
        Self {
            time: now.to_string(),
            captured: now.to_string(),
            pts: None,
            frame,
            sequence,
            origin,
            labels: decision
                .labels
                .iter()
                .map(|l| LabelRecord {
                    label: name(l.index),
                    prob: l.prob,
                })
                .collect(),
            events: decision
                .events
                .iter()
                .map(|e| EventRecord {
                    label: name(e.index),
                    change: match e.change {
                        Change::Appeared => "appeared",
                        Change::Disappeared => "disappeared",
                    },
                    prob: e.prob,
                })
                .collect(),
            timings_ms,
            scores: all_scores.then_some(Scores {
                names,
                values: &decision.scores,
            }),
        }
    }

    /// The record with the frame's capture time, `age` ago, and its presentation time.
    #[must_use]
    pub fn with_frame_times(mut self, age: Duration, pts: Option<Duration>) -> Self {
        let now = jiff::Timestamp::now();
        let captured = jiff::SignedDuration::try_from(age)
            .ok()
            .and_then(|age| now.checked_sub(age).ok())
            .unwrap_or(now);
        self.captured = captured.to_string();
        self.pts = pts.map(|t| (t.as_secs_f64() * 1e6).round() / 1e6);
        self
    }
}
