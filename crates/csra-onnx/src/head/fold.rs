//! Folds a head's classifiers into the few constant tensors the fused graph needs.
//!
//! The per-class normalisation `score / ||w_c||` becomes `(w_c / ||w_c||) · x`, so the graph
//! never divides. The heads' base logits `Σ_h mean_j(W_h x_j + b_h)` equal
//! `(Σ_h W_h) · mean_j(x_j) + Σ_h b_h`, because the mean is linear: one Gemm for all heads.

use csra_core::head::{HeadVariant, Temperature};

use super::HeadWeights;

/// The folded constants of a head.
pub(super) struct FoldedHead {
    /// `Σ_h W_h` (normalised rows), `[C, d]`.
    pub base_weight: Vec<f32>,
    /// `Σ_h b_h`, `[C]`, when any head has a bias.
    pub base_bias: Option<Vec<f32>>,
    /// The attention heads; `None` for the baseline, which has no attention term.
    pub attention: Option<AttentionHeads>,
}

/// The attention heads' rows, stacked softmax heads first, then max heads, each group in the
/// spec's order, so each group is one contiguous block of the score tensor.
pub(super) struct AttentionHeads {
    /// `[H·C, d]` normalised rows.
    pub weight: Vec<f32>,
    /// `[H·C]`, when any head has a bias.
    pub bias: Option<Vec<f32>>,
    /// The temperature of each softmax head, in stacking order.
    pub softmax_temperatures: Vec<f32>,
    /// How many heads pool with max (T = ∞).
    pub max_heads: usize,
    /// Whether the spec's last head, whose attention map is reported, is a max head. Either
    /// way it is the last head of its group.
    pub last_is_max: bool,
}

/// The L2 norm of each `dim`-wide row.
pub(super) fn row_norms(weight: &[f32], dim: usize) -> Vec<f64> {
    weight
        .chunks_exact(dim.max(1))
        .map(|row| {
            row.iter()
                .map(|w| f64::from(*w).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect()
}

/// Each head's rows divided by their norms when the spec normalises, in `f64`.
fn normalized_rows(head: &HeadWeights) -> Vec<Vec<f64>> {
    let dim = head.dim();
    head.classifiers()
        .iter()
        .map(|classifier| {
            let norms = row_norms(&classifier.weight, dim);
            classifier
                .weight
                .chunks_exact(dim)
                .zip(&norms)
                .flat_map(|(row, norm)| {
                    let norm = if head.spec().normalize() { *norm } else { 1.0 };
                    row.iter().map(move |w| f64::from(*w) / norm)
                })
                .collect()
        })
        .collect()
}

/// Folds `head` into the fused graph's constants.
pub(super) fn fold(head: &HeadWeights) -> FoldedHead {
    let rows = normalized_rows(head);
    let size = head.num_classes() * head.dim();
    let base_weight = (0..size)
        .map(|i| rows.iter().map(|r| r[i]).sum::<f64>() as f32)
        .collect();
    let any_bias = head.classifiers().iter().any(|c| c.bias.is_some());
    let bias_of = |h: usize| -> Vec<f64> {
        match &head.classifiers()[h].bias {
            Some(bias) => bias.iter().map(|b| f64::from(*b)).collect(),
            None => vec![0.0; head.num_classes()],
        }
    };
    let base_bias = any_bias.then(|| {
        (0..head.num_classes())
            .map(|c| (0..rows.len()).map(|h| bias_of(h)[c]).sum::<f64>() as f32)
            .collect()
    });
    let attention = (head.spec().variant() != HeadVariant::Baseline).then(|| {
        let temperatures = head.spec().temperatures();
        let softmax: Vec<(usize, f32)> = temperatures
            .iter()
            .enumerate()
            .filter_map(|(h, t)| match t {
                Temperature::Softmax(t) => Some((h, *t)),
                Temperature::Max => None,
            })
            .collect();
        let max: Vec<usize> = (0..temperatures.len())
            .filter(|&h| temperatures[h] == Temperature::Max)
            .collect();
        let order: Vec<usize> = softmax
            .iter()
            .map(|(h, _)| *h)
            .chain(max.iter().copied())
            .collect();
        AttentionHeads {
            weight: order
                .iter()
                .flat_map(|&h| rows[h].iter().map(|w| *w as f32))
                .collect(),
            bias: any_bias.then(|| {
                order
                    .iter()
                    .flat_map(|&h| bias_of(h).into_iter().map(|b| b as f32))
                    .collect()
            }),
            softmax_temperatures: softmax.iter().map(|(_, t)| *t).collect(),
            max_heads: max.len(),
            last_is_max: temperatures.last() == Some(&Temperature::Max),
        }
    });
    FoldedHead {
        base_weight,
        base_bias,
        attention,
    }
}
