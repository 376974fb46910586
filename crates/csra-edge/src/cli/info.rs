//! `csra-edge info MODEL`: the manifest, the ONNX inspection, and whether the model runs.
//!
//! "Runs" is decided the way a run decides it, not by a second set of rules: the model is
//! loaded into the tract backend (the manifest and ONNX interface check, then every operator)
//! and one picture goes through it, its outputs checked as every frame's are.

use anyhow::Context;

use super::InfoArgs;
use csra_core::manifest::Manifest;
use csra_edge::backend::{Backend, TractBackend};
use csra_edge::model::ModelFiles;

/// Prints the manifest summary and the ONNX report; fails when the model would not run.
pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let model = ModelFiles::open(&args.model)?;
    println!("manifest {}", model.manifest_path.display());
    print!("{}", describe_manifest(&model.manifest));
    let info = csra_onnx::inspect(&model.onnx)?;
    println!();
    println!("{info}");
    let mut backend = TractBackend::load(&model, 1)?;
    // A mid-grey picture: any input shows whether the outputs have the promised shapes.
    let input = vec![0.0; backend.input_len()];
    let outputs = backend
        .run(&input)
        .with_context(|| format!("{}: running one picture", model.onnx.display()))?;
    if let Err(reason) = outputs.check_probabilities() {
        anyhow::bail!(
            "{}: the probs output {reason}; re-export the model",
            model.onnx.display()
        );
    }
    println!(
        "manifest and ONNX agree, and the model runs on {}",
        backend.describe()
    );
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
