//! Running an exported file in tract, the CPU runtime of the edge side.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use csra_onnx::{Dim, TensorType};
use tract_onnx::prelude::{
    tvec, Framework, InferenceModelExt, IntoRunnable, Tensor, TypedRunnableModel,
};

use super::ExportError;

/// An ONNX model loaded and optimised by tract.
#[derive(Debug)]
pub struct TractModel {
    path: PathBuf,
    plan: Arc<TypedRunnableModel>,
    /// The position of the logits among the graph outputs.
    logits: usize,
    /// `[3, H, W]` of one image.
    image_shape: [usize; 3],
    /// `Some(n)` when the batch is fixed to `n`, `None` when it is symbolic.
    batch: Option<usize>,
}

impl TractModel {
    /// Loads `path`, whose output `logits` holds the `[N, C]` logits.
    pub fn load(path: &Path, logits: &str) -> Result<Self, ExportError> {
        let tract = |message: String| ExportError::Tract {
            path: path.to_owned(),
            message,
        };
        let proto = csra_onnx::read_model(path)?;
        let graph = proto
            .graph
            .as_ref()
            .ok_or_else(|| tract("the file has no graph".to_owned()))?;
        let logits = graph
            .output
            .iter()
            .position(|o| o.name == logits)
            .ok_or_else(|| tract(format!("no output named `{logits}`")))?;
        let shape = graph
            .input
            .first()
            .and_then(TensorType::of)
            .and_then(|t| t.shape)
            .unwrap_or_default();
        let (batch, image_shape) = match shape.as_slice() {
            [n, Dim::Fixed(c), Dim::Fixed(h), Dim::Fixed(w)] => (n.fixed(), [*c, *h, *w]),
            _ => {
                return Err(tract(
                    "its first input is not an [N, C, H, W] image batch of static size".to_owned(),
                ))
            }
        };
        // tract reads the file itself: its protobuf types are its own, not csra-onnx's.
        let plan = tract_onnx::onnx()
            .model_for_path(path)
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .map_err(|e| tract(format!("{e:#}")))?;
        Ok(Self {
            path: path.to_owned(),
            plan,
            logits,
            image_shape,
            batch,
        })
    }

    /// The `[3, H, W]` shape of one input image.
    pub fn image_shape(&self) -> [usize; 3] {
        self.image_shape
    }

    /// The logits `[n, C]`, row-major, of `n` images given as row-major `[n, 3, H, W]` pixels.
    /// A model with a fixed batch runs one batch at a time.
    pub fn logits(&self, pixels: &[f32], n: usize) -> Result<Vec<f32>, ExportError> {
        let per_image: usize = self.image_shape.iter().product();
        if pixels.len() != n * per_image {
            return Err(ExportError::Unsupported(format!(
                "{} values are not {n} images of shape {:?}",
                pixels.len(),
                self.image_shape
            )));
        }
        let chunk = self.batch.unwrap_or(n).max(1);
        let mut logits = Vec::new();
        for batch in pixels.chunks(chunk * per_image) {
            logits.extend(self.run(batch, batch.len() / per_image)?);
        }
        Ok(logits)
    }

    fn run(&self, pixels: &[f32], n: usize) -> Result<Vec<f32>, ExportError> {
        let tract = |e: tract_onnx::prelude::TractError| ExportError::Tract {
            path: self.path.clone(),
            message: format!("{e:#}"),
        };
        let [c, h, w] = self.image_shape;
        let input = Tensor::from_shape(&[n, c, h, w], pixels).map_err(tract)?;
        let outputs = self.plan.run(tvec!(input.into())).map_err(tract)?;
        let logits = outputs.get(self.logits).ok_or_else(|| ExportError::Tract {
            path: self.path.clone(),
            message: "tract returned fewer outputs than the graph declares".to_owned(),
        })?;
        let values = logits
            .try_as_plain_ram()
            .and_then(|view| view.as_slice::<f32>().map(<[f32]>::to_vec))
            .map_err(tract)?;
        Ok(values)
    }
}
