//! Per-class on/off state with hysteresis: a label turns on at its threshold and off only once
//! it falls below `threshold − margin`, so a score hovering at the threshold does not flicker.

/// The on/off state of every class.
#[derive(Debug, Clone)]
pub struct Hysteresis {
    thresholds: Vec<f32>,
    margin: f32,
    on: Vec<bool>,
}

impl Hysteresis {
    /// All classes off; `thresholds` has one value per class.
    pub fn new(thresholds: Vec<f32>, margin: f32) -> Self {
        let on = vec![false; thresholds.len()];
        Self {
            thresholds,
            margin: margin.max(0.0),
            on,
        }
    }

    /// Updates every class from its (smoothed) probability and returns the on/off states.
    pub fn update(&mut self, probs: &[f32]) -> &[bool] {
        for ((on, &p), &threshold) in self.on.iter_mut().zip(probs).zip(&self.thresholds) {
            *on = if *on {
                p >= threshold - self.margin
            } else {
                p >= threshold
            };
        }
        &self.on
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(margin: f32, probs: &[f32]) -> Vec<bool> {
        let mut h = Hysteresis::new(vec![0.5], margin);
        probs.iter().map(|&p| h.update(&[p])[0]).collect()
    }

    #[test]
    fn without_margin_it_is_a_plain_threshold() {
        assert_eq!(
            states(0.0, &[0.4, 0.5, 0.49, 0.7]),
            [false, true, false, true]
        );
    }

    #[test]
    fn margin_keeps_a_label_on_until_it_drops_below_threshold_minus_margin() {
        // On at 0.55; 0.45 and 0.41 stay on (≥ 0.4); 0.39 turns it off; 0.45 does not turn it
        // back on (< 0.5); 0.5 does.
        assert_eq!(
            states(0.1, &[0.3, 0.55, 0.45, 0.41, 0.39, 0.45, 0.5]),
            [false, true, true, true, false, false, true]
        );
    }

    #[test]
    fn thresholds_are_per_class() {
        let mut h = Hysteresis::new(vec![0.2, 0.8], 0.0);
        assert_eq!(h.update(&[0.3, 0.7]), [true, false]);
    }
}
