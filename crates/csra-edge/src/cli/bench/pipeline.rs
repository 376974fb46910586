//! `bench --pipeline PHOTO`: the whole frame path on camera frames made from a photo, 1280×720
//! MJPEG and YUYV, stage by stage: decoding, preprocessing (decode, resize, normalise, as the
//! pipeline runs it), the network and post-processing.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use csra_core::manifest::Manifest;
use csra_edge::backend::Backend;
use csra_edge::postprocess::{PostprocessConfig, Postprocessor};
use csra_edge::preprocess::Preprocessor;
use csra_edge::source::synthetic::{encode_photo, CameraCodec};
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
}

/// Times `runs` frames of each codec through `backend`, after `warmup` untimed ones.
pub fn measure(
    photo: &Path,
    manifest: &Manifest,
    backend: &mut dyn Backend,
    warmup: usize,
    runs: usize,
) -> anyhow::Result<Vec<PipelineRow>> {
    let mut rows = Vec::new();
    for codec in [CameraCodec::Mjpeg, CameraCodec::Yuyv] {
        let (width, height) = FRAME_SIZE;
        let data = encode_photo(photo, codec, width, height)
            .with_context(|| format!("--pipeline {}", photo.display()))?;
        let frame = Frame {
            format: codec.pixel_format(),
            width,
            height,
            stride: codec.stride(width),
            ..Frame::encoded(data, 0, photo.display().to_string())
        };
        rows.push(time_codec(codec, &frame, manifest, backend, warmup, runs)?);
    }
    Ok(rows)
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
}
