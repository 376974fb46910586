//! What the csra test suites share: where the workspace and the real data are, the Python
//! interpreter with the pinned references, and the failure for a missing system tool.
//!
//! A missing reference fails the test that needs it, with what to install or set: a test that
//! passed without its reference would prove nothing. A test that may legitimately not run is
//! marked `#[ignore = "reason"]` instead.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// How to get the pinned Python references (`requirements/test.txt`).
pub const PYTHON_SETUP: &str = "run ./scripts/test.sh, which builds .venv with \
     requirements/test.txt; or in the workspace root run `python3 -m venv .venv && \
     .venv/bin/pip install -r requirements/test.txt`; or set CSRA_PYTHON to a Python that \
     has those packages";

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("csra-test-support sits in crates/ of the workspace")
        .to_owned()
}

/// `$CSRA_SHARED_DIR`, or `../shared` beside the checkout: the real data and the tools.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("CSRA_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared"))
}

/// The shared real data: `$CSRA_DATA_DIR`, or `../shared/data` beside the checkout.
///
/// Panics with the fix when it is missing: the tests that read it check real data and must not
/// pass vacuously without it.
pub fn data_dir() -> PathBuf {
    let dir = std::env::var_os("CSRA_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/data"));
    assert!(
        dir.join("README.md").is_file(),
        "real test data not found at {}: check out shared/ beside this repository or set \
         CSRA_DATA_DIR to the folder holding coco-mini/, voc2007-imagesets/, weights/ and \
         photos/",
        dir.display()
    );
    dir
}

/// The Python with the pinned references: `$CSRA_PYTHON` (see [`resolve`]), else the
/// workspace's `.venv/bin/python` as `scripts/test.sh` builds it.
///
/// Panics with [`PYTHON_SETUP`] when neither is there.
pub fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("CSRA_PYTHON").filter(|p| !p.is_empty()) {
        let python = resolve(&path);
        assert!(
            python.components().count() == 1 || python.is_file(),
            "CSRA_PYTHON={} does not exist: {PYTHON_SETUP}",
            python.display()
        );
        return python;
    }
    let venv = workspace_root().join(".venv/bin/python");
    assert!(
        venv.is_file(),
        "no Python reference: CSRA_PYTHON is not set and {} does not exist; {PYTHON_SETUP}",
        venv.display()
    );
    venv
}

/// Runs the Python reference `script` on [`python`] with `args` and returns its standard
/// output; panics with its standard error and [`PYTHON_SETUP`] when it cannot start or fails.
pub fn run_python<I, S>(script: &Path, args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let python = python();
    let output = std::process::Command::new(&python)
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {PYTHON_SETUP}", python.display()));
    assert!(
        output.status.success(),
        "{} {} failed ({}):\n{}\nIs requirements/test.txt installed? {PYTHON_SETUP}",
        python.display(),
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A path given in an environment variable: a relative path is taken from the workspace root,
/// a bare name (`python3`) is left for `PATH`.
pub fn resolve(path: &OsStr) -> PathBuf {
    let path = PathBuf::from(path);
    if path.is_relative() && path.components().count() > 1 {
        workspace_root().join(path)
    } else {
        path
    }
}

/// Fails the test for a missing system tool, saying what it is and how to get it.
pub fn missing_tool(what: &str, fix: &str) -> ! {
    panic!("{what} is missing: {fix}")
}

/// Compiles the TensorRT stand-in (`crates/csra-trt/tests/standin/csra_trt_standin.c`, the
/// shim's C ABI without TensorRT or a GPU) into `dir` with the preprocessor `defines` (e.g.
/// `STANDIN_ABI=999`), with the system C compiler, and returns the library's path.
pub fn trt_standin(dir: &Path, defines: &[&str]) -> PathBuf {
    let crate_dir = workspace_root().join("crates/csra-trt");
    let tag: String = defines
        .concat()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let out = dir.join(format!("libcsra_trt_standin{tag}.so"));
    let mut cmd = std::process::Command::new("cc");
    cmd.args([
        "-std=c11", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror",
    ])
    .arg("-I")
    .arg(crate_dir.join("shim"))
    .arg(crate_dir.join("tests/standin/csra_trt_standin.c"))
    .arg("-o")
    .arg(&out)
    .arg("-lm")
    .args(defines.iter().map(|d| format!("-D{d}")));
    let status = cmd.status().unwrap_or_else(|e| {
        missing_tool(&format!("a C compiler `cc` ({e})"), "apt-get install gcc")
    });
    assert!(status.success(), "compiling the stand-in failed: {cmd:?}");
    out
}

/// The `libonnxruntime.so` inside the Python reference's `onnxruntime` wheel, for the ONNX
/// Runtime backend's tests.
///
/// Panics with [`PYTHON_SETUP`] when the wheel or its library is missing.
pub fn onnxruntime_library() -> PathBuf {
    let output = std::process::Command::new(python())
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), 'capi'))",
        ])
        .output()
        .unwrap_or_else(|e| panic!("running the Python reference: {e}; {PYTHON_SETUP}"));
    assert!(
        output.status.success(),
        "the Python reference has no onnxruntime: {}; {PYTHON_SETUP}",
        String::from_utf8_lossy(&output.stderr)
    );
    let capi = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    std::fs::read_dir(&capi)
        .unwrap_or_else(|e| panic!("{}: {e}; {PYTHON_SETUP}", capi.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(OsStr::to_str)
                .is_some_and(|name| name.starts_with("libonnxruntime.so"))
        })
        .unwrap_or_else(|| {
            panic!(
                "no libonnxruntime.so* in {}; {PYTHON_SETUP}",
                capi.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_taken_from_the_workspace_root_and_bare_names_left_for_path() {
        let root = workspace_root();
        assert!(root.join("Cargo.toml").is_file(), "{}", root.display());
        assert_eq!(
            resolve(OsStr::new(".venv/bin/python")),
            root.join(".venv/bin/python")
        );
        assert_eq!(resolve(OsStr::new("python3")), PathBuf::from("python3"));
        assert_eq!(
            resolve(OsStr::new("/usr/bin/python3")),
            PathBuf::from("/usr/bin/python3")
        );
    }
}
