//! The JSON lists written by the official CSRA `utils/prepare/prepare_*.py` scripts.
//!
//! A list is an array of records `{"img_path": "...", "target": [...], "bbox": [x, y, w, h]}`
//! (`bbox` only in the WIDER lists); other keys are ignored. How the numbers in `target` map
//! to labels depends on the file, see [`TargetEncoding`].

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::{read_json, BBox, Dataset, DatasetError, Label, Sample};
use crate::labels::LabelSet;

/// How the numbers in a record's `target` encode labels.
///
/// | encoding | positive | negative | ignored | written for |
/// |---|---|---|---|---|
/// | [`Binary`](Self::Binary) | `1` | `0` | — | the train lists and both COCO lists |
/// | [`Voc07`](Self::Voc07) | `1` | `-1` | `0` ("difficult" only) | `test_voc07.json` |
/// | [`Wider`](Self::Wider) | `1` | `0` | `99` (unspecified) | `test_wider.json` |
///
/// Any other value is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetEncoding {
    /// `1` positive, `0` negative.
    Binary,
    /// `1` positive, `-1` negative, `0` ignored (the class occurs only as "difficult" objects).
    Voc07,
    /// `1` positive, `0` negative, `99` ignored (the attribute is unspecified).
    Wider,
    /// [`Voc07`](Self::Voc07) when any target value in the file is `-1`; otherwise
    /// [`Binary`](Self::Binary) that also accepts `99` as ignored (which reads
    /// [`Wider`](Self::Wider) lists correctly too).
    Auto,
}

impl TargetEncoding {
    /// The encoding [`Auto`](Self::Auto) stands for in a file with these records.
    fn resolve(self, records: &[Record]) -> Self {
        let has_minus_one = || {
            records
                .iter()
                .flat_map(|r| &r.target)
                .any(|v| v.as_f64() == Some(-1.0))
        };
        match self {
            Self::Auto if has_minus_one() => Self::Voc07,
            // Binary plus 99 as ignored is exactly the Wider encoding.
            Self::Auto => Self::Wider,
            other => other,
        }
    }

    /// The label `value` stands for, if it is one of this (resolved) encoding's values.
    fn decode(self, value: &Value) -> Option<Label> {
        // Compared as f64 so that `1.0` reads like `1`; every valid value is exact in f64.
        let v = value.as_f64()?;
        match self {
            _ if v == 1.0 => Some(Label::Positive),
            Self::Voc07 if v == -1.0 => Some(Label::Negative),
            Self::Voc07 if v == 0.0 => Some(Label::Ignored),
            Self::Binary | Self::Wider | Self::Auto if v == 0.0 => Some(Label::Negative),
            Self::Wider | Self::Auto if v == 99.0 => Some(Label::Ignored),
            _ => None,
        }
    }

    /// The values this (resolved) encoding accepts, for error messages.
    fn accepted(self) -> &'static str {
        match self {
            Self::Binary => "1 (positive) or 0 (negative)",
            Self::Voc07 => "1 (positive), -1 (negative) or 0 (ignored)",
            Self::Wider | Self::Auto => "1 (positive), 0 (negative) or 99 (ignored)",
        }
    }
}

/// One record of the list; unknown keys are ignored.
#[derive(Deserialize)]
struct Record {
    img_path: String,
    /// Kept as JSON values so that a bad value is reported with its record.
    target: Vec<Value>,
    #[serde(default)]
    bbox: Option<Value>,
}

