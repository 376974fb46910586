//! The head an export writes, derived from the trained head's classifiers.
//!
//! A trained model has one classifier per attention head (CSRA, no bias) or one FC classifier
//! with a bias (`baseline` and `max`, which share it). Another head is built from them thus:
//!
//! - **csra, H heads:** head `i` uses trained classifier `i mod H_trained`, without a bias (the
//!   official CSRA classifiers have none), class rows normalised, the paper's temperatures.
//!   With the trained H this is exactly the trained head; with another H the classifiers are
//!   replicated, which only makes sense for measuring latency (`--heads`).
//! - **max and baseline:** the first trained classifier, bias included, keeping the
//!   normalisation it was trained with: `mean + λ·max` over the trained per-location class
//!   scores, or their mean. `max` on a trained CSRA model is the training-free fast head of
//!   the mission; `baseline` is its attention-free part.

use csra_core::head::{HeadSpec, HeadVariant};
use csra_onnx::{ClassifierWeights, HeadWeights};

use super::ExportError;

/// λ of a `max` head when none is given, the one `graft` uses too.
pub use csra_onnx::graft::DEFAULT_MAX_LAMBDA;

/// The head counts of the paper's temperature lists, the default `--heads` family.
pub const PAPER_HEAD_COUNTS: [usize; 5] = [1, 2, 4, 6, 8];

/// How [`derive()`] obtained a head's classifiers, for the manifest's provenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derivation {
    /// The trained classifiers as they are.
    Trained,
    /// Trained classifiers replicated over more heads, or only some of them used: a head for
    /// latency measurements, not for accuracy.
    Replicated,
}

/// The head of `spec` built from `trained`'s classifiers (see the module docs).
pub fn derive(
    trained: &HeadWeights,
    spec: HeadSpec,
) -> Result<(HeadWeights, Derivation), ExportError> {
    let available = trained.classifiers();
    let (spec, classifiers) = match spec.variant() {
        HeadVariant::Csra => {
            let classifiers: Vec<ClassifierWeights> = (0..spec.num_heads())
                .map(|i| ClassifierWeights {
                    weight: available[i % available.len()].weight.clone(),
                    bias: None,
                })
                .collect();
            (spec, classifiers)
        }
        HeadVariant::Max | HeadVariant::Baseline => {
            let normalize = trained.spec().normalize();
            (spec.with_normalize(normalize), vec![available[0].clone()])
        }
    };
    let same_count = classifiers.len() == available.len();
    let same_bias = classifiers
        .iter()
        .zip(available)
        .all(|(a, b)| a.bias.is_some() == b.bias.is_some());
    let derivation = if same_count && same_bias {
        Derivation::Trained
    } else {
        Derivation::Replicated
    };
    let head = HeadWeights::new(spec, trained.num_classes(), trained.dim(), classifiers)?;
    Ok((head, derivation))
}

/// The head an export of `variant` writes by default: the trained spec when the variant is
/// the trained one, else the variant with λ given or [`default_lambda`], and for csra the
/// trained head count (1 on a model trained without attention heads).
pub fn requested_spec(
    trained: &HeadSpec,
    variant: Option<HeadVariant>,
    lambda: Option<f32>,
) -> Result<HeadSpec, ExportError> {
    let variant = variant.unwrap_or(trained.variant());
    let lambda = lambda.unwrap_or_else(|| default_lambda(trained, variant));
    Ok(match variant {
        HeadVariant::Csra if trained.variant() == HeadVariant::Csra => {
            HeadSpec::csra_with_temperatures(trained.temperatures().to_vec(), lambda)?
        }
        HeadVariant::Csra => HeadSpec::csra(1, lambda)?,
        HeadVariant::Max => HeadSpec::max(lambda)?,
        HeadVariant::Baseline => HeadSpec::baseline(),
    })
}

/// λ for a `variant` head on a model trained with `trained`: the trained λ for the trained
/// variant, else the official CSRA default 0.1 or [`DEFAULT_MAX_LAMBDA`] for max.
pub fn default_lambda(trained: &HeadSpec, variant: HeadVariant) -> f32 {
    match variant {
        _ if variant == trained.variant() => trained.lambda(),
        HeadVariant::Csra => 0.1,
        HeadVariant::Max => DEFAULT_MAX_LAMBDA,
        HeadVariant::Baseline => 0.0,
    }
}

