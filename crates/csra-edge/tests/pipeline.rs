//! The pipeline as a library, fed by an in-memory frame stream: every pixel format, a
//! truncated JPEG skipped and counted, the stop flag, sinks flushed, and the summary.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use csra_edge::backend::{Backend, BackendError, Outputs, TractBackend};
use csra_edge::model::ModelFiles;
use csra_edge::pipeline::{Pipeline, PipelineOptions, StopReason};
use csra_edge::postprocess::{PostprocessConfig, Smoothing};
use csra_edge::preprocess::Preprocessor;
use csra_edge::sink::{Delivery, Sink, SinkError};
use csra_edge::source::{Frame, FrameStream, PixelFormat, SourceError, StreamStats};
use serde_json::Value;

/// Frames from a list; optionally sets a stop flag while handing out frame number `n` (from 1),
/// as a signal arriving during that frame would.
struct ListStream {
    frames: VecDeque<Frame>,
    handed: usize,
    stop_after: Option<(usize, Arc<AtomicBool>)>,
}

impl FrameStream for ListStream {
    fn next(&mut self) -> Result<Option<Frame>, SourceError> {
        self.handed += 1;
        if let Some((n, stop)) = &self.stop_after {
            if self.handed == *n {
                stop.store(true, Ordering::SeqCst);
            }
        }
        Ok(self.frames.pop_front())
    }

    fn stats(&self) -> StreamStats {
        StreamStats {
            dropped: 7,
            reconnects: 1,
            source_errors: 2,
            corrupt: 3,
        }
    }
}

/// Collects lines; counts flushes.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<(Vec<String>, usize)>>);

impl Sink for Collect {
    fn send(&mut self, line: &str) -> Result<(), SinkError> {
        self.0.lock().unwrap().0.push(line.to_owned());
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        self.0.lock().unwrap().1 += 1;
        Ok(())
    }
    fn delivery(&self) -> Delivery {
        Delivery {
            target: "memory".into(),
            lines: self.0.lock().unwrap().0.len() as u64,
            lost: 0,
        }
    }
}

fn frame(
    format: PixelFormat,
    width: u32,
    height: u32,
    stride: u32,
    data: Vec<u8>,
    origin: &str,
) -> Frame {
    Frame {
        format,
        width,
        height,
        stride,
        data,
        sequence: 0,
        captured: Instant::now(),
        origin: origin.to_owned(),
        pts: None,
        in_source: None,
    }
}

