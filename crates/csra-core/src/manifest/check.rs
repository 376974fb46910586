//! The manifest's rules, as lists of problems so a reader sees all of them at once.

use serde_json::Value;

use super::{Manifest, ResizePolicy, MANIFEST_FORMAT, MANIFEST_VERSION, MAX_INPUT_SIDE};
use crate::labels::LabelSet;

/// Every required field, as a dotted path, with what it holds (for the "missing" message).
const REQUIRED: &[(&str, &str)] = &[
    ("model", "the ONNX file name, relative to the manifest"),
    ("num_classes", "the number of classes"),
    ("classes", "the class names in output order"),
    ("input", "the input tensor"),
    ("input.name", "the ONNX input name"),
    ("input.layout", "\"nchw\" or \"nhwc\""),
    ("input.width", "the input width in pixels"),
    ("input.height", "the input height in pixels"),
    ("input.color", "\"rgb\" or \"bgr\""),
    ("preprocess", "the pixel pipeline"),
    (
        "preprocess.resize",
        "the resize policy, e.g. {\"kind\": \"squash\"}",
    ),
    ("preprocess.scale", "the factor applied to 0..255 pixels"),
    ("preprocess.mean", "three per-channel means"),
    ("preprocess.std", "three per-channel standard deviations"),
    ("head", "the head spec"),
    ("head.variant", "\"csra\", \"max\" or \"baseline\""),
    ("head.normalize", "whether class rows are L2-normalised"),
    ("outputs", "the output names"),
    ("outputs.logits", "the name of the logits output"),
    ("outputs.probs", "the name of the probabilities output"),
    ("thresholds", "the decision thresholds"),
    ("thresholds.default", "the default threshold, e.g. 0.5"),
    ("provenance", "where the model came from"),
    ("provenance.backbone", "the backbone architecture"),
    ("provenance.dataset", "the training data"),
    ("provenance.epochs", "the number of training epochs"),
    ("provenance.created_by", "the tool that wrote the manifest"),
];

/// Problems visible before typed parsing: the format marker, the version, missing fields.
pub(super) fn structure(value: &Value) -> Vec<String> {
    let Some(root) = value.as_object() else {
        return vec!["the manifest must be a JSON object".to_owned()];
    };
    let mut problems = Vec::new();
    match root.get("format").and_then(Value::as_str) {
        Some(MANIFEST_FORMAT) => {}
        Some(other) => problems.push(format!(
            "`format` is {other:?}, expected {MANIFEST_FORMAT:?}: this is not a csra manifest"
        )),
        None => problems.push(format!(
            "missing field `format` (must be {MANIFEST_FORMAT:?})"
        )),
    }
    match root.get("version").map(|v| (v, v.as_u64())) {
        None => problems.push(format!(
            "missing field `version` (this csra reads version {MANIFEST_VERSION})"
        )),
        Some((_, Some(v))) if v == u64::from(MANIFEST_VERSION) => {}
        Some((_, Some(v))) if v > u64::from(MANIFEST_VERSION) => {
            // Fields of a newer version may mean other things; listing them would mislead.
            problems.push(format!(
                "manifest version {v} is newer than this csra understands (version \
                 {MANIFEST_VERSION}); upgrade csra"
            ));
            return problems;
        }
        Some((v, _)) => problems.push(format!(
            "unknown manifest version {v}; this csra reads version {MANIFEST_VERSION}"
        )),
    }
    problems.extend(missing_fields(value));
    problems
}

fn missing_fields(root: &Value) -> Vec<String> {
    REQUIRED
        .iter()
        .filter_map(|(path, meaning)| {
            let (parent, key) = match path.rsplit_once('.') {
                Some((parent, key)) => (lookup(root, parent)?, key),
                None => (root, *path),
            };
            // A missing parent is reported once, as itself.
            let object = parent.as_object()?;
            (!object.contains_key(key)).then(|| format!("missing field `{path}` ({meaning})"))
        })
        .collect()
}

fn lookup<'a>(root: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(root, |v, key| v.get(key))
}

