//! Mapping one label space onto another by class name, so that datasets with different class
//! lists train one model and a model is scored on data labelled with other names.
//!
//! Names match when they are equal after [`canonical_name`]: case, spaces, `_` and `-` are
//! ignored (`diningtable` = `dining table`), and the VOC names that COCO spells differently are
//! renamed (aeroplane→airplane, motorbike→motorcycle, sofa→couch, tvmonitor→tv).

use std::collections::BTreeMap;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::dataset::{Dataset, Sample};
use crate::labels::LabelSet;

/// VOC class names COCO spells differently, after [`canonical_name`]'s folding: `(VOC, COCO)`.
/// `diningtable` and `pottedplant` need no entry: folding spaces already equates them.
const RENAMES: [(&str, &str); 4] = [
    ("aeroplane", "airplane"),
    ("motorbike", "motorcycle"),
    ("sofa", "couch"),
    ("tvmonitor", "tv"),
];

/// The key two class names are compared by: lower case, without spaces, `_` or `-`, with the
/// VOC→COCO renames applied.
pub fn canonical_name(name: &str) -> String {
    let folded: String = name
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect();
    RENAMES
        .iter()
        .find(|(voc, _)| *voc == folded)
        .map_or(folded, |(_, coco)| (*coco).to_string())
}

/// Two classes of one label space that map to the same class of the other.
#[derive(Debug, Error)]
#[error(
    "classes {first:?} and {second:?} of {origin} both map to {target:?}; rename one of them in a \
     labels file (--labels or --classes)"
)]
pub struct AmbiguousClass {
    /// The label space that has the two classes.
    pub origin: String,
    /// The first class.
    pub first: String,
    /// The second class.
    pub second: String,
    /// The class both map to.
    pub target: String,
}

/// Where each class of a source label space lands in a target label space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassMap {
    to_target: Vec<Option<usize>>,
    target_len: usize,
}

impl ClassMap {
    /// Maps `source`'s classes onto `target`'s by [`canonical_name`]; `origin` names `source`
    /// in errors.
    ///
    /// # Errors
    ///
    /// [`AmbiguousClass`] when two source classes map to one target class.
    pub fn by_name(
        source: &LabelSet,
        target: &LabelSet,
        origin: &str,
    ) -> Result<Self, AmbiguousClass> {
        let target_index: HashMap<String, usize> = target
            .names()
            .iter()
            .enumerate()
            .map(|(i, n)| (canonical_name(n), i))
            .collect();
        let mut claimed: Vec<Option<usize>> = vec![None; target.len()];
        let mut to_target = Vec::with_capacity(source.len());
        for (s, name) in source.names().iter().enumerate() {
            let t = target_index.get(&canonical_name(name)).copied();
            if let Some(t) = t {
                if let Some(first) = claimed[t] {
                    return Err(AmbiguousClass {
                        origin: origin.to_string(),
                        first: source.names()[first].clone(),
                        second: name.clone(),
                        target: target.names()[t].clone(),
                    });
                }
                claimed[t] = Some(s);
            }
            to_target.push(t);
        }
        Ok(Self {
            to_target,
            target_len: target.len(),
        })
    }

    /// The target class of source class `source`, if it has one.
    pub fn target_of(&self, source: usize) -> Option<usize> {
        self.to_target.get(source).copied().flatten()
    }

    /// The source class that lands on each target class, `None` where the source has none.
    pub fn sources_of_targets(&self) -> Vec<Option<usize>> {
        let mut sources = vec![None; self.target_len];
        for (s, t) in self.to_target.iter().enumerate() {
            if let Some(t) = t {
                sources[*t] = Some(s);
            }
        }
        sources
    }

    /// `(source, target)` class pairs for every mapped source class, in source order.
    pub fn pairs(&self) -> Vec<(usize, usize)> {
        self.to_target
            .iter()
            .enumerate()
            .filter_map(|(s, t)| t.map(|t| (s, t)))
            .collect()
    }

    /// Whether every source class maps to the target class of the same index and the two
    /// spaces are the same size: the map changes nothing.
    pub fn is_identity(&self) -> bool {
        self.to_target.len() == self.target_len
            && self
                .to_target
                .iter()
                .enumerate()
                .all(|(s, t)| *t == Some(s))
    }

    /// What the map does, by name, for checkpoints and logs.
    pub fn describe(&self, source: &LabelSet, target: &LabelSet) -> MappingRecord {
        let renamed = self
            .pairs()
            .into_iter()
            .filter(|&(s, t)| source.names()[s] != target.names()[t])
            .map(|(s, t)| (source.names()[s].clone(), target.names()[t].clone()))
            .collect();
        let dropped = self
            .to_target
            .iter()
            .zip(source.names())
            .filter(|(t, _)| t.is_none())
            .map(|(_, n)| n.clone())
            .collect();
        let unlabelled = self
            .sources_of_targets()
            .iter()
            .zip(target.names())
            .filter(|(s, _)| s.is_none())
            .map(|(_, n)| n.clone())
            .collect();
        MappingRecord {
            renamed,
            dropped,
            unlabelled,
        }
    }
}

