//! The emitted head, run in tract, equals csra-core's reference head: logits, probabilities and
//! the last head's attention map, for every variant, H ∈ {1, 2, 4, 6, 8}, 7×7 and 14×14
//! feature maps and C ∈ {20, 80}. Each written file also decodes with prost and holds exactly
//! the ops the fused layout promises.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use csra_core::head::math::{forward, Classifier, FeatureMap};
use csra_core::head::{HeadSpec, HeadVariant, Temperature};
use csra_core::manifest::OutputNames;
use csra_onnx::pb::tensor_proto::DataType;
use csra_onnx::{emit_head, ClassifierWeights, Dim, FeatureShape, GraphBuilder, HeadWeights};
use rand::rngs::StdRng;
use rand::SeedableRng;

use common::{max_abs_error, ops, relative_error, sigmoid, uniform};

/// The feature width d; small, since parity does not depend on it and tests should be quick.
const DIM: usize = 32;

/// The acceptance bound: on the normwise relative error of each sample's logits and
/// probabilities, and on the absolute error of attention weights (which lie in [0, 1]).
const TOLERANCE: f64 = 1e-5;

struct Case {
    spec: HeadSpec,
    classes: usize,
    size: usize,
    bias: bool,
    dynamic_batch: bool,
}

/// The largest errors seen in one case.
#[derive(Default, Debug)]
struct Errors {
    logits: f64,
    probs: f64,
    attention: f64,
}

impl Errors {
    fn max(self, other: Errors) -> Errors {
        Errors {
            logits: self.logits.max(other.logits),
            probs: self.probs.max(other.probs),
            attention: self.attention.max(other.attention),
        }
    }
}

/// The ops of the fused head with an attention output, derived from its documented layout.
fn expected_ops(spec: &HeadSpec, bias: bool) -> BTreeMap<String, usize> {
    let t = spec.temperatures();
    let soft = t
        .iter()
        .filter(|t| matches!(t, Temperature::Softmax(_)))
        .count();
    let max = t.len() - soft;
    if spec.variant() == HeadVariant::Baseline {
        return ops(&[
            ("GlobalAveragePool", 1),
            ("Flatten", 1),
            ("Gemm", 1),
            ("Sigmoid", 1),
            ("Shape", 1),
            ("Slice", 1),
            ("Concat", 1),
            ("Expand", 1),
        ]);
    }
    let last_is_max = t.last() == Some(&Temperature::Max);
    let last_group = if last_is_max { max } else { soft };
    let both = usize::from(soft > 0 && max > 0);
    ops(&[
        ("GlobalAveragePool", 1),
        ("Flatten", 1),
        ("Gemm", 1),
        ("MatMul", 1),
        ("Reshape", 2 + usize::from(soft > 1) + usize::from(max > 1)),
        ("Add", 1 + usize::from(bias) + both),
        ("Split", both),
        ("Mul", 1 + 2 * usize::from(soft > 0)),
        ("Softmax", usize::from(soft > 0)),
        ("ReduceSum", usize::from(soft > 0) + usize::from(max > 1)),
        ("ReduceMax", usize::from(max > 0)),
        ("Sigmoid", 1),
        ("Slice", usize::from(last_group > 1)),
        ("ArgMax", usize::from(last_is_max)),
        ("Equal", usize::from(last_is_max)),
        ("Cast", usize::from(last_is_max)),
    ])
}

fn run_case(case: &Case, rng: &mut StdRng) -> Errors {
    let (c, size) = (case.classes, case.size);
    let classifiers: Vec<ClassifierWeights> = (0..case.spec.num_heads())
        .map(|_| ClassifierWeights {
            weight: uniform(rng, c * DIM, -1.0, 1.0),
            bias: case.bias.then(|| uniform(rng, c, -0.5, 0.5)),
        })
        .collect();
    let head = HeadWeights::new(case.spec.clone(), c, DIM, classifiers.clone()).unwrap();

    let batch = Dim::batch(case.dynamic_batch);
    let shape = FeatureShape {
        batch: batch.clone(),
        channels: DIM,
        height: size,
        width: size,
    };
    let mut builder = GraphBuilder::new("parity");
    let features = builder
        .input(
            "features",
            DataType::Float,
            &[batch, Dim::Fixed(DIM), Dim::Fixed(size), Dim::Fixed(size)],
        )
        .unwrap();
    let names = OutputNames {
        attention: Some("attention".to_owned()),
        ..OutputNames::default()
    };
    emit_head(&mut builder, &features, &shape, &head, &names).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("head.onnx");
    csra_onnx::write_model(&path, &builder.finish().unwrap()).unwrap();

    assert_eq!(
        common::histogram(&path),
        expected_ops(&case.spec, case.bias),
        "op histogram of {}",
        case.spec
    );

    let n = if case.dynamic_batch { 3 } else { 1 };
    let locations = size * size;
    let data = uniform(rng, n * DIM * locations, 0.0, 2.0);
    let outputs = common::run(&path, &[(vec![n, DIM, size, size], data.clone())]);
    assert_eq!(outputs.len(), 3);
    assert_eq!(outputs[0].shape, [n, c]);
    assert_eq!(outputs[1].shape, [n, c]);
    assert_eq!(outputs[2].shape, [n, c, size, size]);

    let reference_classifiers: Vec<Classifier<'_>> = classifiers
        .iter()
        .map(|cl| {
            let classifier = Classifier::new(&cl.weight, c).unwrap();
            match &cl.bias {
                Some(bias) => classifier.with_bias(bias).unwrap(),
                None => classifier,
            }
        })
        .collect();
    let mut errors = Errors::default();
    for (i, item) in data.chunks_exact(DIM * locations).enumerate() {
        let map = FeatureMap::new(item, DIM, size, size).unwrap();
        let expected = forward(&case.spec, map, &reference_classifiers).unwrap();
        let logits = &outputs[0].data[i * c..(i + 1) * c];
        let probs = &outputs[1].data[i * c..(i + 1) * c];
        let attention = &outputs[2].data[i * c * locations..(i + 1) * c * locations];
        let expected_probs: Vec<f32> = expected.logits.iter().map(|&l| sigmoid(l)).collect();
        let last = expected.heads.last().unwrap();
        let attention_error = match last.temperature {
            Some(Temperature::Max) => {
                one_hot_error(attention, &last.attention, &last.scores, locations)
            }
            _ => max_abs_error(attention, &last.attention),
        };
        errors = errors.max(Errors {
            logits: relative_error(logits, &expected.logits),
            probs: relative_error(probs, &expected_probs),
            attention: attention_error,
        });
    }
    assert!(
        errors.logits <= TOLERANCE && errors.probs <= TOLERANCE && errors.attention <= TOLERANCE,
        "{} C={c} {size}×{size}: {errors:?}",
        case.spec
    );
    errors
}

