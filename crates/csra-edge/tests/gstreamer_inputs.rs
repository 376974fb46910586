//! The GStreamer inputs end to end with the `csra-edge` binary and the shipped model: video
//! files encoded here by GStreamer itself from real photos (H.264 in MP4, MJPEG in AVI) give
//! one result per frame, in order, with the photos' labels; a loopback RTSP server
//! (gst-rtsp-server) that is killed and restarted mid-run is reconnected to; a corrupt file, a
//! truncated one and an unreachable URL fail with errors naming the input.
//!
//! Needs the `gstreamer` feature (and `rtsp-test-server` for the RTSP test) and the Debian
//! GStreamer packages scripts/test.sh installs.

#![cfg(feature = "gstreamer")]
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// Frames per second of the test videos.
const FPS: u32 = 5;

/// The photos the videos are made of, in frame order: neighbours have different top labels
/// with the shipped model (most of its pictures show a person), so a frame shifted by one is
/// caught.
const PHOTOS: [&str; 12] = [
    "cat_0.jpg",
    "dog_0.jpg",
    "city_0.jpg",
    "humans_0.jpg",
    "room_0.jpg",
    "airplane_0.jpg",
    "trail_0.jpg",
    "bird_0.jpg",
    "desk.jpg",
    "horse_0.jpg",
    "cat_1.jpg",
    "dog_1.jpg",
];

fn model_dir() -> PathBuf {
    csra_test_support::workspace_root().join("models/mobilenet_v2-coco-voc-mini")
}

fn edge() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_csra-edge"));
    command
        .env("RUST_LOG", "info")
        .args(["--device", "x86-cpu", "--threads", "2", "--model"])
        .arg(model_dir());
    command
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn lines(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "exit {:?}\n{}",
        output.status,
        stderr(output)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The most probable label of a line run with `--threshold 0`.
fn top1(line: &Value) -> String {
    line["labels"][0]["label"].as_str().unwrap().to_owned()
}

/// What a frame's top label must be, from the same frame run as an image file.
#[derive(Debug)]
enum Expected {
    /// The image's top label, clearly ahead of the second (by 0.1 or more).
    Clear(String),
    /// The image's top two labels, close enough that a codec's loss may swap them.
    Either(String, String),
}

impl Expected {
    fn from_line(line: &Value) -> Self {
        let label = |i: usize| line["labels"][i]["label"].as_str().unwrap().to_owned();
        let prob = |i: usize| line["labels"][i]["prob"].as_f64().unwrap();
        if prob(0) - prob(1) >= 0.1 {
            Expected::Clear(label(0))
        } else {
            Expected::Either(label(0), label(1))
        }
    }

    fn labels(&self) -> Vec<&str> {
        match self {
            Expected::Clear(l) => vec![l],
            Expected::Either(a, b) => vec![a, b],
        }
    }

    fn admits(&self, label: &str) -> bool {
        match self {
            Expected::Clear(l) => l == label,
            Expected::Either(a, b) => a == label || b == label,
        }
    }
}

/// Runs gst-launch-1.0 with `args`; fails the test when GStreamer's tools are missing.
fn gst_launch(args: &[&str]) {
    let output = Command::new("gst-launch-1.0")
        .arg("-q")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            csra_test_support::missing_tool(
                &format!("gst-launch-1.0 ({e})"),
                "run ./scripts/test.sh, which installs gstreamer1.0-tools and the plugins",
            )
        });
    assert!(
        output.status.success(),
        "gst-launch-1.0 {args:?} failed: {}",
        stderr(&output)
    );
}

/// The photos copied as `000.jpg`, `001.jpg`, … (multifilesrc reads numbered files).
fn numbered_photos(dir: &Path) -> PathBuf {
    let frames = dir.join("frames");
    std::fs::create_dir(&frames).unwrap();
    for (i, photo) in common::photos(&PHOTOS).iter().enumerate() {
        std::fs::copy(photo, frames.join(format!("{i:03}.jpg"))).unwrap();
    }
    frames
}

/// The photos as a 640×480 video at [`FPS`], encoded by GStreamer with `encoder` into `muxer`.
fn encode(frames: &Path, encoder: &str, muxer: &str, out: &Path) {
    let location = format!("location={}/%03d.jpg", frames.display());
    let stop = format!("stop-index={}", PHOTOS.len() - 1);
    let caps = format!("caps=image/jpeg,framerate={FPS}/1");
    let sink = format!("location={}", out.display());
    let mut args = vec![
        "multifilesrc",
        &location,
        "index=0",
        &stop,
        &caps,
        "!",
        "jpegdec",
        "!",
        "videoscale",
        "method=bilinear2",
        "add-borders=false",
        "!",
        "videoconvert",
        "!",
        "video/x-raw,format=I420,width=640,height=480,pixel-aspect-ratio=1/1",
        "!",
    ];
    args.extend(encoder.split(' '));
    args.extend(["!", muxer, "!", "filesink", &sink]);
    gst_launch(&args);
}

