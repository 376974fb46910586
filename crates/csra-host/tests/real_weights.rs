//! The real ImageNet MobileNetV2 of `../shared/data/weights`: both file formats, an ImageNet
//! prediction on a real photo, and the errors a wrong file gives.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use csra_core::HeadSpec;
use csra_host::weights::{load_backbone, read_tensors, WeightsError};
use csra_host::{Arch, CsraModel, ModelConfig};
use image::imageops::FilterType;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn weights(ext: &str) -> PathBuf {
    common::data_dir().join(format!("weights/mobilenet_v2_imagenet.{ext}"))
}

fn model(vs: &VarStore, arch: Arch, head: HeadSpec, num_classes: usize) -> CsraModel {
    let config = ModelConfig {
        arch,
        head,
        num_classes,
        freeze_bn: true,
    };
    CsraModel::new(&vs.root(), &config).unwrap()
}

#[test]
fn pth_and_safetensors_hold_identical_tensors() {
    let pth = read_tensors(&weights("pth")).unwrap();
    let safetensors: HashMap<String, Tensor> = read_tensors(&weights("safetensors"))
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        pth.len(),
        314,
        "torchvision mobilenet_v2 has 314 state-dict entries"
    );
    assert_eq!(pth.len(), safetensors.len());
    for (name, tensor) in &pth {
        let other = &safetensors[name];
        assert_eq!(tensor.size(), other.size(), "{name}");
        assert_eq!(tensor.kind(), other.kind(), "{name}");
        assert_eq!(common::bytes(tensor), common::bytes(other), "{name}");
    }
    let tracked = pth
        .iter()
        .find(|(n, _)| n == "features.0.1.num_batches_tracked")
        .unwrap();
    assert_eq!(tracked.1.kind(), Kind::Int64);
}

#[test]
fn backbone_and_imagenet_classifier_recognise_grace_hopper() {
    let mut vs = VarStore::new(Device::Cpu);
    // GAP + FC over the 1000 ImageNet classes is exactly torchvision's classifier in eval mode.
    let model = model(&vs, Arch::MobileNetV2, HeadSpec::baseline(), 1000);
    let report = load_backbone(&mut vs, &weights("pth")).unwrap();
    assert_eq!(report.loaded, 312);
    assert_eq!(
        report.unexpected,
        ["classifier.1.weight", "classifier.1.bias"]
    );
    let tensors: HashMap<String, Tensor> =
        read_tensors(&weights("pth")).unwrap().into_iter().collect();
    let variables = vs.variables();
    for (ours, theirs) in [
        ("head.fc.weight", "classifier.1.weight"),
        ("head.fc.bias", "classifier.1.bias"),
    ] {
        let mut var = variables[ours].shallow_clone();
        tch::no_grad(|| var.copy_(&tensors[theirs]));
    }

    let photo = common::data_dir().join("photos/coral_grace_hopper.bmp");
    let image = image::open(&photo).unwrap().to_rgb8();
    let image = image::imageops::resize(&image, 224, 224, FilterType::Triangle);
    let hwc = Tensor::from_slice(image.as_raw()).reshape([224, 224, 3]);
    let input = (hwc.permute([2, 0, 1]).to_kind(Kind::Float) / 127.5 - 1.0).unsqueeze(0);
    let logits = tch::no_grad(|| model.forward_t(&input, false));

    let labels =
        std::fs::read_to_string(common::data_dir().join("weights/imagenet_labels.txt")).unwrap();
    let labels: Vec<&str> = labels.lines().collect();
    assert_eq!(labels.len(), 1001);
    let (_, top5) = logits.squeeze_dim(0).topk(5, 0, true, true);
    let top5: Vec<&str> = Vec::<i64>::try_from(top5)
        .unwrap()
        .into_iter()
        .map(|i| labels[usize::try_from(i).unwrap() + 1])
        .collect();
    assert!(top5.contains(&"military uniform"), "top-5: {top5:?}");
}

