//! MS-COCO `instances_*.json` annotations.
//!
//! Only `images[].{id, file_name}`, `annotations[].{id, image_id, category_id}` and
//! `categories[].{id, name}` are read; everything else (segmentations, boxes, areas) is skipped
//! by the parser, so full COCO reads quickly.
//!
//! The multi-label targets follow the official CSRA `prepare_coco.py`: class `i` is the
//! category with the `i`-th smallest id, an image is positive for every category that has at
//! least one annotation on it (crowd annotations included), and images without any annotation
//! are left out.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::{read_json, Dataset, DatasetError, Sample, Skipped};
use crate::labels::LabelSet;

/// The parts of an `instances_*.json` file the reader needs; serde skips the rest.
#[derive(Deserialize)]
struct InstancesFile {
    images: Vec<Image>,
    annotations: Vec<Annotation>,
    categories: Vec<Category>,
}

#[derive(Deserialize)]
struct Image {
    id: u64,
    file_name: String,
}

#[derive(Deserialize)]
struct Annotation {
    /// Only used to name the annotation in errors; some hand-made files leave it out.
    id: Option<u64>,
    image_id: u64,
    category_id: u64,
}

#[derive(Deserialize)]
struct Category {
    id: u64,
    name: String,
}

/// Reads a COCO `instances_*.json` file; image paths are `images_dir/<file_name>`.
///
/// Classes are the file's categories in ascending id order, with the file's names. Samples are
/// in ascending image id order, one per image with at least one annotation, with no bounding
/// box; images without annotations are listed in [`Dataset::skipped`]. An annotation that
/// refers to an unknown image or category, or a repeated image or category id, is an error.
pub fn read(annotations: &Path, images_dir: &Path) -> Result<Dataset, DatasetError> {
    let file: InstancesFile = read_json(annotations)?;
    let (classes, class_of) = read_categories(annotations, &file.categories)?;
    let image_of = unique_ids(
        annotations,
        "image",
        file.images.iter().map(|image| image.id),
    )?;

    // One target row per entry of `images`, in file order.
    let mut targets = vec![vec![false; classes.len()]; file.images.len()];
    let mut annotated = vec![false; file.images.len()];
    for (i, ann) in file.annotations.iter().enumerate() {
        let record = || match ann.id {
            Some(id) => format!("annotation #{i} (id {id})"),
            None => format!("annotation #{i}"),
        };
        let &image = image_of.get(&ann.image_id).ok_or_else(|| {
            DatasetError::record(
                annotations,
                record(),
                format!(
                    "image_id {} is not the id of any entry in `images`",
                    ann.image_id
                ),
            )
        })?;
        let &class = class_of.get(&ann.category_id).ok_or_else(|| {
            DatasetError::record(
                annotations,
                record(),
                format!(
                    "category_id {} is not the id of any entry in `categories`",
                    ann.category_id
                ),
            )
        })?;
        targets[image][class] = true;
        annotated[image] = true;
    }

    let mut order: Vec<usize> = (0..file.images.len()).collect();
    order.sort_unstable_by_key(|&i| file.images[i].id);
    let mut samples = Vec::with_capacity(order.len());
    let mut skipped = Vec::new();
    for i in order {
        let image = images_dir.join(&file.images[i].file_name);
        if annotated[i] {
            samples.push(Sample {
                image,
                ignore: vec![false; classes.len()],
                target: std::mem::take(&mut targets[i]),
                bbox: None,
            });
        } else {
            skipped.push(Skipped {
                image,
                reason: "the image has no annotations (the official CSRA prepare_coco.py leaves \
                         such images out)"
                    .to_owned(),
            });
        }
    }
    Ok(Dataset {
        classes,
        samples,
        skipped,
    })
}

/// The classes (categories sorted by id) and the class index of every category id.
fn read_categories(
    path: &Path,
    categories: &[Category],
) -> Result<(LabelSet, HashMap<u64, usize>), DatasetError> {
    if categories.is_empty() {
        return Err(DatasetError::Format {
            path: path.to_owned(),
            reason: "`categories` is empty; a COCO instances file lists its categories".to_owned(),
        });
    }
    // Only the duplicate check: class indices come from the sorted order below.
    unique_ids(path, "category", categories.iter().map(|c| c.id))?;
    let mut sorted: Vec<&Category> = categories.iter().collect();
    sorted.sort_unstable_by_key(|c| c.id);
    let classes = LabelSet::new(
        sorted.iter().map(|c| c.name.as_str()),
        &path.display().to_string(),
    )?;
    let class_of = sorted
        .iter()
        .enumerate()
        .map(|(class, c)| (c.id, class))
        .collect();
    Ok((classes, class_of))
}

