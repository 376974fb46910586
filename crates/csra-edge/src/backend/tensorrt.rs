//! The TensorRT backend: a csra-trt engine (built from the model's ONNX, or found in the
//! engine cache) behind the [`Backend`] trait, with the network time measured by CUDA events.

use std::path::PathBuf;

use csra_trt::{Engine, Library, Options, RunOutput};

use super::{check_input_len, AttentionMaps, Backend, BackendError, Outputs};
use crate::model::ModelFiles;

/// A TensorRT engine for one model, its buffers allocated once.
pub struct TensorrtBackend {
    engine: Engine,
    logits: String,
    probs: String,
    attention: Option<String>,
    num_classes: usize,
    model: PathBuf,
}

impl TensorrtBackend {
    /// Checks `model`'s ONNX against its manifest, then opens its engine with `options`
    /// (from the cache, or built and cached) through the loaded TensorRT `library`.
    pub fn load(
        model: &ModelFiles,
        library: &Library,
        options: &Options,
    ) -> Result<Self, BackendError> {
        model.check_onnx()?;
        let engine = Engine::open(library, &model.onnx, options)?;
        let outputs = &model.manifest.outputs;
        let backend = Self {
            engine,
            logits: outputs.logits.clone(),
            probs: outputs.probs.clone(),
            attention: outputs.attention.clone(),
            num_classes: model.manifest.num_classes,
            model: model.onnx.clone(),
        };
        let expected: usize = model.input_shape().iter().product();
        if backend.engine.input().len() != expected {
            return Err(backend.output_error(format!(
                "the engine's input {:?} holds {} values, the manifest's input {expected}",
                backend.engine.input().shape,
                backend.engine.input().len()
            )));
        }
        Ok(backend)
    }

    fn output_error(&self, reason: String) -> BackendError {
        BackendError::Outputs {
            model: self.model.clone(),
            reason,
        }
    }

    /// The `[1, C]` output `name`, checked.
    fn class_vector(&self, run: &RunOutput, name: &str) -> Result<Vec<f32>, BackendError> {
        let output = run
            .get(name)
            .ok_or_else(|| self.output_error(format!("the engine has no output {name:?}")))?;
        if output.shape != [1, self.num_classes] {
            return Err(self.output_error(format!(
                "the output {name:?} has shape {:?}, the manifest promises [1, {}]",
                output.shape, self.num_classes
            )));
        }
        Ok(output.data.clone())
    }

    fn attention_maps(&self, run: &RunOutput, name: &str) -> Result<AttentionMaps, BackendError> {
        let output = run
            .get(name)
            .ok_or_else(|| self.output_error(format!("the engine has no output {name:?}")))?;
        match *output.shape.as_slice() {
            [1, c, height, width] if c == self.num_classes => Ok(AttentionMaps {
                height,
                width,
                data: output.data.clone(),
            }),
            _ => Err(self.output_error(format!(
                "the attention output has shape {:?}, not [1, {}, h, w]",
                output.shape, self.num_classes
            ))),
        }
    }
}

impl Backend for TensorrtBackend {
    fn describe(&self) -> String {
        self.engine.describe()
    }

    fn input_len(&self) -> usize {
        self.engine.input().len()
    }

    fn run(&mut self, input: &[f32]) -> Result<Outputs, BackendError> {
        check_input_len(self.input_len(), input)?;
        let run = self.engine.run(input)?;
        Ok(Outputs {
            logits: self.class_vector(&run, &self.logits)?,
            probs: self.class_vector(&run, &self.probs)?,
            attention: match &self.attention {
                Some(name) => Some(self.attention_maps(&run, name)?),
                None => None,
            },
            network_ms: Some(run.network_ms),
        })
    }

    fn cpu_threads(&self) -> usize {
        0
    }
}
