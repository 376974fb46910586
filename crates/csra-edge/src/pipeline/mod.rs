//! The run loop: frames from a [`FrameStream`] through preprocessing, the backend and
//! post-processing to result lines on [`Sink`]s, with per-stage timings, periodic stats in the
//! log and a clean stop when asked.

mod prefetch;
mod record;
mod stats;

use prefetch::{Frames, Prepared};

use record::{Record, StageTimings};
pub use stats::nearest_rank;
use stats::{LatencyWindow, RateMeter};

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use csra_core::manifest::Manifest;
use thiserror::Error;

use crate::attention::{AttentionError, AttentionSaver};
use crate::backend::{Backend, BackendError, Outputs};
use crate::postprocess::{PostprocessConfig, Postprocessor};
use crate::preprocess::{PreprocessError, Preprocessor};
use crate::sink::{Delivery, Sink, SinkError};
use crate::source::{FrameStream, SourceError, StreamStats};

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
    /// Take and preprocess the next frame on a worker thread while the network runs this one
    /// (`--prefetch`): more frames per second where the network waits for the frame path
    /// (files, video), but a frame prepared ahead waits for the network, so a live source's
    /// frames would be older when they are run.
    pub prefetch: bool,
}

impl Summary {
    /// Result lines that some sink did not deliver, over all sinks.
    pub fn lost_lines(&self) -> u64 {
        self.sinks.iter().map(|d| d.lost).sum()
    }
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
            prefetch: false,
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
    /// Frames whose network output was not a probability for every class (NaN, infinite or
    /// outside [0, 1]): skipped, and counted in `bad_frames` too.
    pub bad_outputs: u64,
    /// Attention pictures that could not be written.
    pub attention_failures: u64,
    /// What each sink did with the lines, after the final flush.
    pub sinks: Vec<Delivery>,
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
    /// What each run's preprocessing buffers are made for.
    manifest: Manifest,
    backend: Box<dyn Backend>,
    postprocessor: Postprocessor,
    options: PipelineOptions,
}

/// The outcome of one frame; its labels and events are the post-processor's
/// [`Postprocessor::decision`].
struct Processed {
    outputs: Outputs,
    timings: StageTimings,
}

enum FrameFailure<'a> {
    Bad(&'a PreprocessError),
    /// The network ran but its probabilities are not probabilities.
    BadOutput(String),
    Fatal(BackendError),
}

/// What the stream gave for one pull.
// One value a frame, moved once: boxing the frame would cost an allocation per frame.
#[allow(clippy::large_enum_variant)]
enum Next {
    /// A frame to process.
    Frame(Prepared),
    /// A frame that could not be read: counted and skipped.
    Unreadable,
    /// The stream ended.
    End(StopReason),
}

/// What became of a frame taken from the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handled {
    /// It went through the network (and its line, if any, was sent).
    Processed,
    /// It could not be decoded: counted and skipped.
    Skipped,
    /// A sink's reader went away: the run ends.
    SinkClosed,
}

/// The counters and timers of one run, which become its [`Summary`].
struct RunState {
    start: Instant,
    latencies: LatencyWindow,
    meter: RateMeter,
    /// Frames taken from the stream, unreadable and undecodable ones included.
    taken: u64,
    bad_in_a_row: u64,
    /// Failed sends, for rate-limiting their warnings.
    send_errors: u64,
    summary: Summary,
}

impl RunState {
    fn new(start: Instant) -> Self {
        Self {
            start,
            latencies: LatencyWindow::new(LATENCY_WINDOW),
            meter: RateMeter::new(start),
            taken: 0,
            bad_in_a_row: 0,
            send_errors: 0,
            summary: Summary {
                frames: 0,
                bad_frames: 0,
                lines: 0,
                bad_outputs: 0,
                attention_failures: 0,
                sinks: Vec::new(),
                stream: StreamStats::default(),
                elapsed: Duration::ZERO,
                fps: 0.0,
                latency_p50_ms: None,
                latency_p99_ms: None,
                stop: StopReason::EndOfStream,
            },
        }
    }

    /// Counts a frame that could not be read or decoded.
    fn count_bad(&mut self) {
        self.bad_in_a_row += 1;
        self.summary.bad_frames += 1;
    }

