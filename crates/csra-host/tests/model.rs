//! CsraModel: parameter names, frozen BatchNorm, head swapping, attention maps, channels-last,
//! and the Arch names.
#![allow(clippy::unwrap_used)]

mod common;

use csra_core::HeadSpec;
use csra_host::{Arch, CsraModel, ModelConfig, ModelError, BACKBONE_PREFIX, HEAD_PREFIX};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn config(arch: Arch, head: HeadSpec, freeze_bn: bool) -> ModelConfig {
    ModelConfig {
        arch,
        head,
        num_classes: 5,
        freeze_bn,
    }
}

fn images() -> Tensor {
    tch::manual_seed(7);
    Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu))
}

fn snapshot(vs: &VarStore, name: &str) -> Vec<u8> {
    common::bytes(&vs.variables()[name])
}

#[test]
fn parameters_live_under_the_backbone_and_head_prefixes() {
    let vs = VarStore::new(Device::Cpu);
    let _model = CsraModel::new(
        &vs.root(),
        &config(Arch::MobileNetV2, HeadSpec::csra(2, 0.1).unwrap(), false),
    )
    .unwrap();
    let variables = vs.variables();
    for name in [
        "backbone.features.0.0.weight",
        "backbone.features.1.conv.0.0.weight",
        "backbone.features.17.conv.3.running_var",
        "backbone.features.18.1.num_batches_tracked",
        "head.multi_head.0.head.weight",
        "head.multi_head.1.head.weight",
    ] {
        assert!(variables.contains_key(name), "{name} missing");
    }
    assert!(variables
        .keys()
        .all(|n| n.starts_with(&format!("{BACKBONE_PREFIX}."))
            || n.starts_with(&format!("{HEAD_PREFIX}."))));
    assert_eq!(
        variables["head.multi_head.0.head.weight"].size(),
        [5, 1280, 1, 1]
    );
}

#[test]
fn frozen_batch_norm_uses_running_statistics_and_keeps_them() {
    let vs = VarStore::new(Device::Cpu);
    let model = CsraModel::new(
        &vs.root(),
        &config(Arch::ResNet18, HeadSpec::baseline(), true),
    )
    .unwrap();
    let mean = "backbone.layer1.0.bn1.running_mean";
    let tracked = "backbone.bn1.num_batches_tracked";
    let (mean_before, tracked_before) = (snapshot(&vs, mean), snapshot(&vs, tracked));
    let images = images();
    let train = model.forward_t(&images, true);
    let eval = model.forward_t(&images, false);
    assert!(
        train.allclose(&eval, 1e-6, 1e-6, false),
        "frozen BN differs between modes"
    );
    assert_eq!(snapshot(&vs, mean), mean_before);
    assert_eq!(snapshot(&vs, tracked), tracked_before);

    // The affine parameters still train.
    train.sum(Kind::Float).backward();
    let grad = vs.variables()["backbone.layer1.0.bn1.weight"].grad();
    assert!(grad.abs().sum(Kind::Float).double_value(&[]) > 0.0);
}

#[test]
fn training_batch_norm_updates_its_statistics() {
    let vs = VarStore::new(Device::Cpu);
    let model = CsraModel::new(
        &vs.root(),
        &config(Arch::ResNet18, HeadSpec::baseline(), false),
    )
    .unwrap();
    let mean = "backbone.layer1.0.bn1.running_mean";
    let before = snapshot(&vs, mean);
    let images = images();
    let train = tch::no_grad(|| model.forward_t(&images, true));
    let eval = tch::no_grad(|| model.forward_t(&images, false));
    assert!(!train.allclose(&eval, 1e-4, 1e-4, false));
    assert_ne!(snapshot(&vs, mean), before);
    let tracked = vs.variables()["backbone.bn1.num_batches_tracked"].int64_value(&[]);
    assert_eq!(tracked, 1);
}

#[test]
fn a_baseline_evaluates_with_the_max_head_on_the_same_parameters() {
    let vs = VarStore::new(Device::Cpu);
    let model = CsraModel::new(
        &vs.root(),
        &config(Arch::MobileNetV2, HeadSpec::baseline(), true),
    )
    .unwrap();
    let images = images();
    let features = tch::no_grad(|| model.features(&images, false));
    let baseline = tch::no_grad(|| model.forward_t(&images, false));

    let lambda = 0.2;
    let model = model
        .with_head_spec(HeadSpec::max(lambda).unwrap())
        .unwrap();
    assert_eq!(model.config().head, HeadSpec::max(lambda).unwrap());
    let max = tch::no_grad(|| model.forward_t(&images, false));

    // mean + λ·max of the FC scores at every location, computed here by hand.
    let variables = vs.variables();
    let (weight, bias) = (&variables["head.fc.weight"], &variables["head.fc.bias"]);
    let scores = weight.matmul(&features.flatten(2, -1)) + bias.unsqueeze(-1);
    let expected =
        scores.mean_dim(2, false, Kind::Float) + scores.amax([2], false) * f64::from(lambda);
    assert!(common::relative_error(&max, &expected) < 1e-5);
    let gap = scores.mean_dim(2, false, Kind::Float);
    assert!(common::relative_error(&baseline, &gap) < 1e-5);
}