/// The members of a head family, each a folder name and a spec: `heads-H` (csra with the
/// paper's temperatures) per head count, then `heads-baseline` and `heads-max`.
pub fn family(
    head_counts: &[usize],
    csra_lambda: f32,
    max_lambda: f32,
) -> Result<Vec<(String, HeadSpec)>, ExportError> {
    let mut members = Vec::new();
    for &h in head_counts {
        members.push((format!("heads-{h}"), HeadSpec::csra(h, csra_lambda)?));
    }
    members.push(("heads-baseline".to_owned(), HeadSpec::baseline()));
    members.push(("heads-max".to_owned(), HeadSpec::max(max_lambda)?));
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trained_csra(heads: usize) -> HeadWeights {
        let classifiers = (0..heads)
            .map(|h| ClassifierWeights {
                weight: vec![h as f32 + 1.0; 6],
                bias: None,
            })
            .collect();
        HeadWeights::new(HeadSpec::csra(heads, 0.1).unwrap(), 2, 3, classifiers).unwrap()
    }

    fn trained_fc() -> HeadWeights {
        let classifier = ClassifierWeights {
            weight: vec![0.5; 6],
            bias: Some(vec![0.1, -0.1]),
        };
        HeadWeights::new(HeadSpec::baseline(), 2, 3, vec![classifier]).unwrap()
    }

    #[test]
    fn the_trained_head_comes_back_unchanged() {
        let trained = trained_csra(2);
        let spec = requested_spec(trained.spec(), None, None).unwrap();
        let (head, how) = derive(&trained, spec).unwrap();
        assert_eq!(head, trained);
        assert_eq!(how, Derivation::Trained);
    }

    #[test]
    fn csra_classifiers_are_replicated_over_more_heads() {
        let trained = trained_csra(2);
        let (head, how) = derive(&trained, HeadSpec::csra(4, 0.1).unwrap()).unwrap();
        let firsts: Vec<f32> = head.classifiers().iter().map(|c| c.weight[0]).collect();
        assert_eq!(firsts, [1.0, 2.0, 1.0, 2.0]);
        assert_eq!(how, Derivation::Replicated);
    }

    #[test]
    fn max_keeps_the_trained_normalisation_and_bias() {
        let (head, _) = derive(&trained_csra(1), HeadSpec::max(0.2).unwrap()).unwrap();
        assert!(head.spec().normalize());
        let (head, how) = derive(&trained_fc(), HeadSpec::max(0.2).unwrap()).unwrap();
        assert!(!head.spec().normalize());
        assert_eq!(
            head.classifiers()[0].bias.as_deref(),
            Some(&[0.1, -0.1][..])
        );
        assert_eq!(how, Derivation::Trained);
        // A csra head has no bias: derived from an FC layer, it drops it.
        let (head, how) = derive(&trained_fc(), HeadSpec::csra(1, 0.1).unwrap()).unwrap();
        assert_eq!(head.classifiers()[0].bias, None);
        assert_eq!(how, Derivation::Replicated);
    }

    #[test]
    fn the_default_spec_follows_the_trained_head() {
        let csra = HeadSpec::csra(4, 0.3).unwrap();
        assert_eq!(requested_spec(&csra, None, None).unwrap(), csra);
        let max = requested_spec(&csra, Some(HeadVariant::Max), None).unwrap();
        assert_eq!(max, HeadSpec::max(DEFAULT_MAX_LAMBDA).unwrap());
        let other = requested_spec(&csra, None, Some(0.5)).unwrap();
        assert_eq!(other, HeadSpec::csra(4, 0.5).unwrap());
        let baseline = HeadSpec::baseline();
        let csra = requested_spec(&baseline, Some(HeadVariant::Csra), None).unwrap();
        assert_eq!(csra, HeadSpec::csra(1, 0.1).unwrap());
        let names: Vec<String> = family(&[1, 8], 0.1, 0.2)
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, ["heads-1", "heads-8", "heads-baseline", "heads-max"]);
    }
}
