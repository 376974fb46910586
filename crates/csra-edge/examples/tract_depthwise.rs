//! The upstream reproduction for tract's depthwise convolution speed (README "Where tract
//! spends a frame"): times one ONNX file in plain tract, nothing of csra's in between, so the
//! same lines go into a tract issue as they are. `scripts/depthwise-repro.py` writes the
//! single-Conv files and times them in ONNX Runtime.
//!
//!     cargo run --release -p csra-edge --example tract_depthwise -- dw.onnx [runs]

use std::time::Instant;

use anyhow::{anyhow, Context};
use tract_onnx::prelude::*;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .context("usage: tract_depthwise FILE.onnx [runs]")?;
    let runs: usize = args.next().map_or(Ok(200), |r| r.parse())?;
    let model = tract_onnx::onnx()
        .model_for_path(&path)?
        .into_optimized()?
        .into_runnable()?;
    let fact = model.model().input_fact(0)?.clone();
    let shape: Vec<usize> = fact
        .shape
        .as_concrete()
        .ok_or_else(|| anyhow!("{path}: the input shape must be static"))?
        .to_vec();
    // csra-edge bench's input: ((i mod 251) / 125) - 1.
    let values: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|i| (i % 251) as f32 / 125.0 - 1.0)
        .collect();
    let input = Tensor::from_shape(&shape, &values)?;
    let mut state = model.spawn()?;
    for _ in 0..10 {
        state.run(tvec!(input.clone().into_tvalue()))?;
    }
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            state
                .run(tvec!(input.clone().into_tvalue()))
                .map(|_| start.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<TractResult<_>>()?;
    times.sort_by(f64::total_cmp);
    println!(
        "{path}: tract p50 {:.3} ms over {runs} runs",
        times[runs / 2]
    );
    Ok(())
}
