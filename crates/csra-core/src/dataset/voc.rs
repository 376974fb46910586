//! PASCAL VOC: the per-image XML annotations and the per-class ImageSets label files.
//!
//! Both readers give the 20 [`LabelSet::voc`] classes and mark a class *ignored* when the
//! image holds it only as "difficult" objects, as the official CSRA `prepare_voc.py` does
//! (such labels are left out of test scoring).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{Dataset, DatasetError, Label, Sample};
use crate::labels::{LabelSet, VOC_CLASSES};

/// Reads split `split` of a VOC year folder (`VOC2007/`) from its XML annotations.
///
/// The image ids come from `voc_root/ImageSets/Main/<split>.txt` (one per line, LF or CRLF),
/// and samples keep that order. Each `voc_root/Annotations/<id>.xml` is read: a class is
/// positive when it has at least one `<object>` whose `<difficult>` is 0 (or absent), ignored
/// when all its objects are difficult, and negative otherwise. Image paths are
/// `voc_root/JPEGImages/<id>.jpg`.
pub fn read_annotations(voc_root: &Path, split: &str) -> Result<Dataset, DatasetError> {
    let split_path = voc_root
        .join("ImageSets")
        .join("Main")
        .join(format!("{split}.txt"));
    let text = read_text(&split_path)?;
    let lines = parse_id_lines(&split_path, &text, false)?;
    let classes = LabelSet::voc();
    let samples = lines
        .iter()
        .map(|line| {
            let xml = voc_root
                .join("Annotations")
                .join(format!("{}.xml", line.id));
            let (target, ignore) = read_xml_labels(&xml, &classes)?;
            Ok(Sample {
                image: voc_root.join("JPEGImages").join(format!("{}.jpg", line.id)),
                target,
                ignore,
                bbox: None,
            })
        })
        .collect::<Result<_, DatasetError>>()?;
    Ok(Dataset {
        classes,
        samples,
        skipped: Vec::new(),
    })
}

/// Reads split `split` from the 20 official `main_dir/<class>_<split>.txt` label files.
///
/// Each line is an image id and a label: `1` present, `-1` absent, `0` present only as
/// "difficult" objects (ignored). Every class file must list the same image ids; samples keep
/// the order of the first one (`aeroplane_<split>.txt`). Image paths are
/// `images_dir/<id>.jpg`.
pub fn read_imagesets(
    main_dir: &Path,
    split: &str,
    images_dir: &Path,
) -> Result<Dataset, DatasetError> {
    let classes = LabelSet::voc();
    let class_file = |name: &str| main_dir.join(format!("{name}_{split}.txt"));
    let mut table: Option<LabelTable> = None;
    for (class, name) in VOC_CLASSES.iter().enumerate() {
        let path = class_file(name);
        let text = read_text(&path)?;
        let lines = parse_id_lines(&path, &text, true)?;
        // The first class file fixes the image ids and their order.
        let rows = table.get_or_insert_with(|| LabelTable::new(&path, &lines, classes.len()));
        rows.fill(class, &path, &lines)?;
    }
    let samples = table
        .map(|t| t.into_samples(images_dir))
        .unwrap_or_default();
    Ok(Dataset {
        classes,
        samples,
        skipped: Vec::new(),
    })
}

/// Targets and ignore masks of one split, filled one class file at a time.
struct LabelTable {
    /// The file that fixed the image ids and their order.
    first_file: PathBuf,
    ids: Vec<String>,
    row_of: HashMap<String, usize>,
    target: Vec<Vec<bool>>,
    ignore: Vec<Vec<bool>>,
}

