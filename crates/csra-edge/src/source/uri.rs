//! `--input URI`: what one input string names, decided from its text alone (no file or device
//! is touched here), so the rules can be tested and documented in one place.
//!
//! | input                               | source                                   |
//! |-------------------------------------|------------------------------------------|
//! | `/dev/video0`, `v4l2:///dev/video0` | a V4L2 camera                            |
//! | `csi://0`                           | a MIPI CSI camera through Argus (Jetson) |
//! | `rtsp://host:8554/stream`           | an RTSP camera or server                 |
//! | `rtp://@:5000`, `rtp://239.1.1.1:5000` | an RTP/UDP stream (H.264 or JPEG)     |
//! | `file:///videos/a.mp4`, `a.mkv`     | a video file (`.mp4 .mkv .avi .mov .webm .ts .h264 .264`) |
//! | `photo.jpg`, `photos/`, `'*.png'`   | image files (today's `--input`)          |

use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;
use thiserror::Error;

/// File extensions taken for video files (case-insensitive); anything else is image files.
pub const VIDEO_EXTENSIONS: [&str; 8] = ["mp4", "mkv", "avi", "mov", "webm", "ts", "h264", "264"];

/// The URI schemes `--input` accepts, for error messages.
const SCHEMES: &str = "v4l2://, csi://, rtsp://, rtsps://, rtp://, file://";

/// What an `--input` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputUri {
    /// A V4L2 capture device, e.g. `/dev/video0`.
    V4l2(String),
    /// A CSI camera by sensor id (`csi://0`), served by `nvarguscamerasrc`.
    Csi(u32),
    /// An RTSP stream; the URL as given.
    Rtsp(String),
    /// RTP over UDP received on `port`, from a multicast group `address` or any sender.
    Rtp {
        /// The multicast group to join, or `None` for `rtp://@:PORT` (any sender).
        address: Option<String>,
        /// The UDP port.
        port: u16,
    },
    /// A video file.
    VideoFile(PathBuf),
    /// Image files: a file, a folder or a glob, expanded by [`super::files::expand_input`].
    Images(String),
}

/// An `--input` that names nothing csra-edge can read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UriError {
    /// A scheme csra-edge does not know.
    #[error("--input {input:?}: unknown scheme {scheme:?}; use one of {SCHEMES}, a /dev/videoN device, a video file or image files")]
    UnknownScheme {
        /// What was given.
        input: String,
        /// The scheme.
        scheme: String,
    },
    /// A known scheme with a malformed rest.
    #[error("--input {input:?}: {reason}; for example {example}")]
    Malformed {
        /// What was given.
        input: String,
        /// What is wrong.
        reason: String,
        /// A well-formed input of the same kind.
        example: &'static str,
    },
}

/// Decides what `input` names (see the module's table).
pub fn parse_input(input: &str) -> Result<InputUri, UriError> {
    let malformed = |reason: &str, example: &'static str| UriError::Malformed {
        input: input.to_owned(),
        reason: reason.to_owned(),
        example,
    };
    let Some((scheme, rest)) = split_scheme(input) else {
        return Ok(if input.starts_with("/dev/video") {
            InputUri::V4l2(input.to_owned())
        } else {
            path_input(input)
        });
    };
    match scheme.to_ascii_lowercase().as_str() {
        "v4l2" => match rest {
            device if device.starts_with('/') && device.len() > 1 => {
                Ok(InputUri::V4l2(device.to_owned()))
            }
            _ => Err(malformed(
                "a V4L2 URI names the device path",
                "v4l2:///dev/video0",
            )),
        },
        "csi" => rest
            .trim_end_matches('/')
            .parse::<u32>()
            .map(InputUri::Csi)
            .map_err(|_| malformed("a CSI URI names the sensor id, a number", "csi://0")),
        "rtsp" | "rtsps" => {
            if rest.is_empty() || rest.starts_with('/') {
                Err(malformed(
                    "an RTSP URL names the host",
                    "rtsp://192.168.1.20:8554/stream",
                ))
            } else {
                Ok(InputUri::Rtsp(input.to_owned()))
            }
        }
        "rtp" => parse_rtp(rest.trim_end_matches('/'))
            .ok_or_else(|| malformed("an RTP URI is [GROUP]:PORT or @:PORT", "rtp://@:5000")),
        "file" => {
            // file:///abs/path (empty host) or file://localhost/abs/path; percent-escapes decoded.
            let path = rest.strip_prefix("localhost").unwrap_or(rest);
            if !path.starts_with('/') {
                return Err(malformed(
                    "a file URI names an absolute path",
                    "file:///videos/a.mp4",
                ));
            }
            let decoded = percent_decode_str(path).decode_utf8().map_err(|_| {
                malformed("the path is not UTF-8 once decoded", "file:///videos/a.mp4")
            })?;
            Ok(path_input(&decoded))
        }
        _ => Err(UriError::UnknownScheme {
            input: input.to_owned(),
            scheme: scheme.to_owned(),
        }),
    }
}

