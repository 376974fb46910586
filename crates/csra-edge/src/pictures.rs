//! Image files preprocessed exactly as inference preprocesses frames, kept in one buffer
//! picture after picture: INT8 calibration pictures (`--calibration DIR`, in the layout
//! TensorRT's entropy calibrator takes) and the pictures `csra-edge verify` compares engines
//! on. A picture that cannot be read or decoded is skipped, logged and counted.

use std::path::PathBuf;

use csra_core::manifest::Manifest;
use thiserror::Error;

use crate::preprocess::Preprocessor;
use crate::source::files::{expand_input, FileStream, InputError};
use crate::source::FrameStream;

/// An error reading pictures.
#[derive(Debug, Error)]
pub enum PicturesError {
    /// The folder, file or glob names no image file.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Too few pictures could be used.
    #[error("{}: {usable} usable picture(s) ({skipped} could not be read or decoded), at least {needed} are needed; add pictures like those the camera sees", input.display())]
    TooFew {
        /// The folder, file or glob given.
        input: PathBuf,
        /// Pictures preprocessed.
        usable: usize,
        /// Pictures skipped.
        skipped: usize,
        /// The minimum asked for.
        needed: usize,
    },
}

/// Preprocessed pictures.
#[derive(Debug, Clone, PartialEq)]
pub struct Pictures {
    /// `names.len() × input_len` values, picture after picture, in the model's input layout.
    pub data: Vec<f32>,
    /// Each picture's file, in order.
    pub names: Vec<String>,
    /// Files skipped because they could not be read or decoded.
    pub skipped: usize,
}

impl Pictures {
    /// Reads every image `input` names (a folder, a file or a glob, as `--input` takes them)
    /// through `manifest`'s preprocessing; fewer than `needed` usable pictures is an error.
    pub fn read(input: &str, manifest: &Manifest, needed: usize) -> Result<Self, PicturesError> {
        let files = expand_input(input)?;
        let mut preprocessor = Preprocessor::new(manifest);
        let len = preprocessor.input_len();
        let mut pictures = Self {
            data: Vec::with_capacity(files.len() * len),
            names: Vec::with_capacity(files.len()),
            skipped: 0,
        };
        let mut stream = FileStream::new(files, false);
        loop {
            let frame = match stream.next() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                // A file stream fails one file at a time (unreadable) and goes on.
                Err(error) => {
                    log::warn!("picture skipped: {error}");
                    pictures.skipped += 1;
                    continue;
                }
            };
            let start = pictures.data.len();
            pictures.data.resize(start + len, 0.0);
            match preprocessor.run(&frame, &mut pictures.data[start..]) {
                Ok(()) => pictures.names.push(frame.origin),
                Err(error) => {
                    log::warn!("picture skipped: {error}");
                    pictures.data.truncate(start);
                    pictures.skipped += 1;
                }
            }
        }
        if pictures.names.len() < needed {
            return Err(PicturesError::TooFew {
                input: PathBuf::from(input),
                usable: pictures.names.len(),
                skipped: pictures.skipped,
                needed,
            });
        }
        Ok(pictures)
    }

    /// The number of pictures.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Picture `index`'s input values.
    pub fn picture(&self, index: usize) -> &[f32] {
        let len = self.data.len() / self.names.len().max(1);
        &self.data[index * len..(index + 1) * len]
    }
}
