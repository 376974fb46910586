//! The run loop: frames from a [`FrameStream`] through preprocessing, the backend and
//! post-processing to result lines on [`Sink`]s, with per-stage timings, periodic stats in the
//! log and a clean stop when asked.

mod record;
mod stats;

pub use record::{Record, StageTimings};
pub use stats::{nearest_rank, LatencyWindow, RateMeter};

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use csra_core::manifest::Manifest;
use thiserror::Error;

use crate::attention::AttentionSaver;
use crate::backend::{Backend, BackendError, Outputs};
use crate::frame::{Frame, FrameStream, SourceError, StreamStats};
use crate::postprocess::{Decision, PostprocessConfig, Postprocessor};
use crate::preprocess::{PreprocessError, Preprocessor};
use crate::sink::{Sink, SinkError};

/// How many recent latencies the percentiles are computed over.
const LATENCY_WINDOW: usize = 10_000;

/// An error that ends a run.
#[derive(Debug, Error)]
pub enum PipelineError {
    /// The backend takes a different input size than the manifest describes.
    #[error("the backend takes {backend} input values but the manifest's input is {manifest}; the model and its manifest disagree")]
    InputSize {
        /// The backend's input length.
        backend: usize,
        /// The manifest's.
        manifest: usize,
    },
    /// The frame source failed for good.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The network failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// A sink failed when flushing at the end.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// What the run prints and when it stops.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Emit a line only for frames where a label appeared or disappeared (`--events`).
    pub events_only: bool,
    /// Add every class's probability to each line (`--scores all`).
    pub all_scores: bool,
    /// Stop after this many frames taken from the stream, bad ones included (`--frames`).
    pub max_frames: Option<u64>,
    /// How often the stats line is logged.
    pub stats_every: Duration,
    /// Where attention pictures go (`--save-attention`).
    pub attention: Option<AttentionSaver>,
    /// End the run after this many bad frames in a row (a looped file list that holds nothing
    /// readable would otherwise spin for ever); `None` keeps going, as a camera should.
    pub bad_frame_limit: Option<u64>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        Self {
            events_only: false,
            all_scores: false,
            max_frames: None,
            stats_every: Duration::from_secs(10),
            attention: None,
            bad_frame_limit: None,
        }
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The stream has no more frames.
    EndOfStream,
    /// The stop flag was set (SIGINT, SIGTERM).
    Stopped,
    /// `--frames` frames were taken.
    FrameLimit,
    /// A sink's reader went away (a closed pipe).
    SinkClosed,
    /// [`PipelineOptions::bad_frame_limit`] bad frames came in a row.
    BadFrames,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Frames that went through the network.
    pub frames: u64,
    /// Frames that could not be read or decoded and were skipped.
    pub bad_frames: u64,
    /// Result lines emitted.
    pub lines: u64,
    /// Lines a sink failed to deliver.
    pub sink_errors: u64,
    /// The stream's own counters (dropped, reconnects, source errors, corrupt frames).
    pub stream: StreamStats,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Processed frames per second over the run.
    pub fps: f64,
    /// Median capture-to-result latency in ms (over the last frames), if any.
    pub latency_p50_ms: Option<f64>,
    /// 99th-percentile capture-to-result latency in ms, if any.
    pub latency_p99_ms: Option<f64>,
    /// Why the run ended.
    pub stop: StopReason,
}

/// One model's preprocessing, network and post-processing, run over streams.
pub struct Pipeline {
    preprocessor: Preprocessor,
    backend: Box<dyn Backend>,
    postprocessor: Postprocessor,
    classes: Vec<String>,
    options: PipelineOptions,
    input: Vec<f32>,
}

/// The outcome of one frame.
struct Processed {
    outputs: Outputs,
    decision: Decision,
    timings: StageTimings,
}

enum FrameFailure {
    Bad(PreprocessError),
    Fatal(BackendError),
}

