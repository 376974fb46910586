//! The tch heads against csra-core's reference math (`csra_core::head::math::forward`, plain
//! f64 Rust) on random feature maps and classifiers: logits and the last head's attention.
#![allow(clippy::unwrap_used)]

use csra_core::head::math::{forward, Classifier, FeatureMap};
use csra_core::head::{HeadSpec, Temperature};
use csra_host::head::Head;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

const N: usize = 3;
const DIM: usize = 24;
const HEIGHT: usize = 3;
const WIDTH: usize = 5;
const CLASSES: usize = 7;
/// f32 against f64 accumulation; relative to the magnitude (at least 1) of each value.
const TOLERANCE: f64 = 1e-5;

fn random(rng: &mut StdRng, len: usize, scale: f32) -> Vec<f32> {
    (0..len)
        .map(|_| (rng.random::<f32>() * 2.0 - 1.0) * scale)
        .collect()
}

fn assert_close(actual: &[f32], expected: &[f32], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        let tolerance = TOLERANCE * f64::from(e.abs()).max(1.0);
        assert!(
            (f64::from(a) - f64::from(e)).abs() <= tolerance,
            "{what}[{i}]: tch {a} != csra-core {e}"
        );
    }
}

/// Builds the head, fills every parameter with random values, and checks it against
/// csra-core on a random batch.
fn check(spec: HeadSpec, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let vs = VarStore::new(Device::Cpu);
    let head = Head::new(&vs.root(), spec.clone(), DIM as i64, CLASSES as i64).unwrap();

    // Parameters in name order: multi_head.0..H (CSRA) or fc.bias, fc.weight.
    let mut names: Vec<String> = vs.variables().into_keys().collect();
    names.sort();
    let mut params = Vec::new();
    for name in &names {
        let mut var = vs.variables()[name].shallow_clone();
        let values = random(&mut rng, var.numel(), 1.0);
        let source = Tensor::from_slice(&values).reshape(var.size());
        tch::no_grad(|| var.copy_(&source));
        params.push((name.clone(), values));
    }
    let features = random(&mut rng, N * DIM * HEIGHT * WIDTH, 2.0);
    let input =
        Tensor::from_slice(&features).reshape([N as i64, DIM as i64, HEIGHT as i64, WIDTH as i64]);
    let (logits, attention) = head.forward_with_attention(&input);
    assert_eq!(logits.size(), [N as i64, CLASSES as i64]);
    assert_eq!(
        attention.size(),
        [N as i64, CLASSES as i64, HEIGHT as i64, WIDTH as i64]
    );
    let plain = head.forward(&input);
    assert!(
        plain.equal(&logits),
        "forward and forward_with_attention differ"
    );
    let logits = Vec::<f32>::try_from(logits.flatten(0, -1)).unwrap();
    let attention = Vec::<f32>::try_from(attention.flatten(0, -1)).unwrap();

    let weight = |name: &str| -> &[f32] { &params.iter().find(|(n, _)| n == name).unwrap().1 };
    let classifiers: Vec<Classifier<'_>> = if names.iter().any(|n| n == "fc.weight") {
        vec![Classifier::new(weight("fc.weight"), CLASSES)
            .unwrap()
            .with_bias(weight("fc.bias"))
            .unwrap()]
    } else {
        (0..spec.num_heads())
            .map(|i| {
                Classifier::new(weight(&format!("multi_head.{i}.head.weight")), CLASSES).unwrap()
            })
            .collect()
    };
    let sample = DIM * HEIGHT * WIDTH;
    let map = CLASSES * HEIGHT * WIDTH;
    for n in 0..N {
        let fmap =
            FeatureMap::new(&features[n * sample..(n + 1) * sample], DIM, HEIGHT, WIDTH).unwrap();
        let expected = forward(&spec, fmap, &classifiers).unwrap();
        let what = format!("{spec} sample {n}");
        assert_close(
            &logits[n * CLASSES..(n + 1) * CLASSES],
            &expected.logits,
            &format!("{what} logits"),
        );
        let last = expected.heads.last().unwrap();
        assert_close(
            &attention[n * map..(n + 1) * map],
            &last.attention,
            &format!("{what} attention"),
        );
    }
}

#[test]
fn csra_heads_match_the_reference_math() {
    for (i, heads) in [1, 2, 4, 6, 8].into_iter().enumerate() {
        check(HeadSpec::csra(heads, 0.3).unwrap(), i as u64);
    }
}

#[test]
fn csra_without_normalisation_and_with_other_temperatures_matches() {
    let spec = HeadSpec::csra_with_temperatures(
        vec![Temperature::Softmax(0.5), Temperature::Softmax(3.0)],
        1.0,
    )
    .unwrap()
    .with_normalize(false);
    check(spec, 10);
}

#[test]
fn max_head_matches_the_reference_math() {
    check(HeadSpec::max(0.2).unwrap(), 20);
    check(HeadSpec::max(0.5).unwrap().with_normalize(true), 21);
}

#[test]
fn baseline_matches_the_reference_math() {
    check(HeadSpec::baseline(), 30);
}

#[test]
fn csra_gradients_reach_every_head() {
    let vs = VarStore::new(Device::Cpu);
    let head = Head::new(&vs.root(), HeadSpec::csra(4, 0.1).unwrap(), 8, 3).unwrap();
    let input = Tensor::randn([2, 8, 2, 2], (Kind::Float, Device::Cpu));
    head.forward(&input).sum(Kind::Float).backward();
    for (name, var) in vs.variables() {
        let grad = var.grad().abs().sum(Kind::Float).double_value(&[]);
        assert!(grad > 0.0, "{name} gets no gradient");
    }
}

#[test]
fn parameters_have_the_documented_names_and_shapes() {
    let vs = VarStore::new(Device::Cpu);
    let _csra = Head::new(&(vs.root() / "a"), HeadSpec::csra(2, 0.1).unwrap(), 16, 5).unwrap();
    let _fc = Head::new(&(vs.root() / "b"), HeadSpec::baseline(), 16, 5).unwrap();
    let mut shapes: Vec<(String, Vec<i64>)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    shapes.sort();
    let expected = [
        ("a.multi_head.0.head.weight", vec![5, 16, 1, 1]),
        ("a.multi_head.1.head.weight", vec![5, 16, 1, 1]),
        ("b.fc.bias", vec![5]),
        ("b.fc.weight", vec![5, 16]),
    ];
    let expected: Vec<(String, Vec<i64>)> = expected
        .into_iter()
        .map(|(n, s)| (n.to_owned(), s))
        .collect();
    assert_eq!(shapes, expected);
}

#[test]
fn initialisation_follows_pytorch_defaults() {
    // kaiming_uniform_(a=√5) and the bias are uniform in ±1/√fan_in.
    tch::manual_seed(1);
    let vs = VarStore::new(Device::Cpu);
    let dim = 400;
    let _head = Head::new(&vs.root(), HeadSpec::baseline(), dim, 300).unwrap();
    let bound = 1.0 / (dim as f64).sqrt();
    for (name, var) in vs.variables() {
        let max = var.abs().max().double_value(&[]);
        assert!(max <= bound, "{name}: {max} beyond ±{bound}");
        assert!(max > 0.95 * bound, "{name}: {max} far inside ±{bound}");
    }
}
