//! The capture thread over the fake camera: the newest-frame policy against a slow consumer,
//! reconnection after a simulated unplug and after time-outs, stopping, giving up, and the
//! realism of the fake's truncated JPEG frames.
// The V4L2 camera code exists only with the `camera` feature.
#![cfg(feature = "camera")]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use csra_edge::source::capture::{Capture, ReconnectPolicy};
use csra_edge::source::fake::{FakeCamera, FakeFormat, Faults, Unplug};
use csra_edge::source::v4l2::{CameraOptions, V4lSource};
use csra_edge::source::{FrameSource, FrameStream, PixelFormat, SourceError};
use csra_image::{Decoder, RawImage};

const FPS: f64 = 30.0;

fn camera(format: FakeFormat) -> FakeCamera {
    let photos = common::photos(&["humans_0.jpg", "cat_0.jpg", "city_0.jpg"]);
    FakeCamera::new(&photos, format, 320, 240, FPS).expect("the fake camera")
}

fn quick_policy() -> ReconnectPolicy {
    ReconnectPolicy {
        frame_timeout: Duration::from_millis(500),
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        give_up_after: None,
    }
}

/// Strict JPEG decoding with the pipeline's decoder; the image size on success.
fn decode_strict(jpeg: &[u8]) -> Result<(usize, usize), String> {
    let raw = RawImage {
        format: PixelFormat::Mjpeg,
        width: 0,
        height: 0,
        stride: 0,
        data: jpeg,
    };
    let mut decoder = Decoder::new();
    let rgb = decoder.decode(raw).map_err(|e| e.to_string())?;
    Ok((rgb.width as usize, rgb.height as usize))
}

#[test]
fn a_slow_consumer_always_gets_the_newest_frame_and_drops_are_counted() {
    let camera = camera(FakeFormat::Mjpeg);
    let interval = camera.interval();
    let delivered = camera.delivered_counter();
    let mut capture = Capture::spawn(Box::new(camera), ReconnectPolicy::default());
    // A camera's frames are live: `--prefetch auto` does not read them ahead.
    assert!(capture.is_live());
    // A model slower than the frame interval: 70 ms against 33 ms.
    let work = Duration::from_millis(70);
    let mut ages = Vec::new();
    let mut sequences = Vec::new();
    while ages.len() < 25 {
        let frame = capture.next().unwrap().expect("the stream ended early");
        ages.push(frame.captured.elapsed());
        sequences.push(frame.sequence);
        assert_eq!(frame.format, PixelFormat::Mjpeg);
        thread::sleep(work);
    }
    capture.shutdown();
    let stats = capture.stats();
    let delivered = delivered.load(Ordering::Relaxed);
    let taken = ages.len() as u64;

    let oldest = ages.iter().max().copied().unwrap_or_default();
    eprintln!(
        "interval {interval:?}: oldest frame taken {oldest:?}; delivered {delivered}, \
         taken {taken}, dropped {}",
        stats.dropped
    );
    assert!(
        oldest < 2 * interval,
        "a frame {oldest:?} old was handed over (limit {:?})",
        2 * interval
    );
    assert!(sequences.windows(2).all(|w| w[1] > w[0]), "{sequences:?}");
    assert_eq!(stats.dropped, delivered - taken);
    // Each 70 ms of work spans two frame intervals, so about every other frame is replaced.
    assert!(stats.dropped >= taken / 2, "{stats:?}");
    // The sequence gaps between taken frames are exactly the frames dropped meanwhile.
    let skipped = sequences.last().unwrap_or(&0) - sequences[0] + 1 - taken;
    assert!(skipped <= stats.dropped, "{skipped} skipped, {stats:?}");
    assert_eq!((stats.reconnects, stats.source_errors), (0, 0));
}

#[test]
fn an_unplug_is_followed_by_a_reconnect_and_frames_flow_again() {
    let unplug = Unplug {
        at_frame: 10,
        duration: Duration::from_millis(300),
    };
    let camera = camera(FakeFormat::Yuyv).with_faults(Faults {
        unplugs: vec![unplug],
        ..Faults::default()
    });
    let mut capture = Capture::spawn(Box::new(camera), quick_policy());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut before = None;
    let mut after = Vec::new();
    while after.len() < 10 {
        assert!(Instant::now() < deadline, "no frames after the unplug");
        let frame = capture.next().unwrap().expect("the stream ended early");
        assert_eq!(frame.data.len(), 320 * 240 * 2);
        assert_eq!(frame.stride, 640);
        if frame.sequence < unplug.at_frame {
            before = Some(frame.captured);
        } else {
            assert_ne!(
                frame.sequence, unplug.at_frame,
                "the unplugged frame arrived"
            );
            after.push(frame.captured);
        }
    }
    let stats = capture.stats();
    let gap = after[0].duration_since(before.expect("no frame before the unplug"));
    eprintln!("gap across the unplug {gap:?}; {stats:?}");
    assert!(gap >= unplug.duration, "frames came back after {gap:?}");
    assert_eq!(stats.reconnects, 1);
    // The lost stream, then the reopen attempts made while the camera was away.
    assert!(stats.source_errors >= 2, "{stats:?}");
}

