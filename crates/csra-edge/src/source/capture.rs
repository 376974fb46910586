//! The camera capture thread: it reads a [`FrameSource`] as fast as the source delivers and
//! always hands the pipeline the **newest** frame, reopening the source after it is lost.
//!
//! Frames pass through a single-slot mailbox, never a queue: a frame the pipeline has not
//! taken yet is replaced by the next one and counted as dropped, so a pipeline slower than the
//! camera always works on a frame at most one frame interval old (plus its own latency), instead
//! of falling further and further behind.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::source::{Frame, FrameSource, FrameStream, SourceError, StreamStats, StreamStopper};

/// How the capture thread waits for frames and reopens a lost source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// A frame that does not arrive within this counts as a time-out, and the source is
    /// reopened.
    pub frame_timeout: Duration,
    /// The wait before the first reopen attempt; it doubles after each failed attempt.
    pub initial_delay: Duration,
    /// The longest wait between attempts.
    pub max_delay: Duration,
    /// Failed reopen attempts in a row after which capture gives up and the stream reports
    /// the last error; `None` retries forever (a camera on a fleet device may come back hours
    /// later).
    pub give_up_after: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            frame_timeout: Duration::from_secs(2),
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            give_up_after: None,
        }
    }
}

impl ReconnectPolicy {
    /// The wait before reopen attempt `attempt` (0-based): `initial_delay · 2^attempt`, capped
    /// at `max_delay`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial_delay
            .saturating_mul(factor)
            .min(self.max_delay)
    }
}

/// Why the capture thread stopped, as the stream reports it.
enum Ending {
    /// Still running.
    Running,
    /// Stop was requested; the stream ends with `Ok(None)`.
    Stopped,
    /// The source could not be (re)opened; the stream reports this error once, then ends.
    Failed(SourceError),
}

/// What the capture thread and the pipeline share.
struct Mailbox {
    /// The newest frame not yet taken.
    slot: Option<Frame>,
    stats: StreamStats,
    ending: Ending,
}

