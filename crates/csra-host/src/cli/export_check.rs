//! What `csra-host export` checks an export on: the verification images, and with `--eval`
//! the validation set scored in tch and in tract.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use csra_core::metrics::Evaluation;
use csra_core::LabelSet;
use csra_host::data::{Augment, Loader, LoaderConfig};
use csra_host::evaluate::{batch_tensor, predict_with};
use csra_host::export::tract_run::TractModel;
use csra_host::export::verify::{tch_head_logits, Comparison};
use csra_host::train::CheckpointMeta;
use csra_image::{load_rgb, preprocess_image};
use csra_onnx::HeadWeights;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tch::{Device, Tensor};

use super::common::LoadedModel;

/// Preprocessed images `[N, 3, S, S]` and a name for each, for error messages.
pub struct VerificationImages {
    /// Row-major pixels, as the model takes them.
    pub pixels: Vec<f32>,
    /// The image files, or `random image i`.
    pub names: Vec<String>,
}

impl VerificationImages {
    /// The pixels as a `[N, 3, size, size]` CPU tensor.
    pub fn tensor(&self, size: usize) -> anyhow::Result<Tensor> {
        Ok(batch_tensor(
            &self.pixels,
            [self.names.len(), 3, size, size],
        )?)
    }
}

/// `paths` when given; else the first `count` images of the checkpoint's validation set; else
/// (no validation set, or it cannot be read) `count` images of random pixels.
pub fn verification_images(
    paths: &[PathBuf],
    count: usize,
    meta: &CheckpointMeta,
    size: usize,
) -> anyhow::Result<VerificationImages> {
    if !paths.is_empty() {
        return load(paths, meta, size);
    }
    let count = count.max(1);
    match &meta.val_data {
        Some(data) => match data.read() {
            Ok(dataset) => {
                let paths: Vec<PathBuf> = dataset
                    .samples
                    .iter()
                    .take(count)
                    .map(|s| s.image.clone())
                    .collect();
                return load(&paths, meta, size);
            }
            Err(err) => log::warn!(
                "cannot read the validation set {data} ({err}); verifying on random images"
            ),
        },
        None => log::info!("the checkpoint has no validation set; verifying on random images"),
    }
    Ok(random(count, meta, size))
}

fn load(
    paths: &[PathBuf],
    meta: &CheckpointMeta,
    size: usize,
) -> anyhow::Result<VerificationImages> {
    let side = u32::try_from(size).context("--input-size is too large")?;
    let mut pixels = Vec::new();
    for path in paths {
        let image = load_rgb(path)?;
        pixels.extend(preprocess_image(&image, (side, side), &meta.preprocess)?);
    }
    Ok(VerificationImages {
        pixels,
        names: paths.iter().map(|p| p.display().to_string()).collect(),
    })
}

/// Uniformly random 8-bit pixels through the checkpoint's normalisation, seeded.
fn random(count: usize, meta: &CheckpointMeta, size: usize) -> VerificationImages {
    let mut rng = StdRng::seed_from_u64(0);
    let per_channel = size * size;
    let pixels = (0..count * 3 * per_channel)
        .map(|i| {
            let channel = (i / per_channel) % 3;
            meta.preprocess.normalize(rng.random(), channel)
        })
        .collect();
    VerificationImages {
        pixels,
        names: (0..count).map(|i| format!("random image {i}")).collect(),
    }
}

/// The validation metrics of one head in tch and of the written file in tract.
pub struct Scores {
    /// The data, e.g. `coco-mini val2017`.
    pub dataset: String,
    /// tch, eval mode.
    pub tch: Evaluation,
    /// tract on the exported file.
    pub tract: Evaluation,
    /// tract's logits against tch's over the whole set.
    pub logits: Option<Comparison>,
}

/// Scores `head` on the checkpoint's validation set in tch, and the file `model` (whose
/// logits output is `logits`) in tract, at the file's input size.
pub fn score(
    loaded: &LoadedModel,
    device: Device,
    head: &HeadWeights,
    model: &Path,
    logits: &str,
) -> anyhow::Result<Scores> {
    let meta = &loaded.checkpoint.meta;
    let data = meta.val_data.as_ref().with_context(|| {
        format!(
            "{} has no validation set to score the export on; drop --eval",
            loaded.checkpoint.path.display()
        )
    })?;
    let classes = LabelSet::new(meta.classes.iter().cloned(), "the checkpoint's classes")?;
    let (dataset, _) = data.read_onto(&classes)?;
    let tract = TractModel::load(model, logits)?;
    let [_, height, width] = tract.image_shape();
    let size = (u32::try_from(width)?, u32::try_from(height)?);
    let loader = Loader::new(
        Arc::from(dataset.samples.clone()),
        dataset.classes.len(),
        LoaderConfig {
            batch_size: 16,
            image_size: size,
            preprocess: meta.preprocess.clone(),
            augment: Augment::None,
            shuffle: false,
            seed: 0,
            workers: 2,
            prefetch: 4,
            drop_last: false,
        },
    )?;
    let classes = head.num_classes();
    let tch_predictions = predict_with(&loader, classes, |pixels, shape| {
        let images = batch_tensor(pixels, shape)?.to_device(device);
        let features = tch::no_grad(|| loaded.model.features(&images, false));
        tch_head_logits(head, &features)
    })?;
    let tract_predictions = predict_with(&loader, classes, |pixels, shape| {
        tract.logits(pixels, shape[0])
    })?;
    Ok(Scores {
        dataset: data.short_name(),
        tch: tch_predictions.evaluate(&dataset.samples)?,
        tract: tract_predictions.evaluate(&dataset.samples)?,
        logits: Comparison::new(&tch_predictions.logits, &tract_predictions.logits, classes),
    })
}
