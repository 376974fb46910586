//! `bench --pipeline PHOTO`: the whole frame path on camera frames made from a photo, 1280×720
//! MJPEG and YUYV, stage by stage: decoding, preprocessing (decode, resize, normalise, as the
//! pipeline runs it), the network and post-processing; then frames per second through the run
//! loop itself, with each frame preprocessed in turn and with the next one prefetched while
//! the network runs.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Context;
use csra_core::manifest::Manifest;
use csra_edge::backend::Backend;
use csra_edge::pipeline::{Pipeline, PipelineOptions};
use csra_edge::postprocess::{PostprocessConfig, Postprocessor};
use csra_edge::preprocess::Preprocessor;
use csra_edge::source::synthetic::{camera_frame, CameraCodec, RepeatedFrame};
use csra_edge::source::Frame;
use csra_image::Decoder;
use serde::Serialize;

use super::Latency;

/// The frame size `--pipeline` times: a 720p camera.
pub const FRAME_SIZE: (u32, u32) = (1280, 720);

/// One codec's frame path, p50 per stage.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineRow {
    /// `mjpeg` or `yuyv`.
    pub codec: &'static str,
    /// Decoding alone (JPEG to RGB, or YUYV to RGB), timed on its own.
    pub decode_ms: f64,
    /// Decoding, resizing and normalising into the input, as the pipeline does it.
    pub preprocess_ms: f64,
    /// The network.
    pub network_ms: f64,
    /// Smoothing, thresholds and events.
    pub postprocess_ms: f64,
    /// All of it, frame in to labels out.
    pub total_ms: f64,
    /// Preprocessing and post-processing as a percentage of the network.
    pub overhead_pct: f64,
    /// Frames per second through the run loop, each frame read and preprocessed in turn.
    pub in_turn_fps: f64,
    /// The same with the next frame prefetched while the network runs (`--prefetch`).
    pub prefetch_fps: f64,
    /// What the run loop with prefetch spends per frame beyond the network's p50, as a
    /// percentage of it.
    pub prefetch_overhead_pct: f64,
}

/// Rounds of the run-loop timing, the two ways alternating; the median round counts.
const LOOP_ROUNDS: usize = 3;

/// Times `runs` frames of each codec through `backend`, after `warmup` untimed ones, stage by
/// stage and through the run loop; gives the backend back.
pub fn measure(
    photo: &Path,
    manifest: &Manifest,
    mut backend: Box<dyn Backend>,
    warmup: usize,
    runs: usize,
) -> anyhow::Result<(Vec<PipelineRow>, Box<dyn Backend>)> {
    let mut rows = Vec::new();
    for codec in [CameraCodec::Mjpeg, CameraCodec::Yuyv] {
        let (width, height) = FRAME_SIZE;
        let frame = camera_frame(photo, codec, width, height)
            .with_context(|| format!("--pipeline {}", photo.display()))?;
        let mut row = time_codec(codec, &frame, manifest, backend.as_mut(), warmup, runs)?;
        let (in_turn_fps, prefetch_fps, returned) = loop_fps(&frame, manifest, backend, runs)?;
        backend = returned;
        row.in_turn_fps = in_turn_fps;
        row.prefetch_fps = prefetch_fps;
        row.prefetch_overhead_pct = loop_overhead_pct(prefetch_fps, row.network_ms);
        rows.push(row);
    }
    Ok((rows, backend))
}

