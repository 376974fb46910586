//! Format negotiation: which codec and size to ask the driver for, given what it offers and
//! what the user asked. Pure logic over [`FormatInfo`], so it is tested without a device.

use super::formats::FormatInfo;
use super::options::{CameraOptions, Codec};
use crate::source::SourceError;

/// The codecs tried, in order, when the user names none: MJPEG first, because it moves high
/// resolutions over USB at full rate, then YUYV, which nearly every camera offers.
const PREFERENCE: [Codec; 2] = [Codec::Mjpeg, Codec::Yuyv];

/// What to ask the driver for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// The codec.
    pub codec: Codec,
    /// The size, or `None` to keep the driver's current one (drivers that do not enumerate
    /// sizes).
    pub size: Option<(u32, u32)>,
}

/// Chooses the codec (the user's, else MJPEG, else YUYV) and the size (the nearest to the
/// requested one, else the largest) among `offered`.
pub fn choose(
    device: &str,
    offered: &[FormatInfo],
    options: &CameraOptions,
) -> Result<Choice, SourceError> {
    let wanted: &[Codec] = match &options.codec {
        Some(codec) => std::slice::from_ref(codec),
        None => &PREFERENCE,
    };
    let (codec, format) = wanted
        .iter()
        .find_map(|&codec| {
            offered
                .iter()
                .find(|f| f.fourcc_bytes() == codec.fourcc())
                .map(|f| (codec, f))
        })
        .ok_or_else(|| unsupported(device, wanted, offered))?;
    Ok(Choice {
        codec,
        size: best_size(format, options.width, options.height),
    })
}

fn unsupported(device: &str, wanted: &[Codec], offered: &[FormatInfo]) -> SourceError {
    let asked = wanted
        .iter()
        .map(|c| c.to_string().to_uppercase())
        .collect::<Vec<_>>()
        .join(" or ");
    let offered = if offered.is_empty() {
        "no capture formats".to_owned()
    } else {
        offered
            .iter()
            .map(|f| format!("{} ({})", f.fourcc, f.description))
            .collect::<Vec<_>>()
            .join(", ")
    };
    SourceError::UnsupportedFormat {
        device: device.to_owned(),
        asked,
        offered: format!("{offered}; csra-edge decodes MJPEG and YUYV (see `csra-edge probe`)"),
    }
}

/// The offered size nearest to the request (each given dimension counts; ties go to the larger
/// size), or the largest one when nothing is requested.
fn best_size(format: &FormatInfo, width: Option<u32>, height: Option<u32>) -> Option<(u32, u32)> {
    let candidates = format.sizes.iter().map(|s| match (width, height) {
        (None, None) => s.size.largest(),
        // A missing dimension is asked for as the range's largest, so it does not pull the
        // choice anywhere.
        _ => {
            let (max_w, max_h) = s.size.largest();
            s.size
                .nearest(width.unwrap_or(max_w), height.unwrap_or(max_h))
        }
    });
    let distance = |&(w, h): &(u32, u32)| {
        width.map_or(0, |want| w.abs_diff(want)) + height.map_or(0, |want| h.abs_diff(want))
    };
    candidates.min_by(|a, b| {
        distance(a)
            .cmp(&distance(b))
            .then((u64::from(b.0) * u64::from(b.1)).cmp(&(u64::from(a.0) * u64::from(a.1))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::v4l2::formats::{SizeInfo, SizeRange};

    fn format(fourcc: &str, sizes: &[(u32, u32)]) -> FormatInfo {
        FormatInfo {
            fourcc: fourcc.into(),
            description: format!("{fourcc} description"),
            sizes: sizes
                .iter()
                .map(|&(width, height)| SizeInfo {
                    size: SizeRange::Discrete { width, height },
                    rates: Vec::new(),
                })
                .collect(),
        }
    }

    fn webcam() -> Vec<FormatInfo> {
        vec![
            format("YUYV", &[(640, 480), (1280, 720)]),
            format("MJPG", &[(320, 240), (1920, 1080), (1280, 720)]),
        ]
    }

    fn options(codec: Option<Codec>, width: Option<u32>, height: Option<u32>) -> CameraOptions {
        CameraOptions {
            codec,
            width,
            height,
            ..CameraOptions::new("/dev/video9")
        }
    }

    #[test]
    fn mjpeg_at_the_largest_size_is_preferred() {
        let choice = choose("cam", &webcam(), &options(None, None, None)).ok();
        assert_eq!(
            choice,
            Some(Choice {
                codec: Codec::Mjpeg,
                size: Some((1920, 1080))
            })
        );
    }

    #[test]
    fn the_requested_size_picks_the_nearest_offered_one() {
        let choice = choose("cam", &webcam(), &options(None, Some(1280), Some(700))).ok();
        assert_eq!(choice.and_then(|c| c.size), Some((1280, 720)));
        let only_width = choose("cam", &webcam(), &options(None, Some(300), None)).ok();
        assert_eq!(only_width.and_then(|c| c.size), Some((320, 240)));
    }

    #[test]
    fn yuyv_is_the_fallback_and_an_explicit_codec_is_honoured() {
        let yuyv_only = vec![format("YUYV", &[(640, 480)]), format("NV12", &[(640, 480)])];
        let choice = choose("cam", &yuyv_only, &options(None, None, None)).ok();
        assert_eq!(choice.map(|c| c.codec), Some(Codec::Yuyv));
        let explicit = choose("cam", &webcam(), &options(Some(Codec::Yuyv), None, None)).ok();
        assert_eq!(
            explicit,
            Some(Choice {
                codec: Codec::Yuyv,
                size: Some((1280, 720))
            })
        );
    }

    #[test]
    fn an_unsupported_codec_names_the_device_and_what_it_offers() {
        let yuyv_only = vec![format("YUYV", &[(640, 480)]), format("NV12", &[(640, 480)])];
        let err = choose(
            "/dev/video3",
            &yuyv_only,
            &options(Some(Codec::Mjpeg), None, None),
        )
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "/dev/video3 does not support MJPEG; it offers YUYV (YUYV description), \
                 NV12 (NV12 description); csra-edge decodes MJPEG and YUYV \
                 (see `csra-edge probe`)"
            )
        );
        let raw_only = vec![format("BA81", &[(640, 480)])];
        let err = choose("cam", &raw_only, &options(None, None, None))
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with("cam does not support MJPEG or YUYV")),
            "{err:?}"
        );
    }

    #[test]
    fn a_format_without_enumerated_sizes_keeps_the_driver_size() {
        let choice = choose(
            "cam",
            &[format("YUYV", &[])],
            &options(None, Some(640), None),
        )
        .ok();
        assert_eq!(
            choice,
            Some(Choice {
                codec: Codec::Yuyv,
                size: None
            })
        );
    }
}
