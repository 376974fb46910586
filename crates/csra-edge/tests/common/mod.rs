//! Shared test helpers: a random-weight CSRA model written with csra-onnx (a tiny conv backbone
//! and a fused head), the reference computations, and the real photos.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use csra_core::head::math::{forward, Classifier, FeatureMap};
use csra_core::head::HeadSpec;
use csra_core::labels::LabelSet;
use csra_core::manifest::{
    ColorOrder, InputSpec, Layout, Manifest, OutputNames, Preprocess, Provenance, ResizePolicy,
};
use csra_onnx::pb::tensor_proto::DataType;
use csra_onnx::{emit_head, ClassifierWeights, Dim, FeatureShape, GraphBuilder, HeadWeights, Op};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tract_onnx::prelude::*;

/// The model's input side.
pub const SIZE: usize = 64;
/// Backbone channels and the feature map side (two stride-2 convolutions).
pub const DIM: usize = 16;
pub const FEATURE: usize = SIZE / 4;
pub const CLASSES: [&str; 6] = ["person", "bicycle", "car", "dog", "cat", "traffic light"];

/// A written test model and what is needed to recompute its outputs.
pub struct TestModel {
    pub dir: PathBuf,
    pub onnx: PathBuf,
    pub manifest: Manifest,
    pub spec: HeadSpec,
    pub classifiers: Vec<ClassifierWeights>,
}

/// The preprocessing the test models use: MobileNetV2's `x / 127.5 − 1`, squash.
pub fn tf_preprocess() -> Preprocess {
    Preprocess {
        resize: ResizePolicy::Squash,
        scale: 1.0 / 127.5,
        mean: [1.0; 3],
        std: [1.0; 3],
    }
}

