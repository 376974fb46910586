//! Which dataset to read and how: the `--data`/`--format` arguments, kept in checkpoints so a
//! run can be resumed or evaluated without repeating them.

use std::fmt;
use std::path::{Path, PathBuf};

use csra_core::class_map::{AmbiguousClass, ClassMap, MappingRecord};
use csra_core::dataset::{coco, csv_list, json_list, voc, wider};
use csra_core::{Dataset, DatasetError, LabelSet};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The dataset formats `csra-core` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DataFormat {
    /// COCO instances JSON; `images` is the image folder.
    Coco,
    /// A VOCdevkit year folder (`Annotations/`, `ImageSets/Main/`, `JPEGImages/`); `split`
    /// names the image set.
    Voc,
    /// The 20 official VOC `ImageSets/Main/<class>_<split>.txt` files; `annotations` is that
    /// folder.
    VocImagesets,
    /// WIDER-Attribute JSON (one sample per person box).
    Wider,
    /// The official CSRA JSON list (`img_path` + `target`); needs `labels`.
    Json,
    /// CSV: an image column and one 0/1 column per class; needs `labels`.
    Csv,
}

/// One dataset split on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSource {
    /// How to read it.
    pub format: DataFormat,
    /// The annotation file or folder.
    pub annotations: PathBuf,
    /// The image folder (for lists: the folder relative paths start from).
    pub images: PathBuf,
    /// The split name, for VOC formats (`trainval`, `test`, ...).
    pub split: Option<String>,
    /// The labels file, for JSON and CSV lists.
    pub labels: Option<PathBuf>,
}