/// Problems that tie fields together, checked on a typed manifest.
pub(super) fn semantics(m: &Manifest) -> Vec<String> {
    let mut problems = Vec::new();
    let mut problem = |text: String| problems.push(text);

    if m.format != MANIFEST_FORMAT {
        problem(format!("`format` must be {MANIFEST_FORMAT:?}"));
    }
    if m.version != MANIFEST_VERSION {
        problem(format!("`version` must be {MANIFEST_VERSION}"));
    }
    if m.model.as_os_str().is_empty() {
        problem("`model` is empty; name the ONNX file".to_owned());
    }
    if m.classes.len() != m.num_classes {
        problem(format!(
            "`num_classes` is {} but `classes` lists {} names",
            m.num_classes,
            m.classes.len()
        ));
    }
    if m.classes.is_empty() {
        problem("`classes` is empty".to_owned());
    } else if let Err(err) = LabelSet::new(m.classes.iter().cloned(), "`classes`") {
        problem(err.to_string());
    }
    if m.input.width == 0 || m.input.height == 0 {
        problem(format!(
            "input size {}x{} must be positive",
            m.input.width, m.input.height
        ));
    }
    if m.input.width > MAX_INPUT_SIDE || m.input.height > MAX_INPUT_SIDE {
        problem(format!(
            "input size {}x{} is larger than {MAX_INPUT_SIDE} pixels per side; re-export the model at the size it was trained at (224 to 576 for CSRA)",
            m.input.width, m.input.height
        ));
    }
    if m.input.name.is_empty() {
        problem("`input.name` is empty".to_owned());
    }
    pixel_pipeline(m, &mut problem);
    outputs(m, &mut problem);
    thresholds(m, &mut problem);
    if let Some(metrics) = &m.metrics {
        for (name, value) in &metrics.values {
            if !value.is_finite() {
                problem(format!("metric `{name}` is {value}, not a finite number"));
            }
        }
    }
    problems
}

fn pixel_pipeline(m: &Manifest, problem: &mut impl FnMut(String)) {
    let p = &m.preprocess;
    if !(p.scale.is_finite() && p.scale > 0.0) {
        problem(format!(
            "`preprocess.scale` is {}; it must be a positive number (1/255 for [0, 1] input)",
            p.scale
        ));
    }
    if p.mean.iter().any(|v| !v.is_finite()) {
        problem(format!(
            "`preprocess.mean` {:?} must be finite numbers",
            p.mean
        ));
    }
    if p.std.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
        problem(format!(
            "`preprocess.std` {:?} must be positive numbers (use 1 for no scaling)",
            p.std
        ));
    }
    if let ResizePolicy::CenterCrop { crop_fraction } = p.resize {
        if !(crop_fraction > 0.0 && crop_fraction <= 1.0) {
            problem(format!(
                "`preprocess.resize.crop_fraction` is {crop_fraction}; it must be in (0, 1]"
            ));
        }
    }
}

fn outputs(m: &Manifest, problem: &mut impl FnMut(String)) {
    let o = &m.outputs;
    let mut names = vec![("logits", &o.logits), ("probs", &o.probs)];
    if let Some(attention) = &o.attention {
        names.push(("attention", attention));
    }
    for (i, (field, name)) in names.iter().enumerate() {
        if name.is_empty() {
            problem(format!("`outputs.{field}` is empty"));
        } else if names[..i].iter().any(|(_, other)| other == name) {
            problem(format!(
                "`outputs.{field}` repeats the output name {name:?}"
            ));
        }
    }
}

fn thresholds(m: &Manifest, problem: &mut impl FnMut(String)) {
    let in_unit = |t: f32| (0.0..=1.0).contains(&t);
    if !in_unit(m.thresholds.default) {
        problem(format!(
            "`thresholds.default` is {}; thresholds are probabilities in [0, 1]",
            m.thresholds.default
        ));
    }
    for (class, &t) in &m.thresholds.per_class {
        if !m.classes.contains(class) {
            problem(format!(
                "`thresholds.per_class` names {class:?}, which is not in `classes`"
            ));
        }
        if !in_unit(t) {
            problem(format!(
                "`thresholds.per_class.{class}` is {t}; thresholds are probabilities in [0, 1]"
            ));
        }
    }
}