impl LabelTable {
    fn new(first_file: &Path, lines: &[IdLine<'_>], num_classes: usize) -> Self {
        let ids: Vec<String> = lines.iter().map(|line| line.id.to_owned()).collect();
        let row_of = ids
            .iter()
            .enumerate()
            .map(|(row, id)| (id.clone(), row))
            .collect();
        Self {
            first_file: first_file.to_owned(),
            row_of,
            target: vec![vec![false; num_classes]; ids.len()],
            ignore: vec![vec![false; num_classes]; ids.len()],
            ids,
        }
    }

    /// Sets column `class` from one class file, which must list exactly the table's ids.
    fn fill(
        &mut self,
        class: usize,
        path: &Path,
        lines: &[IdLine<'_>],
    ) -> Result<(), DatasetError> {
        let first_name = file_name(&self.first_file);
        let mut seen = vec![false; self.ids.len()];
        for line in lines {
            let &row = self.row_of.get(line.id).ok_or_else(|| {
                DatasetError::record(
                    path,
                    format!("line {}", line.number),
                    format!(
                        "image id {} is not listed in {first_name}; every class file of a split \
                         must list the same image ids",
                        line.id
                    ),
                )
            })?;
            seen[row] = true;
            let text = line.label.unwrap_or_default();
            let label = text
                .parse()
                .ok()
                .and_then(Label::from_ternary)
                .ok_or_else(|| {
                    DatasetError::record(
                        path,
                        format!("line {}", line.number),
                        format!(
                            "label {text:?} for image {} is not 1 (present), -1 (absent) or 0 \
                         (difficult only)",
                            line.id
                        ),
                    )
                })?;
            self.target[row][class] = label == Label::Positive;
            self.ignore[row][class] = label == Label::Ignored;
        }
        if let Some(missing) = seen.iter().position(|&s| !s) {
            return Err(DatasetError::Format {
                path: path.to_owned(),
                reason: format!(
                    "image id {} from {first_name} is missing; every class file of a split must \
                     list the same image ids",
                    self.ids[missing]
                ),
            });
        }
        Ok(())
    }

    fn into_samples(self, images_dir: &Path) -> Vec<Sample> {
        self.ids
            .iter()
            .zip(self.target)
            .zip(self.ignore)
            .map(|((id, target), ignore)| Sample {
                image: images_dir.join(format!("{id}.jpg")),
                target,
                ignore,
                bbox: None,
            })
            .collect()
    }
}

/// One non-blank line of an ImageSets file.
struct IdLine<'t> {
    /// 1-based line number.
    number: usize,
    id: &'t str,
    /// The second field, in `<class>_<split>.txt` files.
    label: Option<&'t str>,
}

/// Parses the non-blank lines of an ImageSets file: an image id, followed by a label when
/// `labelled` (`<class>_<split>.txt`) and alone otherwise (`<split>.txt`). Repeated ids and
/// files without any id are errors.
fn parse_id_lines<'t>(
    path: &Path,
    text: &'t str,
    labelled: bool,
) -> Result<Vec<IdLine<'t>>, DatasetError> {
    let expected = if labelled {
        "`<image id> <label>`"
    } else {
        "`<image id>`"
    };
    let mut first_line_of: HashMap<&str, usize> = HashMap::new();
    let mut lines = Vec::new();
    // `lines` drops the `\r` of CRLF endings, which the official files use.
    for (i, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let number = i + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (id, label) = match (fields.as_slice(), labelled) {
            ([], _) => continue,
            ([id], false) => (*id, None),
            ([id, label], true) => (*id, Some(*label)),
            _ => {
                return Err(DatasetError::record(
                    path,
                    format!("line {number}"),
                    format!("expected {expected}, found {line:?}"),
                ))
            }
        };
        if let Some(first) = first_line_of.insert(id, number) {
            return Err(DatasetError::record(
                path,
                format!("line {number}"),
                format!("image id {id} is listed twice (first on line {first})"),
            ));
        }
        lines.push(IdLine { number, id, label });
    }
    if lines.is_empty() {
        return Err(DatasetError::Format {
            path: path.to_owned(),
            reason: format!("no image ids found; expected lines {expected}"),
        });
    }
    Ok(lines)
}

