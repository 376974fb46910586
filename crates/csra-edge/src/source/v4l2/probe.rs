//! `csra-edge probe`: the V4L2 capture devices present, with their formats, sizes and frame
//! rates, as text for people and JSON for scripts.

use std::fmt;
use std::fs;
use std::path::Path;

use serde::Serialize;
use v4l::capability::Flags as CapFlags;
use v4l::Device;

use super::formats::{self, FormatInfo};
use super::options::Codec;

/// One `/dev/video*` node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CameraInfo {
    /// The device node, e.g. `/dev/video0`.
    pub path: String,
    /// Stable names of the node that survive replugging and reboots (udev's
    /// `/dev/v4l/by-id/*` and `/dev/v4l/by-path/*` links), best for `--camera`.
    pub stable_paths: Vec<String>,
    /// The card name the driver reports, e.g. `HD Pro Webcam C920`.
    pub card: String,
    /// The driver, e.g. `uvcvideo`.
    pub driver: String,
    /// The bus the device sits on, e.g. `usb-0000:00:14.0-1`.
    pub bus: String,
    /// Whether this node streams video (a USB camera also has metadata nodes that do not).
    pub capture: bool,
    /// The capture formats, with sizes and rates (empty for non-capture nodes).
    pub formats: Vec<FormatInfo>,
    /// Why the node could not be read, if it could not (busy, no permission).
    pub error: Option<String>,
}

impl CameraInfo {
    /// Whether csra-edge can stream from this node: a capture node offering MJPEG or YUYV.
    pub fn usable(&self) -> bool {
        self.capture
            && self
                .formats
                .iter()
                .any(|f| Codec::from_fourcc(f.fourcc_bytes()).is_some())
    }
}

/// The `/dev/video*` nodes, in numeric order, each described as far as it can be read.
pub fn list_cameras() -> Vec<CameraInfo> {
    list_cameras_in(Path::new("/dev"))
}

/// [`list_cameras`] over the `video*` nodes of another directory.
pub fn list_cameras_in(dir: &Path) -> Vec<CameraInfo> {
    let mut nodes: Vec<(u32, String)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let index = name.strip_prefix("video")?.parse().ok()?;
            Some((index, entry.path().to_string_lossy().into_owned()))
        })
        .collect();
    nodes.sort();
    let links = stable_links(dir);
    nodes
        .into_iter()
        .map(|(_, path)| {
            let mut info = describe(&path);
            let target = fs::canonicalize(&path).ok();
            info.stable_paths = links
                .iter()
                .filter(|(_, to)| target.is_some() && Some(to) == target.as_ref())
                .map(|(link, _)| link.clone())
                .collect();
            info
        })
        .collect()
}

/// The links under `dir/v4l/by-id` and `dir/v4l/by-path`, with what they resolve to.
fn stable_links(dir: &Path) -> Vec<(String, std::path::PathBuf)> {
    let mut links: Vec<(String, std::path::PathBuf)> = ["by-id", "by-path"]
        .iter()
        .flat_map(|kind| {
            fs::read_dir(dir.join("v4l").join(kind))
                .into_iter()
                .flatten()
        })
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let target = fs::canonicalize(entry.path()).ok()?;
            Some((entry.path().to_string_lossy().into_owned(), target))
        })
        .collect();
    links.sort();
    links
}

/// Describes one node; failures are recorded in the entry rather than aborting the listing.
pub fn describe(path: &str) -> CameraInfo {
    let mut info = CameraInfo {
        path: path.to_owned(),
        stable_paths: Vec::new(),
        card: String::new(),
        driver: String::new(),
        bus: String::new(),
        capture: false,
        formats: Vec::new(),
        error: None,
    };
    let dev = match Device::with_path(path) {
        Ok(dev) => dev,
        Err(e) => {
            info.error = Some(e.to_string());
            return info;
        }
    };
    match dev.query_caps() {
        Ok(caps) => {
            info.card = caps.card;
            info.driver = caps.driver;
            info.bus = caps.bus;
            info.capture = caps
                .capabilities
                .contains(CapFlags::VIDEO_CAPTURE | CapFlags::STREAMING);
        }
        Err(e) => {
            info.error = Some(e.to_string());
            return info;
        }
    }
    if info.capture {
        match formats::enumerate(&dev, true) {
            Ok(formats) => info.formats = formats,
            Err(e) => info.error = Some(e.to_string()),
        }
    }
    info
}

