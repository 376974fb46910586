//! `bench --backbone model.onnx`: a head family grafted on the fly onto any classifier with a
//! GAP + FC tail, so head overhead can be measured on backbones nobody trained CSRA on. The
//! classifier weights are random (latency does not depend on them), the heads replace the
//! tail at its feature map, and the family is written to a temporary folder.

use std::path::{Path, PathBuf};

use anyhow::Context;
use csra_core::head::HeadSpec;
use csra_core::labels::LabelSet;
use csra_core::manifest::{ColorOrder, OutputNames, Provenance};
use csra_onnx::graft::{classifier_feature, graft_head, GraftTarget, Normalization};
use csra_onnx::{ClassifierWeights, HeadWeights};

/// λ of the grafted CSRA heads (the paper's VOC and COCO value) and Max head.
const CSRA_LAMBDA: f32 = 0.1;
const MAX_LAMBDA: f32 = 0.2;

/// What to graft: `variants` (`csra` at each of `heads`, `max`, `baseline`) with `classes`
/// classes.
pub struct Family<'a> {
    /// The classifier to graft onto.
    pub backbone: &'a Path,
    /// Head counts for the `csra` variant.
    pub heads: &'a [usize],
    /// `csra`, `max`, `baseline`.
    pub variants: &'a [String],
    /// Output classes.
    pub classes: usize,
}

/// Grafts every member into `dir` (`heads-H`, `heads-max`, `heads-baseline`) and returns
/// their folders in the order a family folder lists them.
pub fn graft_family(family: &Family<'_>, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let backbone = family.backbone;
    let (feature, dim) = classifier_feature(backbone, None)
        .with_context(|| format!("--backbone {}", backbone.display()))?;
    let labels = LabelSet::new((0..family.classes).map(|i| format!("class_{i}")), "bench")?;
    let mut members = Vec::new();
    for variant in family.variants {
        match variant.as_str() {
            "csra" => {
                for &heads in family.heads {
                    members.push((
                        format!("heads-{heads}"),
                        HeadSpec::csra(heads, CSRA_LAMBDA)?,
                    ));
                }
            }
            "max" => members.push(("heads-max".to_owned(), HeadSpec::max(MAX_LAMBDA)?)),
            "baseline" => members.push(("heads-baseline".to_owned(), HeadSpec::baseline())),
            other => anyhow::bail!("--variants {other}: expected csra, max or baseline"),
        }
    }
    let mut folders = Vec::new();
    for (seed, (name, spec)) in members.into_iter().enumerate() {
        let folder = dir.join(&name);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        let head = random_head(spec, family.classes, dim, seed as u64)?;
        let target = GraftTarget {
            path: folder.join(csra_onnx::MODEL_FILE),
            labels: labels.clone(),
            provenance: Provenance {
                backbone: backbone.display().to_string(),
                dataset: "random weights (bench)".into(),
                epochs: 0,
                commit: None,
                note: Some(format!("{name} grafted by csra-edge bench at `{feature}`")),
                created_by: format!("csra-edge {}", env!("CARGO_PKG_VERSION")),
            },
            preprocess: Normalization::Imagenet.preprocess(),
            color: ColorOrder::Rgb,
            outputs: OutputNames::default(),
        };
        graft_head(backbone, &feature, &head, &target)
            .with_context(|| format!("grafting {name} onto {}", backbone.display()))?;
        log::info!(
            "grafted {name} onto {} at `{feature}` ({dim} channels)",
            backbone.display()
        );
        folders.push(folder);
    }
    Ok(folders)
}

/// A head with uniform random classifier rows in ±1/√dim (a linear layer's initialisation),
/// from a small deterministic generator, so runs graft the same models.
fn random_head(
    spec: HeadSpec,
    classes: usize,
    dim: usize,
    seed: u64,
) -> anyhow::Result<HeadWeights> {
    let scale = 1.0 / (dim as f32).sqrt();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        // xorshift64*: plenty for weights nobody reads.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        (bits as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    };
    let classifiers = (0..spec.num_heads())
        .map(|_| ClassifierWeights {
            weight: (0..classes * dim).map(|_| next()).collect(),
            bias: None,
        })
        .collect();
    Ok(HeadWeights::new(spec, classes, dim, classifiers)?)
}
