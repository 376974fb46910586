//! WIDER-Attribute annotations (`wider_attribute_{trainval,test}.json`).
//!
//! The file lists images, each with the persons (`targets`) in it; every person has a box and
//! one value per attribute: `1` present, `-1` absent, `0` unspecified. Each person becomes one
//! sample, labelled for the region in its box.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::{read_json, BBox, Dataset, DatasetError, Label, Sample, Skipped};
use crate::labels::LabelSet;

/// The parts of a WIDER-Attribute file the reader needs; serde skips the rest.
#[derive(Deserialize)]
struct WiderFile {
    images: Vec<Image>,
    attribute_id_map: Option<HashMap<String, String>>,
}

#[derive(Deserialize)]
struct Image {
    file_name: String,
    targets: Vec<Person>,
}

/// Kept as JSON values so that a wrong value is reported with its image and person.
#[derive(Deserialize)]
struct Person {
    attribute: Vec<Value>,
    bbox: Value,
}

/// Reads a WIDER-Attribute JSON file; image paths are `images_dir/<file_name>`.
///
/// Samples are the persons in file order, each with its `bbox`. Attribute `1` is positive,
/// `-1` negative and `0` (unspecified) ignored. Classes come from `attribute_id_map` (keys
/// `"0"`..`"n-1"`) when the file has one, else [`LabelSet::wider`]. Images without persons
/// are listed in [`Dataset::skipped`].
pub fn read(annotations: &Path, images_dir: &Path) -> Result<Dataset, DatasetError> {
    let file: WiderFile = read_json(annotations)?;
    let classes = match &file.attribute_id_map {
        Some(map) => classes_from_map(annotations, map)?,
        None => LabelSet::wider(),
    };
    let mut samples = Vec::new();
    let mut skipped = Vec::new();
    for (i, image) in file.images.iter().enumerate() {
        let path = images_dir.join(&image.file_name);
        if image.targets.is_empty() {
            skipped.push(Skipped {
                image: path,
                reason: "the image has no annotated persons".to_owned(),
            });
            continue;
        }
        for (p, person) in image.targets.iter().enumerate() {
            let sample = read_person(person, &classes, path.clone()).map_err(|reason| {
                let record = format!("image #{i} ({}), person #{p}", image.file_name);
                DatasetError::record(annotations, record, reason)
            })?;
            samples.push(sample);
        }
    }
    Ok(Dataset {
        classes,
        samples,
        skipped,
    })
}

/// The classes named by `attribute_id_map`, which must number them `0..n` without gaps.
fn classes_from_map(path: &Path, map: &HashMap<String, String>) -> Result<LabelSet, DatasetError> {
    let format_error = |reason: String| DatasetError::Format {
        path: path.to_owned(),
        reason,
    };
    let mut names: Vec<Option<&str>> = vec![None; map.len()];
    for (key, name) in map {
        let slot = key
            .parse::<usize>()
            .ok()
            .and_then(|index| names.get_mut(index))
            .ok_or_else(|| {
                format_error(format!(
                    "attribute_id_map key {key:?} is not an attribute index 0..{}; the map must \
                     number the attributes 0..n without gaps",
                    map.len()
                ))
            })?;
        // Distinct keys such as "1" and "01" can name the same index.
        if slot.replace(name).is_some() {
            return Err(format_error(format!(
                "attribute_id_map key {key:?} repeats an attribute index"
            )));
        }
    }
    // Every slot is filled: `map.len()` distinct in-range indices fill `map.len()` slots.
    let names: Vec<&str> = names.into_iter().flatten().collect();
    Ok(LabelSet::new(names, &path.display().to_string())?)
}

