//! The `csra-edge` command line: the run (files or camera), `info`, `bench`, `verify`, `probe`
//! and `graft`.
//! It belongs to the binary, as csra-host's does: the library has no clap types.

mod bench;
mod camera;
mod engine;
mod graft;
mod gst;
mod info;
mod probe;
mod run;
mod signals;
mod verify;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use csra_edge::source::v4l2::Codec;

/// The exit code of a run that finished without delivering every result.
pub const EXIT_INCOMPLETE: u8 = 3;

/// A run that finished but lost results: what was lost, for the exit code and the message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Incomplete(pub String);

/// Live, headless multi-label recognition with exported CSRA models.
#[derive(Debug, Parser)]
// Negative numbers are values (`--threshold -1`), so their range check can say what is wrong.
#[command(
    name = "csra-edge",
    version,
    args_conflicts_with_subcommands = true,
    allow_negative_numbers = true
)]
pub struct Cli {
    /// A subcommand; without one, csra-edge runs the model on --input or --camera.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The run's options.
    #[command(flatten)]
    pub run: RunArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show a model's manifest and ONNX interface, and check that they agree.
    Info(InfoArgs),
    /// Measure network latency per model (e.g. per head count) with any backend.
    #[command(allow_negative_numbers = true)]
    Bench(BenchArgs),
    /// Run pictures through TensorRT and tract and report how far their outputs differ.
    #[command(allow_negative_numbers = true)]
    Verify(verify::VerifyArgs),
    /// List the V4L2 cameras with their formats, frame sizes and frame rates.
    Probe(ProbeArgs),
    /// Turn any ONNX classifier with a GAP + FC tail into the training-free Max head.
    Graft(graft::GraftArgs),
}

/// Options of a run.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The model: a folder with model.onnx and model.manifest.json, or a .onnx file
    /// [default: models/mobilenet_v2-coco-voc-mini]
    #[arg(long, value_name = "DIR|ONNX")]
    pub model: Option<PathBuf>,
    /// What to read: image files (a file, a folder or a glob 'photos/*.jpg'), a video file
    /// (.mp4 .mkv .avi .h264, file://), /dev/videoN, v4l2:///dev/videoN, csi://N, rtsp://…
    /// or rtp://@:PORT (see the README's input table).
    #[arg(long, value_name = "URI|PATH|DIR|GLOB", conflicts_with = "camera")]
    // An OsString: a file name need not be UTF-8.
    pub input: Option<std::ffi::OsString>,
    /// Start over after the last image or the end of the video file, until stopped.
    #[arg(long = "loop", requires = "input")]
    pub looped: bool,
    /// A V4L2 camera, e.g. /dev/video0.
    #[arg(long, value_name = "DEV")]
    pub camera: Option<String>,
    /// Camera frame width, V4L2 or CSI [default: the device profile's].
    #[arg(long, value_name = "PIXELS")]
    pub input_width: Option<u32>,
    /// Camera frame height [default: the device profile's].
    #[arg(long, value_name = "PIXELS")]
    pub input_height: Option<u32>,
    /// Camera frames per second [default: the device profile's].
    #[arg(long, value_name = "FPS")]
    pub input_rate: Option<u32>,
    /// Camera pixel encoding [default: the device profile's]; for rtp://, mjpeg takes a JPEG
    /// payload instead of H.264.
    #[arg(long, value_enum, value_name = "CODEC")]
    pub input_codec: Option<CodecArg>,
    /// One threshold for every class [default: the manifest's, per class].
    #[arg(long, value_name = "P")]
    pub threshold: Option<f32>,
    /// Report at most K labels per frame, the most probable.
    #[arg(long, value_name = "K")]
    pub topk: Option<usize>,
    /// Inference threads for tract [default: the device profile's].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// The engine and TensorRT's settings.
    #[command(flatten)]
    pub engine: engine::EngineArgs,
    /// Run without any display (the default: nothing needs one; accepted for scripts).
    #[arg(long)]
    pub headless: bool,
    /// Print a line only when a label appears or disappears.
    #[arg(long)]
    pub events: bool,
    /// `all`: add every class's probability to each line.
    #[arg(long, value_enum, value_name = "WHICH")]
    pub scores: Option<Scores>,
    /// Average probabilities over the last N frames.
    #[arg(long, value_name = "N", conflicts_with = "ema")]
    pub smoothing: Option<usize>,
    /// Smooth probabilities with an exponential moving average of weight ALPHA in (0, 1].
    #[arg(long, value_name = "ALPHA")]
    pub ema: Option<f32>,
    /// Hysteresis: a label stays on until its probability falls below threshold − MARGIN.
    #[arg(long, value_name = "MARGIN", default_value_t = 0.0)]
    pub hysteresis: f32,
    /// Write attention heat maps (PNG) into DIR; needs a model exported with attention.
    #[arg(long, value_name = "DIR")]
    pub save_attention: Option<PathBuf>,
    /// The classes to draw (repeatable) [default: the labels reported for each frame].
    #[arg(
        long = "attention-class",
        value_name = "NAME",
        requires = "save_attention"
    )]
    pub attention_classes: Vec<String>,
    /// Save attention maps of every N-th frame only.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        requires = "save_attention"
    )]
    pub attention_every: u64,
    /// Device profile: a name from devices/ or a .toml file [default: detected].
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
    /// Also publish each line to an MQTT broker, mqtt://host:port/topic.
    #[arg(long, value_name = "URL")]
    pub mqtt: Option<String>,
    /// Stop after N frames (unreadable ones included).
    #[arg(long, value_name = "N")]
    pub frames: Option<u64>,
    /// Seconds between the stats lines in the log.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub stats_interval: f64,
    /// Read and preprocess the next frame on a second thread while the network runs this
    /// one; `auto` does for image and video files, not for live inputs, where a frame
    /// prepared ahead would wait for the network and be older when it runs.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = Prefetch::Auto)]
    pub prefetch: Prefetch,
}

