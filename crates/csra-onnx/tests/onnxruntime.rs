//! ONNX Runtime and the `onnx` package accept every kind of file csra-onnx writes, and compute
//! what tract computes.
//!
//! The test writes a representative set: every head variant (CSRA with H ∈ {1, 2, 4, 6, 8} and
//! a spec whose max head is not last, `Max`, `Baseline`), each with and without the attention
//! output and with a static and a dynamic batch; the tiny backbones with every classifier tail;
//! and grafts onto them through `graft_max` and `graft_head`. `tests/python/onnx_reference.py`
//! then runs `onnx.checker` (full check), strict shape inference and ONNX Runtime on the CPU
//! (with graph optimisations off and on) over each file, on inputs saved here as `.npy`. ORT's
//! outputs must equal tract's within 1e-5 (normwise relative), and a bare head's logits must
//! equal csra-core's reference.
//!
//! It needs Python with `requirements/test.txt` (onnx, onnxruntime):
//!
//! ```text
//! python3 -m venv .venv && .venv/bin/pip install -r requirements/test.txt
//! CSRA_PYTHON=.venv/bin/python cargo test -p csra-onnx --test onnxruntime
//! ```
//!
//! A relative `CSRA_PYTHON` path is taken from the workspace root; without `CSRA_PYTHON` the
//! workspace's `.venv` is used, and without either the test fails with what to set up.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use csra_core::head::math::{forward, Classifier, FeatureMap};
use csra_core::head::{HeadSpec, Temperature};
use csra_core::manifest::OutputNames;
use csra_onnx::graft::{graft_head, graft_max};
use csra_onnx::pb::tensor_proto::DataType;
use csra_onnx::{emit_head, ClassifierWeights, Dim, FeatureShape, GraphBuilder, HeadWeights};
use csra_test_support::{python, workspace_root, PYTHON_SETUP};
use rand::rngs::StdRng;
use rand::SeedableRng;

use common::{npy, relative_error, tiny_backbone, uniform, Extras, Tail, FEATURE_DIM, IMAGE_SIZE};

/// ORT and tract run the same f32 graph with different kernels and summation orders.
const TOLERANCE: f64 = 1e-5;

/// The feature width and class count of the bare heads: small, the test is about the graph.
const DIM: usize = 32;
const HEAD_CLASSES: usize = 20;

/// The ORT runs the script makes of every file (see the script's docstring).
const LEVELS: [&str; 2] = ["plain", "optimized"];

/// One written model and what it runs on.
struct Case {
    stem: String,
    path: PathBuf,
    /// Shape and data of each graph input, in input order.
    inputs: Vec<(Vec<usize>, Vec<f32>)>,
    /// csra-core's logits `[N, C]` on the inputs, for a bare head.
    reference_logits: Option<Vec<f32>>,
}

/// A bare head file to write.
struct HeadFile<'a> {
    stem: String,
    spec: &'a HeadSpec,
    bias: bool,
    attention: bool,
    dynamic: bool,
    /// The feature map is `size`×`size`.
    size: usize,
}

/// Writes a bare head on a `features` input (C = 20, d = 32; three samples with a dynamic
/// batch) and computes csra-core's logits on random features.
fn head_case(dir: &Path, file: HeadFile<'_>, rng: &mut StdRng) -> Case {
    let HeadFile {
        stem,
        spec,
        bias,
        attention,
        dynamic,
        size,
    } = file;
    let c = HEAD_CLASSES;
    let classifiers: Vec<ClassifierWeights> = (0..spec.num_heads())
        .map(|_| ClassifierWeights {
            weight: uniform(rng, c * DIM, -1.0, 1.0),
            bias: bias.then(|| uniform(rng, c, -0.5, 0.5)),
        })
        .collect();
    let head = HeadWeights::new(spec.clone(), c, DIM, classifiers.clone()).unwrap();
    let batch = Dim::batch(dynamic);
    let shape = FeatureShape {
        batch: batch.clone(),
        channels: DIM,
        height: size,
        width: size,
    };
    let mut builder = GraphBuilder::new(&stem);
    let features = builder
        .input(
            "features",
            DataType::Float,
            &[batch, Dim::Fixed(DIM), Dim::Fixed(size), Dim::Fixed(size)],
        )
        .unwrap();
    let names = OutputNames {
        attention: attention.then(|| "attention".to_owned()),
        ..OutputNames::default()
    };
    emit_head(&mut builder, &features, &shape, &head, &names).unwrap();
    let path = common::write(dir, &format!("{stem}.onnx"), &builder.finish().unwrap());

    let n = if dynamic { 3 } else { 1 };
    let data = uniform(rng, n * DIM * size * size, 0.0, 2.0);
    let reference: Vec<Classifier<'_>> = classifiers
        .iter()
        .map(|cl| {
            let classifier = Classifier::new(&cl.weight, c).unwrap();
            match &cl.bias {
                Some(bias) => classifier.with_bias(bias).unwrap(),
                None => classifier,
            }
        })
        .collect();
    let reference_logits = data
        .chunks_exact(DIM * size * size)
        .flat_map(|item| {
            let map = FeatureMap::new(item, DIM, size, size).unwrap();
            forward(spec, map, &reference).unwrap().logits
        })
        .collect();
    Case {
        stem,
        path,
        inputs: vec![(vec![n, DIM, size, size], data)],
        reference_logits: Some(reference_logits),
    }
}

