//! V4L2 cameras: options, format negotiation, the [`V4lSource`] frame source and
//! [`probe`]'s device listing. Everything V4L2-specific stays here, behind
//! [`FrameSource`](crate::frame::FrameSource).

pub mod formats;
mod negotiate;
mod options;
pub mod probe;
mod v4l_source;

pub use options::{CameraOptions, Codec, UnknownCodec, BUFFER_RANGE};
pub use v4l_source::{Negotiated, V4lSource};
