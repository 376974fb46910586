//! `src/pb/onnx.rs`, csra-onnx's ONNX schema, is exactly what protox and prost-build make of
//! `onnx.proto` from the `onnx` Python package that `requirements/test.txt` pins, turned into
//! proto3 as ONNX's `gen_proto.py` does it. The `.proto` comes from the package (found through
//! `CSRA_PYTHON`, as the ONNX Runtime test finds it), so no copy of it lives in this repository.
//!
//! After upgrading the pinned `onnx`, `CSRA_WRITE_SCHEMA=1 cargo test -p csra-onnx --test schema`
//! rewrites the file; review the diff like any other change.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use csra_test_support::{python, PYTHON_SETUP};

/// The `onnx` version the checked-in schema was generated from (`requirements/test.txt`).
const ONNX_VERSION: &str = "1.23.2";

/// The checked-in generated schema.
fn checked_in() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/pb/onnx.rs")
}

/// The `onnx` package's version and the path of its `onnx.proto`.
fn onnx_proto(python: &Path) -> (String, PathBuf) {
    let output = Command::new(python)
        .args([
            "-c",
            "import onnx, pathlib; print(onnx.__version__); \
             print(pathlib.Path(onnx.__file__).with_name('onnx.proto'))",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run CSRA_PYTHON={}: {e}; {}",
                python.display(),
                PYTHON_SETUP
            )
        });
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "`import onnx` failed in {}: {}; {}",
        python.display(),
        String::from_utf8_lossy(&output.stderr),
        PYTHON_SETUP
    );
    let mut lines = stdout.lines();
    let version = lines.next().unwrap().to_owned();
    (version, PathBuf::from(lines.next().unwrap()))
}

/// `gen_proto.py`'s proto3 conversion: the proto3 syntax line and no `optional` labels, so
/// prost writes plain scalar fields.
fn to_proto3(proto2: &str) -> String {
    let mut proto3 = String::with_capacity(proto2.len());
    for line in proto2.lines() {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let syntax = body.split_whitespace().collect::<String>();
        if syntax == "syntax=\"proto2\";" {
            proto3.push_str(indent);
            proto3.push_str("syntax = \"proto3\";");
        } else if let Some(field) = body.strip_prefix("optional ") {
            proto3.push_str(indent);
            proto3.push_str(field);
        } else {
            proto3.push_str(line);
        }
        proto3.push('\n');
    }
    proto3
}

/// Generates the Rust schema from `onnx.proto` in a scratch folder and returns it.
fn generate(proto: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let proto2 = std::fs::read_to_string(proto)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", proto.display()));
    std::fs::write(dir.path().join("onnx.proto3"), to_proto3(&proto2)).unwrap();
    let descriptors = protox::compile(["onnx.proto3"], [dir.path()]).unwrap();
    prost_build::Config::new()
        .out_dir(dir.path())
        .compile_fds(descriptors)
        .unwrap();
    std::fs::read_to_string(dir.path().join("onnx.rs")).unwrap()
}

#[test]
fn proto3_conversion_drops_optional_and_sets_the_syntax() {
    let proto2 = "syntax = \"proto2\";\nmessage A {\n  optional string name = 1;\n  \
                  repeated int64 dims = 2;\n  // optional in a comment stays\n}\n";
    assert_eq!(
        to_proto3(proto2),
        "syntax = \"proto3\";\nmessage A {\n  string name = 1;\n  repeated int64 dims = 2;\n  \
         // optional in a comment stays\n}\n"
    );
}

#[test]
fn checked_in_schema_is_what_onnx_proto_generates() {
    let python = python();
    let (version, proto) = onnx_proto(&python);
    assert_eq!(
        version,
        ONNX_VERSION,
        "{} has onnx {version}, but src/pb/onnx.rs comes from onnx {ONNX_VERSION}; install \
         requirements/test.txt, or after upgrading the pin regenerate the schema with \
         CSRA_WRITE_SCHEMA=1 and update ONNX_VERSION",
        python.display()
    );
    let generated = generate(&proto);
    if std::env::var("CSRA_WRITE_SCHEMA").is_ok_and(|v| v == "1") {
        std::fs::write(checked_in(), &generated).unwrap();
        return;
    }
    let current = std::fs::read_to_string(checked_in()).unwrap();
    let first_difference = generated
        .lines()
        .zip(current.lines())
        .position(|(a, b)| a != b)
        .map_or_else(
            || "the lengths differ".to_owned(),
            |i| format!("line {} differs", i + 1),
        );
    assert!(
        generated == current,
        "src/pb/onnx.rs is not what {} generates ({first_difference}); regenerate it with \
         CSRA_WRITE_SCHEMA=1 cargo test -p csra-onnx --test schema",
        proto.display()
    );
}
