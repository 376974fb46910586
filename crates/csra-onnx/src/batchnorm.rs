//! Folding an eval-mode BatchNorm into the convolution before it.
//!
//! `BN(conv(x)) = γ · (W·x − μ) / √(σ² + ε) + β`, so the pair is one convolution with weights
//! `W' = W · γ/√(σ² + ε)` (per output channel) and bias `b' = β − μ · γ/√(σ² + ε)`. The
//! arithmetic runs in `f64` so folding adds no rounding beyond the final cast.

/// BatchNorm's eval-mode parameters for `C` channels.
#[derive(Debug, Clone, Copy)]
pub struct BatchNormParams<'a> {
    /// γ, `[C]`.
    pub gamma: &'a [f32],
    /// β, `[C]`.
    pub beta: &'a [f32],
    /// The running mean μ, `[C]`.
    pub mean: &'a [f32],
    /// The running variance σ², `[C]`.
    pub var: &'a [f32],
    /// ε.
    pub eps: f64,
}

/// Folds `bn` into a bias-free convolution weight `[C, ...]` (row-major, `C` output channels
/// first); returns the folded weight and the `[C]` bias.
///
/// # Panics
///
/// When the weight does not split into `C` equal rows: the caller builds both from the same
/// layer, so a mismatch is a bug.
pub fn fold(weight: &[f32], bn: BatchNormParams<'_>) -> (Vec<f32>, Vec<f32>) {
    let channels = bn.gamma.len();
    assert!(
        channels > 0 && weight.len().is_multiple_of(channels),
        "a convolution weight of {} values has no {channels} output channels",
        weight.len()
    );
    let per_channel = weight.len() / channels;
    let scale: Vec<f64> = (0..channels)
        .map(|c| f64::from(bn.gamma[c]) / (f64::from(bn.var[c]) + bn.eps).sqrt())
        .collect();
    let folded = weight
        .chunks_exact(per_channel)
        .zip(&scale)
        .flat_map(|(row, s)| row.iter().map(move |w| (f64::from(*w) * s) as f32))
        .collect();
    let bias = (0..channels)
        .map(|c| (f64::from(bn.beta[c]) - f64::from(bn.mean[c]) * scale[c]) as f32)
        .collect();
    (folded, bias)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_scale_and_shift_per_output_channel() {
        // Two output channels of two weights each.
        let weight = [1.0, 2.0, -1.0, 0.5];
        let bn = BatchNormParams {
            gamma: &[2.0, 0.5],
            beta: &[0.1, -1.0],
            mean: &[1.0, -2.0],
            var: &[3.0, 0.0],
            eps: 1.0,
        };
        let (w, b) = fold(&weight, bn);
        // Channel 0: scale 2/√4 = 1; channel 1: scale 0.5/√1 = 0.5.
        assert_eq!(w, [1.0, 2.0, -0.5, 0.25]);
        // β − μ·scale: 0.1 − 1·1 = −0.9; −1 − (−2)·0.5 = 0.
        assert_eq!(b, [0.1 - 1.0, 0.0]);
    }

    #[test]
    fn folded_conv_equals_conv_then_batchnorm() {
        // A 1×1 convolution over one input value per channel is a dot product.
        let weight = [0.3_f32, -0.7, 1.1, 0.2, 0.9, -0.4];
        let x = [0.5_f32, -1.5];
        let bn = BatchNormParams {
            gamma: &[1.3, -0.6, 0.8],
            beta: &[0.2, 0.05, -0.3],
            mean: &[0.1, -0.2, 0.7],
            var: &[0.5, 2.0, 1.5],
            eps: 1e-5,
        };
        let (w, b) = fold(&weight, bn);
        for c in 0..3 {
            let conv: f64 = (0..2).map(|i| f64::from(weight[2 * c + i] * x[i])).sum();
            let expected = f64::from(bn.gamma[c]) * (conv - f64::from(bn.mean[c]))
                / (f64::from(bn.var[c]) + bn.eps).sqrt()
                + f64::from(bn.beta[c]);
            let folded: f64 =
                (0..2).map(|i| f64::from(w[2 * c + i] * x[i])).sum::<f64>() + f64::from(b[c]);
            assert!((folded - expected).abs() < 1e-6, "channel {c}");
        }
    }
}
