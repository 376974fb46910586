//! The official learning-rate schedule: linear warm-up per step, then step decay per epoch.

use serde::{Deserialize, Serialize};

/// Multiplies every parameter group's base learning rate, as the official CSRA `main.py` does
/// with `WarmUpLR` followed by `StepLR`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// Epochs of linear warm-up, stepped every iteration (official: 2).
    pub warmup_epochs: usize,
    /// After warm-up, the rate is multiplied by `gamma` every `step_size` epochs (official: 4
    /// for VOC, 5 for COCO).
    pub step_size: usize,
    /// The decay factor (official: 0.1).
    pub gamma: f64,
}

impl LrSchedule {
    /// The recipe of the official code and of the reference run: 2 warm-up epochs, ×0.1 every 4.
    pub fn official() -> Self {
        Self {
            warmup_epochs: 2,
            step_size: 4,
            gamma: 0.1,
        }
    }

    /// The factor for step `step` (0-based) of epoch `epoch` (0-based) with `steps_per_epoch`
    /// steps per epoch.
    ///
    /// Warm-up rises linearly to 1 over `warmup_epochs · steps_per_epoch` steps. The official
    /// `WarmUpLR` starts at exactly 0, which spends the first step on nothing; here the first
    /// step already gets `1 / total`, and the last warm-up step reaches 1.
    pub fn factor(&self, epoch: usize, step: usize, steps_per_epoch: usize) -> f64 {
        if epoch < self.warmup_epochs {
            let total = (self.warmup_epochs * steps_per_epoch).max(1);
            let done = epoch * steps_per_epoch + step + 1;
            return done.min(total) as f64 / total as f64;
        }
        let decays = epoch / self.step_size.max(1);
        self.gamma.powi(i32::try_from(decays).unwrap_or(i32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_linearly_then_decays_in_steps() {
        let s = LrSchedule::official();
        // 2 warm-up epochs of 5 steps: 1/10, 2/10, ..., 10/10.
        let warm: Vec<f64> = (0..2)
            .flat_map(|e| (0..5).map(move |i| s.factor(e, i, 5)))
            .collect();
        let expected: Vec<f64> = (1..=10).map(|k| k as f64 / 10.0).collect();
        assert_eq!(warm, expected);
        // Official StepLR(step_size=4) after 1-based epochs: epochs 1-4 full, 5-8 ×0.1, 9-12 ×0.01.
        let per_epoch: Vec<f64> = (2..12).map(|e| s.factor(e, 0, 5)).collect();
        let expected = [1.0, 1.0, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01];
        for (got, want) in per_epoch.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{per_epoch:?}");
        }
    }

    #[test]
    fn no_warm_up_starts_at_full_rate() {
        let s = LrSchedule {
            warmup_epochs: 0,
            ..LrSchedule::official()
        };
        assert_eq!(s.factor(0, 0, 10), 1.0);
    }
}