impl Pipeline {
    /// A pipeline for `manifest`'s model, already loaded into `backend`.
    pub fn new(
        manifest: &Manifest,
        backend: Box<dyn Backend>,
        postprocess: PostprocessConfig,
        options: PipelineOptions,
    ) -> Result<Self, PipelineError> {
        let preprocessor = Preprocessor::new(manifest);
        if backend.input_len() != preprocessor.input_len() {
            return Err(PipelineError::InputSize {
                backend: backend.input_len(),
                manifest: preprocessor.input_len(),
            });
        }
        log::info!("backend: {}", backend.describe());
        Ok(Self {
            input: vec![0.0; preprocessor.input_len()],
            preprocessor,
            backend,
            postprocessor: Postprocessor::new(postprocess),
            classes: manifest.classes.clone(),
            options,
        })
    }

    /// Pulls frames from `stream` until it ends, `stop` is set, the frame limit is reached or
    /// stdout's reader goes away; emits one line per frame (or per change with `events_only`)
    /// to every sink, and flushes them before returning.
    ///
    /// A frame that cannot be read ([`SourceError::Io`]) or decoded is logged, counted and
    /// skipped; any other source error, and any network error, ends the run with an error.
    pub fn run(
        &mut self,
        stream: &mut dyn FrameStream,
        sinks: &mut [Box<dyn Sink>],
        stop: &AtomicBool,
    ) -> Result<Summary, PipelineError> {
        let start = Instant::now();
        let mut latencies = LatencyWindow::new(LATENCY_WINDOW);
        let mut meter = RateMeter::new(start);
        let mut taken = 0u64;
        let mut bad_in_a_row = 0u64;
        let mut summary = Summary {
            frames: 0,
            bad_frames: 0,
            lines: 0,
            sink_errors: 0,
            stream: StreamStats::default(),
            elapsed: Duration::ZERO,
            fps: 0.0,
            latency_p50_ms: None,
            latency_p99_ms: None,
            stop: StopReason::EndOfStream,
        };
        let stop_reason = loop {
            if stop.load(Ordering::SeqCst) {
                break StopReason::Stopped;
            }
            if self.options.max_frames.is_some_and(|n| taken >= n) {
                break StopReason::FrameLimit;
            }
            if self
                .options
                .bad_frame_limit
                .is_some_and(|n| bad_in_a_row >= n)
            {
                break StopReason::BadFrames;
            }
            let frame = match stream.next() {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    break if stop.load(Ordering::SeqCst) {
                        StopReason::Stopped
                    } else {
                        StopReason::EndOfStream
                    }
                }
                Err(SourceError::Io { what, source }) => {
                    taken += 1;
                    bad_in_a_row += 1;
                    summary.bad_frames += 1;
                    log::warn!("skipped {what}: cannot read it ({source})");
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            taken += 1;
            let processed = match self.process(&frame) {
                Ok(processed) => processed,
                Err(FrameFailure::Bad(error)) => {
                    bad_in_a_row += 1;
                    summary.bad_frames += 1;
                    log::warn!("skipped a frame: {error}");
                    continue;
                }
                Err(FrameFailure::Fatal(error)) => return Err(error.into()),
            };
            bad_in_a_row = 0;
            let frame_number = summary.frames;
            summary.frames += 1;
            meter.tick();
            latencies.push(processed.timings.total);
            self.save_attention(frame_number, &frame, &processed);
            if !self.options.events_only || !processed.decision.events.is_empty() {
                let record = Record::new(
                    &self.classes,
                    &processed.decision,
                    frame_number,
                    frame.sequence,
                    &frame.origin,
                    processed.timings,
                    self.options.all_scores,
                );
                if self.emit(&record, sinks, &mut summary) {
                    break StopReason::SinkClosed;
                }
            }
            if meter.elapsed(Instant::now()) >= self.options.stats_every {
                log_stats(
                    meter.take(Instant::now()),
                    &latencies,
                    &summary,
                    stream.stats(),
                );
            }
        };
        for sink in sinks.iter_mut() {
            sink.flush()?;
        }
        summary.stop = stop_reason;
        summary.stream = stream.stats();
        summary.elapsed = start.elapsed();
        let seconds = summary.elapsed.as_secs_f64();
        summary.fps = if seconds > 0.0 {
            summary.frames as f64 / seconds
        } else {
            0.0
        };
        summary.latency_p50_ms = latencies.quantile(0.5);
        summary.latency_p99_ms = latencies.quantile(0.99);
        Ok(summary)
    }

    /// Runs one frame through the three stages and times them.
    fn process(&mut self, frame: &Frame) -> Result<Processed, FrameFailure> {
        let taken = Instant::now();
        self.preprocessor
            .run(frame, &mut self.input)
            .map_err(FrameFailure::Bad)?;
        let preprocessed = Instant::now();
        let outputs = self.backend.run(&self.input).map_err(FrameFailure::Fatal)?;
        let inferred = Instant::now();
        let decision = self.postprocessor.update(&outputs.probs);
        let done = Instant::now();
        let ms = |from: Instant, to: Instant| {
            (to.saturating_duration_since(from).as_secs_f64() * 1e6).round() / 1e3
        };
        Ok(Processed {
            outputs,
            decision,
            timings: StageTimings {
                capture_age: ms(frame.captured, taken),
                preprocess: ms(taken, preprocessed),
                network: ms(preprocessed, inferred),
                postprocess: ms(inferred, done),
                total: ms(frame.captured, done),
            },
        })
    }

    fn save_attention(&self, frame_number: u64, frame: &Frame, processed: &Processed) {
        let Some(saver) = &self.options.attention else {
            return;
        };
        if !saver.wants(frame_number) {
            return;
        }
        let Some(maps) = &processed.outputs.attention else {
            return;
        };
        let saved = saver.save(
            frame_number,
            &frame.origin,
            self.preprocessor.resized(),
            maps,
            &processed.decision.labels,
            &self.classes,
        );
        if let Err(error) = saved {
            log::warn!("attention picture not saved: {error}");
        }
    }

    /// Sends one record to every sink; true when a sink's reader has gone away for good.
    fn emit(
        &self,
        record: &Record<'_>,
        sinks: &mut [Box<dyn Sink>],
        summary: &mut Summary,
    ) -> bool {
        let line = match serde_json::to_string(record) {
            Ok(line) => line,
            Err(error) => {
                log::error!("cannot encode a result line: {error}");
                summary.sink_errors += 1;
                return false;
            }
        };
        summary.lines += 1;
        let mut closed = false;
        for sink in sinks.iter_mut() {
            match sink.send(&line) {
                Ok(()) => {}
                Err(SinkError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    closed = true;
                }
                Err(error) => {
                    summary.sink_errors += 1;
                    // The first failure, then every hundredth, so a dead broker does not
                    // flood the log.
                    if summary.sink_errors % 100 == 1 {
                        log::warn!(
                            "result line not delivered ({} so far): {error}",
                            summary.sink_errors
                        );
                    }
                }
            }
        }
        closed
    }
}

fn log_stats(fps: f64, latencies: &LatencyWindow, summary: &Summary, stream: StreamStats) {
    let ms = |q| {
        latencies
            .quantile(q)
            .map_or("-".to_owned(), |v| format!("{v:.1}"))
    };
    log::info!(
        "{fps:.1} fps, latency p50 {} ms p99 {} ms; frames {}, bad {} (+{} flagged by the camera), dropped {}, reconnects {}, source errors {}",
        ms(0.5),
        ms(0.99),
        summary.frames,
        summary.bad_frames,
        stream.corrupt,
        stream.dropped,
        stream.reconnects,
        stream.source_errors
    );
}
