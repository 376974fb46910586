//! `--save-attention DIR`: the attention maps of chosen classes drawn over the picture the
//! network saw, as PNG files.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use csra_image::overlay::{caption, overlay_attention};
use csra_image::ImageError;
use image::{ImageFormat, RgbImage};
use thiserror::Error;

use crate::backend::AttentionMaps;
use crate::postprocess::Label;

/// An error writing an attention picture.
#[derive(Debug, Error)]
pub enum AttentionError {
    /// The overlay could not be drawn.
    #[error("drawing the attention map of `{class}`: {source}")]
    Draw {
        /// The class.
        class: String,
        /// What went wrong.
        source: ImageError,
    },
    /// The picture could not be encoded or written.
    #[error("{}: {reason}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Which classes get a picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttentionClasses {
    /// The labels reported for the frame.
    Reported,
    /// These class indices, on every saved frame.
    Fixed(Vec<usize>),
}

/// Writes `<frame>_<origin>_<class>.png` files into a folder.
#[derive(Debug, Clone)]
pub struct AttentionSaver {
    dir: PathBuf,
    classes: AttentionClasses,
    every: u64,
}

impl AttentionSaver {
    /// A saver into `dir` (created if missing) for `classes`, on every `every`-th frame.
    pub fn new(dir: &Path, classes: AttentionClasses, every: u64) -> Result<Self, AttentionError> {
        std::fs::create_dir_all(dir).map_err(|e| AttentionError::Write {
            path: dir.to_owned(),
            reason: format!("cannot create the folder: {e}; pass a folder you can write to"),
        })?;
        // Found now rather than on every frame of a long run: a folder that exists but
        // cannot be written to (read-only, another user's).
        let probe = dir.join(format!(".csra-write-check-{}", std::process::id()));
        std::fs::write(&probe, b"")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| AttentionError::Write {
                path: dir.to_owned(),
                reason: format!(
                    "cannot write into the folder: {e}; pass a folder you can write to"
                ),
            })?;
        Ok(Self {
            dir: dir.to_owned(),
            classes,
            every: every.max(1),
        })
    }

    /// Whether frame number `frame` (counted from 0) gets pictures.
    pub fn wants(&self, frame: u64) -> bool {
        frame.is_multiple_of(self.every)
    }

    /// Draws and writes the pictures of one frame; `picture` is `(width, height, rgb8)`.
    /// Returns the files written.
    pub fn save(
        &self,
        frame: u64,
        origin: &str,
        picture: (u32, u32, &[u8]),
        maps: &AttentionMaps,
        labels: &[Label],
        names: &[String],
    ) -> Result<Vec<PathBuf>, AttentionError> {
        let (width, height, pixels) = picture;
        let Some(image) = RgbImage::from_raw(width, height, pixels.to_vec()) else {
            return Ok(Vec::new());
        };
        let classes: Vec<(usize, Option<f32>)> = match &self.classes {
            AttentionClasses::Reported => labels.iter().map(|l| (l.index, Some(l.prob))).collect(),
            AttentionClasses::Fixed(fixed) => fixed.iter().map(|&c| (c, None)).collect(),
        };
        let stem = file_stem(origin);
        let mut written = Vec::new();
        for (class, prob) in classes {
            let (Some(map), Some(name)) = (maps.class(class), names.get(class)) else {
                continue;
            };
            let draw = |source| AttentionError::Draw {
                class: name.clone(),
                source,
            };
            let mut overlay =
                overlay_attention(&image, map, (maps.height, maps.width)).map_err(draw)?;
            let text = prob.map_or_else(|| name.clone(), |p| format!("{name} {p:.2}"));
            caption(&mut overlay, &text).map_err(draw)?;
            let path = self
                .dir
                .join(format!("{frame:06}_{stem}_{}.png", sanitize(name)));
            write_png(&overlay, &path)?;
            written.push(path);
        }
        Ok(written)
    }
}

fn write_png(image: &RgbImage, path: &Path) -> Result<(), AttentionError> {
    let error = |reason: String| AttentionError::Write {
        path: path.to_owned(),
        reason,
    };
    let mut bytes = Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, ImageFormat::Png)
        .map_err(|e| error(e.to_string()))?;
    csra_core::fsutil::write_atomic(path, bytes.get_ref()).map_err(|e| error(e.to_string()))
}

/// The origin's file name without extension (or the whole origin), safe in a file name.
fn file_stem(origin: &str) -> String {
    let stem = Path::new(origin)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(origin);
    sanitize(stem)
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_file_names() {
        assert_eq!(file_stem("../photos/cat 1.jpg"), "cat_1");
        assert_eq!(sanitize("traffic light"), "traffic_light");
        assert_eq!(file_stem("/dev/video0#17"), "video0_17");
    }
}
