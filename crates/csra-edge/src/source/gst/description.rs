//! The GStreamer pipeline each input becomes, as `gst-launch-1.0` syntax: pure text, so every
//! input's pipeline (the Jetson ones included, which cannot run here) is unit-tested, and the
//! log shows exactly what runs.
//!
//! Every pipeline ends in RGB frames already scaled for the network, so the CPU never copies a
//! full-size frame: on a Jetson `nvvidconv` scales in the VIC engine (from NVMM memory, where
//! `nvv4l2decoder` and `nvarguscamerasrc` put frames), elsewhere `videoscale` scales before
//! `videoconvert` converts, so conversion runs on the small frame. `videoscale` uses its
//! antialiased bilinear (`bilinear2`, whose taps widen with the scale factor, as Pillow's and
//! csra-image's do): the plain 2-tap bilinear aliases on large reductions and moved the
//! shipped model's top label on real photos.

use std::path::{Path, PathBuf};

use csra_core::manifest::ResizePolicy;

/// The name of the pipeline's `appsink`, which the source pulls frames from.
pub const SINK_NAME: &str = "frames";

/// The network input the frames are scaled for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// The network's input width.
    pub width: u32,
    /// The network's input height.
    pub height: u32,
    /// The manifest's resize policy.
    pub resize: ResizePolicy,
}

/// What the machine's GStreamer offers, found at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Platform {
    /// NVIDIA's `nvvidconv` is installed (a Jetson with JetPack's GStreamer plugins).
    pub nvvidconv: bool,
}

/// The RTP payload of an `rtp://` stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpPayload {
    /// H.264 (RFC 6184), dynamic payload type 96.
    H264,
    /// JPEG (RFC 2435), payload type 26.
    Jpeg,
}

/// An input GStreamer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GstInput {
    /// A video file.
    File(PathBuf),
    /// An RTSP URL.
    Rtsp(String),
    /// RTP over UDP.
    Rtp {
        /// A multicast group to join; `None` receives from any sender.
        address: Option<String>,
        /// The UDP port.
        port: u16,
        /// The payload format.
        payload: RtpPayload,
    },
    /// A CSI camera through Argus.
    Csi {
        /// `nvarguscamerasrc`'s `sensor-id`.
        sensor: u32,
        /// The sensor mode's width.
        width: u32,
        /// The sensor mode's height.
        height: u32,
        /// Frames per second.
        rate: u32,
    },
}

impl GstInput {
    /// Whether the input is live: frames are dropped rather than queued when the pipeline
    /// falls behind, and a lost stream is reopened.
    pub fn is_live(&self) -> bool {
        !matches!(self, GstInput::File(_))
    }
}

/// The pipeline for `input`, scaled for `target`, with `platform`'s elements.
pub fn describe(input: &GstInput, target: Target, platform: Platform) -> String {
    let (head, known_size) = match input {
        GstInput::File(path) => (
            format!("filesrc location={} ! decodebin name=decode", quoted(path)),
            None,
        ),
        GstInput::Rtsp(url) => (
            // Only the video stream is linked; 200 ms of jitter buffer instead of 2 s.
            format!(
                "rtspsrc location={} latency=200 ! application/x-rtp,media=video ! decodebin name=decode",
                quoted_str(url)
            ),
            None,
        ),
        GstInput::Rtp {
            address,
            port,
            payload,
        } => {
            let group = address
                .as_ref()
                .map_or(String::new(), |a| format!(" address={} auto-multicast=true", quoted_str(a)));
            let caps = match payload {
                RtpPayload::H264 => {
                    "application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96"
                }
                RtpPayload::Jpeg => {
                    "application/x-rtp,media=video,clock-rate=90000,encoding-name=JPEG,payload=26"
                }
            };
            (
                format!(
                    "udpsrc port={port}{group} caps=\"{caps}\" ! rtpjitterbuffer latency=200 ! decodebin name=decode"
                ),
                None,
            )
        }
        GstInput::Csi {
            sensor,
            width,
            height,
            rate,
        } => (
            format!(
                "nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),width={width},height={height},framerate={rate}/1"
            ),
            Some((*width, *height)),
        ),
    };
    // The CSI camera only exists on a Jetson, whose converter is nvvidconv.
    let nvidia = platform.nvvidconv || matches!(input, GstInput::Csi { .. });
    let live = input.is_live();
    format!(
        "{head} ! {} ! appsink name={SINK_NAME} max-buffers=1 drop={live} sync=false",
        convert(target, known_size, nvidia)
    )
}

