//! `csra-edge bench --profile-ops`: where tract spends a frame, per operator kind of its
//! optimised plan, so a slow kernel can be named (and reported upstream) rather than guessed.

use std::path::PathBuf;

use serde::Serialize;

use super::bench_input;
use crate::cli::BenchArgs;
use csra_edge::backend::{Backend, OpTime, TractBackend};
use csra_edge::model::ModelFiles;

/// One operator kind's share of a model's run.
#[derive(Debug, Serialize)]
struct OpRow {
    op: String,
    nodes: usize,
    ms: f64,
    pct: f64,
}

/// One model's breakdown, as `--json` prints it.
#[derive(Debug, Serialize)]
struct OpProfile {
    model: String,
    threads: usize,
    runs: usize,
    total_ms: f64,
    ops: Vec<OpRow>,
}

/// Profiles every model in tract and prints a table per model, or one JSON line each.
pub(super) fn run(models: &[(PathBuf, String)], args: &BenchArgs) -> anyhow::Result<()> {
    for (path, label) in models {
        let model = ModelFiles::open(path)?;
        let mut backend = TractBackend::load(&model, args.threads)?;
        let input = bench_input(backend.input_len());
        for _ in 0..args.warmup {
            backend.run(&input)?;
        }
        let profile = profile_of(label, backend.profile_ops(&input, args.runs)?, args);
        if args.json {
            println!("{}", serde_json::to_string(&profile)?);
        } else {
            println!("{}", table(&profile));
        }
    }
    Ok(())
}

fn profile_of(label: &str, ops: Vec<OpTime>, args: &BenchArgs) -> OpProfile {
    let total_ms: f64 = ops.iter().map(|o| o.ms).sum();
    let ops = ops
        .into_iter()
        .map(|o| OpRow {
            pct: share(o.ms, total_ms),
            op: o.op,
            nodes: o.nodes,
            ms: o.ms,
        })
        .collect();
    OpProfile {
        model: label.to_owned(),
        threads: args.threads.max(1),
        runs: args.runs,
        total_ms,
        ops,
    }
}

/// `part` as a percentage of `total` (0 for an empty run).
fn share(part: f64, total: f64) -> f64 {
    if total > 0.0 {
        100.0 * part / total
    } else {
        0.0
    }
}

fn table(profile: &OpProfile) -> String {
    let mut lines = vec![
        format!(
            "{}: tract, {} thread(s), {:.3} ms per run in operators (median of {} runs)",
            profile.model, profile.threads, profile.total_ms, profile.runs
        ),
        format!("{:<24} {:>6} {:>10} {:>7}", "operator", "nodes", "ms", "%"),
    ];
    for row in &profile.ops {
        lines.push(format!(
            "{:<24} {:>6} {:>10.3} {:>6.1}%",
            row.op, row.nodes, row.ms, row.pct
        ));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_an_empty_run_has_none() {
        assert_eq!(share(1.5, 6.0), 25.0);
        assert_eq!(share(0.0, 0.0), 0.0);
    }
}
