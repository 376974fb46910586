//! The whole camera path without a camera: the fake camera's real MJPEG frames, through the
//! newest-frame capture thread, into the pipeline with a model slower than the frame interval.
//! The acceptance in one run: capture age under two frame intervals, drops counted,
//! truncated JPEGs skipped and counted, and an unplug followed by reconnection while the run
//! goes on.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use csra_edge::backend::{Backend, BackendError, Outputs, TractBackend};
use csra_edge::model::ModelFiles;
use csra_edge::pipeline::{Pipeline, PipelineOptions};
use csra_edge::postprocess::PostprocessConfig;
use csra_edge::sink::{Delivery, Sink, SinkError};
use csra_edge::source::capture::{Capture, ReconnectPolicy};
use csra_edge::source::fake::{FakeCamera, FakeFormat, Faults, Unplug};
use serde_json::Value;

const FPS: f64 = 30.0;
/// Each frame's network run takes this long: two frame intervals.
const NETWORK: Duration = Duration::from_millis(66);

/// The real tract network, made slower than the camera.
struct SlowBackend(TractBackend);

impl Backend for SlowBackend {
    fn describe(&self) -> String {
        format!("{} + {NETWORK:?}", self.0.describe())
    }

    fn input_len(&self) -> usize {
        self.0.input_len()
    }

    fn run(&mut self, input: &[f32]) -> Result<Outputs, BackendError> {
        thread::sleep(NETWORK);
        self.0.run(input)
    }
}

/// Keeps the lines it is sent.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<String>>>);

impl Sink for Collect {
    fn send(&mut self, line: &str) -> Result<(), SinkError> {
        self.0
            .lock()
            .expect("no panic while holding the lines")
            .push(line.to_owned());
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn delivery(&self) -> Delivery {
        Delivery {
            target: "memory".into(),
            lines: self
                .0
                .lock()
                .expect("no panic while holding the lines")
                .len() as u64,
            lost: 0,
        }
    }
}

#[test]
fn a_slow_model_on_a_faulty_camera_sees_fresh_frames_and_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 21);
    let files = ModelFiles::open(&model.dir).unwrap();
    let backend = SlowBackend(TractBackend::load(&files, 1).unwrap());
    let post = PostprocessConfig::from_manifest(&files.manifest, None);
    let options = PipelineOptions {
        max_frames: Some(40),
        ..PipelineOptions::default()
    };
    let mut pipeline = Pipeline::new(&files.manifest, Box::new(backend), post, options).unwrap();

    let photos = common::photos(&["humans_0.jpg", "cat_0.jpg", "city_0.jpg"]);
    // A run of corrupt frames long enough that the newest-frame policy must hand some over,
    // then a 300 ms unplug.
    let faults = Faults {
        truncate: (10..20).collect::<BTreeSet<u64>>(),
        unplugs: vec![Unplug {
            at_frame: 40,
            duration: Duration::from_millis(300),
        }],
        ..Faults::default()
    };
    let camera = FakeCamera::new(&photos, FakeFormat::Mjpeg, 320, 240, FPS)
        .unwrap()
        .with_faults(faults);
    let interval = camera.interval();
    let policy = ReconnectPolicy {
        frame_timeout: Duration::from_millis(500),
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        give_up_after: None,
    };
    let mut stream = Capture::spawn(Box::new(camera), policy);
    let lines = Collect::default();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(lines.clone())];
    let summary = pipeline
        .run(&mut stream, &mut sinks, &AtomicBool::new(false))
        .unwrap();

    let records: Vec<Value> = lines
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ages: Vec<f64> = records
        .iter()
        .map(|r| r["timings_ms"]["capture_age"].as_f64().unwrap())
        .collect();
    let sequences: Vec<u64> = records
        .iter()
        .map(|r| r["sequence"].as_u64().unwrap())
        .collect();
    eprintln!(
        "{} results, {} bad; stream {:?}; ages (ms) {ages:?}",
        records.len(),
        summary.bad_frames,
        summary.stream
    );

    let limit = 2.0 * interval.as_secs_f64() * 1e3;
    let oldest = ages.iter().copied().fold(0.0, f64::max);
    assert!(
        oldest < limit,
        "a frame {oldest:.1} ms old was processed (limit {limit:.1} ms)"
    );
    assert!(summary.stream.dropped > 0, "{:?}", summary.stream);
    assert!(summary.bad_frames >= 1, "no truncated frame was counted");
    assert_eq!(records.len() as u64 + summary.bad_frames, 40);
    assert!(summary.stream.reconnects >= 1, "{:?}", summary.stream);
    // The run went on after the unplug: frames from after it (fake frame 40 on) were processed.
    assert!(
        sequences.iter().any(|&s| s > 45),
        "no frame after the unplug: {sequences:?}"
    );
    assert!(sequences.windows(2).all(|w| w[1] > w[0]), "{sequences:?}");
}

/// A network that fails on its first frame.
struct FailingBackend(usize);

impl Backend for FailingBackend {
    fn describe(&self) -> String {
        "fails".into()
    }

    fn input_len(&self) -> usize {
        self.0
    }

    fn run(&mut self, input: &[f32]) -> Result<Outputs, BackendError> {
        Err(BackendError::InputLength {
            expected: input.len() + 1,
            actual: input.len(),
        })
    }
}

/// With prefetch, a run that ends (here with a network error on its first frame) while the
/// worker waits in a camera that is away stops the capture instead of waiting for the
/// camera: the unplug lasts a minute, the run returns at once.
#[test]
fn a_prefetching_run_ends_while_its_camera_is_away() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 22);
    let files = ModelFiles::open(&model.dir).unwrap();
    let input_len = TractBackend::load(&files, 1).unwrap().input_len();
    let post = PostprocessConfig::from_manifest(&files.manifest, None);
    let options = PipelineOptions {
        prefetch: true,
        ..PipelineOptions::default()
    };
    let backend = Box::new(FailingBackend(input_len));
    let mut pipeline = Pipeline::new(&files.manifest, backend, post, options).unwrap();
    let away = Duration::from_secs(60);
    let faults = Faults {
        unplugs: vec![Unplug {
            at_frame: 1,
            duration: away,
        }],
        ..Faults::default()
    };
    let photos = common::photos(&["cat_0.jpg"]);
    let camera = FakeCamera::new(&photos, FakeFormat::Mjpeg, 320, 240, FPS)
        .unwrap()
        .with_faults(faults);
    let mut stream = Capture::spawn(Box::new(camera), ReconnectPolicy::default());
    let started = std::time::Instant::now();
    let error = pipeline
        .run(&mut stream, &mut [], &AtomicBool::new(false))
        .expect_err("the network fails");
    let took = started.elapsed();
    assert!(error.to_string().contains("the network takes"), "{error}");
    assert!(took < away / 2, "the run waited {took:?} for the camera");
}
