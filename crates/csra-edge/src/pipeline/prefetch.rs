//! Where the run loop's frames come from, taken from the stream and preprocessed: in turn on
//! the run's own thread, or ahead on a worker thread, so that decoding and resizing the next
//! frame overlaps the network's run of this one.
//!
//! Ahead, two [`Slot`]s (a preprocessor and an input buffer each) go back and forth between
//! the threads through two bounded channels: the worker fills one with the next frame while the
//! network reads the other. At most one frame waits ready, frames keep their order, and nothing
//! is allocated per frame.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::Scope;
use std::time::Instant;

use csra_core::manifest::Manifest;

use crate::preprocess::{PreprocessError, Preprocessor};
use crate::source::{Frame, FrameStream, SourceError, StreamStats, StreamStopper};

/// One frame's working buffers: the preprocessor that wrote the input (its resized picture is
/// that frame's, for attention maps) and the network input. Boxed, so that handing a slot
/// between threads moves a pointer, not the preprocessor's tables.
pub(super) struct Slot {
    pub preprocessor: Box<Preprocessor>,
    pub input: Vec<f32>,
}

impl Slot {
    /// Buffers for `manifest`'s input.
    pub fn new(manifest: &Manifest) -> Self {
        let preprocessor = Box::new(Preprocessor::new(manifest));
        Slot {
            input: vec![0.0; preprocessor.input_len()],
            preprocessor,
        }
    }

    /// Preprocesses `frame` into this slot.
    fn prepare(mut self, frame: Frame) -> Prepared {
        let began = Instant::now();
        let outcome = self.preprocessor.run(&frame, &mut self.input);
        Prepared {
            frame,
            outcome,
            began,
            ended: Instant::now(),
            slot: self,
        }
    }
}

/// A frame taken from the stream and preprocessed into its slot.
pub(super) struct Prepared {
    pub frame: Frame,
    pub slot: Slot,
    /// Whether preprocessing worked; a frame that did not is counted and skipped.
    pub outcome: Result<(), PreprocessError>,
    /// When preprocessing began.
    pub began: Instant,
    /// When it ended.
    pub ended: Instant,
}

/// One pull: what [`FrameStream::next`] gave, with the frame preprocessed.
pub(super) type Pulled = Result<Option<Prepared>, SourceError>;

/// The frames of one run.
pub(super) enum Frames<'a> {
    /// Each frame taken and preprocessed when the loop asks for it.
    InTurn {
        stream: &'a mut dyn FrameStream,
        slot: Option<Slot>,
        manifest: &'a Manifest,
    },
    /// The next frame taken and preprocessed by a worker while the loop runs this one.
    Ahead(Ahead),
}

impl<'a> Frames<'a> {
    /// Frames taken in turn from `stream`.
    pub fn in_turn(stream: &'a mut dyn FrameStream, manifest: &'a Manifest) -> Self {
        Frames::InTurn {
            stream,
            slot: Some(Slot::new(manifest)),
            manifest,
        }
    }

    /// Frames taken ahead from `stream` by a worker thread of `scope`, which ends with the
    /// scope; [`Frames::close`] lets it go.
    pub fn ahead<'scope>(
        scope: &'scope Scope<'scope, '_>,
        stream: &'scope mut dyn FrameStream,
        manifest: &Manifest,
    ) -> Self {
        Frames::Ahead(Ahead::spawn(scope, stream, manifest))
    }

    /// The next frame, preprocessed; `Ok(None)` at the end of the stream.
    pub fn pull(&mut self) -> Pulled {
        match self {
            Frames::InTurn {
                stream,
                slot,
                manifest,
            } => Ok(stream.next()?.map(|frame| {
                // The loop gives every slot back before pulling again; a new one would do too.
                let slot = slot.take().unwrap_or_else(|| Slot::new(manifest));
                slot.prepare(frame)
            })),
            Frames::Ahead(ahead) => ahead.pull(),
        }
    }

    /// Hands a pulled frame's slot back for a later frame.
    pub fn recycle(&mut self, used: Slot) {
        match self {
            Frames::InTurn { slot, .. } => *slot = Some(used),
            Frames::Ahead(ahead) => ahead.recycle(used),
        }
    }

    /// The stream's counters, as of the last pull.
    pub fn stats(&self) -> StreamStats {
        match self {
            Frames::InTurn { stream, .. } => stream.stats(),
            Frames::Ahead(ahead) => ahead.stats,
        }
    }

    /// Ends the run's reading: a worker stops after the frame it is on, and a stream it waits
    /// in is stopped, so the scope's end does not wait for a camera that is away.
    pub fn close(self) {
        if let Frames::Ahead(ahead) = self {
            ahead.close();
        }
    }
}