/// The target and ignore mask of one `Annotations/<id>.xml` file.
fn read_xml_labels(
    path: &Path,
    classes: &LabelSet,
) -> Result<(Vec<bool>, Vec<bool>), DatasetError> {
    let text = read_text(path)?;
    let doc = roxmltree::Document::parse(&text).map_err(|e| xml_syntax_error(path, &e))?;
    let root = doc.root_element();
    if !root.has_tag_name("annotation") {
        return Err(DatasetError::Format {
            path: path.to_owned(),
            reason: format!(
                "the root element is <{}>, expected a VOC <annotation>",
                root.tag_name().name()
            ),
        });
    }
    let mut clear = vec![false; classes.len()];
    let mut difficult = vec![false; classes.len()];
    let objects = root.children().filter(|n| n.has_tag_name("object"));
    for (i, object) in objects.enumerate() {
        let line = doc.text_pos_at(object.range().start).row;
        let error = |reason: String| {
            DatasetError::record(path, format!("object #{i} (line {line})"), reason)
        };
        let (class, is_difficult) = parse_object(object, classes).map_err(error)?;
        if is_difficult {
            difficult[class] = true;
        } else {
            clear[class] = true;
        }
    }
    let ignore = clear
        .iter()
        .zip(&difficult)
        .map(|(&clear, &difficult)| difficult && !clear)
        .collect();
    Ok((clear, ignore))
}

/// The class of one `<object>` and whether it is difficult.
fn parse_object(
    object: roxmltree::Node<'_, '_>,
    classes: &LabelSet,
) -> Result<(usize, bool), String> {
    // Only direct children: `<part>`s of a person object have `<name>`s of their own.
    let child_text = |tag: &str| {
        object
            .children()
            .find(|n| n.has_tag_name(tag))
            .map(|n| n.text().unwrap_or_default().trim())
    };
    let name = child_text("name")
        .filter(|name| !name.is_empty())
        .ok_or("the object has no <name>")?;
    let class = classes.index_of(name).ok_or_else(|| {
        format!(
            "unknown class {name:?}; the VOC classes are {}",
            classes.names().join(", ")
        )
    })?;
    let difficult = match child_text("difficult") {
        None | Some("0") => false,
        Some("1") => true,
        Some(other) => return Err(format!("<difficult> is {other:?}, expected 0 or 1")),
    };
    Ok((class, difficult))
}

/// A roxmltree error as [`DatasetError::Syntax`], its position given once.
fn xml_syntax_error(path: &Path, err: &roxmltree::Error) -> DatasetError {
    let pos = err.pos();
    DatasetError::Syntax {
        path: path.to_owned(),
        line: pos.row as usize,
        column: pos.col as usize,
        message: err.to_string().replace(&format!(" at {pos}"), ""),
    }
}

