//! Latency percentiles and frame rates, for the periodic log line and the run's summary.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The most recent latencies, up to a fixed count, so a run of days keeps bounded memory and
/// its percentiles describe the recent past.
#[derive(Debug, Clone)]
pub struct LatencyWindow {
    capacity: usize,
    samples: VecDeque<f64>,
}

impl LatencyWindow {
    /// A window of the last `capacity` samples.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            samples: VecDeque::new(),
        }
    }

    /// Adds one latency in milliseconds.
    pub fn push(&mut self, ms: f64) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(ms);
    }

    /// The `q`-quantile (0..=1) by the nearest-rank method, or `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let mut sorted: Vec<f64> = self.samples.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        nearest_rank(&sorted, q)
    }
}

/// The `q`-quantile of ascending `sorted` by the nearest-rank method: the smallest value with
/// at least a fraction `q` of the samples at or below it.
pub fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Counts frames since the last report, for a frames-per-second figure.
#[derive(Debug, Clone)]
pub struct RateMeter {
    since: Instant,
    frames: u64,
}

impl RateMeter {
    /// A meter starting now.
    pub fn new(now: Instant) -> Self {
        Self {
            since: now,
            frames: 0,
        }
    }

    /// Counts one frame.
    pub fn tick(&mut self) {
        self.frames += 1;
    }

    /// The time since the meter (re)started.
    pub fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.since)
    }

    /// Frames per second since the meter (re)started, then restarts it.
    pub fn take(&mut self, now: Instant) -> f64 {
        let seconds = self.elapsed(now).as_secs_f64();
        let rate = if seconds > 0.0 {
            self.frames as f64 / seconds
        } else {
            0.0
        };
        *self = Self::new(now);
        rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_by_hand() {
        let mut w = LatencyWindow::new(100);
        for ms in 1..=100 {
            w.push(f64::from(ms));
        }
        assert_eq!(w.quantile(0.5), Some(50.0));
        assert_eq!(w.quantile(0.99), Some(99.0));
        assert_eq!(w.quantile(1.0), Some(100.0));
        assert_eq!(LatencyWindow::new(3).quantile(0.5), None);
    }

    #[test]
    fn the_window_keeps_the_most_recent_samples() {
        let mut w = LatencyWindow::new(3);
        for ms in [100.0, 1.0, 2.0, 3.0] {
            w.push(ms);
        }
        // 100 fell out: the smallest and largest held are 1 and 3.
        assert_eq!(w.quantile(0.0), Some(1.0));
        assert_eq!(w.quantile(1.0), Some(3.0));
    }

    #[test]
    fn rate_is_frames_over_elapsed_time() {
        let start = Instant::now();
        let mut meter = RateMeter::new(start);
        for _ in 0..30 {
            meter.tick();
        }
        let rate = meter.take(start + Duration::from_secs(2));
        assert!((rate - 15.0).abs() < 1e-9);
        assert_eq!(meter.take(start + Duration::from_secs(3)), 0.0);
    }
}
