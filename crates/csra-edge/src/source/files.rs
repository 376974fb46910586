//! `--input PATH|DIR|GLOB`: image files as a [`FrameStream`], once or looped.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
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
    /// A path that is neither an existing file or folder nor UTF-8, so not a glob either.
    #[error("--input {}: no such file or folder (and a name that is not UTF-8 cannot be a glob)", input.display())]
    NotFound {
        /// What was given.
        input: PathBuf,
    },
}

/// The largest file read as one picture. A 8K PNG is some 100 MB; anything larger is not a
/// picture (`--input /dev/zero` would otherwise read until memory runs out).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// The image files `input` names: the file itself, a folder's images (sorted by name, not
/// recursive), or a glob's matches (sorted, each file once).
pub fn expand_input(input: impl AsRef<OsStr>) -> Result<Vec<PathBuf>, InputError> {
    let input = input.as_ref();
    let path = Path::new(input);
    let files = if path.is_dir() {
        folder_images(path)?
    } else if path.exists() {
        vec![path.to_owned()]
    } else {
        let Some(pattern) = input.to_str() else {
            return Err(InputError::NotFound {
                input: path.to_owned(),
            });
        };
        glob_files(pattern)?
    };
    if files.is_empty() {
        return Err(InputError::Empty {
            input: path.display().to_string(),
        });
    }
    Ok(files)
}

/// A glob's files, sorted, each once: `**` follows symbolic links, so a link that points back
/// up the tree would list every file below it again at each level of the loop.
fn glob_files(pattern: &str) -> Result<Vec<PathBuf>, InputError> {
    let matches = glob::glob(pattern).map_err(|e| InputError::Pattern {
        pattern: pattern.to_owned(),
        reason: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = matches
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut seen = HashSet::new();
    files.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    Ok(files)
}

/// A file's bytes, refusing one larger than [`MAX_FILE_BYTES`] without reading past the limit.
fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut data)?;
    if data.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {} MiB, so not a picture csra-edge reads",
                MAX_FILE_BYTES >> 20
            ),
        ));
    }
    Ok(data)
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
        let data = read_capped(path).map_err(|source| SourceError::Io {
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
            expand_input(format!("{folder}/*.gif")),
            Err(InputError::Empty { .. })
        ));
    }

    #[test]
    fn a_symlink_loop_under_a_double_star_glob_lists_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("a.jpg"), b"x").unwrap();
        std::fs::write(dir.path().join("b.jpg"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path(), sub.join("up")).unwrap();
        let pattern = format!("{}/**/*.jpg", dir.path().display());
        let files = expand_input(&pattern).unwrap();
        assert_eq!(files.len(), 2, "{files:?}");
    }

    #[test]
    fn a_non_utf8_file_name_is_read_as_a_file() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(OsStr::from_bytes(b"caf\xe9.jpg"));
        std::fs::write(&path, b"x").unwrap();
        assert_eq!(expand_input(path.as_os_str()).unwrap(), [path]);
        let missing = dir.path().join(OsStr::from_bytes(b"\xff*.jpg"));
        let err = expand_input(missing.as_os_str()).unwrap_err().to_string();
        assert!(err.contains("no such file"), "{err}");
    }

    #[test]
    fn a_file_beyond_the_size_limit_is_refused_without_reading_it_all() {
        let mut stream = FileStream::new(vec![PathBuf::from("/dev/zero")], false);
        match stream.next() {
            Err(SourceError::Io { what, source }) => {
                assert_eq!(what, "/dev/zero");
                assert!(
                    source.to_string().contains("larger than 256 MiB"),
                    "{source}"
                );
            }
            other => panic!("{:?}", other.map(|f| f.map(|f| f.data.len()))),
        }
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
        // Files wait to be read, so `--prefetch auto` may read them ahead.
        assert!(!once.is_live());
        assert!(once.next().unwrap().is_some());
        assert!(once.next().unwrap().is_none());
    }
}
