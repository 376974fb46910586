//! Grafting onto a tiny backbone built with the builder, run in tract: the `Max` rewrite of
//! the classifier tail reproduces the original logits at λ = 0 and equals the hand-computed
//! `mean + λ·max` for λ > 0; a CSRA head grafted onto the feature map equals csra-core's
//! reference. Every written file decodes with prost and holds the expected ops.

#![allow(clippy::unwrap_used)]

mod common;

use csra_core::head::math::{forward, Classifier, FeatureMap};
use csra_core::head::HeadSpec;
use csra_core::manifest::{Manifest, OutputNames};
use csra_onnx::graft::{graft_command, graft_head, graft_max, GraftOptions, Normalization};
use csra_onnx::{ClassifierWeights, Dim, HeadWeights};
use rand::rngs::StdRng;
use rand::SeedableRng;

use common::{
    max_abs_error, ops, relative_error, sigmoid, tiny_backbone, uniform, Extras, Tail, CLASSES,
    FEATURE_DIM, FEATURE_SIZE, IMAGE_SIZE,
};

const BATCH: usize = 2;
const LOCATIONS: usize = FEATURE_SIZE * FEATURE_SIZE;

fn images(rng: &mut StdRng) -> (Vec<usize>, Vec<f32>) {
    let shape = vec![BATCH, 3, IMAGE_SIZE, IMAGE_SIZE];
    let data = uniform(rng, shape.iter().product(), 0.0, 1.0);
    (shape, data)
}

/// `mean_j s_cj + λ·max_j s_cj` with `s_cj = W_c · x_j + b_c`, in f64, for one feature map.
fn mean_plus_max(features: &[f32], weight: &[f32], bias: &[f32], lambda: f64) -> Vec<f32> {
    (0..CLASSES)
        .map(|c| {
            let scores: Vec<f64> = (0..LOCATIONS)
                .map(|j| {
                    let dot: f64 = (0..FEATURE_DIM)
                        .map(|k| {
                            f64::from(weight[c * FEATURE_DIM + k])
                                * f64::from(features[k * LOCATIONS + j])
                        })
                        .sum();
                    dot + f64::from(bias[c])
                })
                .collect();
            let mean = scores.iter().sum::<f64>() / LOCATIONS as f64;
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (mean + lambda * max) as f32
        })
        .collect()
}

/// The ops of a grafted `Max` head with attention: the backbone's convolutions and the fused
/// head, and nothing left of the old tail.
fn max_graft_ops() -> std::collections::BTreeMap<String, usize> {
    ops(&[
        ("Conv", 2),
        ("Relu", 2),
        ("GlobalAveragePool", 1),
        ("Flatten", 1),
        ("Gemm", 1),
        ("Reshape", 2),
        ("MatMul", 1),
        ("Add", 2),
        ("ReduceMax", 1),
        ("Mul", 1),
        ("Sigmoid", 1),
        ("ArgMax", 1),
        ("Equal", 1),
        ("Cast", 1),
    ])
}

#[test]
fn zero_lambda_reproduces_the_original_logits() {
    let mut rng = StdRng::seed_from_u64(10);
    let dir = tempfile::tempdir().unwrap();
    for tail in [Tail::Gemm, Tail::GemmScaled, Tail::MatMulAdd] {
        let backbone = tiny_backbone(tail, Extras::default(), &mut rng);
        let source = common::write(dir.path(), "backbone.onnx", &backbone.model);
        let target = common::target(dir.path(), "max0.onnx", CLASSES);
        graft_max(&source, None, 0.0, &target).unwrap();

        let input = images(&mut rng);
        let original = common::run(&source, std::slice::from_ref(&input));
        let grafted = common::run(&target.path, &[input]);
        let error = max_abs_error(&grafted[0].data, &original[0].data);
        println!("{tail:?}: λ = 0 differs from the original logits by at most {error:e}");
        if tail == Tail::Gemm {
            // The same Gemm on the same weights, plus 0·att: bit for bit the same.
            assert_eq!(grafted[0].data, original[0].data);
        } else {
            assert!(
                relative_error(&grafted[0].data, &original[0].data) <= 1e-6,
                "{tail:?}: {error}"
            );
        }
        let expected_probs: Vec<f32> = original[0].data.iter().map(|&l| sigmoid(l)).collect();
        assert!(relative_error(&grafted[1].data, &expected_probs) <= 1e-6);
    }
}

