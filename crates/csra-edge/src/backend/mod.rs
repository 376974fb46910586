//! What runs the network: a small trait with one implementation per inference engine, tract
//! (pure Rust, CPU), ONNX Runtime (CPU, feature `onnxruntime`) and TensorRT (GPU, through
//! csra-trt), and the choice between them.

#[cfg(feature = "onnxruntime")]
mod onnxruntime;
mod select;
mod tensorrt;
mod tract;

#[cfg(feature = "onnxruntime")]
pub use self::onnxruntime::OnnxruntimeBackend;
pub use self::select::{default_engine_cache, load_backend, BackendConfig, BackendKind, Selected};
pub use self::tensorrt::TensorrtBackend;
pub use self::tract::{OpTime, TractBackend};

use std::path::PathBuf;

use thiserror::Error;

/// The network outputs for one input picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    /// Raw scores, one per class.
    pub logits: Vec<f32>,
    /// Sigmoid probabilities, one per class, from the model's own `probs` output.
    pub probs: Vec<f32>,
    /// The last head's attention maps, when the model was exported with them.
    pub attention: Option<AttentionMaps>,
    /// The network's own time in ms when the engine measures it (TensorRT: CUDA events
    /// around copies and inference); `None` means the caller's wall clock is the measure.
    pub network_ms: Option<f64>,
}

impl Outputs {
    /// Why the probabilities are not one probability per class, if they are not (NaN,
    /// infinite, outside [0, 1]): such a frame is refused rather than smoothed, since one NaN
    /// would stay in a moving average for ever and silence every label.
    pub fn check_probabilities(&self) -> Result<(), String> {
        match self.probs.iter().position(|p| !(0.0..=1.0).contains(p)) {
            None => Ok(()),
            Some(class) => Err(format!(
                "for class {class} is {}, not a probability in [0, 1]",
                self.probs[class]
            )),
        }
    }
}

/// Per-class attention maps `[C, h, w]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionMaps {
    /// The map height h (the feature map's).
    pub height: usize,
    /// The map width w.
    pub width: usize,
    /// `C × h × w` values.
    pub data: Vec<f32>,
}

impl AttentionMaps {
    /// The `[h, w]` map of class `index`, if there is one.
    pub fn class(&self, index: usize) -> Option<&[f32]> {
        let size = self.height * self.width;
        self.data.get(index * size..(index + 1) * size)
    }
}

/// An error loading or running a network.
#[derive(Debug, Error)]
pub enum BackendError {
    /// The model's files cannot be read, or its manifest disagrees with its ONNX.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// The engine could not load, type or optimise the network.
    #[error("{}: the {engine} backend cannot load it: {reason}", model.display())]
    Load {
        /// The ONNX file.
        model: PathBuf,
        /// The engine's name.
        engine: &'static str,
        /// The engine's complaint.
        reason: String,
    },
    /// The network, once loaded, does not produce what the manifest promises.
    #[error("{}: {reason}; re-export the model or fix its manifest", model.display())]
    Outputs {
        /// The ONNX file.
        model: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// The input buffer has the wrong length.
    #[error("the input has {actual} values, the network takes {expected}")]
    InputLength {
        /// What the network takes.
        expected: usize,
        /// What was passed.
        actual: usize,
    },
    /// The worker threads could not be started.
    #[error("cannot start {threads} inference threads: {reason}; pass a smaller --threads")]
    Threads {
        /// The thread count asked for.
        threads: usize,
        /// The system's complaint.
        reason: String,
    },
    /// The engine asked for is not in this build.
    #[error("this csra-edge was built without {engine}; rebuild it with `--features {feature}`, or pick another --backend")]
    NotBuilt {
        /// The engine's name.
        engine: &'static str,
        /// The cargo feature that adds it.
        feature: &'static str,
    },
    /// Running the network failed.
    #[error("inference failed: {0}")]
    Run(String),
    /// TensorRT is missing, found no GPU, or could not build or run the engine.
    #[error(transparent)]
    Tensorrt(#[from] csra_trt::TrtError),
}

/// Refuses an input buffer that is not `expected` values long, before an engine reads it.
pub(crate) fn check_input_len(expected: usize, input: &[f32]) -> Result<(), BackendError> {
    if input.len() == expected {
        return Ok(());
    }
    Err(BackendError::InputLength {
        expected,
        actual: input.len(),
    })
}

/// How a CPU engine describes itself: `tract (CPU, f32), 2 threads`.
pub(crate) fn cpu_description(engine: &str, threads: usize) -> String {
    let unit = if threads == 1 { "thread" } else { "threads" };
    format!("{engine} (CPU, f32), {threads} {unit}")
}

/// An inference engine with one network loaded and ready.
pub trait Backend: Send {
    /// A short description for logs, e.g. `tract, 4 threads`.
    fn describe(&self) -> String;
    /// The number of input values one picture takes (`3 × height × width`).
    fn input_len(&self) -> usize;
    /// Runs the network on one picture, `input` in the manifest's layout (NCHW for csra
    /// exports), already normalised.
    fn run(&mut self, input: &[f32]) -> Result<Outputs, BackendError>;
    /// The CPU cores a run keeps busy: its threads for a CPU engine, 0 for one whose network
    /// runs on the GPU while the calling thread waits. The pipeline prefetches frames only
    /// when a core is left over.
    fn cpu_threads(&self) -> usize {
        1
    }
}
