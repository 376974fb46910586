use super::math::{attention_weights, forward};
use super::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Seeded random inputs, so every case is reproducible.
struct Rng(StdRng);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(StdRng::seed_from_u64(seed))
    }

    /// `n` values uniform in [-1, 1).
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.0.random_range(-1.0..1.0)).collect()
    }
}

const D: usize = 16;
const C: usize = 5;
const H: usize = 7;
const W: usize = 6;

fn features(data: &[f32]) -> FeatureMap<'_> {
    FeatureMap::new(data, D, H, W).unwrap()
}

fn classifiers(weights: &[Vec<f32>]) -> Vec<Classifier<'_>> {
    weights
        .iter()
        .map(|w| Classifier::new(w, C).unwrap())
        .collect()
}

fn assert_close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "index {i}: {x} vs {y} (tol {tol})");
    }
}

#[test]
fn hand_computed_single_location_pair() {
    // d = 1, two locations x = [1, 3], one class with w = [2]: normalised scores are [1, 3].
    let x = [1.0, 3.0];
    let w = [2.0];
    let f = FeatureMap::new(&x, 1, 1, 2).unwrap();
    let cls = [Classifier::new(&w, 1).unwrap()];
    let (e1, e3) = (1f64.exp(), 3f64.exp());
    let softmax_att = (e1 * 1.0 + e3 * 3.0) / (e1 + e3);

    let out = forward(&HeadSpec::csra(1, 0.5).unwrap(), f, &cls).unwrap();
    assert_close(&out.logits, &[(2.0 + 0.5 * softmax_att) as f32], 1e-6);
    assert_close(&out.heads[0].scores, &[1.0, 3.0], 0.0);
    assert_close(
        &out.heads[0].attention,
        &[(e1 / (e1 + e3)) as f32, (e3 / (e1 + e3)) as f32],
        1e-7,
    );

    let max = HeadSpec::max(0.5).unwrap().with_normalize(true);
    let out = forward(&max, f, &cls).unwrap();
    assert_close(&out.logits, &[2.0 + 0.5 * 3.0], 1e-6);
    assert_close(&out.heads[0].attention, &[0.0, 1.0], 0.0);
}

#[test]
fn large_finite_temperature_equals_max_pooling() {
    let mut rng = Rng::new(1);
    for _ in 0..20 {
        let x = rng.vec(D * H * W);
        let w = vec![rng.vec(C * D)];
        let soft = HeadSpec::csra_with_temperatures(vec![Temperature::Softmax(1e4)], 1.0).unwrap();
        let hard = HeadSpec::csra_with_temperatures(vec![Temperature::Max], 1.0).unwrap();
        let a = forward(&soft, features(&x), &classifiers(&w)).unwrap();
        let b = forward(&hard, features(&x), &classifiers(&w)).unwrap();
        assert_close(&a.logits, &b.logits, 1e-4);
    }
}

#[test]
fn one_head_with_zero_lambda_is_average_pooling_then_normalised_classifier() {
    let mut rng = Rng::new(2);
    let x = rng.vec(D * H * W);
    let w = rng.vec(C * D);
    let out = forward(
        &HeadSpec::csra(1, 0.0).unwrap(),
        features(&x),
        &classifiers(std::slice::from_ref(&w)),
    )
    .unwrap();

    // Independent path: pool first, then apply the unit-norm rows.
    let pooled: Vec<f64> = x
        .chunks_exact(H * W)
        .map(|ch| ch.iter().map(|&v| f64::from(v)).sum::<f64>() / (H * W) as f64)
        .collect();
    let expected: Vec<f32> = w
        .chunks_exact(D)
        .map(|row| {
            let norm = row
                .iter()
                .map(|&v| f64::from(v).powi(2))
                .sum::<f64>()
                .sqrt();
            let dot: f64 = row
                .iter()
                .zip(&pooled)
                .map(|(&a, b)| f64::from(a) * b)
                .sum();
            (dot / norm) as f32
        })
        .collect();
    assert_close(&out.logits, &expected, 1e-5);
}

