//! Helpers shared by csra-host's integration tests: the binary, the real data, the Python
//! reference, and tensor comparisons. Each test file uses some of them.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tch::{Kind, Tensor};

const SETUP: &str = "python3 -m venv .venv && .venv/bin/pip install -r requirements/test.txt \
                     (in the workspace root), then run with CSRA_PYTHON=.venv/bin/python";

/// Runs the `csra-host` binary.
pub fn host(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_csra-host"))
        .args(args)
        .output()
        .expect("the csra-host binary runs")
}

/// Runs `csra-host` and returns its standard output; fails the test with its standard error
/// when it fails.
pub fn ok(args: &[&str]) -> String {
    let out = host(args);
    assert!(
        out.status.success(),
        "csra-host {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("csra-host prints UTF-8")
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared real data: `$CSRA_DATA_DIR`, or `../shared/data` beside the checkout. Panics
/// when it is missing: these tests check real data and must not pass vacuously.
pub fn data_dir() -> PathBuf {
    let dir = std::env::var_os("CSRA_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/data"));
    assert!(
        dir.join("README.md").is_file(),
        "real test data not found at {}: check out shared/ beside this repository or set \
         CSRA_DATA_DIR to the folder holding weights/ and photos/",
        dir.display()
    );
    dir
}

/// The interpreter from `CSRA_PYTHON` (relative paths from the workspace root), or `None`
/// after saying on stderr that `test` is skipped; a failure under
/// `CSRA_REQUIRE_PYTHON_REFERENCE=1`.
pub fn python(test: &str) -> Option<PathBuf> {
    match std::env::var_os("CSRA_PYTHON").filter(|p| !p.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            Some(if path.is_relative() && path.components().count() > 1 {
                workspace_root().join(path)
            } else {
                path
            })
        }
        None => {
            let required = std::env::var("CSRA_REQUIRE_PYTHON_REFERENCE").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "CSRA_REQUIRE_PYTHON_REFERENCE=1 but CSRA_PYTHON is not set; set up the \
                 PyTorch reference: {SETUP}"
            );
            let _ = writeln!(
                std::io::stderr(),
                "{test} skipped: set CSRA_PYTHON to a Python with requirements/test.txt ({SETUP})"
            );
            None
        }
    }
}

/// Runs `tests/python/<script>` with `args`, panicking with its stderr when it fails.
pub fn run_python(python: &Path, script: &str, args: &[&Path]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let output = Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run CSRA_PYTHON={}: {e}; {SETUP}", python.display()));
    assert!(
        output.status.success(),
        "{} {} failed ({}):\n{}\nIs requirements/test.txt installed? {SETUP}",
        python.display(),
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The raw bytes of a tensor's values in row-major order.
pub fn bytes(tensor: &Tensor) -> Vec<u8> {
    let tensor = tensor.contiguous();
    let mut out = vec![0u8; tensor.numel() * tensor.kind().elt_size_in_bytes()];
    tensor.copy_data_u8(&mut out, tensor.numel());
    out
}

/// The values of a tensor as f32, in row-major order.
pub fn values(tensor: &Tensor) -> Vec<f32> {
    let tensor = tensor.to_kind(Kind::Float).contiguous().flatten(0, -1);
    Vec::<f32>::try_from(&tensor).unwrap()
}

/// `max |a - b| / max |b|` over two tensors of the same shape.
pub fn relative_error(actual: &Tensor, expected: &Tensor) -> f64 {
    assert_eq!(actual.size(), expected.size(), "shapes differ");
    let diff = (actual - expected).abs().max().double_value(&[]);
    let scale = expected.abs().max().double_value(&[]);
    diff / scale.max(f64::MIN_POSITIVE)
}
