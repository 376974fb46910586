//! [`FakeCamera`]: a [`FrameSource`] that behaves like a USB camera without one, for testing
//! everything above the V4L2 layer (newest-frame capture, bad frames, reconnects) on any
//! machine.
//!
//! It emits real frames made from photos, either as MJPEG (each photo JPEG-encoded, as a
//! camera's encoder would) or as YUYV (BT.601 limited range, what UVC cameras send), paced by
//! a frame clock. A [`Faults`] schedule injects what real cameras do: frames whose JPEG is cut
//! short, an unplug during which reads and reopens fail, and stalls that time out.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::source::synthetic::encode_photo;
/// The frame encodings the fake camera can emit.
pub use crate::source::synthetic::CameraCodec as FakeFormat;
use crate::source::{Frame, FrameSource, SourceError};

/// Injected failures, by frame number (the frame clock's tick, counting from 0 across reopens).
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Frames delivered cut short, to [`Faults::truncate_to`] of their bytes: for MJPEG a JPEG
    /// that ends in the middle of its entropy-coded data, with no end-of-image marker.
    pub truncate: BTreeSet<u64>,
    /// The fraction of a truncated frame's bytes kept (0.5 by default).
    pub truncate_to: f64,
    /// Unplugs at frames, each lasting a while: that read fails as lost, and every reopen
    /// before the duration has passed fails as a missing device.
    pub unplugs: Vec<Unplug>,
    /// Frames that never arrive: the read waits for the whole time-out and fails with it.
    pub timeouts: BTreeSet<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            truncate: BTreeSet::new(),
            truncate_to: 0.5,
            unplugs: Vec::new(),
            timeouts: BTreeSet::new(),
        }
    }
}

/// A simulated unplug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unplug {
    /// The frame whose read fails because the camera went away.
    pub at_frame: u64,
    /// How long the camera stays away.
    pub duration: Duration,
}

/// A camera made of photos: see the [module documentation](self).
pub struct FakeCamera {
    name: String,
    format: FakeFormat,
    width: u32,
    height: u32,
    interval: Duration,
    /// One encoded frame per photo, emitted in turn.
    frames: Vec<Vec<u8>>,
    photos: Vec<PathBuf>,
    faults: Faults,
    open: bool,
    next_tick: u64,
    next_due: Instant,
    unplugged_until: Option<Instant>,
    delivered: Arc<AtomicU64>,
}

