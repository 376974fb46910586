//! Temporal smoothing of per-class probabilities, so one odd frame does not flip a label.

use std::collections::VecDeque;

/// How probabilities are smoothed over frames.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Smoothing {
    /// Each frame on its own.
    None,
    /// The mean over the last `n` frames (fewer while the first `n` arrive).
    Window(usize),
    /// An exponential moving average: `s ← α·p + (1 − α)·s`, starting at the first frame.
    Ema(f32),
}

/// The running state of a [`Smoothing`] over C classes.
#[derive(Debug, Clone)]
pub struct Smoother {
    kind: Smoothing,
    history: VecDeque<Vec<f32>>,
    sums: Vec<f64>,
    current: Vec<f32>,
}

impl Smoother {
    /// A smoother that has seen no frame yet.
    pub fn new(kind: Smoothing) -> Self {
        Self {
            kind,
            history: VecDeque::new(),
            sums: Vec::new(),
            current: Vec::new(),
        }
    }

    /// Adds one frame's probabilities and returns the smoothed values.
    pub fn update(&mut self, probs: &[f32]) -> &[f32] {
        match self.kind {
            Smoothing::None => {
                self.current.clear();
                self.current.extend_from_slice(probs);
            }
            Smoothing::Window(n) => self.update_window(probs, n.max(1)),
            Smoothing::Ema(alpha) => {
                if self.current.len() == probs.len() {
                    for (s, &p) in self.current.iter_mut().zip(probs) {
                        *s = alpha * p + (1.0 - alpha) * *s;
                    }
                } else {
                    self.current = probs.to_vec();
                }
            }
        }
        &self.current
    }

    fn update_window(&mut self, probs: &[f32], n: usize) {
        if self.sums.len() != probs.len() {
            self.sums = vec![0.0; probs.len()];
            self.history.clear();
        }
        if self.history.len() == n {
            if let Some(oldest) = self.history.pop_front() {
                for (sum, p) in self.sums.iter_mut().zip(oldest) {
                    *sum -= f64::from(p);
                }
            }
        }
        for (sum, &p) in self.sums.iter_mut().zip(probs) {
            *sum += f64::from(p);
        }
        self.history.push_back(probs.to_vec());
        let count = self.history.len() as f64;
        self.current.clear();
        self.current
            .extend(self.sums.iter().map(|&sum| (sum / count) as f32));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: Smoothing, frames: &[f32]) -> Vec<f32> {
        let mut smoother = Smoother::new(kind);
        frames.iter().map(|&p| smoother.update(&[p])[0]).collect()
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn no_smoothing_passes_through() {
        assert_eq!(run(Smoothing::None, &[0.1, 0.9, 0.3]), [0.1, 0.9, 0.3]);
    }

    #[test]
    fn window_of_three_is_the_running_mean() {
        // 0.0, mean(0, 0.9) = 0.45, mean(0, 0.9, 0.6) = 0.5, mean(0.9, 0.6, 0.3) = 0.6,
        // mean(0.6, 0.3, 0) = 0.3.
        let got = run(Smoothing::Window(3), &[0.0, 0.9, 0.6, 0.3, 0.0]);
        assert!(close(&got, &[0.0, 0.45, 0.5, 0.6, 0.3]), "{got:?}");
    }

    #[test]
    fn ema_by_hand() {
        // α = 0.5: 1.0, 0.5·0 + 0.5·1 = 0.5, 0.5·1 + 0.25 = 0.75, 0.375.
        let got = run(Smoothing::Ema(0.5), &[1.0, 0.0, 1.0, 0.0]);
        assert!(close(&got, &[1.0, 0.5, 0.75, 0.375]), "{got:?}");
    }
}