#[test]
fn baseline_is_average_pooling_then_the_plain_classifier_with_bias() {
    let mut rng = Rng::new(3);
    let x = rng.vec(D * H * W);
    let w = rng.vec(C * D);
    let b = rng.vec(C);
    let cls = [Classifier::new(&w, C).unwrap().with_bias(&b).unwrap()];
    let out = forward(&HeadSpec::baseline(), features(&x), &cls).unwrap();
    let pooled: Vec<f32> = x
        .chunks_exact(H * W)
        .map(|ch| ch.iter().sum::<f32>() / (H * W) as f32)
        .collect();
    let expected: Vec<f32> = w
        .chunks_exact(D)
        .zip(&b)
        .map(|(row, bias)| row.iter().zip(&pooled).map(|(a, p)| a * p).sum::<f32>() + bias)
        .collect();
    assert_close(&out.logits, &expected, 1e-5);
    assert!(out.heads[0].temperature.is_none());
}

#[test]
fn max_variant_is_the_papers_four_lines_including_the_fc_bias() {
    let mut rng = Rng::new(4);
    let x = rng.vec(D * H * W);
    let w = rng.vec(C * D);
    let b = rng.vec(C);
    let lambda = 0.2;
    let cls = [Classifier::new(&w, C).unwrap().with_bias(&b).unwrap()];
    let out = forward(&HeadSpec::max(lambda).unwrap(), features(&x), &cls).unwrap();
    for c in 0..C {
        // y_raw = FC(x).flatten(2); score = mean(y_raw) + λ·max(y_raw)
        let y_raw: Vec<f32> = (0..H * W)
            .map(|k| (0..D).map(|d| w[c * D + d] * x[d * H * W + k]).sum::<f32>() + b[c])
            .collect();
        let mean = y_raw.iter().sum::<f32>() / y_raw.len() as f32;
        let max = y_raw.iter().copied().fold(f32::MIN, f32::max);
        assert!((out.logits[c] - (mean + lambda * max)).abs() < 1e-5);
    }
}

#[test]
fn multi_head_output_is_the_sum_of_single_heads() {
    let mut rng = Rng::new(5);
    let x = rng.vec(D * H * W);
    for h in [2, 4, 6, 8] {
        let spec = HeadSpec::csra(h, 0.3).unwrap();
        let w: Vec<Vec<f32>> = (0..h).map(|_| rng.vec(C * D)).collect();
        let out = forward(&spec, features(&x), &classifiers(&w)).unwrap();
        let mut summed = [0.0f32; C];
        for (t, wi) in spec.temperatures().iter().zip(&w) {
            let single = HeadSpec::csra_with_temperatures(vec![*t], 0.3).unwrap();
            let one = forward(
                &single,
                features(&x),
                &classifiers(std::slice::from_ref(wi)),
            );
            for (s, l) in summed.iter_mut().zip(one.unwrap().logits) {
                *s += l;
            }
        }
        assert_close(&out.logits, &summed, 1e-5);
        assert_eq!(out.heads.len(), h);
    }
}

#[test]
fn attention_maps_sum_to_one_per_class() {
    let mut rng = Rng::new(6);
    let x = rng.vec(D * H * W);
    let w: Vec<Vec<f32>> = (0..8).map(|_| rng.vec(C * D)).collect();
    let out = forward(
        &HeadSpec::csra(8, 0.5).unwrap(),
        features(&x),
        &classifiers(&w),
    )
    .unwrap();
    let baseline = forward(&HeadSpec::baseline(), features(&x), &classifiers(&w[..1])).unwrap();
    for trace in out.heads.iter().chain(&baseline.heads) {
        for row in trace.attention.chunks_exact(H * W) {
            let total: f32 = row.iter().sum();
            assert!(
                (total - 1.0).abs() < 1e-5,
                "{:?}: {total}",
                trace.temperature
            );
            assert!(row.iter().all(|&s| s >= 0.0));
        }
    }
}

#[test]
fn max_attention_picks_the_first_of_tied_maxima() {
    let weights = attention_weights(&[0.5, 2.0, 2.0, -1.0], Temperature::Max);
    assert_eq!(weights, [0.0, 1.0, 0.0, 0.0]);
}

#[test]
fn softmax_attention_survives_huge_temperatures() {
    let weights = attention_weights(&[1000.0, 999.0], Temperature::Softmax(1e6));
    assert!(weights.iter().all(|w| w.is_finite()));
    assert_eq!(weights, [1.0, 0.0]);
}

