//! What a V4L2 device offers: pixel formats, frame sizes and frame rates, read through the
//! `VIDIOC_ENUM_*` ioctls into plain data that negotiation and `probe` share.

use std::fmt;
use std::io;

use serde::Serialize;
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::video::Capture as _;
use v4l::{Device, FourCC, Fraction};

/// One pixel format a device offers, with its sizes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FormatInfo {
    /// The four-character code, e.g. `MJPG` or `YUYV`.
    pub fourcc: String,
    /// The driver's description, e.g. `Motion-JPEG`.
    pub description: String,
    /// The frame sizes offered in this format (empty when the driver does not enumerate them).
    pub sizes: Vec<SizeInfo>,
}

impl FormatInfo {
    /// The four-character code as bytes (spaces pad codes shorter than four characters).
    pub fn fourcc_bytes(&self) -> [u8; 4] {
        let mut code = *b"    ";
        for (slot, byte) in code.iter_mut().zip(self.fourcc.bytes()) {
            *slot = byte;
        }
        code
    }
}

/// A frame size, or a range of them, with the frame rates offered at it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeInfo {
    /// The size or size range.
    pub size: SizeRange,
    /// Frames per second offered at this size (at the largest size of a range).
    pub rates: Vec<RateRange>,
}

/// A frame size as V4L2 enumerates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SizeRange {
    /// Exactly this size.
    Discrete {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// Any size in the range whose offsets from the minimum are multiples of the steps.
    Stepwise {
        /// Smallest width.
        min_width: u32,
        /// Largest width.
        max_width: u32,
        /// Width step (1 for a continuous range).
        step_width: u32,
        /// Smallest height.
        min_height: u32,
        /// Largest height.
        max_height: u32,
        /// Height step.
        step_height: u32,
    },
}

impl SizeRange {
    /// The largest size in the range.
    pub fn largest(&self) -> (u32, u32) {
        match *self {
            SizeRange::Discrete { width, height } => (width, height),
            SizeRange::Stepwise {
                max_width,
                max_height,
                ..
            } => (max_width, max_height),
        }
    }

    /// The size in the range nearest to `width`×`height` (each clamped to the range and
    /// rounded to its step).
    pub fn nearest(&self, width: u32, height: u32) -> (u32, u32) {
        match *self {
            SizeRange::Discrete { width, height } => (width, height),
            SizeRange::Stepwise {
                min_width,
                max_width,
                step_width,
                min_height,
                max_height,
                step_height,
            } => (
                snap(width, min_width, max_width, step_width),
                snap(height, min_height, max_height, step_height),
            ),
        }
    }
}

/// `value` clamped to `min..=max` and rounded to the nearest `min + k·step`.
fn snap(value: u32, min: u32, max: u32, step: u32) -> u32 {
    let clamped = value.clamp(min, max.max(min));
    let step = step.max(1);
    let k = (clamped - min + step / 2) / step;
    (min + k * step).min(max.max(min))
}

impl fmt::Display for SizeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SizeRange::Discrete { width, height } => write!(f, "{width}x{height}"),
            SizeRange::Stepwise {
                min_width,
                max_width,
                step_width,
                min_height,
                max_height,
                step_height,
            } => write!(
                f,
                "{min_width}x{min_height} to {max_width}x{max_height} \
                 (steps {step_width}x{step_height})"
            ),
        }
    }
}

/// Frame rates as V4L2 enumerates them, in frames per second.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RateRange {
    /// Exactly this rate.
    Discrete {
        /// Frames per second.
        fps: f64,
    },
    /// Any rate in the range.
    Stepwise {
        /// Slowest rate.
        min_fps: f64,
        /// Fastest rate.
        max_fps: f64,
    },
}

impl fmt::Display for RateRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RateRange::Discrete { fps } => write!(f, "{}", Fps(fps)),
            RateRange::Stepwise { min_fps, max_fps } => {
                write!(f, "{}–{}", Fps(min_fps), Fps(max_fps))
            }
        }
    }
}

/// A rate printed with as many decimals as it needs (30, 7.5, 29.97).
struct Fps(f64);

impl fmt::Display for Fps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rounded = (self.0 * 100.0).round() / 100.0;
        write!(f, "{rounded}")
    }
}

