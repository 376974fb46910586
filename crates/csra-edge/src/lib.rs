//! csra-edge: runs exported CSRA models headless, on camera streams and image files.
//!
//! - [`frame`]: frames as sources deliver them, and the traits the pipeline pulls them through;
//! - [`sink`]: where result lines go (stdout, MQTT).

pub mod frame;
pub mod sink;