/// RGB → BT.601 limited-range YUYV, the inverse of what cameras' YUYV means; chroma of each
/// pixel pair averaged.
fn to_yuyv(rgb: &[u8], width: usize, height: usize) -> Vec<u8> {
    let ycc = |p: &[u8]| {
        let (r, g, b) = (f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
        (
            16.0 + 0.257 * r + 0.504 * g + 0.098 * b,
            128.0 - 0.148 * r - 0.291 * g + 0.439 * b,
            128.0 + 0.439 * r - 0.368 * g - 0.071 * b,
        )
    };
    let byte = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    let mut out = Vec::with_capacity(2 * width * height);
    for pair in rgb.chunks_exact(6).take(width * height / 2) {
        let (y0, u0, v0) = ycc(&pair[..3]);
        let (y1, u1, v1) = ycc(&pair[3..]);
        out.extend([
            byte(y0),
            byte((u0 + u1) / 2.0),
            byte(y1),
            byte((v0 + v1) / 2.0),
        ]);
    }
    out
}

fn pipeline(model: &common::TestModel, options: PipelineOptions) -> Pipeline {
    let files = ModelFiles::open(&model.dir).unwrap();
    let backend = Box::new(TractBackend::load(&files, 1).unwrap());
    let mut post = PostprocessConfig::from_manifest(&files.manifest, None);
    post.thresholds = vec![0.0; post.thresholds.len()];
    Pipeline::new(&files.manifest, backend, post, options).unwrap()
}

#[test]
fn every_format_runs_and_a_truncated_jpeg_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 11);
    let photos = common::photos_dir();
    let jpeg = std::fs::read(photos.join("dog_0.jpg")).unwrap();
    let bmp_path = photos.join("coral_grace_hopper.bmp");
    let bmp = std::fs::read(&bmp_path).unwrap();
    let rgb = image::open(&bmp_path).unwrap().into_rgb8();
    let (w, h) = (rgb.width() as usize & !1, rgb.height() as usize);
    let rgb = image::imageops::crop_imm(&rgb, 0, 0, w as u32, h as u32).to_image();
    // Packed RGB with 5 bytes of row padding.
    let stride = 3 * w + 5;
    let mut padded = vec![0u8; stride * h];
    for (row, src) in padded.chunks_mut(stride).zip(rgb.as_raw().chunks(3 * w)) {
        row[..3 * w].copy_from_slice(src);
    }
    let frames = vec![
        frame(PixelFormat::Mjpeg, 0, 0, 0, jpeg.clone(), "mjpeg"),
        frame(
            PixelFormat::Mjpeg,
            0,
            0,
            0,
            jpeg[..jpeg.len() / 3].to_vec(),
            "truncated",
        ),
        frame(
            PixelFormat::Rgb24,
            w as u32,
            h as u32,
            stride as u32,
            padded,
            "rgb24",
        ),
        frame(
            PixelFormat::Yuyv,
            w as u32,
            h as u32,
            0,
            to_yuyv(rgb.as_raw(), w, h),
            "yuyv",
        ),
        frame(PixelFormat::Encoded, 0, 0, 0, bmp, "bmp"),
    ];
    let mut stream = ListStream {
        frames: frames.into(),
        handed: 0,
        stop_after: None,
    };
    let sink = Collect::default();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink.clone())];
    let options = PipelineOptions {
        all_scores: true,
        ..PipelineOptions::default()
    };
    let summary = pipeline(&model, options)
        .run(&mut stream, &mut sinks, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(
        (summary.frames, summary.bad_frames, summary.lines),
        (4, 1, 4)
    );
    assert_eq!(summary.stop, StopReason::EndOfStream);
    assert_eq!(summary.stream.dropped, 7);
    assert!(summary.latency_p50_ms.unwrap() <= summary.latency_p99_ms.unwrap());
    let (lines, flushes) = sink.0.lock().unwrap().clone();
    assert_eq!(flushes, 1);
    let lines: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let origins: Vec<&str> = lines
        .iter()
        .map(|l| l["origin"].as_str().unwrap())
        .collect();
    assert_eq!(origins, ["mjpeg", "rgb24", "yuyv", "bmp"]);
    // The photo's width is even, so the packed RGB frame holds exactly the BMP's pixels and
    // must score identically, padding and all.
    assert_eq!(w as u32, image::image_dimensions(&bmp_path).unwrap().0);
    assert_eq!(lines[1]["scores"], lines[3]["scores"]);
}

/// YUYV made from a photo and converted back gives nearly the photo's input tensor: chroma
/// subsampling and two roundings cost a few levels at colour edges, little on average.
#[test]
fn yuyv_round_trip_stays_close_to_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 12);
    let rgb = image::open(common::photos_dir().join("coral_grace_hopper.bmp"))
        .unwrap()
        .into_rgb8();
    let (w, h) = (rgb.width() as usize & !1, rgb.height() as usize);
    let rgb = image::imageops::crop_imm(&rgb, 0, 0, w as u32, h as u32).to_image();
    let mut pre = Preprocessor::new(&model.manifest);
    let mut a = vec![0.0; pre.input_len()];
    let mut b = vec![0.0; pre.input_len()];
    pre.run(
        &frame(
            PixelFormat::Rgb24,
            w as u32,
            h as u32,
            0,
            rgb.as_raw().clone(),
            "rgb",
        ),
        &mut a,
    )
    .unwrap();
    pre.run(
        &frame(
            PixelFormat::Yuyv,
            w as u32,
            h as u32,
            0,
            to_yuyv(rgb.as_raw(), w, h),
            "yuyv",
        ),
        &mut b,
    )
    .unwrap();
    // x/127.5 − 1: one level is 1/127.5.
    let levels: Vec<f32> = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs() * 127.5)
        .collect();
    let mean = levels.iter().sum::<f32>() / levels.len() as f32;
    let max = levels.iter().copied().fold(0.0, f32::max);
    assert!(mean < 1.5, "mean {mean} levels");
    assert!(max < 40.0, "max {max} levels");
}

