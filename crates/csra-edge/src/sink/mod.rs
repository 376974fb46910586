//! Where result lines go. Every record the pipeline emits is one JSON object on one line;
//! a sink delivers such lines to stdout, a file or an MQTT broker.

mod stdout;

pub use stdout::{LineWriter, Rewind, StdoutTarget};

use thiserror::Error;

pub mod mqtt;

/// An error delivering result lines.
#[derive(Debug, Error)]
pub enum SinkError {
    /// Writing to a local stream or file failed.
    #[error("writing results to {target}: {source}")]
    Io {
        /// The stream or file.
        target: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The broker cannot be reached or refused the message.
    #[error("MQTT {url}: {reason}")]
    Broker {
        /// The broker URL as given.
        url: String,
        /// What went wrong and what to do.
        reason: String,
    },
    /// The sink's address cannot be parsed.
    #[error("invalid sink address {address:?}: {reason}")]
    Address {
        /// The address as given.
        address: String,
        /// What is wrong and the expected form.
        reason: String,
    },
}

/// A destination for result lines.
pub trait Sink: Send {
    /// Delivers one JSON line (without the trailing newline).
    fn send(&mut self, line: &str) -> Result<(), SinkError>;
    /// Delivers everything buffered; called before exit so no finished result is lost.
    fn flush(&mut self) -> Result<(), SinkError>;
    /// How many lines it was given and how many of them did not arrive, so far.
    fn delivery(&self) -> Delivery;
}

/// What a sink did with the lines it was given: the run's summary, stats lines and exit code
/// report lost lines from these counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The sink as messages name it (`stdout`, a broker URL without its password).
    pub target: String,
    /// Lines given to the sink.
    pub lines: u64,
    /// Lines among them that did not arrive: failed writes, lines dropped from a full queue,
    /// publishes the broker never acknowledged.
    pub lost: u64,
}
