//! Video files, RTSP and RTP streams and CSI cameras through GStreamer: [`description`] says
//! which pipeline each input becomes (always built, so it is tested everywhere); the source
//! that runs it, `GstSource`, and the file stream `VideoFileStream` need the `gstreamer`
//! feature.

#[cfg(feature = "gstreamer")]
mod appsink_source;
pub mod description;

#[cfg(feature = "gstreamer")]
pub use appsink_source::{platform, GstSource, VideoFileStream};
pub use description::{describe, GstInput, Platform, RtpPayload, Target};