/// Every head variant, with and without attention, with a static and a dynamic batch.
fn head_cases(dir: &Path, rng: &mut StdRng) -> Vec<Case> {
    let mixed = vec![
        Temperature::Max,
        Temperature::Softmax(3.0),
        Temperature::Max,
        Temperature::Softmax(7.0),
    ];
    let specs = [
        ("csra1", HeadSpec::csra(1, 0.1).unwrap(), false),
        ("csra2", HeadSpec::csra(2, 0.1).unwrap(), false),
        ("csra4", HeadSpec::csra(4, 0.3).unwrap(), true),
        ("csra6", HeadSpec::csra(6, 0.1).unwrap(), false),
        ("csra8", HeadSpec::csra(8, 0.1).unwrap(), false),
        // Its last head is a softmax head, so the attention comes from a slice of the stack.
        (
            "csra_mixed",
            HeadSpec::csra_with_temperatures(mixed, 0.5).unwrap(),
            false,
        ),
        ("max", HeadSpec::max(0.2).unwrap(), true),
        (
            "max_normalized",
            HeadSpec::max(1.0).unwrap().with_normalize(true),
            false,
        ),
        ("baseline", HeadSpec::baseline(), true),
    ];
    let mut cases = Vec::new();
    for (i, (name, spec, bias)) in specs.iter().enumerate() {
        for attention in [false, true] {
            for dynamic in [false, true] {
                let stem = format!(
                    "head_{name}_{}_{}",
                    if attention { "att" } else { "noatt" },
                    if dynamic { "dyn" } else { "static" }
                );
                // Both map sizes of the parity tests, alternating over the variants.
                let size = if i % 2 == 0 { 7 } else { 14 };
                let file = HeadFile {
                    stem,
                    spec,
                    bias: *bias,
                    attention,
                    dynamic,
                    size,
                };
                cases.push(head_case(dir, file, rng));
            }
        }
    }
    cases
}

/// The tiny backbones (every tail) and grafts onto them through `graft_max` and `graft_head`,
/// all with a dynamic batch, run on two images.
fn graft_cases(dir: &Path, rng: &mut StdRng) -> Vec<Case> {
    let images = |rng: &mut StdRng| {
        let shape = vec![2, 3, IMAGE_SIZE, IMAGE_SIZE];
        let data = uniform(rng, shape.iter().product(), 0.0, 1.0);
        vec![(shape, data)]
    };
    let case = |stem: &str, path: PathBuf, rng: &mut StdRng| Case {
        stem: stem.to_owned(),
        path,
        inputs: images(rng),
        reference_logits: None,
    };
    let mut cases = Vec::new();
    let tails = [
        ("gemm", Tail::Gemm),
        ("gemm_scaled", Tail::GemmScaled),
        ("matmul_add", Tail::MatMulAdd),
        ("reduce_mean", Tail::ReduceMean),
    ];
    for (name, tail) in tails {
        let backbone = tiny_backbone(tail, Extras::default(), rng);
        let stem = format!("backbone_{name}");
        let source = common::write(dir, &format!("{stem}.onnx"), &backbone.model);
        cases.push(case(&stem, source.clone(), rng));
        if tail == Tail::ReduceMean {
            continue; // not the standard tail: graft_max refuses it (tests/bad_input.rs)
        }
        let stem = format!("graft_max_{name}_att");
        let mut target = common::target(dir, &format!("{stem}.onnx"), common::CLASSES);
        target.outputs.attention = Some("attention".to_owned());
        graft_max(&source, None, 0.7, &target).unwrap();
        cases.push(case(&stem, target.path, rng));
    }

    // λ = 0 without attention, and a backbone whose softmax reads the rewritten logits.
    let extras = Extras {
        features_output: true,
        softmax_output: true,
    };
    let backbone = tiny_backbone(Tail::Gemm, extras, rng);
    let source = common::write(dir, "backbone_extras.onnx", &backbone.model);
    cases.push(case("backbone_extras", source.clone(), rng));
    let target = common::target(dir, "graft_max_zero.onnx", common::CLASSES);
    graft_max(&source, Some("logits"), 0.0, &target).unwrap();
    cases.push(case("graft_max_zero", target.path, rng));

    let heads = [
        ("csra4_att", HeadSpec::csra(4, 0.2).unwrap(), true),
        ("csra8", HeadSpec::csra(8, 0.1).unwrap(), false),
        ("baseline_att", HeadSpec::baseline(), true),
    ];
    for (name, spec, attention) in heads {
        let classes = 6;
        let classifiers = (0..spec.num_heads())
            .map(|_| ClassifierWeights {
                weight: uniform(rng, classes * FEATURE_DIM, -1.0, 1.0),
                bias: Some(uniform(rng, classes, -0.5, 0.5)),
            })
            .collect();
        let head = HeadWeights::new(spec, classes, FEATURE_DIM, classifiers).unwrap();
        let stem = format!("graft_head_{name}");
        let mut target = common::target(dir, &format!("{stem}.onnx"), classes);
        target.outputs.attention = attention.then(|| "attention".to_owned());
        graft_head(&source, "features", &head, &target).unwrap();
        cases.push(case(&stem, target.path, rng));
    }
    cases
}

