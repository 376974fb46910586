//! Result lines to stdout (or any writer), one per line, flushed per line so a reader of a
//! pipe sees each result as it happens.

use std::io::Write;

use super::{Sink, SinkError};

/// Writes each line and a newline to a writer, flushing after every line.
pub struct LineWriter<W: Write + Send> {
    target: String,
    writer: W,
}

impl LineWriter<std::io::Stdout> {
    /// Lines to this process's stdout.
    pub fn stdout() -> Self {
        Self::new("stdout", std::io::stdout())
    }
}

impl<W: Write + Send> LineWriter<W> {
    /// Lines to `writer`, called `target` in errors.
    pub fn new(target: &str, writer: W) -> Self {
        Self {
            target: target.to_owned(),
            writer,
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
}

impl<W: Write + Send> Sink for LineWriter<W> {
    fn send(&mut self, line: &str) -> Result<(), SinkError> {
        // One write for line and newline, so a line is never torn between two writes.
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.writer.write_all(&bytes).map_err(|e| self.io(e))?;
        self.writer.flush().map_err(|e| self.io(e))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.writer.flush().map_err(|e| self.io(e))
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
        assert_eq!(sink.into_inner(), b"{\"a\":1}\n{\"b\":2}\n");
    }
}
