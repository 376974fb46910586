//! Training on several real datasets with different label spaces: coco-mini, coco-extra and
//! voc2007-mini read onto the 80 COCO classes, and the loss a VOC picture adds.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use csra_core::manifest::Preprocess;
use csra_core::LabelSet;
use csra_host::data::{Loader, LoaderConfig};
use csra_host::data_source::{read_mixed, DataSource, Role};
use csra_host::train::batch_loss;
use csra_test_support::data_dir;
use tch::{Kind, Tensor};

fn sources() -> Vec<DataSource> {
    let data = data_dir();
    vec![
        DataSource::detect(&data.join("coco-mini"), None, Role::Train).unwrap(),
        DataSource::detect(&data.join("coco-extra"), None, Role::Train).unwrap(),
        DataSource::detect(&data.join("voc2007-mini"), None, Role::Train).unwrap(),
    ]
}

/// `<class>_trainval.txt` read by hand: image id → 1 / -1 / 0.
fn voc_labels(class: &str) -> HashMap<String, i32> {
    let path = data_dir().join(format!("voc2007-mini/ImageSets/Main/{class}_trainval.txt"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.parse().ok()?))
        })
        .collect()
}

fn image_id(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

#[test]
fn three_real_datasets_are_read_onto_the_coco_classes() {
    let mixed = read_mixed(&sources(), None).unwrap();
    let coco = LabelSet::coco();
    assert_eq!(mixed.dataset.classes, coco);
    let counts: Vec<usize> = mixed.mappings.iter().map(|m| m.samples).collect();
    assert_eq!(counts.iter().sum::<usize>(), mixed.dataset.samples.len());
    assert_eq!(counts[2], 885, "voc2007-mini has 885 trainval images");
    let names: Vec<&str> = mixed.mappings.iter().map(|m| m.source.as_str()).collect();
    assert_eq!(
        names,
        [
            "coco-mini train2017",
            "coco-extra train",
            "voc2007-mini trainval"
        ]
    );
    assert!(mixed.mappings[0].mapping.unlabelled.is_empty());
    let voc = &mixed.mappings[2].mapping;
    assert_eq!(voc.unlabelled.len(), 60);
    assert_eq!(voc.renamed["aeroplane"], "airplane");
    assert_eq!(voc.renamed["diningtable"], "dining table");

    let (airplane, giraffe, table) = (
        coco.index_of("airplane").unwrap(),
        coco.index_of("giraffe").unwrap(),
        coco.index_of("dining table").unwrap(),
    );
    let (aeroplane, diningtable) = (voc_labels("aeroplane"), voc_labels("diningtable"));
    let voc_samples = &mixed.dataset.samples[counts[0] + counts[1]..];
    let mut difficult_tables = 0;
    for s in voc_samples {
        let id = image_id(&s.image);
        assert_eq!(s.target[airplane], aeroplane[&id] == 1, "{id}");
        assert_eq!(s.ignore[airplane], aeroplane[&id] == 0, "{id}");
        assert_eq!(s.ignore[table], diningtable[&id] == 0, "{id}");
        difficult_tables += usize::from(diningtable[&id] == 0);
        // VOC says nothing about giraffes: unknown, not absent.
        assert!(s.ignore[giraffe] && !s.target[giraffe], "{id}");
        assert!(s.ignore.iter().filter(|&&i| i).count() >= 60);
    }
    assert!(
        difficult_tables > 0,
        "the difficult-only labels stay ignored"
    );
    for s in &mixed.dataset.samples[..counts[0] + counts[1]] {
        assert!(s.ignore.iter().all(|&i| !i), "COCO labels every class");
    }
}

#[test]
fn a_voc_picture_adds_no_loss_on_coco_classes_voc_does_not_label() {
    let mixed = read_mixed(&sources()[2..], Some(&LabelSet::coco())).unwrap();
    let samples: Vec<_> = mixed.dataset.samples[..4].to_vec();
    let mut config = LoaderConfig::eval(4, (32, 32), Preprocess::official());
    config.workers = 1;
    let loader = Loader::new(Arc::from(samples.clone()), 80, config).unwrap();
    let batch = loader.epoch(0).next().unwrap();
    assert_eq!(batch.len(), 4);

    let logits = Tensor::randn([4, 80], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let loss = batch_loss(&logits, &batch).unwrap();
    loss.backward();
    let grad: Vec<f32> = Vec::try_from(logits.grad().flatten(0, -1)).unwrap();
    let values: Vec<f32> = Vec::try_from(logits.detach().flatten(0, -1)).unwrap();

    // The loss by hand: the mean BCE over the labels VOC gives (not difficult-only).
    let (mut sum, mut count) = (0.0f64, 0usize);
    for (row, &i) in batch.indices.iter().enumerate() {
        let s = &samples[i];
        for c in 0..80 {
            let g = grad[row * 80 + c];
            if s.ignore[c] {
                assert_eq!(
                    g, 0.0,
                    "class {c} of image {row} is unlabelled: no gradient"
                );
                continue;
            }
            assert_ne!(g, 0.0, "class {c} of image {row} is labelled");
            let x = f64::from(values[row * 80 + c]);
            let p = 1.0 / (1.0 + (-x).exp());
            sum -= if s.target[c] { p.ln() } else { (1.0 - p).ln() };
            count += 1;
        }
    }
    // At most the 20 VOC labels of each image count (320 would mean the mask is gone).
    assert!((4 * 15..=4 * 20).contains(&count), "{count}");
    let want = sum / count as f64;
    let got = loss.double_value(&[]);
    assert!((got - want).abs() < 1e-5, "loss {got}, by hand {want}");
}