/// Frames per second of a frame interval given in seconds (0 for a zero interval).
pub(crate) fn fps_of(interval: Fraction) -> f64 {
    if interval.numerator == 0 {
        0.0
    } else {
        f64::from(interval.denominator) / f64::from(interval.numerator)
    }
}

/// Reads every capture format of `dev` with its sizes and, when `with_rates`, the rates.
pub fn enumerate(dev: &Device, with_rates: bool) -> io::Result<Vec<FormatInfo>> {
    dev.enum_formats()?
        .into_iter()
        .map(|desc| {
            let sizes = sizes_of(dev, desc.fourcc, with_rates)?;
            Ok(FormatInfo {
                fourcc: fourcc_string(desc.fourcc),
                description: desc.description,
                sizes,
            })
        })
        .collect()
}

/// The four-character code as text, with non-printable bytes replaced.
pub(crate) fn fourcc_string(fourcc: FourCC) -> String {
    String::from_utf8_lossy(&fourcc.repr).trim_end().to_owned()
}

fn sizes_of(dev: &Device, fourcc: FourCC, with_rates: bool) -> io::Result<Vec<SizeInfo>> {
    // Drivers that cannot enumerate sizes answer EINVAL (or ENOTTY) at index 0; negotiation
    // then keeps the driver's current size.
    let Ok(sizes) = dev.enum_framesizes(fourcc) else {
        return Ok(Vec::new());
    };
    sizes
        .into_iter()
        .map(|size| {
            let size = match size.size {
                FrameSizeEnum::Discrete(d) => SizeRange::Discrete {
                    width: d.width,
                    height: d.height,
                },
                FrameSizeEnum::Stepwise(s) => SizeRange::Stepwise {
                    min_width: s.min_width,
                    max_width: s.max_width,
                    step_width: s.step_width,
                    min_height: s.min_height,
                    max_height: s.max_height,
                    step_height: s.step_height,
                },
            };
            let rates = if with_rates {
                rates_of(dev, fourcc, size.largest())
            } else {
                Vec::new()
            };
            Ok(SizeInfo { size, rates })
        })
        .collect()
}

fn rates_of(dev: &Device, fourcc: FourCC, (width, height): (u32, u32)) -> Vec<RateRange> {
    // Frame intervals are optional in V4L2; a driver without them simply lists no rates.
    let Ok(intervals) = dev.enum_frameintervals(fourcc, width, height) else {
        return Vec::new();
    };
    intervals
        .into_iter()
        .map(|interval| match interval.interval {
            FrameIntervalEnum::Discrete(fraction) => RateRange::Discrete {
                fps: fps_of(fraction),
            },
            // The longest interval is the slowest rate.
            FrameIntervalEnum::Stepwise(s) => RateRange::Stepwise {
                min_fps: fps_of(s.max),
                max_fps: fps_of(s.min),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stepwise_sizes_snap_to_their_grid_and_clamp() {
        let range = SizeRange::Stepwise {
            min_width: 16,
            max_width: 1920,
            step_width: 16,
            min_height: 16,
            max_height: 1080,
            step_height: 8,
        };
        assert_eq!(range.nearest(640, 480), (640, 480));
        // 650 is 634 above the minimum: 39.6 steps, rounded to 40 → 16 + 640.
        assert_eq!(range.nearest(650, 485), (656, 488));
        assert_eq!(range.nearest(4000, 1), (1920, 16));
        assert_eq!(range.largest(), (1920, 1080));
    }

    #[test]
    fn rates_print_without_needless_decimals() {
        assert_eq!(RateRange::Discrete { fps: 30.0 }.to_string(), "30");
        assert_eq!(
            RateRange::Discrete {
                fps: fps_of(Fraction::new(1001, 30000))
            }
            .to_string(),
            "29.97"
        );
        assert_eq!(
            RateRange::Stepwise {
                min_fps: 1.0,
                max_fps: 7.5
            }
            .to_string(),
            "1–7.5"
        );
    }

    #[test]
    fn four_character_codes_pad_with_spaces() {
        let info = FormatInfo {
            fourcc: "Y8".into(),
            description: String::new(),
            sizes: Vec::new(),
        };
        assert_eq!(&info.fourcc_bytes(), b"Y8  ");
    }
}
