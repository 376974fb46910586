//! Attention heat maps over pictures, as in the CSRA paper's Fig. 4, with a text caption:
//! shared by `csra-host explain` and `csra-edge --save-attention`, with no libtorch and no
//! system fonts.
//!
//! - [`overlay_attention`]: a class's `[h, w]` attention map, upsampled, jet-coloured and
//!   blended over the picture;
//! - [`caption`]: one line of text on a dark box in the top-left corner;
//! - [`font`]: the embedded DejaVu Sans both use.

pub mod font;
mod overlay;

pub use overlay::{caption, overlay_attention, OverlayError, OVERLAY_ALPHA};
