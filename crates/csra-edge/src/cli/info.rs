//! `csra-edge info MODEL`: the manifest, the ONNX inspection, and whether they agree.

use super::InfoArgs;
use csra_core::manifest::Manifest;
use csra_edge::model::{interface_problems, ModelFiles};

/// Prints the manifest summary and the ONNX report; fails when they disagree.
pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let model = ModelFiles::open(&args.model)?;
    println!("manifest {}", model.manifest_path.display());
    print!("{}", describe_manifest(&model.manifest));
    let info = csra_onnx::inspect(&model.onnx)?;
    println!();
    println!("{info}");
    let problems = interface_problems(&model.manifest, &info);
    if !problems.is_empty() {
        return Err(model.mismatch(problems).into());
    }
    println!("manifest and ONNX agree");
    Ok(())
}

fn describe_manifest(m: &Manifest) -> String {
    let input = &m.input;
    let pre = &m.preprocess;
    let mut lines = vec![
        format!("  model        {}", m.model.display()),
        format!(
            "  classes      {}: {}",
            m.num_classes,
            preview(&m.classes, 12)
        ),
        format!(
            "  input        `{}` {}×{} {:?} {:?}{}",
            input.name,
            input.width,
            input.height,
            input.layout,
            input.color,
            if input.dynamic_batch {
                ", dynamic batch"
            } else {
                ""
            }
        ),
        format!(
            "  preprocess   {:?}, (pixel · {} − {:?}) / {:?}",
            pre.resize, pre.scale, pre.mean, pre.std
        ),
        format!("  head         {}", m.head),
        format!(
            "  outputs      logits `{}`, probs `{}`, attention {}",
            m.outputs.logits,
            m.outputs.probs,
            m.outputs
                .attention
                .as_ref()
                .map_or("none".to_owned(), |a| format!("`{a}`"))
        ),
        format!(
            "  thresholds   default {}{}",
            m.thresholds.default,
            if m.thresholds.per_class.is_empty() {
                String::new()
            } else {
                format!(", {} per class", m.thresholds.per_class.len())
            }
        ),
        format!(
            "  provenance   {} on {}, {} epochs, by {}{}",
            m.provenance.backbone,
            m.provenance.dataset,
            m.provenance.epochs,
            m.provenance.created_by,
            m.provenance
                .commit
                .as_ref()
                .map_or(String::new(), |c| format!(" at {c}"))
        ),
    ];
    if let Some(metrics) = &m.metrics {
        let values: Vec<String> = metrics
            .values
            .iter()
            .map(|(k, v)| format!("{k} {:.2}", 100.0 * v))
            .collect();
        lines.push(format!(
            "  metrics      {} on {}",
            values.join(", "),
            metrics.dataset
        ));
    }
    lines.join("\n") + "\n"
}

fn preview(names: &[String], max: usize) -> String {
    let shown: Vec<&str> = names.iter().take(max).map(String::as_str).collect();
    if names.len() > max {
        format!("{}, … ({} more)", shown.join(", "), names.len() - max)
    } else {
        shown.join(", ")
    }
}
