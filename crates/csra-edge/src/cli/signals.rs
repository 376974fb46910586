//! SIGINT and SIGTERM set a stop flag the pipeline checks between frames, and run the hooks
//! of streams that may be waiting for a frame; a second signal exits at once, and so does a
//! signal during start-up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;

/// The exit code of a second, impatient signal (128 + SIGINT).
const FORCED_EXIT: i32 = 130;

/// What to run on the first signal besides setting the flag. Signals belong to the process,
/// so their hooks do too.
static HOOKS: Mutex<Vec<Box<dyn Fn() + Send>>> = Mutex::new(Vec::new());

/// Runs `hook` when the first SIGINT or SIGTERM arrives: for what must wake up, such as a
/// camera stream waiting for a camera to come back.
#[cfg(any(feature = "camera", feature = "gstreamer"))]
pub fn on_stop(hook: impl Fn() + Send + 'static) {
    HOOKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Box::new(hook));
}

/// Whether the run loop has started. Before, nothing has been processed and nothing can be
/// lost, so a signal exits at once: start-up (loading a network, building a TensorRT engine,
/// starting threads) can take minutes and never looks at the stop flag.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Marks the start of the run loop: from now on a first signal stops after the current frame.
pub fn running() {
    RUNNING.store(true, Ordering::SeqCst);
}

/// Installs the handler and returns the flag it sets.
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || {
        if !RUNNING.load(Ordering::SeqCst) {
            log::info!("stopped by a signal during start-up, before any frame");
            std::process::exit(0);
        }
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(FORCED_EXIT);
        }
        log::info!("stopping after the current frame (signal again to exit at once)");
        for hook in HOOKS.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            hook();
        }
    })
    .context("installing the SIGINT/SIGTERM handler")?;
    Ok(stop)
}
