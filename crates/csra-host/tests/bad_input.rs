//! The bad-input suite of `csra-host`: broken checkpoints, `.pth` files, datasets and export
//! options, every one made here by the test (no stored junk). Each case asserts a failing exit
//! code, that nothing panicked, and that the message names the file or flag at fault.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{data_dir, host, ok};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Exit `code`, no panic, and every one of `needles` in stderr; otherwise what is wrong.
fn refusal(case: &str, args: &[&str], code: i32, needles: &[&str]) -> Option<String> {
    let out = host(args);
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(code) || err.contains("panicked") {
        return Some(format!("{case}: exit {:?}\n{err}", out.status.code()));
    }
    let missing: Vec<&&str> = needles.iter().filter(|n| !err.contains(**n)).collect();
    (!missing.is_empty()).then(|| format!("{case}: no {missing:?} in\n{err}"))
}

/// Every case's refusal, all reported at once.
fn assert_refused_all(cases: impl IntoIterator<Item = Option<String>>) {
    let failures: Vec<String> = cases.into_iter().flatten().collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A checkpoint from two training steps at 64 pixels: what the export and eval cases break.
fn checkpoint(dir: &Path) -> PathBuf {
    let data = data_dir();
    let run = dir.join("run");
    let weights = data.join("weights/mobilenet_v2_imagenet.safetensors");
    let printed = ok(&[
        "-q",
        "train",
        "--data",
        s(&data.join("coco-mini")),
        "--arch",
        "mobilenet_v2",
        "--pretrained",
        s(&weights),
        "--image-size",
        "64",
        "--batch-size",
        "4",
        "--epochs",
        "1",
        "--max-steps-per-epoch",
        "1",
        "--no-val",
        "--out",
        s(&run),
    ]);
    PathBuf::from(printed.trim())
}

/// A zip archive holding `files` (stored), as `torch.save` lays one out.
fn zip(path: &Path, files: &[(&str, &[u8])]) {
    let mut writer = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in files {
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap();
}

#[test]
fn broken_weights_files_name_the_file_and_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let coco = data_dir().join("coco-mini");
    let garbage = dir.path().join("garbage.pth");
    std::fs::write(&garbage, b"this is not a torch.save file").unwrap();
    let no_pickle = dir.path().join("no-pickle.pth");
    zip(&no_pickle, &[("archive/version", b"3\n")]);
    let bad_pickle = dir.path().join("bad-pickle.pth");
    zip(
        &bad_pickle,
        &[
            ("archive/data.pkl", b"\x80\x02}q\x00(X\x01\x00\x00\x00a"),
            ("archive/version", b"3\n"),
        ],
    );
    let legacy = dir.path().join("legacy.pth");
    std::fs::write(
        &legacy,
        b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.",
    )
    .unwrap();
    let never = dir.path().join("never");
    let truncated = dir.path().join("truncated.safetensors");
    let real = std::fs::read(data_dir().join("weights/mobilenet_v2_imagenet.safetensors")).unwrap();
    std::fs::write(&truncated, &real[..real.len() / 2]).unwrap();
    let mut results = Vec::new();
    for (file, needles) in [
        (&garbage, &["garbage.pth"][..]),
        (&no_pickle, &["no-pickle.pth", "data.pkl"][..]),
        (&bad_pickle, &["bad-pickle.pth", "data.pkl"][..]),
        (&legacy, &["legacy.pth", "before PyTorch 1.6"][..]),
        (&truncated, &["truncated.safetensors"][..]),
        (&dir.path().join("missing.pth"), &["missing.pth"][..]),
    ] {
        let args = [
            "-q",
            "train",
            "--data",
            s(&coco),
            "--arch",
            "mobilenet_v2",
            "--pretrained",
            s(file),
            "--image-size",
            "64",
            "--epochs",
            "1",
            "--max-steps-per-epoch",
            "1",
            "--out",
            s(&never),
        ];
        results.push(refusal(s(file), &args, 1, needles));
    }
    assert_refused_all(results);
}

#[test]
fn broken_datasets_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("coco");
    std::fs::create_dir_all(root.join("annotations")).unwrap();
    std::fs::create_dir_all(root.join("train2017")).unwrap();
    std::fs::write(
        root.join("annotations/instances_train2017.json"),
        "{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\"",
    )
    .unwrap();
    let voc = dir.path().join("voc");
    std::fs::create_dir_all(voc.join("Annotations")).unwrap();
    let nowhere = dir.path().join("nowhere");
    let csv = dir.path().join("list.csv");
    std::fs::write(&csv, "image,aeroplane,unicorn\na.jpg,1,0\n").unwrap();
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (vec!["--data", s(&root)], &["instances_train2017.json"]),
        (vec!["--data", s(&nowhere)], &["nowhere"]),
        (vec!["--data", s(&voc)], &["voc"]),
        (
            vec![
                "--format",
                "csv",
                "--annotations",
                s(&csv),
                "--images",
                s(dir.path()),
            ],
            &["list.csv", "--labels"],
        ),
    ];
    let mut results = Vec::new();
    for (data, needles) in cases {
        let mut args = vec!["-q", "train"];
        args.extend(&data);
        args.extend(["--image-size", "64", "--epochs", "1", "--no-val"]);
        let out = dir.path().join("never");
        args.extend(["--out", s(&out)]);
        results.push(refusal(&data.join(" "), &args, 1, needles));
    }
    assert_refused_all(results);
}

#[test]
fn broken_checkpoints_and_export_options_name_the_file_or_flag() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = checkpoint(dir.path());
    let out = dir.path().join("export");
    let ck = s(&checkpoint);
    let o = s(&out);
    // Export options.
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, "cat\ndog\n").unwrap();
    let ck_needle = [ck];
    let cases: Vec<(Vec<&str>, i32, &[&str])> = vec![
        (
            vec!["export", ck, "--out", o, "--heads", "0"],
            1,
            &["--heads"],
        ),
        (
            vec!["export", ck, "--out", o, "--lambda", "nan"],
            1,
            &["lambda"],
        ),
        (
            vec!["export", ck, "--out", o, "--input-size", "0"],
            1,
            &["--input-size"],
        ),
        (
            vec!["export", ck, "--out", o, "--input-size", "100000"],
            1,
            &["--input-size"],
        ),
        (
            vec!["export", ck, "--out", o, "--labels", s(&labels)],
            1,
            &["labels.txt", "2"],
        ),
        (
            vec!["export", ck, "--out", o, "--variant", "fancy"],
            2,
            &["fancy"],
        ),
        (vec!["export", ck, "--out", ck], 1, &ck_needle),
    ];
    let mut results = Vec::new();
    for (args, code, needles) in cases {
        results.push(refusal(&args.join(" "), &args, code, needles));
    }
    // The checkpoint's weights file gone, then replaced by junk.
    let text = std::fs::read_to_string(&checkpoint).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let weights_name = json["weights"].as_str().unwrap_or_else(|| panic!("{text}"));
    let weights = checkpoint.parent().unwrap().join(weights_name);
    std::fs::write(&weights, b"junk").unwrap();
    results.push(refusal(
        "junk weights",
        &["eval", ck, "--data", "x"],
        1,
        &[weights_name],
    ));
    std::fs::remove_file(&weights).unwrap();
    results.push(refusal(
        "missing weights",
        &["eval", ck, "--data", "x"],
        1,
        &[weights_name],
    ));
    assert_refused_all(results);
}