/// A [`ClassMap`] by name: what a checkpoint records for each training source.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MappingRecord {
    /// Source classes that map to a target class of another name: source → target.
    pub renamed: BTreeMap<String, String>,
    /// Source classes with no target class (their labels are not used).
    pub dropped: Vec<String>,
    /// Target classes the source does not label (ignored for its images).
    pub unlabelled: Vec<String>,
}

impl Dataset {
    /// This dataset in the `target` label space: each sample keeps its label for every class
    /// the map reaches, and a target class the dataset does not label is *ignored* (unknown),
    /// never negative. Classes without a target class are dropped.
    pub fn mapped_onto(&self, map: &ClassMap, target: &LabelSet) -> Dataset {
        let sources = map.sources_of_targets();
        let samples = self
            .samples
            .iter()
            .map(|s| Sample {
                image: s.image.clone(),
                target: sources
                    .iter()
                    .map(|c| c.is_some_and(|c| s.target[c]))
                    .collect(),
                ignore: sources
                    .iter()
                    .map(|c| c.is_none_or(|c| s.ignore[c]))
                    .collect(),
                bbox: s.bbox,
            })
            .collect();
        Dataset {
            classes: target.clone(),
            samples,
            skipped: self.skipped.clone(),
        }
    }

    /// This dataset with only `classes` (indices, in the order given).
    ///
    /// # Panics
    ///
    /// When an index is out of range.
    pub fn select_classes(&self, classes: &[usize]) -> Dataset {
        let names = classes.iter().map(|&c| self.classes.names()[c].clone());
        let samples = self
            .samples
            .iter()
            .map(|s| Sample {
                image: s.image.clone(),
                target: classes.iter().map(|&c| s.target[c]).collect(),
                ignore: classes.iter().map(|&c| s.ignore[c]).collect(),
                bbox: s.bbox,
            })
            .collect();
        Dataset {
            // A subset of unique names is unique.
            classes: LabelSet::new(names, "selected classes").expect("a subset of a label set"),
            samples,
            skipped: self.skipped.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> LabelSet {
        LabelSet::new(names.iter().copied(), "test").unwrap()
    }

    #[test]
    fn every_voc_class_lands_on_a_coco_class_with_the_usual_renames() {
        let map = ClassMap::by_name(&LabelSet::voc(), &LabelSet::coco(), "VOC").unwrap();
        let coco = LabelSet::coco();
        let landed: Vec<&str> = (0..20)
            .map(|v| coco.names()[map.target_of(v).unwrap()].as_str())
            .collect();
        assert_eq!(
            landed,
            [
                "airplane",
                "bicycle",
                "bird",
                "boat",
                "bottle",
                "bus",
                "car",
                "cat",
                "chair",
                "cow",
                "dining table",
                "dog",
                "horse",
                "motorcycle",
                "person",
                "potted plant",
                "sheep",
                "couch",
                "train",
                "tv",
            ]
        );
        let record = map.describe(&LabelSet::voc(), &coco);
        assert_eq!(record.renamed.len(), 6);
        assert_eq!(record.renamed["tvmonitor"], "tv");
        assert!(record.dropped.is_empty());
        assert_eq!(record.unlabelled.len(), 60);
        assert!(record.unlabelled.contains(&"giraffe".to_string()));
    }

    #[test]
    fn unlabelled_target_classes_are_ignored_not_negative() {
        let source = set(&["cat", "aeroplane", "unicorn"]);
        let target = set(&["airplane", "dog", "cat"]);
        let map = ClassMap::by_name(&source, &target, "test").unwrap();
        let dataset = Dataset {
            classes: source,
            samples: vec![Sample {
                image: "a.jpg".into(),
                target: vec![true, false, true],
                ignore: vec![false, false, false],
                bbox: None,
            }],
            skipped: vec![],
        };
        let mapped = dataset.mapped_onto(&map, &target);
        let s = &mapped.samples[0];
        // airplane: a known negative; dog: unknown; cat: positive. The unicorn is dropped.
        assert_eq!(s.target, [false, false, true]);
        assert_eq!(s.ignore, [false, true, false]);
        assert!(!map.is_identity());
        assert!(ClassMap::by_name(&target, &target, "t")
            .unwrap()
            .is_identity());
    }

    #[test]
    fn two_classes_on_one_target_are_an_error_naming_both() {
        let err = ClassMap::by_name(&set(&["tv", "tvmonitor"]), &LabelSet::coco(), "my.txt")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"tv\"") && err.contains("\"tvmonitor\"") && err.contains("my.txt"));
    }

    #[test]
    fn names_fold_case_spaces_and_voc_spellings() {
        assert_eq!(
            canonical_name("Dining_Table"),
            canonical_name("diningtable")
        );
        assert_eq!(canonical_name("TV-monitor"), "tv");
        assert_eq!(canonical_name("traffic light"), "trafficlight");
    }
}
