//! The `.pth` reader against files written by real `torch.save` (the venv's torch 2.11):
//! every storage type, views (transpose, offsets, shared storages, stride 0), a module's
//! OrderedDict state dict, pickle protocol 4, compared bit for bit with what torch holds;
//! and the torch-written files it must refuse.
//!
//! Needs the Python references (`CSRA_PYTHON` or the workspace's `.venv`, see
//! csra-test-support); fails without them.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::path::Path;

use csra_host::weights::read_tensors;
use serde_json::Value;
use tch::Kind;

fn kind(dtype: &str) -> Kind {
    match dtype {
        "float32" => Kind::Float,
        "float64" => Kind::Double,
        "float16" => Kind::Half,
        "bfloat16" => Kind::BFloat16,
        "int64" => Kind::Int64,
        "int32" => Kind::Int,
        "int16" => Kind::Int16,
        "int8" => Kind::Int8,
        "uint8" => Kind::Uint8,
        "bool" => Kind::Bool,
        other => panic!("unexpected dtype {other} in expected.json"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fixtures() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::run_python("write_pth_fixtures.py", &[dir.path()]);
    dir
}

fn check_file(dir: &Path, file: &str, expected: &[Value]) {
    let tensors = read_tensors(&dir.join(file)).unwrap();
    let names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
    let expected_names: Vec<&str> = expected
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, expected_names, "{file}: names in file order");
    for ((name, tensor), entry) in tensors.iter().zip(expected) {
        let shape: Vec<i64> = entry["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(tensor.size(), shape, "{file} {name}: shape");
        assert_eq!(
            tensor.kind(),
            kind(entry["dtype"].as_str().unwrap()),
            "{file} {name}: dtype"
        );
        assert!(tensor.is_contiguous(), "{file} {name}: not contiguous");
        assert_eq!(
            hex(&common::bytes(tensor)),
            entry["hex"].as_str().unwrap(),
            "{file} {name}: values"
        );
    }
}

#[test]
fn torch_written_files_read_bit_for_bit_and_bad_ones_are_refused() {
    let dir = fixtures();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("expected.json")).unwrap())
            .unwrap();
    let files = expected.as_object().unwrap();
    assert_eq!(files.len(), 5);
    for (file, entries) in files {
        check_file(dir.path(), file, entries.as_array().unwrap());
    }

    // Tensors that shared a storage in torch come back as independent tensors.
    let views = read_tensors(&dir.path().join("views.pth")).unwrap();
    let mut whole = views
        .iter()
        .find(|(n, _)| n == "shared_whole")
        .unwrap()
        .1
        .shallow_clone();
    let slice = &views.iter().find(|(n, _)| n == "shared_slice").unwrap().1;
    let before = common::bytes(slice);
    let _ = whole.fill_(-1.0);
    assert_eq!(common::bytes(slice), before, "the slice aliases the whole");

    for (file, message) in [
        ("complex.pth", "torch.ComplexFloatStorage"),
        ("checkpoint.pth", "entry \"state_dict\" is a dict"),
        ("whole_module.pth", "torch.nn.modules.linear.Linear"),
    ] {
        let err = read_tensors(&dir.path().join(file))
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{file}: {err}");
        assert!(
            err.contains(file),
            "{file}: the message does not name the file: {err}"
        );
    }
}

/// A change to one record of an archive: its new name and bytes.
type Edit = fn(&str, Vec<u8>) -> (String, Vec<u8>);

/// Rewrites a torch-written archive record by record through `edit`.
fn rewrite(source: &Path, target: &Path, edit: Edit) {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(source).unwrap()).unwrap();
    let mut out = zip::ZipWriter::new(std::fs::File::create(target).unwrap());
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        let (name, bytes) = edit(&entry.name().unwrap(), bytes);
        out.start_file(name, options).unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap();
}

#[test]
fn tampered_archives_are_refused_with_the_reason() {
    let dir = fixtures();
    let source = dir.path().join("module.pth");
    let cases: [(&str, Edit, &str); 4] = [
        (
            "short_storage.pth",
            |name, mut bytes| {
                if name.ends_with("/data/0") {
                    bytes.truncate(bytes.len() - 4);
                }
                (name.to_owned(), bytes)
            },
            "storage 0 should hold 108 elements of 4 bytes but has 428 bytes",
        ),
        (
            "big_endian.pth",
            |name, bytes| {
                let bytes = if name.ends_with("/byteorder") {
                    b"big".to_vec()
                } else {
                    bytes
                };
                (name.to_owned(), bytes)
            },
            "\"big\" byte order",
        ),
        (
            "truncated_pickle.pth",
            |name, mut bytes| {
                if name.ends_with("/data.pkl") {
                    bytes.truncate(bytes.len() / 2);
                }
                (name.to_owned(), bytes)
            },
            "data.pkl at byte",
        ),
        (
            "missing_storage.pth",
            |name, bytes| (name.replace("/data/3", "/data/x3"), bytes),
            "has no record module/data/3",
        ),
    ];
    for (file, edit, message) in cases {
        let target = dir.path().join(file);
        rewrite(&source, &target, edit);
        let err = read_tensors(&target).unwrap_err().to_string();
        assert!(err.contains(message), "{file}: {err}");
        assert!(err.contains(file), "{file}: {err}");
    }
}
