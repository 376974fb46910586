//! Packed YUYV 4:2:2 to RGB, ITU-R BT.601 limited range (Y in 16..=235, U and V in 16..=240),
//! the encoding V4L2 cameras deliver `YUYV` in.

/// Converts `height` rows of `width` YUYV pixels (`stride` bytes per row) to packed RGB in
/// `rgb` (`3 × width × height` bytes). `width` must be even, as 4:2:2 pairs pixels.
pub fn yuyv_to_rgb(src: &[u8], width: usize, height: usize, stride: usize, rgb: &mut [u8]) {
    for (row_in, row_out) in src
        .chunks(stride)
        .take(height)
        .zip(rgb.chunks_exact_mut(3 * width))
    {
        for (quad, out) in row_in[..2 * width]
            .chunks_exact(4)
            .zip(row_out.chunks_exact_mut(6))
        {
            let (u, v) = (quad[1], quad[3]);
            out[..3].copy_from_slice(&ycbcr_to_rgb(quad[0], u, v));
            out[3..].copy_from_slice(&ycbcr_to_rgb(quad[2], u, v));
        }
    }
}

/// One pixel in 8.8 fixed point: `R = 1.164(Y−16) + 1.596(V−128)`,
/// `G = 1.164(Y−16) − 0.392(U−128) − 0.813(V−128)`, `B = 1.164(Y−16) + 2.017(U−128)`,
/// rounded and clamped to 0..=255.
pub fn ycbcr_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 298 * (i32::from(y) - 16);
    let d = i32::from(u) - 128;
    let e = i32::from(v) - 128;
    let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [
        clamp(c + 409 * e),
        clamp(c - 100 * d - 208 * e),
        clamp(c + 516 * d),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BT.601 limited range in floating point, rounded: the textbook formula.
    fn reference(y: u8, u: u8, v: u8) -> [u8; 3] {
        let (y, u, v) = (
            f64::from(y) - 16.0,
            f64::from(u) - 128.0,
            f64::from(v) - 128.0,
        );
        let r = 1.164 * y + 1.596 * v;
        let g = 1.164 * y - 0.392 * u - 0.813 * v;
        let b = 1.164 * y + 2.017 * u;
        [r, g, b].map(|x| x.round().clamp(0.0, 255.0) as u8)
    }

    #[test]
    fn hand_computed_bt601_values() {
        // Black, white and mid grey: Y = 16, 235 and 126 with neutral chroma.
        assert_eq!(ycbcr_to_rgb(16, 128, 128), [0, 0, 0]);
        assert_eq!(ycbcr_to_rgb(235, 128, 128), [255, 255, 255]);
        // 1.164·(126−16) = 128.04.
        assert_eq!(ycbcr_to_rgb(126, 128, 128), [128, 128, 128]);
        // BT.601's 75 % red bar of the SMPTE pattern, Y 65 U 100 V 212:
        // R = 1.164·49 + 1.596·84 = 191.1, G = 57.04 + 10.98 − 68.29 = −0.27 → 0,
        // B = 57.04 − 56.48 = 0.56 → 1.
        assert_eq!(ycbcr_to_rgb(65, 100, 212), [191, 0, 1]);
        // Pure blue, Y 41 U 240 V 110: R = 29.1 − 28.73 = 0.37 → 0,
        // G = 29.1 − 43.9 + 14.63 = −0.17 → 0, B = 29.1 + 225.9 = 255.
        assert_eq!(ycbcr_to_rgb(41, 240, 110), [0, 0, 255]);
    }

    #[test]
    fn fixed_point_is_within_one_level_of_the_formula_everywhere() {
        for y in (0..=255).step_by(3) {
            for u in (0..=255).step_by(5) {
                for v in (0..=255).step_by(7) {
                    let got = ycbcr_to_rgb(y, u, v);
                    let want = reference(y, u, v);
                    for k in 0..3 {
                        assert!(
                            got[k].abs_diff(want[k]) <= 1,
                            "{y} {u} {v}: {got:?} vs {want:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn pixel_pairs_share_chroma_and_rows_honour_the_stride() {
        // Two rows of 2 pixels, stride 6 (2 padding bytes per row).
        let src = [
            16, 128, 235, 128, 9, 9, //
            65, 100, 126, 212, 9, 9,
        ];
        let mut rgb = [0u8; 12];
        yuyv_to_rgb(&src, 2, 2, 6, &mut rgb);
        assert_eq!(&rgb[..6], &[0, 0, 0, 255, 255, 255]);
        assert_eq!(&rgb[6..9], &ycbcr_to_rgb(65, 100, 212));
        assert_eq!(&rgb[9..], &ycbcr_to_rgb(126, 100, 212));
    }
}
