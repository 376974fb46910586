//! The randomness of an epoch, as a pure function of (seed, epoch, sample index).

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Keeps the shuffle's random stream apart from the samples' streams.
const SHUFFLE_STREAM: u64 = u64::MAX;

/// The order in which an epoch visits the samples: a seeded permutation, or `0..len`.
pub(crate) fn epoch_order(len: usize, shuffle: bool, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    if shuffle {
        order.shuffle(&mut rng_for(seed, epoch, SHUFFLE_STREAM));
    }
    order
}

/// The augmentation random stream of sample `index` in `epoch`: independent of which thread
/// renders it and of when.
pub(crate) fn sample_rng(seed: u64, epoch: u64, index: usize) -> StdRng {
    // usize is at most 64 bits on every supported target.
    rng_for(seed, epoch, index as u64)
}

/// ChaCha keyed by the three numbers side by side: distinct triples give unrelated streams.
fn rng_for(seed: u64, epoch: u64, stream: u64) -> StdRng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&epoch.to_le_bytes());
    key[16..24].copy_from_slice(&stream.to_le_bytes());
    StdRng::from_seed(key)
}