/// What the loop and the worker both see.
#[derive(Default)]
struct Flags {
    /// Set by the loop when the run ends.
    closing: AtomicBool,
    /// Set by the worker while it is inside `next()`.
    in_next: AtomicBool,
}

/// The loop's side of the worker.
pub(super) struct Ahead {
    ready: Receiver<(Pulled, StreamStats)>,
    free: SyncSender<Slot>,
    flags: Arc<Flags>,
    stopper: Option<StreamStopper>,
    stats: StreamStats,
}

/// How many frames are in flight: one in the network, one being prepared.
const SLOTS: usize = 2;

impl Ahead {
    fn spawn<'scope>(
        scope: &'scope Scope<'scope, '_>,
        stream: &'scope mut dyn FrameStream,
        manifest: &Manifest,
    ) -> Self {
        // Both channels hold every slot, so neither side ever blocks on a send.
        let (ready_tx, ready) = sync_channel(SLOTS);
        let (free, free_rx) = sync_channel(SLOTS);
        for _ in 0..SLOTS {
            // The receiver is alive and the channel has room for every slot.
            let _ = free.send(Slot::new(manifest));
        }
        let flags = Arc::new(Flags::default());
        let stopper = stream.stopper();
        let worker_flags = Arc::clone(&flags);
        scope.spawn(move || work(stream, &free_rx, &ready_tx, &worker_flags));
        Ahead {
            ready,
            free,
            flags,
            stopper,
            stats: StreamStats::default(),
        }
    }

    fn pull(&mut self) -> Pulled {
        match self.ready.recv() {
            Ok((pulled, stats)) => {
                self.stats = stats;
                pulled
            }
            // The worker is gone without saying the stream ended: it panicked, and the scope
            // passes that panic on when it ends.
            Err(_) => Ok(None),
        }
    }

    fn recycle(&mut self, slot: Slot) {
        // Fails only when the worker has ended, and then the slot is not needed.
        let _ = self.free.send(slot);
    }

    fn close(self) {
        self.flags.closing.store(true, Ordering::SeqCst);
        // The worker sets `in_next` before it checks `closing`, and the loop sets `closing`
        // before it checks `in_next`: either the worker sees that the run ended and does not
        // call `next()`, or the loop sees it inside and stops the stream.
        if self.flags.in_next.load(Ordering::SeqCst) {
            if let Some(stop) = &self.stopper {
                stop();
            }
        }
        // Dropping the channels ends a worker waiting for a slot or sending a frame.
    }
}

/// The worker: takes a free slot, then the stream's next frame, preprocesses it and sends it,
/// until the stream ends, fails for good, or the loop goes away.
fn work(
    stream: &mut dyn FrameStream,
    free: &Receiver<Slot>,
    ready: &SyncSender<(Pulled, StreamStats)>,
    flags: &Flags,
) {
    let mut spare = None;
    loop {
        let slot = match spare.take() {
            Some(slot) => slot,
            None => match free.recv() {
                Ok(slot) => slot,
                Err(_) => return,
            },
        };
        flags.in_next.store(true, Ordering::SeqCst);
        if flags.closing.load(Ordering::SeqCst) {
            return;
        }
        let next = stream.next();
        flags.in_next.store(false, Ordering::SeqCst);
        let (pulled, last) = match next {
            Ok(Some(frame)) => (Ok(Some(slot.prepare(frame))), false),
            Ok(None) => (Ok(None), true),
            Err(error) => {
                // An unreadable file is skipped and the stream goes on; anything else ends it.
                let last = !matches!(error, SourceError::Io { .. });
                spare = Some(slot);
                (Err(error), last)
            }
        };
        if ready.send((pulled, stream.stats())).is_err() || last {
            return;
        }
    }
}