/// One person's sample; the error says what is wrong.
fn read_person(person: &Person, classes: &LabelSet, image: PathBuf) -> Result<Sample, String> {
    if person.attribute.len() != classes.len() {
        return Err(format!(
            "{} attribute values, expected {} (one per attribute)",
            person.attribute.len(),
            classes.len()
        ));
    }
    let labels = person
        .attribute
        .iter()
        .enumerate()
        .map(|(a, value)| {
            value.as_i64().and_then(Label::from_ternary).ok_or_else(|| {
                format!(
                    "attribute {a} ({}) is {value}, expected 1 (present), -1 (absent) or 0 \
                     (unspecified)",
                    classes.name(a).unwrap_or("?")
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bbox = BBox::from_json(&person.bbox)?;
    Ok(Sample::from_labels(image, &labels, Some(bbox)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::labels::WIDER_ATTRIBUTES;

    fn write(dir: &Path, value: &Value) -> PathBuf {
        let path = dir.join("wider_attribute_test.json");
        std::fs::write(&path, serde_json::to_string(value).unwrap()).unwrap();
        path
    }

    fn id_map() -> Value {
        let map: serde_json::Map<String, Value> = WIDER_ATTRIBUTES
            .iter()
            .enumerate()
            .map(|(i, name)| (i.to_string(), json!(name)))
            .collect();
        Value::Object(map)
    }

    fn fixture() -> Value {
        let mut first = vec![-1; 14];
        first[0] = 1;
        first[2] = 0;
        json!({
            "images": [
                {"file_name": "0--Parade/a.jpg", "image_id": 0, "scene_id": 0, "targets": [
                    {"attribute": first, "bbox": [10, 20.5, 30, 40]},
                    {"attribute": vec![0; 14], "bbox": [1, 2, 3, 4]},
                ]},
                {"file_name": "1--Handshaking/b.jpg", "image_id": 1, "scene_id": 1, "targets": []},
                {"file_name": "1--Handshaking/c.jpg", "image_id": 2, "scene_id": 1, "targets": [
                    {"attribute": vec![1; 14], "bbox": [5, 6, 7, 8]},
                ]},
            ],
            "attribute_id_map": id_map(),
            "scene_id_map": {"0": "Parade", "1": "Handshaking"},
        })
    }

    fn read_error(value: &Value) -> String {
        let dir = tempfile::tempdir().unwrap();
        read(&write(dir.path(), value), dir.path())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn one_sample_per_person_with_its_box_and_unspecified_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let data = read(&write(dir.path(), &fixture()), Path::new("/Image")).unwrap();
        assert_eq!(data.classes, LabelSet::wider());
        assert_eq!(data.samples.len(), 3);
        let s = &data.samples[0];
        assert_eq!(s.image, Path::new("/Image/0--Parade/a.jpg"));
        assert_eq!(
            s.bbox,
            Some(BBox {
                x: 10.0,
                y: 20.5,
                width: 30.0,
                height: 40.0
            })
        );
        assert!(s.target[0] && !s.ignore[0]);
        assert!(!s.target[2] && s.ignore[2]);
        assert!(!s.target[1] && !s.ignore[1]);
        assert!(data.samples[1].ignore.iter().all(|&i| i));
        assert!(data.samples[1].target.iter().all(|&t| !t));
        assert_eq!(
            data.samples[2].image,
            Path::new("/Image/1--Handshaking/c.jpg")
        );
        assert_eq!(data.skipped.len(), 1);
        assert_eq!(
            data.skipped[0].image,
            Path::new("/Image/1--Handshaking/b.jpg")
        );
    }

    #[test]
    fn classes_come_from_the_id_map_or_default_to_wider() {
        let dir = tempfile::tempdir().unwrap();
        let mut value = fixture();
        value.as_object_mut().unwrap().remove("attribute_id_map");
        assert_eq!(
            read(&write(dir.path(), &value), dir.path())
                .unwrap()
                .classes,
            LabelSet::wider()
        );

        let mut value = fixture();
        value["attribute_id_map"]["0"] = json!("Female");
        let classes = read(&write(dir.path(), &value), dir.path())
            .unwrap()
            .classes;
        assert_eq!(classes.name(0), Some("Female"));
        assert_eq!(classes.name(13), Some("stripe"));
    }

    #[test]
    fn a_gap_in_the_id_map_is_an_error() {
        let mut value = fixture();
        let map = value["attribute_id_map"].as_object_mut().unwrap();
        let name = map.remove("3").unwrap();
        map.insert("14".to_owned(), name);
        let msg = read_error(&value);
        assert!(
            msg.contains("attribute_id_map key \"14\" is not an attribute index 0..14"),
            "{msg}"
        );
    }

    #[test]
    fn bad_attribute_values_name_the_image_and_person() {
        let mut value = fixture();
        value["images"][2]["targets"][0]["attribute"][5] = json!(2);
        let msg = read_error(&value);
        assert!(
            msg.contains(
                "wider_attribute_test.json: image #2 (1--Handshaking/c.jpg), person #0: \
                 attribute 5 (longSleeve) is 2, expected 1 (present), -1 (absent) or 0"
            ),
            "{msg}"
        );
    }

    #[test]
    fn wrong_attribute_count_and_bad_boxes_name_the_image_and_person() {
        let mut value = fixture();
        value["images"][0]["targets"][1]["attribute"] = json!([1, 1, 1]);
        let msg = read_error(&value);
        assert!(
            msg.contains("image #0 (0--Parade/a.jpg), person #1: 3 attribute values, expected 14"),
            "{msg}"
        );

        for bad in [json!([1, 2, 3]), json!([1, 2, "3", 4]), json!(null)] {
            let mut value = fixture();
            value["images"][0]["targets"][1]["bbox"] = bad.clone();
            let msg = read_error(&value);
            assert!(
                msg.contains(&format!(
                    "image #0 (0--Parade/a.jpg), person #1: bbox must be 4 numbers [x, y, width, \
                     height], found {bad}"
                )),
                "{msg}"
            );
        }
    }
}
