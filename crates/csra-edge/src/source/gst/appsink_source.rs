//! [`GstSource`]: a [`FrameSource`] that runs a GStreamer pipeline ([`describe`]'s) and pulls
//! its RGB frames from an `appsink`; and [`VideoFileStream`], a video file read frame by frame
//! through it, in order, without the newest-frame capture that live inputs go through.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::description::{describe, GstInput, Platform, Target, SINK_NAME};
use crate::source::{Frame, FrameSource, FrameStream, PixelFormat, SourceError, StreamStats};

/// How long one wait on the appsink lasts before the bus is checked for errors again.
const POLL: Duration = Duration::from_millis(50);

/// How many decoder-input times are kept to match decoded frames against.
const ARRIVALS: usize = 64;

/// How long a file may take to deliver its next frame before the read fails.
const FILE_FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// What to install when an element or decoder is missing, for error messages.
const INSTALL_HINT: &str = "install the GStreamer plugins (Debian/Ubuntu: gstreamer1.0-plugins-base, -good, -bad and gstreamer1.0-libav; \
                            Jetson: JetPack's nvidia-l4t-gstreamer), and check it with gst-inspect-1.0";

/// Starts GStreamer once per process; an error says what is missing.
fn init() -> Result<(), SourceError> {
    static START: Once = Once::new();
    static FAILED: Mutex<Option<String>> = Mutex::new(None);
    START.call_once(|| match gst::init() {
        Ok(()) => prefer_hardware_decoders(),
        Err(e) => *FAILED.lock().unwrap_or_else(PoisonError::into_inner) = Some(e.to_string()),
    });
    match FAILED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
    {
        Some(reason) => Err(SourceError::Open {
            what: "GStreamer".into(),
            reason: format!("cannot start it: {reason}; {INSTALL_HINT}"),
        }),
        None => Ok(()),
    }
}

/// Raises the rank of NVIDIA's hardware decoder when it is installed, so `decodebin` picks
/// it over the software decoders (their ranks are equal on JetPack).
fn prefer_hardware_decoders() {
    if let Some(factory) = gst::ElementFactory::find("nvv4l2decoder") {
        factory.set_rank(gst::Rank::PRIMARY + 100);
        log::info!("GStreamer: nvv4l2decoder found; decodebin uses the hardware decoder");
    }
}

/// The elements of this machine's GStreamer that change the pipeline (`nvvidconv`).
pub fn platform() -> Result<Platform, SourceError> {
    init()?;
    Ok(Platform {
        nvvidconv: gst::ElementFactory::find("nvvidconv").is_some(),
    })
}

/// When encoded frames entered the decoder, by presentation time, to measure how long
/// decoding and converting took.
#[derive(Default)]
struct Arrivals(VecDeque<(gst::ClockTime, Instant)>);

impl Arrivals {
    fn push(&mut self, pts: gst::ClockTime, at: Instant) {
        // Several packets of one frame (RTP) share a time; the first one counts.
        if self.0.iter().any(|(p, _)| *p == pts) {
            return;
        }
        if self.0.len() == ARRIVALS {
            self.0.pop_front();
        }
        self.0.push_back((pts, at));
    }

    /// The arrival of the frame shown at `pts`, forgotten with every older one.
    fn take(&mut self, pts: gst::ClockTime) -> Option<Instant> {
        let index = self.0.iter().position(|(p, _)| *p == pts)?;
        let at = self.0[index].1;
        self.0.retain(|(p, _)| *p > pts);
        Some(at)
    }
}

/// An opened pipeline.
struct Running {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    bus: gst::Bus,
    arrivals: Arc<Mutex<Arrivals>>,
    /// When frames reached the appsink, by presentation time: their capture time, before any
    /// wait for the pipeline to take them.
    finished: Arc<Mutex<Arrivals>>,
    /// The decoder's factory name and the encoded caps it takes, once decodebin chose it.
    decoder: Arc<Mutex<Option<String>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Stopping releases the device, socket or file; an error here leaves nothing to do.
        if self.pipeline.set_state(gst::State::Null).is_err() {
            log::debug!("the GStreamer pipeline did not stop cleanly");
        }
    }
}

