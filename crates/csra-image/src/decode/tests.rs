use std::io::Cursor;

use image::{DynamicImage, GrayImage, ImageFormat, Luma, Rgba, RgbaImage};

use super::*;

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

fn gradient_grey() -> DynamicImage {
    DynamicImage::ImageLuma8(GrayImage::from_fn(64, 48, |x, y| Luma([(2 * x + y) as u8])))
}

#[test]
fn a_grey_jpeg_becomes_rgb_with_equal_channels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grey.jpg");
    std::fs::write(&path, encode(&gradient_grey(), ImageFormat::Jpeg)).unwrap();
    let image = load_rgb(&path).unwrap();
    assert_eq!(image.dimensions(), (64, 48));
    for (x, y, p) in image.enumerate_pixels() {
        assert_eq!(p[0], p[1]);
        assert_eq!(p[1], p[2]);
        let expected = i32::from((2 * x + y) as u8);
        assert!((i32::from(p[0]) - expected).abs() <= 8, "({x}, {y}): {p:?}");
    }
}

#[test]
fn png_and_bmp_decode_exactly_and_drop_alpha() {
    let rgba = RgbaImage::from_fn(7, 5, |x, y| Rgba([x as u8 * 30, y as u8 * 40, 99, 17]));
    let dir = tempfile::tempdir().unwrap();
    for (name, format) in [("a.png", ImageFormat::Png), ("a.bmp", ImageFormat::Bmp)] {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            encode(&DynamicImage::ImageRgba8(rgba.clone()), format),
        )
        .unwrap();
        let image = load_rgb(&path).unwrap();
        for (x, y, p) in image.enumerate_pixels() {
            let q = rgba.get_pixel(x, y);
            assert_eq!(p.0, [q[0], q[1], q[2]], "{name} ({x}, {y})");
        }
    }
}

#[test]
fn a_truncated_jpeg_is_an_error_naming_the_file() {
    let full = encode(&gradient_grey().to_rgb8().into(), ImageFormat::Jpeg);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.jpg");
    std::fs::write(&path, &full[..full.len() / 2]).unwrap();
    let err = load_rgb(&path).unwrap_err();
    assert!(matches!(err, ImageError::File { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("cut.jpg"), "{message}");
    assert!(message.contains("may be truncated"), "{message}");
}

#[test]
fn a_text_file_and_a_missing_file_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, "not a picture").unwrap();
    let err = load_rgb(&text).unwrap_err();
    assert!(matches!(err, ImageError::File { .. }), "{err:?}");
    assert!(err.to_string().contains("notes.jpg"), "{err}");

    let missing = dir.path().join("missing.png");
    let err = load_rgb(&missing).unwrap_err();
    assert!(matches!(err, ImageError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.png"), "{err}");
}

#[test]
fn packed_rgb_is_used_in_place_and_row_padding_is_dropped() {
    // 3×2 pixels, levels 0..18 in reading order.
    let pixels: Vec<u8> = (0..18).collect();
    let raw = RawImage {
        format: PixelFormat::Rgb24,
        width: 3,
        height: 2,
        stride: 0,
        data: &pixels,
    };
    let mut decoder = Decoder::new();
    let view = decoder.decode(raw).unwrap();
    assert_eq!((view.width, view.height), (3, 2));
    assert!(std::ptr::eq(view.pixels, &pixels[..]), "not copied");
    // The same rows with two padding bytes each (V4L2 `bytesperline` 11).
    let padded: Vec<u8> = pixels
        .chunks(9)
        .flat_map(|row| row.iter().copied().chain([0xEE, 0xEE]))
        .collect();
    let view = decoder
        .decode(RawImage {
            stride: 11,
            data: &padded,
            ..raw
        })
        .unwrap();
    assert_eq!(view.pixels, &pixels[..]);
}

#[test]
fn short_odd_and_empty_raw_frames_are_errors() {
    let mut decoder = Decoder::new();
    let data = [0u8; 10];
    let yuyv = RawImage {
        format: PixelFormat::Yuyv,
        width: 4,
        height: 2,
        stride: 0,
        data: &data,
    };
    // Two rows of 4 YUYV pixels need 2 × 8 bytes.
    let err = decoder.decode(yuyv).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::Truncated {
                needed: 16,
                actual: 10,
                ..
            }
        ),
        "{err:?}"
    );
    let odd = RawImage {
        width: 3,
        height: 1,
        ..yuyv
    };
    assert!(decoder
        .decode(odd)
        .unwrap_err()
        .to_string()
        .contains("even width"));
    let empty = RawImage {
        format: PixelFormat::Rgb24,
        width: 0,
        height: 2,
        ..yuyv
    };
    assert!(decoder
        .decode(empty)
        .unwrap_err()
        .to_string()
        .contains("no pixels"));
    let text = RawImage {
        format: PixelFormat::Encoded,
        data: b"not a picture",
        ..yuyv
    };
    assert!(matches!(
        decoder.decode(text),
        Err(ImageError::Decode { .. })
    ));
}
