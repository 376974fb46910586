//! Builds the TensorRT shim `libcsra_trt.so` when TensorRT's and CUDA's headers are found, and
//! does nothing C++ otherwise, so the crate builds and tests everywhere.
//!
//! The shim is its own shared library, never linked into the Rust binary: csra-trt loads it at
//! run time, so a `csra-edge` built here runs on machines without TensorRT (see README.md).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shim's file name, as the Rust side looks for it.
const LIBRARY: &str = "libcsra_trt.so";

fn main() {
    for var in [
        "TENSORRT_INCLUDE_DIR",
        "TENSORRT_LIB_DIR",
        "CUDA_INCLUDE_DIR",
        "CUDA_LIB_DIR",
        "CSRA_TRT_NO_SHIM",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    println!("cargo::rerun-if-changed=shim/csra_trt.cpp");
    println!("cargo::rerun-if-changed=shim/csra_trt.h");
    println!("cargo::rustc-check-cfg=cfg(csra_trt_shim)");
    if env::var_os("CSRA_TRT_NO_SHIM").is_some() {
        return;
    }
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    // Cross builds take TensorRT and CUDA from the variables only: the build machine's own
    // /usr/include and /usr/local/cuda hold the build machine's architecture.
    let native = env::var("HOST").ok() == env::var("TARGET").ok();
    let pick = |dirs: &'static [&'static str]| if native { dirs } else { &[] };
    let mut trt_candidates = vec![multiarch.as_str()];
    trt_candidates.extend(pick(&["/usr/include", "/usr/local/TensorRT/include"]));
    let Some(trt_include) = find_dir(
        "TENSORRT_INCLUDE_DIR",
        &trt_candidates,
        &["NvInfer.h", "NvOnnxParser.h"],
    ) else {
        return;
    };
    let Some(cuda_include) = find_dir(
        "CUDA_INCLUDE_DIR",
        pick(&["/usr/local/cuda/include", "/usr/include"]),
        &["cuda_runtime_api.h"],
    ) else {
        return;
    };
    let trt_lib = env::var("TENSORRT_LIB_DIR").unwrap_or(format!("/usr/lib/{arch}-linux-gnu"));
    let cuda_lib = env::var("CUDA_LIB_DIR").unwrap_or("/usr/local/cuda/lib64".to_owned());

    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let library = out_dir.join(LIBRARY);
    let compiler = cc::Build::new()
        .cpp(true)
        .cargo_metadata(false)
        .get_compiler();
    let mut cmd = Command::new(compiler.path());
    // TensorRT's and CUDA's headers are system headers: their own warnings are not ours, while
    // the shim itself must compile warning-free.
    cmd.args([
        "-std=c++17",
        "-O2",
        "-fPIC",
        "-shared",
        "-fvisibility=hidden",
    ])
    .args(["-Wall", "-Wextra", "-Werror"])
    .arg("-Ishim")
    .arg("-isystem")
    .arg(&trt_include)
    .arg("-isystem")
    .arg(&cuda_include)
    .arg("shim/csra_trt.cpp")
    .arg("-o")
    .arg(&library)
    .arg(format!("-L{trt_lib}"))
    .arg(format!("-L{cuda_lib}"))
    .arg(format!("-Wl,-rpath,{cuda_lib}"))
    .args([
        "-Wl,--no-undefined",
        "-lnvinfer",
        "-lnvonnxparser",
        "-lcudart",
    ]);
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C++ compiler {:?}: {e}", compiler.path()));
    if !status.success() {
        panic!(
            "compiling the TensorRT shim failed (headers {} and {}); fix the headers or set \
             CSRA_TRT_NO_SHIM=1 to build without TensorRT: {cmd:?}",
            trt_include.display(),
            cuda_include.display()
        );
    }
    // Next to the binaries of this profile (target/<profile>/), where csra-trt looks first
    // after CSRA_TRT_LIBRARY: `cargo build --release` on a Jetson leaves a working pair.
    if let Some(profile_dir) = out_dir.ancestors().nth(3) {
        copy_atomic(&library, &profile_dir.join(LIBRARY));
    }
    println!("cargo::rustc-cfg=csra_trt_shim");
    println!(
        "cargo::rustc-env=CSRA_TRT_BUILT_LIBRARY={}",
        library.display()
    );
}

/// The first of `$var` or `candidates` holding every file of `needs`. A `$var` that does not
/// hold them is an error: the user asked for that directory.
fn find_dir(var: &str, candidates: &[&str], needs: &[&str]) -> Option<PathBuf> {
    let holds = |dir: &Path| needs.iter().all(|f| dir.join(f).is_file());
    if let Some(dir) = env::var_os(var) {
        let dir = PathBuf::from(dir);
        if !holds(&dir) {
            panic!(
                "{var}={} does not hold {}",
                dir.display(),
                needs.join(" and ")
            );
        }
        return Some(dir);
    }
    candidates.iter().map(PathBuf::from).find(|d| holds(d))
}

/// Copies `from` to `to` through a temporary file and a rename, so a running csra-edge never
/// loads half a library.
fn copy_atomic(from: &Path, to: &Path) {
    let tmp = to.with_extension("so.tmp");
    std::fs::copy(from, &tmp)
        .and_then(|_| std::fs::rename(&tmp, to))
        .unwrap_or_else(|e| panic!("cannot copy {} to {}: {e}", from.display(), to.display()));
}