/// A GStreamer pipeline as a frame source.
pub struct GstSource {
    name: String,
    description: String,
    open_timeout: Duration,
    /// What to check when the input cannot be opened.
    hint: &'static str,
    running: Option<Running>,
    /// The first frame, pulled by [`FrameSource::open`] to prove the input works.
    pending: Option<Frame>,
    sequence: u64,
    announced: bool,
}

impl GstSource {
    /// A source for `input`, scaled for `target` with this machine's elements, named `name`
    /// (the `--input` as given) in logs, errors and the lines' `origin`.
    pub fn new(name: &str, input: &GstInput, target: Target) -> Result<Self, SourceError> {
        let platform = platform()?;
        let description = describe(input, target, platform);
        log::info!("{name}: GStreamer pipeline: {description}");
        Ok(Self {
            name: name.to_owned(),
            description,
            open_timeout: if input.is_live() {
                Duration::from_secs(15)
            } else {
                FILE_FRAME_TIMEOUT
            },
            hint: match input {
                GstInput::File(_) => {
                    "check that it is a complete video file (gst-play-1.0 plays it) and that the GStreamer plugins for its codec are installed"
                }
                GstInput::Csi { .. } => {
                    "check the camera cable and sensor id (nvgstcapture-1.0 shows it) and that nvargus-daemon runs"
                }
                GstInput::Rtsp(_) | GstInput::Rtp { .. } => {
                    "check that the camera or server is on and reachable, and the URL's host, port and path"
                }
            },
            running: None,
            pending: None,
            sequence: 0,
            announced: false,
        })
    }

    /// The pipeline this source runs, in gst-launch syntax.
    pub fn description(&self) -> &str {
        &self.description
    }

    fn open_error(&self, reason: String) -> SourceError {
        SourceError::Open {
            what: self.name.clone(),
            reason: format!("{reason}; {}", self.hint),
        }
    }

    /// Builds and starts the pipeline.
    fn start(&self) -> Result<Running, SourceError> {
        let element = gst::parse::launch(&self.description).map_err(|e| {
            self.open_error(format!(
                "cannot build its GStreamer pipeline: {e}; {INSTALL_HINT}"
            ))
        })?;
        let pipeline = element
            .downcast::<gst::Pipeline>()
            .map_err(|_| self.open_error("the GStreamer description is not a pipeline".into()))?;
        let sink = pipeline
            .by_name(SINK_NAME)
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| self.open_error("the pipeline has no appsink".into()))?;
        let bus = pipeline
            .bus()
            .ok_or_else(|| self.open_error("the pipeline has no bus".into()))?;
        let running = Running {
            pipeline,
            sink,
            bus,
            arrivals: Arc::default(),
            finished: Arc::default(),
            decoder: Arc::default(),
        };
        watch_arrivals(&running);
        if running.pipeline.set_state(gst::State::Playing).is_err() {
            let reason = bus_error(&running.bus)
                .unwrap_or_else(|| "the pipeline refused to start".to_owned());
            return Err(self.open_error(reason));
        }
        Ok(running)
    }

    /// The next sample within `timeout`; errors on the bus and end-of-stream end the wait.
    fn pull(&self, running: &Running, timeout: Duration) -> Result<gst::Sample, SourceError> {
        let deadline = Instant::now() + timeout;
        loop {
            let wait = POLL.min(deadline.saturating_duration_since(Instant::now()));
            let wait =
                gst::ClockTime::from_nseconds(u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX));
            if let Some(sample) = running.sink.try_pull_sample(wait) {
                return Ok(sample);
            }
            if let Some(reason) = bus_error(&running.bus) {
                return Err(SourceError::Lost {
                    what: self.name.clone(),
                    reason,
                });
            }
            if running.sink.is_eos() {
                return Err(SourceError::Ended {
                    what: self.name.clone(),
                });
            }
            if Instant::now() >= deadline {
                return Err(SourceError::Timeout {
                    what: self.name.clone(),
                    timeout,
                });
            }
        }
    }

    /// `sample` as a frame, numbered next.
    fn frame(&mut self, running: &Running, sample: &gst::Sample) -> Result<Frame, SourceError> {
        let pulled = Instant::now();
        let sequence = self.sequence;
        self.sequence += 1;
        let origin = format!("{}#{sequence}", self.name);
        let corrupt = |reason: &str| SourceError::Corrupt {
            what: origin.clone(),
            reason: reason.to_owned(),
        };
        let caps = sample
            .caps()
            .ok_or_else(|| corrupt("a sample without caps"))?;
        let info = gst_video::VideoInfo::from_caps(caps)
            .map_err(|e| corrupt(&format!("unreadable caps {caps}: {e}")))?;
        let buffer = sample
            .buffer()
            .ok_or_else(|| corrupt("a sample without a buffer"))?;
        if buffer.flags().contains(gst::BufferFlags::CORRUPTED) {
            return Err(corrupt("the decoder flagged the frame as corrupted"));
        }
        let map = buffer
            .map_readable()
            .map_err(|e| corrupt(&format!("cannot map the buffer: {e}")))?;
        let stride = u32::try_from(info.stride()[0]).map_err(|_| corrupt("a negative stride"))?;
        let pts = buffer.pts();
        let captured = pts
            .and_then(|pts| {
                running
                    .finished
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take(pts)
            })
            .unwrap_or(pulled);
        let in_source = pts
            .and_then(|pts| {
                running
                    .arrivals
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take(pts)
            })
            .map(|arrived| captured.saturating_duration_since(arrived));
        let stream_time = pts.and_then(|pts| {
            sample
                .segment()
                .and_then(|s| s.downcast_ref::<gst::ClockTime>())
                .and_then(|s| s.to_stream_time(pts))
                .or(Some(pts))
        });
        if !self.announced {
            self.announced = true;
            let decoder = running
                .decoder
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            log::info!(
                "{}: {}; frames {}×{} RGB, scaled in the pipeline",
                self.name,
                decoder.unwrap_or_else(|| "no decoder (raw frames)".into()),
                info.width(),
                info.height()
            );
        }
        Ok(Frame {
            format: PixelFormat::Rgb24,
            width: info.width(),
            height: info.height(),
            stride,
            data: map.as_slice().to_vec(),
            sequence,
            captured,
            origin,
            pts: stream_time.map(|t| Duration::from_nanos(t.nseconds())),
            in_source,
        })
    }
}

