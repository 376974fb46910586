//! The csra vocabulary, shared by the host trainer, the ONNX builder and the edge runtime.
//!
//! It holds what every other crate needs to agree on and nothing heavy (no libtorch, no ONNX
//! runtime):
//!
//! - [`head`]: the CSRA head spec ([`head::HeadSpec`]) and its reference math in plain Rust,
//!   the oracle every exported or trained head is tested against;
//! - [`labels`]: the VOC, COCO and WIDER-Attribute label sets and the plain labels file;
//! - [`manifest`]: the versioned JSON that sits beside every exported `.onnx`;
//! - [`metrics`]: mAP, CP/CR/CF1 and OP/OR/OF1, computed exactly as the official CSRA code does;
//! - `dataset` (feature `datasets`): readers for COCO, PASCAL VOC, WIDER-Attribute, the official
//!   JSON lists and CSV;
//! - `class_map` (feature `datasets`): one label space mapped onto another by class name.

#[cfg(feature = "datasets")]
pub mod class_map;
#[cfg(feature = "datasets")]
pub mod dataset;
pub mod error_chain;
pub mod fsutil;
pub mod head;
pub mod labels;
pub mod manifest;
pub mod metrics;

#[cfg(feature = "datasets")]
pub use class_map::ClassMap;
#[cfg(feature = "datasets")]
pub use dataset::{BBox, Dataset, DatasetError, Sample};
pub use error_chain::error_chain;
pub use head::{HeadSpec, HeadVariant, Temperature};
pub use labels::LabelSet;
pub use manifest::Manifest;

/// A serde_json error's message without the " at line L column C" that serde_json appends:
/// csra's errors report the position in their own `file:line:column` prefix.
pub(crate) fn json_error_message(err: &serde_json::Error) -> String {
    let message = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    match message.strip_suffix(&suffix) {
        Some(stripped) => stripped.to_owned(),
        None => message,
    }
}