#[test]
fn a_time_out_reopens_the_source() {
    let camera = camera(FakeFormat::Mjpeg).with_faults(Faults {
        timeouts: BTreeSet::from([3]),
        ..Faults::default()
    });
    let policy = ReconnectPolicy {
        frame_timeout: Duration::from_millis(150),
        ..quick_policy()
    };
    let mut capture = Capture::spawn(Box::new(camera), policy);
    let mut sequences = Vec::new();
    while sequences.last().is_none_or(|&s| s < 8) {
        sequences.push(capture.next().unwrap().expect("ended").sequence);
    }
    assert!(!sequences.contains(&3), "{sequences:?}");
    let stats = capture.stats();
    assert_eq!((stats.source_errors, stats.reconnects), (1, 1), "{stats:?}");
}

#[test]
fn truncated_jpegs_arrive_as_truncated_and_fail_strict_decoding() {
    let truncated = BTreeSet::from([2, 3, 7]);
    let mut camera = camera(FakeFormat::Mjpeg).with_faults(Faults {
        truncate: truncated.clone(),
        truncate_to: 0.6,
        ..Faults::default()
    });
    camera.open().unwrap();
    for tick in 0..9 {
        let frame = camera.next_frame(Duration::from_secs(1)).unwrap();
        assert_eq!(frame.sequence, tick);
        let original = camera.original_frame(tick);
        assert_eq!(decode_strict(original), Ok((320, 240)), "frame {tick}");
        if truncated.contains(&tick) {
            assert!(frame.data.len() < original.len(), "frame {tick}");
            assert_eq!(frame.data.as_slice(), &original[..frame.data.len()]);
            assert!(
                !frame.data.ends_with(&[0xFF, 0xD9]),
                "frame {tick} kept its EOI"
            );
            let err = decode_strict(&frame.data);
            assert!(err.is_err(), "truncated frame {tick} decoded: {err:?}");
        } else {
            assert_eq!(frame.data, original, "frame {tick}");
        }
    }
}

#[test]
fn stopping_ends_the_stream_promptly() {
    let mut capture = Capture::spawn(Box::new(camera(FakeFormat::Mjpeg)), quick_policy());
    assert!(capture.next().unwrap().is_some());
    let stop = capture.stop_handle();
    let stopper = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        stop.stop();
    });
    let started = Instant::now();
    while capture.next().unwrap().is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still streaming"
        );
    }
    assert!(capture.next().unwrap().is_none());
    stopper.join().unwrap();
    let dropping = Instant::now();
    drop(capture);
    assert!(dropping.elapsed() < Duration::from_millis(500));
}

#[test]
fn capture_gives_up_after_the_policy_limit_with_the_open_error() {
    let camera = camera(FakeFormat::Mjpeg).with_faults(Faults {
        unplugs: vec![Unplug {
            at_frame: 2,
            duration: Duration::from_secs(60),
        }],
        ..Faults::default()
    });
    let policy = ReconnectPolicy {
        give_up_after: Some(3),
        initial_delay: Duration::from_millis(10),
        ..quick_policy()
    };
    let mut capture = Capture::spawn(Box::new(camera), policy);
    let err = loop {
        match capture.next() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("ended without an error"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, SourceError::Open { .. }), "{err}");
    assert!(capture.next().unwrap().is_none());
    let stats = capture.stats();
    assert_eq!((stats.source_errors, stats.reconnects), (4, 0), "{stats:?}");
}

/// A source whose driver layer panics on the first read.
struct PanickingSource;

impl FrameSource for PanickingSource {
    fn name(&self) -> &str {
        "panicking"
    }
    fn open(&mut self) -> Result<(), SourceError> {
        Ok(())
    }
    fn next_frame(&mut self, _: Duration) -> Result<csra_edge::source::Frame, SourceError> {
        panic!("a driver answer the bindings could not handle")
    }
    fn close(&mut self) {}
}

#[test]
fn a_panicking_source_ends_the_stream_with_an_error() {
    let mut capture = Capture::spawn(Box::new(PanickingSource), quick_policy());
    let err = capture
        .next()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(err, "panicking: stream lost: the capture thread panicked");
    assert!(capture.next().unwrap().is_none());
}

#[test]
fn a_missing_camera_is_reported_by_the_first_read() {
    let source = V4lSource::new(CameraOptions::new("/dev/video-csra-test-missing"));
    let mut capture = Capture::spawn(Box::new(source), quick_policy());
    let err = capture
        .next()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("cannot open /dev/video-csra-test-missing: no such camera"),
        "{err}"
    );
    assert!(err.contains("csra-edge probe"), "{err}");
    assert!(capture.next().unwrap().is_none());
}
