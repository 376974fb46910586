//! The main job: a model over image files or a camera, result lines on stdout.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use super::{camera, gst};
use super::{signals, Incomplete, Prefetch, RunArgs, Scores};
use csra_edge::attention::{AttentionClasses, AttentionSaver};
use csra_edge::backend::{load_backend, Backend};
use csra_edge::model::ModelFiles;
use csra_edge::pipeline::{Pipeline, PipelineOptions, StopReason, Summary};
use csra_edge::postprocess::{PostprocessConfig, Smoothing};
use csra_edge::profile::{available_cores, DeviceProfile};
use csra_edge::sink::{LineWriter, Sink};
use csra_edge::source::files::{expand_input, FileStream};
use csra_edge::source::uri::{parse_input, InputUri};
use csra_edge::source::FrameStream;

/// Runs `csra-edge [--model M] --input ...|--camera ...`.
pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    check_flags(args)?;
    let profile = profile(args.device.as_deref())?;
    let stop = signals::stop_flag()?;
    // The model first: a GStreamer input scales frames to its input size in the pipeline.
    let model = ModelFiles::locate(args.model.as_deref())?;
    let (mut stream, bad_frame_limit) = open_stream(args, &profile, &model, &stop)?;
    let manifest = &model.manifest;
    if manifest.input.width != profile.input_size || manifest.input.height != profile.input_size {
        log::info!(
            "the model takes {}×{} input; profile {} suggests {}×{}; the model's size is used",
            manifest.input.width,
            manifest.input.height,
            profile.name,
            profile.input_size,
            profile.input_size
        );
    }
    // Everything the flags can get wrong is found before the slow part (loading the network).
    let postprocess = postprocess(args, &model)?;
    let attention = attention_saver(args, &model)?;
    let backend = backend(args, &model, &profile)?;
    let options = PipelineOptions {
        events_only: args.events,
        all_scores: args.scores == Some(Scores::All),
        max_frames: args.frames,
        stats_every: Duration::from_secs_f64(args.stats_interval),
        attention,
        bad_frame_limit,
        prefetch: prefetch(args.prefetch, stream.is_live(), backend.as_ref()),
    };
    let mut pipeline = Pipeline::new(manifest, backend, postprocess, options)?;
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(LineWriter::stdout())];
    if let Some(url) = &args.mqtt {
        sinks.push(camera::mqtt_sink(url)?);
    }
    signals::running();
    let summary = pipeline.run(stream.as_mut(), &mut sinks, &stop)?;
    report(&summary)
}

