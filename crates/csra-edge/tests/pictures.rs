//! Pictures for INT8 calibration and `verify`: every readable image through the inference
//! preprocessing, unreadable ones skipped and counted, too few refused.

#![allow(clippy::unwrap_used)]

mod common;

use csra_edge::pictures::Pictures;
use csra_edge::preprocess::Preprocessor;
use csra_edge::source::Frame;

#[test]
fn pictures_equal_the_inference_preprocessing_and_bad_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 31);
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    let photos = common::photos(&["dog_0.jpg", "cat_0.jpg", "coral_grace_hopper.bmp"]);
    for photo in &photos {
        std::fs::copy(photo, images.join(photo.file_name().unwrap())).unwrap();
    }
    std::fs::write(images.join("broken.jpg"), [0xFF, 0xD8, 0xFF, 0xE0, 0, 1]).unwrap();
    let pictures = Pictures::read(images.to_str().unwrap(), &model.manifest, 3).unwrap();
    assert_eq!((pictures.len(), pictures.skipped), (3, 1));
    let mut preprocessor = Preprocessor::new(&model.manifest);
    let mut expected = vec![0.0; preprocessor.input_len()];
    for (i, name) in pictures.names.iter().enumerate() {
        let frame = Frame::encoded(std::fs::read(name).unwrap(), 0, name.clone());
        preprocessor.run(&frame, &mut expected).unwrap();
        assert_eq!(pictures.picture(i), &expected[..], "{name}");
    }
    let err = Pictures::read(images.to_str().unwrap(), &model.manifest, 4)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("3 usable picture(s) (1 could not be read or decoded), at least 4"),
        "{err}"
    );
}