/// `scheme` and what follows `scheme://`, if `input` starts with a URI scheme.
fn split_scheme(input: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = input.split_once("://")?;
    let valid = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// `[GROUP]:PORT` or `@:PORT` (or `@GROUP:PORT`, VLC's spelling).
fn parse_rtp(rest: &str) -> Option<InputUri> {
    let rest = rest.strip_prefix('@').unwrap_or(rest);
    let (host, port) = rest.rsplit_once(':')?;
    let port = port.parse::<u16>().ok().filter(|p| *p > 0)?;
    let address = (!host.is_empty()).then(|| host.to_owned());
    Some(InputUri::Rtp { address, port })
}

/// A path: a video file by its extension, else image files.
fn path_input(path: &str) -> InputUri {
    let video = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.iter().any(|v| v.eq_ignore_ascii_case(e)));
    if video {
        InputUri::VideoFile(PathBuf::from(path))
    } else {
        InputUri::Images(path.to_owned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parsed(input: &str) -> InputUri {
        parse_input(input).unwrap()
    }

    #[test]
    fn devices_and_cameras() {
        assert_eq!(parsed("/dev/video0"), InputUri::V4l2("/dev/video0".into()));
        assert_eq!(
            parsed("v4l2:///dev/video2"),
            InputUri::V4l2("/dev/video2".into())
        );
        assert_eq!(parsed("csi://0"), InputUri::Csi(0));
        assert_eq!(parsed("CSI://1/"), InputUri::Csi(1));
    }

    #[test]
    fn network_streams() {
        let rtsp = "rtsp://user:pw@10.0.0.5:8554/cam?x=1";
        assert_eq!(parsed(rtsp), InputUri::Rtsp(rtsp.into()));
        assert_eq!(
            parsed("rtp://@:5000"),
            InputUri::Rtp {
                address: None,
                port: 5000
            }
        );
        assert_eq!(
            parsed("rtp://239.1.1.1:5004"),
            InputUri::Rtp {
                address: Some("239.1.1.1".into()),
                port: 5004
            }
        );
        assert_eq!(
            parsed("rtp://@239.1.1.1:5004/"),
            InputUri::Rtp {
                address: Some("239.1.1.1".into()),
                port: 5004
            }
        );
    }

    #[test]
    fn files_by_extension() {
        assert_eq!(
            parsed("clips/a.MP4"),
            InputUri::VideoFile("clips/a.MP4".into())
        );
        assert_eq!(parsed("a.h264"), InputUri::VideoFile("a.h264".into()));
        assert_eq!(
            parsed("file:///v/my%20clip.mkv"),
            InputUri::VideoFile("/v/my clip.mkv".into())
        );
        assert_eq!(
            parsed("file://localhost/v/b.avi"),
            InputUri::VideoFile("/v/b.avi".into())
        );
        assert_eq!(
            parsed("file:///p/cat.jpg"),
            InputUri::Images("/p/cat.jpg".into())
        );
        for images in ["photos/", "photos/*.jpg", "cat.jpg", "/dev/null"] {
            assert_eq!(parsed(images), InputUri::Images(images.into()), "{images}");
        }
    }

    #[test]
    fn malformed_inputs_say_what_a_good_one_looks_like() {
        for (input, example) in [
            ("csi://front", "csi://0"),
            ("v4l2://video0", "v4l2:///dev/video0"),
            ("rtp://@", "rtp://@:5000"),
            ("rtp://@:0", "rtp://@:5000"),
            ("rtp://@:99999", "rtp://@:5000"),
            ("rtsp:///stream", "rtsp://192.168.1.20:8554/stream"),
            ("file://relative/a.mp4", "file:///videos/a.mp4"),
        ] {
            let error = parse_input(input).unwrap_err();
            let text = error.to_string();
            assert!(text.contains(input) && text.contains(example), "{text}");
        }
        let error = parse_input("http://cam/stream").unwrap_err();
        assert_eq!(
            error,
            UriError::UnknownScheme {
                input: "http://cam/stream".into(),
                scheme: "http".into()
            }
        );
        assert!(error.to_string().contains("rtsp://"));
    }
}