#[test]
fn a_short_raw_frame_is_a_bad_frame_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 13);
    let mut pre = Preprocessor::new(&model.manifest);
    let mut out = vec![0.0; pre.input_len()];
    let short = frame(PixelFormat::Yuyv, 640, 480, 1280, vec![0; 1000], "cam#3");
    let err = pre.run(&short, &mut out).unwrap_err().to_string();
    assert!(
        err.contains("cam#3") && err.contains("needs 614400 bytes, it has 1000"),
        "{err}"
    );
    let odd = frame(PixelFormat::Yuyv, 3, 2, 0, vec![0; 12], "odd");
    assert!(pre
        .run(&odd, &mut out)
        .unwrap_err()
        .to_string()
        .contains("even width"));
}

#[test]
fn the_stop_flag_ends_the_run_after_the_current_frame() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 14);
    let jpeg = std::fs::read(common::photos_dir().join("cat_0.jpg")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut stream = ListStream {
        frames: (0..10)
            .map(|i| frame(PixelFormat::Mjpeg, 0, 0, 0, jpeg.clone(), &format!("f{i}")))
            .collect(),
        handed: 0,
        stop_after: Some((3, Arc::clone(&stop))),
    };
    let sink = Collect::default();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink.clone())];
    let summary = pipeline(&model, PipelineOptions::default())
        .run(&mut stream, &mut sinks, &stop)
        .unwrap();
    assert_eq!(summary.stop, StopReason::Stopped);
    assert_eq!(summary.frames, 3);
    assert_eq!(sink.0.lock().unwrap().1, 1, "flushed once");
}

/// tract's multithreaded kernels split the matrix products across threads; the outputs stay
/// those of one thread (each output element is still summed in one order by one thread).
#[test]
fn more_threads_give_the_same_outputs() {
    use csra_edge::backend::Backend;
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 15);
    let files = ModelFiles::open(&model.dir).unwrap();
    let mut one = TractBackend::load(&files, 1).unwrap();
    let mut four = TractBackend::load(&files, 4).unwrap();
    assert!(four.describe().contains("4 threads"), "{}", four.describe());
    let input: Vec<f32> = (0..one.input_len())
        .map(|i| (i % 97) as f32 / 48.0 - 1.0)
        .collect();
    let (a, b) = (one.run(&input).unwrap(), four.run(&input).unwrap());
    let max = a
        .probs
        .iter()
        .zip(&b.probs)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(max <= 1e-6, "probabilities differ by {max}");
    assert_eq!(
        a.attention.unwrap().data.len(),
        b.attention.unwrap().data.len()
    );
}

/// A backend that reports its own network time, as TensorRT does from CUDA events.
struct TimedBackend(TractBackend);

impl csra_edge::backend::Backend for TimedBackend {
    fn describe(&self) -> String {
        "timed tract".to_owned()
    }
    fn input_len(&self) -> usize {
        self.0.input_len()
    }
    fn run(
        &mut self,
        input: &[f32],
    ) -> Result<csra_edge::backend::Outputs, csra_edge::backend::BackendError> {
        let mut outputs = self.0.run(input)?;
        outputs.network_ms = Some(12.345_678);
        Ok(outputs)
    }
}

#[test]
fn an_engines_own_network_time_is_the_lines_network_timing() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 21);
    let files = ModelFiles::open(&model.dir).unwrap();
    let backend = Box::new(TimedBackend(TractBackend::load(&files, 1).unwrap()));
    let post = PostprocessConfig::from_manifest(&files.manifest, None);
    let mut pipeline =
        Pipeline::new(&files.manifest, backend, post, PipelineOptions::default()).unwrap();
    let photo = std::fs::read(&common::photos(&["dog_0.jpg"])[0]).unwrap();
    let mut stream = ListStream {
        frames: (0..2)
            .map(|_| frame(PixelFormat::Encoded, 0, 0, 0, photo.clone(), "dog"))
            .collect(),
        handed: 0,
        stop_after: None,
    };
    let sink = Collect::default();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink.clone())];
    let summary = pipeline
        .run(&mut stream, &mut sinks, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(summary.frames, 2);
    for line in &sink.0.lock().unwrap().0 {
        let value: Value = serde_json::from_str(line).unwrap();
        // Rounded to the microsecond like every stage.
        assert_eq!(value["timings_ms"]["network"], 12.346, "{line}");
    }
}

