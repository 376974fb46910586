//! Compressed pictures to packed RGB8 in a reused buffer: JPEG (camera MJPEG frames and JPEG
//! files) with zune-jpeg in strict mode, PNG and BMP files with the `image` crate.

use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// Every JPEG file starts with an SOI marker followed by another marker.
const JPEG_MAGIC: [u8; 3] = [0xFF, 0xD8, 0xFF];

/// Whether `bytes` look like a JPEG.
pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&JPEG_MAGIC)
}

/// Decodes a JPEG into `rgb` (resized to fit, reusing its allocation) and returns
/// `(width, height)`. Strict: a truncated or corrupt picture is an error, not grey blocks the
/// model would label. (Same decoder and mode as `csra-host`'s data loader.)
pub fn decode_jpeg(bytes: &[u8], rgb: &mut Vec<u8>) -> Result<(u32, u32), String> {
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
pub fn decode_other(bytes: &[u8], rgb: &mut Vec<u8>) -> Result<(u32, u32), String> {
    let image = image::load_from_memory(bytes)
        .map_err(|e| e.to_string())?
        .into_rgb8();
    let size = image.dimensions();
    *rgb = image.into_raw();
    Ok(size)
}