/// A data source that cannot be resolved or read.
#[derive(Debug, Error)]
pub enum DataSourceError {
    /// `--data DIR` matched no known layout.
    #[error(
        "{dir}: not a known dataset layout (expected annotations/instances_<split>.json with \
         <split>/ images for COCO, or ImageSets/Main/ + JPEGImages/ for VOC); give --format, \
         --annotations and --images instead"
    )]
    UnknownLayout {
        /// The folder given.
        dir: PathBuf,
    },
    /// A `--data` value that is neither a folder, `DIR:SPLIT` nor a data spec.
    #[error("{}: no such folder or data spec; give a dataset folder, DIR:SPLIT or a .toml data spec", path.display())]
    Missing {
        /// The value given.
        path: PathBuf,
    },
    /// A COCO folder without the split asked for, or with no single default one.
    #[error(
        "{dir}: no split {split:?} (annotations/instances_<split>.json; found: {known}); name it \
         as {dir}:SPLIT or with --split"
    )]
    UnknownSplit {
        /// The folder.
        dir: PathBuf,
        /// The split asked for, or why none could be chosen.
        split: String,
        /// The splits the folder has.
        known: String,
    },
    /// A data spec file that cannot be read.
    #[error("{path}: {reason}")]
    Spec {
        /// The spec file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A training source none of whose classes is a training class.
    #[error(
        "{source_name}: none of its {count} classes is among the {target} training classes; \
         check its labels file, or the --classes list"
    )]
    NoSharedClass {
        /// The source.
        source_name: String,
        /// Its class count.
        count: usize,
        /// The training class count.
        target: usize,
    },
    /// Two classes of a source map to one training class.
    #[error(transparent)]
    Ambiguous(#[from] AmbiguousClass),
    /// A VOC format without a split.
    #[error("{format:?} needs a split (for example --split trainval)")]
    MissingSplit {
        /// The format.
        format: DataFormat,
    },
    /// A list format without a labels file.
    #[error("{path}: a {format:?} list needs --labels FILE (one class name per line)")]
    MissingLabels {
        /// The list.
        path: PathBuf,
        /// The format.
        format: DataFormat,
    },
    /// The labels file could not be read.
    #[error(transparent)]
    Labels(#[from] csra_core::labels::LabelError),
    /// The reader failed.
    #[error(transparent)]
    Dataset(#[from] DatasetError),
}

/// What a split is for: it picks the default split of a dataset folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Training: COCO `train*`, VOC `trainval`.
    Train,
    /// Evaluation: COCO `val*`, VOC `test`.
    Eval,
}

impl DataSource {
    /// Recognises a dataset folder and reads split `split` of it, or the [`Role`]'s default
    /// split: COCO (`annotations/instances_<split>.json` + `<split>/`), a VOCdevkit year
    /// folder, or a VOC folder with only the ImageSets labels (`ImageSets/Main/` +
    /// `JPEGImages/`).
    ///
    /// # Errors
    ///
    /// [`DataSourceError::UnknownLayout`] when no layout matches, and
    /// [`DataSourceError::UnknownSplit`] when the split is not there.
    pub fn detect(dir: &Path, split: Option<&str>, role: Role) -> Result<Self, DataSourceError> {
        let annotations = dir.join("annotations");
        if annotations.is_dir() {
            let split = match split {
                Some(split) => split.to_string(),
                None => default_coco_split(dir, role)?,
            };
            let coco_ann = annotations.join(format!("instances_{split}.json"));
            if !coco_ann.is_file() {
                return Err(DataSourceError::UnknownSplit {
                    dir: dir.to_path_buf(),
                    split,
                    known: coco_splits(dir).join(", "),
                });
            }
            return Ok(Self {
                format: DataFormat::Coco,
                annotations: coco_ann,
                images: dir.join(split),
                split: None,
                labels: None,
            });
        }
        let main = dir.join("ImageSets").join("Main");
        if main.is_dir() {
            let split = split.unwrap_or(match role {
                Role::Train => "trainval",
                Role::Eval => "test",
            });
            let (format, annotations) = if dir.join("Annotations").is_dir() {
                (DataFormat::Voc, dir.to_path_buf())
            } else {
                (DataFormat::VocImagesets, main)
            };
            return Ok(Self {
                format,
                annotations,
                images: dir.join("JPEGImages"),
                split: Some(split.to_string()),
                labels: None,
            });
        }
        Err(DataSourceError::UnknownLayout {
            dir: dir.to_path_buf(),
        })
    }

    /// Reads a `--data` folder value: `DIR`, with `split` or the role's default split, or
    /// `DIR:SPLIT`.
    ///
    /// # Errors
    ///
    /// [`DataSourceError`] naming the folder.
    pub fn parse_arg(
        value: &Path,
        split: Option<&str>,
        role: Role,
    ) -> Result<Self, DataSourceError> {
        if value.exists() {
            return Self::detect(value, split, role);
        }
        let text = value.to_string_lossy();
        match text.rsplit_once(':') {
            Some((dir, dir_split)) if Path::new(dir).is_dir() && !dir_split.is_empty() => {
                Self::detect(Path::new(dir), Some(dir_split), role)
            }
            _ => Err(DataSourceError::Missing {
                path: value.to_path_buf(),
            }),
        }
    }

    /// A short human name for manifests and reports: `coco-mini val2017` for a COCO folder
    /// laid out as [`DataSource::detect`] expects, `VOC2007 test` for a VOC folder, else the
    /// format and annotation path.
    pub fn short_name(&self) -> String {
        let file_name = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        match self.format {
            DataFormat::Coco => {
                let split = self
                    .annotations
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .and_then(|s| s.strip_prefix("instances_"));
                let root = self.annotations.parent().and_then(Path::parent);
                match (root, split) {
                    (Some(root), Some(split)) => format!("{} {split}", file_name(root)),
                    _ => self.to_string(),
                }
            }
            DataFormat::Voc => match &self.split {
                Some(split) => format!("{} {split}", file_name(&self.annotations)),
                None => self.to_string(),
            },
            // `<root>/ImageSets/Main`, as detect() finds it.
            DataFormat::VocImagesets => {
                let root = self.annotations.parent().and_then(Path::parent);
                match (root, &self.split) {
                    (Some(root), Some(split)) if self.annotations.ends_with("ImageSets/Main") => {
                        format!("{} {split}", file_name(root))
                    }
                    _ => self.to_string(),
                }
            }
            _ => self.to_string(),
        }
    }

    /// Reads the split with the matching `csra-core` reader.
    ///
    /// # Errors
    ///
    /// [`DataSourceError`] naming the file and what is wrong.
    pub fn read(&self) -> Result<Dataset, DataSourceError> {
        let split = || {
            self.split.as_deref().ok_or(DataSourceError::MissingSplit {
                format: self.format,
            })
        };
        let labels = || -> Result<LabelSet, DataSourceError> {
            let path = self
                .labels
                .as_ref()
                .ok_or_else(|| DataSourceError::MissingLabels {
                    path: self.annotations.clone(),
                    format: self.format,
                })?;
            Ok(LabelSet::read(path)?)
        };
        let dataset = match self.format {
            DataFormat::Coco => coco::read(&self.annotations, &self.images)?,
            DataFormat::Voc => voc::read_annotations(&self.annotations, split()?)?,
            DataFormat::VocImagesets => {
                voc::read_imagesets(&self.annotations, split()?, &self.images)?
            }
            DataFormat::Wider => wider::read(&self.annotations, &self.images)?,
            DataFormat::Json => json_list::read(
                &self.annotations,
                &labels()?,
                &self.images,
                json_list::TargetEncoding::Auto,
            )?,
            DataFormat::Csv => csv_list::read(&self.annotations, &labels()?, &self.images)?,
        };
        Ok(dataset)
    }
}

impl DataSource {
    /// Reads the split and maps it onto `classes` (see [`ClassMap::by_name`]): classes it does
    /// not label are ignored for its images, and its classes outside `classes` are dropped.
    ///
    /// # Errors
    ///
    /// [`DataSourceError`] when it cannot be read, none of its classes is in `classes`, or two
    /// of them map to one class.
    pub fn read_onto(
        &self,
        classes: &LabelSet,
    ) -> Result<(Dataset, SourceMapping), DataSourceError> {
        let dataset = self.read()?;
        let name = self.short_name();
        let map = ClassMap::by_name(&dataset.classes, classes, &name)?;
        if map.pairs().is_empty() {
            return Err(DataSourceError::NoSharedClass {
                source_name: name,
                count: dataset.classes.len(),
                target: classes.len(),
            });
        }
        let mapping = SourceMapping {
            source: name,
            samples: dataset.samples.len(),
            mapping: map.describe(&dataset.classes, classes),
        };
        let mapped = if map.is_identity() {
            dataset
        } else {
            dataset.mapped_onto(&map, classes)
        };
        Ok((mapped, mapping))
    }
}

/// How one training source's classes were mapped onto the training classes; checkpoints keep
/// one per source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMapping {
    /// The source, as [`DataSource::short_name`] names it.
    pub source: String,
    /// Its samples.
    pub samples: usize,
    /// Renamed, dropped and unlabelled classes.
    #[serde(flatten)]
    pub mapping: MappingRecord,
}