/// Runs the script over `dir` and returns its report (one line per model).
fn run_reference(python: &Path, dir: &Path) -> String {
    let script = workspace_root().join("tests/python/onnx_reference.py");
    let output = Command::new(python)
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {PYTHON_SETUP}", python.display()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} {} failed ({}):\n{stderr}\nIs requirements/test.txt installed? {PYTHON_SETUP}",
        python.display(),
        script.display(),
        output.status,
    );
    if !stderr.trim().is_empty() {
        println!("the reference's stderr:\n{stderr}");
    }
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn onnxruntime_and_the_checker_accept_every_file_and_agree_with_tract() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(20);
    let mut cases = head_cases(dir.path(), &mut rng);
    cases.extend(graft_cases(dir.path(), &mut rng));

    for case in &cases {
        let graph = common::decode(&case.path).graph.unwrap();
        assert_eq!(graph.input.len(), case.inputs.len(), "{}", case.stem);
        for (input, (shape, data)) in graph.input.iter().zip(&case.inputs) {
            let name = format!("{}.in.{}.npy", case.stem, input.name);
            npy::write(&dir.path().join(name), shape, data);
        }
    }
    let report = run_reference(&python, dir.path());
    print!("{report}");
    assert!(
        report.contains(&format!(": {} models", cases.len())),
        "the reference must check every file written"
    );

    // The largest errors against tract, per ORT level, and of ORT's logits against csra-core.
    let mut worst_tract = [0.0_f64; LEVELS.len()];
    let mut worst_reference: f64 = 0.0;
    for case in &cases {
        let names: Vec<String> = common::decode(&case.path)
            .graph
            .unwrap()
            .output
            .into_iter()
            .map(|o| o.name)
            .collect();
        let tract = common::run(&case.path, &case.inputs);
        assert_eq!(tract.len(), names.len(), "{}", case.stem);
        for (level, worst_tract) in LEVELS.iter().zip(&mut worst_tract) {
            for (name, expected) in names.iter().zip(&tract) {
                let what = format!("{} ({level}) {name}", case.stem);
                let file = dir.path().join(format!("{}.{level}.{name}.npy", case.stem));
                let (shape, ort) = npy::read(&file);
                assert_eq!(shape, expected.shape, "{what}: ORT vs tract shape");
                let error = relative_error(&ort, &expected.data);
                assert!(error <= TOLERANCE, "{what}: ORT vs tract, {error:e}");
                *worst_tract = worst_tract.max(error);
                if let (Some(reference), "logits") = (&case.reference_logits, name.as_str()) {
                    let error = relative_error(&ort, reference);
                    assert!(error <= TOLERANCE, "{what}: ORT vs csra-core, {error:e}");
                    worst_reference = worst_reference.max(error);
                }
            }
        }
    }
    println!(
        "{} files, largest normwise relative error: ORT vs tract {:e} (plain), {:e} (optimized); \
         ORT logits vs csra-core {worst_reference:e}",
        cases.len(),
        worst_tract[0],
        worst_tract[1],
    );
}
