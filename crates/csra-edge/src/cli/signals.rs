//! SIGINT and SIGTERM set a stop flag the pipeline checks between frames; a second signal
//! exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

/// The exit code of a second, impatient signal (128 + SIGINT).
const FORCED_EXIT: i32 = 130;

/// Installs the handler and returns the flag it sets.
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(FORCED_EXIT);
        }
        log::info!("stopping after the current frame (signal again to exit at once)");
    })
    .context("installing the SIGINT/SIGTERM handler")?;
    Ok(stop)
}