/// The sources' short names joined by ` + `, for logs, plots and manifests.
pub fn describe_sources(sources: &[DataSource]) -> String {
    if sources.is_empty() {
        // An imported checkpoint: trained elsewhere, on data it does not name.
        return "no training data recorded".into();
    }
    sources
        .iter()
        .map(DataSource::short_name)
        .collect::<Vec<_>>()
        .join(" + ")
}

/// Several training sources read onto one class list, in order.
#[derive(Debug, Clone)]
pub struct MixedDataset {
    /// The samples of every source, each in the training label space.
    pub dataset: Dataset,
    /// One record per source.
    pub mappings: Vec<SourceMapping>,
}

/// Reads `sources` onto `classes`, or onto the first source's classes when `None`.
///
/// # Errors
///
/// The first source's [`DataSourceError`]; [`DataSourceError::Missing`] for an empty list.
pub fn read_mixed(
    sources: &[DataSource],
    classes: Option<&LabelSet>,
) -> Result<MixedDataset, DataSourceError> {
    let mut mappings = Vec::with_capacity(sources.len());
    let mut mixed: Option<Dataset> = None;
    for source in sources {
        let (dataset, mapping) = match (classes, &mixed) {
            (Some(classes), _) => source.read_onto(classes)?,
            (None, Some(first)) => source.read_onto(&first.classes.clone())?,
            (None, None) => {
                let dataset = source.read()?;
                let classes = dataset.classes.clone();
                source.read_onto(&classes).map(|(_, m)| (dataset, m))?
            }
        };
        log_mapping(&mapping);
        mappings.push(mapping);
        match &mut mixed {
            Some(all) => {
                all.samples.extend(dataset.samples);
                all.skipped.extend(dataset.skipped);
            }
            None => mixed = Some(dataset),
        }
    }
    let dataset = mixed.ok_or_else(|| DataSourceError::Missing {
        path: PathBuf::from("(no training data)"),
    })?;
    Ok(MixedDataset { dataset, mappings })
}

