//! V4L2 cameras: options, format negotiation, the `V4lSource` frame source and `probe`'s
//! device listing. Everything V4L2-specific stays here, behind
//! [`FrameSource`](crate::source::FrameSource), and needs the `camera` feature (the `v4l`
//! bindings, built with libclang); the options and codecs, which device profiles name, do not.

#[cfg(feature = "camera")]
mod formats;
#[cfg(feature = "camera")]
mod negotiate;
mod options;
#[cfg(feature = "camera")]
pub mod probe;
#[cfg(feature = "camera")]
mod v4l_source;

pub use options::{CameraOptions, Codec, UnknownCodec, BUFFER_RANGE};
#[cfg(feature = "camera")]
pub use v4l_source::{Negotiated, V4lSource};