/// `--prefetch`: when the frame path runs ahead of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Prefetch {
    /// For files and video files, not for live inputs.
    Auto,
    /// Always.
    On,
    /// Never: each frame is read and preprocessed when the network is free.
    Off,
}

/// `--input-codec`: the library's [`Codec`], as clap lists and parses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CodecArg {
    /// Motion JPEG.
    Mjpeg,
    /// Packed 4:2:2 YUV.
    Yuyv,
}

impl From<CodecArg> for Codec {
    fn from(codec: CodecArg) -> Codec {
        match codec {
            CodecArg::Mjpeg => Codec::Mjpeg,
            CodecArg::Yuyv => Codec::Yuyv,
        }
    }
}

/// Which scores each line carries besides the labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scores {
    /// Every class's probability.
    All,
}

/// `csra-edge info MODEL`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A model folder, .onnx or .manifest.json file.
    pub model: PathBuf,
}

/// `csra-edge bench MODEL...`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Model folders or .onnx files, or a folder of `heads-*` models as
    /// `csra-host export --heads` writes them.
    #[arg(required_unless_present = "backbone", value_name = "MODEL")]
    pub models: Vec<PathBuf>,
    /// Graft a head family onto this ONNX classifier (a GAP + FC tail, static input size),
    /// with random weights, and measure it: `--heads` CSRA heads and the `--variants`.
    #[arg(long, value_name = "MODEL.onnx")]
    pub backbone: Option<PathBuf>,
    /// Head counts of the grafted CSRA heads (with --backbone).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,4,6,8",
        requires = "backbone"
    )]
    pub heads: Vec<usize>,
    /// The grafted variants: csra (at each of --heads), max, baseline (with --backbone).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "csra,max,baseline",
        requires = "backbone"
    )]
    pub variants: Vec<String>,
    /// Output classes of the grafted heads (with --backbone).
    #[arg(long, default_value_t = 80, requires = "backbone")]
    pub classes: usize,
    /// Untimed runs before measuring.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Timed runs per model.
    #[arg(long, default_value_t = 50)]
    pub runs: usize,
    /// Inference threads for the CPU engines [default: 1].
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Device profile: a name from devices/ or a .toml file [default: detected].
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
    /// One JSON line per model on stdout instead of the table, for scripts.
    #[arg(long)]
    pub json: bool,
    /// Also time the whole frame path (decode, resize and normalise, network, post-process)
    /// on 1280x720 MJPEG and YUYV camera frames made from this photo.
    #[arg(long, value_name = "PHOTO")]
    pub pipeline: Option<PathBuf>,
    /// Instead of timing whole runs, time every operator of tract's optimised plan (tract,
    /// --threads; the median of --runs runs): a table of the operator kinds, slowest first.
    #[arg(long, conflicts_with_all = ["backends", "backend", "pipeline", "plot"])]
    pub profile_ops: bool,
    /// Draw p50 latency against the head count, one line per engine and variant, into this
    /// PNG.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Measure every model on each of these engines in turn, e.g. `tract,onnxruntime` (instead
    /// of --backend).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        value_name = "ENGINES",
        conflicts_with = "backend"
    )]
    pub backends: Vec<engine::BackendArg>,
    /// The engine and TensorRT's settings.
    #[command(flatten)]
    pub engine: engine::EngineArgs,
}

/// `csra-edge probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Print the listing as JSON, for scripts.
    #[arg(long)]
    pub json: bool,
}

/// Runs the parsed command line.
pub fn main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Info(args)) => info::run(&args),
        Some(Command::Bench(args)) => bench::run(&args),
        Some(Command::Verify(args)) => verify::run(&args),
        Some(Command::Probe(args)) => probe::run(&args),
        Some(Command::Graft(args)) => graft::run(args),
        None => run::run(&cli.run),
    }
}
