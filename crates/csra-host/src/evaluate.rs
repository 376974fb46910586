//! Running a model over a dataset and scoring it with the paper's metrics.

use csra_core::dataset::Skipped;
use csra_core::metrics::{self, Evaluation, MetricsError};
use csra_core::Sample;
use tch::{Device, Kind, Tensor};

use crate::data::Loader;
use crate::CsraModel;

/// The logits of every sample a loader delivered, in sample order.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// Row-major `[N, C]` logits.
    pub logits: Vec<f32>,
    /// The dataset index of each row.
    pub indices: Vec<usize>,
    /// `C`.
    pub num_classes: usize,
    /// Images that could not be decoded, with the reason.
    pub skipped: Vec<Skipped>,
}

impl Predictions {
    /// Sigmoid probabilities, row-major `[N, C]`.
    pub fn probabilities(&self) -> Vec<f32> {
        self.logits.iter().map(|&x| sigmoid(x)).collect()
    }

    /// These predictions with only the output columns `classes`, in that order: a model's
    /// outputs for the classes of data from another label space.
    pub fn select_classes(self, classes: &[usize]) -> Predictions {
        if classes.len() == self.num_classes && classes.iter().enumerate().all(|(i, &c)| i == c) {
            return self;
        }
        let logits = self
            .logits
            .chunks_exact(self.num_classes)
            .flat_map(|row| classes.iter().map(move |&c| row[c]))
            .collect();
        Predictions {
            logits,
            num_classes: classes.len(),
            ..self
        }
    }

    /// The paper's metrics against `samples`' targets and ignore masks.
    ///
    /// # Errors
    ///
    /// [`MetricsError`] when a logit is not finite.
    pub fn evaluate(&self, samples: &[Sample]) -> Result<Evaluation, MetricsError> {
        let (targets, ignore) = self.label_rows(samples);
        metrics::evaluate(&self.probabilities(), &targets, &ignore, self.num_classes)
    }

    /// Mean binary cross-entropy over the labels that are not ignored, computed stably from the
    /// logits: the training loss, measured without augmentation.
    pub fn mean_bce(&self, samples: &[Sample]) -> f64 {
        let (targets, ignore) = self.label_rows(samples);
        let mut sum = 0.0;
        let mut count = 0usize;
        for ((&x, &t), &ig) in self.logits.iter().zip(&targets).zip(&ignore) {
            if ig {
                continue;
            }
            let x = f64::from(x);
            let t = if t { 1.0 } else { 0.0 };
            sum += x.max(0.0) - x * t + (-x.abs()).exp().ln_1p();
            count += 1;
        }
        sum / count.max(1) as f64
    }

    fn label_rows(&self, samples: &[Sample]) -> (Vec<bool>, Vec<bool>) {
        let rows = self.indices.iter().map(|&i| &samples[i]);
        let targets = rows
            .clone()
            .flat_map(|s| s.target.iter().copied())
            .collect();
        let ignore = rows.flat_map(|s| s.ignore.iter().copied()).collect();
        (targets, ignore)
    }
}

/// Runs `model` in eval mode over one pass of `loader`.
///
/// # Errors
///
/// [`tch::TchError`] when libtorch fails (for example out of memory).
pub fn predict(
    model: &CsraModel,
    loader: &Loader,
    device: Device,
) -> Result<Predictions, tch::TchError> {
    predict_with(loader, model.config().num_classes, |pixels, shape| {
        let images = batch_tensor(pixels, shape)?.to_device(device);
        let out = tch::no_grad(|| model.forward_t(&images, false));
        Vec::try_from(
            out.to_kind(Kind::Float)
                .to_device(Device::Cpu)
                .flatten(0, -1),
        )
    })
}

/// Runs `logits_of` over one pass of `loader`: it maps a batch's `[N, 3, H, W]` pixels
/// (row-major, with their shape) to its `[N, C]` logits. Any runtime fits: tch, or tract on an
/// exported file.
///
/// # Errors
///
/// The first error of `logits_of`.
pub fn predict_with<E>(
    loader: &Loader,
    num_classes: usize,
    mut logits_of: impl FnMut(&[f32], [usize; 4]) -> Result<Vec<f32>, E>,
) -> Result<Predictions, E> {
    let mut logits = Vec::new();
    let mut indices = Vec::new();
    let mut batches = loader.epoch(0);
    for batch in batches.by_ref() {
        logits.extend(logits_of(&batch.images, batch.shape)?);
        indices.extend(batch.indices);
    }
    Ok(Predictions {
        logits,
        indices,
        num_classes,
        skipped: batches.skipped().to_vec(),
    })
}

/// An `[N, C, H, W]` tensor over a batch's pixels.
pub fn batch_tensor(pixels: &[f32], shape: [usize; 4]) -> Result<Tensor, tch::TchError> {
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Tensor::from_slice(pixels).f_view(dims.as_slice())
}

/// The logistic function.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(target: &[bool], ignore: &[bool]) -> Sample {
        Sample {
            image: "x.jpg".into(),
            target: target.to_vec(),
            ignore: ignore.to_vec(),
            bbox: None,
        }
    }

    #[test]
    fn mean_bce_matches_the_formula_and_skips_ignored_labels() {
        let samples = [sample(&[true, false], &[false, true])];
        let p = Predictions {
            logits: vec![2.0, 100.0],
            indices: vec![0],
            num_classes: 2,
            skipped: vec![],
        };
        // Only the first label counts: −ln σ(2).
        let want = -f64::from(sigmoid(2.0)).ln();
        assert!((p.mean_bce(&samples) - want).abs() < 1e-6);
    }
}