    /// Counts a frame that went through the network; returns its number (from 0).
    fn count_processed(&mut self, timings: &StageTimings) -> u64 {
        self.bad_in_a_row = 0;
        let number = self.summary.frames;
        self.summary.frames += 1;
        self.meter.tick();
        self.latencies.push(timings.total);
        number
    }

    /// Logs the stats line when `every` has passed since the last one.
    fn log_stats_when_due(
        &mut self,
        every: Duration,
        stream: StreamStats,
        sinks: &[Box<dyn Sink>],
    ) {
        if self.meter.elapsed(Instant::now()) >= every {
            let fps = self.meter.take(Instant::now());
            let lost = sinks.iter().map(|s| s.delivery().lost).sum();
            log_stats(fps, &self.latencies, &self.summary, stream, lost);
        }
    }

    /// The summary of the run, ended for `reason`, with each sink's final delivery.
    fn finish(self, reason: StopReason, stream: StreamStats, sinks: Vec<Delivery>) -> Summary {
        let elapsed = self.start.elapsed();
        let seconds = elapsed.as_secs_f64();
        Summary {
            stop: reason,
            stream,
            elapsed,
            fps: if seconds > 0.0 {
                self.summary.frames as f64 / seconds
            } else {
                0.0
            },
            latency_p50_ms: self.latencies.quantile(0.5),
            latency_p99_ms: self.latencies.quantile(0.99),
            sinks,
            ..self.summary
        }
    }
}

/// Takes the next frame from `frames` and counts it; a frame that cannot be read
/// ([`SourceError::Io`]) is logged and counted as bad, any other source error ends the run.
fn next_frame(
    frames: &mut Frames<'_>,
    run: &mut RunState,
    stop: &AtomicBool,
) -> Result<Next, PipelineError> {
    match frames.pull() {
        Ok(Some(frame)) => {
            run.taken += 1;
            Ok(Next::Frame(frame))
        }
        // A stream also ends when a stop signal woke it up while it waited for a frame.
        Ok(None) if stop.load(Ordering::SeqCst) => Ok(Next::End(StopReason::Stopped)),
        Ok(None) => Ok(Next::End(StopReason::EndOfStream)),
        Err(SourceError::Io { what, source }) => {
            run.taken += 1;
            run.count_bad();
            log::warn!("skipped {what}: cannot read it ({source})");
            Ok(Next::Unreadable)
        }
        Err(error) => Err(error.into()),
    }
}

impl Pipeline {
    /// A pipeline for `manifest`'s model, already loaded into `backend`.
    pub fn new(
        manifest: &Manifest,
        backend: Box<dyn Backend>,
        postprocess: PostprocessConfig,
        options: PipelineOptions,
    ) -> Result<Self, PipelineError> {
        let input_len = Preprocessor::new(manifest).input_len();
        if backend.input_len() != input_len {
            return Err(PipelineError::InputSize {
                backend: backend.input_len(),
                manifest: input_len,
            });
        }
        log::info!("backend: {}", backend.describe());
        Ok(Self {
            manifest: manifest.clone(),
            backend,
            postprocessor: Postprocessor::new(postprocess),
            options,
        })
    }

    /// Pulls frames from `stream` until it ends, `stop` is set, the frame limit is reached or
    /// stdout's reader goes away; emits one line per frame (or per change with `events_only`)
    /// to every sink, and flushes them before returning.
    ///
    /// A frame that cannot be read ([`SourceError::Io`]) or decoded is logged, counted and
    /// skipped; any other source error, and any network error, ends the run with an error.
    ///
    /// With [`PipelineOptions::prefetch`] a worker thread reads and preprocesses the next
    /// frame while the network runs; at the end of the run a stream that the worker waits in
    /// is stopped ([`FrameStream::stopper`]).
    pub fn run(
        &mut self,
        stream: &mut dyn FrameStream,
        sinks: &mut [Box<dyn Sink>],
        stop: &AtomicBool,
    ) -> Result<Summary, PipelineError> {
        let run = RunState::new(Instant::now());
        // The frames borrow the manifest (for their buffers) while the loop borrows the
        // pipeline; one copy a run.
        let manifest = self.manifest.clone();
        let (reason, run) = if self.options.prefetch {
            std::thread::scope(|scope| {
                let mut frames = Frames::ahead(scope, &mut *stream, &manifest);
                let ended = self.run_frames(&mut frames, sinks, stop, run);
                frames.close();
                ended
            })
        } else {
            let mut frames = Frames::in_turn(&mut *stream, &manifest);
            self.run_frames(&mut frames, sinks, stop, run)
        }?;
        Ok(run.finish(reason, stream.stats(), flush_all(sinks)))
    }

