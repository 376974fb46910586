//! [`V4lSource`]: a V4L2 camera as a [`FrameSource`], through the `v4l` crate's mmap stream.
//!
//! v4l 0.14 has pitfalls this module works around:
//! - `next()` blocks forever on an unplugged camera unless the stream has a timeout; every
//!   read sets one.
//! - After any error the stream's buffer bookkeeping is stale (a timed-out `next()` has already
//!   re-queued its buffer, so the following call queues it twice and fails), so the stream is
//!   dropped on every error and the caller reopens.
//! - Its `Drop` impls panic when `STREAMOFF` or unmapping fails with anything but `ENODEV`;
//!   releasing a stream catches that, so a dying camera cannot take the capture thread down.
//! - The buffer `next()` returns is only valid until the next call, and holds the buffer's
//!   full length; frames copy exactly `bytesused` bytes out of it.

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use v4l::buffer::{Flags as BufferFlags, Metadata, Type};
use v4l::capability::Flags as CapFlags;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::capture::Parameters;
use v4l::video::Capture as _;
use v4l::{Device, Format, FourCC, Fraction};

use super::formats::{self, fps_of};
use super::negotiate::{self, Choice};
use super::options::{CameraOptions, Codec, BUFFER_RANGE};
use crate::source::{Frame, FrameSource, PixelFormat, SourceError};

/// What the driver actually set when the source was opened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Negotiated {
    /// The codec streaming.
    pub codec: Codec,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per row (YUYV), 0 for MJPEG.
    pub stride: u32,
    /// Frames per second the driver reports, if it reports one.
    pub fps: Option<f64>,
}

/// A V4L2 capture device streaming through mmap buffers.
pub struct V4lSource {
    options: CameraOptions,
    stream: Option<Stream<'static>>,
    negotiated: Option<Negotiated>,
    /// The sequence number the next frame after a reopen starts from, so sequences keep
    /// counting up across reconnects although the driver restarts its own at 0.
    sequence_base: u64,
    next_sequence: u64,
}

impl V4lSource {
    /// A source for `options.device`; nothing is opened until [`FrameSource::open`].
    pub fn new(options: CameraOptions) -> Self {
        V4lSource {
            options,
            stream: None,
            negotiated: None,
            sequence_base: 0,
            next_sequence: 0,
        }
    }

    /// What the driver set at the last successful open.
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
    }

    fn lost(&self, reason: impl Into<String>) -> SourceError {
        SourceError::Lost {
            what: self.options.device.clone(),
            reason: reason.into(),
        }
    }

    /// Turns a dequeued buffer (its used bytes, when sane) into a frame, or says why it is
    /// unusable.
    fn frame_from(
        &mut self,
        negotiated: Negotiated,
        data: Option<Vec<u8>>,
        meta: &Metadata,
        captured: Instant,
    ) -> Result<Frame, SourceError> {
        // Drivers number frames themselves (a gap means the driver dropped frames), but not
        // every driver's numbering only goes up: vivid was seen repeating 0 right after a
        // restart. Frames still count up by at least one.
        let sequence = (self.sequence_base + u64::from(meta.sequence)).max(self.next_sequence);
        self.next_sequence = sequence + 1;
        let origin = format!("{}#{sequence}", self.options.device);
        let corrupt = |reason: String| SourceError::Corrupt {
            what: origin.clone(),
            reason,
        };
        if meta.flags.contains(BufferFlags::ERROR) {
            return Err(corrupt("the driver flagged the buffer as corrupted".into()));
        }
        let Some(data) = data else {
            return Err(corrupt(format!(
                "the driver reported {} bytes used",
                meta.bytesused
            )));
        };
        Ok(Frame {
            format: match negotiated.codec {
                Codec::Mjpeg => PixelFormat::Mjpeg,
                Codec::Yuyv => PixelFormat::Yuyv,
            },
            width: negotiated.width,
            height: negotiated.height,
            stride: negotiated.stride,
            data,
            sequence,
            captured,
            origin,
            pts: None,
            in_source: None,
        })
    }
}

