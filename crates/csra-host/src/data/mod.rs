//! Data loading: decode, augment and batch images for training and evaluation, on worker threads.
//!
//! The pipeline follows the official CSRA code:
//!
//! - **Decode** ([`csra_image::load_rgb`]): JPEG through zune-jpeg in strict mode (a truncated
//!   file is an error, not a grey-filled picture), PNG and BMP through the `image` crate;
//!   always RGB8.
//! - **Train** ([`Augment::Train`]): torchvision's `RandomResizedCrop(S, scale=(0.7, 1.0))` with
//!   its default aspect ratios 3/4..4/3, then a horizontal flip with probability 0.5.
//! - **Eval** ([`Augment::None`]): the [`ResizePolicy`] of the [`Preprocess`] (the official one
//!   squashes to `S × S`).
//! - Every resize is an antialiased bilinear filter (Pillow's, as torchvision uses on PIL
//!   images), read straight from the crop rectangle of the decoded picture; the pixels are then
//!   normalised per channel and written as CHW floats straight into the batch. Decoding,
//!   resizing and normalising are csra-image's [`Renderer`](csra_image::Renderer), the code
//!   csra-edge runs, so a model sees the same input in training, evaluation and deployment.
//! - A sample with a box (WIDER-Attribute persons) is cut to that box first, as the official
//!   code does, and the crop is drawn inside it.
//!
//! [`Loader`] runs this on background threads and hands out [`Batch`]es in order; what a batch
//! holds depends only on the seed, the epoch and the sample order, never on thread timing.
//! Images that cannot be decoded are left out of their batch, logged once and reported by
//! [`EpochIter::skipped`].
//!
//! [`ResizePolicy`]: csra_core::manifest::ResizePolicy
//! [`Preprocess`]: csra_core::manifest::Preprocess

mod augment;
mod batch;
mod cache;
mod crop;
mod error;
mod loader;
mod order;
mod throughput;

pub use augment::Augment;
pub use batch::Batch;
pub use crop::{random_resized_crop, Rect};
pub use error::DataError;
pub use loader::{EpochIter, Loader, LoaderConfig};
pub use throughput::{measure_throughput, Throughput};