/// The listing as text: one block per node, one line per size with its rates.
pub struct Listing<'a>(pub &'a [CameraInfo]);

impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return writeln!(f, "no V4L2 devices (/dev/video*) found");
        }
        for camera in self.0 {
            write!(f, "{camera}")?;
        }
        Ok(())
    }
}

impl fmt::Display for CameraInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if !self.card.is_empty() {
            write!(f, ": {} ({}, {})", self.card, self.driver, self.bus)?;
        }
        writeln!(f)?;
        for stable in &self.stable_paths {
            writeln!(f, "  also {stable}")?;
        }
        if let Some(error) = &self.error {
            writeln!(f, "  cannot read: {error}")?;
        } else if !self.capture {
            writeln!(f, "  not a video capture node")?;
        }
        for format in &self.formats {
            let note = match Codec::from_fourcc(format.fourcc_bytes()) {
                Some(codec) => format!("--input-codec {codec}"),
                None => "not decoded by csra-edge".to_owned(),
            };
            writeln!(f, "  {} ({}): {note}", format.fourcc, format.description)?;
            for size in &format.sizes {
                write!(f, "    {}", size.size)?;
                if !size.rates.is_empty() {
                    let rates: Vec<String> = size.rates.iter().map(ToString::to_string).collect();
                    write!(f, " @ {} fps", rates.join(", "))?;
                }
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::v4l2::formats::{RateRange, SizeInfo, SizeRange};

    #[test]
    fn a_camera_lists_formats_sizes_and_rates() {
        let camera = CameraInfo {
            path: "/dev/video0".into(),
            stable_paths: vec!["/dev/v4l/by-id/usb-Webcam-video-index0".into()],
            card: "Webcam".into(),
            driver: "uvcvideo".into(),
            bus: "usb-1".into(),
            capture: true,
            formats: vec![
                FormatInfo {
                    fourcc: "MJPG".into(),
                    description: "Motion-JPEG".into(),
                    sizes: vec![SizeInfo {
                        size: SizeRange::Discrete {
                            width: 1280,
                            height: 720,
                        },
                        rates: vec![
                            RateRange::Discrete { fps: 30.0 },
                            RateRange::Discrete { fps: 15.0 },
                        ],
                    }],
                },
                FormatInfo {
                    fourcc: "NV12".into(),
                    description: "Y/UV 4:2:0".into(),
                    sizes: Vec::new(),
                },
            ],
            error: None,
        };
        assert!(camera.usable());
        assert_eq!(
            Listing(std::slice::from_ref(&camera)).to_string(),
            "/dev/video0: Webcam (uvcvideo, usb-1)\n\
             \x20 also /dev/v4l/by-id/usb-Webcam-video-index0\n\
             \x20 MJPG (Motion-JPEG): --input-codec mjpeg\n\
             \x20   1280x720 @ 30, 15 fps\n\
             \x20 NV12 (Y/UV 4:2:0): not decoded by csra-edge\n"
        );
        let json = serde_json::to_value(&camera).unwrap_or_default();
        assert_eq!(json["formats"][0]["sizes"][0]["size"]["type"], "discrete");
        assert_eq!(json["formats"][0]["sizes"][0]["rates"][1]["fps"], 15.0);
    }

    #[test]
    fn nodes_are_listed_in_numeric_order_and_unreadable_ones_say_why() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["video10", "video2", "vbi0", "videoX"] {
            fs::write(dir.path().join(name), b"").unwrap();
        }
        let by_id = dir.path().join("v4l/by-id");
        fs::create_dir_all(&by_id).unwrap();
        std::os::unix::fs::symlink("../../video2", by_id.join("usb-Cam-video-index0")).unwrap();
        let cameras = list_cameras_in(dir.path());
        let names: Vec<&str> = cameras
            .iter()
            .filter_map(|c| Path::new(&c.path).file_name()?.to_str())
            .collect();
        assert_eq!(names, ["video2", "video10"]);
        assert_eq!(
            cameras[0].stable_paths,
            [by_id
                .join("usb-Cam-video-index0")
                .to_string_lossy()
                .into_owned()]
        );
        assert!(cameras[1].stable_paths.is_empty());
        // A plain file opens but answers no V4L2 ioctl.
        assert!(cameras.iter().all(|c| c.error.is_some() && !c.usable()));
        assert!(Listing(&cameras).to_string().contains("cannot read: "));
    }
}