#[test]
fn mobilenet_weights_into_a_resnet_say_which_arch_they_are() {
    let mut vs = VarStore::new(Device::Cpu);
    let _model = model(&vs, Arch::ResNet18, HeadSpec::baseline(), 10);
    let before = common::bytes(&vs.variables()["backbone.conv1.weight"]);
    let err = load_backbone(&mut vs, &weights("safetensors")).unwrap_err();
    assert!(
        matches!(
            err,
            WeightsError::WrongArch {
                file_arch: Arch::MobileNetV2,
                model_arch: Arch::ResNet18,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("--arch mobilenet_v2"), "{err}");
    assert_eq!(
        before,
        common::bytes(&vs.variables()["backbone.conv1.weight"])
    );
}

/// Writes the real tensors, changed by `edit`, to a safetensors file.
fn edited_copy(dir: &tempfile::TempDir, edit: impl Fn(&mut Vec<(String, Tensor)>)) -> PathBuf {
    let mut tensors = read_tensors(&weights("safetensors")).unwrap();
    edit(&mut tensors);
    let path = dir.path().join("edited.safetensors");
    Tensor::write_safetensors(&tensors, &path).unwrap();
    path
}

#[test]
fn a_missing_tensor_is_named_and_nothing_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited_copy(&dir, |tensors| {
        tensors.retain(|(n, _)| n != "features.5.conv.1.1.running_var");
    });
    let mut vs = VarStore::new(Device::Cpu);
    let _model = model(&vs, Arch::MobileNetV2, HeadSpec::baseline(), 10);
    let before = common::bytes(&vs.variables()["backbone.features.0.0.weight"]);
    let err = load_backbone(&mut vs, &path).unwrap_err();
    match &err {
        WeightsError::Missing { missing, .. } => {
            assert_eq!(missing, &["features.5.conv.1.1.running_var"]);
        }
        other => panic!("expected Missing, got {other}"),
    }
    assert!(err.to_string().contains("edited.safetensors"), "{err}");
    assert_eq!(
        before,
        common::bytes(&vs.variables()["backbone.features.0.0.weight"]),
        "a failed load changed the model"
    );
}

#[test]
fn a_wrong_shape_names_the_tensor_and_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited_copy(&dir, |tensors| {
        for (name, tensor) in tensors.iter_mut() {
            if name == "features.3.conv.0.0.weight" {
                *tensor = tensor.narrow(0, 0, 100);
            }
        }
    });
    let mut vs = VarStore::new(Device::Cpu);
    let _model = model(&vs, Arch::MobileNetV2, HeadSpec::baseline(), 10);
    let err = load_backbone(&mut vs, &path).unwrap_err().to_string();
    for part in [
        "features.3.conv.0.0.weight",
        "[100, 24, 1, 1]",
        "[144, 24, 1, 1]",
    ] {
        assert!(err.contains(part), "{part} not in: {err}");
    }
}

#[test]
fn broken_files_fail_with_a_message_that_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let pth = std::fs::read(weights("pth")).unwrap();
    let safetensors = std::fs::read(weights("safetensors")).unwrap();
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "truncated.pth",
            pth[..pth.len() / 2].to_vec(),
            "broken zip archive",
        ),
        (
            "truncated.safetensors",
            safetensors[..safetensors.len() / 2].to_vec(),
            "not a valid safetensors file",
        ),
        (
            "labels.pth",
            b"background\ntench\n".to_vec(),
            "not a weights file",
        ),
        ("empty.safetensors", Vec::new(), "the file is empty"),
        (
            "legacy.pth",
            vec![
                0x80, 2, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
                b'.',
            ],
            "legacy torch.save format",
        ),
    ];
    for (name, bytes, message) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = read_tensors(&path).unwrap_err().to_string();
        assert!(err.contains(message), "{name}: {err}");
        assert!(
            err.contains(name),
            "{name}: the message does not name the file: {err}"
        );
        let mut vs = VarStore::new(Device::Cpu);
        let _model = model(&vs, Arch::MobileNetV2, HeadSpec::baseline(), 10);
        assert!(load_backbone(&mut vs, &path).is_err(), "{name}");
    }
    let missing = dir.path().join("missing.pth");
    let err = read_tensors(&missing).unwrap_err().to_string();
    assert!(
        err.contains("missing.pth") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn a_zip_that_torch_did_not_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photos.pth");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    zip.start_file("photo.jpg", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, b"not really").unwrap();
    zip.finish().unwrap();
    let err = read_tensors(&path).unwrap_err().to_string();
    assert!(err.contains("no <name>/data.pkl"), "{err}");
    assert!(err.contains(".safetensors"), "suggests an export: {err}");
}
