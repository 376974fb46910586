//! `csra-host train`: the official CSRA recipe over libtorch, with checkpoints every epoch.

mod amp;
pub mod checkpoint;
pub mod history;
mod schedule;
mod sgd;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use csra_core::manifest::Preprocess;
use csra_core::Dataset;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Kind, Reduction, Tensor};
use thiserror::Error;

pub use amp::LossScaler;
pub use checkpoint::{Checkpoint, CheckpointMeta, Progress};
pub use history::{EpochRecord, ValMetrics};
pub use schedule::LrSchedule;
pub use sgd::{GroupSpec, Sgd, MOMENTUM_PREFIX};

use crate::data::{Augment, Loader, LoaderConfig};
use crate::data_source::{describe_sources, DataSource, SourceMapping};
use crate::evaluate::{batch_tensor, predict};
use crate::plot::{write_training_plot, EpochPoint};
use crate::{weights, CsraModel, ModelConfig, BACKBONE_PREFIX, HEAD_PREFIX};

/// The training plot in a run directory.
pub const PLOT_FILE: &str = "training.png";

/// The optimisation recipe; [`Recipe::official`] is the paper's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// Epochs to train.
    pub epochs: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Backbone learning rate (official 0.01).
    pub lr_backbone: f64,
    /// Head learning rate (official 0.1, ten times the backbone's).
    pub lr_head: f64,
    /// SGD momentum (official 0.9).
    pub momentum: f64,
    /// L2 weight decay on every parameter (official 1e-4).
    pub weight_decay: f64,
    /// Warm-up and step decay.
    pub schedule: LrSchedule,
    /// Seeds weight initialisation, shuffling and augmentation.
    pub seed: u64,
    /// float16 autocast with dynamic loss scaling (CUDA only).
    pub amp: bool,
}

impl Recipe {
    /// SGD 0.9 / 1e-4, lr 0.01 backbone and 0.1 head, 2 warm-up epochs, ×0.1 every 4, batch 16.
    pub fn official(epochs: usize) -> Self {
        Self {
            epochs,
            batch_size: 16,
            lr_backbone: 0.01,
            lr_head: 0.1,
            momentum: 0.9,
            weight_decay: 1e-4,
            schedule: LrSchedule::official(),
            seed: 0,
            amp: false,
        }
    }
}

/// Everything a training run needs.
#[derive(Debug)]
pub struct TrainJob {
    /// The network.
    pub model: ModelConfig,
    /// The recipe.
    pub recipe: Recipe,
    /// Square input side.
    pub image_size: u32,
    /// Pixel normalisation (matched to the pretrained weights).
    pub preprocess: Preprocess,
    /// Training augmentation: [`Augment::official_train`] in the official recipe;
    /// [`Augment::None`] feeds each picture as evaluation does.
    pub augment: Augment,
    /// Where the training data is, one or more sources, as recorded in checkpoints.
    pub train_data: Vec<DataSource>,
    /// How each source's classes were mapped onto the training classes.
    pub class_mapping: Vec<SourceMapping>,
    /// The training samples of every source, in the training label space.
    pub train_set: Dataset,
    /// Where the validation split is, if any.
    pub val_data: Option<DataSource>,
    /// The validation split, read from `val_data`.
    pub val_set: Option<Dataset>,
    /// ImageNet weights for the backbone (`.pth` or `.safetensors`), for a fresh run.
    pub pretrained: Option<PathBuf>,
    /// The run directory: checkpoints, `train-log.jsonl`, `training.png`.
    pub out_dir: PathBuf,
    /// Where the model runs.
    pub device: Device,
    /// Image-decoding threads.
    pub workers: usize,
    /// Convolve in channels-last (NHWC) layout, which oneDNN runs faster on CPU; results are
    /// the same up to rounding.
    pub channels_last: bool,
    /// Stop each epoch after this many steps (quick checks; `None` trains on everything).
    pub max_steps_per_epoch: Option<usize>,
    /// Bytes of decoded pictures each split's loader keeps across epochs (0: none).
    pub decoded_cache_bytes: usize,
    /// A checkpoint to continue from instead of starting fresh.
    pub resume: Option<Checkpoint>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every epoch ran; the last checkpoint's description.
    Finished(PathBuf),
    /// Stopped on request after saving this checkpoint.
    Interrupted(PathBuf),
}

