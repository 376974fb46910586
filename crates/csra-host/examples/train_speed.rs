//! Training throughput of a CSRA model on random data: forward, backward and SGD step, in
//! images per second, with and without channels-last memory format. It reports the mean over
//! all steps and the fastest step, which is robust to other processes sharing the CPU.
//!
//! ```text
//! cargo run --release -p csra-host --example train_speed -- [arch] [batch] [size] [steps]
//! ```
//! Defaults: mobilenet_v2, 16, 224, 10 (after 2 warm-up steps). The number of threads is
//! libtorch's default unless `CSRA_THREADS` is set.

use std::time::Instant;

use csra_core::HeadSpec;
use csra_host::{Arch, CsraModel, ModelConfig};
use tch::nn::{OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As the csra-host binary does, so the step is measured as training runs it.
    csra_host::allocator::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arch: Arch = args
        .first()
        .map_or("mobilenet_v2", String::as_str)
        .parse()?;
    let batch: i64 = args.get(1).map_or(Ok(16), |s| s.parse())?;
    let size: i64 = args.get(2).map_or(Ok(224), |s| s.parse())?;
    let steps: usize = args.get(3).map_or(Ok(10), |s| s.parse())?;
    if let Some(threads) = std::env::var("CSRA_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        tch::set_num_threads(threads);
    }
    let device = Device::cuda_if_available();
    println!(
        "{arch}, batch {batch}, {size}x{size}, {steps} steps, {device:?}, {} threads",
        tch::get_num_threads()
    );
    for channels_last in [false, true] {
        let (mean, best) = measure(arch, batch, size, steps, device, channels_last)?;
        println!(
            "channels_last={channels_last}: {mean:.1} img/s mean, {best:.1} img/s fastest step \
             (forward+backward+step)"
        );
    }
    Ok(())
}

fn measure(
    arch: Arch,
    batch: i64,
    size: i64,
    steps: usize,
    device: Device,
    channels_last: bool,
) -> Result<(f64, f64), Box<dyn std::error::Error>> {
    tch::manual_seed(0);
    let vs = VarStore::new(device);
    let config = ModelConfig {
        arch,
        head: HeadSpec::csra(1, 0.1)?,
        num_classes: 80,
        freeze_bn: true,
    };
    let mut model = CsraModel::new(&vs.root(), &config)?;
    if channels_last {
        model.to_channels_last(&vs)?;
    }
    let mut opt = tch::nn::Sgd {
        momentum: 0.9,
        wd: 1e-4,
        ..Default::default()
    }
    .build(&vs, 0.01)?;
    let images = Tensor::randn([batch, 3, size, size], (Kind::Float, device));
    let targets = Tensor::randint(2, [batch, 80], (Kind::Float, device));
    let mut step = || {
        let logits = model.forward_t(&images, true);
        let loss = logits.binary_cross_entropy_with_logits::<Tensor>(
            &targets,
            None,
            None,
            tch::Reduction::Mean,
        );
        opt.backward_step(&loss);
        f64::try_from(loss).map(drop)
    };
    for _ in 0..2 {
        step()?;
    }
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let start = Instant::now();
        step()?;
        times.push(start.elapsed().as_secs_f64());
    }
    let total: f64 = times.iter().sum();
    let fastest = times.iter().copied().fold(f64::INFINITY, f64::min);
    Ok((batch as f64 * steps as f64 / total, batch as f64 / fastest))
}