/// The `bytesused` bytes of a buffer, copied out (the buffer is reused after the next read);
/// `None` when the driver reports none or more than the buffer holds.
fn used_bytes(buffer: &[u8], meta: &Metadata) -> Option<Vec<u8>> {
    let used = meta.bytesused as usize;
    (used > 0 && used <= buffer.len()).then(|| buffer[..used].to_vec())
}

impl FrameSource for V4lSource {
    fn name(&self) -> &str {
        &self.options.device
    }

    fn open(&mut self) -> Result<(), SourceError> {
        self.close();
        let path = self.options.device.clone();
        let dev = Device::with_path(&path).map_err(|e| open_error(&path, &e))?;
        check_capture_device(&dev, &path)?;
        let offered = formats::enumerate(&dev, false).map_err(|e| open_error(&path, &e))?;
        let choice = negotiate::choose(&path, &offered, &self.options)?;
        let mut negotiated = apply_format(&dev, &path, choice)?;
        negotiated.fps = apply_rate(&dev, &path, self.options.rate);
        let buffers = self
            .options
            .buffers
            .clamp(*BUFFER_RANGE.start(), *BUFFER_RANGE.end());
        let stream = Stream::with_buffers(&dev, Type::VideoCapture, buffers)
            .map_err(|e| open_error(&path, &e))?;
        log::info!(
            "{path}: {} {}x{} (stride {}), {} fps, {buffers} mmap buffers",
            negotiated.codec,
            negotiated.width,
            negotiated.height,
            negotiated.stride,
            negotiated
                .fps
                .map_or_else(|| "driver default".to_owned(), |f| format!("{f:.2}")),
        );
        self.sequence_base = self.next_sequence;
        self.negotiated = Some(negotiated);
        self.stream = Some(stream);
        Ok(())
    }

    fn next_frame(&mut self, timeout: Duration) -> Result<Frame, SourceError> {
        let (Some(stream), Some(negotiated)) = (self.stream.as_mut(), self.negotiated) else {
            return Err(self.lost("the stream is not open"));
        };
        // v4l takes the timeout in milliseconds as an i32 and panics on larger values.
        stream.set_timeout(timeout.min(Duration::from_millis(i32::MAX as u64)));
        match CaptureStream::next(stream) {
            Ok((buffer, meta)) => {
                let captured = Instant::now();
                let (data, meta) = (used_bytes(buffer, meta), *meta);
                self.frame_from(negotiated, data, &meta, captured)
            }
            Err(e) => {
                self.close();
                Err(stream_error(&self.options.device, &e, timeout))
            }
        }
    }

    fn close(&mut self) {
        if let Some(stream) = self.stream.take() {
            release(stream, &self.options.device);
        }
    }
}

impl Drop for V4lSource {
    fn drop(&mut self) {
        self.close();
    }
}

/// Stops and unmaps a stream, surviving v4l's panics on a device that fails to stop.
fn release(stream: Stream<'static>, device: &str) {
    if panic::catch_unwind(AssertUnwindSafe(move || drop(stream))).is_err() {
        log::warn!(
            "{device}: stopping the stream failed (v4l panicked); the stream was dropped anyway"
        );
    }
}

fn check_capture_device(dev: &Device, path: &str) -> Result<(), SourceError> {
    let caps = dev.query_caps().map_err(|e| match e.raw_os_error() {
        // Any file that is not a V4L2 device (`/dev/null`, a disk, a regular file) answers
        // the capability query with "inappropriate ioctl".
        Some(libc_errno::ENOTTY | libc_errno::EINVAL) => SourceError::Open {
            what: path.to_owned(),
            reason: format!(
                "not a V4L2 device ({e}); `csra-edge probe` lists the cameras (usually /dev/video0)"
            ),
        },
        _ => open_error(path, &e),
    })?;
    let needed = CapFlags::VIDEO_CAPTURE | CapFlags::STREAMING;
    if caps.capabilities.contains(needed) {
        Ok(())
    } else {
        Err(SourceError::Open {
            what: path.to_owned(),
            reason: format!(
                "{} ({}) is not a streaming video capture node (a USB camera also has \
                 metadata nodes); `csra-edge probe` lists the capture devices",
                caps.card, caps.driver
            ),
        })
    }
}

