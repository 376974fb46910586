//! csra-edge: runs exported CSRA models headless, on camera streams and image files.
//!
//! - [`frame`]: frames as sources deliver them, and the traits the pipeline pulls them through;
//! - [`camera`]: V4L2 cameras (options, format negotiation, the frame source, `probe`);
//! - [`capture`]: the capture thread that hands the pipeline the newest frame and reconnects;
//! - [`sink`]: where result lines go (stdout, MQTT);
//! - [`testing`]: a fake camera made of photos, with injectable faults.

pub mod camera;
pub mod capture;
pub mod frame;
pub mod sink;
pub mod testing;
