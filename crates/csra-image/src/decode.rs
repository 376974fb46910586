//! Pictures to packed RGB8: JPEG (files and camera MJPEG frames) with zune-jpeg in strict mode,
//! PNG and BMP with the `image` crate, YUYV through [`crate::yuyv`], packed RGB24 with or
//! without row padding.

use std::path::Path;

use image::RgbImage;
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use crate::yuyv::yuyv_to_rgb;
use crate::ImageError;

/// Every JPEG file starts with an SOI marker followed by another marker.
const JPEG_MAGIC: [u8; 3] = [0xFF, 0xD8, 0xFF];

/// The pixel encoding of a picture's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// One JPEG image per frame (V4L2 `MJPG`).
    Mjpeg,
    /// Packed 4:2:2 `Y0 U Y1 V`, two bytes per pixel (V4L2 `YUYV`).
    Yuyv,
    /// Packed 8-bit `R G B`, three bytes per pixel.
    Rgb24,
    /// A whole image file (JPEG, PNG, BMP) as read from disk; the decoder detects its type.
    Encoded,
}

/// Picture bytes as a camera or a file delivers them, before decoding.
#[derive(Debug, Clone, Copy)]
pub struct RawImage<'a> {
    /// How `data` is encoded.
    pub format: PixelFormat,
    /// Width in pixels (ignored for the compressed formats, whose size is in the data).
    pub width: u32,
    /// Height in pixels (ignored for the compressed formats).
    pub height: u32,
    /// Bytes per row of the packed formats, at least `width × bytes per pixel`; 0 means rows
    /// are not padded.
    pub stride: u32,
    /// The bytes.
    pub data: &'a [u8],
}

/// A borrowed packed RGB8 picture, `3 × width × height` bytes, rows top to bottom.
#[derive(Debug, Clone, Copy)]
pub struct RgbView<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The pixels.
    pub pixels: &'a [u8],
}

impl<'a> From<&'a RgbImage> for RgbView<'a> {
    fn from(image: &'a RgbImage) -> Self {
        Self {
            width: image.width(),
            height: image.height(),
            pixels: image.as_raw(),
        }
    }
}

/// Decodes pictures of any [`PixelFormat`] to RGB8 into one buffer reused across calls (the
/// edge decodes every camera frame through one).
#[derive(Debug, Default)]
pub struct Decoder {
    /// The decoded picture of the last call that needed decoding.
    rgb: Vec<u8>,
}

impl Decoder {
    /// A decoder with an empty buffer; the first picture sizes it.
    pub fn new() -> Self {
        Self::default()
    }

    /// `raw` as packed RGB8: in this decoder's buffer, or `raw`'s own bytes for packed RGB24
    /// without row padding.
    pub fn decode<'a>(&'a mut self, raw: RawImage<'a>) -> Result<RgbView<'a>, ImageError> {
        let decode_error = |reason| ImageError::Decode { reason };
        let (width, height) = match raw.format {
            PixelFormat::Mjpeg => decode_jpeg(raw.data, &mut self.rgb).map_err(decode_error)?,
            PixelFormat::Encoded if is_jpeg(raw.data) => {
                decode_jpeg(raw.data, &mut self.rgb).map_err(decode_error)?
            }
            PixelFormat::Encoded => decode_other(raw.data, &mut self.rgb).map_err(decode_error)?,
            PixelFormat::Yuyv => {
                let (width, height, stride) = packed_geometry(&raw, 2)?;
                if width % 2 != 0 {
                    return Err(ImageError::Geometry(format!(
                        "a YUYV frame must have an even width, not {width}"
                    )));
                }
                self.rgb.resize(3 * width * height, 0);
                yuyv_to_rgb(raw.data, width, height, stride, &mut self.rgb);
                (raw.width, raw.height)
            }
            PixelFormat::Rgb24 => {
                let (width, height, stride) = packed_geometry(&raw, 3)?;
                if width == 0 || height == 0 {
                    return Err(no_pixels());
                }
                if stride == 3 * width {
                    return Ok(RgbView {
                        width: raw.width,
                        height: raw.height,
                        pixels: &raw.data[..3 * width * height],
                    });
                }
                self.rgb.clear();
                for row in raw.data.chunks(stride).take(height) {
                    self.rgb.extend_from_slice(&row[..3 * width]);
                }
                (raw.width, raw.height)
            }
        };
        if width == 0 || height == 0 {
            return Err(no_pixels());
        }
        Ok(RgbView {
            width,
            height,
            pixels: &self.rgb,
        })
    }
}