/// Scaling and conversion to RGB for `target`, from frames of `known_size` if it is known.
///
/// A squash scales straight to the network size. A centre crop keeps the aspect ratio: with
/// the frame size known (a camera mode) the frame is scaled so its shorter side is what the
/// crop policy resizes to, and the CPU's preprocessing crops the centre; with it unknown
/// (files, streams) `aspectratiocrop` first cuts the centre to the network's aspect ratio, so
/// the scaled frame is again exactly what the policy crops from.
fn convert(target: Target, known_size: Option<(u32, u32)>, nvidia: bool) -> String {
    let (width, height, crop) = match (target.resize, known_size) {
        (ResizePolicy::Squash, _) => (target.width, target.height, false),
        (ResizePolicy::CenterCrop { crop_fraction }, Some((w, h))) => {
            let short = f64::from(target.width.min(target.height)) / f64::from(crop_fraction);
            let k = short / f64::from(w.min(h));
            (scaled(w, k), scaled(h, k), false)
        }
        (ResizePolicy::CenterCrop { crop_fraction }, None) => {
            let k = 1.0 / f64::from(crop_fraction);
            (scaled(target.width, k), scaled(target.height, k), true)
        }
    };
    let size = format!("width={width},height={height},pixel-aspect-ratio=1/1");
    let aspect = format!(
        "aspectratiocrop aspect-ratio={}/{}",
        target.width, target.height
    );
    match (nvidia, crop) {
        // nvvidconv writes RGBA, not RGB; videoconvert then repacks the small frame.
        (true, false) => format!(
            "nvvidconv ! video/x-raw,format=RGBA,{size} ! videoconvert ! video/x-raw,format=RGB"
        ),
        // The crop needs the frame size, which only the CPU elements learn from the caps.
        (true, true) => format!(
            "nvvidconv ! video/x-raw,format=RGBA ! {aspect} ! videoscale method=bilinear2 add-borders=false ! videoconvert ! video/x-raw,format=RGB,{size}"
        ),
        (false, false) => format!(
            "videoscale method=bilinear2 add-borders=false ! videoconvert ! video/x-raw,format=RGB,{size}"
        ),
        (false, true) => format!(
            "{aspect} ! videoscale method=bilinear2 add-borders=false ! videoconvert ! video/x-raw,format=RGB,{size}"
        ),
    }
}

/// `v · k` rounded up to whole pixels, at least 1.
fn scaled(v: u32, k: f64) -> u32 {
    // The slack keeps a product that is whole but for rounding (1080 · 256/1080) from
    // gaining a pixel; the clamp bounds the cast (frame sizes are far below it).
    (f64::from(v) * k - 1e-6).ceil().clamp(1.0, 65_535.0) as u32
}

/// A path as a quoted gst-launch property value.
fn quoted(path: &Path) -> String {
    quoted_str(&path.to_string_lossy())
}

/// A string as a quoted gst-launch property value (`\` and `"` escaped).
fn quoted_str(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQUASH: Target = Target {
        width: 224,
        height: 224,
        resize: ResizePolicy::Squash,
    };

    const CROP: Target = Target {
        width: 224,
        height: 224,
        resize: ResizePolicy::CenterCrop {
            crop_fraction: 0.875,
        },
    };

    #[test]
    fn csi_camera_on_a_jetson() {
        let csi = GstInput::Csi {
            sensor: 1,
            width: 1920,
            height: 1080,
            rate: 30,
        };
        assert_eq!(
            describe(&csi, SQUASH, Platform::default()),
            "nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM),width=1920,height=1080,framerate=30/1 \
             ! nvvidconv ! video/x-raw,format=RGBA,width=224,height=224,pixel-aspect-ratio=1/1 \
             ! videoconvert ! video/x-raw,format=RGB \
             ! appsink name=frames max-buffers=1 drop=true sync=false"
        );
        // Resize(256) of the 1080 rows keeps 16:9: 256 × 1920/1080 = 455.1 → 456 columns.
        assert!(describe(&csi, CROP, Platform::default()).contains(
            "nvvidconv ! video/x-raw,format=RGBA,width=456,height=256,pixel-aspect-ratio=1/1 !"
        ));
    }

    #[test]
    fn video_file_decoded_and_scaled_in_the_pipeline() {
        let file = GstInput::File("/v/it's \"a\".mp4".into());
        assert_eq!(
            describe(&file, SQUASH, Platform::default()),
            "filesrc location=\"/v/it's \\\"a\\\".mp4\" ! decodebin name=decode \
             ! videoscale method=bilinear2 add-borders=false ! videoconvert \
             ! video/x-raw,format=RGB,width=224,height=224,pixel-aspect-ratio=1/1 \
             ! appsink name=frames max-buffers=1 drop=false sync=false"
        );
        let jetson = describe(&file, SQUASH, Platform { nvvidconv: true });
        assert!(jetson.contains(
            "decodebin name=decode ! nvvidconv ! video/x-raw,format=RGBA,width=224,height=224"
        ));
        // 224 / 0.875 = 256: the centre square scaled to 256², which the CPU crops to 224².
        let crop = describe(&file, CROP, Platform::default());
        assert!(crop.contains(
            "decodebin name=decode ! aspectratiocrop aspect-ratio=224/224 ! videoscale method=bilinear2 add-borders=false \
             ! videoconvert ! video/x-raw,format=RGB,width=256,height=256,"
        ));
    }

    #[test]
    fn network_streams() {
        let rtsp = describe(
            &GstInput::Rtsp("rtsp://10.0.0.5:8554/cam".into()),
            SQUASH,
            Platform::default(),
        );
        assert!(rtsp.starts_with(
            "rtspsrc location=\"rtsp://10.0.0.5:8554/cam\" latency=200 ! application/x-rtp,media=video ! decodebin name=decode ! "
        ));
        assert!(rtsp.ends_with("drop=true sync=false"));
        let rtp = describe(
            &GstInput::Rtp {
                address: Some("239.1.1.1".into()),
                port: 5004,
                payload: RtpPayload::Jpeg,
            },
            SQUASH,
            Platform::default(),
        );
        assert!(rtp.starts_with(
            "udpsrc port=5004 address=\"239.1.1.1\" auto-multicast=true caps=\"application/x-rtp,media=video,clock-rate=90000,encoding-name=JPEG,payload=26\" ! rtpjitterbuffer"
        ));
    }
}
