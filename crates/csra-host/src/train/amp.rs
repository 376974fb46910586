//! Dynamic loss scaling for mixed precision: float16 gradients underflow without it.

use tch::{Kind, Tensor};

/// `torch.cuda.amp.GradScaler`'s policy: start at 2^16, halve and skip the step on overflow,
/// double after `growth_interval` good steps.
#[derive(Debug, Clone, PartialEq)]
pub struct LossScaler {
    scale: f64,
    growth_interval: u32,
    good_steps: u32,
}

impl Default for LossScaler {
    fn default() -> Self {
        Self {
            scale: 65536.0,
            growth_interval: 2000,
            good_steps: 0,
        }
    }
}

impl LossScaler {
    /// The factor the loss is multiplied by before `backward`.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Divides every gradient by the scale. Returns `false`, and halves the scale, when any
    /// gradient holds an infinity or NaN: the caller must then skip the optimiser step.
    pub fn unscale(&mut self, grads: &[Tensor]) -> bool {
        let finite = tch::no_grad(|| {
            let mut finite = true;
            for g in grads {
                let mut g = g.shallow_clone();
                let _ = g.g_mul_scalar_(1.0 / self.scale);
                finite &= g.isfinite().all().int64_value(&[]) != 0;
            }
            finite
        });
        if finite {
            self.good_steps += 1;
            if self.good_steps >= self.growth_interval {
                self.scale *= 2.0;
                self.good_steps = 0;
            }
        } else {
            self.scale /= 2.0;
            self.good_steps = 0;
        }
        finite
    }

    /// The scaled loss to call `backward` on.
    pub fn scaled(&self, loss: &Tensor) -> Tensor {
        loss.to_kind(Kind::Float) * self.scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unscales_finite_gradients_and_backs_off_on_overflow() {
        let mut s = LossScaler::default();
        let g = Tensor::from_slice(&[65536.0f32, 131072.0]);
        assert!(s.unscale(&[g.shallow_clone()]));
        assert_eq!(Vec::<f32>::try_from(&g).unwrap(), [1.0, 2.0]);

        let bad = Tensor::from_slice(&[f32::INFINITY, 1.0]);
        assert!(!s.unscale(&[bad]));
        assert_eq!(s.scale(), 32768.0);
    }

    #[test]
    fn grows_after_the_interval() {
        let mut s = LossScaler {
            growth_interval: 2,
            ..LossScaler::default()
        };
        for _ in 0..2 {
            assert!(s.unscale(&[Tensor::from_slice(&[1.0f32])]));
        }
        assert_eq!(s.scale(), 131072.0);
    }
}
