//! The `--input` URIs GStreamer reads (video files, `rtsp://`, `rtp://`, `csi://`): the one
//! place their stream is built from the command line, the profile and the model. Without the
//! `gstreamer` feature such an input is an error that says how to get it.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::RunArgs;
use csra_edge::model::ModelFiles;
use csra_edge::profile::DeviceProfile;
use csra_edge::source::uri::InputUri;
use csra_edge::source::FrameStream;

/// The stream of a GStreamer `uri` (`input` as given): a video file read in order (looped with
/// `--loop`), or a live input through the newest-frame capture, which reconnects.
#[cfg(feature = "gstreamer")]
pub fn gst_stream(
    args: &RunArgs,
    profile: &DeviceProfile,
    model: &ModelFiles,
    input: &str,
    uri: &InputUri,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Box<dyn FrameStream>> {
    use anyhow::{bail, Context};
    use csra_edge::source::capture::{Capture, ReconnectPolicy};
    use csra_edge::source::gst::{GstInput, GstSource, RtpPayload, Target, VideoFileStream};
    use csra_edge::source::v4l2::Codec;

    let gst_input = match uri {
        InputUri::VideoFile(path) => {
            if !path.is_file() {
                bail!(
                    "--input {input}: no such video file {}; check the path",
                    path.display()
                );
            }
            GstInput::File(path.clone())
        }
        InputUri::Rtsp(url) => GstInput::Rtsp(url.clone()),
        InputUri::Rtp { address, port } => GstInput::Rtp {
            address: address.clone(),
            port: *port,
            payload: match args.input_codec.map(Codec::from) {
                None => RtpPayload::H264,
                Some(Codec::Mjpeg) => RtpPayload::Jpeg,
                Some(Codec::Yuyv) => {
                    bail!("--input {input}: RTP streams carry H.264 (the default) or JPEG (--input-codec mjpeg), not YUYV")
                }
            },
        },
        InputUri::Csi(sensor) => {
            let (width, height, rate) = profile.csi.map_or(
                (
                    profile.camera.width,
                    profile.camera.height,
                    profile.camera.rate,
                ),
                |c| (c.width, c.height, c.rate),
            );
            GstInput::Csi {
                sensor: *sensor,
                width: args.input_width.unwrap_or(width),
                height: args.input_height.unwrap_or(height),
                rate: args.input_rate.unwrap_or(rate),
            }
        }
        InputUri::V4l2(_) | InputUri::Images(_) => {
            bail!("--input {input}: not a GStreamer input")
        }
    };
    let sized =
        args.input_width.is_some() || args.input_height.is_some() || args.input_rate.is_some();
    if sized && !matches!(gst_input, GstInput::Csi { .. }) {
        // A file or stream has the size and rate it was encoded with; scaling is the model's.
        log::warn!(
            "--input-width/--input-height/--input-rate apply to cameras; ignored for {input}"
        );
    }
    let manifest = &model.manifest;
    let target = Target {
        width: manifest.input.width,
        height: manifest.input.height,
        resize: manifest.preprocess.resize,
    };
    let source =
        GstSource::new(input, &gst_input, target).with_context(|| format!("--input {input}"))?;
    if !gst_input.is_live() {
        let stream = VideoFileStream::open(source, args.looped)
            .with_context(|| format!("--input {input}: cannot read the video file"))?;
        return Ok(Box::new(stream.with_stop(Arc::clone(stop))));
    }
    if args.looped {
        bail!("--loop replays files; {input} is a live stream");
    }
    let capture = Capture::spawn(Box::new(source), ReconnectPolicy::default());
    // The pipeline waits inside the stream while a camera reconnects; a signal must end that
    // wait too.
    let handle = capture.stop_handle();
    super::signals::on_stop(move || handle.stop());
    Ok(Box::new(capture))
}

/// Without the `gstreamer` feature there is no GStreamer to read `input` with.
#[cfg(not(feature = "gstreamer"))]
pub fn gst_stream(
    _args: &RunArgs,
    _profile: &DeviceProfile,
    _model: &ModelFiles,
    input: &str,
    _uri: &InputUri,
    _stop: &Arc<AtomicBool>,
) -> anyhow::Result<Box<dyn FrameStream>> {
    anyhow::bail!(
        "--input {input}: this csra-edge was built without the `gstreamer` feature (video files, \
         RTSP, RTP and CSI cameras); rebuild it with `cargo build --release -p csra-edge \
         --features gstreamer`, which needs libgstreamer1.0-dev and \
         libgstreamer-plugins-base1.0-dev (see the README's input table)"
    )
}