/// tract, except that call number `bad` (from 1) returns a NaN probability, as an FP16 engine
/// that overflows would.
struct NanOnce {
    inner: TractBackend,
    calls: usize,
    bad: usize,
}

impl Backend for NanOnce {
    fn describe(&self) -> String {
        "tract with one NaN".into()
    }
    fn input_len(&self) -> usize {
        self.inner.input_len()
    }
    fn run(&mut self, input: &[f32]) -> Result<Outputs, BackendError> {
        self.calls += 1;
        let mut outputs = self.inner.run(input)?;
        if self.calls == self.bad {
            outputs.probs[0] = f32::NAN;
        }
        Ok(outputs)
    }
}

fn dog_frames(n: usize) -> ListStream {
    let jpeg = std::fs::read(common::photos_dir().join("dog_0.jpg")).unwrap();
    ListStream {
        frames: (0..n)
            .map(|i| frame(PixelFormat::Mjpeg, 0, 0, 0, jpeg.clone(), &format!("f{i}")))
            .collect(),
        handed: 0,
        stop_after: None,
    }
}

#[test]
fn a_nan_output_is_a_skipped_frame_and_never_enters_the_smoothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 13);
    let files = ModelFiles::open(&model.dir).unwrap();
    let backend = NanOnce {
        inner: TractBackend::load(&files, 1).unwrap(),
        calls: 0,
        bad: 2,
    };
    let mut post = PostprocessConfig::from_manifest(&files.manifest, None);
    post.thresholds = vec![0.0; post.thresholds.len()];
    post.smoothing = Smoothing::Ema(0.5);
    let mut pipeline = Pipeline::new(
        &files.manifest,
        Box::new(backend),
        post,
        PipelineOptions::default(),
    )
    .unwrap();
    let sink = Collect::default();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink.clone())];
    let summary = pipeline
        .run(&mut dog_frames(4), &mut sinks, &AtomicBool::new(false))
        .unwrap();
    assert_eq!((summary.frames, summary.bad_frames), (3, 1));
    assert_eq!(summary.bad_outputs, 1);
    let lines = sink.0.lock().unwrap().0.clone();
    let origins: Vec<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["origin"].to_string())
        .collect();
    assert_eq!(origins, ["\"f0\"", "\"f2\"", "\"f3\""]);
    // With every threshold at 0 every class is a label, on every frame after the NaN too.
    for line in &lines {
        let value: Value = serde_json::from_str(line).unwrap();
        let labels = value["labels"].as_array().unwrap();
        assert_eq!(labels.len(), files.manifest.num_classes, "{line}");
        assert!(labels.iter().all(|l| l["prob"].is_f64()), "{line}");
    }
}

/// A sink that takes every line and then fails to flush, like a broker that went away.
struct Unflushable;

impl Sink for Unflushable {
    fn send(&mut self, _line: &str) -> Result<(), SinkError> {
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Err(SinkError::Broker {
            url: "mqtt://broker/t".into(),
            reason: "2 of 2 results not acknowledged".into(),
        })
    }
    fn delivery(&self) -> Delivery {
        Delivery {
            target: "mqtt://broker/t".into(),
            lines: 2,
            lost: 2,
        }
    }
}

#[test]
fn a_sink_that_fails_to_flush_does_not_cost_the_summary_or_the_other_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 14);
    let sink = Collect::default();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(Unflushable), Box::new(sink.clone())];
    let summary = pipeline(&model, PipelineOptions::default())
        .run(&mut dog_frames(2), &mut sinks, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(summary.frames, 2);
    let (lines, flushes) = sink.0.lock().unwrap().clone();
    assert_eq!((lines.len(), flushes), (2, 1));
    assert_eq!(summary.lost_lines(), 2);
    assert_eq!(summary.sinks[1].lines, 2);
}

