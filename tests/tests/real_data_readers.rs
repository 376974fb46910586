//! The dataset readers on the real data in `../shared/data`, checked against counts computed
//! independently from the raw files.

// A panic with the unwrapped error is the clearest failure report a test can give.
#![allow(clippy::unwrap_used)]
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use csra_core::dataset::{coco, voc};
use csra_core::labels::VOC_CLASSES;
use csra_core::LabelSet;
use serde_json::Value;

/// Per-class positive counts straight from the raw COCO JSON: the set of annotated image ids
/// of every category, with categories in ascending id order.
fn raw_coco_positive_counts(json: &Value) -> Vec<usize> {
    let mut images_of: BTreeMap<u64, BTreeSet<u64>> = json["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_u64().unwrap(), BTreeSet::new()))
        .collect();
    for ann in json["annotations"].as_array().unwrap() {
        let category = ann["category_id"].as_u64().unwrap();
        images_of
            .get_mut(&category)
            .unwrap()
            .insert(ann["image_id"].as_u64().unwrap());
    }
    images_of.values().map(BTreeSet::len).collect()
}

/// The file names of the images that no annotation refers to.
fn raw_unannotated(json: &Value) -> BTreeSet<String> {
    let annotated: BTreeSet<u64> = json["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["image_id"].as_u64().unwrap())
        .collect();
    json["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|image| !annotated.contains(&image["id"].as_u64().unwrap()))
        .map(|image| image["file_name"].as_str().unwrap().to_owned())
        .collect()
}

fn check_coco_split(split: &str, images: usize, unannotated: &[&str]) {
    let root = csra_test_support::data_dir().join("coco-mini");
    let annotations = root.join(format!("annotations/instances_{split}.json"));
    let images_dir = root.join(split);
    let data = coco::read(&annotations, &images_dir).unwrap();

    let json: Value = serde_json::from_slice(&std::fs::read(&annotations).unwrap()).unwrap();
    assert_eq!(json["images"].as_array().unwrap().len(), images);
    let expected_skipped: BTreeSet<String> = unannotated.iter().map(|s| s.to_string()).collect();
    assert_eq!(raw_unannotated(&json), expected_skipped);

    assert_eq!(data.classes, LabelSet::coco());
    assert_eq!(data.samples.len(), images - unannotated.len());
    let skipped: BTreeSet<String> = data
        .skipped
        .iter()
        .map(|s| s.image.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(skipped, expected_skipped);
    assert_eq!(data.positive_counts(), raw_coco_positive_counts(&json));
    assert!(data.ignored_counts().iter().all(|&n| n == 0));
    for sample in &data.samples {
        assert!(
            sample.image.is_file(),
            "{} is missing",
            sample.image.display()
        );
        assert_eq!(sample.target.len(), 80);
        assert!(
            sample.target.iter().any(|&t| t),
            "a kept image has a positive class"
        );
    }
    let names: Vec<_> = data.samples.iter().map(|s| s.image.clone()).collect();
    let mut sorted = names.clone();
    // COCO file names are the zero-padded image id, so id order is name order.
    sorted.sort();
    assert_eq!(names, sorted, "samples are in ascending image id order");
}

#[test]
fn coco_mini_train2017() {
    check_coco_split("train2017", 209, &["000000262284.jpg"]);
}

#[test]
fn coco_mini_val2017() {
    check_coco_split("val2017", 127, &["000000226111.jpg", "000000058636.jpg"]);
}

fn voc_main() -> std::path::PathBuf {
    csra_test_support::data_dir().join("voc2007-imagesets/Main")
}

/// How many lines of an ImageSets class file carry `label`.
fn raw_label_count(path: &Path, label: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| line.split_whitespace().nth(1) == Some(label))
        .count()
}

#[test]
fn voc2007_imagesets_test() {
    let main = voc_main();
    let data = voc::read_imagesets(&main, "test", Path::new("VOC2007/JPEGImages")).unwrap();
    assert_eq!(data.samples.len(), 4952);
    assert_eq!(data.classes, LabelSet::voc());

    let first = &data.samples[0];
    assert_eq!(first.image, Path::new("VOC2007/JPEGImages/000001.jpg"));
    let positives: BTreeSet<&str> = (0..20)
        .filter(|&c| first.target[c])
        .map(|c| VOC_CLASSES[c])
        .collect();
    assert_eq!(positives, BTreeSet::from(["dog", "person"]));

    let person = data.classes.index_of("person").unwrap();
    let person_file = main.join("person_test.txt");
    assert_eq!(
        data.ignored_counts()[person],
        raw_label_count(&person_file, "0")
    );
    assert!(data.ignored_counts()[person] > 0);
    for (c, name) in VOC_CLASSES.iter().enumerate() {
        let file = main.join(format!("{name}_test.txt"));
        assert_eq!(
            data.positive_counts()[c],
            raw_label_count(&file, "1"),
            "{name}"
        );
    }
    for sample in &data.samples {
        assert!(!sample
            .target
            .iter()
            .zip(&sample.ignore)
            .any(|(&t, &i)| t && i));
    }
}

#[test]
fn voc2007_imagesets_trainval() {
    let main = voc_main();
    let data = voc::read_imagesets(&main, "trainval", Path::new("JPEGImages")).unwrap();
    assert_eq!(data.samples.len(), 5011);
    let dog = data.classes.index_of("dog").unwrap();
    let dog_file = main.join("dog_trainval.txt");
    assert_eq!(data.positive_counts()[dog], raw_label_count(&dog_file, "1"));
    assert_eq!(data.ignored_counts()[dog], raw_label_count(&dog_file, "0"));
}
