//! The multi-threaded, deterministic batch loader.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use csra_core::dataset::Skipped;
use csra_core::manifest::{ColorOrder, Layout, Preprocess, ResizePolicy};
use csra_core::Sample;
use csra_image::{Renderer, RgbView};

use super::cache::DecodedCache;
use super::crop::sample_region;
use super::order::{epoch_order, sample_rng};
use super::{Augment, Batch, DataError};

/// How a [`Loader`] makes batches.
#[derive(Debug, Clone, PartialEq)]
pub struct LoaderConfig {
    /// Images per batch.
    pub batch_size: usize,
    /// The network input size, `(width, height)`.
    pub image_size: (u32, u32),
    /// Pixel normalisation, and the resize policy when `augment` is [`Augment::None`].
    pub preprocess: Preprocess,
    /// Training augmentation, or none for evaluation.
    pub augment: Augment,
    /// Whether each epoch visits the samples in a seeded random order.
    pub shuffle: bool,
    /// Seeds the shuffle and the augmentation.
    pub seed: u64,
    /// Background threads decoding and augmenting, at least 1.
    pub workers: usize,
    /// Batches being prepared or waiting ahead of the consumer, at least 1; fewer than
    /// `workers` leaves some workers idle.
    pub prefetch: usize,
    /// Whether to leave out a last batch smaller than `batch_size`.
    pub drop_last: bool,
}

impl LoaderConfig {
    /// The official CSRA training loader: official preprocessing and augmentation, shuffled,
    /// the last partial batch kept (as PyTorch's `DataLoader`).
    pub fn official_train(batch_size: usize, image_size: (u32, u32), seed: u64) -> Self {
        Self {
            batch_size,
            image_size,
            preprocess: Preprocess::official(),
            augment: Augment::official_train(),
            shuffle: true,
            seed,
            workers: Self::default_workers(),
            prefetch: Self::default_workers() + 2,
            drop_last: false,
        }
    }

    /// An evaluation loader: no augmentation, dataset order, every sample.
    pub fn eval(batch_size: usize, image_size: (u32, u32), preprocess: Preprocess) -> Self {
        Self {
            batch_size,
            image_size,
            preprocess,
            augment: Augment::None,
            shuffle: false,
            seed: 0,
            workers: Self::default_workers(),
            prefetch: Self::default_workers() + 2,
            drop_last: false,
        }
    }

    /// Half the cores, 1 to 8: the model needs the others, and one worker renders a few
    /// hundred 224² images per second.
    pub fn default_workers() -> usize {
        thread::available_parallelism()
            .map_or(1, |n| n.get().div_ceil(2))
            .clamp(1, 8)
    }

    /// Explains what is wrong with the configuration, if anything.
    fn problem(&self) -> Option<String> {
        let p = &self.preprocess;
        let (width, height) = self.image_size;
        let crop_fraction = match p.resize {
            ResizePolicy::CenterCrop { crop_fraction } => crop_fraction,
            ResizePolicy::Squash => 1.0,
        };
        if self.batch_size == 0 {
            Some("the batch size must be at least 1".into())
        } else if width == 0 || height == 0 {
            Some(format!("the image size {width}×{height} has no pixels"))
        } else if self.workers == 0 || self.prefetch == 0 {
            Some(format!(
                "workers ({}) and prefetch ({}) must be at least 1",
                self.workers, self.prefetch
            ))
        } else if !p.scale.is_finite() || p.mean.iter().chain(&p.std).any(|v| !v.is_finite()) {
            Some("the preprocessing scale, mean and std must be finite numbers".into())
        } else if p.std.contains(&0.0) {
            Some(format!("the preprocessing std {:?} contains a zero", p.std))
        } else if !(crop_fraction > 0.0 && crop_fraction <= 1.0) {
            Some(format!(
                "the crop fraction {crop_fraction} must be in (0, 1]"
            ))
        } else {
            self.augment.problem()
        }
    }
}

