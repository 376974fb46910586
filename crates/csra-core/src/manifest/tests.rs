use super::*;

fn sample() -> Manifest {
    let classes = LabelSet::new(["cat", "dog"], "test").unwrap();
    let input = InputSpec {
        name: "input".into(),
        layout: Layout::Nchw,
        width: 224,
        height: 224,
        color: ColorOrder::Rgb,
        dynamic_batch: false,
    };
    let provenance = Provenance {
        backbone: "mobilenet_v2".into(),
        dataset: "coco-mini train2017".into(),
        epochs: 12,
        commit: Some("0123abc".into()),
        created_by: "csra-host 0.1.0".into(),
        note: None,
    };
    let mut m = Manifest::new(
        "model.onnx",
        &classes,
        input,
        HeadSpec::max(0.2).unwrap().with_normalize(true),
        provenance,
    );
    m.thresholds.per_class.insert("dog".into(), 0.6);
    m.metrics = Some(MeasuredMetrics {
        dataset: "coco-mini val2017".into(),
        values: [("map".to_owned(), 0.25)].into(),
    });
    m
}

fn json_of(m: &Manifest) -> serde_json::Value {
    serde_json::to_value(m).unwrap()
}

fn problems_of(value: &serde_json::Value) -> Vec<String> {
    match Manifest::parse(&value.to_string(), Path::new("m.manifest.json")).unwrap_err() {
        ManifestError::Invalid { problems, .. } => problems,
        other => panic!("expected Invalid, got {other}"),
    }
}

#[test]
fn write_then_read_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.manifest.json");
    let m = sample();
    m.write(&path).unwrap();
    assert_eq!(Manifest::read(&path).unwrap(), m);
    assert_eq!(m.threshold(0), 0.5);
    assert_eq!(m.threshold(1), 0.6);
}

#[test]
fn module_doc_example_is_a_valid_manifest() {
    let doc = include_str!("mod.rs");
    let start = doc.find("//! ```json").unwrap();
    let end = start + doc[start..].find("//! ```\n").unwrap();
    let json: String = doc[start..end]
        .lines()
        .skip(1)
        .map(|l| l.trim_start_matches("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let m = Manifest::parse(&json, Path::new("doc")).unwrap();
    assert_eq!(m.classes, ["cat", "dog"]);
    assert_eq!(m.preprocess, Preprocess::official());
}

#[test]
fn manifest_path_sits_beside_the_model() {
    assert_eq!(
        manifest_path_for(Path::new("models/coco/model.onnx")),
        Path::new("models/coco/model.manifest.json")
    );
}

#[test]
fn every_missing_field_is_reported_at_once() {
    let mut value = json_of(&sample());
    let root = value.as_object_mut().unwrap();
    root.remove("classes");
    root.remove("outputs");
    root["input"].as_object_mut().unwrap().remove("width");
    root["preprocess"].as_object_mut().unwrap().remove("std");
    let problems = problems_of(&value);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    for field in [
        "`classes`",
        "`outputs`",
        "`input.width`",
        "`preprocess.std`",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(field)),
            "{field} not in {problems:#?}"
        );
    }
    // A missing parent is reported once, not once per child.
    assert!(!problems.iter().any(|p| p.contains("outputs.logits")));
}

#[test]
fn unknown_and_newer_versions_are_explained() {
    let mut value = json_of(&sample());
    value["version"] = 7.into();
    let problems = problems_of(&value);
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("version 7 is newer"), "{problems:?}");
    assert!(problems[0].contains("upgrade csra"), "{problems:?}");

    value["version"] = "one".into();
    let problems = problems_of(&value);
    assert!(problems[0].contains("unknown manifest version \"one\""));
}

#[test]
fn a_class_count_that_does_not_match_is_explained() {
    let mut value = json_of(&sample());
    value["num_classes"] = 3.into();
    let problems = problems_of(&value);
    assert_eq!(problems, ["`num_classes` is 3 but `classes` lists 2 names"]);
}

#[test]
fn semantic_problems_are_all_listed() {
    let mut m = sample();
    m.classes.push("cat".into());
    m.num_classes = 3;
    m.preprocess.std = [1.0, 0.0, 1.0];
    m.thresholds.default = 1.5;
    m.thresholds.per_class.insert("doge".into(), 0.4);
    m.outputs.probs = "logits".into();
    let err = m.validate().unwrap_err().to_string();
    for needle in [
        "\"cat\" appears twice",
        "`preprocess.std`",
        "`thresholds.default` is 1.5",
        "\"doge\"",
        "repeats the output name",
        "re-export the model",
    ] {
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
    }
}

#[test]
fn type_errors_name_the_field_path() {
    let mut value = json_of(&sample());
    value["input"]["width"] = "wide".into();
    let problems = problems_of(&value);
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("`input.width`: invalid type"),
        "{problems:?}"
    );
}

#[test]
fn other_json_and_garbage_are_rejected_with_the_file_name() {
    let err = Manifest::parse("{\"format\": \"onnx\"}", Path::new("x.json")).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("x.json") && msg.contains("not a csra manifest"),
        "{msg}"
    );

    let err = Manifest::parse("{ nope", Path::new("x.json")).unwrap_err();
    assert!(
        matches!(err, ManifestError::Syntax { line: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().starts_with("x.json:1:"), "{err}");

    let err = Manifest::read(Path::new("/nonexistent/m.manifest.json")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/m.manifest.json"));
}

#[test]
fn class_count_against_the_network() {
    let m = sample();
    assert!(m
        .expect_num_classes(Path::new("m.json"), "the ONNX output `logits`", 2)
        .is_ok());
    let err = m
        .expect_num_classes(Path::new("m.json"), "the ONNX output `logits`", 80)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("lists 2 classes but the ONNX output `logits` has 80"),
        "{err}"
    );
}

#[test]
fn preprocess_maps_pixels_as_documented() {
    let official = Preprocess::official();
    assert_eq!(official.normalize(0, 0), 0.0);
    assert_eq!(official.normalize(255, 2), 1.0);
    // The shipped ImageNet MobileNetV2 expects x / 127.5 - 1.
    let mobilenet = Preprocess {
        scale: 1.0 / 127.5,
        mean: [1.0; 3],
        ..Preprocess::official()
    };
    assert_eq!(mobilenet.normalize(0, 1), -1.0);
    assert!((mobilenet.normalize(255, 1) - 1.0).abs() < 1e-6);
}

#[test]
fn an_input_larger_than_the_bound_is_refused_before_anything_is_allocated() {
    let mut value = json_of(&sample());
    value["input"]["width"] = 100_000.into();
    value["input"]["height"] = 100_000.into();
    let problems = problems_of(&value);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("100000x100000"), "{problems:?}");
    assert!(problems[0].contains("re-export"), "{problems:?}");
    value["input"]["width"] = MAX_INPUT_SIDE.into();
    value["input"]["height"] = MAX_INPUT_SIDE.into();
    Manifest::parse(&value.to_string(), Path::new("m.manifest.json")).unwrap();
}
