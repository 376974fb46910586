//! The tract backend: pure-Rust CPU inference, with tract-linalg's multithreaded matrix
//! kernels when more than one thread is asked for.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::eval;

use super::{check_input_len, cpu_description, AttentionMaps, Backend, BackendError, Outputs};
use crate::model::ModelFiles;

const ENGINE: &str = "tract";

/// A network loaded once with its input pinned to batch 1 and the manifest's size, optimised
/// and made runnable, with one execution state kept for every frame.
pub struct TractBackend {
    /// The plan's state, reused: `plan.run` would build a fresh one (its op states and
    /// buffers) for every frame.
    state: TypedSimpleState,
    input_shape: [usize; 4],
    num_classes: usize,
    has_attention: bool,
    executor: Executor,
    threads: usize,
    model: PathBuf,
}

impl TractBackend {
    /// Checks `model`'s ONNX against its manifest ([`ModelFiles::check_onnx`]) and loads it
    /// to run on `threads` threads (1 = the calling thread only).
    pub fn load(model: &ModelFiles, threads: usize) -> Result<Self, BackendError> {
        model.check_onnx()?;
        let threads = threads.max(1);
        let executor = executor(threads)?;
        let manifest = &model.manifest;
        let input_shape = model.input_shape();
        let outputs = &manifest.outputs;
        let mut names = vec![outputs.logits.clone(), outputs.probs.clone()];
        names.extend(outputs.attention.clone());
        let load_error = |reason: TractError| BackendError::Load {
            model: model.onnx.clone(),
            engine: ENGINE,
            reason: format!("{reason:#}"),
        };
        let typed = tract_onnx::onnx()
            .model_for_path(&model.onnx)
            .and_then(|m| m.with_input_fact(0, f32::fact(input_shape).into()))
            .and_then(|m| m.with_outputs_by_name(&names))
            .and_then(|m| m.into_typed())
            .map_err(load_error)?;
        let plan =
            multithread_tract_scope(executor.clone(), || typed.into_optimized()?.into_runnable())
                .map_err(load_error)?;
        let backend = Self {
            state: plan.spawn().map_err(load_error)?,
            input_shape,
            num_classes: manifest.num_classes,
            has_attention: outputs.attention.is_some(),
            executor,
            threads,
            model: model.onnx.clone(),
        };
        Ok(backend)
    }

    fn output_error(&self, reason: String) -> BackendError {
        BackendError::Outputs {
            model: self.model.clone(),
            reason,
        }
    }

    /// The values of a `[1, C]` output, checked.
    fn class_vector(&self, value: &TValue, what: &str) -> Result<Vec<f32>, BackendError> {
        let values = plain_f32(value).map_err(|e| self.output_error(format!("{what}: {e}")))?;
        if value.shape() != [1, self.num_classes] {
            return Err(self.output_error(format!(
                "the {what} output has shape {:?}, the manifest promises [1, {}]",
                value.shape(),
                self.num_classes
            )));
        }
        Ok(values)
    }

    fn attention_maps(&self, value: &TValue) -> Result<AttentionMaps, BackendError> {
        let data = plain_f32(value).map_err(|e| self.output_error(format!("attention: {e}")))?;
        match *value.shape() {
            [1, c, height, width] if c == self.num_classes => Ok(AttentionMaps {
                height,
                width,
                data,
            }),
            _ => Err(self.output_error(format!(
                "the attention output has shape {:?}, not [1, {}, h, w]",
                value.shape(),
                self.num_classes
            ))),
        }
    }
}

/// The time one kind of tract operator took in a profiled run of the optimised plan.
#[derive(Debug, Clone, PartialEq)]
pub struct OpTime {
    /// tract's name for the operator after optimisation, e.g. `DepthWiseConv` or `OptMatMul`.
    pub op: String,
    /// How many nodes of the plan run it.
    pub nodes: usize,
    /// Milliseconds per run, summed over those nodes (the median run's).
    pub ms: f64,
}

impl TractBackend {
    /// Runs `input` through the plan `runs` times, timing every node, and returns the time per
    /// operator kind of the median run (by total), slowest first: where tract spends a frame.
    pub fn profile_ops(&mut self, input: &[f32], runs: usize) -> Result<Vec<OpTime>, BackendError> {
        check_input_len(self.input_len(), input)?;
        let mut profiles = Vec::with_capacity(runs);
        for _ in 0..runs.max(1) {
            let tensor = Tensor::from_shape(&self.input_shape, input)
                .map_err(|e| BackendError::Run(format!("{e:#}")))?;
            // Per node: (operator, time); the node count per operator falls out of the keys.
            let mut per_node: BTreeMap<usize, (String, Duration)> = BTreeMap::new();
            let state = &mut self.state;
            multithread_tract_scope(self.executor.clone(), || {
                state.run_plan_with_eval(
                    tvec!(tensor.into_tvalue()),
                    |ctx, op_state, node, inputs| {
                        let start = Instant::now();
                        let outputs = eval(ctx, op_state, node, inputs);
                        let entry = per_node
                            .entry(node.id)
                            .or_insert_with(|| (node.op().name().into_owned(), Duration::ZERO));
                        entry.1 += start.elapsed();
                        outputs
                    },
                )
            })
            .map_err(|e| BackendError::Run(format!("{e:#}")))?;
            profiles.push(per_node);
        }
        Ok(median_profile(profiles))
    }
}