/// Asks the driver for the chosen format and reads back what it set.
fn apply_format(dev: &Device, path: &str, choice: Choice) -> Result<Negotiated, SourceError> {
    let fourcc = FourCC::new(&choice.codec.fourcc());
    let current = dev.format().map_err(|e| open_error(path, &e))?;
    let (width, height) = choice.size.unwrap_or((current.width, current.height));
    dev.set_format(&Format::new(width, height, fourcc))
        .map_err(|e| open_error(path, &e))?;
    // S_FMT answers with the format too, but G_FMT is what the driver streams with.
    let actual = dev.format().map_err(|e| open_error(path, &e))?;
    if actual.fourcc != fourcc {
        return Err(SourceError::UnsupportedFormat {
            device: path.to_owned(),
            asked: choice.codec.to_string().to_uppercase(),
            offered: format!(
                "the driver switched to {} when asked for it",
                formats::fourcc_string(actual.fourcc)
            ),
        });
    }
    if (actual.width, actual.height) != (width, height) {
        log::info!(
            "{path}: asked for {width}x{height}, the driver set {}x{}",
            actual.width,
            actual.height
        );
    }
    let stride = match choice.codec {
        Codec::Mjpeg => 0,
        // Some drivers leave bytesperline 0 for packed formats; YUYV packs 2 bytes a pixel.
        Codec::Yuyv if actual.stride == 0 => actual.width * 2,
        Codec::Yuyv => actual.stride,
    };
    Ok(Negotiated {
        codec: choice.codec,
        width: actual.width,
        height: actual.height,
        stride,
        fps: None,
    })
}

/// Sets the frame rate when asked and reports the one the driver uses. A driver without
/// frame-rate control keeps its own rate, which is not an error.
fn apply_rate(dev: &Device, path: &str, rate: Option<u32>) -> Option<f64> {
    if let Some(fps) = rate {
        if let Err(e) = dev.set_params(&Parameters::new(Fraction::new(1, fps.max(1)))) {
            log::warn!("{path}: cannot set {fps} fps ({e}); keeping the driver's rate");
        }
    }
    let interval = dev.params().ok()?.interval;
    let fps = fps_of(interval);
    if let Some(asked) = rate {
        if (fps - f64::from(asked)).abs() > 0.5 {
            log::info!("{path}: asked for {asked} fps, the driver set {fps:.2}");
        }
    }
    (fps > 0.0).then_some(fps)
}

/// An error opening or configuring the device, with what to do about it.
fn open_error(path: &str, e: &io::Error) -> SourceError {
    let reason = match e.raw_os_error() {
        Some(libc_errno::ENOENT | libc_errno::ENODEV | libc_errno::ENXIO) => {
            format!("no such camera ({e}); is it plugged in? `csra-edge probe` lists the cameras")
        }
        Some(libc_errno::EACCES | libc_errno::EPERM) => format!(
            "permission denied ({e}); run as a member of the `video` group \
             (`sudo usermod -aG video $USER`, then log in again)"
        ),
        Some(libc_errno::EBUSY) => {
            format!("the camera is busy ({e}); another program is using it")
        }
        _ => e.to_string(),
    };
    SourceError::Open {
        what: path.to_owned(),
        reason,
    }
}

/// An error while streaming: a poll time-out, or a lost stream (`ENODEV` after an unplug,
/// `EIO`/`EPIPE` from a failing device, anything else the driver reports).
fn stream_error(path: &str, e: &io::Error, timeout: Duration) -> SourceError {
    if e.kind() == io::ErrorKind::TimedOut {
        return SourceError::Timeout {
            what: path.to_owned(),
            timeout,
        };
    }
    let reason = match e.raw_os_error() {
        Some(libc_errno::ENODEV) => format!("the camera was unplugged ({e})"),
        _ => e.to_string(),
    };
    SourceError::Lost {
        what: path.to_owned(),
        reason,
    }
}