/// Makes batches of a dataset on background threads, one epoch at a time.
///
/// An epoch's batches, their order and every sample's crop and flip depend only on the seed,
/// the epoch number and the samples: never on the number of workers or their timing.
///
/// An image that cannot be loaded is left out of its batch, which is then one smaller (a batch
/// whose every image failed is left out altogether); it is logged once per loader with
/// `log::warn!` and listed by [`EpochIter::skipped`].
#[derive(Debug)]
pub struct Loader {
    samples: Arc<[Sample]>,
    num_classes: usize,
    config: LoaderConfig,
    cache: Arc<DecodedCache>,
    warned: Arc<Mutex<HashSet<PathBuf>>>,
}

impl Loader {
    /// A loader for `samples`, whose labels all have `num_classes` entries.
    pub fn new(
        samples: Arc<[Sample]>,
        num_classes: usize,
        config: LoaderConfig,
    ) -> Result<Self, DataError> {
        if let Some(problem) = config.problem() {
            return Err(DataError::Config(problem));
        }
        if samples.is_empty() {
            return Err(DataError::Config(
                "the dataset has no samples; check the annotation file and image folder".into(),
            ));
        }
        for (index, sample) in samples.iter().enumerate() {
            if sample.target.len() != num_classes || sample.ignore.len() != num_classes {
                return Err(DataError::Sample {
                    index,
                    path: sample.image.clone(),
                    reason: format!(
                        "it has {} targets and {} ignore flags, but the loader has {num_classes} \
                         classes; read the dataset with the same label set",
                        sample.target.len(),
                        sample.ignore.len()
                    ),
                });
            }
        }
        let cache = Arc::new(DecodedCache::new(samples.len(), 0));
        Ok(Self {
            samples,
            num_classes,
            config,
            cache,
            warned: Arc::default(),
        })
    }

    /// Keeps decoded pictures across epochs, up to `budget` bytes of pixels (RGB8, so a
    /// 640×480 picture takes 0.9 MB), instead of decoding every picture every epoch. Batches
    /// are the same either way; only the decoding work goes.
    #[must_use]
    pub fn with_decoded_cache(self, budget: usize) -> Self {
        Self {
            cache: Arc::new(DecodedCache::new(self.samples.len(), budget)),
            ..self
        }
    }

    /// Bytes of decoded pixels the cache holds now.
    pub fn cached_bytes(&self) -> usize {
        self.cache.used()
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// The number of samples.
    pub fn num_samples(&self) -> usize {
        self.samples.len()
    }

    /// Batches per epoch (fewer are delivered if every image of a batch fails to load).
    pub fn len(&self) -> usize {
        batch_count(self.samples.len(), &self.config)
    }

    /// Whether an epoch has no batch (`drop_last` with fewer samples than a batch).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts the workers for `epoch` and returns its batches in order. Dropping the iterator
    /// stops the workers and waits for them (at most one image each).
    pub fn epoch(&self, epoch: u64) -> EpochIter {
        let order = epoch_order(
            self.samples.len(),
            self.config.shuffle,
            self.config.seed,
            epoch,
        );
        let job = Job {
            samples: Arc::clone(&self.samples),
            cache: Arc::clone(&self.cache),
            num_classes: self.num_classes,
            config: self.config.clone(),
            epoch,
            order,
        };
        EpochIter::start(job, Arc::clone(&self.warned))
    }
}

fn batch_count(samples: usize, config: &LoaderConfig) -> usize {
    if config.drop_last {
        samples / config.batch_size
    } else {
        samples.div_ceil(config.batch_size)
    }
}

/// Everything a worker needs to render any batch of one epoch.
struct Job {
    samples: Arc<[Sample]>,
    cache: Arc<DecodedCache>,
    num_classes: usize,
    config: LoaderConfig,
    epoch: u64,
    order: Vec<usize>,
}

/// A rendered batch, or `None` when every image in it failed, and the images that failed.
struct Built {
    batch: Option<Batch>,
    skipped: Vec<Skipped>,
}

impl Job {
    fn batches(&self) -> usize {
        batch_count(self.order.len(), &self.config)
    }