#[test]
fn heads_with_other_parameters_cannot_be_swapped_in() {
    let vs = VarStore::new(Device::Cpu);
    let csra = HeadSpec::csra(2, 0.1).unwrap();
    let model = CsraModel::new(&vs.root(), &config(Arch::MobileNetV2, csra, true)).unwrap();
    // Same parameters, another λ: allowed.
    let model = model
        .with_head_spec(HeadSpec::csra(2, 0.5).unwrap())
        .unwrap();
    for spec in [HeadSpec::baseline(), HeadSpec::csra(1, 0.1).unwrap()] {
        let vs = VarStore::new(Device::Cpu);
        let other = CsraModel::new(&vs.root(), model.config()).unwrap();
        let err = other.with_head_spec(spec).unwrap_err();
        assert!(matches!(err, ModelError::HeadLayout { .. }), "{err}");
    }
}

#[test]
fn attention_maps_cover_the_feature_map_and_sum_to_one() {
    let vs = VarStore::new(Device::Cpu);
    let model = CsraModel::new(
        &vs.root(),
        &config(Arch::ResNet18, HeadSpec::csra(1, 0.1).unwrap(), true),
    )
    .unwrap();
    let images = Tensor::randn([2, 3, 96, 64], (Kind::Float, Device::Cpu));
    let (logits, attention) = model.forward_with_attention(&images);
    assert_eq!(logits.size(), [2, 5]);
    assert_eq!(attention.size(), [2, 5, 3, 2]);
    let sums = attention.sum_dim_intlist([2, 3].as_slice(), false, Kind::Float);
    assert!(sums.allclose(
        &Tensor::ones([2, 5], (Kind::Float, Device::Cpu)),
        1e-5,
        1e-5,
        false
    ));
    assert!(logits.allclose(&model.forward_t(&images, false), 1e-6, 1e-6, false));
}

#[test]
fn channels_last_gives_the_same_results_and_trains() {
    let vs = VarStore::new(Device::Cpu);
    let mut model = CsraModel::new(
        &vs.root(),
        &config(Arch::MobileNetV2, HeadSpec::csra(1, 0.1).unwrap(), true),
    )
    .unwrap();
    let images = images();
    let before = tch::no_grad(|| model.forward_t(&images, false));
    model.to_channels_last(&vs).unwrap();
    let weight = &vs.variables()["backbone.features.0.0.weight"];
    assert_eq!(weight.size(), [32, 3, 3, 3]);
    assert_eq!(weight.stride(), [27, 1, 9, 3], "NHWC strides");
    let after = model.forward_t(&images, true);
    assert!(common::relative_error(&after, &before) < 1e-5);
    after.sum(Kind::Float).backward();
    assert!(weight.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);

    // A checkpoint in libtorch's format restores the values into a plain model.
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("model.ot");
    vs.save(&checkpoint).unwrap();
    let mut restored_vs = VarStore::new(Device::Cpu);
    let restored = CsraModel::new(&restored_vs.root(), model.config()).unwrap();
    restored_vs.load(&checkpoint).unwrap();
    let again = tch::no_grad(|| restored.forward_t(&images, false));
    assert!(common::relative_error(&again, &before) < 1e-5);
}

#[test]
fn zero_classes_are_refused() {
    let vs = VarStore::new(Device::Cpu);
    let mut zero = config(Arch::ResNet18, HeadSpec::baseline(), false);
    zero.num_classes = 0;
    let err = CsraModel::new(&vs.root(), &zero).unwrap_err();
    assert!(matches!(err, ModelError::ClassCount(0)), "{err}");
    assert!(
        vs.variables().is_empty(),
        "nothing is created for a refused config"
    );
}

#[test]
fn arch_names_round_trip_and_identify_state_dicts() {
    for arch in Arch::ALL {
        let name = arch.to_string();
        assert_eq!(name.parse::<Arch>().unwrap(), arch);
        assert_eq!(name.to_uppercase().parse::<Arch>().unwrap(), arch);
        assert_eq!(serde_json::to_string(&arch).unwrap(), format!("\"{name}\""));
        assert_eq!(
            serde_json::from_str::<Arch>(&format!("\"{name}\"")).unwrap(),
            arch
        );

        let vs = VarStore::new(Device::Cpu);
        let backbone = csra_host::backbone::Backbone::new(&vs.root(), arch).unwrap();
        let names: Vec<String> = vs.variables().into_keys().collect();
        assert_eq!(
            Arch::guess_from_names(names.iter().map(String::as_str)),
            Some(arch)
        );
        let dims = tch::no_grad(|| {
            backbone.forward(
                &Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu)),
                false,
            )
        })
        .size();
        assert_eq!(dims, [1, arch.feature_dim(), 2, 2], "{arch}");
    }
    assert!("resnet152".parse::<Arch>().is_err());
    assert_eq!(Arch::guess_from_names(["fc.weight", "fc.bias"]), None);
}

#[test]
fn model_config_round_trips_through_json() {
    let config = config(Arch::ResNet50, HeadSpec::csra(4, 0.5).unwrap(), true);
    let json = serde_json::to_string(&config).unwrap();
    assert!(json.contains("\"arch\":\"resnet50\""), "{json}");
    assert_eq!(serde_json::from_str::<ModelConfig>(&json).unwrap(), config);
}