/// The expected top label of each photo, run as image files (the same 640×480 frames as
/// lossless PNGs, so the runs differ only by the video codec and GStreamer's scaling).
fn image_labels(dir: &Path, frames: &Path) -> Vec<Expected> {
    let stills = dir.join("stills");
    std::fs::create_dir(&stills).unwrap();
    let location = format!("location={}/%03d.jpg", frames.display());
    let stop = format!("stop-index={}", PHOTOS.len() - 1);
    let out = format!("location={}/%03d.png", stills.display());
    gst_launch(&[
        "multifilesrc",
        &location,
        "index=0",
        &stop,
        "caps=image/jpeg,framerate=5/1",
        "!",
        "jpegdec",
        "!",
        "videoscale",
        "method=bilinear2",
        "add-borders=false",
        "!",
        "videoconvert",
        "!",
        "video/x-raw,format=RGB,width=640,height=480,pixel-aspect-ratio=1/1",
        "!",
        "pngenc",
        "!",
        "multifilesink",
        &out,
    ]);
    let output = edge()
        .args(["--threshold", "0", "--topk", "2", "--input"])
        .arg(&stills)
        .output()
        .unwrap();
    let lines = lines(&output);
    assert_eq!(lines.len(), PHOTOS.len());
    let expected: Vec<Expected> = lines.iter().map(Expected::from_line).collect();
    // Neighbouring photos admit no common label, so the comparison below has teeth: a frame
    // repeated or shifted by one fails it.
    let distinct = expected
        .windows(2)
        .filter(|pair| !pair[0].labels().iter().any(|l| pair[1].admits(l)))
        .count();
    assert!(distinct >= 9, "{expected:?}");
    expected
}

/// Runs the video and checks one line per frame in order, each with the photo's label, its
/// position in the video, and the time spent decoding.
fn check_video(video: &Path, expected: &[Expected]) {
    let output = edge()
        .args(["--threshold", "0", "--topk", "1", "--input"])
        .arg(video)
        .output()
        .unwrap();
    let lines = lines(&output);
    let log = stderr(&output);
    assert_eq!(lines.len(), PHOTOS.len(), "one line per frame\n{log}");
    let name = video.display().to_string();
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["frame"], i as u64, "{line}");
        assert_eq!(line["sequence"], i as u64, "{line}");
        assert_eq!(line["origin"], format!("{name}#{i}"), "{line}");
        // The frame's place in the video: frame i is shown at i / FPS seconds.
        let pts = line["pts"].as_f64().unwrap();
        assert!(
            (pts - i as f64 / f64::from(FPS)).abs() < 1e-3,
            "frame {i} at {pts} s"
        );
        let captured = line["captured"].as_str().unwrap();
        assert!(captured.parse::<jiff::Timestamp>().is_ok(), "{captured}");
        assert!(
            line["timings_ms"]["source"].as_f64().unwrap() >= 0.0,
            "{line}"
        );
        assert!(
            expected[i].admits(&top1(line)),
            "frame {i} ({}): {} but the image gives {:?}",
            PHOTOS[i],
            top1(line),
            expected[i]
        );
    }
    assert!(log.contains("EndOfStream"), "{log}");
}

#[test]
fn h264_and_mjpeg_videos_give_one_result_per_frame_with_the_photos_labels() {
    let dir = tempfile::tempdir().unwrap();
    let frames = numbered_photos(dir.path());
    let expected = image_labels(dir.path(), &frames);
    let mp4 = dir.path().join("photos.mp4");
    encode(&frames, "x264enc pass=quant quantizer=18", "mp4mux", &mp4);
    check_video(&mp4, &expected);
    let avi = dir.path().join("photos.avi");
    encode(&frames, "jpegenc quality=95", "avimux", &avi);
    check_video(&avi, &expected);

    // --loop starts the file over: twice the frames, positions starting again at 0.
    let output = edge()
        .args(["--loop", "--frames", "20", "--input"])
        .arg(&avi)
        .output()
        .unwrap();
    let lines = lines(&output);
    assert_eq!(lines.len(), 20);
    assert_eq!(lines[PHOTOS.len()]["pts"].as_f64(), Some(0.0));
    assert_eq!(lines[19]["frame"], 19);

    // A truncated MP4 (its index is written last) and bytes that are no video at all.
    let bytes = std::fs::read(&mp4).unwrap();
    let truncated = dir.path().join("truncated.mp4");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = dir.path().join("garbage.mkv");
    std::fs::write(&garbage, b"this is not a video file, only text".repeat(500)).unwrap();
    for bad in [&truncated, &garbage] {
        let output = edge().arg("--input").arg(bad).output().unwrap();
        let log = stderr(&output);
        assert!(!output.status.success(), "{log}");
        assert!(log.contains(&format!("--input {}", bad.display())), "{log}");
        assert!(log.contains("cannot read the video file"), "{log}");
        assert!(
            log.contains("check that it is a complete video file"),
            "{log}"
        );
        assert!(output.stdout.is_empty());
    }
}

