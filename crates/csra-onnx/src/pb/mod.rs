//! The ONNX protobuf messages, csra-onnx's own copy of the schema.
//!
//! `onnx.rs` is prost-build's output for `onnx/onnx.proto` of the `onnx` Python package 1.23.2
//! (the version `requirements/test.txt` pins), turned into proto3 the way ONNX's own
//! `gen_proto.py` does it, so scalar fields are plain values rather than `Option`s. The schema
//! is © the ONNX Project Contributors, licensed under the Apache License 2.0; the generated
//! file keeps its comments as the items' docs. `tests/schema.rs` regenerates it with protox and
//! prost-build (pure Rust, no protoc) and fails when it differs; `CSRA_WRITE_SCHEMA=1` rewrites
//! it after an upgrade of the pinned `onnx`.

// Generated code: its docs are the schema's comments, which do not cover every item, and its
// style is prost-build's.
#![allow(missing_docs, clippy::all, clippy::pedantic, rustdoc::all)]

include!("onnx.rs");
