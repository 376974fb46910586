//! csra-image: the one picture path of csra, with no libtorch, so that training
//! (`csra-host`), export verification and the edge (`csra-edge`) feed a model exactly the same
//! floats for the same picture.
//!
//! - [`decode`]: JPEG (strict, zune-jpeg), PNG and BMP files, camera MJPEG, YUYV and RGB24
//!   frames to packed RGB8 ([`load_rgb`], [`Decoder`]);
//! - [`yuyv`]: YUYV 4:2:2 to RGB, BT.601 limited range;
//! - resizing: a source rectangle (the manifest's [`ResizePolicy`], or the host's random crop)
//!   to the input size with Pillow's antialiased bilinear filter, optionally mirrored;
//! - normalisation: a lookup table per channel into NCHW or NHWC floats, RGB or BGR;
//! - [`Renderer`]: resize and normalise one decoded picture; [`preprocess_image`] for one-off
//!   evaluation inputs; [`Preprocessor`]: raw bytes to one model's input with reused buffers;
//! - [`overlay`]: attention heat maps as in the CSRA paper's Fig. 4 and text captions, in the
//!   embedded [`font`].
//!
//! [`ResizePolicy`]: csra_core::manifest::ResizePolicy

pub mod decode;
mod error;
pub mod font;
mod normalize;
pub mod overlay;
mod preprocessor;
mod render;
mod resize;
pub mod yuyv;

pub use decode::{load_rgb, Decoder, PixelFormat, RawImage, RgbView};
pub use error::ImageError;
pub use preprocessor::Preprocessor;
pub use render::{preprocess_image, Renderer};