/// Maps each id to its position, failing on the first repeated id.
fn unique_ids(
    path: &Path,
    kind: &str,
    ids: impl ExactSizeIterator<Item = u64>,
) -> Result<HashMap<u64, usize>, DatasetError> {
    let mut position_of = HashMap::with_capacity(ids.len());
    for (i, id) in ids.enumerate() {
        if let Some(first) = position_of.insert(id, i) {
            return Err(DatasetError::record(
                path,
                format!("{kind} #{i} (id {id})"),
                format!("{kind} id {id} is already used by {kind} #{first}; ids must be unique"),
            ));
        }
    }
    Ok(position_of)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;

    fn write(dir: &Path, value: &serde_json::Value) -> PathBuf {
        let path = dir.join("instances.json");
        std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
        path
    }

    fn fixture() -> serde_json::Value {
        json!({
            "info": {"description": "test"},
            "images": [
                {"id": 30, "file_name": "c.jpg", "width": 640, "height": 480},
                {"id": 10, "file_name": "a.jpg", "width": 640, "height": 480},
                {"id": 20, "file_name": "b.jpg", "width": 640, "height": 480},
            ],
            "annotations": [
                {"id": 1, "image_id": 30, "category_id": 7, "iscrowd": 0,
                 "segmentation": [[1.0, 2.0, 3.0, 4.0]], "bbox": [1, 2, 3, 4], "area": 12.0},
                {"id": 2, "image_id": 10, "category_id": 1, "iscrowd": 0},
                {"id": 3, "image_id": 30, "category_id": 7, "iscrowd": 0},
                // Crowd annotations count, as in the official prepare_coco.py.
                {"id": 4, "image_id": 10, "category_id": 3, "iscrowd": 1,
                 "segmentation": {"counts": [1, 2], "size": [480, 640]}},
            ],
            "categories": [
                {"id": 7, "name": "zebra", "supercategory": "animal"},
                {"id": 1, "name": "person", "supercategory": "person"},
                {"id": 3, "name": "car", "supercategory": "vehicle"},
            ],
        })
    }

    fn read_error(value: &serde_json::Value) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), value);
        read(&path, dir.path()).unwrap_err().to_string()
    }

    #[test]
    fn reads_classes_by_id_samples_by_image_id_and_skips_unannotated_images() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &fixture());
        let data = read(&path, Path::new("/imgs")).unwrap();

        assert_eq!(data.classes.names(), ["person", "car", "zebra"]);
        let images: Vec<_> = data.samples.iter().map(|s| s.image.clone()).collect();
        assert_eq!(images, [PathBuf::from("/imgs/a.jpg"), "/imgs/c.jpg".into()]);
        assert_eq!(data.samples[0].target, [true, true, false], "crowd counts");
        assert_eq!(data.samples[1].target, [false, false, true]);
        assert!(data.samples.iter().all(|s| s.bbox.is_none()));
        assert!(data.samples.iter().all(|s| s.ignore == [false; 3]));

        assert_eq!(data.skipped.len(), 1);
        assert_eq!(data.skipped[0].image, Path::new("/imgs/b.jpg"));
        assert!(data.skipped[0].reason.contains("no annotations"));
        assert_eq!(data.positive_counts(), [1, 1, 1]);
    }

    #[test]
    fn annotation_of_an_unknown_image_names_the_annotation_and_the_id() {
        let mut value = fixture();
        value["annotations"][2]["image_id"] = json!(99);
        let msg = read_error(&value);
        assert!(
            msg.contains("instances.json: annotation #2 (id 3): image_id 99"),
            "{msg}"
        );
    }

    #[test]
    fn annotation_of_an_unknown_category_names_the_annotation_and_the_id() {
        let mut value = fixture();
        value["annotations"][1]["category_id"] = json!(2);
        let msg = read_error(&value);
        assert!(
            msg.contains("instances.json: annotation #1 (id 2): category_id 2"),
            "{msg}"
        );
    }

    #[test]
    fn repeated_ids_are_errors() {
        let mut value = fixture();
        value["images"][2]["id"] = json!(30);
        let msg = read_error(&value);
        assert!(
            msg.contains("image #2 (id 30): image id 30 is already used by image #0"),
            "{msg}"
        );

        let mut value = fixture();
        value["categories"][1]["id"] = json!(7);
        let msg = read_error(&value);
        assert!(msg.contains("category #1 (id 7)"), "{msg}");
    }

    #[test]
    fn missing_key_is_a_syntax_error_with_a_position_given_once() {
        let mut value = fixture();
        value.as_object_mut().unwrap().remove("categories");
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &value);
        let err = read(&path, dir.path()).unwrap_err();
        assert!(
            matches!(err, DatasetError::Syntax { line, .. } if line > 1),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("instances.json:") && msg.contains("missing field `categories`"));
        assert!(!msg.contains(" at line "), "{msg}");
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let err = read(Path::new("/nonexistent/instances.json"), Path::new("/")).unwrap_err();
        assert!(
            err.to_string().starts_with("/nonexistent/instances.json: "),
            "{err}"
        );
    }
}