/// Reads an official CSRA JSON list whose targets follow `classes` (one value per class).
///
/// Samples keep the file's order. A relative `img_path` is joined onto `image_root` (the folder
/// the prepare script ran in); an absolute one is kept. `bbox`, when present, becomes the
/// sample's box. A target of the wrong length or with a value outside `encoding` is an error.
pub fn read(
    path: &Path,
    classes: &LabelSet,
    image_root: &Path,
    encoding: TargetEncoding,
) -> Result<Dataset, DatasetError> {
    let records: Vec<Record> = read_json(path)?;
    let resolved = encoding.resolve(&records);
    let samples = records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            read_record(record, classes, image_root, resolved, encoding).map_err(|reason| {
                DatasetError::record(path, format!("record #{i} ({})", record.img_path), reason)
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Dataset {
        classes: classes.clone(),
        samples,
        skipped: Vec::new(),
    })
}

/// One record's sample; the error says what is wrong.
fn read_record(
    record: &Record,
    classes: &LabelSet,
    image_root: &Path,
    resolved: TargetEncoding,
    requested: TargetEncoding,
) -> Result<Sample, String> {
    if record.target.len() != classes.len() {
        return Err(format!(
            "target has {} values but there are {} classes",
            record.target.len(),
            classes.len()
        ));
    }
    let mut labels = Vec::with_capacity(classes.len());
    for (c, value) in record.target.iter().enumerate() {
        let label = resolved.decode(value).ok_or_else(|| {
            let detected = if requested == TargetEncoding::Auto {
                " (detected automatically; pass the encoding explicitly if that is wrong)"
            } else {
                ""
            };
            format!(
                "target value {value} for class {c} ({}) is not valid in the {resolved:?} \
                 encoding{detected}: expected {}",
                classes.name(c).unwrap_or("?"),
                resolved.accepted()
            )
        })?;
        labels.push(label);
    }
    let bbox = record.bbox.as_ref().map(BBox::from_json).transpose()?;
    // `join` keeps an absolute `img_path` as it is.
    let image = image_root.join(&record.img_path);
    Ok(Sample::from_labels(image, &labels, bbox))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;

    fn classes() -> LabelSet {
        LabelSet::new(["cat", "dog", "car"], "test").unwrap()
    }

    fn write(dir: &Path, value: &Value) -> PathBuf {
        let path = dir.join("list.json");
        std::fs::write(&path, serde_json::to_string(value).unwrap()).unwrap();
        path
    }

    fn read_value(value: &Value, encoding: TargetEncoding) -> Result<Dataset, DatasetError> {
        let dir = tempfile::tempdir().unwrap();
        read(
            &write(dir.path(), value),
            &classes(),
            Path::new("/root"),
            encoding,
        )
    }

    fn labels(data: &Dataset) -> Vec<(Vec<bool>, Vec<bool>)> {
        data.samples
            .iter()
            .map(|s| (s.target.clone(), s.ignore.clone()))
            .collect()
    }

    #[test]
    fn binary_lists_keep_order_and_join_relative_paths() {
        let value = json!([
            {"img_path": "data/b.jpg", "target": [1, 0, 1]},
            {"img_path": "/abs/a.jpg", "target": [0, 0, 0], "extra": true},
        ]);
        for encoding in [TargetEncoding::Binary, TargetEncoding::Auto] {
            let data = read_value(&value, encoding).unwrap();
            assert_eq!(data.samples[0].image, Path::new("/root/data/b.jpg"));
            assert_eq!(data.samples[1].image, Path::new("/abs/a.jpg"));
            assert_eq!(data.samples[0].target, [true, false, true]);
            assert!(data
                .samples
                .iter()
                .all(|s| s.bbox.is_none() && s.ignore == [false; 3]));
        }
    }

    #[test]
    fn voc07_lists_ignore_zero_and_auto_detects_them() {
        let value = json!([
            {"img_path": "a.jpg", "target": [1, -1, 0]},
            {"img_path": "b.jpg", "target": [-1, 1.0, -1]},
        ]);
        let expected = vec![
            (vec![true, false, false], vec![false, false, true]),
            (vec![false, true, false], vec![false; 3]),
        ];
        assert_eq!(
            labels(&read_value(&value, TargetEncoding::Voc07).unwrap()),
            expected
        );
        assert_eq!(
            labels(&read_value(&value, TargetEncoding::Auto).unwrap()),
            expected
        );
    }

    #[test]
    fn wider_lists_ignore_99_and_read_boxes() {
        let value = json!([
            {"img_path": "a.jpg", "target": [1, 0, 99], "bbox": [1, 2, 3.5, 4]},
        ]);
        for encoding in [TargetEncoding::Wider, TargetEncoding::Auto] {
            let data = read_value(&value, encoding).unwrap();
            assert_eq!(
                labels(&data),
                [(vec![true, false, false], vec![false, false, true])]
            );
            assert_eq!(
                data.samples[0].bbox,
                Some(BBox {
                    x: 1.0,
                    y: 2.0,
                    width: 3.5,
                    height: 4.0
                })
            );
        }
    }

    #[test]
    fn values_outside_the_encoding_name_the_record_and_value() {
        let value = json!([
            {"img_path": "a.jpg", "target": [1, 0, 0]},
            {"img_path": "b.jpg", "target": [1, 99, 0]},
        ]);
        let msg = read_value(&value, TargetEncoding::Binary)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(
                "list.json: record #1 (b.jpg): target value 99 for class 1 (dog) is not valid in \
                 the Binary encoding: expected 1 (positive) or 0 (negative)"
            ),
            "{msg}"
        );

        let value = json!([{"img_path": "a.jpg", "target": [1, -1, 99]}]);
        let msg = read_value(&value, TargetEncoding::Auto)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("record #0 (a.jpg): target value 99 for class 2 (car)"),
            "{msg}"
        );
        assert!(
            msg.contains("Voc07 encoding (detected automatically"),
            "{msg}"
        );

        let value = json!([{"img_path": "a.jpg", "target": [1, "1", 0]}]);
        let msg = read_value(&value, TargetEncoding::Wider)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("target value \"1\" for class 1 (dog)"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_target_length_and_bad_boxes_name_the_record() {
        let value = json!([{"img_path": "a.jpg", "target": [1, 0]}]);
        let msg = read_value(&value, TargetEncoding::Binary)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("record #0 (a.jpg): target has 2 values but there are 3 classes"),
            "{msg}"
        );
        let value = json!([{"img_path": "a.jpg", "target": [1, 0, 0], "bbox": [1, 2]}]);
        let msg = read_value(&value, TargetEncoding::Binary)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("record #0 (a.jpg): bbox must be 4 numbers"),
            "{msg}"
        );
    }

    #[test]
    fn a_missing_key_is_a_syntax_error() {
        let err = read_value(&json!([{"target": [1, 0, 0]}]), TargetEncoding::Binary).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("list.json:1:") && msg.contains("missing field `img_path`"),
            "{msg}"
        );
    }
}