/// Different photos as MJPEG frames, the third cut short (a bad frame).
fn mixed_frames() -> ListStream {
    let photos = common::photos_dir();
    let names = [
        "dog_0.jpg",
        "cat_0.jpg",
        "cat_0.jpg",
        "humans_0.jpg",
        "city_0.jpg",
        "dog_0.jpg",
    ];
    let frames = names.iter().enumerate().map(|(i, name)| {
        let mut jpeg = std::fs::read(photos.join(name)).unwrap();
        if i == 2 {
            jpeg.truncate(jpeg.len() / 3);
        }
        frame(PixelFormat::Mjpeg, 0, 0, 0, jpeg, &format!("{i}_{name}"))
    });
    ListStream {
        frames: frames.collect(),
        handed: 0,
        stop_after: None,
    }
}

/// Runs `mixed_frames` with every class's score on each line and attention pictures of class
/// 0 for every frame in `attention`; the summary and the parsed lines.
fn run_mixed(
    model: &common::TestModel,
    prefetch: bool,
    attention: &std::path::Path,
) -> (csra_edge::pipeline::Summary, Vec<Value>) {
    use csra_edge::attention::{AttentionClasses, AttentionSaver};
    let sink = Collect::default();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink.clone())];
    let options = PipelineOptions {
        all_scores: true,
        prefetch,
        attention: Some(
            AttentionSaver::new(attention, AttentionClasses::Fixed(vec![0]), 1).unwrap(),
        ),
        ..PipelineOptions::default()
    };
    let summary = pipeline(model, options)
        .run(&mut mixed_frames(), &mut sinks, &AtomicBool::new(false))
        .unwrap();
    let lines = sink
        .0
        .lock()
        .unwrap()
        .0
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (summary, lines)
}

/// With prefetch a worker thread reads and preprocesses the next frame while the network runs
/// this one, in two buffers taken in turn: the lines (order, every score, events), the bad
/// frame, the summary and the attention pictures (drawn over each frame's own resized picture)
/// are exactly those of the run in turn.
#[test]
fn prefetch_gives_the_lines_and_pictures_of_the_run_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 16);
    let (in_turn, a) = run_mixed(&model, false, &dir.path().join("in-turn"));
    let (ahead, b) = run_mixed(&model, true, &dir.path().join("ahead"));
    assert_eq!(
        (in_turn.frames, in_turn.bad_frames, in_turn.lines),
        (5, 1, 5)
    );
    assert_eq!(
        (ahead.frames, ahead.bad_frames, ahead.lines, ahead.stop),
        (
            in_turn.frames,
            in_turn.bad_frames,
            in_turn.lines,
            in_turn.stop
        )
    );
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        for key in ["frame", "origin", "labels", "events", "scores"] {
            assert_eq!(x[key], y[key], "{key}");
        }
        assert!(y["timings_ms"]["queued"].as_f64().unwrap() >= 0.0, "{y}");
    }
    // Consecutive frames differ, so a picture drawn over the wrong frame would show.
    assert_ne!(a[0]["scores"], a[1]["scores"]);
    let pictures = |sub: &str| {
        let mut files: Vec<_> = std::fs::read_dir(dir.path().join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    };
    let (pa, pb) = (pictures("in-turn"), pictures("ahead"));
    assert_eq!(pa.len(), 5);
    for (x, y) in pa.iter().zip(&pb) {
        assert_eq!(x.file_name(), y.file_name());
        assert_eq!(
            std::fs::read(x).unwrap(),
            std::fs::read(y).unwrap(),
            "{}",
            y.display()
        );
    }
}

/// A stop signal with prefetch ends the run too: the frame the worker read ahead is not run.
#[test]
fn the_stop_flag_ends_a_prefetching_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 17);
    let stop = Arc::new(AtomicBool::new(false));
    let mut stream = dog_frames(10);
    stream.stop_after = Some((3, Arc::clone(&stop)));
    let sink = Collect::default();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink.clone())];
    let options = PipelineOptions {
        prefetch: true,
        ..PipelineOptions::default()
    };
    let summary = pipeline(&model, options)
        .run(&mut stream, &mut sinks, &stop)
        .unwrap();
    assert_eq!(summary.stop, StopReason::Stopped);
    // The flag went up as the worker took frame 3; the loop may have seen it before running
    // frame 2 (then read ahead), and never runs more than frame 3.
    assert!((1..=3).contains(&summary.frames), "{}", summary.frames);
    assert!(
        stream.handed <= 4,
        "the worker read {} frames",
        stream.handed
    );
    assert_eq!(sink.0.lock().unwrap().1, 1, "flushed once");
}
