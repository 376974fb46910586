//! The `--camera` branch: the one place a camera stream and the MQTT sink are built from the
//! command line and the device profile.

use crate::frame::FrameStream;
use crate::profile::{CameraDefaults, Codec};
use crate::sink::Sink;

/// The camera settings of a run: the profile's defaults overridden by `--input-*` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraSettings {
    /// The V4L2 device.
    pub device: String,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frames per second.
    pub rate: u32,
    /// Pixel encoding.
    pub codec: Codec,
}

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
            codec: codec.unwrap_or(defaults.codec),
        }
    }
}

/// Opens the camera as a newest-frame stream.
pub fn open_camera(settings: &CameraSettings) -> anyhow::Result<Box<dyn FrameStream>> {
    anyhow::bail!(
        "--camera {}: camera capture is not part of this build yet; use --input PATH|DIR|GLOB",
        settings.device
    )
}

/// Connects the MQTT sink for `--mqtt URL`.
pub fn mqtt_sink(url: &str) -> anyhow::Result<Box<dyn Sink>> {
    anyhow::bail!("--mqtt {url}: MQTT output is not part of this build yet")
}
