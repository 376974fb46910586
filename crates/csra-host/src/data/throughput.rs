//! How fast a loader delivers images, without a model in the way.

use std::time::Instant;

use super::Loader;

/// Images delivered in a stretch of wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    /// Images delivered.
    pub images: usize,
    /// Images left out because they could not be loaded.
    pub skipped: usize,
    /// Wall-clock seconds from starting the epoch to the last batch.
    pub seconds: f64,
}

impl Throughput {
    /// Images delivered per second.
    pub fn images_per_second(&self) -> f64 {
        self.images as f64 / self.seconds.max(f64::MIN_POSITIVE)
    }
}

/// Runs `epoch` of `loader` for at most `max_batches` batches, consuming them at once, and
/// times it: the rate at which the loader alone can feed a model.
pub fn measure_throughput(loader: &Loader, epoch: u64, max_batches: usize) -> Throughput {
    let start = Instant::now();
    let mut batches = loader.epoch(epoch);
    let images = batches.by_ref().take(max_batches).map(|b| b.len()).sum();
    let seconds = start.elapsed().as_secs_f64();
    Throughput {
        images,
        skipped: batches.skipped().len(),
        seconds,
    }
}
