//! Embeds libtorch's directory as an rpath, so `csra-host` and its tests run without
//! LD_LIBRARY_PATH. torch-sys (links = "tch") reports where it found libtorch.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