/// The errno values this module tells apart (Linux numbering, which V4L2 implies).
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const ENXIO: i32 = 6;
    pub const ENOTTY: i32 = 25;
    pub const EINVAL: i32 = 22;
    pub const EACCES: i32 = 13;
    pub const EBUSY: i32 = 16;
    pub const ENODEV: i32 = 19;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_names_the_path_and_suggests_probe() {
        let mut source = V4lSource::new(CameraOptions::new("/dev/video-csra-missing"));
        let err = source.open().err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        assert!(
            err.starts_with("cannot open /dev/video-csra-missing: no such camera"),
            "{err}"
        );
        assert!(err.contains("csra-edge probe"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_camera_is_refused_clearly() {
        let mut source = V4lSource::new(CameraOptions::new("/dev/null"));
        let err = source
            .open()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("cannot open /dev/null: "), "{err}");
    }

    #[test]
    fn reading_an_unopened_source_is_a_lost_stream() {
        let mut source = V4lSource::new(CameraOptions::new("/dev/video-csra-missing"));
        let err = source.next_frame(Duration::from_millis(1)).err();
        assert!(matches!(err, Some(SourceError::Lost { .. })), "{err:?}");
    }

    fn meta(sequence: u32, bytesused: u32, flags: u32) -> Metadata {
        Metadata {
            bytesused,
            flags: BufferFlags::from(flags),
            sequence,
            ..Metadata::default()
        }
    }

    #[test]
    fn frames_are_sliced_numbered_and_checked() {
        let mut source = V4lSource::new(CameraOptions::new("/dev/video7"));
        let negotiated = Negotiated {
            codec: Codec::Yuyv,
            width: 2,
            height: 1,
            stride: 4,
            fps: None,
        };
        let buffer = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let read = |source: &mut V4lSource, meta: Metadata| {
            let data = used_bytes(&buffer, &meta);
            source.frame_from(negotiated, data, &meta, Instant::now())
        };
        let first = read(&mut source, meta(0, 4, 0)).unwrap();
        assert_eq!(first.data, [1, 2, 3, 4]);
        assert_eq!((first.width, first.height, first.stride), (2, 1, 4));
        assert_eq!(first.format, PixelFormat::Yuyv);
        assert_eq!(first.origin, "/dev/video7#0");
        // A gap (the driver dropped frames 1 and 2) is kept; a repeated number is not.
        assert_eq!(read(&mut source, meta(3, 4, 0)).unwrap().sequence, 3);
        assert_eq!(read(&mut source, meta(3, 4, 0)).unwrap().sequence, 4);
        // After a reopen the driver counts from 0 again; frames go on from 5.
        source.sequence_base = source.next_sequence;
        assert_eq!(read(&mut source, meta(0, 4, 0)).unwrap().sequence, 5);
        // Flagged, empty and oversized buffers are corrupt frames, still numbered.
        for bad in [meta(1, 4, 0x40), meta(2, 0, 0), meta(3, 9, 0)] {
            let err = read(&mut source, bad).err();
            assert!(matches!(err, Some(SourceError::Corrupt { .. })), "{err:?}");
        }
        assert_eq!(source.next_sequence, 9);
    }

    #[test]
    fn stream_errors_map_to_timeout_and_lost() {
        let timeout = Duration::from_millis(250);
        let timed_out = io::Error::new(io::ErrorKind::TimedOut, "VIDIOC_DQBUF");
        assert!(matches!(
            stream_error("/dev/video0", &timed_out, timeout),
            SourceError::Timeout { timeout: t, .. } if t == timeout
        ));
        let unplugged = io::Error::from_raw_os_error(libc_errno::ENODEV);
        let lost = stream_error("/dev/video0", &unplugged, timeout).to_string();
        assert!(
            lost.starts_with("/dev/video0: stream lost: the camera was unplugged"),
            "{lost}"
        );
        let eio = io::Error::from_raw_os_error(5);
        assert!(matches!(
            stream_error("/dev/video0", &eio, timeout),
            SourceError::Lost { .. }
        ));
    }
}
