//! The fuzz targets of csra, one function per reader of outside input. Each takes arbitrary
//! bytes and must return without panicking, hanging or exhausting memory, whatever they hold;
//! errors are the expected outcome for most inputs.
//!
//! `fuzz/` runs them under libFuzzer (`cargo fuzz run NAME`, nightly), and `tests/replay.rs`
//! runs every saved corpus input through them on stable, so CI catches a regression in
//! seconds. [`TARGETS`] lists them by the names both use.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use csra_core::dataset::json_list::TargetEncoding;
use csra_core::dataset::{coco, csv_list, json_list, voc, wider};
use csra_core::manifest::Manifest;
use csra_core::LabelSet;
use csra_edge::preprocess::Preprocessor;
use csra_edge::profile::DeviceProfile;
use csra_edge::sink::mqtt::{redact, BrokerAddress};
use csra_edge::source::{Frame, PixelFormat};

/// A fuzz target: its name (the `fuzz/fuzz_targets/NAME.rs` file and the corpus folder) and
/// its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: [Target; 13] = [
    ("manifest", manifest),
    ("coco_json", coco_json),
    ("voc_xml", voc_xml),
    ("voc_imagesets", voc_imagesets),
    ("wider_json", wider_json),
    ("json_list", json_list),
    ("csv_list", csv_list),
    ("pickle", pickle),
    ("onnx_inspect", onnx_inspect),
    ("profile_toml", profile_toml),
    ("mqtt_url", mqtt_url),
    ("frame_jpeg", frame_jpeg),
    ("frame_yuyv", frame_yuyv),
];

/// A folder of this process's own for the readers that take a path.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("csra-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("voc/ImageSets/Main")).expect("a scratch folder");
        std::fs::create_dir_all(dir.join("voc/Annotations")).expect("a scratch folder");
        std::fs::write(dir.join("voc/ImageSets/Main/fuzz.txt"), "a\n").expect("a scratch file");
        dir
    })
}

/// Writes `data` to the scratch file `name` and returns its path.
fn file(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, data).expect("writing a scratch file");
    path
}

/// `model.manifest.json`.
pub fn manifest(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Manifest::parse(text, Path::new("fuzz.manifest.json"));
    }
}

/// COCO `instances_*.json`.
pub fn coco_json(data: &[u8]) {
    let _ = coco::read(&file("instances.json", data), scratch());
}

/// A VOC `Annotations/<id>.xml`.
pub fn voc_xml(data: &[u8]) {
    file("voc/Annotations/a.xml", data);
    let _ = voc::read_annotations(&scratch().join("voc"), "fuzz");
}

/// The official VOC `ImageSets/Main/<class>_<split>.txt` label files (the same bytes for all
/// twenty classes, so the readers' cross-checks pass and the per-line parsing is reached).
pub fn voc_imagesets(data: &[u8]) {
    let main = scratch().join("voc/ImageSets/Main");
    for class in LabelSet::voc().names() {
        std::fs::write(main.join(format!("{class}_fuzz.txt")), data).expect("a scratch file");
    }
    let _ = voc::read_imagesets(&main, "fuzz", scratch());
}

/// WIDER-Attribute's JSON.
pub fn wider_json(data: &[u8]) {
    let _ = wider::read(&file("wider.json", data), scratch());
}

/// The official CSRA JSON lists (`img_path`, `target`).
pub fn json_list(data: &[u8]) {
    let path = file("list.json", data);
    let _ = json_list::read(&path, &LabelSet::voc(), scratch(), TargetEncoding::Auto);
}

/// The CSV lists.
pub fn csv_list(data: &[u8]) {
    let _ = csv_list::read(&file("list.csv", data), &LabelSet::voc(), scratch());
}

/// `data.pkl` of a `.pth` file.
pub fn pickle(data: &[u8]) {
    let _ = csra_pickle::read_state_dict(data);
    let _ = csra_pickle::read_checkpoint(data);
}

/// An `.onnx` file through `csra_onnx::inspect` and its report.
pub fn onnx_inspect(data: &[u8]) {
    if let Ok(info) = csra_onnx::inspect(&file("model.onnx", data)) {
        let _ = info.to_string();
    }
}

/// A device profile's TOML.
pub fn profile_toml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = DeviceProfile::parse(text, "fuzz.toml");
    }
}

/// An `--mqtt` broker URL, and its redaction for messages.
pub fn mqtt_url(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = BrokerAddress::parse(text);
        let _ = redact(text);
    }
}

/// The frame path's preprocessor for a 64×64 model.
fn preprocessor() -> Preprocessor {
    let text = include_str!("fuzz.manifest.json");
    let manifest =
        Manifest::parse(text, Path::new("fuzz.manifest.json")).expect("a valid manifest");
    Preprocessor::new(&manifest)
}

/// An encoded camera frame or file (JPEG, PNG, BMP) into the network's input.
pub fn frame_jpeg(data: &[u8]) {
    let mut pre = preprocessor();
    let mut input = vec![0.0; pre.input_len()];
    let frame = Frame::encoded(data.to_vec(), 0, "fuzz".into());
    let _ = pre.run(
        &Frame {
            format: PixelFormat::Mjpeg,
            ..frame.clone()
        },
        &mut input,
    );
    let _ = pre.run(&frame, &mut input);
}

/// A raw YUYV frame: its first four bytes are the width and height (two little-endian u16,
/// at most 256 each), the rest the pixels, however many there are.
pub fn frame_yuyv(data: &[u8]) {
    let [w0, w1, h0, h1, pixels @ ..] = data else {
        return;
    };
    let width = u32::from(u16::from_le_bytes([*w0, *w1]) % 257);
    let height = u32::from(u16::from_le_bytes([*h0, *h1]) % 257);
    let frame = Frame {
        format: PixelFormat::Yuyv,
        width,
        height,
        stride: 0,
        data: pixels.to_vec(),
        sequence: 0,
        captured: Instant::now(),
        origin: "fuzz".into(),
        pts: None,
        in_source: None,
    };
    let mut pre = preprocessor();
    let mut input = vec![0.0; pre.input_len()];
    let _ = pre.run(&frame, &mut input);
}