    /// The run loop over `frames`, until a reason to stop.
    fn run_frames(
        &mut self,
        frames: &mut Frames<'_>,
        sinks: &mut [Box<dyn Sink>],
        stop: &AtomicBool,
        mut run: RunState,
    ) -> Result<(StopReason, RunState), PipelineError> {
        let reason = loop {
            if let Some(reason) = self.stop_before_next(&run, stop) {
                break reason;
            }
            let prepared = match next_frame(frames, &mut run, stop)? {
                Next::Frame(prepared) => prepared,
                Next::Unreadable => continue,
                Next::End(reason) => break reason,
            };
            let handled = self.handle(&prepared, sinks, &mut run);
            frames.recycle(prepared.slot);
            match handled? {
                Handled::Processed => {
                    run.log_stats_when_due(self.options.stats_every, frames.stats(), sinks);
                }
                Handled::Skipped => {}
                Handled::SinkClosed => break StopReason::SinkClosed,
            }
        };
        Ok((reason, run))
    }

    /// The backend back, to run it elsewhere (a benchmark comparing run settings).
    pub fn into_backend(self) -> Box<dyn Backend> {
        self.backend
    }

    /// Why the run must end before taking another frame, if it must: the stop flag, the frame
    /// limit, or too many bad frames in a row.
    fn stop_before_next(&self, run: &RunState, stop: &AtomicBool) -> Option<StopReason> {
        if stop.load(Ordering::SeqCst) {
            return Some(StopReason::Stopped);
        }
        if self.options.max_frames.is_some_and(|n| run.taken >= n) {
            return Some(StopReason::FrameLimit);
        }
        if self
            .options
            .bad_frame_limit
            .is_some_and(|n| run.bad_in_a_row >= n)
        {
            return Some(StopReason::BadFrames);
        }
        None
    }

    /// One frame taken from the stream: processed and counted, its attention saved and its
    /// line sent; a frame that could not be decoded is counted and skipped.
    fn handle(
        &mut self,
        prepared: &Prepared,
        sinks: &mut [Box<dyn Sink>],
        run: &mut RunState,
    ) -> Result<Handled, PipelineError> {
        let frame = &prepared.frame;
        let processed = match self.process(prepared) {
            Ok(processed) => processed,
            Err(FrameFailure::Bad(error)) => {
                run.count_bad();
                log::warn!("skipped a frame: {error}");
                return Ok(Handled::Skipped);
            }
            Err(FrameFailure::BadOutput(reason)) => {
                run.count_bad();
                run.summary.bad_outputs += 1;
                // The first, then every hundredth: a broken engine must not flood the log.
                if run.summary.bad_outputs % 100 == 1 {
                    log::warn!(
                        "skipped frame {} ({}): the network's output {reason}; {} such frame(s) so far (an fp16 engine that overflows, or a broken export: compare it with `csra-edge verify`)",
                        frame.sequence,
                        frame.origin,
                        run.summary.bad_outputs
                    );
                }
                return Ok(Handled::Skipped);
            }
            Err(FrameFailure::Fatal(error)) => return Err(error.into()),
        };
        let frame_number = run.count_processed(&processed.timings);
        if let Err(error) = self.save_attention(frame_number, prepared, &processed) {
            run.summary.attention_failures += 1;
            if run.summary.attention_failures % 100 == 1 {
                log::warn!(
                    "attention picture not saved ({} so far): {error}",
                    run.summary.attention_failures
                );
            }
        }
        let decision = self.postprocessor.decision();
        if self.options.events_only && decision.events.is_empty() {
            return Ok(Handled::Processed);
        }
        let record = Record::new(
            &self.manifest.classes,
            decision,
            frame_number,
            frame.sequence,
            &frame.origin,
            processed.timings,
            self.options.all_scores,
        )
        .with_frame_times(frame.captured.elapsed(), frame.pts);
        Ok(if self.emit(&record, sinks, run) {
            Handled::SinkClosed
        } else {
            Handled::Processed
        })
    }