    fn renderer(&self) -> Renderer {
        // tch takes NCHW batches in RGB order, as the official PyTorch code.
        Renderer::new(
            self.config.image_size,
            &self.config.preprocess,
            Layout::Nchw,
            ColorOrder::Rgb,
        )
    }

    /// Renders batch `b`; `None` if `stop` was raised meanwhile.
    fn build(&self, b: usize, renderer: &mut Renderer, stop: &AtomicBool) -> Option<Built> {
        let size = self.config.batch_size;
        let end = (b * size + size).min(self.order.len());
        let indices = &self.order[b * size..end];
        let per_image = renderer.len();
        let mut images = vec![0.0; indices.len() * per_image];
        let mut targets = Vec::with_capacity(indices.len() * self.num_classes);
        let mut mask = Vec::with_capacity(indices.len() * self.num_classes);
        let mut kept = Vec::with_capacity(indices.len());
        let mut skipped = Vec::new();
        for &index in indices {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let at = kept.len() * per_image;
            let sample = &self.samples[index];
            match self.render(index, renderer, &mut images[at..at + per_image]) {
                Ok(()) => {
                    kept.push(index);
                    targets.extend(sample.target.iter().map(|&t| if t { 1.0 } else { 0.0 }));
                    mask.extend(sample.ignore.iter().map(|&i| if i { 0.0 } else { 1.0 }));
                }
                Err(err) => skipped.push(Skipped {
                    image: sample.image.clone(),
                    reason: err.to_string(),
                }),
            }
        }
        images.truncate(kept.len() * per_image);
        let (width, height) = self.config.image_size;
        let batch = (!kept.is_empty()).then_some(Batch {
            images,
            shape: [kept.len(), 3, height as usize, width as usize],
            targets,
            mask,
            indices: kept,
            num_classes: self.num_classes,
        });
        Some(Built { batch, skipped })
    }

    /// Loads, crops, flips and normalises sample `index` into `out`.
    fn render(
        &self,
        index: usize,
        renderer: &mut Renderer,
        out: &mut [f32],
    ) -> Result<(), DataError> {
        let sample = &self.samples[index];
        let image = self.cache.load(index, &sample.image)?;
        let region = sample_region(sample.bbox.as_ref(), image.width(), image.height())
            .ok_or_else(|| DataError::EmptyBox {
                path: sample.image.clone(),
                bbox: sample.bbox.map_or_else(String::new, |b| {
                    format!("{},{},{},{}", b.x, b.y, b.width, b.height)
                }),
                width: image.width(),
                height: image.height(),
            })?;
        let mut rng = sample_rng(self.config.seed, self.epoch, index);
        let (rect, flip) = self.config.augment.plan(
            &mut rng,
            self.config.preprocess.resize,
            region,
            self.config.image_size,
        );
        renderer
            .render(RgbView::from(&*image), rect, flip, out)
            .map_err(|source| DataError::Render {
                path: sample.image.clone(),
                source,
            })
    }
}

/// The state the workers and the consumer share.
struct Shared {
    job: Job,
    window: Mutex<Window>,
    /// Signalled when the consumer takes a batch or the epoch stops.
    moved: Condvar,
    stop: AtomicBool,
}

/// Which batches are handed out: workers claim `next` while it is fewer than `prefetch`
/// ahead of what the consumer has taken.
struct Window {
    next: usize,
    taken: usize,
}

impl Shared {
    fn window(&self) -> MutexGuard<'_, Window> {
        // Two counters stay consistent even if a holder panicked.
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next batch to render, waiting while the consumer is `prefetch` batches behind;
    /// `None` when the epoch is handed out or stopped.
    fn claim(&self) -> Option<usize> {
        let mut window = self.window();
        loop {
            if self.stop.load(Ordering::Relaxed) || window.next >= self.job.batches() {
                return None;
            }
            if window.next < window.taken + self.job.config.prefetch {
                window.next += 1;
                return Some(window.next - 1);
            }
            window = self
                .moved
                .wait(window)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn took(&self, taken: usize) {
        self.window().taken = taken;
        self.moved.notify_all();
    }

    fn halt(&self) {
        self.stop.store(true, Ordering::Relaxed);
        // Taking the lock orders the flag before any worker's next check-then-wait.
        drop(self.window());
        self.moved.notify_all();
    }
}

/// Stops the epoch if its worker panics, so the other workers do not wait forever for the
/// consumer, and the consumer learns of it when the last sender is gone.
struct HaltOnPanic<'a>(&'a Shared);

impl Drop for HaltOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.halt();
        }
    }
}

