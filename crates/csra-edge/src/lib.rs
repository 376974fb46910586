//! csra-edge: runs exported CSRA models headless, on camera streams and image files.
//!
//! - [`frame`]: frames as sources deliver them, and the traits the pipeline pulls them through;
//! - [`files`]: `--input` image files as a frame stream;
//! - [`model`]: finding a model's ONNX and manifest, and checking that they agree;
//! - [`backend`]: the inference-engine trait, its tract (CPU) and TensorRT (GPU, csra-trt)
//!   implementations, and `--backend auto|tensorrt|tract`;
//! - [`pictures`]: image files through the inference preprocessing (INT8 calibration, verify);
//! - [`verify`]: how far an engine's outputs are from tract's (`csra-edge verify`);
//! - [`preprocess`]: frames to the network's input tensor through csra-image (decode, resize,
//!   normalise);
//! - [`postprocess`]: probabilities to labels (smoothing, thresholds, hysteresis, events);
//! - [`pipeline`]: the run loop with timings and stats;
//! - [`camera`]: V4L2 cameras (options, format negotiation, the frame source, `probe`; the V4L2
//!   parts need the default `camera` feature);
//! - [`capture`]: the capture thread that hands the pipeline the newest frame and reconnects;
//! - [`sink`]: where result lines go (stdout, MQTT);
//! - [`attention`]: attention heat-map pictures;
//! - [`profile`]: device profiles;
//! - `testing` (feature `testing`): a fake camera made of photos, with injectable faults.
//!
//! The command line lives in the `csra-edge` binary, not here.
//!
//! Feeding the pipeline from any [`frame::FrameStream`]:
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use csra_edge::backend::TractBackend;
//! use csra_edge::files::{expand_input, FileStream};
//! use csra_edge::model::ModelFiles;
//! use csra_edge::pipeline::{Pipeline, PipelineOptions};
//! use csra_edge::postprocess::PostprocessConfig;
//! use csra_edge::sink::{LineWriter, Sink};
//!
//! # fn main() -> anyhow::Result<()> {
//! let model = ModelFiles::open("models/mobilenet_v2-coco-mini".as_ref())?;
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
pub mod camera;
pub mod capture;
pub mod files;
pub mod frame;
pub mod model;
pub mod pictures;
pub mod pipeline;
pub mod postprocess;
pub mod preprocess;
pub mod profile;
pub mod sink;
#[cfg(feature = "testing")]
pub mod testing;
pub mod verify;
