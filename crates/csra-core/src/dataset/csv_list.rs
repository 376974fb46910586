//! A plain CSV list: `path,label1;label2`, one image per line.
//!
//! ```text
//! path,labels
//! # a comment
//! images/0001.jpg,cat;dog
//! "images/with, comma.jpg",car
//! images/0002.jpg,
//! ```
//!
//! The header line `path,labels` is optional (matched case-insensitively), blank lines and
//! lines starting with `#` are skipped, fields may be quoted, labels are separated by `;` and
//! trimmed, and an empty label field makes an image with no positive class.

use std::path::Path;

use csv::{ReaderBuilder, StringRecord, Trim};

use super::{Dataset, DatasetError, Sample};
use crate::labels::LabelSet;

/// Reads a `path,labels` CSV list whose labels are names from `classes`.
///
/// Samples keep the file's order; relative paths are joined onto `image_root`, absolute ones
/// kept. An unknown label or a line without exactly two fields is an error naming the line.
pub fn read(path: &Path, classes: &LabelSet, image_root: &Path) -> Result<Dataset, DatasetError> {
    let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        // Column counts are checked per line below, for a clearer message.
        .flexible(true)
        .comment(Some(b'#'))
        .trim(Trim::All)
        .from_reader(bytes.as_slice());
    let mut samples = Vec::new();
    let mut first = true;
    for result in reader.records() {
        let record = result.map_err(|e| csv_error(path, &e))?;
        // A line of only spaces is blank too.
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        if std::mem::take(&mut first) && is_header(&record) {
            continue;
        }
        let line = record.position().map_or(0, |pos| record_line(&bytes, pos));
        samples.push(read_line(path, line, &record, classes, image_root)?);
    }
    Ok(Dataset {
        classes: classes.clone(),
        samples,
        skipped: Vec::new(),
    })
}

fn is_header(record: &StringRecord) -> bool {
    record.len() == 2
        && record[0].eq_ignore_ascii_case("path")
        && record[1].eq_ignore_ascii_case("labels")
}

/// The 1-based line a record starts on.
///
/// csv's record position points just past the previous record, before the blank and comment
/// lines the parser skipped (its line numbers in errors are right), so skip those here.
fn record_line(bytes: &[u8], pos: &csv::Position) -> usize {
    let mut line = pos.line() as usize;
    let mut rest = bytes.get(pos.byte() as usize..).unwrap_or_default();
    loop {
        let skipped = match rest.first() {
            Some(b'\n') => 1,
            Some(b'\r') if rest.get(1) == Some(&b'\n') => 2,
            Some(b'#') => rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |n| n + 1),
            _ => break,
        };
        if rest[..skipped].ends_with(b"\n") {
            line += 1;
        }
        rest = &rest[skipped..];
    }
    line
}

/// The sample of the record on line `line`.
fn read_line(
    path: &Path,
    line: usize,
    record: &StringRecord,
    classes: &LabelSet,
    image_root: &Path,
) -> Result<Sample, DatasetError> {
    let error = |reason: String| DatasetError::record(path, format!("line {line}"), reason);
    let (image, labels) = match (record.get(0), record.get(1), record.len()) {
        (Some(image), Some(labels), 2) => (image, labels),
        _ => {
            return Err(error(format!(
                "expected 2 fields `path,labels`, found {}; write `path,` for an image without \
                 labels and quote paths that contain commas",
                record.len()
            )))
        }
    };
    let mut target = vec![false; classes.len()];
    // Empty pieces (an empty field, a trailing `;`) name no class.
    for label in labels.split(';').map(str::trim).filter(|l| !l.is_empty()) {
        let class = classes.index_of(label).ok_or_else(|| {
            error(format!(
                "unknown label {label:?}; labels must be class names from the labels file \
                 (check the spelling, or add the class to the labels file)"
            ))
        })?;
        target[class] = true;
    }
    Ok(Sample {
        // `join` keeps an absolute path as it is.
        image: image_root.join(image),
        ignore: vec![false; classes.len()],
        target,
        bbox: None,
    })
}

/// A csv parse error (bad UTF-8, an unclosed quote) as a record or format error.
fn csv_error(path: &Path, err: &csv::Error) -> DatasetError {
    match err.position() {
        Some(pos) => DatasetError::record(path, format!("line {}", pos.line()), err.to_string()),
        None => DatasetError::Format {
            path: path.to_owned(),
            reason: err.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn classes() -> LabelSet {
        LabelSet::new(["cat", "dog", "traffic light"], "test").unwrap()
    }

    fn read_text(text: &str) -> Result<Dataset, DatasetError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.csv");
        std::fs::write(&path, text).unwrap();
        read(&path, &classes(), Path::new("/root"))
    }

    #[test]
    fn reads_quoted_paths_comments_blank_lines_and_negatives() {
        let text = "Path,Labels\r\n# comment, with a comma\r\nimg/a.jpg,cat;dog\r\n\r\n\
                    \"img/b, c.jpg\", traffic light ; \r\n/abs/d.jpg,\r\n";
        let data = read_text(text).unwrap();
        let images: Vec<_> = data.samples.iter().map(|s| s.image.clone()).collect();
        assert_eq!(
            images,
            ["/root/img/a.jpg", "/root/img/b, c.jpg", "/abs/d.jpg"].map(PathBuf::from)
        );
        assert_eq!(data.samples[0].target, [true, true, false]);
        assert_eq!(data.samples[1].target, [false, false, true]);
        assert_eq!(data.samples[2].target, [false; 3]);
        assert!(data
            .samples
            .iter()
            .all(|s| s.ignore == [false; 3] && s.bbox.is_none()));
    }

    #[test]
    fn a_first_line_that_is_not_a_header_is_data() {
        let data = read_text("a.jpg,dog\n").unwrap();
        assert_eq!(data.samples.len(), 1);
        assert_eq!(data.samples[0].target, [false, true, false]);
    }

    #[test]
    fn unknown_label_names_the_line_and_the_label() {
        let msg = read_text("path,labels\n# c\na.jpg,cat\n\n  \r\n\r\n# c\nb.jpg,cat;doge\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("list.csv: line 8: unknown label \"doge\"") && msg.contains("labels file"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_column_count_names_the_line() {
        let msg = read_text("a.jpg,cat\nb.jpg\n").unwrap_err().to_string();
        assert!(
            msg.contains("list.csv: line 2: expected 2 fields `path,labels`, found 1"),
            "{msg}"
        );
        let msg = read_text("a.jpg,cat,dog\n").unwrap_err().to_string();
        assert!(
            msg.contains("list.csv: line 1: expected 2 fields `path,labels`, found 3"),
            "{msg}"
        );
    }

    #[test]
    fn invalid_utf8_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.csv");
        std::fs::write(&path, b"a.jpg,cat\nb\xff.jpg,dog\n").unwrap();
        let msg = read(&path, &classes(), dir.path()).unwrap_err().to_string();
        assert!(msg.contains("list.csv: line 2: "), "{msg}");
    }
}
