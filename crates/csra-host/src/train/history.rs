//! The per-epoch record, appended to `train-log.jsonl` as one JSON object per line.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use csra_core::metrics::Evaluation;
use serde::{Deserialize, Serialize};

use super::TrainError;

/// The JSON-lines log in a run directory.
pub const LOG_FILE: &str = "train-log.jsonl";

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps.
    pub train_loss: f64,
    /// Learning rate of each parameter group at the epoch's last step.
    pub learning_rates: BTreeMap<String, f64>,
    /// Training images the epoch's steps used. Absent (0) in logs of early runs.
    #[serde(default)]
    pub images: usize,
    /// Training images per second (data loading included, evaluation excluded).
    pub images_per_second: f64,
    /// Wall time of the epoch in seconds, evaluation included.
    pub seconds: f64,
    /// Seconds the training steps waited for the data loader: above zero, decoding is the
    /// bottleneck (raise `--workers`). Absent (0) in logs of early runs.
    #[serde(default)]
    pub data_wait_seconds: f64,
    /// Images skipped because they could not be decoded.
    pub skipped_images: usize,
    /// Validation metrics (fractions in [0, 1]), when there is a validation set.
    pub val: Option<ValMetrics>,
}

/// The headline validation numbers of an epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValMetrics {
    /// Mean average precision.
    pub map: f64,
    /// Class-averaged F1 at threshold 0.5.
    pub cf1: f64,
    /// Overall F1 at threshold 0.5.
    pub of1: f64,
    /// Class-averaged F1 with top-3 predictions.
    pub cf1_top3: f64,
    /// Overall F1 with top-3 predictions.
    pub of1_top3: f64,
}

impl From<&Evaluation> for ValMetrics {
    fn from(e: &Evaluation) -> Self {
        Self {
            map: e.map,
            cf1: e.all.cf1,
            of1: e.all.of1,
            cf1_top3: e.top3.cf1,
            of1_top3: e.top3.of1,
        }
    }
}

/// Appends `record` as one line and syncs it, so a crash never loses a finished epoch.
///
/// # Errors
///
/// [`TrainError::Io`] naming the log file.
pub fn append(path: &Path, record: &EpochRecord) -> Result<(), TrainError> {
    let io = |source: std::io::Error| TrainError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut line = serde_json::to_vec(record).map_err(|e| io(std::io::Error::other(e)))?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    file.write_all(&line).map_err(io)?;
    file.sync_data().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_parsable_line_per_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        for epoch in 1..=2 {
            let record = EpochRecord {
                epoch,
                train_loss: 0.5 / epoch as f64,
                learning_rates: BTreeMap::from([("head".to_string(), 0.1)]),
                images: 200,
                images_per_second: 20.0,
                seconds: 10.0,
                data_wait_seconds: 0.5,
                skipped_images: 0,
                val: None,
            };
            append(&path, &record).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let epochs: Vec<usize> = text
            .lines()
            .map(|l| serde_json::from_str::<EpochRecord>(l).unwrap().epoch)
            .collect();
        assert_eq!(epochs, [1, 2]);
    }
}
