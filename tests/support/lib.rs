//! Helpers shared by the end-to-end tests: where the real data lives.

use std::path::{Path, PathBuf};

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits inside the workspace root")
        .to_owned()
}

/// The shared real data: `$CSRA_DATA_DIR`, or `../shared/data` beside the checkout.
///
/// Panics with the fix when it is missing: these tests check real data and must not pass
/// vacuously without it.
pub fn data_dir() -> PathBuf {
    let dir = std::env::var_os("CSRA_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/data"));
    assert!(
        dir.join("README.md").is_file(),
        "real test data not found at {}: check out shared/ beside this repository or set \
         CSRA_DATA_DIR to the folder holding coco-mini/, voc2007-imagesets/ and weights/",
        dir.display()
    );
    dir
}