impl FrameSource for GstSource {
    fn name(&self) -> &str {
        &self.name
    }

    /// Starts the pipeline and waits for its first frame, so a missing file, a refused
    /// connection or an undecodable stream fails here, with GStreamer's reason.
    fn open(&mut self) -> Result<(), SourceError> {
        init()?;
        self.close();
        let running = self.start()?;
        let sample = self
            .pull(&running, self.open_timeout)
            .map_err(|e| match e {
                SourceError::Lost { reason, .. } => self.open_error(reason),
                SourceError::Ended { .. } => {
                    self.open_error("the stream ended before its first frame".into())
                }
                SourceError::Timeout { timeout, .. } => {
                    self.open_error(format!("no frame within {timeout:?}"))
                }
                other => other,
            })?;
        let frame = self.frame(&running, &sample)?;
        self.pending = Some(frame);
        self.running = Some(running);
        Ok(())
    }

    fn next_frame(&mut self, timeout: Duration) -> Result<Frame, SourceError> {
        if let Some(frame) = self.pending.take() {
            return Ok(frame);
        }
        let running = self.running.take().ok_or_else(|| SourceError::Lost {
            what: self.name.clone(),
            reason: "not open".into(),
        })?;
        let result = self
            .pull(&running, timeout)
            .and_then(|sample| self.frame(&running, &sample));
        self.running = Some(running);
        result
    }

    fn close(&mut self) {
        self.pending = None;
        self.running = None;
    }
}