fn read_text(path: &Path) -> Result<String, DatasetError> {
    std::fs::read_to_string(path).map_err(|e| DatasetError::io(path, e))
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(name: &str, difficult: Option<&str>) -> String {
        let difficult = difficult.map_or(String::new(), |d| format!("<difficult>{d}</difficult>"));
        format!(
            "  <object>\n    <name>{name}</name>\n    <pose>Left</pose>\n    {difficult}\n    \
             <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>\n  \
             </object>\n"
        )
    }

    fn annotation(objects: &[String]) -> String {
        format!(
            "<annotation>\n  <folder>VOC2007</folder>\n  <filename>x.jpg</filename>\n{}\
             </annotation>\n",
            objects.concat()
        )
    }

    /// A `VOC2007/` folder with split `test` listing `ids` and the given XML files.
    fn voc_root(split_text: &str, xmls: &[(&str, String)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("ImageSets/Main");
        std::fs::create_dir_all(&main).unwrap();
        std::fs::create_dir_all(dir.path().join("Annotations")).unwrap();
        std::fs::write(main.join("test.txt"), split_text).unwrap();
        for (id, xml) in xmls {
            std::fs::write(dir.path().join(format!("Annotations/{id}.xml")), xml).unwrap();
        }
        dir
    }

    fn class(name: &str) -> usize {
        LabelSet::voc().index_of(name).unwrap()
    }

    #[test]
    fn xml_difficult_only_classes_are_ignored_and_split_order_is_kept() {
        let first = annotation(&[
            object("dog", Some("0")),
            object("person", Some("1")),
            object("person", None),
            object("cat", Some("1")),
            object("cat", Some("1")),
        ]);
        let second = annotation(&[object("car", Some("0"))]);
        let dir = voc_root(
            "000009\r\n000002\r\n\r\n",
            &[("000009", first), ("000002", second)],
        );
        let data = read_annotations(dir.path(), "test").unwrap();

        assert_eq!(data.classes, LabelSet::voc());
        assert_eq!(data.samples.len(), 2);
        let s = &data.samples[0];
        assert_eq!(s.image, dir.path().join("JPEGImages/000009.jpg"));
        assert!(s.target[class("dog")] && s.target[class("person")]);
        assert!(
            !s.ignore[class("person")],
            "a clear person beats a difficult one"
        );
        assert!(s.ignore[class("cat")] && !s.target[class("cat")]);
        assert_eq!(s.target.iter().filter(|&&t| t).count(), 2);
        assert_eq!(s.ignore.iter().filter(|&&t| t).count(), 1);
        assert!(data.samples[1].target[class("car")]);
        assert_eq!(
            data.samples[1].image,
            dir.path().join("JPEGImages/000002.jpg")
        );
    }

    #[test]
    fn part_names_are_not_objects() {
        let xml = "<annotation><object><name>person</name><difficult>0</difficult>\
                   <part><name>head</name></part></object></annotation>";
        let dir = voc_root("1\n", &[("1", xml.to_owned())]);
        let data = read_annotations(dir.path(), "test").unwrap();
        assert_eq!(data.positive_counts()[class("person")], 1);
    }

    #[test]
    fn xml_record_errors_name_the_file_and_object() {
        let cases = [
            (object("doggo", None), "object #1 (line 10): unknown class \"doggo\"; the VOC classes are aeroplane, bicycle"),
            (object("dog", Some("2")), "object #1 (line 10): <difficult> is \"2\", expected 0 or 1"),
            ("<object><pose>Left</pose></object>\n".to_owned(), "object #1 (line 10): the object has no <name>"),
        ];
        for (bad, expected) in cases {
            let xml = annotation(&[object("dog", None), bad]);
            let dir = voc_root("000001\n", &[("000001", xml)]);
            let msg = read_annotations(dir.path(), "test")
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains("000001.xml: ") && msg.contains(expected),
                "{msg}"
            );
        }
    }

    #[test]
    fn xml_syntax_errors_have_a_position() {
        let dir = voc_root(
            "000001\n",
            &[("000001", "<annotation>\n<object></objet>".to_owned())],
        );
        let err = read_annotations(dir.path(), "test").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("000001.xml:2:"), "{msg}");
        assert!(msg.contains("expected 'object' tag, not 'objet'"), "{msg}");
    }

    #[test]
    fn missing_xml_and_split_files_are_io_errors_naming_them() {
        let dir = voc_root("000001\n", &[]);
        let msg = read_annotations(dir.path(), "test")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("Annotations/000001.xml: "), "{msg}");
        let msg = read_annotations(dir.path(), "train")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("ImageSets/Main/train.txt: "), "{msg}");
    }

    #[test]
    fn split_file_errors_name_the_line() {
        let dir = voc_root("000001\n000002\n000001\n", &[]);
        let msg = read_annotations(dir.path(), "test")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("test.txt: line 3: image id 000001 is listed twice (first on line 1)"),
            "{msg}"
        );
        let dir = voc_root("000001\n000002 1\n", &[]);
        let msg = read_annotations(dir.path(), "test")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("test.txt: line 2: expected `<image id>`"),
            "{msg}"
        );
    }

    /// Writes the 20 class files of split `test`; `labels(class)` gives each file's lines.
    fn imagesets(labels: impl Fn(&str) -> String) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for name in VOC_CLASSES {
            std::fs::write(dir.path().join(format!("{name}_test.txt")), labels(name)).unwrap();
        }
        dir
    }

    fn standard_label(name: &str, id: &str) -> &'static str {
        match (name, id) {
            ("dog" | "person", "000001") => " 1",
            ("cat", "000001") | ("person", "000003") => " 0",
            _ => "-1",
        }
    }

    fn standard(name: &str) -> String {
        ["000003", "000001", "000002"]
            .iter()
            .map(|id| format!("{id} {}\r\n", standard_label(name, id)))
            .collect()
    }

    #[test]
    fn imagesets_combine_class_files_in_first_file_order() {
        let dir = imagesets(standard);
        let data = read_imagesets(dir.path(), "test", Path::new("/jpg")).unwrap();
        let images: Vec<_> = data.samples.iter().map(|s| s.image.clone()).collect();
        assert_eq!(
            images,
            ["/jpg/000003.jpg", "/jpg/000001.jpg", "/jpg/000002.jpg"].map(PathBuf::from)
        );
        let s = &data.samples[1];
        assert!(s.target[class("dog")] && s.target[class("person")]);
        assert_eq!(s.target.iter().filter(|&&t| t).count(), 2);
        assert!(s.ignore[class("cat")] && !s.target[class("cat")]);
        assert!(data.samples[0].ignore[class("person")]);
        assert_eq!(data.ignored_counts().iter().sum::<usize>(), 2);
        assert!(data.samples[2].target.iter().all(|&t| !t));
    }

    #[test]
    fn imagesets_bad_label_names_file_and_line() {
        let dir = imagesets(|name| {
            if name == "cow" {
                "000003 -1\r\n000001  2\r\n000002 -1\r\n".to_owned()
            } else {
                standard(name)
            }
        });
        let msg = read_imagesets(dir.path(), "test", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("cow_test.txt: line 2: label \"2\" for image 000001 is not 1 (present)"),
            "{msg}"
        );
    }

    #[test]
    fn imagesets_malformed_and_duplicate_lines_name_file_and_line() {
        let dir = imagesets(|name| match name {
            "bus" => "000003 -1\n000001\n000002 -1\n".to_owned(),
            _ => standard(name),
        });
        let msg = read_imagesets(dir.path(), "test", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("bus_test.txt: line 2: expected `<image id> <label>`, found \"000001\""),
            "{msg}"
        );

        let dir = imagesets(|name| format!("{}000003 1\r\n", standard(name)));
        let msg = read_imagesets(dir.path(), "test", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("aeroplane_test.txt: line 4: image id 000003 is listed twice"),
            "{msg}"
        );
    }

    #[test]
    fn imagesets_must_list_the_same_ids() {
        let dir = imagesets(|name| match name {
            "sofa" => "000003 -1\n000001 -1\n".to_owned(),
            _ => standard(name),
        });
        let msg = read_imagesets(dir.path(), "test", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("sofa_test.txt: image id 000002 from aeroplane_test.txt is missing"),
            "{msg}"
        );

        let dir = imagesets(|name| match name {
            "train" => format!("{}000004 -1\n", standard(name)),
            _ => standard(name),
        });
        let msg = read_imagesets(dir.path(), "test", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(
                "train_test.txt: line 4: image id 000004 is not listed in aeroplane_test.txt"
            ),
            "{msg}"
        );
    }

    #[test]
    fn imagesets_missing_class_file_is_an_io_error_naming_it() {
        let dir = imagesets(standard);
        std::fs::remove_file(dir.path().join("horse_test.txt")).unwrap();
        let msg = read_imagesets(dir.path(), "test", dir.path())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("horse_test.txt: "), "{msg}");
    }
}