#[test]
fn positive_lambda_equals_mean_plus_lambda_max() {
    let mut rng = StdRng::seed_from_u64(11);
    let dir = tempfile::tempdir().unwrap();
    let lambda = 0.7;
    for tail in [Tail::Gemm, Tail::GemmScaled, Tail::MatMulAdd] {
        let extras = Extras {
            features_output: true,
            ..Extras::default()
        };
        let probe = tiny_backbone(tail, extras, &mut StdRng::seed_from_u64(12));
        let backbone = tiny_backbone(tail, Extras::default(), &mut StdRng::seed_from_u64(12));
        let probe_path = common::write(dir.path(), "probe.onnx", &probe.model);
        let source = common::write(dir.path(), "backbone.onnx", &backbone.model);
        let mut target = common::target(dir.path(), "max.onnx", CLASSES);
        target.outputs.attention = Some("attention".to_owned());
        let grafted = graft_max(&source, None, lambda, &target).unwrap();
        assert_eq!(common::histogram(&target.path), max_graft_ops(), "{tail:?}");

        let input = images(&mut rng);
        let features = common::run(&probe_path, std::slice::from_ref(&input)).remove(1);
        assert_eq!(
            features.shape,
            [BATCH, FEATURE_DIM, FEATURE_SIZE, FEATURE_SIZE]
        );
        let outputs = common::run(&target.path, &[input]);
        assert_eq!(
            outputs[2].shape,
            [BATCH, CLASSES, FEATURE_SIZE, FEATURE_SIZE]
        );
        for (i, map) in features
            .data
            .chunks_exact(FEATURE_DIM * LOCATIONS)
            .enumerate()
        {
            let expected = mean_plus_max(map, &backbone.weight, &backbone.bias, f64::from(lambda));
            let logits = &outputs[0].data[i * CLASSES..(i + 1) * CLASSES];
            let error = relative_error(logits, &expected);
            println!("{tail:?}: λ = {lambda}, relative error {error:e}");
            assert!(error <= 1e-5, "{tail:?}: {error}");
            let attention = &outputs[2].data[i * CLASSES * LOCATIONS..][..CLASSES * LOCATIONS];
            for row in attention.chunks_exact(LOCATIONS) {
                assert_eq!(row.iter().sum::<f32>(), 1.0, "one-hot attention");
            }
        }

        let manifest = Manifest::read(&grafted.manifest_path).unwrap();
        assert_eq!(manifest, grafted.manifest);
        assert_eq!(manifest.head, HeadSpec::max(lambda).unwrap());
        assert_eq!(manifest.model, std::path::Path::new("max.onnx"));
        assert_eq!(manifest.outputs.logits, "logits");
        assert_eq!(manifest.outputs.attention.as_deref(), Some("attention"));
        assert_eq!(manifest.input.name, "image");
        assert_eq!((manifest.input.width, manifest.input.height), (32, 32));
        assert!(manifest.input.dynamic_batch);
        assert_eq!(grafted.feature, "features");
        assert_eq!(grafted.feature_shape.batch, Dim::Named("N".to_owned()));
    }
}

#[test]
fn nodes_reading_the_logits_keep_working() {
    let mut rng = StdRng::seed_from_u64(13);
    let dir = tempfile::tempdir().unwrap();
    let extras = Extras {
        softmax_output: true,
        ..Extras::default()
    };
    let backbone = tiny_backbone(Tail::Gemm, extras, &mut rng);
    let source = common::write(dir.path(), "backbone.onnx", &backbone.model);
    let target = common::target(dir.path(), "max.onnx", CLASSES);
    graft_max(&source, Some("logits"), 0.3, &target).unwrap();

    let outputs = common::run(&target.path, &[images(&mut rng)]);
    let names: Vec<String> = common::decode(&target.path)
        .graph
        .unwrap()
        .output
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["logits", "probs", "softmax"]);
    for (logits, softmax) in outputs[0]
        .data
        .chunks_exact(CLASSES)
        .zip(outputs[2].data.chunks_exact(CLASSES))
    {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let total: f32 = exp.iter().sum();
        let expected: Vec<f32> = exp.iter().map(|e| e / total).collect();
        assert!(max_abs_error(softmax, &expected) <= 1e-6);
    }
}