/// Why training stopped with an error. Each message names the file or step and what to do.
#[derive(Debug, Error)]
pub enum TrainError {
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A checkpoint is unusable.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint description.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The parameter groups do not cover the model.
    #[error("optimizer: {0}")]
    Optimizer(String),
    /// The loss stopped being a number.
    #[error(
        "the loss became {loss} at epoch {epoch}, step {step} (global step {global_step}); \
         the last good checkpoint is kept. Lower --lr-head/--lr-backbone, check the input \
         normalisation (--normalize), or pass --freeze-bn for weights with folded BatchNorm"
    )]
    Diverged {
        /// The loss value.
        loss: f64,
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch.
        step: usize,
        /// 1-based step since the start.
        global_step: u64,
    },
    /// The training split is empty.
    #[error("{data}: no training samples")]
    NoSamples {
        /// The data source.
        data: String,
    },
    /// The loader could not start.
    #[error(transparent)]
    Loader(#[from] crate::data::DataError),
    /// The model could not be built.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// The pretrained weights do not fit (boxed: the report lists every tensor).
    #[error(transparent)]
    Weights(Box<weights::WeightsError>),
    /// Validation metrics could not be computed.
    #[error(transparent)]
    Metrics(#[from] csra_core::metrics::MetricsError),
    /// The training plot could not be written.
    #[error(transparent)]
    Plot(#[from] crate::plot::PlotError),
    /// libtorch failed.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

impl From<weights::WeightsError> for TrainError {
    fn from(err: weights::WeightsError) -> Self {
        Self::Weights(Box::new(err))
    }
}

/// Trains `job` until its last epoch or until `stop` is set; either way the state is saved.
///
/// # Errors
///
/// [`TrainError`] for unreadable data or weights, a diverging loss, or a failed write.
pub fn run(job: TrainJob, stop: &AtomicBool) -> Result<Outcome, TrainError> {
    std::fs::create_dir_all(&job.out_dir).map_err(|source| TrainError::Io {
        path: job.out_dir.clone(),
        source,
    })?;
    if job.train_set.samples.is_empty() {
        return Err(TrainError::NoSamples {
            data: describe_sources(&job.train_data),
        });
    }
    let mut run = Run::start(&job)?;
    let train_loader = run.loader(&job.train_set, true)?;
    let val_loader = job
        .val_set
        .as_ref()
        .map(|v| run.loader(v, false))
        .transpose()?;

    for epoch in run.progress.epochs_done..job.recipe.epochs {
        let started = Instant::now();
        let Some(stats) = run.train_epoch(&train_loader, epoch, stop)? else {
            let path = run.save(&format!(
                "epoch-{:03}-step-{:05}",
                epoch + 1,
                run.progress.steps_into_epoch
            ))?;
            return Ok(Outcome::Interrupted(path));
        };
        let val = match (&val_loader, &job.val_set) {
            (Some(loader), Some(set)) => {
                let evaluation = predict(&run.model, loader, job.device)?.evaluate(&set.samples)?;
                Some(ValMetrics::from(&evaluation))
            }
            _ => None,
        };
        let path = run.finish_epoch(epoch, stats, val, started)?;
        if epoch + 1 == job.recipe.epochs {
            return Ok(Outcome::Finished(path));
        }
        if stop.load(Ordering::SeqCst) {
            return Ok(Outcome::Interrupted(path));
        }
    }
    // Resuming a finished run: nothing left to train, the last checkpoint stands.
    let path = run.save(&format!("epoch-{:03}", run.progress.epochs_done))?;
    Ok(Outcome::Finished(path))
}

/// What one epoch's steps produced.
struct EpochStats {
    loss_sum: f64,
    steps: usize,
    images: usize,
    train_seconds: f64,
    data_wait_seconds: f64,
    skipped: usize,
    learning_rates: BTreeMap<String, f64>,
}

/// The state of a run between steps.
struct Run<'a> {
    job: &'a TrainJob,
    vs: VarStore,
    model: CsraModel,
    sgd: Sgd,
    scaler: Option<LossScaler>,
    progress: Progress,
    history: Vec<EpochRecord>,
}

impl<'a> Run<'a> {
    fn start(job: &'a TrainJob) -> Result<Self, TrainError> {
        tch::manual_seed(job.recipe.seed as i64);
        let mut vs = VarStore::new(job.device);
        let mut model = CsraModel::new(&vs.root(), &job.model)?;
        let (progress, history) = match (&job.resume, &job.pretrained) {
            (Some(ckpt), _) => {
                ckpt.restore(&mut vs)?;
                log::info!(
                    "resuming {} after epoch {} step {}",
                    ckpt.path.display(),
                    ckpt.meta.progress.epochs_done,
                    ckpt.meta.progress.steps_into_epoch
                );
                (ckpt.meta.progress, ckpt.meta.history.clone())
            }
            (None, Some(path)) => {
                let report = weights::load_backbone(&mut vs, path)?;
                log::info!(
                    "loaded {} backbone tensors from {} ({} unused: {})",
                    report.loaded,
                    path.display(),
                    report.unexpected.len(),
                    report.unexpected.join(", ")
                );
                (Progress::default(), Vec::new())
            }
            (None, None) => (Progress::default(), Vec::new()),
        };
        if job.channels_last {
            model.to_channels_last(&vs)?;
        }
        // The optimiser holds the variables as they are now, so it comes after the layout change.
        let groups = [
            GroupSpec {
                prefix: BACKBONE_PREFIX.into(),
                base_lr: job.recipe.lr_backbone,
            },
            GroupSpec {
                prefix: HEAD_PREFIX.into(),
                base_lr: job.recipe.lr_head,
            },
        ];
        let mut sgd = Sgd::new(&vs, &groups, job.recipe.momentum, job.recipe.weight_decay)?;
        if let Some(ckpt) = &job.resume {
            sgd.load_state(&ckpt.tensors)?;
        }
        let scaler = (job.recipe.amp && job.device.is_cuda()).then(LossScaler::default);
        if job.recipe.amp && scaler.is_none() {
            log::warn!(
                "--amp needs a CUDA device; training in float32 on {:?}",
                job.device
            );
        }
        Ok(Self {
            job,
            vs,
            model,
            sgd,
            scaler,
            progress,
            history,
        })
    }

    fn loader(&self, set: &Dataset, train: bool) -> Result<Loader, TrainError> {
        let config = LoaderConfig {
            batch_size: self.job.recipe.batch_size,
            image_size: (self.job.image_size, self.job.image_size),
            preprocess: self.job.preprocess.clone(),
            augment: if train {
                self.job.augment
            } else {
                Augment::None
            },
            shuffle: train,
            seed: self.job.recipe.seed,
            workers: self.job.workers,
            prefetch: 2 * self.job.workers.max(1),
            drop_last: false,
        };
        let samples: Arc<[csra_core::Sample]> = set.samples.clone().into();
        Ok(Loader::new(samples, set.classes.len(), config)?
            .with_decoded_cache(self.job.decoded_cache_bytes))
    }

    fn steps_per_epoch(&self, loader: &Loader) -> usize {
        let all = loader.len();
        self.job.max_steps_per_epoch.map_or(all, |m| m.min(all))
    }

    /// Runs the rest of epoch `epoch`; `None` when `stop` was set (after finishing a step).
    fn train_epoch(
        &mut self,
        loader: &Loader,
        epoch: usize,
        stop: &AtomicBool,
    ) -> Result<Option<EpochStats>, TrainError> {
        let steps = self.steps_per_epoch(loader);
        let first = self.progress.steps_into_epoch;
        let bar = progress_bar(steps, epoch, self.job.recipe.epochs, first);
        let mut stats = EpochStats {
            loss_sum: 0.0,
            steps: 0,
            images: 0,
            train_seconds: 0.0,
            data_wait_seconds: 0.0,
            skipped: 0,
            learning_rates: BTreeMap::new(),
        };
        let started = Instant::now();
        let mut batches = loader.epoch(epoch as u64);
        let mut steps_left = batches.by_ref().enumerate().take(steps).skip(first);
        loop {
            let waiting = Instant::now();
            let Some((step, batch)) = steps_left.next() else {
                break;
            };
            stats.data_wait_seconds += waiting.elapsed().as_secs_f64();
            let factor = self.job.recipe.schedule.factor(epoch, step, steps);
            let loss = self.step(&batch, factor, epoch, step)?;
            stats.loss_sum += loss;
            stats.steps += 1;
            stats.images += batch.indices.len();
            self.progress.steps_into_epoch = step + 1;
            let rate = stats.images as f64 / started.elapsed().as_secs_f64();
            bar.set_message(format!("loss {loss:.4}  {rate:.1} img/s"));
            bar.inc(1);
            if stop.load(Ordering::SeqCst) && step + 1 < steps {
                bar.abandon_with_message("interrupted; saving");
                return Ok(None);
            }
        }
        stats.train_seconds = started.elapsed().as_secs_f64();
        stats.skipped = batches.skipped().len();
        stats.learning_rates = self
            .sgd
            .learning_rates(
                self.job
                    .recipe
                    .schedule
                    .factor(epoch, steps.max(1) - 1, steps),
            )
            .into_iter()
            .collect();
        bar.finish_and_clear();
        Ok(Some(stats))
    }

    /// One optimiser step; returns the batch loss.
    fn step(
        &mut self,
        batch: &crate::data::Batch,
        factor: f64,
        epoch: usize,
        step: usize,
    ) -> Result<f64, TrainError> {
        let device = self.job.device;
        let images = batch_tensor(&batch.images, batch.shape)?.to_device(device);
        let amp = self.scaler.is_some();
        let logits = tch::autocast(amp, || self.model.forward_t(&images, true));
        let loss = batch_loss(&logits.to_kind(Kind::Float), batch)?;
        let value = loss.double_value(&[]);
        self.progress.global_step += 1;
        if !value.is_finite() {
            return Err(TrainError::Diverged {
                loss: value,
                epoch: epoch + 1,
                step: step + 1,
                global_step: self.progress.global_step,
            });
        }
        self.sgd.zero_grad();
        match &mut self.scaler {
            Some(scaler) => {
                scaler.scaled(&loss).backward();
                if scaler.unscale(&self.sgd.gradients()) {
                    self.sgd.step(factor);
                } else {
                    log::debug!(
                        "fp16 overflow at step {}; scale now {}",
                        step + 1,
                        scaler.scale()
                    );
                }
            }
            None => {
                loss.backward();
                self.sgd.step(factor);
            }
        }
        Ok(value)
    }

    fn finish_epoch(
        &mut self,
        epoch: usize,
        stats: EpochStats,
        val: Option<ValMetrics>,
        started: Instant,
    ) -> Result<PathBuf, TrainError> {
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: stats.loss_sum / stats.steps.max(1) as f64,
            learning_rates: stats.learning_rates,
            images: stats.images,
            images_per_second: stats.images as f64 / stats.train_seconds.max(1e-9),
            seconds: started.elapsed().as_secs_f64(),
            data_wait_seconds: stats.data_wait_seconds,
            skipped_images: stats.skipped,
            val,
        };
        log::info!(
            "epoch {}/{}: loss {:.4}, {:.1} img/s{}",
            record.epoch,
            self.job.recipe.epochs,
            record.train_loss,
            record.images_per_second,
            record
                .val
                .as_ref()
                .map(|v| format!(", val mAP {:.2}", 100.0 * v.map))
                .unwrap_or_default()
        );
        history::append(&self.job.out_dir.join(history::LOG_FILE), &record)?;
        self.history.push(record);
        self.progress.epochs_done = epoch + 1;
        self.progress.steps_into_epoch = 0;
        let path = self.save(&format!("epoch-{:03}", epoch + 1))?;
        let points: Vec<EpochPoint> = self
            .history
            .iter()
            .map(|r| EpochPoint {
                epoch: r.epoch,
                train_loss: r.train_loss,
                val_map: r.val.as_ref().map(|v| v.map),
            })
            .collect();
        let data = describe_sources(&self.job.train_data);
        let head = &self.job.model.head;
        let title = format!(
            "{} · {:?} head (H={}, λ={}) · {data}",
            self.job.model.arch,
            head.variant(),
            head.num_heads(),
            head.lambda()
        );
        write_training_plot(&self.job.out_dir.join(PLOT_FILE), &points, &title)?;
        Ok(path)
    }

    fn save(&self, name: &str) -> Result<PathBuf, TrainError> {
        let meta = CheckpointMeta {
            format: checkpoint::FORMAT.into(),
            version: checkpoint::VERSION,
            weights: String::new(),
            model: self.job.model.clone(),
            classes: self.job.train_set.classes.names().to_vec(),
            image_size: self.job.image_size,
            preprocess: self.job.preprocess.clone(),
            recipe: self.job.recipe.clone(),
            progress: self.progress,
            history: self.history.clone(),
            train_data: self.job.train_data.clone(),
            class_mapping: self.job.class_mapping.clone(),
            val_data: self.job.val_data.clone(),
            created_by: crate::created_by(),
        };
        let mut tensors: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        tensors.extend(self.sgd.state());
        let path = checkpoint::write(&self.job.out_dir, name, &meta, &tensors)?;
        log::debug!("saved {}", path.display());
        Ok(path)
    }
}

/// The training loss of `batch` for its `[N, C]` float logits: binary cross-entropy over the
/// labels its mask keeps, so an ignored label (VOC difficult-only, or a class the image's
/// dataset does not label) adds nothing to the loss or its gradient.
///
/// # Errors
///
/// [`tch::TchError`] when the logits do not have the batch's shape.
pub fn batch_loss(logits: &Tensor, batch: &crate::data::Batch) -> Result<Tensor, tch::TchError> {
    let dims = [batch.shape[0] as i64, batch.num_classes as i64];
    let device = logits.device();
    let targets = Tensor::from_slice(&batch.targets)
        .f_view(dims)?
        .to_device(device);
    let mask = Tensor::from_slice(&batch.mask)
        .f_view(dims)?
        .to_device(device);
    Ok(masked_bce(logits, &targets, &mask))
}

/// BCE on logits averaged over the labels the mask keeps (all of them, unless some are
/// ignored, where it equals the official `reduction="mean"`).
fn masked_bce(logits: &Tensor, targets: &Tensor, mask: &Tensor) -> Tensor {
    let sum = logits.binary_cross_entropy_with_logits::<&Tensor>(
        targets,
        Some(mask),
        None,
        Reduction::Sum,
    );
    sum / mask.sum(Kind::Float).clamp_min(1.0)
}

fn progress_bar(steps: usize, epoch: usize, epochs: usize, done: usize) -> ProgressBar {
    let bar = ProgressBar::new(steps as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(format!("epoch {}/{epochs}", epoch + 1));
    bar.set_position(done as u64);
    bar
}