/// Frames per second through [`Pipeline::run`] over `runs` copies of `frame`, in turn and
/// with prefetch, in alternating rounds (the median round of each).
fn loop_fps(
    frame: &Frame,
    manifest: &Manifest,
    mut backend: Box<dyn Backend>,
    runs: usize,
) -> anyhow::Result<(f64, f64, Box<dyn Backend>)> {
    let mut fps: [Vec<f64>; 2] = Default::default();
    for _ in 0..LOOP_ROUNDS {
        for (prefetch, times) in [false, true].into_iter().zip(fps.iter_mut()) {
            let options = PipelineOptions {
                prefetch,
                ..PipelineOptions::default()
            };
            let post = PostprocessConfig::from_manifest(manifest, None);
            let mut pipeline = Pipeline::new(manifest, backend, post, options)?;
            let mut stream = RepeatedFrame::new(frame.clone(), runs as u64);
            // No sinks: each line is still made, as a run makes it, and dropped.
            let summary = pipeline.run(&mut stream, &mut [], &AtomicBool::new(false))?;
            times.push(summary.fps);
            backend = pipeline.into_backend();
        }
    }
    let [in_turn, prefetch] = fps.map(|mut rounds| {
        rounds.sort_by(f64::total_cmp);
        rounds[rounds.len() / 2]
    });
    Ok((in_turn, prefetch, backend))
}

/// The run loop's time per frame beyond the network's, as a percentage of the network.
pub fn loop_overhead_pct(fps: f64, network_ms: f64) -> f64 {
    100.0 * (1e3 / fps - network_ms) / network_ms
}

fn time_codec(
    codec: CameraCodec,
    frame: &Frame,
    manifest: &Manifest,
    backend: &mut dyn Backend,
    warmup: usize,
    runs: usize,
) -> anyhow::Result<PipelineRow> {
    let mut decoder = Decoder::new();
    let mut preprocessor = Preprocessor::new(manifest);
    let mut post = Postprocessor::new(PostprocessConfig::from_manifest(manifest, None));
    let mut input = vec![0.0; preprocessor.input_len()];
    let mut stages: [Vec<f64>; 5] = Default::default();
    for run in 0..warmup + runs {
        let start = Instant::now();
        decoder.decode(frame.raw())?;
        let decoded = Instant::now();
        preprocessor.run(frame, &mut input)?;
        let preprocessed = Instant::now();
        let outputs = backend.run(&input)?;
        let inferred = Instant::now();
        post.update(&outputs.probs);
        let done = Instant::now();
        if run >= warmup {
            let ms = |from: Instant, to: Instant| (to - from).as_secs_f64() * 1e3;
            stages[0].push(ms(start, decoded));
            stages[1].push(ms(decoded, preprocessed));
            stages[2].push(ms(preprocessed, inferred));
            stages[3].push(ms(inferred, done));
            stages[4].push(ms(decoded, done));
        }
    }
    let p50 = |times: &[f64]| Latency::of(times.to_vec()).map_or(0.0, |l| l.p50_ms);
    let [decode_ms, preprocess_ms, network_ms, postprocess_ms, total_ms] =
        [0, 1, 2, 3, 4].map(|i| p50(&stages[i]));
    Ok(PipelineRow {
        codec: match codec {
            CameraCodec::Mjpeg => "mjpeg",
            CameraCodec::Yuyv => "yuyv",
        },
        decode_ms,
        preprocess_ms,
        network_ms,
        postprocess_ms,
        total_ms,
        overhead_pct: overhead_pct(preprocess_ms, postprocess_ms, network_ms),
        in_turn_fps: 0.0,
        prefetch_fps: 0.0,
        prefetch_overhead_pct: 0.0,
    })
}

/// Frame-path overhead: preprocessing plus post-processing as a percentage of the network.
pub fn overhead_pct(preprocess_ms: f64, postprocess_ms: f64, network_ms: f64) -> f64 {
    100.0 * (preprocess_ms + postprocess_ms) / network_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overhead_is_the_frame_work_over_the_network() {
        assert!((overhead_pct(2.5, 0.5, 20.0) - 15.0).abs() < 1e-12);
        assert_eq!(overhead_pct(0.0, 0.0, 7.0), 0.0);
    }

    #[test]
    fn loop_overhead_is_the_time_per_frame_beyond_the_network() {
        // 100 frames/s is 10 ms a frame: 2 ms beyond an 8 ms network is 25%.
        assert!((loop_overhead_pct(100.0, 8.0) - 25.0).abs() < 1e-9);
        // A loop exactly as fast as its network has none.
        assert!(loop_overhead_pct(125.0, 8.0).abs() < 1e-9);
    }
}
