//! Image decoding to RGB8.

use std::path::Path;

use image::RgbImage;
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use super::DataError;

/// Every JPEG file starts with an SOI marker followed by another marker.
const JPEG_MAGIC: [u8; 3] = [0xFF, 0xD8, 0xFF];

/// Reads and decodes a JPEG, PNG or BMP file to 8-bit RGB (grey and alpha are dropped to RGB).
///
/// JPEG decoding is strict: a truncated or corrupt file is an error naming it. (The `image`
/// crate's lenient JPEG mode would return the missing part as grey instead, and train on it.)
/// EXIF orientation is not applied, as PIL's `Image.open` in the official code does not.
pub fn load_rgb(path: &Path) -> Result<RgbImage, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Read {
        path: path.to_owned(),
        source,
    })?;
    let decoded = if bytes.starts_with(&JPEG_MAGIC) {
        decode_jpeg(&bytes)
    } else {
        decode_other(&bytes)
    };
    let image = decoded.map_err(|reason| DataError::Decode {
        path: path.to_owned(),
        reason,
    })?;
    if image.width() == 0 || image.height() == 0 {
        return Err(DataError::Decode {
            path: path.to_owned(),
            reason: "the image has no pixels".into(),
        });
    }
    Ok(image)
}

fn decode_jpeg(bytes: &[u8]) -> Result<RgbImage, String> {
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    // zune-jpeg's messages come quoted; the quotes would read as part of the reason.
    let pixels = decoder
        .decode()
        .map_err(|e| format!("invalid JPEG data: {}", e.to_string().trim_matches('"')))?;
    let (width, height) = decoder
        .dimensions()
        .ok_or_else(|| "the JPEG decoder reported no dimensions".to_owned())?;
    let too_large = || format!("{width}×{height} is too large");
    let width = u32::try_from(width).map_err(|_| too_large())?;
    let height = u32::try_from(height).map_err(|_| too_large())?;
    RgbImage::from_raw(width, height, pixels)
        .ok_or_else(|| format!("the JPEG decoder returned too few pixels for {width}×{height}"))
}

fn decode_other(bytes: &[u8]) -> Result<RgbImage, String> {
    image::load_from_memory(bytes)
        .map(|image| image.into_rgb8())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