fn log_mapping(m: &SourceMapping) {
    let r = &m.mapping;
    log::info!(
        "{}: {} images; {} classes renamed, {} dropped, {} unlabelled (ignored in the loss)",
        m.source,
        m.samples,
        r.renamed.len(),
        r.dropped.len(),
        r.unlabelled.len()
    );
    if !r.dropped.is_empty() {
        log::warn!(
            "{}: classes not among the training classes, not used: {}",
            m.source,
            r.dropped.join(", ")
        );
    }
}

/// A data spec file: several sources, each in its own format, and optionally the class list
/// they are mapped onto. Relative paths start from the spec's folder.
///
/// ```toml
/// classes = "coco.txt"            # optional: default, the first source's classes
/// [[source]]
/// format = "coco"
/// annotations = "coco-mini/annotations/instances_train2017.json"
/// images = "coco-mini/train2017"
/// [[source]]
/// format = "voc-imagesets"
/// annotations = "voc2007-mini/ImageSets/Main"
/// images = "voc2007-mini/JPEGImages"
/// split = "trainval"
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// The labels file of the training classes.
    pub classes: Option<PathBuf>,
    /// The sources, in order.
    #[serde(rename = "source")]
    pub sources: Vec<DataSource>,
}

impl DataSpec {
    /// Reads a spec file and resolves its paths against its folder.
    ///
    /// # Errors
    ///
    /// [`DataSourceError::Spec`] naming the file.
    pub fn read(path: &Path) -> Result<Self, DataSourceError> {
        let bad = |reason: String| DataSourceError::Spec {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let mut spec: Self = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if spec.sources.is_empty() {
            return Err(bad("lists no [[source]]".into()));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut PathBuf| *p = base.join(&*p);
        if let Some(classes) = &mut spec.classes {
            resolve(classes);
        }
        for source in &mut spec.sources {
            resolve(&mut source.annotations);
            resolve(&mut source.images);
            if let Some(labels) = &mut source.labels {
                resolve(labels);
            }
        }
        Ok(spec)
    }
}

/// The COCO splits a folder has: the `<split>` of each `annotations/instances_<split>.json`.
fn coco_splits(dir: &Path) -> Vec<String> {
    let mut splits: Vec<String> = std::fs::read_dir(dir.join("annotations"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some(
                name.strip_prefix("instances_")?
                    .strip_suffix(".json")?
                    .to_string(),
            )
        })
        .collect();
    splits.sort();
    splits
}

/// A COCO folder's split for `role`: `train2017`/`val2017` when present, else its one split
/// starting with `train` (`val` or `test` for evaluation).
fn default_coco_split(dir: &Path, role: Role) -> Result<String, DataSourceError> {
    let (standard, prefixes): (&str, &[&str]) = match role {
        Role::Train => ("train2017", &["train"]),
        Role::Eval => ("val2017", &["val", "test"]),
    };
    let splits = coco_splits(dir);
    if splits.iter().any(|s| s == standard) {
        return Ok(standard.to_string());
    }
    let candidates: Vec<&String> = splits
        .iter()
        .filter(|s| prefixes.iter().any(|p| s.starts_with(p)))
        .collect();
    match candidates.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(DataSourceError::UnknownSplit {
            dir: dir.to_path_buf(),
            split: format!("{}*", prefixes[0]),
            known: splits.join(", "),
        }),
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use clap::ValueEnum;
        let format = self
            .format
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        write!(f, "{format} {}", self.annotations.display())?;
        if let Some(split) = &self.split {
            write!(f, " ({split})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_coco_and_voc_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let coco = dir.path().join("coco");
        std::fs::create_dir_all(coco.join("annotations")).unwrap();
        std::fs::write(coco.join("annotations/instances_val2017.json"), "{}").unwrap();
        let s = DataSource::detect(&coco, None, Role::Eval).unwrap();
        assert_eq!(s.format, DataFormat::Coco);
        assert_eq!(s.images, coco.join("val2017"));

        let voc = dir.path().join("VOC2007");
        std::fs::create_dir_all(voc.join("Annotations")).unwrap();
        std::fs::create_dir_all(voc.join("ImageSets/Main")).unwrap();
        let s = DataSource::detect(&voc, None, Role::Eval).unwrap();
        assert_eq!(
            (s.format, s.split.as_deref()),
            (DataFormat::Voc, Some("test"))
        );
        assert_eq!(s.short_name(), "VOC2007 test");

        let err = DataSource::detect(dir.path(), Some("test"), Role::Eval)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--format"), "{err}");
    }

    #[test]
    fn a_coco_folder_with_one_train_split_defaults_to_it_and_dir_colon_split_picks_one() {
        let dir = tempfile::tempdir().unwrap();
        let coco = dir.path().join("extra");
        std::fs::create_dir_all(coco.join("annotations")).unwrap();
        for split in ["train", "val"] {
            std::fs::write(
                coco.join(format!("annotations/instances_{split}.json")),
                "{}",
            )
            .unwrap();
        }
        let s = DataSource::detect(&coco, None, Role::Train).unwrap();
        assert_eq!(s.images, coco.join("train"));
        assert_eq!(s.short_name(), "extra train");
        let arg = PathBuf::from(format!("{}:val", coco.display()));
        let s = DataSource::parse_arg(&arg, None, Role::Train).unwrap();
        assert_eq!(s.images, coco.join("val"));

        let err = DataSource::detect(&coco, Some("test2017"), Role::Eval)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("found: train, val") && err.contains(":SPLIT"),
            "{err}"
        );
        let err = DataSource::parse_arg(&dir.path().join("nope"), None, Role::Train)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope") && err.contains("DIR:SPLIT"), "{err}");
    }

    #[test]
    fn a_voc_folder_without_xml_is_read_from_its_imagesets() {
        let dir = tempfile::tempdir().unwrap();
        let voc = dir.path().join("voc-mini");
        std::fs::create_dir_all(voc.join("ImageSets/Main")).unwrap();
        std::fs::create_dir_all(voc.join("JPEGImages")).unwrap();
        let s = DataSource::detect(&voc, None, Role::Train).unwrap();
        assert_eq!(s.format, DataFormat::VocImagesets);
        assert_eq!(s.annotations, voc.join("ImageSets/Main"));
        assert_eq!(s.short_name(), "voc-mini trainval");
    }

    #[test]
    fn a_data_spec_resolves_paths_against_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mix.toml");
        std::fs::write(
            &path,
            "classes = \"coco.txt\"\n[[source]]\nformat = \"coco\"\nannotations = \"a.json\"\n\
             images = \"img\"\n[[source]]\nformat = \"voc-imagesets\"\nannotations = \"Main\"\n\
             images = \"jpg\"\nsplit = \"trainval\"\n",
        )
        .unwrap();
        let spec = DataSpec::read(&path).unwrap();
        assert_eq!(spec.classes, Some(dir.path().join("coco.txt")));
        assert_eq!(spec.sources.len(), 2);
        assert_eq!(spec.sources[1].format, DataFormat::VocImagesets);
        assert_eq!(spec.sources[1].images, dir.path().join("jpg"));

        std::fs::write(&path, "[[source]]\nformat = \"coco\"\n").unwrap();
        let err = DataSpec::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("mix.toml") && err.contains("annotations"),
            "{err}"
        );
    }

    #[test]
    fn list_formats_ask_for_labels() {
        let s = DataSource {
            format: DataFormat::Json,
            annotations: "train.json".into(),
            images: ".".into(),
            split: None,
            labels: None,
        };
        let err = s.read().unwrap_err().to_string();
        assert!(err.contains("--labels"), "{err}");
    }
}
