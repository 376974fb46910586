//! The `--camera` branch: the one place a camera stream and the MQTT sink are built from the
//! command line and the device profile. Without the `camera` feature a camera flag is an error
//! that says so.

use anyhow::Context;

#[cfg(feature = "camera")]
use super::signals;
use super::RunArgs;
#[cfg(feature = "camera")]
use csra_edge::profile::CameraDefaults;
use csra_edge::profile::DeviceProfile;
use csra_edge::sink::mqtt::{redact, MqttSink};
use csra_edge::sink::Sink;
#[cfg(feature = "camera")]
use csra_edge::source::capture::{Capture, ReconnectPolicy};
#[cfg(feature = "camera")]
use csra_edge::source::v4l2::{CameraOptions, Codec, V4lSource};
use csra_edge::source::FrameStream;

/// The stream of `--camera DEV`: the profile's camera overridden by the `--input-*` flags.
#[cfg(feature = "camera")]
pub fn camera_stream(
    args: &RunArgs,
    profile: &DeviceProfile,
    device: &str,
) -> anyhow::Result<Box<dyn FrameStream>> {
    let settings = CameraSettings::new(
        &profile.camera,
        Some(device),
        args.input_width,
        args.input_height,
        args.input_rate,
        args.input_codec.map(Codec::from),
    );
    open_camera(&settings)
}

/// Without the `camera` feature there is no V4L2 code to open a camera with.
#[cfg(not(feature = "camera"))]
pub fn camera_stream(
    _args: &RunArgs,
    _profile: &DeviceProfile,
    device: &str,
) -> anyhow::Result<Box<dyn FrameStream>> {
    Err(missing_camera_feature(&format!("--camera {device}")))
}

/// The error for a camera flag or command in a build without the `camera` feature.
#[cfg(not(feature = "camera"))]
pub fn missing_camera_feature(what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what}: this csra-edge was built without the `camera` feature (V4L2 capture); \
         rebuild it with the default features (`cargo build --release -p csra-edge`, which \
         needs libclang) or with `--features camera`"
    )
}

/// The camera settings of a run: the profile's defaults overridden by `--input-*` flags.
#[cfg(feature = "camera")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraSettings {
    /// The V4L2 device.
    pub device: String,
    /// Requested frame width (the nearest size the camera offers is used).
    pub width: u32,
    /// Requested frame height.
    pub height: u32,
    /// Requested frames per second.
    pub rate: u32,
    /// A pixel encoding to insist on; `None` prefers MJPEG and falls back to YUYV.
    pub codec: Option<Codec>,
}

#[cfg(feature = "camera")]
impl CameraSettings {
    /// `defaults` with every flag that was given applied.
    pub fn new(
        defaults: &CameraDefaults,
        device: Option<&str>,
        width: Option<u32>,
        height: Option<u32>,
        rate: Option<u32>,
        codec: Option<Codec>,
    ) -> Self {
        Self {
            device: device.map_or_else(|| defaults.device.clone(), str::to_owned),
            width: width.unwrap_or(defaults.width),
            height: height.unwrap_or(defaults.height),
            rate: rate.unwrap_or(defaults.rate),
            codec: codec.or(defaults.codec),
        }
    }
}

/// Opens the camera as a newest-frame stream that reconnects after an unplug, for as long as
/// the run lasts. A camera that cannot be opened at all is reported by the stream's first
/// frame, so the run ends with that error.
#[cfg(feature = "camera")]
pub fn open_camera(settings: &CameraSettings) -> anyhow::Result<Box<dyn FrameStream>> {
    let options = CameraOptions {
        width: Some(settings.width),
        height: Some(settings.height),
        rate: Some(settings.rate),
        codec: settings.codec,
        ..CameraOptions::new(settings.device.clone())
    };
    let capture = Capture::spawn(
        Box::new(V4lSource::new(options)),
        ReconnectPolicy::default(),
    );
    // The pipeline waits inside the stream while a camera is away; a signal must end that
    // wait too, not only the loop between frames.
    let handle = capture.stop_handle();
    signals::on_stop(move || handle.stop());
    Ok(Box::new(capture))
}

/// Connects the MQTT sink for `--mqtt URL`.
pub fn mqtt_sink(url: &str) -> anyhow::Result<Box<dyn Sink>> {
    // The URL may hold a password: messages show it redacted.
    let sink = MqttSink::connect(url).with_context(|| format!("--mqtt {}", redact(url)))?;
    Ok(Box::new(sink))
}