/// The frames to process: what `--input` names (image files, a V4L2 camera, or a GStreamer
/// input), or the `--camera`, with the profile's defaults overridden by the `--input-*` flags;
/// and after how many bad frames in a row to give up (a whole pass over image files; never
/// for a camera or a video).
fn open_stream(
    args: &RunArgs,
    profile: &DeviceProfile,
    model: &ModelFiles,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<(Box<dyn FrameStream>, Option<u64>)> {
    if let Some(input) = &args.input {
        let images: std::ffi::OsString = match input.to_str() {
            // A name that is not UTF-8 is no URI: it names a file or a folder.
            None => input.clone(),
            Some(text) => match parse_input(text)? {
                InputUri::Images(images) => images.into(),
                InputUri::V4l2(device) => {
                    if args.looped {
                        bail!("--loop replays files; {text} is a camera");
                    }
                    return Ok((camera::camera_stream(args, profile, &device)?, None));
                }
                uri => {
                    let stream = gst::gst_stream(args, profile, model, text, &uri, stop)?;
                    return Ok((stream, None));
                }
            },
        };
        let files = expand_input(&images)?;
        log::info!(
            "reading {} image file(s) from {}",
            files.len(),
            std::path::Path::new(&images).display()
        );
        let pass = files.len() as u64;
        let stream = FileStream::new(files, args.looped).with_stop(Arc::clone(stop));
        return Ok((Box::new(stream), Some(pass)));
    }
    let Some(device) = &args.camera else {
        bail!("nothing to read: pass --input URI|PATH|DIR|GLOB (a camera, stream, video or image files) or --camera DEV");
    };
    Ok((camera::camera_stream(args, profile, device)?, None))
}

/// Checks flag values clap cannot check by type.
fn check_flags(args: &RunArgs) -> anyhow::Result<()> {
    if let Some(t) = args.threshold.filter(|t| !(0.0..=1.0).contains(t)) {
        bail!("--threshold {t}: a probability threshold lies in [0, 1]");
    }
    if args.topk == Some(0) {
        bail!("--topk 0 would report nothing; pass 1 or more, or leave it out");
    }
    if args.smoothing == Some(0) {
        bail!("--smoothing 0: the window holds at least one frame");
    }
    if let Some(a) = args.ema.filter(|a| !(*a > 0.0 && *a <= 1.0)) {
        bail!("--ema {a}: the weight of the newest frame lies in (0, 1]");
    }
    if !(0.0..=1.0).contains(&args.hysteresis) {
        bail!(
            "--hysteresis {}: the margin lies in [0, 1]",
            args.hysteresis
        );
    }
    if let Some(threads) = args.threads {
        check_threads(threads)?;
    }
    if !(args.stats_interval > 0.0 && args.stats_interval <= MAX_STATS_INTERVAL) {
        bail!(
            "--stats-interval {}: pass a number of seconds above 0 and at most {MAX_STATS_INTERVAL} (a day)",
            args.stats_interval
        );
    }
    if args.attention_every == 0 {
        bail!("--attention-every 0: pass 1 to save every frame's maps, or N for every N-th");
    }
    if args.frames == Some(0) {
        bail!("--frames 0 would run nothing; pass 1 or more, or leave it out to run to the end");
    }
    Ok(())
}

/// The longest `--stats-interval`: a day, in seconds.
const MAX_STATS_INTERVAL: f64 = 86_400.0;

/// `--threads N` for tract: 1 to this machine's cores. More threads than cores only make
/// every frame slower (1000 threads on 2 cores took 6.4 s a frame).
pub(super) fn check_threads(threads: usize) -> anyhow::Result<()> {
    let cores = available_cores();
    if threads == 0 || threads > cores {
        bail!("--threads {threads}: pass 1 to {cores} (this machine's cores)");
    }
    Ok(())
}

/// The hysteresis margin must leave every class a way to turn off: a label stays on until
/// its probability falls below threshold − margin, which never happens when that is ≤ 0.
fn check_hysteresis(config: &PostprocessConfig, threshold_from: &str) -> anyhow::Result<()> {
    let lowest = config
        .thresholds
        .iter()
        .copied()
        .fold(f32::INFINITY, f32::min);
    if config.margin > 0.0 && config.margin >= lowest {
        bail!(
            "--hysteresis {}: the margin must be smaller than the lowest threshold ({lowest}, from {threshold_from}), or a label would never turn off; pass a smaller margin or a higher --threshold",
            config.margin
        );
    }
    Ok(())
}

/// `--device NAME`, or the detected profile.
pub(super) fn profile(device: Option<&str>) -> anyhow::Result<DeviceProfile> {
    let profile = match device {
        Some(name) => DeviceProfile::named(name)?,
        None => {
            let profile = DeviceProfile::detect()?;
            log::info!(
                "device profile {} (detected; choose another with --device NAME)",
                profile.name
            );
            profile
        }
    };
    log_build_cpu(&profile);
    Ok(profile)
}

/// Says which CPU features the build assumes, and when the profile's board has a tuned
/// build that this one is not.
fn log_build_cpu(profile: &DeviceProfile) {
    let assumed = csra_edge::cpu_features::assumed();
    match (&profile.target_cpu, assumed.is_empty()) {
        (Some(cpu), true) => log::info!(
            "portable build; `scripts/build-edge.sh --device {}` builds for this board's {cpu}",
            profile.name
        ),
        (_, false) => log::info!("built for CPUs with {}", assumed.join(", ")),
        (None, true) => {}
    }
}

/// The engine the flags and the profile ask for, loaded, with the reason logged.
fn backend(
    args: &RunArgs,
    model: &ModelFiles,
    profile: &DeviceProfile,
) -> anyhow::Result<Box<dyn Backend>> {
    let threads = args.threads.unwrap_or_else(|| profile.resolved_threads());
    let config = args.engine.config(profile, model, threads)?;
    let selected = load_backend(model, &config)?;
    log::info!("engine: {}", selected.reason);
    Ok(selected.backend)
}

fn postprocess(args: &RunArgs, model: &ModelFiles) -> anyhow::Result<PostprocessConfig> {
    let smoothing = match (args.smoothing, args.ema) {
        (Some(n), _) => Smoothing::Window(n),
        (None, Some(alpha)) => Smoothing::Ema(alpha),
        (None, None) => Smoothing::None,
    };
    let config = PostprocessConfig {
        topk: args.topk,
        smoothing,
        margin: args.hysteresis,
        ..PostprocessConfig::from_manifest(&model.manifest, args.threshold)
    };
    let threshold_from = match args.threshold {
        Some(_) => "--threshold".to_owned(),
        None => model.manifest_path.display().to_string(),
    };
    check_hysteresis(&config, &threshold_from)?;
    Ok(config)
}

/// The attention heat-map writer `--save-attention` asks for, if any.
fn attention_saver(args: &RunArgs, model: &ModelFiles) -> anyhow::Result<Option<AttentionSaver>> {
    let Some(dir) = &args.save_attention else {
        return Ok(None);
    };
    if model.manifest.outputs.attention.is_none() {
        bail!(
            "--save-attention: {} has no attention output; export the model with its attention output to draw heat maps",
            model.manifest_path.display()
        );
    }
    let classes = attention_classes(&args.attention_classes, model)?;
    Ok(Some(AttentionSaver::new(
        dir,
        classes,
        args.attention_every,
    )?))
}

/// Whether to prefetch frames (`--prefetch`): `auto` does for files and video files when the
/// network leaves a CPU core for the worker (always with TensorRT); for a live input a frame
/// prepared ahead would wait for the network and be older when it runs.
fn prefetch(flag: Prefetch, live: bool, backend: &dyn Backend) -> bool {
    let on = match flag {
        Prefetch::On => true,
        Prefetch::Off => false,
        Prefetch::Auto => !live && backend.cpu_threads() < available_cores(),
    };
    log::info!(
        "prefetch: {}",
        if on {
            "on (the next frame is read and preprocessed while the network runs)"
        } else {
            "off"
        }
    );
    on
}

fn attention_classes(names: &[String], model: &ModelFiles) -> anyhow::Result<AttentionClasses> {
    if names.is_empty() {
        return Ok(AttentionClasses::Reported);
    }
    let classes = &model.manifest.classes;
    let indices = names
        .iter()
        .map(|name| {
            classes.iter().position(|c| c == name).with_context(|| {
                format!(
                    "--attention-class {name:?}: not a class of {} (its classes: {})",
                    model.manifest_path.display(),
                    classes.join(", ")
                )
            })
        })
        .collect::<anyhow::Result<Vec<usize>>>()?;
    Ok(AttentionClasses::Fixed(indices))
}

/// Logs the summary; an error when no frame at all could be processed, and an
/// [`Incomplete`] one when results were lost.
fn report(summary: &Summary) -> anyhow::Result<()> {
    let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
    log::info!(
        "done ({:?}): {} frames in {:.1} s ({:.1} fps), latency p50 {} ms p99 {} ms, {} bad, {} dropped, {} reconnects",
        summary.stop,
        summary.frames,
        summary.elapsed.as_secs_f64(),
        summary.fps,
        ms(summary.latency_p50_ms),
        ms(summary.latency_p99_ms),
        summary.bad_frames,
        summary.stream.dropped,
        summary.stream.reconnects
    );
    for sink in &summary.sinks {
        log::info!(
            "{}: {} result line(s), {} lost",
            sink.target,
            sink.lines,
            sink.lost
        );
    }
    if summary.bad_frames > 0 {
        log::warn!(
            "skipped {} frame(s) that could not be read or decoded (see above)",
            summary.bad_frames
        );
    }
    if summary.frames == 0 && summary.bad_frames > 0 && summary.stop != StopReason::Stopped {
        bail!(
            "none of the {} input frame(s) could be read or decoded",
            summary.bad_frames
        );
    }
    lost_results(summary)?;
    if summary.stop == StopReason::BadFrames {
        bail!(
            "stopped: a whole pass over the input files could not be read or decoded ({} bad frame(s) in all)",
            summary.bad_frames
        );
    }
    Ok(())
}

/// An [`Incomplete`] error when a sink lost lines or attention pictures were not written.
fn lost_results(summary: &Summary) -> anyhow::Result<()> {
    let mut lost: Vec<String> = summary
        .sinks
        .iter()
        .filter(|d| d.lost > 0)
        .map(|d| format!("{} of {} result lines to {}", d.lost, d.lines, d.target))
        .collect();
    if summary.attention_failures > 0 {
        lost.push(format!(
            "{} attention picture(s) (see the warnings)",
            summary.attention_failures
        ));
    }
    if lost.is_empty() {
        return Ok(());
    }
    Err(Incomplete(format!(
        "the run finished but lost {}; check that stdout's file system has room and that the MQTT broker is up",
        lost.join(", ")
    ))
    .into())
}