fn work(shared: &Shared, results: &Sender<(usize, Built)>) {
    let _halt = HaltOnPanic(shared);
    let mut renderer = shared.job.renderer();
    while let Some(b) = shared.claim() {
        let Some(built) = shared.job.build(b, &mut renderer, &shared.stop) else {
            return;
        };
        if results.send((b, built)).is_err() {
            return;
        }
    }
}

/// The batches of one epoch, in order. See [`Loader::epoch`].
pub struct EpochIter {
    shared: Arc<Shared>,
    results: Receiver<(usize, Built)>,
    workers: Vec<JoinHandle<()>>,
    /// Renders on the calling thread when no worker thread could be started.
    inline: Option<Renderer>,
    early: BTreeMap<usize, Built>,
    next: usize,
    skipped: Vec<Skipped>,
    warned: Arc<Mutex<HashSet<PathBuf>>>,
}

impl EpochIter {
    fn start(job: Job, warned: Arc<Mutex<HashSet<PathBuf>>>) -> Self {
        let count = job.config.workers.min(job.batches());
        let shared = Arc::new(Shared {
            job,
            window: Mutex::new(Window { next: 0, taken: 0 }),
            moved: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let (sender, results) = mpsc::channel();
        let mut workers = Vec::with_capacity(count);
        for i in 0..count {
            let (shared, sender) = (Arc::clone(&shared), sender.clone());
            let spawned = thread::Builder::new()
                .name(format!("csra-data-{i}"))
                .spawn(move || work(&shared, &sender));
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(err) => log::warn!("cannot start data loader thread {i}: {err}"),
            }
        }
        let inline = (workers.is_empty() && count > 0).then(|| shared.job.renderer());
        Self {
            shared,
            results,
            workers,
            inline,
            early: BTreeMap::new(),
            next: 0,
            skipped: Vec::new(),
            warned,
        }
    }

    /// The images left out of the batches delivered so far, with the reason.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// Batch `self.next`, from a worker or rendered here; `None` when the workers are gone.
    fn fetch(&mut self) -> Option<Built> {
        if let Some(renderer) = self.inline.as_mut() {
            let never = AtomicBool::new(false);
            return self.shared.job.build(self.next, renderer, &never);
        }
        loop {
            if let Some(built) = self.early.remove(&self.next) {
                return Some(built);
            }
            let (b, built) = self.results.recv().ok()?;
            self.early.insert(b, built);
        }
    }

    /// The workers quit before the epoch was done, which only a panic does: pass it on.
    fn worker_failed(&mut self) {
        for handle in self.workers.drain(..) {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
        log::error!(
            "the data loader's workers stopped after {} of {} batches; ending the epoch early",
            self.next,
            self.shared.job.batches()
        );
    }

    fn record(&mut self, skipped: Vec<Skipped>) {
        let mut warned = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
        for s in &skipped {
            if warned.insert(s.image.clone()) {
                log::warn!("skipping an image: {}", s.reason);
            }
        }
        self.skipped.extend(skipped);
    }
}

impl Iterator for EpochIter {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        while self.next < self.shared.job.batches() {
            let Some(built) = self.fetch() else {
                self.worker_failed();
                return None;
            };
            self.next += 1;
            self.shared.took(self.next);
            self.record(built.skipped);
            if built.batch.is_some() {
                return built.batch;
            }
        }
        None
    }
}

impl Drop for EpochIter {
    fn drop(&mut self) {
        self.shared.halt();
        for handle in self.workers.drain(..) {
            // A worker's panic was already passed on by `next`, or is moot now.
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests;