impl FakeCamera {
    /// A camera emitting `photos` in turn, each resized to `width`×`height` (even, for YUYV),
    /// at `fps` frames per second.
    pub fn new(
        photos: &[impl AsRef<Path>],
        format: FakeFormat,
        width: u32,
        height: u32,
        fps: f64,
    ) -> Result<FakeCamera, SourceError> {
        let invalid = |reason: String| SourceError::Open {
            what: "fake camera".into(),
            reason,
        };
        if photos.is_empty() {
            return Err(invalid("no photos given".into()));
        }
        if width == 0 || height == 0 || (format == FakeFormat::Yuyv && width % 2 == 1) {
            return Err(invalid(format!(
                "cannot emit {width}x{height} {format:?} frames (YUYV needs an even width)"
            )));
        }
        if !(fps.is_finite() && fps > 0.0) {
            return Err(invalid(format!("frame rate {fps} is not positive")));
        }
        let photos: Vec<PathBuf> = photos.iter().map(|p| p.as_ref().to_owned()).collect();
        let frames = photos
            .iter()
            .map(|path| encode_photo(path, format, width, height))
            .collect::<Result<_, _>>()?;
        Ok(FakeCamera {
            name: "fake-camera".into(),
            format,
            width,
            height,
            interval: Duration::from_secs_f64(1.0 / fps),
            frames,
            photos,
            faults: Faults::default(),
            open: false,
            next_tick: 0,
            next_due: Instant::now(),
            unplugged_until: None,
            delivered: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The same camera with a fault schedule.
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// The time between frames.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// A counter of the frames delivered so far, readable while another thread owns the
    /// camera.
    pub fn delivered_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.delivered)
    }

    /// The complete encoded frame frame number `tick` carries (before any truncation).
    pub fn original_frame(&self, tick: u64) -> &[u8] {
        &self.frames[self.photo_index(tick)]
    }

    fn photo_index(&self, tick: u64) -> usize {
        // The remainder is below frames.len(), a usize.
        (tick % self.frames.len() as u64) as usize
    }

    fn lost(&self, reason: &str) -> SourceError {
        SourceError::Lost {
            what: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// Waits for the frame clock, up to `timeout`; false when the frame is not due in time.
    fn wait_for_tick(&mut self, timeout: Duration) -> bool {
        let now = Instant::now();
        let wait = self.next_due.saturating_duration_since(now);
        if wait > timeout {
            thread::sleep(timeout);
            return false;
        }
        thread::sleep(wait);
        true
    }

    fn frame(&self, tick: u64, data: Vec<u8>) -> Frame {
        let index = self.photo_index(tick);
        Frame {
            format: self.format.pixel_format(),
            width: self.width,
            height: self.height,
            stride: self.format.stride(self.width),
            data,
            sequence: tick,
            captured: Instant::now(),
            origin: format!("{}#{tick} ({})", self.name, self.photos[index].display()),
            pts: None,
            in_source: None,
        }
    }
}

impl FrameSource for FakeCamera {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&mut self) -> Result<(), SourceError> {
        if let Some(until) = self.unplugged_until {
            if Instant::now() < until {
                return Err(SourceError::Open {
                    what: self.name.clone(),
                    reason: "no such camera (No such file or directory (os error 2))".into(),
                });
            }
            self.unplugged_until = None;
        }
        self.open = true;
        // A camera delivers its first frame one interval after streaming starts.
        self.next_due = Instant::now() + self.interval;
        Ok(())
    }

    fn next_frame(&mut self, timeout: Duration) -> Result<Frame, SourceError> {
        if !self.open {
            return Err(self.lost("the stream is not open"));
        }
        if !self.wait_for_tick(timeout) {
            self.open = false;
            return Err(SourceError::Timeout {
                what: self.name.clone(),
                timeout,
            });
        }
        let tick = self.next_tick;
        self.next_tick += 1;
        // A late reader does not make the camera burst: the clock restarts from now.
        self.next_due = (self.next_due + self.interval).max(Instant::now());
        let unplug = self
            .faults
            .unplugs
            .iter()
            .find(|u| u.at_frame == tick)
            .copied();
        if let Some(unplug) = unplug {
            self.open = false;
            self.unplugged_until = Some(Instant::now() + unplug.duration);
            return Err(self.lost("the camera was unplugged (No such device (os error 19))"));
        }
        if self.faults.timeouts.contains(&tick) {
            thread::sleep(timeout);
            self.open = false;
            return Err(SourceError::Timeout {
                what: self.name.clone(),
                timeout,
            });
        }
        let original = self.original_frame(tick);
        let data = if self.faults.truncate.contains(&tick) {
            let keep = self.faults.truncate_to.clamp(0.0, 1.0);
            // Rounding down to whole bytes; the cast cannot exceed the frame length.
            let len = ((original.len() as f64) * keep) as usize;
            original[..len].to_vec()
        } else {
            original.to_vec()
        };
        self.delivered.fetch_add(1, Ordering::Relaxed);
        Ok(self.frame(tick, data))
    }

    fn close(&mut self) {
        self.open = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_are_refused() {
        let photo = ["does-not-matter.jpg"];
        let odd = FakeCamera::new(&photo, FakeFormat::Yuyv, 641, 480, 30.0).err();
        assert!(odd.is_some_and(|e| e.to_string().contains("even width")));
        let none: [&str; 0] = [];
        assert!(FakeCamera::new(&none, FakeFormat::Mjpeg, 64, 48, 30.0).is_err());
        let missing = FakeCamera::new(&photo, FakeFormat::Mjpeg, 64, 48, 30.0)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            missing.starts_with("cannot open does-not-matter.jpg"),
            "{missing}"
        );
    }
}