#[test]
fn csra_head_on_a_feature_map_matches_the_reference() {
    let mut rng = StdRng::seed_from_u64(14);
    let dir = tempfile::tempdir().unwrap();
    let extras = Extras {
        features_output: true,
        ..Extras::default()
    };
    let probe = tiny_backbone(Tail::Gemm, extras, &mut StdRng::seed_from_u64(15));
    let backbone = tiny_backbone(
        Tail::Gemm,
        Extras::default(),
        &mut StdRng::seed_from_u64(15),
    );
    let probe_path = common::write(dir.path(), "probe.onnx", &probe.model);
    let source = common::write(dir.path(), "backbone.onnx", &backbone.model);

    let spec = HeadSpec::csra(4, 0.2).unwrap();
    let classes = 6;
    let classifiers: Vec<ClassifierWeights> = (0..4)
        .map(|_| ClassifierWeights {
            weight: uniform(&mut rng, classes * FEATURE_DIM, -1.0, 1.0),
            bias: None,
        })
        .collect();
    let head = HeadWeights::new(spec.clone(), classes, FEATURE_DIM, classifiers.clone()).unwrap();
    let target = common::target(dir.path(), "csra.onnx", classes);
    let grafted = graft_head(&source, "features", &head, &target).unwrap();
    assert_eq!(grafted.manifest.head, spec);
    assert_eq!(
        common::histogram(&target.path),
        ops(&[
            ("Conv", 2),
            ("Relu", 2),
            ("GlobalAveragePool", 1),
            ("Flatten", 1),
            ("Gemm", 1),
            ("Reshape", 2),
            ("MatMul", 1),
            ("Split", 1),
            ("Mul", 3),
            ("Softmax", 1),
            ("ReduceSum", 1),
            ("ReduceMax", 1),
            ("Add", 2),
            ("Sigmoid", 1),
        ]),
        "the old Gemm tail is gone and the head is fused"
    );

    let input = images(&mut rng);
    let features = common::run(&probe_path, std::slice::from_ref(&input)).remove(1);
    let outputs = common::run(&target.path, &[input]);
    assert_eq!(
        outputs.len(),
        2,
        "logits and probs replace the backbone's outputs"
    );
    let reference: Vec<Classifier<'_>> = classifiers
        .iter()
        .map(|c| Classifier::new(&c.weight, classes).unwrap())
        .collect();
    for (i, map) in features
        .data
        .chunks_exact(FEATURE_DIM * LOCATIONS)
        .enumerate()
    {
        let map = FeatureMap::new(map, FEATURE_DIM, FEATURE_SIZE, FEATURE_SIZE).unwrap();
        let expected = forward(&spec, map, &reference).unwrap();
        let logits = &outputs[0].data[i * classes..(i + 1) * classes];
        assert!(relative_error(logits, &expected.logits) <= 1e-5);
    }
    let manifest = Manifest::read(&grafted.manifest_path).unwrap();
    assert_eq!(manifest.outputs, OutputNames::default());
    assert_eq!(manifest.num_classes, classes);
}

/// The options of a `graft` command onto the tiny backbone at `model`, writing into `out`.
fn command_options(model: &std::path::Path, out: &std::path::Path) -> GraftOptions {
    GraftOptions {
        model: model.to_owned(),
        out: out.to_owned(),
        labels: csra_core::LabelSet::new((0..CLASSES).map(|c| format!("class_{c}")), "test")
            .unwrap(),
        lambda: 0.4,
        logits: None,
        preprocess: Normalization::Imagenet.preprocess(),
        color: csra_core::manifest::ColorOrder::Rgb,
        backbone: None,
        dataset: "random".to_owned(),
        created_by: "csra-onnx tests".to_owned(),
    }
}

#[test]
fn the_graft_command_writes_a_model_folder_equal_to_graft_max() {
    let mut rng = StdRng::seed_from_u64(17);
    let dir = tempfile::tempdir().unwrap();
    let backbone = tiny_backbone(Tail::Gemm, Extras::default(), &mut rng);
    let source = common::write(dir.path(), "tiny.onnx", &backbone.model);
    let out = dir.path().join("folder");
    let grafted = graft_command(&command_options(&source, &out)).unwrap();
    assert_eq!(grafted.model_path, out.join("model.onnx"));
    let manifest = Manifest::read(&out.join("model.manifest.json")).unwrap();
    assert_eq!(manifest, grafted.manifest);
    assert_eq!(manifest.head, HeadSpec::max(0.4).unwrap());
    assert_eq!(manifest.provenance.backbone, "tiny");
    assert_eq!(manifest.preprocess.mean, [0.485, 0.456, 0.406]);
    let labels = csra_core::LabelSet::read(&out.join("labels.txt")).unwrap();
    assert_eq!(labels.len(), CLASSES);

    // The same rewrite as graft_max, so the same logits.
    let target = common::target(dir.path(), "max.onnx", CLASSES);
    graft_max(&source, None, 0.4, &target).unwrap();
    let input = images(&mut rng);
    let folder = common::run(&grafted.model_path, std::slice::from_ref(&input));
    let direct = common::run(&target.path, &[input]);
    assert_eq!(folder[0].data, direct[0].data);
}

#[test]
fn the_graft_command_names_an_unwritable_folder_and_the_flag() {
    let mut rng = StdRng::seed_from_u64(19);
    let dir = tempfile::tempdir().unwrap();
    let backbone = tiny_backbone(Tail::Gemm, Extras::default(), &mut rng);
    let source = common::write(dir.path(), "tiny.onnx", &backbone.model);
    // A file where the folder should be.
    let out = dir.path().join("taken");
    std::fs::write(&out, "not a folder").unwrap();
    let err = graft_command(&command_options(&source, &out)).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(out.to_str().unwrap()), "{message}");
    assert!(
        message.contains("choose a writable --out folder"),
        "{message}"
    );
}