fn no_pixels() -> ImageError {
    ImageError::Geometry("the picture has no pixels".into())
}

/// Reads and decodes a JPEG, PNG or BMP file to 8-bit RGB (grey and alpha are dropped to RGB).
///
/// JPEG decoding is strict: a truncated or corrupt file is an error naming it. (The `image`
/// crate's lenient JPEG mode would return the missing part as grey instead, and train on it.)
/// EXIF orientation is not applied, as PIL's `Image.open` in the official code does not.
pub fn load_rgb(path: &Path) -> Result<RgbImage, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| ImageError::Read {
        path: path.to_owned(),
        source,
    })?;
    let file_error = |reason| ImageError::File {
        path: path.to_owned(),
        reason,
    };
    let mut pixels = Vec::new();
    let (width, height) = if is_jpeg(&bytes) {
        decode_jpeg(&bytes, &mut pixels)
    } else {
        decode_other(&bytes, &mut pixels)
    }
    .map_err(file_error)?;
    if width == 0 || height == 0 {
        return Err(file_error("the image has no pixels".into()));
    }
    RgbImage::from_raw(width, height, pixels)
        .ok_or_else(|| file_error(format!("too few pixels for {width}×{height}")))
}

/// Whether `bytes` look like a JPEG.
fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&JPEG_MAGIC)
}

/// Decodes a JPEG into `rgb` (resized to fit, reusing its allocation) and returns
/// `(width, height)`. Strict: a truncated or corrupt picture is an error, not grey blocks.
fn decode_jpeg(bytes: &[u8], rgb: &mut Vec<u8>) -> Result<(u32, u32), String> {
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    // zune-jpeg's messages come quoted; the quotes would read as part of the reason.
    let invalid = |e: zune_jpeg::errors::DecodeErrors| {
        format!("invalid JPEG data: {}", e.to_string().trim_matches('"'))
    };
    decoder.decode_headers().map_err(invalid)?;
    let (width, height) = decoder
        .dimensions()
        .ok_or_else(|| "the JPEG decoder reported no dimensions".to_owned())?;
    let size = decoder
        .output_buffer_size()
        .ok_or_else(|| "the JPEG decoder reported no output size".to_owned())?;
    if size != 3 * width * height {
        return Err(format!(
            "the JPEG decoder did not produce RGB ({size} bytes for {width}×{height})"
        ));
    }
    rgb.resize(size, 0);
    decoder.decode_into(rgb).map_err(invalid)?;
    let too_large = || format!("{width}×{height} is too large");
    Ok((
        u32::try_from(width).map_err(|_| too_large())?,
        u32::try_from(height).map_err(|_| too_large())?,
    ))
}

/// Decodes a PNG or BMP file (whatever the `image` crate recognises) into `rgb`, dropping
/// alpha and expanding grey, and returns `(width, height)`.
fn decode_other(bytes: &[u8], rgb: &mut Vec<u8>) -> Result<(u32, u32), String> {
    let image = image::load_from_memory(bytes)
        .map_err(|e| e.to_string())?
        .into_rgb8();
    let size = image.dimensions();
    *rgb = image.into_raw();
    Ok(size)
}

/// `(width, height, stride)` of a packed picture with `bytes_per_pixel`, checked against its
/// data (a stride of 0 means rows are not padded).
fn packed_geometry(
    raw: &RawImage<'_>,
    bytes_per_pixel: usize,
) -> Result<(usize, usize, usize), ImageError> {
    let width = raw.width as usize;
    let height = raw.height as usize;
    // Found by fuzzing: a 0×N frame reached the converters, whose row iterators panic on it.
    if width == 0 || height == 0 {
        return Err(ImageError::Geometry(format!(
            "a {}×{} {:?} frame has no pixels",
            raw.width, raw.height, raw.format
        )));
    }
    let row = bytes_per_pixel * width;
    let stride = if raw.stride == 0 {
        row
    } else {
        raw.stride as usize
    };
    let needed = stride * (height - 1) + row;
    if stride < row || raw.data.len() < needed {
        return Err(ImageError::Truncated {
            format: raw.format,
            width: raw.width,
            height: raw.height,
            stride: raw.stride,
            needed,
            actual: raw.data.len(),
        });
    }
    Ok((width, height, stride))
}

#[cfg(test)]
mod tests;
