//! Camera frames made from a photo, as a camera would send them: MJPEG (the photo
//! JPEG-encoded, as a camera's encoder does) or YUYV 4:2:2 (BT.601 limited range, what UVC
//! cameras send). The fake camera is built of them, and `bench --pipeline` times the frame
//! path on them, from a stream that repeats one frame.

use std::io::Cursor;
use std::path::Path;
use std::time::Instant;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::RgbImage;

use crate::source::{Frame, FrameStream, PixelFormat, SourceError, StreamStats};

/// JPEG quality of the MJPEG frames; USB camera encoders use about this.
const JPEG_QUALITY: u8 = 85;

/// How a camera encodes its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraCodec {
    /// One JPEG per frame.
    Mjpeg,
    /// Packed YUYV 4:2:2, `width × 2` bytes per row.
    Yuyv,
}

impl CameraCodec {
    /// The [`PixelFormat`] its frames carry.
    pub fn pixel_format(self) -> PixelFormat {
        match self {
            CameraCodec::Mjpeg => PixelFormat::Mjpeg,
            CameraCodec::Yuyv => PixelFormat::Yuyv,
        }
    }

    /// Bytes per row of a `width`-pixel frame (0 for the compressed one).
    pub fn stride(self, width: u32) -> u32 {
        match self {
            CameraCodec::Mjpeg => 0,
            CameraCodec::Yuyv => width * 2,
        }
    }
}

/// Reads a photo and encodes it as one frame of `format` at `width`×`height`.
pub fn encode_photo(
    path: &Path,
    format: CameraCodec,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, SourceError> {
    let failed = |reason: String| SourceError::Open {
        what: path.display().to_string(),
        reason,
    };
    let photo = image::ImageReader::open(path)
        .map_err(|e| failed(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| failed(e.to_string()))?
        .decode()
        .map_err(|e| failed(format!("not a readable image: {e}")))?
        .to_rgb8();
    let rgb = image::imageops::resize(&photo, width, height, FilterType::Triangle);
    match format {
        CameraCodec::Mjpeg => {
            let mut jpeg = Cursor::new(Vec::new());
            JpegEncoder::new_with_quality(&mut jpeg, JPEG_QUALITY)
                .encode_image(&rgb)
                .map_err(|e| failed(format!("JPEG encoding: {e}")))?;
            Ok(jpeg.into_inner())
        }
        CameraCodec::Yuyv => Ok(rgb_to_yuyv(&rgb)),
    }
}

/// A `width`×`height` camera frame of `codec` made from the photo at `path`.
pub fn camera_frame(
    path: &Path,
    codec: CameraCodec,
    width: u32,
    height: u32,
) -> Result<Frame, SourceError> {
    let data = encode_photo(path, codec, width, height)?;
    Ok(Frame {
        format: codec.pixel_format(),
        width,
        height,
        stride: codec.stride(width),
        ..Frame::encoded(data, 0, path.display().to_string())
    })
}

/// One frame handed over `count` times, each a copy taken when asked for (as a camera's
/// buffer is copied out): a source that never keeps the pipeline waiting, for timing it.
pub struct RepeatedFrame {
    frame: Frame,
    left: u64,
    sequence: u64,
}

impl RepeatedFrame {
    /// `frame`, `count` times.
    pub fn new(frame: Frame, count: u64) -> Self {
        RepeatedFrame {
            frame,
            left: count,
            sequence: 0,
        }
    }
}

impl FrameStream for RepeatedFrame {
    fn next(&mut self) -> Result<Option<Frame>, SourceError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let mut frame = self.frame.clone();
        frame.sequence = self.sequence;
        frame.captured = Instant::now();
        self.sequence += 1;
        Ok(Some(frame))
    }

    fn stats(&self) -> StreamStats {
        StreamStats::default()
    }
}

/// Packs an RGB image (even width) as YUYV 4:2:2 with BT.601 limited-range coefficients, as
/// UVC cameras send it: each pair of pixels shares the U and V of their mean colour.
pub fn rgb_to_yuyv(rgb: &RgbImage) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgb.as_raw().len() / 3 * 2);
    for pair in rgb.as_raw().chunks_exact(6) {
        let [r0, g0, b0, r1, g1, b1] = [0, 1, 2, 3, 4, 5].map(|i| f64::from(pair[i]) / 255.0);
        let (r, g, b) = ((r0 + r1) / 2.0, (g0 + g1) / 2.0, (b0 + b1) / 2.0);
        let luma = |r: f64, g: f64, b: f64| 16.0 + 65.481 * r + 128.553 * g + 24.966 * b;
        let u = 128.0 - 37.797 * r - 74.203 * g + 112.0 * b;
        let v = 128.0 + 112.0 * r - 93.786 * g - 18.214 * b;
        out.extend([luma(r0, g0, b0), u, luma(r1, g1, b1), v].map(to_byte));
    }
    out
}

/// Rounds to the nearest byte value (the values above stay within 16..=240).
fn to_byte(value: f64) -> u8 {
    value.round().clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_of_known_colours_matches_bt601_limited_range() {
        // White, black, then pure red and pure blue sharing one chroma pair.
        let rgb =
            RgbImage::from_raw(4, 1, vec![255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 0, 255]).unwrap();
        let yuyv = rgb_to_yuyv(&rgb);
        // Pair 1: Y 235 and 16, chroma of mid grey (128, 128).
        // Pair 2: Y(red) = 16 + 65.481 → 81, Y(blue) = 16 + 24.966 → 41,
        // U = 128 + (-37.797 + 112) / 2 = 165.1 → 165, V = 128 + (112 - 18.214) / 2 = 174.9 → 175.
        assert_eq!(yuyv, [235, 128, 16, 128, 81, 165, 41, 175]);
    }
}