/// Records when encoded frames reach the decoder (decodebin's choice, once it makes it), or
/// the source's output for pipelines without one (a CSI camera), and when they reach the
/// appsink.
fn watch_arrivals(running: &Running) {
    let record = |pad: &gst::Pad, arrivals: Arc<Mutex<Arrivals>>| {
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
                arrivals
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(pts, Instant::now());
            }
            gst::PadProbeReturn::Ok
        });
    };
    if let Some(pad) = running.sink.static_pad("sink") {
        record(&pad, Arc::clone(&running.finished));
    }
    if running.pipeline.by_name("decode").is_some() {
        let arrivals = Arc::clone(&running.arrivals);
        let decoder = Arc::clone(&running.decoder);
        running
            .pipeline
            .connect_deep_element_added(move |_, _, element| {
                let Some(factory) = element.factory() else {
                    return;
                };
                if !factory.has_type(gst::ElementFactoryType::DECODER) {
                    return;
                }
                let Some(pad) = element.static_pad("sink") else {
                    return;
                };
                *decoder.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(format!("decoder {}", factory.name()));
                record(&pad, Arc::clone(&arrivals));
            });
    } else if let Some(pad) = running
        .pipeline
        .iterate_sources()
        .into_iter()
        .flatten()
        .next()
        .and_then(|source| source.static_pad("src"))
    {
        record(&pad, Arc::clone(&running.arrivals));
    }
}

/// The first error on `bus`, with the element that posted it; warnings on the way are logged.
fn bus_error(bus: &gst::Bus) -> Option<String> {
    while let Some(message) =
        bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Warning])
    {
        let from = message
            .src()
            .map_or_else(|| "GStreamer".to_owned(), |s| s.name().to_string());
        match message.view() {
            gst::MessageView::Error(e) => {
                let debug = e.debug().map(|d| format!(" ({d})")).unwrap_or_default();
                log::debug!("GStreamer error from {from}: {}{debug}", e.error());
                return Some(format!("{from}: {}", e.error()));
            }
            gst::MessageView::Warning(w) => {
                log::warn!("GStreamer warning from {from}: {}", w.error())
            }
            _ => {}
        }
    }
    None
}

/// A video file read frame by frame, in order (the decoder waits for the pipeline rather
/// than dropping frames), once or looped.
pub struct VideoFileStream {
    source: GstSource,
    looped: bool,
    stop: Option<Arc<AtomicBool>>,
    stats: StreamStats,
}

impl VideoFileStream {
    /// Opens `source` (a [`GstInput::File`]'s); errors name the file and GStreamer's reason.
    pub fn open(mut source: GstSource, looped: bool) -> Result<Self, SourceError> {
        source.open()?;
        Ok(Self {
            source,
            looped,
            stop: None,
            stats: StreamStats::default(),
        })
    }

    /// Ends the stream when `stop` is set (SIGINT), also in the middle of a loop.
    #[must_use]
    pub fn with_stop(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }
}

impl FrameStream for VideoFileStream {
    fn next(&mut self) -> Result<Option<Frame>, SourceError> {
        loop {
            if self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
                return Ok(None);
            }
            match self.source.next_frame(FILE_FRAME_TIMEOUT) {
                Ok(frame) => return Ok(Some(frame)),
                Err(SourceError::Ended { .. }) if self.looped => {
                    log::debug!("{}: end of file; starting over", self.source.name());
                    self.source.open()?;
                }
                Err(SourceError::Ended { .. }) => {
                    self.source.close();
                    return Ok(None);
                }
                Err(SourceError::Corrupt { what, reason }) => {
                    log::warn!("{what}: corrupt frame skipped: {reason}");
                    self.stats.corrupt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    fn stats(&self) -> StreamStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_frames_find_their_arrival_by_presentation_time() {
        let t0 = Instant::now();
        let mut arrivals = Arrivals::default();
        let ms = gst::ClockTime::from_mseconds;
        // Decoding order of an IPBB stream: 0, 120, 40, 80 ms.
        for (i, pts) in [0, 120, 40, 80].into_iter().enumerate() {
            arrivals.push(ms(pts), t0 + Duration::from_millis(i as u64));
        }
        arrivals.push(ms(40), t0 + Duration::from_secs(9));
        assert_eq!(arrivals.take(ms(40)), Some(t0 + Duration::from_millis(2)));
        // Older frames are forgotten with it; later ones are kept.
        assert_eq!(arrivals.take(ms(0)), None);
        assert_eq!(arrivals.take(ms(120)), Some(t0 + Duration::from_millis(1)));
        for pts in 0..(ARRIVALS as u64 + 10) {
            arrivals.push(ms(1000 + pts), t0);
        }
        assert_eq!(arrivals.0.len(), ARRIVALS);
    }
}