/// The per-operator totals of the run whose total time is the median.
fn median_profile(mut runs: Vec<BTreeMap<usize, (String, Duration)>>) -> Vec<OpTime> {
    let total = |run: &BTreeMap<usize, (String, Duration)>| -> Duration {
        run.values().map(|(_, t)| *t).sum()
    };
    runs.sort_by_key(total);
    let Some(run) = runs.get(runs.len() / 2) else {
        return Vec::new();
    };
    let mut by_op: BTreeMap<&str, (usize, Duration)> = BTreeMap::new();
    for (op, time) in run.values() {
        let entry = by_op.entry(op).or_default();
        entry.0 += 1;
        entry.1 += *time;
    }
    let mut ops: Vec<OpTime> = by_op
        .into_iter()
        .map(|(op, (nodes, time))| OpTime {
            op: op.to_owned(),
            nodes,
            ms: time.as_secs_f64() * 1e3,
        })
        .collect();
    ops.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    ops
}

fn plain_f32(value: &TValue) -> TractResult<Vec<f32>> {
    Ok(value.try_as_plain_ram()?.as_slice::<f32>()?.to_vec())
}

/// One rayon pool for tract's kernels; built here rather than by tract, which panics when the
/// threads cannot start.
fn executor(threads: usize) -> Result<Executor, BackendError> {
    if threads == 1 {
        return Ok(Executor::SingleThread);
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("tract-{i}"))
        .build()
        .map(|pool| Executor::MultiThread(Arc::new(pool)))
        .map_err(|e| BackendError::Threads {
            threads,
            reason: e.to_string(),
        })
}

impl Backend for TractBackend {
    fn describe(&self) -> String {
        cpu_description("tract", self.threads)
    }

    fn input_len(&self) -> usize {
        self.input_shape.iter().product()
    }

    fn run(&mut self, input: &[f32]) -> Result<Outputs, BackendError> {
        check_input_len(self.input_len(), input)?;
        let tensor = Tensor::from_shape(&self.input_shape, input)
            .map_err(|e| BackendError::Run(format!("{e:#}")))?;
        let state = &mut self.state;
        let outputs = multithread_tract_scope(self.executor.clone(), || {
            state.run(tvec!(tensor.into_tvalue()))
        })
        .map_err(|e| BackendError::Run(format!("{e:#}")))?;
        let expected = 2 + usize::from(self.has_attention);
        if outputs.len() != expected {
            return Err(self.output_error(format!(
                "the network returned {} outputs, expected {expected}",
                outputs.len()
            )));
        }
        Ok(Outputs {
            logits: self.class_vector(&outputs[0], "logits")?,
            probs: self.class_vector(&outputs[1], "probs")?,
            attention: match outputs.get(2) {
                Some(value) => Some(self.attention_maps(value)?),
                None => None,
            },
            network_ms: None,
        })
    }

    fn cpu_threads(&self) -> usize {
        self.threads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(nodes: &[(usize, &str, u64)]) -> BTreeMap<usize, (String, Duration)> {
        nodes
            .iter()
            .map(|&(id, op, ms)| (id, (op.to_owned(), Duration::from_millis(ms))))
            .collect()
    }

    #[test]
    fn the_median_run_is_summed_per_operator_slowest_first() {
        // Totals 9, 30 and 12 ms: the 12 ms run is the median, whichever order they came in.
        let runs = vec![
            run(&[(0, "Conv", 4), (1, "DepthWise", 3), (2, "Conv", 2)]),
            run(&[(0, "Conv", 10), (1, "DepthWise", 15), (2, "Conv", 5)]),
            run(&[(0, "Conv", 3), (1, "DepthWise", 7), (2, "Conv", 2)]),
        ];
        let ops = median_profile(runs);
        let summary: Vec<(&str, usize, f64)> =
            ops.iter().map(|o| (o.op.as_str(), o.nodes, o.ms)).collect();
        assert_eq!(summary, [("DepthWise", 1, 7.0), ("Conv", 2, 5.0)]);
        assert!(median_profile(Vec::new()).is_empty());
    }
}
