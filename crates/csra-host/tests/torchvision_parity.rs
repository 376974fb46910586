//! The tch backbones against torchvision 0.26 itself: every architecture's state dict, written
//! by torch.save with random BatchNorm statistics, loads name for name, and gives the same
//! feature maps in eval and train mode and the same BatchNorm buffer updates.
//!
//! Needs the Python references with torchvision (`CSRA_PYTHON` or the workspace's `.venv`, see
//! csra-test-support); fails without them.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use csra_core::HeadSpec;
use csra_host::weights::{load_backbone, read_tensors};
use csra_host::{Arch, CsraModel, ModelConfig, BACKBONE_PREFIX};
use tch::nn::VarStore;
use tch::{Device, Tensor};

/// f32 convolutions summed in another order than PyTorch's, through up to 100 layers.
const TOLERANCE: f64 = 1e-4;

#[test]
fn backbones_match_torchvision() {
    let dir = tempfile::tempdir().unwrap();
    let archs: Vec<String> = Arch::ALL.iter().map(ToString::to_string).collect();
    let mut args = vec![dir.path()];
    args.extend(archs.iter().map(std::path::Path::new));
    common::run_python("torchvision_features.py", &args);

    for arch in Arch::ALL {
        let mut vs = VarStore::new(Device::Cpu);
        let config = ModelConfig {
            arch,
            head: HeadSpec::baseline(),
            num_classes: 3,
            freeze_bn: false,
        };
        let model = CsraModel::new(&vs.root(), &config).unwrap();
        let report = load_backbone(&mut vs, &dir.path().join(format!("{arch}.pth"))).unwrap();
        let classifier = match arch {
            Arch::MobileNetV2 => ["classifier.1.weight", "classifier.1.bias"],
            _ => ["fc.weight", "fc.bias"],
        };
        assert_eq!(
            report.unexpected, classifier,
            "{arch}: only the classifier is left"
        );
        let backbone_vars = vs
            .variables()
            .keys()
            .filter(|n| n.starts_with(&format!("{BACKBONE_PREFIX}.")))
            .count();
        assert_eq!(report.loaded, backbone_vars, "{arch}");

        let expected: HashMap<String, Tensor> =
            read_tensors(&dir.path().join(format!("{arch}_expected.pth")))
                .unwrap()
                .into_iter()
                .collect();
        let input = &expected["input"];
        let eval = tch::no_grad(|| model.features(input, false));
        let error = common::relative_error(&eval, &expected["eval"]);
        assert!(error <= TOLERANCE, "{arch} eval: relative error {error}");
        assert_eq!(eval.size()[1], arch.feature_dim(), "{arch}");

        let train = tch::no_grad(|| model.features(input, true));
        let error = common::relative_error(&train, &expected["train"]);
        assert!(error <= TOLERANCE, "{arch} train: relative error {error}");

        let variables = vs.variables();
        let mut buffers = 0;
        for (name, value) in &expected {
            let Some(name) = name.strip_prefix("after.") else {
                continue;
            };
            let ours = &variables[&format!("{BACKBONE_PREFIX}.{name}")];
            if name.ends_with("num_batches_tracked") {
                assert!(ours.equal(value), "{arch} {name}: {ours} != {value}");
            } else {
                let error = common::relative_error(ours, value);
                assert!(error <= TOLERANCE, "{arch} {name}: relative error {error}");
            }
            buffers += 1;
        }
        assert!(buffers > 0, "{arch}: no BatchNorm buffers to compare");
    }
}
