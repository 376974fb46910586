//! Helpers shared by csra-host's integration tests: the binary, the Python reference scripts
//! (on csra-test-support's interpreter) and tensor comparisons. Each test file uses some of them.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

// Not every test file uses both.
#[allow(unused_imports)]
pub use csra_test_support::{data_dir, python};
use tch::{Kind, Tensor};

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

/// Runs `tests/python/<script>` with `args` on [`python`], panicking with its stderr when it
/// fails.
pub fn run_python(script: &str, args: &[&Path]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    csra_test_support::run_python(&script, args);
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