fn uniform(rng: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// Writes `model.onnx` and `model.manifest.json` into `dir`: two 3×3 stride-2 convolutions with
/// ReLU, then a CSRA head with two heads (T = 1 and ∞) and its attention output. The graph
/// also outputs `features`, which the manifest does not name, so tests can run csra-core's
/// reference head on exactly what tract's backbone computed.
pub fn write_model(dir: &Path, seed: u64) -> TestModel {
    write_model_with(dir, seed, HeadSpec::csra(2, 0.3).unwrap())
}

/// [`write_model`] with another head; a baseline head has no attention output.
pub fn write_model_with(dir: &Path, seed: u64, spec: HeadSpec) -> TestModel {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut b = GraphBuilder::new("edge-test");
    let image = b
        .input(
            "image",
            DataType::Float,
            &[
                Dim::Fixed(1),
                Dim::Fixed(3),
                Dim::Fixed(SIZE),
                Dim::Fixed(SIZE),
            ],
        )
        .unwrap();
    let mut conv =
        |b: &mut GraphBuilder, name: &str, x: &csra_onnx::Value, cin: usize, cout: usize| {
            let scale = 1.0 / (cin as f32 * 9.0).sqrt();
            let w = b
                .initializer_f32(
                    &format!("{name}.weight"),
                    &[cout, cin, 3, 3],
                    &uniform(&mut rng, cout * cin * 9, -scale, scale),
                )
                .unwrap();
            let bias = b
                .initializer_f32(
                    &format!("{name}.bias"),
                    &[cout],
                    &uniform(&mut rng, cout, 0.0, 0.2),
                )
                .unwrap();
            let op = Op::new("Conv")
                .ints("kernel_shape", &[3, 3])
                .ints("strides", &[2, 2])
                .ints("pads", &[1, 1, 1, 1]);
            let y = b.node(name, op, &[x, &w, &bias]);
            b.node(&format!("{name}.relu"), Op::new("Relu"), &[&y])
        };
    let x = conv(&mut b, "conv_1", &image, 3, 8);
    let features = conv(&mut b, "conv_2", &x, 8, DIM);

    let mut rng = StdRng::seed_from_u64(seed + 1);
    let classifiers: Vec<ClassifierWeights> = (0..spec.num_heads())
        .map(|_| ClassifierWeights {
            weight: uniform(&mut rng, CLASSES.len() * DIM, -1.0, 1.0),
            bias: None,
        })
        .collect();
    let head = HeadWeights::new(spec.clone(), CLASSES.len(), DIM, classifiers.clone()).unwrap();
    let shape = FeatureShape {
        batch: Dim::Fixed(1),
        channels: DIM,
        height: FEATURE,
        width: FEATURE,
    };
    let has_attention = spec.variant() != csra_core::head::HeadVariant::Baseline;
    let names = OutputNames {
        attention: has_attention.then(|| "attention".into()),
        ..OutputNames::default()
    };
    emit_head(&mut b, &features, &shape, &head, &names).unwrap();
    b.output(
        &features,
        DataType::Float,
        &[
            Dim::Fixed(1),
            Dim::Fixed(DIM),
            Dim::Fixed(FEATURE),
            Dim::Fixed(FEATURE),
        ],
    );
    let onnx = dir.join("model.onnx");
    csra_onnx::write_model(&onnx, &b.finish().unwrap()).unwrap();

    let labels = LabelSet::new(CLASSES, "test").unwrap();
    let input = InputSpec {
        name: "image".into(),
        layout: Layout::Nchw,
        width: SIZE as u32,
        height: SIZE as u32,
        color: ColorOrder::Rgb,
        dynamic_batch: false,
    };
    let provenance = Provenance {
        backbone: "tiny".into(),
        dataset: "random".into(),
        epochs: 0,
        commit: None,
        note: None,
        created_by: "csra-edge tests".into(),
    };
    let mut manifest = Manifest::new("model.onnx", &labels, input, spec.clone(), provenance);
    manifest.preprocess = tf_preprocess();
    manifest.outputs = names;
    manifest.write(&dir.join("model.manifest.json")).unwrap();
    TestModel {
        dir: dir.to_owned(),
        onnx,
        manifest,
        spec,
        classifiers,
    }
}

/// The outputs of one direct tract run.
pub struct DirectRun {
    pub probs: Vec<f32>,
    pub attention: Vec<f32>,
    pub features: Vec<f32>,
}

/// The model loaded with tract's plain API (not csra-edge's backend).
pub struct Direct(Arc<TypedRunnableModel>);

impl Direct {
    pub fn load(model: &TestModel) -> Self {
        let plan = tract_onnx::onnx()
            .model_for_path(&model.onnx)
            .unwrap()
            .into_optimized()
            .unwrap()
            .into_runnable()
            .unwrap();
        Self(plan)
    }

    /// Runs one input tensor.
    pub fn run(&self, input: &[f32]) -> DirectRun {
        let tensor = Tensor::from_shape(&[1, 3, SIZE, SIZE], input).unwrap();
        let out = self.0.run(tvec!(tensor.into_tvalue())).unwrap();
        let values = |i: usize| -> Vec<f32> {
            out[i]
                .try_as_plain_ram()
                .unwrap()
                .as_slice::<f32>()
                .unwrap()
                .to_vec()
        };
        // Outputs in graph order: logits, probs, attention, features.
        DirectRun {
            probs: values(1),
            attention: values(2),
            features: values(3),
        }
    }
}

/// csra-core's reference probabilities on a `[d, h, w]` feature map.
pub fn reference_probs(model: &TestModel, features: &[f32]) -> Vec<f32> {
    let map = FeatureMap::new(features, DIM, FEATURE, FEATURE).unwrap();
    let classifiers: Vec<Classifier<'_>> = model
        .classifiers
        .iter()
        .map(|c| Classifier::new(&c.weight, CLASSES.len()).unwrap())
        .collect();
    forward(&model.spec, map, &classifiers)
        .unwrap()
        .logits
        .iter()
        .map(|&l| (1.0 / (1.0 + (-f64::from(l)).exp())) as f32)
        .collect()
}

/// The real photos: `photos/` of [`csra_test_support::data_dir`]; fails (not skips) when
/// missing.
pub fn photos_dir() -> PathBuf {
    let photos = csra_test_support::data_dir().join("photos");
    assert!(
        photos.join("cat_0.jpg").is_file(),
        "real photos not found at {}: check out shared/ beside this repository or set CSRA_DATA_DIR",
        photos.display()
    );
    photos
}

/// A few real photos copied into `dir` (a JPEG of people, animals, a BMP), to keep runs short.
pub fn photo_subset(dir: &Path) -> Vec<PathBuf> {
    let photos = photos_dir();
    [
        "cat_0.jpg",
        "dog_0.jpg",
        "humans_0.jpg",
        "coral_grace_hopper.bmp",
    ]
    .iter()
    .map(|name| {
        let to = dir.join(name);
        std::fs::copy(photos.join(name), &to).unwrap();
        to
    })
    .collect()
}

/// Real photos by file name, from [`photos_dir`].
pub fn photos(names: &[&str]) -> Vec<PathBuf> {
    let dir = photos_dir();
    names.iter().map(|name| dir.join(name)).collect()
}

/// The csra-edge binary, logging at info, with no `ORT_DYLIB_PATH` (`auto` would take the ONNX
/// Runtime it names; the tests expect tract unless they say otherwise).
pub fn edge() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_csra-edge"));
    command.env("RUST_LOG", "info");
    command.env_remove("ORT_DYLIB_PATH");
    command
}

/// A finished command's stderr, as text.
pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