/// A local TCP port nobody listens on (bound, then released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn an_unreachable_rtsp_camera_is_a_clear_error() {
    let url = format!("rtsp://127.0.0.1:{}/cam", free_port());
    let output = edge().args(["--input", &url]).output().unwrap();
    let log = stderr(&output);
    assert!(!output.status.success(), "{log}");
    assert!(log.contains(&format!("cannot open {url}")), "{log}");
    assert!(
        log.contains("check that the camera or server is on"),
        "{log}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn a_missing_video_file_and_a_malformed_uri_are_clear_errors() {
    let output = edge()
        .args(["--input", "/nonexistent/clip.mp4"])
        .output()
        .unwrap();
    let log = stderr(&output);
    assert!(
        log.contains("no such video file /nonexistent/clip.mp4; check the path"),
        "{log}"
    );
    let output = edge().args(["--input", "csi://front"]).output().unwrap();
    let log = stderr(&output);
    assert!(!output.status.success());
    assert!(log.contains("csi://0"), "{log}");
}

#[cfg(feature = "rtsp-test-server")]
mod rtsp {
    use super::*;
    use std::process::Child;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A hang guard only: a line normally arrives within a fraction of a second.
    const LINE_WAIT: Duration = Duration::from_secs(60);

    /// Starts the loopback server on `port` streaming the photos as a live H.264 camera
    /// (10 fps, a key frame every 10 frames), once it listens.
    fn start_server(port: u16, frames: &Path) -> Child {
        let launch = format!(
            "( multifilesrc location={}/%03d.jpg loop=true caps=image/jpeg,framerate=10/1 ! jpegdec \
             ! videoscale ! videoconvert ! video/x-raw,format=I420,width=320,height=240 \
             ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 \
             ! rtph264pay name=pay0 pt=96 )",
            frames.display()
        );
        let mut server = Command::new(env!("CARGO_BIN_EXE_csra-edge-rtsp-server"))
            .args([&port.to_string(), "/cam", &launch])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert!(ready.starts_with("ready rtsp://"), "{ready:?}");
        server
    }

    /// A camera that reboots mid-run: the run goes on after it comes back, the reconnect
    /// and the errors of the gap are counted, and SIGINT then ends it cleanly.
    #[test]
    fn an_rtsp_camera_that_restarts_is_reconnected() {
        let dir = tempfile::tempdir().unwrap();
        let frames = numbered_photos(dir.path());
        let port = free_port();
        let url = format!("rtsp://127.0.0.1:{port}/cam");
        let mut server = start_server(port, &frames);
        let mut edge = edge()
            .args(["--input", &url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = edge.stdout.take().unwrap();
        let mut stderr = edge.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            let mut text = String::new();
            stderr.read_to_string(&mut text).unwrap();
            text
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        let next_line = || -> Value {
            let line = rx
                .recv_timeout(LINE_WAIT)
                .unwrap_or_else(|e| panic!("no result line within {LINE_WAIT:?}: {e}"));
            serde_json::from_str(&line).unwrap()
        };
        let before: Vec<Value> = (0..5).map(|_| next_line()).collect();
        server.kill().unwrap();
        server.wait().unwrap();
        // Lines already on their way may still come; the camera is away now.
        let mut server = start_server(port, &frames);
        let after: Vec<Value> = (0..15).map(|_| next_line()).collect();
        let status = Command::new("kill")
            .args(["-INT", &edge.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = edge.wait().unwrap();
        server.kill().unwrap();
        server.wait().unwrap();
        let log = log.join().unwrap();
        assert!(exit.success(), "{exit:?}\n{log}");
        for (i, line) in before.iter().chain(&after).enumerate() {
            assert_eq!(line["frame"], i as u64, "{line}");
            assert!(line["origin"].as_str().unwrap().starts_with(&url), "{line}");
            assert!(line["labels"].is_array());
        }
        assert!(log.contains(&format!("{url}: reconnected")), "{log}");
        let summary = log
            .lines()
            .find(|l| l.contains("done (Stopped)"))
            .unwrap_or_else(|| panic!("no summary line:\n{log}"));
        let reconnects: u64 = summary
            .split(", ")
            .find_map(|part| part.strip_suffix(" reconnects"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{summary}"));
        assert!(reconnects >= 1, "{summary}");
    }
}