struct Shared {
    mailbox: Mutex<Mailbox>,
    /// Signalled when a frame arrives or the capture ends (wakes the pipeline), and when stop
    /// is requested (wakes the capture thread out of a back-off wait).
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Mailbox> {
        // A panic while holding the lock leaves only counters and an Option behind, which
        // are still consistent; keep going rather than propagate the poison.
        self.mailbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn stop(&self) {
        let mut mailbox = self.lock();
        if matches!(mailbox.ending, Ending::Running) {
            mailbox.ending = Ending::Stopped;
        }
        // A frame nobody will take now is as lost as one replaced by a newer frame.
        if mailbox.slot.take().is_some() {
            mailbox.stats.dropped += 1;
        }
        drop(mailbox);
        self.changed.notify_all();
    }

    /// Ends the stream with `e` (unless it is already stopping).
    fn fail(&self, e: SourceError) {
        let mut mailbox = self.lock();
        if matches!(mailbox.ending, Ending::Running) {
            mailbox.ending = Ending::Failed(e);
        }
        drop(mailbox);
        self.changed.notify_all();
    }

    fn stopping(&self) -> bool {
        !matches!(self.lock().ending, Ending::Running)
    }

    /// Sleeps `delay` unless stop is requested first; returns whether to go on.
    fn wait_unless_stopped(&self, delay: Duration) -> bool {
        let deadline = Instant::now() + delay;
        let mut mailbox = self.lock();
        loop {
            if !matches!(mailbox.ending, Ending::Running) {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            mailbox = self
                .changed
                .wait_timeout(mailbox, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

/// Ends a [`Capture`] from another thread (a SIGINT handler): after [`StopHandle::stop`],
/// the stream's `next()` returns `Ok(None)` and the capture thread exits.
#[derive(Clone)]
pub struct StopHandle(Arc<Shared>);

impl StopHandle {
    /// Requests the capture to stop; returns at once.
    pub fn stop(&self) {
        self.0.stop();
    }
}

/// A frame source read by its own capture thread, delivering the newest frame.
pub struct Capture {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    /// Starts the capture thread: it opens `source` and reads it until stopped.
    ///
    /// The first open is not retried: a missing camera or an unsupported format at start-up
    /// is a configuration error, reported by the first [`FrameStream::next`]. After the
    /// source has streamed once, any error (lost stream, time-out, failed reopen) leads to a
    /// reopen with `policy`'s back-off.
    pub fn spawn(source: Box<dyn FrameSource>, policy: ReconnectPolicy) -> Capture {
        let shared = Arc::new(Shared {
            mailbox: Mutex::new(Mailbox {
                slot: None,
                stats: StreamStats::default(),
                ending: Ending::Running,
            }),
            changed: Condvar::new(),
        });
        let name = source.name().to_owned();
        let worker = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name(format!("capture {name}"))
            .spawn(move || {
                let capture = CaptureLoop::new(source, policy, Arc::clone(&worker));
                // A panic in the source (v4l unwraps some driver answers) must end the stream
                // with an error, not leave the pipeline waiting for frames forever.
                if panic::catch_unwind(AssertUnwindSafe(|| capture.run())).is_err() {
                    worker.fail(SourceError::Lost {
                        what: name,
                        reason: "the capture thread panicked".into(),
                    });
                }
            });
        match thread {
            Ok(thread) => Capture {
                shared,
                thread: Some(thread),
            },
            Err(e) => {
                shared.lock().ending = Ending::Failed(SourceError::Io {
                    what: "capture thread".into(),
                    source: e,
                });
                Capture {
                    shared,
                    thread: None,
                }
            }
        }
    }

    /// A handle that stops this capture from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.shared))
    }

    /// Stops the capture thread and waits for it to exit; [`FrameStream::stats`] is final
    /// afterwards.
    pub fn shutdown(&mut self) {
        self.shared.stop();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("the capture thread panicked");
            }
        }
    }
}

impl FrameStream for Capture {
    /// Blocks until a frame newer than the last one taken arrives; `Ok(None)` after stop.
    fn next(&mut self) -> Result<Option<Frame>, SourceError> {
        let mut mailbox = self.shared.lock();
        loop {
            // Taking the ending out leaves Stopped behind: an error is reported once.
            match std::mem::replace(&mut mailbox.ending, Ending::Stopped) {
                Ending::Running => mailbox.ending = Ending::Running,
                Ending::Stopped => return Ok(None),
                Ending::Failed(e) => return Err(e),
            }
            if let Some(frame) = mailbox.slot.take() {
                return Ok(Some(frame));
            }
            mailbox = self
                .shared
                .changed
                .wait(mailbox)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn stats(&self) -> StreamStats {
        self.shared.lock().stats
    }

    fn is_live(&self) -> bool {
        true
    }

    fn stopper(&self) -> Option<StreamStopper> {
        let handle = self.stop_handle();
        Some(Box::new(move || handle.stop()))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The capture thread's state.
struct CaptureLoop {
    source: Box<dyn FrameSource>,
    policy: ReconnectPolicy,
    shared: Arc<Shared>,
}

impl CaptureLoop {
    fn new(source: Box<dyn FrameSource>, policy: ReconnectPolicy, shared: Arc<Shared>) -> Self {
        CaptureLoop {
            source,
            policy,
            shared,
        }
    }

    fn run(mut self) {
        if let Err(e) = self.source.open() {
            self.shared.fail(e);
            return;
        }
        while !self.shared.stopping() {
            match self.source.next_frame(self.policy.frame_timeout) {
                Ok(frame) => self.deliver(frame),
                Err(SourceError::Corrupt { what, reason }) => {
                    log::debug!("{what}: corrupt frame skipped: {reason}");
                    self.shared.lock().stats.corrupt += 1;
                }
                Err(e) => {
                    log::warn!("{e}; reopening");
                    self.shared.lock().stats.source_errors += 1;
                    self.source.close();
                    if !self.reopen() {
                        break;
                    }
                }
            }
        }
        self.source.close();
    }

    /// Puts `frame` in the slot, replacing (and counting) an untaken one.
    fn deliver(&self, frame: Frame) {
        let mut mailbox = self.shared.lock();
        if !matches!(mailbox.ending, Ending::Running) {
            mailbox.stats.dropped += 1;
            return;
        }
        if mailbox.slot.replace(frame).is_some() {
            mailbox.stats.dropped += 1;
        }
        drop(mailbox);
        self.shared.changed.notify_all();
    }

    /// Reopens the source with back-off; false when stopped or given up.
    fn reopen(&mut self) -> bool {
        let mut attempt = 0;
        loop {
            if !self.shared.wait_unless_stopped(self.policy.delay(attempt)) {
                return false;
            }
            match self.source.open() {
                Ok(()) => {
                    log::info!("{}: reconnected", self.source.name());
                    self.shared.lock().stats.reconnects += 1;
                    return true;
                }
                Err(e) => {
                    attempt += 1;
                    self.shared.lock().stats.source_errors += 1;
                    if self
                        .policy
                        .give_up_after
                        .is_some_and(|limit| attempt >= limit)
                    {
                        log::error!("{e}; giving up after {attempt} attempts");
                        self.shared.fail(e);
                        return false;
                    }
                    // A camera may stay away for hours: say so at growing intervals only.
                    let delay = self.policy.delay(attempt);
                    if attempt.is_power_of_two() {
                        log::warn!("{e}; still retrying (attempt {attempt}, next in {delay:?})");
                    } else {
                        log::debug!("{e}; retrying in {delay:?}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_the_cap() {
        let policy = ReconnectPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..ReconnectPolicy::default()
        };
        let delays: Vec<u128> = (0..6).map(|a| policy.delay(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.delay(u32::MAX), Duration::from_millis(1000));
    }
}
