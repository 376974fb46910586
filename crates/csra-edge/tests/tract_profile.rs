//! `TractBackend::profile_ops` on the shipped MobileNetV2: the breakdown names the model's
//! operators, and profiling leaves the outputs as a plain run gives them.

use csra_edge::backend::{Backend, TractBackend};
use csra_edge::model::ModelFiles;
use csra_test_support::workspace_root;

#[test]
fn the_shipped_mobilenet_profile_shows_its_depthwise_convolutions() {
    let model =
        ModelFiles::open(&workspace_root().join("models/mobilenet_v2-coco-voc-mini")).unwrap();
    let mut backend = TractBackend::load(&model, 1).unwrap();
    let input: Vec<f32> = (0..backend.input_len())
        .map(|i| (i % 97) as f32 / 48.5 - 1.0)
        .collect();
    let before = backend.run(&input).unwrap();
    let ops = backend.profile_ops(&input, 3).unwrap();
    // MobileNetV2 has 17 depthwise 3x3 convolutions (one per inverted residual block), and
    // tract runs each as one DepthWiseConv node.
    let depthwise = ops.iter().find(|o| o.op == "DepthWiseConv");
    assert_eq!(depthwise.map(|o| o.nodes), Some(17), "{ops:?}");
    assert!(ops.windows(2).all(|w| w[0].ms >= w[1].ms), "{ops:?}");
    assert!(ops.iter().all(|o| o.ms >= 0.0 && o.nodes > 0));
    let after = backend.run(&input).unwrap();
    assert_eq!(before.logits, after.logits);
}