#[test]
fn paper_temperature_lists() {
    use Temperature::{Max, Softmax as S};
    assert_eq!(HeadSpec::csra(1, 0.1).unwrap().temperatures(), [S(1.0)]);
    assert_eq!(
        HeadSpec::csra(2, 0.1).unwrap().temperatures(),
        [S(1.0), Max]
    );
    assert_eq!(
        HeadSpec::csra(4, 0.1).unwrap().temperatures(),
        [S(1.0), S(2.0), S(4.0), Max]
    );
    let six = HeadSpec::csra(6, 0.1).unwrap();
    assert_eq!(six.temperatures().len(), 6);
    assert_eq!(six.temperatures()[5], Max);
    let eight = HeadSpec::csra(8, 0.1).unwrap();
    assert_eq!(eight.temperatures()[6], S(7.0));
    assert_eq!(eight.temperatures()[7].to_official(), 99.0);
    assert_eq!(
        HeadSpec::csra(3, 0.1).unwrap_err(),
        HeadError::UnsupportedHeadCount(3)
    );
}

#[test]
fn temperature_99_and_infinity_mean_max() {
    assert_eq!(Temperature::from_official(99.0), Ok(Temperature::Max));
    assert_eq!(
        Temperature::from_official(f32::INFINITY),
        Ok(Temperature::Max)
    );
    assert_eq!(
        Temperature::from_official(2.0),
        Ok(Temperature::Softmax(2.0))
    );
    assert!(Temperature::from_official(0.0).is_err());
    assert!(Temperature::from_official(f32::NAN).is_err());
}

#[test]
fn spec_json_round_trip_and_official_spellings() {
    let spec = HeadSpec::csra(4, 0.5).unwrap();
    let json = serde_json::to_string(&spec).unwrap();
    assert_eq!(
        json,
        r#"{"variant":"csra","lambda":0.5,"temperatures":[1.0,2.0,4.0,"max"],"normalize":true}"#
    );
    assert_eq!(serde_json::from_str::<HeadSpec>(&json).unwrap(), spec);

    let official = r#"{"variant":"csra","lambda":0.5,"temperatures":[1,2,4,99],"normalize":true}"#;
    assert_eq!(serde_json::from_str::<HeadSpec>(official).unwrap(), spec);
    let inf = r#"{"variant":"max","lambda":0.2,"temperatures":["Infinity"],"normalize":false}"#;
    assert_eq!(
        serde_json::from_str::<HeadSpec>(inf).unwrap(),
        HeadSpec::max(0.2).unwrap()
    );
}

#[test]
fn invalid_specs_are_rejected_on_deserialisation() {
    for (json, needle) in [
        (
            r#"{"variant":"max","lambda":0.2,"temperatures":[1],"normalize":false}"#,
            "max exactly [max]",
        ),
        (
            r#"{"variant":"csra","lambda":0.2,"temperatures":[],"normalize":true}"#,
            "csra needs at least one",
        ),
        (
            r#"{"variant":"csra","lambda":0.2,"temperatures":[-1],"normalize":true}"#,
            "invalid temperature -1",
        ),
        (
            r#"{"variant":"csra","lambda":0.2,"temperatures":["hot"],"normalize":true}"#,
            "neither a number nor",
        ),
        (
            r#"{"variant":"gap2","lambda":0,"normalize":false}"#,
            "unknown variant",
        ),
    ] {
        let err = serde_json::from_str::<HeadSpec>(json)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{json}: {err}");
    }
}

#[test]
fn shape_errors_name_the_tensor() {
    let x = vec![0.0; D * H * W];
    assert!(FeatureMap::new(&x, D, H, W + 1).is_err());
    let w = vec![1.0; C * (D + 1)];
    let err = forward(
        &HeadSpec::csra(1, 0.1).unwrap(),
        features(&x),
        &[Classifier::new(&w, C).unwrap()],
    )
    .unwrap_err();
    assert!(err.to_string().contains("classifier weight"), "{err}");

    let w = vec![1.0; C * D];
    let err = forward(
        &HeadSpec::csra(2, 0.1).unwrap(),
        features(&x),
        &[Classifier::new(&w, C).unwrap()],
    )
    .unwrap_err();
    assert_eq!(
        err,
        HeadError::HeadCount {
            expected: 2,
            actual: 1
        }
    );
}

#[test]
fn zero_norm_rows_cannot_be_normalised() {
    let x = vec![1.0; D * H * W];
    let w = vec![0.0; C * D];
    let err = forward(
        &HeadSpec::csra(1, 0.1).unwrap(),
        features(&x),
        &[Classifier::new(&w, C).unwrap()],
    )
    .unwrap_err();
    assert_eq!(err, HeadError::DegenerateClassRow { class: 0 });
}
