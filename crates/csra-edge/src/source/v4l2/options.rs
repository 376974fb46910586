//! What the user asks of a camera: device, size, rate, codec and buffer count.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A camera pixel encoding the runtime can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Motion JPEG (V4L2 `MJPG`): one JPEG per frame, what USB cameras offer at high
    /// resolutions.
    Mjpeg,
    /// Packed 4:2:2 YUV (V4L2 `YUYV`): uncompressed, offered by nearly every camera.
    Yuyv,
}

impl Codec {
    /// The V4L2 four-character code of the encoding.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            Codec::Mjpeg => *b"MJPG",
            Codec::Yuyv => *b"YUYV",
        }
    }

    /// The codec a V4L2 four-character code stands for, if the runtime decodes it.
    pub fn from_fourcc(fourcc: [u8; 4]) -> Option<Codec> {
        match &fourcc {
            b"MJPG" => Some(Codec::Mjpeg),
            b"YUYV" => Some(Codec::Yuyv),
            _ => None,
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Codec::Mjpeg => "mjpeg",
            Codec::Yuyv => "yuyv",
        })
    }
}

/// A codec name that is neither `mjpeg` nor `yuyv`.
#[derive(Debug, Error)]
#[error("unknown camera codec {0:?}: expected mjpeg or yuyv")]
pub struct UnknownCodec(pub String);

impl FromStr for Codec {
    type Err = UnknownCodec;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "mjpeg" | "mjpg" => Ok(Codec::Mjpeg),
            "yuyv" | "yuy2" => Ok(Codec::Yuyv),
            _ => Err(UnknownCodec(s.to_owned())),
        }
    }
}

/// How to open a V4L2 camera. Unset fields leave the choice to the format negotiation:
/// MJPEG before YUYV, the largest size, the driver's frame rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraOptions {
    /// The device node, e.g. `/dev/video0`.
    pub device: String,
    /// Requested width in pixels; the nearest size the device offers is used.
    pub width: Option<u32>,
    /// Requested height in pixels.
    pub height: Option<u32>,
    /// Requested frames per second; the driver may pick the nearest it supports.
    pub rate: Option<u32>,
    /// The codec to use; `None` prefers MJPEG and falls back to YUYV.
    pub codec: Option<Codec>,
    /// mmap buffers to stream with (2–4; more only adds latency with a newest-frame reader).
    pub buffers: u32,
}

/// The fewest and most mmap buffers [`CameraOptions::buffers`] may ask for.
pub const BUFFER_RANGE: std::ops::RangeInclusive<u32> = 2..=4;

impl CameraOptions {
    /// Options for `device` with everything else negotiated, and 3 buffers: one being filled,
    /// one ready, one held by the reader.
    pub fn new(device: impl Into<String>) -> Self {
        CameraOptions {
            device: device.into(),
            width: None,
            height: None,
            rate: None,
            codec: None,
            buffers: 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_parse_from_their_cli_names() {
        assert_eq!("mjpeg".parse::<Codec>().ok(), Some(Codec::Mjpeg));
        assert_eq!("YUYV".parse::<Codec>().ok(), Some(Codec::Yuyv));
        let err = "h264".parse::<Codec>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown camera codec \"h264\": expected mjpeg or yuyv")
        );
    }

    #[test]
    fn codecs_round_trip_through_fourcc_and_name() {
        for codec in [Codec::Mjpeg, Codec::Yuyv] {
            assert_eq!(Codec::from_fourcc(codec.fourcc()), Some(codec));
            assert_eq!(codec.to_string().parse::<Codec>().ok(), Some(codec));
        }
        assert_eq!(Codec::from_fourcc(*b"NV12"), None);
    }
}
