//! `csra-edge-camera-check`: checks a V4L2 camera's capture path end to end, without a model.
//!
//! It lists the cameras (as `csra-edge probe` does), opens the device through format
//! negotiation, captures frames through the newest-frame capture thread and checks their
//! sizes, `bytesused` and sequence numbers. With `--unplug-vivid` it then unplugs the kernel's
//! `vivid` test camera (its `Disconnect` control), reloads the driver and checks that capture
//! reconnects and frames flow again. The test suite runs it inside a VM with `vivid`
//! (`tests/vivid_camera.rs`); on a real camera it is a quick health check.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use csra_edge::source::capture::{Capture, ReconnectPolicy};
use csra_edge::source::v4l2::probe::{list_cameras, Listing};
use csra_edge::source::v4l2::{CameraOptions, Codec, V4lSource};
use csra_edge::source::{Frame, FrameSource, FrameStream, PixelFormat, SourceError, StreamStats};
use v4l::control::{Control, Value};
use v4l::Device;

/// vivid's `Disconnect` button control: unregisters the device as an unplug would.
const VIVID_DISCONNECT: u32 = 0x00f0_f041;

/// Checks a camera's capture path: probe, format negotiation, frames, reconnection.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The camera device.
    #[arg(long, default_value = "/dev/video0")]
    device: String,
    /// Requested width (the nearest offered size is used).
    #[arg(long)]
    width: Option<u32>,
    /// Requested height.
    #[arg(long)]
    height: Option<u32>,
    /// Requested frames per second.
    #[arg(long)]
    rate: Option<u32>,
    /// `mjpeg` or `yuyv`; MJPEG is preferred when unset.
    #[arg(long)]
    codec: Option<Codec>,
    /// First check that asking for this codec fails with a clear "unsupported" error.
    #[arg(long, value_name = "CODEC")]
    expect_unsupported: Option<Codec>,
    /// Frames to capture and check.
    #[arg(long, default_value_t = 10)]
    frames: usize,
    /// Seconds to wait for a frame before the source counts as lost.
    #[arg(long, default_value_t = 5)]
    frame_timeout: u64,
    /// Unplug the vivid camera (its Disconnect control), reload the driver from the
    /// `vivid.ko*` file in this folder, and check that capture reconnects.
    #[arg(long, value_name = "MODULE_DIR")]
    unplug_vivid: Option<String>,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => {
            println!("CAMERA_CHECK OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("CAMERA_CHECK FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<()> {
    let cameras = list_cameras();
    print!("{}", Listing(&cameras));
    println!(
        "PROBE_JSON {}",
        serde_json::to_string(&cameras).context("probe as JSON")?
    );

    let options = CameraOptions {
        width: args.width,
        height: args.height,
        rate: args.rate,
        codec: args.codec,
        ..CameraOptions::new(&args.device)
    };
    if let Some(codec) = args.expect_unsupported {
        check_refused(&options, codec)?;
    }
    let mut source = V4lSource::new(options.clone());
    source.open().context("opening the camera")?;
    let negotiated = source.negotiated().context("no format after open")?;
    println!(
        "NEGOTIATED {} {}x{} stride {} fps {:?}",
        negotiated.codec, negotiated.width, negotiated.height, negotiated.stride, negotiated.fps
    );
    source.close();

    let policy = ReconnectPolicy {
        frame_timeout: Duration::from_secs(args.frame_timeout),
        initial_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(1),
        give_up_after: Some(60),
    };
    let mut capture = Capture::spawn(Box::new(source), policy);
    let last = check_frames(&mut capture, args.frames, None)?;
    println!("STATS {}", stats_line(capture.stats()));

    if let Some(modules) = &args.unplug_vivid {
        unplug_vivid(&args.device)?;
        let reloader = std::thread::spawn({
            let modules = modules.clone();
            move || reload_vivid(&modules)
        });
        check_frames(&mut capture, args.frames, Some(last))?;
        reloader
            .join()
            .map_err(|_| anyhow::anyhow!("the reload thread panicked"))??;
        let stats = capture.stats();
        println!("STATS {}", stats_line(stats));
        ensure!(
            stats.reconnects >= 1,
            "frames flowed again without a reconnect"
        );
        println!("RECONNECTED after {} source errors", stats.source_errors);
    }
    Ok(())
}

/// Checks that opening with `codec` fails as an unsupported format.
fn check_refused(options: &CameraOptions, codec: Codec) -> Result<()> {
    let mut source = V4lSource::new(CameraOptions {
        codec: Some(codec),
        ..options.clone()
    });
    match source.open() {
        Err(e @ SourceError::UnsupportedFormat { .. }) => {
            println!("UNSUPPORTED {e}");
            Ok(())
        }
        Err(e) => bail!("asking for {codec}: expected an unsupported-format error, got: {e}"),
        Ok(()) => bail!("the camera accepted {codec}"),
    }
}

/// Takes `count` frames and checks each; returns the last sequence number.
fn check_frames(capture: &mut Capture, count: usize, after: Option<u64>) -> Result<u64> {
    let mut previous = after;
    for _ in 0..count {
        let frame = capture
            .next()
            .context("capturing")?
            .context("the stream ended")?;
        check_frame(&frame, previous)?;
        println!(
            "FRAME seq {} bytes {} {}x{} stride {} age {:?}",
            frame.sequence,
            frame.data.len(),
            frame.width,
            frame.height,
            frame.stride,
            frame.captured.elapsed()
        );
        previous = Some(frame.sequence);
    }
    previous.context("no frames checked")
}

fn check_frame(frame: &Frame, previous: Option<u64>) -> Result<()> {
    if let Some(previous) = previous {
        ensure!(
            frame.sequence > previous,
            "sequence {} after {previous}",
            frame.sequence
        );
    }
    match frame.format {
        PixelFormat::Yuyv => {
            ensure!(frame.stride >= frame.width * 2, "stride {}", frame.stride);
            let expected = frame.stride as usize * frame.height as usize;
            ensure!(
                frame.data.len() == expected,
                "{} bytes used, expected stride × height = {expected}",
                frame.data.len()
            );
        }
        PixelFormat::Mjpeg => ensure!(
            frame.data.starts_with(&[0xFF, 0xD8]),
            "an MJPEG frame without a JPEG start marker"
        ),
        other => bail!("unexpected pixel format {other:?}"),
    }
    Ok(())
}

/// Presses vivid's Disconnect button through a second file handle.
fn unplug_vivid(device: &str) -> Result<()> {
    let dev = Device::with_path(device).with_context(|| format!("opening {device}"))?;
    dev.set_control(Control {
        id: VIVID_DISCONNECT,
        value: Value::None,
    })
    .context("setting vivid's Disconnect control")?;
    println!("UNPLUGGED {device}");
    Ok(())
}

/// Unloads vivid once the capture thread has let go of it, and loads it again.
fn reload_vivid(modules: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    // rmmod fails while a file handle is open; the capture thread closes its handle when the
    // lost stream is noticed.
    while !Command::new("rmmod").arg("vivid").status()?.success() {
        ensure!(Instant::now() < deadline, "rmmod vivid kept failing");
        std::thread::sleep(Duration::from_millis(200));
    }
    let module = std::fs::read_dir(modules)
        .with_context(|| format!("reading {modules}"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vivid.ko"))
        })
        .with_context(|| format!("no vivid.ko* in {modules}"))?;
    ensure!(
        Command::new("insmod").arg(&module).status()?.success(),
        "insmod {} failed",
        module.display()
    );
    println!("RELOADED {}", module.display());
    Ok(())
}

fn stats_line(stats: StreamStats) -> String {
    format!(
        "dropped {} reconnects {} source_errors {} corrupt {}",
        stats.dropped, stats.reconnects, stats.source_errors, stats.corrupt
    )
}
