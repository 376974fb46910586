//! `--input PATH|DIR|GLOB`: image files as a [`FrameStream`], once or looped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use thiserror::Error;

use crate::source::{Frame, FrameStream, SourceError, StreamStats};

/// File extensions read from folders (case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "bmp"];

/// An error expanding `--input`.
#[derive(Debug, Error)]
pub enum InputError {
    /// The pattern is not a valid glob.
    #[error("--input {pattern:?} is not a valid glob: {reason}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// The parser's complaint.
        reason: String,
    },
    /// A folder cannot be listed.
    #[error("{}: cannot list the folder: {source}", dir.display())]
    Folder {
        /// The folder.
        dir: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Nothing matched.
    #[error("--input {input:?}: no image files found (looked for a file, a folder of .jpg/.jpeg/.png/.bmp files, or a glob such as 'photos/*.jpg')")]
    Empty {
        /// What was given.
        input: String,
    },
}

/// The image files `input` names: the file itself, a folder's images (sorted by name, not
/// recursive), or a glob's matches (sorted).
pub fn expand_input(input: &str) -> Result<Vec<PathBuf>, InputError> {
    let path = Path::new(input);
    let files = if path.is_dir() {
        folder_images(path)?
    } else if path.exists() {
        vec![path.to_owned()]
    } else {
        let matches = glob::glob(input).map_err(|e| InputError::Pattern {
            pattern: input.to_owned(),
            reason: e.to_string(),
        })?;
        let mut files: Vec<PathBuf> = matches
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        files
    };
    if files.is_empty() {
        return Err(InputError::Empty {
            input: input.to_owned(),
        });
    }
    Ok(files)
}

fn folder_images(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let entries = std::fs::read_dir(dir).map_err(|source| InputError::Folder {
        dir: dir.to_owned(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && has_image_extension(p))
        .collect();
    files.sort();
    Ok(files)
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Image files read one by one as [`Encoded`](crate::source::PixelFormat::Encoded) frames; decoding is left to the
/// pipeline, so a corrupt file is a bad frame like a corrupt camera frame.
pub struct FileStream {
    files: Vec<PathBuf>,
    next: usize,
    looped: bool,
    sequence: u64,
    stop: Option<Arc<AtomicBool>>,
}

impl FileStream {
    /// A stream over `files` in order; with `looped`, it starts over after the last.
    pub fn new(files: Vec<PathBuf>, looped: bool) -> Self {
        Self {
            files,
            next: 0,
            looped,
            sequence: 0,
            stop: None,
        }
    }

    /// Ends the stream as soon as `stop` is set.
    pub fn with_stop(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = Some(stop);
        self
    }
}

impl FrameStream for FileStream {
    fn next(&mut self) -> Result<Option<Frame>, SourceError> {
        if self.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Ok(None);
        }
        if self.next == self.files.len() {
            if !self.looped || self.files.is_empty() {
                return Ok(None);
            }
            self.next = 0;
        }
        let path = &self.files[self.next];
        self.next += 1;
        let sequence = self.sequence;
        self.sequence += 1;
        let origin = path.display().to_string();
        let data = std::fs::read(path).map_err(|source| SourceError::Io {
            what: origin.clone(),
            source,
        })?;
        Ok(Some(Frame::encoded(data, sequence, origin)))
    }

    fn stats(&self) -> StreamStats {
        StreamStats::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_globs_and_files_expand_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.JPG", "a.png", "c.txt", "d.bmp"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let names = |files: Vec<PathBuf>| -> Vec<String> {
            files
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        let folder = dir.path().to_str().unwrap();
        assert_eq!(
            names(expand_input(folder).unwrap()),
            ["a.png", "b.JPG", "d.bmp"]
        );
        let glob = format!("{folder}/*.png");
        assert_eq!(names(expand_input(&glob).unwrap()), ["a.png"]);
        let file = format!("{folder}/c.txt");
        assert_eq!(names(expand_input(&file).unwrap()), ["c.txt"]);
        assert!(matches!(
            expand_input(&format!("{folder}/*.gif")),
            Err(InputError::Empty { .. })
        ));
    }

    #[test]
    fn a_looped_stream_starts_over_and_an_unreadable_file_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.jpg");
        std::fs::write(&a, b"A").unwrap();
        let missing = dir.path().join("missing.jpg");
        let mut stream = FileStream::new(vec![a.clone(), missing], true);
        let origins: Vec<String> = (0..4)
            .map(|_| match stream.next() {
                Ok(Some(f)) => format!("{}:{}", f.sequence, String::from_utf8_lossy(&f.data)),
                Ok(None) => "end".into(),
                Err(SourceError::Io { .. }) => "io".into(),
                Err(e) => panic!("{e}"),
            })
            .collect();
        assert_eq!(origins, ["0:A", "io", "2:A", "io"]);
        let mut once = FileStream::new(vec![a], false);
        assert!(once.next().unwrap().is_some());
        assert!(once.next().unwrap().is_none());
    }
}
