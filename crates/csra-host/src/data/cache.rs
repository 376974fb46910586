//! Decoded pictures kept across epochs, up to a byte budget.
//!
//! Decoding a JPEG costs several times more than cropping and resizing it, and the decoding
//! threads share the cores with the model: on a small machine every decoded picture that is
//! kept is CPU time handed back to training. Fine-tuning sets (a few thousand pictures) fit in
//! memory whole; larger ones keep the first pictures that fit and decode the rest each epoch.
//! What a batch holds does not change: the cache only skips repeated decoding.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use csra_image::load_rgb;
use image::RgbImage;

use super::DataError;

/// Decoded pictures by sample index, filled on first use while the budget lasts.
#[derive(Debug)]
pub(crate) struct DecodedCache {
    slots: Vec<OnceLock<Arc<RgbImage>>>,
    budget: usize,
    used: AtomicUsize,
}

impl DecodedCache {
    /// A cache for `samples` pictures holding at most `budget` bytes of pixels.
    pub(crate) fn new(samples: usize, budget: usize) -> Self {
        Self {
            slots: (0..samples).map(|_| OnceLock::new()).collect(),
            budget,
            used: AtomicUsize::new(0),
        }
    }

    /// Sample `index`'s picture, decoded from `path` unless it is cached. Failures are not
    /// cached: a broken file is reported again each epoch.
    pub(crate) fn load(&self, index: usize, path: &Path) -> Result<Arc<RgbImage>, DataError> {
        let slot = self.slots.get(index);
        if let Some(image) = slot.and_then(OnceLock::get) {
            return Ok(Arc::clone(image));
        }
        let image = Arc::new(load_rgb(path)?);
        if let Some(slot) = slot {
            let bytes = image.as_raw().len();
            if self.reserve(bytes) && slot.set(Arc::clone(&image)).is_err() {
                // Another thread cached the same picture first; its bytes are the ones counted.
                self.used.fetch_sub(bytes, Ordering::Relaxed);
            }
        }
        Ok(image)
    }

    /// Bytes of pixels held.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Counts `bytes` against the budget if they fit.
    fn reserve(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(bytes)
                    .filter(|&total| total <= self.budget)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use image::Rgb;

    use super::*;

    fn picture(dir: &Path, name: &str, side: u32) -> std::path::PathBuf {
        let path = dir.join(name);
        RgbImage::from_pixel(side, side, Rgb([10, 20, 30]))
            .save(&path)
            .unwrap();
        path
    }

    #[test]
    fn keeps_pictures_until_the_budget_is_spent() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            picture(dir.path(), "a.png", 4),
            picture(dir.path(), "b.png", 4),
        );
        // 4×4 RGB is 48 bytes: room for one picture, not two.
        let cache = DecodedCache::new(2, 60);
        let first = cache.load(0, &a).unwrap();
        assert_eq!(cache.used(), 48);
        std::fs::remove_file(&a).unwrap();
        let again = cache.load(0, &a).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "a cached picture is not read again"
        );

        cache.load(1, &b).unwrap();
        assert_eq!(cache.used(), 48, "over budget: decoded but not kept");
        std::fs::remove_file(&b).unwrap();
        assert!(
            cache.load(1, &b).is_err(),
            "an uncached picture is read each time"
        );
    }

    #[test]
    fn a_zero_budget_caches_nothing_and_failures_are_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let a = picture(dir.path(), "a.png", 2);
        let cache = DecodedCache::new(1, 0);
        cache.load(0, &a).unwrap();
        assert_eq!(cache.used(), 0);

        let missing = dir.path().join("missing.png");
        let cache = DecodedCache::new(1, 1 << 20);
        assert!(cache.load(0, &missing).is_err());
        picture(dir.path(), "missing.png", 2);
        assert!(
            cache.load(0, &missing).is_ok(),
            "a fixed file loads on the next try"
        );
    }
}