/// For T = ∞ the map is a one-hot at the first arg-max. f32 and the f64 reference may order
/// two nearly equal scores differently; such a swap counts only if the scores differ by more
/// than the tolerance.
fn one_hot_error(actual: &[f32], expected: &[f32], scores: &[f32], locations: usize) -> f64 {
    let rows = actual
        .chunks_exact(locations)
        .zip(expected.chunks_exact(locations))
        .zip(scores.chunks_exact(locations));
    let mut worst: f64 = 0.0;
    for ((a, e), s) in rows {
        let hot = |row: &[f32]| row.iter().position(|&v| v == 1.0);
        assert_eq!(
            a.iter().filter(|&&v| v == 1.0).count(),
            1,
            "not one-hot: {a:?}"
        );
        assert!(
            a.iter().all(|&v| v == 0.0 || v == 1.0),
            "not one-hot: {a:?}"
        );
        let (Some(i), Some(j)) = (hot(a), hot(e)) else {
            panic!("no hot location");
        };
        if i != j {
            let gap = f64::from(s[i] - s[j]).abs() / f64::from(s[j]).abs().max(1.0);
            worst = worst.max(gap);
        }
    }
    worst
}

fn cases_for(spec: HeadSpec, bias: bool, dynamic: &mut bool) -> Vec<Case> {
    let mut cases = Vec::new();
    for size in [7, 14] {
        for classes in [20, 80] {
            *dynamic = !*dynamic;
            cases.push(Case {
                spec: spec.clone(),
                classes,
                size,
                bias,
                dynamic_batch: *dynamic,
            });
        }
    }
    cases
}

fn check_all(cases: &[Case], seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let worst = cases
        .iter()
        .map(|case| run_case(case, &mut rng))
        .fold(Errors::default(), Errors::max);
    println!("largest errors over {} cases: {worst:?}", cases.len());
}

#[test]
fn csra_heads_match_the_reference() {
    let mut dynamic = false;
    let mut cases = Vec::new();
    for heads in [1, 2, 4, 6, 8] {
        cases.extend(cases_for(
            HeadSpec::csra(heads, 0.1).unwrap(),
            false,
            &mut dynamic,
        ));
    }
    // Biases ride along in the stacked scores; one mixed softmax/max spec covers them.
    cases.extend(cases_for(
        HeadSpec::csra(4, 0.3).unwrap(),
        true,
        &mut dynamic,
    ));
    check_all(&cases, 1);
}

#[test]
fn csra_heads_with_max_not_last_match_the_reference() {
    // The stacking puts softmax heads first; a spec whose max head is not last still reports
    // its last (softmax) head's attention.
    let spec = HeadSpec::csra_with_temperatures(
        vec![
            Temperature::Max,
            Temperature::Softmax(3.0),
            Temperature::Max,
            Temperature::Softmax(7.0),
        ],
        0.5,
    )
    .unwrap();
    let mut dynamic = false;
    check_all(&cases_for(spec, false, &mut dynamic), 2);
}

#[test]
fn max_heads_match_the_reference() {
    let mut dynamic = false;
    let mut cases = cases_for(HeadSpec::max(0.2).unwrap(), true, &mut dynamic);
    cases.extend(cases_for(
        HeadSpec::max(1.0).unwrap().with_normalize(true),
        false,
        &mut dynamic,
    ));
    check_all(&cases, 3);
}

#[test]
fn baseline_heads_match_the_reference() {
    let mut dynamic = false;
    check_all(&cases_for(HeadSpec::baseline(), true, &mut dynamic), 4);
}
