//! `csra-edge-camera-check`: checks a V4L2 camera's capture path end to end, without a model.
//!
//! It lists the cameras (as `csra-edge probe` does), opens the device through format
//! negotiation, captures frames through the newest-frame capture thread and checks their
//! sizes, `bytesused` and sequence numbers. With `--unplug-vivid` it then unplugs the kernel's
//! `vivid` test camera twice and checks each time that capture reconnects and frames flow
//! again: once with vivid's `Disconnect` control (the stream fails with `ENODEV`, the node
//! stays), once by unbinding the driver from its device in sysfs (the node disappears, as a
//! USB camera's does, and reappears when the driver is bound again). The test suite runs it
//! inside a VM with `vivid` (`tests/vivid_camera.rs`); on a real camera it is a quick health
//! check.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use csra_edge::source::capture::{Capture, ReconnectPolicy};
use csra_edge::source::v4l2::probe::{list_cameras, Listing};
use csra_edge::source::v4l2::{CameraOptions, Codec, V4lSource};
use csra_edge::source::{Frame, FrameSource, FrameStream, PixelFormat, SourceError, StreamStats};
use v4l::control::{Control, Value};
use v4l::Device;

/// vivid's `Disconnect` button control: the device answers `ENODEV` as an unplugged one
/// would, until its last file handle is closed, when vivid plugs it back in by itself.
const VIVID_DISCONNECT: u32 = 0x00f0_f041;

/// The platform driver behind vivid's devices: writing a device's name to `unbind` removes
/// its nodes (open handles get `ENODEV`), writing it to `bind` creates them again.
const VIVID_DRIVER: &str = "/sys/bus/platform/drivers/vivid";

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
    /// Unplug the vivid camera twice (its Disconnect control, then unbinding its driver in
    /// sysfs) and check that capture reconnects after each.
    #[arg(long)]
    unplug_vivid: bool,
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

    if args.unplug_vivid {
        let before = capture.stats();
        disconnect_vivid(&args.device)?;
        let last = check_reconnect(&mut capture, args.frames, last, before)?;
        let before = capture.stats();
        unbind_vivid(&capture)?;
        check_reconnect(&mut capture, args.frames, last, before)?;
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

/// After an unplug, checks that capture reconnects (counting from the stats `before` it) and
/// that `count` frames newer than `last` arrive; returns the last one's sequence number.
fn check_reconnect(
    capture: &mut Capture,
    count: usize,
    last: u64,
    before: StreamStats,
) -> Result<u64> {
    let last = check_frames(capture, count, Some(last))?;
    let stats = capture.stats();
    println!("STATS {}", stats_line(stats));
    ensure!(
        stats.reconnects > before.reconnects,
        "frames flowed again without a reconnect"
    );
    println!(
        "RECONNECTED after {} source errors",
        stats.source_errors - before.source_errors
    );
    Ok(last)
}

/// Presses vivid's Disconnect button through a second file handle. vivid plugs the device
/// back in when the capture thread, having lost its stream, closes its handle.
fn disconnect_vivid(device: &str) -> Result<()> {
    let dev = Device::with_path(device).with_context(|| format!("opening {device}"))?;
    dev.set_control(Control {
        id: VIVID_DISCONNECT,
        value: Value::None,
    })
    .context("setting vivid's Disconnect control")?;
    println!("DISCONNECTED {device}");
    Ok(())
}

/// Unbinds vivid's driver from its device, waits until capture has lost the stream and failed
/// to reopen it (so its old handle is closed and the node number free again), then binds it.
fn unbind_vivid(capture: &Capture) -> Result<()> {
    let driver = Path::new(VIVID_DRIVER);
    let device = std::fs::read_dir(driver)
        .with_context(|| format!("reading {VIVID_DRIVER}"))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("vivid."))
        .with_context(|| format!("no vivid.N device bound in {VIVID_DRIVER}"))?;
    let errors_before = capture.stats().source_errors;
    std::fs::write(driver.join("unbind"), &device)
        .with_context(|| format!("unbinding {device}"))?;
    println!("UNBOUND {device}");
    // One error for the lost stream, one more for a reopen that found no node.
    let deadline = Instant::now() + Duration::from_secs(60);
    while capture.stats().source_errors < errors_before + 2 {
        ensure!(
            Instant::now() < deadline,
            "capture did not notice the unplug within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(driver.join("bind"), &device).with_context(|| format!("binding {device}"))?;
    println!("BOUND {device}");
    Ok(())
}

fn stats_line(stats: StreamStats) -> String {
    format!(
        "dropped {} reconnects {} source_errors {} corrupt {}",
        stats.dropped, stats.reconnects, stats.source_errors, stats.corrupt
    )
}
