//! Every frame source, in one place. This module holds frames as a source delivers them, before
//! any decoding, and the two traits that move them: [`FrameSource`] (one device or file set,
//! opened and read) and [`FrameStream`] (what the pipeline pulls the next frame to process from).
//!
//! - [`files`]: `--input` image files as a frame stream;
//! - [`v4l2`]: V4L2 cameras (options, format negotiation, the frame source, `probe`; the V4L2
//!   parts need the default `camera` feature);
//! - [`capture`]: the capture thread that hands the pipeline the newest frame and reconnects;
//! - [`uri`]: what an `--input` names (device, CSI camera, stream, video file, images);
//! - [`gst`]: video files, RTSP, RTP and CSI cameras through GStreamer (the pipeline
//!   descriptions always; the source itself needs the `gstreamer` feature);
//! - [`synthetic`]: camera frames (MJPEG, YUYV) made from a photo;
//! - `fake` (feature `testing`): a fake camera made of those frames, with injectable faults.

use std::time::{Duration, Instant};

use thiserror::Error;

pub mod capture;
#[cfg(feature = "testing")]
pub mod fake;
pub mod files;
pub mod gst;
pub mod synthetic;
pub mod uri;
pub mod v4l2;

/// The pixel encoding of a frame's bytes (csra-image decodes them).
pub use csra_image::PixelFormat;
use csra_image::RawImage;

/// One frame: the bytes exactly as the source filled them (a V4L2 buffer sliced to
/// `bytesused`, or a file's contents).
#[derive(Debug, Clone)]
pub struct Frame {
    /// How `data` is encoded.
    pub format: PixelFormat,
    /// Width in pixels (0 for [`PixelFormat::Encoded`], whose size is in the file).
    pub width: u32,
    /// Height in pixels (0 for [`PixelFormat::Encoded`]).
    pub height: u32,
    /// Bytes per row for the packed formats (V4L2 `bytesperline`), which may exceed
    /// `width × bytes per pixel`; 0 for the compressed ones.
    pub stride: u32,
    /// The frame's bytes.
    pub data: Vec<u8>,
    /// Counts up by one per frame the source delivered, dropped ones included.
    pub sequence: u64,
    /// When the source handed the frame over; a frame's age is measured from here.
    pub captured: Instant,
    /// Where the frame came from: the file path, or the device and its sequence number.
    pub origin: String,
    /// The frame's presentation time in its stream (a video file's position, a live
    /// stream's time since it started), when the source has one; still images have none.
    pub pts: Option<Duration>,
    /// How long the frame spent in the source before [`Frame::captured`] (decoding and
    /// converting in a GStreamer pipeline), when the source measures it.
    pub in_source: Option<Duration>,
}

impl Frame {
    /// A whole image file's bytes (JPEG, PNG, BMP) as a frame handed over now; the decoder
    /// finds its type and size.
    pub fn encoded(data: Vec<u8>, sequence: u64, origin: String) -> Frame {
        Frame {
            format: PixelFormat::Encoded,
            width: 0,
            height: 0,
            stride: 0,
            data,
            sequence,
            captured: Instant::now(),
            origin,
            pts: None,
            in_source: None,
        }
    }

    /// The frame's bytes and geometry, as csra-image decodes them.
    pub fn raw(&self) -> RawImage<'_> {
        RawImage {
            format: self.format,
            width: self.width,
            height: self.height,
            stride: self.stride,
            data: &self.data,
        }
    }
}

/// An error of a frame source or stream.
#[derive(Debug, Error)]
pub enum SourceError {
    /// The device or file cannot be opened (missing, busy, no permission).
    #[error("cannot open {what}: {reason}")]
    Open {
        /// The device or path.
        what: String,
        /// What went wrong and what to do.
        reason: String,
    },
    /// The device offers none of the formats asked for.
    #[error("{device} does not support {asked}; it offers {offered}")]
    UnsupportedFormat {
        /// The device.
        device: String,
        /// The format asked for.
        asked: String,
        /// The formats the device offers.
        offered: String,
    },
    /// No frame arrived in time.
    #[error("{what}: no frame within {timeout:?}")]
    Timeout {
        /// The device.
        what: String,
        /// How long the wait was.
        timeout: Duration,
    },
    /// The device went away or the stream broke; reopening may help.
    #[error("{what}: stream lost: {reason}")]
    Lost {
        /// The device.
        what: String,
        /// What the driver said.
        reason: String,
    },
    /// One frame is unusable (the driver flagged it, or it holds no bytes); the stream goes on.
    #[error("{what}: corrupt frame skipped: {reason}")]
    Corrupt {
        /// The device and frame.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The stream has ended (a video file's last frame was read, or a live stream sent
    /// end-of-stream); a file stream ends there, a live source is reopened.
    #[error("{what}: end of stream")]
    Ended {
        /// The file or stream.
        what: String,
    },
    /// An I/O error reading a file or device.
    #[error("{what}: {source}")]
    Io {
        /// The device or path.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// A device or file set that delivers frames: opened, read frame by frame, closed. Camera
/// capture drives one from its own thread and reopens it after errors.
pub trait FrameSource: Send {
    /// A short name for logs and errors, e.g. `/dev/video0`.
    fn name(&self) -> &str;
    /// Opens (or reopens) the device and starts streaming.
    fn open(&mut self) -> Result<(), SourceError>;
    /// Blocks for the next frame, at most `timeout`.
    fn next_frame(&mut self, timeout: Duration) -> Result<Frame, SourceError>;
    /// Stops streaming and releases the device; reading again needs [`FrameSource::open`].
    fn close(&mut self);
}

/// Counters a stream keeps about frames that never reached the pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Frames the source delivered that were replaced by a newer one before the pipeline
    /// took them.
    pub dropped: u64,
    /// Successful reopens after the source was lost.
    pub reconnects: u64,
    /// Errors the source reported (timeouts, lost streams, failed reopens).
    pub source_errors: u64,
    /// Frames the source itself reported as corrupt (flagged by the driver, or empty) and
    /// skipped; frames that fail to decode are the pipeline's to count.
    pub corrupt: u64,
}

/// Ends a stream from another thread: a `next()` waiting in it, and every later one, returns
/// `Ok(None)`.
pub type StreamStopper = Box<dyn Fn() + Send + Sync>;

/// What the pipeline pulls the next frame to process from: image files in order, or a camera
/// through its newest-frame capture thread. `Send`, so that the pipeline can read it from a
/// worker thread while the network runs (prefetch).
pub trait FrameStream: Send {
    /// The next frame to process; `Ok(None)` when the stream has ended (files done, or stop
    /// requested).
    fn next(&mut self) -> Result<Option<Frame>, SourceError>;
    /// The counters so far.
    fn stats(&self) -> StreamStats;
    /// A way to end the stream from another thread, for streams whose `next()` can wait
    /// without bound (a camera that is away); `None` for those that always answer soon.
    fn stopper(&self) -> Option<StreamStopper> {
        None
    }
    /// Whether frames arrive in real time (a camera or a live stream), so a frame read ahead
    /// of the network would be older when it runs; `false` for files, which wait to be read.
    fn is_live(&self) -> bool {
        false
    }
}
