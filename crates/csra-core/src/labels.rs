//! Class names: the standard label sets and the plain labels file.
//!
//! A labels file is UTF-8 text with one class name per line, in class-index order. Blank lines
//! and lines starting with `#` are skipped, surrounding whitespace is trimmed, and a name may
//! contain spaces (`traffic light`).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// The 20 PASCAL VOC classes, in the order of the official CSRA code and the VOC devkit.
pub const VOC_CLASSES: [&str; 20] = [
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

/// The 80 MS-COCO categories with their original category ids (1..=90, with gaps), sorted by id.
///
/// Class index `i` of a COCO model is `COCO_CATEGORIES[i]`, as in the official CSRA code, which
/// numbers the categories in ascending id order.
pub const COCO_CATEGORIES: [(u32, &str); 80] = [
    (1, "person"),
    (2, "bicycle"),
    (3, "car"),
    (4, "motorcycle"),
    (5, "airplane"),
    (6, "bus"),
    (7, "train"),
    (8, "truck"),
    (9, "boat"),
    (10, "traffic light"),
    (11, "fire hydrant"),
    (13, "stop sign"),
    (14, "parking meter"),
    (15, "bench"),
    (16, "bird"),
    (17, "cat"),
    (18, "dog"),
    (19, "horse"),
    (20, "sheep"),
    (21, "cow"),
    (22, "elephant"),
    (23, "bear"),
    (24, "zebra"),
    (25, "giraffe"),
    (27, "backpack"),
    (28, "umbrella"),
    (31, "handbag"),
    (32, "tie"),
    (33, "suitcase"),
    (34, "frisbee"),
    (35, "skis"),
    (36, "snowboard"),
    (37, "sports ball"),
    (38, "kite"),
    (39, "baseball bat"),
    (40, "baseball glove"),
    (41, "skateboard"),
    (42, "surfboard"),
    (43, "tennis racket"),
    (44, "bottle"),
    (46, "wine glass"),
    (47, "cup"),
    (48, "fork"),
    (49, "knife"),
    (50, "spoon"),
    (51, "bowl"),
    (52, "banana"),
    (53, "apple"),
    (54, "sandwich"),
    (55, "orange"),
    (56, "broccoli"),
    (57, "carrot"),
    (58, "hot dog"),
    (59, "pizza"),
    (60, "donut"),
    (61, "cake"),
    (62, "chair"),
    (63, "couch"),
    (64, "potted plant"),
    (65, "bed"),
    (67, "dining table"),
    (70, "toilet"),
    (72, "tv"),
    (73, "laptop"),
    (74, "mouse"),
    (75, "remote"),
    (76, "keyboard"),
    (77, "cell phone"),
    (78, "microwave"),
    (79, "oven"),
    (80, "toaster"),
    (81, "sink"),
    (82, "refrigerator"),
    (84, "book"),
    (85, "clock"),
    (86, "vase"),
    (87, "scissors"),
    (88, "teddy bear"),
    (89, "hair drier"),
    (90, "toothbrush"),
];

/// The 14 WIDER-Attribute attributes, in the order of the dataset's `attribute_id_map`.
pub const WIDER_ATTRIBUTES: [&str; 14] = [
    "Male",
    "longHair",
    "sunglass",
    "Hat",
    "Tshirt",
    "longSleeve",
    "formal",
    "shorts",
    "jeans",
    "longPants",
    "skirt",
    "faceMask",
    "logo",
    "stripe",
];

/// An error reading, writing or building a [`LabelSet`].
#[derive(Debug, Error)]
pub enum LabelError {
    /// The labels file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The labels file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The labels file names no class at all.
    #[error("{}: no class names found; a labels file lists one class per line", path.display())]
    Empty {
        /// The labels file.
        path: PathBuf,
    },
    /// The same class name appears twice.
    #[error("{origin}: class {name:?} appears twice (as class {first} and class {second}); class names must be unique")]
    Duplicate {
        /// Where the names came from (a file path, or a description).
        origin: String,
        /// The repeated name.
        name: String,
        /// Index of its first occurrence.
        first: usize,
        /// Index of its second occurrence.
        second: usize,
    },
    /// A class name is empty or contains a line break.
    #[error("{origin}: class {index} has an invalid name {name:?}; names must be non-empty single lines")]
    InvalidName {
        /// Where the names came from.
        origin: String,
        /// The offending class index.
        index: usize,
        /// The offending name.
        name: String,
    },
}

/// An ordered list of unique class names: class index `i` is `names()[i]`.
#[derive(Clone, PartialEq, Eq)]
pub struct LabelSet {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl LabelSet {
    /// Builds a label set from names in class-index order; `origin` names their source in errors.
    pub fn new<I, S>(names: I, origin: &str) -> Result<Self, LabelError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        let mut index = HashMap::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            if name.trim().is_empty() || name.contains(['\n', '\r']) || name.trim() != name {
                return Err(LabelError::InvalidName {
                    origin: origin.to_owned(),
                    index: i,
                    name: name.clone(),
                });
            }
            if let Some(&first) = index.get(name) {
                return Err(LabelError::Duplicate {
                    origin: origin.to_owned(),
                    name: name.clone(),
                    first,
                    second: i,
                });
            }
            index.insert(name.clone(), i);
        }
        Ok(Self { names, index })
    }

    /// The 20 PASCAL VOC classes.
    pub fn voc() -> Self {
        Self::from_static(&VOC_CLASSES)
    }

    /// The 80 MS-COCO categories, in ascending category-id order.
    pub fn coco() -> Self {
        Self::from_static(&COCO_CATEGORIES.map(|(_, name)| name))
    }

    /// The 14 WIDER-Attribute attributes.
    pub fn wider() -> Self {
        Self::from_static(&WIDER_ATTRIBUTES)
    }

    fn from_static(names: &[&'static str]) -> Self {
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| ((*n).to_owned(), i))
            .collect();
        Self {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            index,
        }
    }

    /// Reads a labels file.
    pub fn read(path: &Path) -> Result<Self, LabelError> {
        let text = std::fs::read_to_string(path).map_err(|source| LabelError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses the text of a labels file; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, LabelError> {
        let names: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect();
        if names.is_empty() {
            return Err(LabelError::Empty {
                path: path.to_owned(),
            });
        }
        Self::new(names, &path.display().to_string())
    }

    /// Writes the labels file, one name per line, atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> Result<(), LabelError> {
        crate::fsutil::write_atomic(path, self.to_text().as_bytes()).map_err(|source| {
            LabelError::Io {
                path: path.to_owned(),
                source,
            }
        })
    }

    /// The labels file text: one name per line.
    pub fn to_text(&self) -> String {
        let mut text = self.names.join("\n");
        text.push('\n');
        text
    }

    /// The class names in class-index order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The number of classes.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the set has no classes.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The class index of `name`, if it is in the set.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The name of class `index`, if it exists.
    pub fn name(&self, index: usize) -> Option<&str> {
        self.names.get(index).map(String::as_str)
    }
}

impl fmt::Debug for LabelSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LabelSet").field(&self.names).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_sets_have_the_documented_sizes_and_ids() {
        assert_eq!(LabelSet::voc().len(), 20);
        assert_eq!(LabelSet::wider().len(), 14);
        let coco = LabelSet::coco();
        assert_eq!(coco.len(), 80);
        assert_eq!(coco.index_of("toothbrush"), Some(79));
        assert_eq!(COCO_CATEGORIES[coco.index_of("stop sign").unwrap()].0, 13);
        assert!(COCO_CATEGORIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(COCO_CATEGORIES.last().unwrap().0, 90);
    }

    #[test]
    fn file_round_trips_and_skips_comments_and_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.txt");
        LabelSet::coco().write(&path).unwrap();
        assert_eq!(LabelSet::read(&path).unwrap(), LabelSet::coco());

        let parsed = LabelSet::parse("# my classes\r\ncat\r\n\r\n  hot dog \n", &path).unwrap();
        assert_eq!(parsed.names(), ["cat", "hot dog"]);
    }

    #[test]
    fn duplicate_names_are_reported_with_both_positions() {
        let err = LabelSet::parse("cat\ndog\ncat\n", Path::new("my.txt")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("my.txt") && msg.contains("\"cat\""), "{msg}");
        assert!(msg.contains("class 0 and class 2"), "{msg}");
    }

    #[test]
    fn empty_and_missing_files_are_errors_naming_the_file() {
        let err = LabelSet::parse("# nothing\n\n", Path::new("empty.txt")).unwrap_err();
        assert!(
            err.to_string().contains("empty.txt: no class names"),
            "{err}"
        );
        let err = LabelSet::read(Path::new("/nonexistent/labels.txt")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/labels.txt"), "{err}");
    }

    #[test]
    fn invalid_names_are_rejected() {
        let err = LabelSet::new(["ok", ""], "test").unwrap_err();
        assert!(err.to_string().contains("class 1"), "{err}");
    }
}
