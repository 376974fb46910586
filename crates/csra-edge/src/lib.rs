//! csra-edge: runs exported CSRA models headless, on camera streams and image files.
//!
//! - [`source`]: every frame source in one place: frames as sources deliver them, the
//!   [`source::FrameSource`] and [`source::FrameStream`] traits, image files, V4L2 cameras, the
//!   newest-frame capture thread, and the fake camera (test-only);
//! - [`model`]: finding a model's ONNX and manifest, and checking that they agree;
//! - [`backend`]: the inference-engine trait, its tract (CPU) and TensorRT (GPU, csra-trt)
//!   implementations, and `--backend auto|tensorrt|tract`;
//! - [`pictures`]: image files through the inference preprocessing (INT8 calibration, verify);
//! - [`verify`]: how far an engine's outputs are from tract's (`csra-edge verify`);
//! - [`preprocess`]: frames to the network's input tensor through csra-image (decode, resize,
//!   normalise);
//! - [`postprocess`]: probabilities to labels (smoothing, thresholds, hysteresis, events);
//! - [`pipeline`]: the run loop with timings and stats, and the next frame prefetched while the
//!   network runs;
//! - [`sink`]: where result lines go (stdout, MQTT);
//! - [`attention`]: attention heat-map pictures;
//! - [`profile`]: device profiles;
//!
//! The command line lives in the `csra-edge` binary, not here.
//!
//! Feeding the pipeline from any [`source::FrameStream`]:
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use csra_edge::backend::TractBackend;
//! use csra_edge::source::files::{expand_input, FileStream};
//! use csra_edge::model::ModelFiles;
//! use csra_edge::pipeline::{Pipeline, PipelineOptions};
//! use csra_edge::postprocess::PostprocessConfig;
//! use csra_edge::sink::{LineWriter, Sink};
//!
//! # fn main() -> anyhow::Result<()> {
//! let model = ModelFiles::open("models/mobilenet_v2-coco-voc-mini".as_ref())?;
//! let backend = Box::new(TractBackend::load(&model, 2)?);
//! let post = PostprocessConfig::from_manifest(&model.manifest, None);
//! let mut pipeline = Pipeline::new(&model.manifest, backend, post, PipelineOptions::default())?;
//! let mut stream = FileStream::new(expand_input("photos/*.jpg")?, false);
//! let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(LineWriter::stdout())];
//! let summary = pipeline.run(&mut stream, &mut sinks, &AtomicBool::new(false))?;
//! println!("{} frames at {:.1} fps", summary.frames, summary.fps);
//! # Ok(())
//! # }
//! ```

pub mod attention;
pub mod backend;
pub mod cpu_features;
pub mod model;
pub mod pictures;
pub mod pipeline;
pub mod postprocess;
pub mod preprocess;
pub mod profile;
pub mod sink;
pub mod source;
pub mod verify;