    /// Runs one preprocessed frame through the network and post-processing, and times the
    /// stages.
    fn process<'a>(&mut self, prepared: &'a Prepared) -> Result<Processed, FrameFailure<'a>> {
        let frame = &prepared.frame;
        if let Err(error) = &prepared.outcome {
            return Err(FrameFailure::Bad(error));
        }
        let (taken, preprocessed) = (prepared.began, prepared.ended);
        let queued = Instant::now();
        let outputs = self
            .backend
            .run(&prepared.slot.input)
            .map_err(FrameFailure::Fatal)?;
        let inferred = Instant::now();
        outputs
            .check_probabilities()
            .map_err(FrameFailure::BadOutput)?;
        self.postprocessor.update(&outputs.probs);
        let done = Instant::now();
        let ms = |from: Instant, to: Instant| {
            (to.saturating_duration_since(from).as_secs_f64() * 1e6).round() / 1e3
        };
        // The engine's own measure when it has one (TensorRT's CUDA events).
        let network = outputs
            .network_ms
            .map_or_else(|| ms(queued, inferred), |t| (t * 1e3).round() / 1e3);
        let source = frame
            .in_source
            .map(|d| (d.as_secs_f64() * 1e6).round() / 1e3);
        Ok(Processed {
            outputs,
            timings: StageTimings {
                capture_age: ms(frame.captured, taken),
                preprocess: ms(taken, preprocessed),
                queued: ms(preprocessed, queued),
                network,
                postprocess: ms(inferred, done),
                total: ms(frame.captured, done) + source.unwrap_or(0.0),
                source,
            },
        })
    }

    /// Saves the frame's attention pictures when they are asked for.
    fn save_attention(
        &self,
        frame_number: u64,
        prepared: &Prepared,
        processed: &Processed,
    ) -> Result<(), AttentionError> {
        let Some(saver) = &self.options.attention else {
            return Ok(());
        };
        if !saver.wants(frame_number) {
            return Ok(());
        }
        let Some(maps) = &processed.outputs.attention else {
            return Ok(());
        };
        saver
            .save(
                frame_number,
                &prepared.frame.origin,
                prepared.slot.preprocessor.resized(),
                maps,
                &self.postprocessor.decision().labels,
                &self.manifest.classes,
            )
            .map(drop)
    }

    /// Sends one record to every sink; true when a sink's reader has gone away for good.
    fn emit(&self, record: &Record<'_>, sinks: &mut [Box<dyn Sink>], run: &mut RunState) -> bool {
        // A record is numbers and names only: it always encodes.
        let line = match serde_json::to_string(record) {
            Ok(line) => line,
            Err(error) => {
                log::error!("cannot encode a result line: {error}");
                return false;
            }
        };
        run.summary.lines += 1;
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
                    run.send_errors += 1;
                    // The first failure, then every hundredth, so a dead broker does not
                    // flood the log.
                    if run.send_errors % 100 == 1 {
                        log::warn!(
                            "result line not delivered ({} so far): {error}",
                            run.send_errors
                        );
                    }
                }
            }
        }
        closed
    }
}

/// Flushes every sink, each even when another fails (a dead broker must not keep stdout's
/// lines from being counted), and returns what each delivered.
fn flush_all(sinks: &mut [Box<dyn Sink>]) -> Vec<Delivery> {
    sinks
        .iter_mut()
        .map(|sink| {
            if let Err(error) = sink.flush() {
                log::warn!("{error}");
            }
            sink.delivery()
        })
        .collect()
}

fn log_stats(
    fps: f64,
    latencies: &LatencyWindow,
    summary: &Summary,
    stream: StreamStats,
    lost: u64,
) {
    let ms = |q| {
        latencies
            .quantile(q)
            .map_or("-".to_owned(), |v| format!("{v:.1}"))
    };
    log::info!(
        "{fps:.1} fps, latency p50 {} ms p99 {} ms; frames {}, bad {} (+{} flagged by the camera), dropped {}, reconnects {}, source errors {}, result lines lost {lost}",
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
