//! Result lines to stdout (or any writer), one per line, flushed per line so a reader of a
//! pipe sees each result as it happens.
//!
//! A line is written whole or not at all: when stdout is a regular file and a write fails
//! half-way (a full disk), the file is cut back to where the line began, so a reader never
//! meets a torn JSON line.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};

use super::{Delivery, Sink, SinkError};

/// A writer that can undo a partly written line.
pub trait Rewind: Write + Send {
    /// Where the next byte goes, if the writer can be cut back there.
    fn mark(&mut self) -> Option<u64>;
    /// Drops everything written after `mark`.
    fn truncate_to(&mut self, mark: u64) -> std::io::Result<()>;
}

impl Rewind for File {
    fn mark(&mut self) -> Option<u64> {
        self.stream_position().ok()
    }

    fn truncate_to(&mut self, mark: u64) -> std::io::Result<()> {
        self.set_len(mark)?;
        self.seek(SeekFrom::Start(mark)).map(drop)
    }
}

/// Pipes, terminals and memory cannot be cut back: a failed write there is only counted.
macro_rules! no_rewind {
    ($($writer:ty),*) => {$(
        impl Rewind for $writer {
            fn mark(&mut self) -> Option<u64> {
                None
            }

            fn truncate_to(&mut self, _mark: u64) -> std::io::Result<()> {
                Ok(())
            }
        }
    )*};
}

no_rewind!(std::io::Stdout, Vec<u8>);

/// Writes each line and a newline to a writer, flushing after every line.
pub struct LineWriter<W: Rewind> {
    target: String,
    writer: W,
    lines: u64,
    lost: u64,
}

/// Stdout as a sink: the file itself when stdout is redirected to a regular file (so a torn
/// line can be cut off), else the process's stdout.
pub enum StdoutTarget {
    /// Stdout is a regular file; this handle shares its offset.
    File(File),
    /// A pipe, a terminal or a device.
    Stream(std::io::Stdout),
}

impl Write for StdoutTarget {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::File(file) => file.write(bytes),
            Self::Stream(stdout) => stdout.write(bytes),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::File(file) => file.flush(),
            Self::Stream(stdout) => stdout.flush(),
        }
    }
}

impl Rewind for StdoutTarget {
    fn mark(&mut self) -> Option<u64> {
        match self {
            Self::File(file) => file.mark(),
            Self::Stream(_) => None,
        }
    }

    fn truncate_to(&mut self, mark: u64) -> std::io::Result<()> {
        match self {
            Self::File(file) => file.truncate_to(mark),
            Self::Stream(_) => Ok(()),
        }
    }
}

impl LineWriter<StdoutTarget> {
    /// Lines to this process's stdout.
    pub fn stdout() -> Self {
        Self::new("stdout", StdoutTarget::open())
    }
}

impl StdoutTarget {
    fn open() -> Self {
        use std::os::fd::AsFd;
        let stdout = std::io::stdout();
        let file = stdout
            .as_fd()
            .try_clone_to_owned()
            .map(File::from)
            .ok()
            .filter(|f| f.metadata().is_ok_and(|m| m.is_file()));
        match file {
            Some(file) => Self::File(file),
            None => Self::Stream(stdout),
        }
    }
}

impl<W: Rewind> LineWriter<W> {
    /// Lines to `writer`, called `target` in errors.
    pub fn new(target: &str, writer: W) -> Self {
        Self {
            target: target.to_owned(),
            writer,
            lines: 0,
            lost: 0,
        }
    }

    /// The writer, e.g. to read back what a test wrote.
    pub fn into_inner(self) -> W {
        self.writer
    }

    fn io(&self, source: std::io::Error) -> SinkError {
        SinkError::Io {
            target: self.target.clone(),
            source,
        }
    }

    fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        // One write for line and newline, so a line is never torn between two writes.
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        let mark = self.writer.mark();
        let written = self
            .writer
            .write_all(&bytes)
            .and_then(|()| self.writer.flush());
        if let (Err(_), Some(mark)) = (&written, mark) {
            if let Err(error) = self.writer.truncate_to(mark) {
                log::warn!(
                    "{}: a result line is torn and could not be cut off ({error})",
                    self.target
                );
            }
        }
        written
    }
}

impl<W: Rewind> Sink for LineWriter<W> {
    fn send(&mut self, line: &str) -> Result<(), SinkError> {
        self.lines += 1;
        self.write_line(line).map_err(|e| {
            // A reader that went away (`| head`) ends the run; it wanted no more lines.
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                self.lost += 1;
            }
            self.io(e)
        })
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.writer.flush().map_err(|e| self.io(e))
    }

    fn delivery(&self) -> Delivery {
        Delivery {
            target: self.target.clone(),
            lines: self.lines,
            lost: self.lost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_ends_with_a_newline() {
        let mut sink = LineWriter::new("memory", Vec::new());
        sink.send("{\"a\":1}").unwrap();
        sink.send("{\"b\":2}").unwrap();
        sink.flush().unwrap();
        let delivery = sink.delivery();
        assert_eq!((delivery.lines, delivery.lost), (2, 0));
        assert_eq!(sink.into_inner(), b"{\"a\":1}\n{\"b\":2}\n");
    }

    /// A file that takes `room` more bytes, then fails like a full disk.
    struct FullDisk {
        file: File,
        room: usize,
    }

    impl Write for FullDisk {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "no space left on device",
                ));
            }
            let n = bytes.len().min(self.room);
            self.room -= n;
            self.file.write(&bytes[..n])
        }

        fn flush(&mut self) -> std::io::Result<()> {
            self.file.flush()
        }
    }

    impl Rewind for FullDisk {
        fn mark(&mut self) -> Option<u64> {
            self.file.mark()
        }

        fn truncate_to(&mut self, mark: u64) -> std::io::Result<()> {
            self.file.truncate_to(mark)
        }
    }

    #[test]
    fn a_line_cut_short_by_a_full_disk_is_removed_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let file = File::create(&path).unwrap();
        let mut sink = LineWriter::new("out.jsonl", FullDisk { file, room: 12 });
        sink.send("{\"a\":1}").unwrap();
        let err = sink.send("{\"b\":22222}").unwrap_err().to_string();
        assert!(err.contains("out.jsonl"), "{err}");
        sink.send("{\"c\":3}").unwrap_err();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}\n");
        let delivery = sink.delivery();
        assert_eq!((delivery.lines, delivery.lost), (3, 2));
    }
}
