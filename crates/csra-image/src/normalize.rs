//! The last step: resized RGB8 pixels to the network's input floats, normalised through a
//! lookup table and written in the manifest's layout and channel order, mirrored left-right
//! when training augmentation asks for it.

use csra_core::manifest::{ColorOrder, Layout, Preprocess};

/// The normalised value of every 8-bit level, per input channel: one lookup per value instead
/// of a multiply, subtract and divide, and exactly [`Preprocess::normalize`].
#[derive(Debug, Clone)]
pub(crate) struct Levels {
    table: [[f32; 256]; 3],
    layout: Layout,
    /// For each input channel, the RGB channel it reads.
    source_channel: [usize; 3],
}

impl Levels {
    /// The table for `preprocess`, writing `layout` with channels in `color` order.
    pub(crate) fn new(preprocess: &Preprocess, layout: Layout, color: ColorOrder) -> Self {
        let source_channel = match color {
            ColorOrder::Rgb => [0, 1, 2],
            ColorOrder::Bgr => [2, 1, 0],
        };
        let mut table = [[0.0; 256]; 3];
        for (c, row) in table.iter_mut().enumerate() {
            for (level, value) in (0..=u8::MAX).zip(row.iter_mut()) {
                *value = preprocess.normalize(level, c);
            }
        }
        Self {
            table,
            layout,
            source_channel,
        }
    }

    /// Writes the packed RGB8 `pixels` (rows of `width` pixels, `3 × plane` bytes) to `out`
    /// (`3 × plane` floats), each row mirrored when `flip`.
    pub(crate) fn write(&self, pixels: &[u8], width: usize, flip: bool, out: &mut [f32]) {
        match self.layout {
            Layout::Nchw => self.write_planar(pixels, width, flip, out),
            Layout::Nhwc => self.write_interleaved(pixels, width, flip, out),
        }
    }

    fn write_planar(&self, pixels: &[u8], width: usize, flip: bool, out: &mut [f32]) {
        let plane = pixels.len() / 3;
        for (c, channel) in out.chunks_exact_mut(plane).enumerate().take(3) {
            let table = &self.table[c];
            let from = self.source_channel[c];
            if flip {
                let rows = channel
                    .chunks_exact_mut(width)
                    .zip(pixels.chunks_exact(3 * width));
                for (values, row) in rows {
                    for (value, pixel) in values.iter_mut().rev().zip(row.chunks_exact(3)) {
                        *value = table[usize::from(pixel[from])];
                    }
                }
            } else {
                for (value, pixel) in channel.iter_mut().zip(pixels.chunks_exact(3)) {
                    *value = table[usize::from(pixel[from])];
                }
            }
        }
    }

    fn write_interleaved(&self, pixels: &[u8], width: usize, flip: bool, out: &mut [f32]) {
        let rows = out
            .chunks_exact_mut(3 * width)
            .zip(pixels.chunks_exact(3 * width));
        for (values, row) in rows {
            for (x, pixel) in row.chunks_exact(3).enumerate() {
                let column = if flip { width - 1 - x } else { x };
                let value = &mut values[3 * column..3 * column + 3];
                for (c, v) in value.iter_mut().enumerate() {
                    *v = self.table[c][usize::from(pixel[self.source_channel[c]])];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use csra_core::manifest::ResizePolicy;

    fn imagenet() -> Preprocess {
        Preprocess {
            resize: ResizePolicy::Squash,
            scale: 1.0 / 255.0,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }

    #[test]
    fn planar_rgb_is_hand_computed() {
        // Two pixels: (255, 0, 10) and (0, 128, 255).
        let pixels = [255, 0, 10, 0, 128, 255];
        let mut out = [0.0; 6];
        Levels::new(&imagenet(), Layout::Nchw, ColorOrder::Rgb).write(&pixels, 2, false, &mut out);
        let expected = [
            (1.0 - 0.485) / 0.229,
            (0.0 - 0.485) / 0.229,
            (0.0 - 0.456) / 0.224,
            (128.0 / 255.0 - 0.456) / 0.224,
            (10.0 / 255.0 - 0.406) / 0.225,
            (1.0 - 0.406) / 0.225,
        ];
        for (got, want) in out.iter().zip(expected) {
            assert!((f64::from(*got) - want).abs() < 1e-5, "{out:?}");
        }
    }

    #[test]
    fn bgr_and_nhwc_reorder_channels() {
        let pixels = [1, 2, 3, 4, 5, 6];
        let identity = Preprocess {
            resize: ResizePolicy::Squash,
            scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        let mut out = [0.0; 6];
        Levels::new(&identity, Layout::Nchw, ColorOrder::Bgr).write(&pixels, 2, false, &mut out);
        assert_eq!(out, [3.0, 6.0, 2.0, 5.0, 1.0, 4.0]);
        Levels::new(&identity, Layout::Nhwc, ColorOrder::Bgr).write(&pixels, 2, false, &mut out);
        assert_eq!(out, [3.0, 2.0, 1.0, 6.0, 5.0, 4.0]);
    }

    #[test]
    fn flipping_mirrors_each_row_in_both_layouts() {
        // Two rows of two pixels: (1, 2, 3) (4, 5, 6) / (7, 8, 9) (10, 11, 12).
        let pixels: Vec<u8> = (1..=12).collect();
        let identity = Preprocess {
            resize: ResizePolicy::Squash,
            scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
        };
        let mut out = [0.0; 12];
        Levels::new(&identity, Layout::Nchw, ColorOrder::Rgb).write(&pixels, 2, true, &mut out);
        assert_eq!(
            out,
            [4.0, 1.0, 10.0, 7.0, 5.0, 2.0, 11.0, 8.0, 6.0, 3.0, 12.0, 9.0]
        );
        Levels::new(&identity, Layout::Nhwc, ColorOrder::Bgr).write(&pixels, 2, true, &mut out);
        assert_eq!(
            out,
            [6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 12.0, 11.0, 10.0, 9.0, 8.0, 7.0]
        );
    }
}
