//! Shared by csra-edge's integration tests: where the real photos and the system tools are.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `../shared` beside the checkout, or `$CSRA_SHARED_DIR`.
pub fn shared_dir() -> PathBuf {
    std::env::var_os("CSRA_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared"))
}

/// Real photos from `../shared/data/photos` (or `$CSRA_DATA_DIR/photos`), by file name.
pub fn photos(names: &[&str]) -> Vec<PathBuf> {
    let dir = std::env::var_os("CSRA_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| shared_dir().join("data"))
        .join("photos");
    names
        .iter()
        .map(|name| {
            let path = dir.join(name);
            assert!(
                path.is_file(),
                "{} is missing: the tests need the shared data beside the checkout \
                 (or CSRA_DATA_DIR)",
                path.display()
            );
            path
        })
        .collect()
}

/// Whether a test whose system tool is missing must fail rather than skip:
/// `scripts/test.sh` sets `CSRA_REQUIRE_SYSTEM_TOOLS=1`, after installing them.
pub fn tools_required() -> bool {
    std::env::var("CSRA_REQUIRE_SYSTEM_TOOLS").is_ok_and(|v| v == "1")
}

/// Reports a missing tool: a failure under the test command, a skip (said on stderr)
/// otherwise. Returns normally only when the test should be skipped.
pub fn missing_tool(what: &str, fix: &str) {
    assert!(
        !tools_required(),
        "CSRA_REQUIRE_SYSTEM_TOOLS=1 but {what} is missing; {fix}"
    );
    eprintln!("skipped: {what} is missing ({fix}; scripts/test.sh does this)");
}
