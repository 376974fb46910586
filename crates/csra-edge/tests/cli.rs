//! The `csra-edge` binary end to end on real photos with a random-weight model written by
//! csra-onnx: parity with tract run directly and with csra-core's reference head, the JSON
//! lines, `--events`, attention pictures, `info`, `bench`, bad input and a clean SIGINT.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use csra_core::head::HeadSpec;
use csra_edge::preprocess::Preprocessor;
use csra_edge::source::Frame;
use serde_json::Value;

use common::{edge, stderr};

/// Runs a file-input job with the test model and the x86-cpu profile.
fn run_on(model: &Path, input: &Path, extra: &[&str]) -> Output {
    edge()
        .args(["--device", "x86-cpu", "--threads", "1", "--model"])
        .arg(model)
        .arg("--input")
        .arg(input)
        .args(extra)
        .output()
        .unwrap()
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\n{}",
        output.status,
        stderr(output)
    );
}

/// The model's input tensor for a file, made by the library's preprocessor.
fn tensor(model: &common::TestModel, path: &Path) -> Vec<f32> {
    let frame = Frame::encoded(std::fs::read(path).unwrap(), 0, path.display().to_string());
    let mut pre = Preprocessor::new(&model.manifest);
    let mut input = vec![0.0; pre.input_len()];
    pre.run(&frame, &mut input).unwrap();
    input
}

fn scores(line: &Value) -> Vec<f32> {
    let scores = line["scores"].as_object().unwrap();
    common::CLASSES
        .iter()
        .map(|c| scores[*c].as_f64().unwrap() as f32)
        .collect()
}

/// Every real photo: the printed probabilities are tract's on the same preprocessed tensor
/// (bit for bit up to JSON's shortest float printing, which round-trips f32), and csra-core's
/// reference head on tract's feature map within 1e-5; the labels are the classes at or above
/// the manifest's threshold, most probable first.
#[test]
fn outputs_equal_tract_and_csra_core_on_the_real_photos() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 7);
    let photos = common::photos_dir();
    let output = run_on(&model.dir, &photos, &["--scores", "all"]);
    assert_ok(&output);
    let lines = lines(&output);
    let images = csra_edge::source::files::expand_input(photos.to_str().unwrap()).unwrap();
    assert_eq!(lines.len(), images.len(), "one line per photo");
    let direct = common::Direct::load(&model);
    let mut worst_reference = 0.0f64;
    for (line, image) in lines.iter().zip(&images) {
        assert_eq!(
            line["origin"].as_str().unwrap(),
            image.display().to_string()
        );
        let printed = scores(line);
        let ran = direct.run(&tensor(&model, image));
        assert_eq!(printed, ran.probs, "{}", image.display());
        let reference = common::reference_probs(&model, &ran.features);
        for (p, r) in printed.iter().zip(&reference) {
            worst_reference = worst_reference.max(f64::from((p - r).abs()));
        }
        let mut expected: Vec<(usize, f32)> = printed
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, p)| *p >= 0.5)
            .collect();
        expected.sort_by(|a, b| b.1.total_cmp(&a.1));
        let labels: Vec<(String, f32)> = line["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["label"].as_str().unwrap().to_owned(),
                    l["prob"].as_f64().unwrap() as f32,
                )
            })
            .collect();
        let expected: Vec<(String, f32)> = expected
            .iter()
            .map(|&(c, p)| (common::CLASSES[c].to_owned(), p))
            .collect();
        assert_eq!(labels, expected, "{}", image.display());
    }
    assert!(
        worst_reference < 1e-5,
        "csra-core differs by {worst_reference}"
    );
}

#[test]
fn json_lines_have_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 3);
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    common::photo_subset(&photos);
    let output = run_on(&model.dir, &photos, &["--threshold", "0.0", "--topk", "2"]);
    assert_ok(&output);
    let lines = lines(&output);
    assert_eq!(lines.len(), 4);
    for (i, line) in lines.iter().enumerate() {
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "captured",
                "events",
                "frame",
                "labels",
                "origin",
                "sequence",
                "time",
                "timings_ms"
            ]
        );
        assert_eq!(line["frame"], i as u64);
        assert_eq!(line["sequence"], i as u64);
        let time = line["time"].as_str().unwrap();
        let time: jiff::Timestamp = time.parse().unwrap();
        // Captured before the result was ready.
        let captured: jiff::Timestamp = line["captured"].as_str().unwrap().parse().unwrap();
        assert!(captured <= time, "{line}");
        // Threshold 0 reports every class; top-2 keeps the two most probable.
        let labels = line["labels"].as_array().unwrap();
        assert_eq!(labels.len(), 2);
        assert!(labels[0]["prob"].as_f64() >= labels[1]["prob"].as_f64());
        let t = &line["timings_ms"];
        let stage = |k: &str| t[k].as_f64().unwrap();
        let stages = [
            "capture_age",
            "preprocess",
            "queued",
            "network",
            "postprocess",
        ];
        for k in stages.iter().chain(&["total"]) {
            assert!(stage(k) >= 0.0, "{k}");
        }
        let parts: f64 = stages.iter().map(|k| stage(k)).sum();
        // Each stage is rounded to the microsecond.
        assert!(stage("total") + 0.006 >= parts, "{t}");
        assert!(stage("network") > 0.0);
    }
    // The first frame's labels all appear; later frames report only changes.
    assert_eq!(lines[0]["events"].as_array().unwrap().len(), 2);
}

/// `--events` prints exactly the frames whose reported labels changed, with the same events
/// as the full output.
#[test]
fn events_mode_prints_only_changes() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 5);
    // The same photo twice in a row: the second copy can change no label.
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    let real = common::photos_dir();
    for (name, from) in [
        ("1.jpg", "cat_0.jpg"),
        ("2.jpg", "cat_0.jpg"),
        ("3.jpg", "dog_0.jpg"),
        ("4.jpg", "humans_0.jpg"),
    ] {
        std::fs::copy(real.join(from), photos.join(name)).unwrap();
    }
    let base = [
        "--loop",
        "--frames",
        "8",
        "--topk",
        "1",
        "--threshold",
        "0.0",
    ];
    let all = lines(&run_on(&model.dir, &photos, &base));
    assert_eq!(all.len(), 8);
    let changed: Vec<&Value> = all
        .iter()
        .filter(|l| !l["events"].as_array().unwrap().is_empty())
        .collect();
    let mut args = base.to_vec();
    args.push("--events");
    let events = lines(&run_on(&model.dir, &photos, &args));
    assert!(
        !events.is_empty() && events.len() < 8,
        "{} event lines",
        events.len()
    );
    assert!(all[1]["events"].as_array().unwrap().is_empty());
    assert_eq!(events.len(), changed.len());
    for (e, c) in events.iter().zip(changed) {
        assert_eq!(e["frame"], c["frame"]);
        assert_eq!(e["events"], c["events"]);
    }
}

#[test]
fn attention_pictures_for_a_chosen_class() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 9);
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    common::photo_subset(&photos);
    let out = dir.path().join("attention");
    let output = run_on(
        &model.dir,
        &photos,
        &[
            "--save-attention",
            out.to_str().unwrap(),
            "--attention-class",
            "cat",
        ],
    );
    assert_ok(&output);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "000000_cat_0_cat.png",
            "000001_coral_grace_hopper_cat.png",
            "000002_dog_0_cat.png",
            "000003_humans_0_cat.png"
        ]
    );
    let picture = image::open(&files[0]).unwrap();
    assert_eq!((picture.width(), picture.height()), (64, 64));
}

#[test]
fn info_shows_manifest_and_onnx() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 2);
    let output = edge().arg("info").arg(&model.dir).output().unwrap();
    assert_ok(&output);
    let text = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "classes      6: person",
        "attention `attention`",
        "Conv",
        "manifest and ONNX agree",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
}

#[test]
fn bench_measures_a_heads_family() {
    let dir = tempfile::tempdir().unwrap();
    // As `csra-host export --heads 2,1` writes them: head counts and named variants.
    for (seed, member) in [(1, "max"), (2, "2"), (3, "1"), (4, "baseline")] {
        let sub = dir.path().join(format!("heads-{member}"));
        std::fs::create_dir(&sub).unwrap();
        let spec = match member {
            "max" => HeadSpec::max(0.2).unwrap(),
            "baseline" => HeadSpec::baseline(),
            _ => HeadSpec::csra(2, 0.3).unwrap(),
        };
        common::write_model_with(&sub, seed, spec);
    }
    let output = edge()
        .args(["bench", "--json", "--warmup", "1", "--runs", "5"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_ok(&output);
    let rows = lines(&output);
    let order: Vec<&str> = rows
        .iter()
        .map(|r| r["model"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(order, ["heads-1", "heads-2", "heads-baseline", "heads-max"]);
    let ratios: Vec<f64> = rows
        .iter()
        .map(|r| r["ratio_to_fastest"].as_f64().unwrap())
        .collect();
    assert!(
        ratios.contains(&1.0) && ratios.iter().all(|&r| r >= 1.0),
        "{ratios:?}"
    );
    let baseline = rows[2]["p50_ms"].as_f64().unwrap();
    for row in &rows {
        assert_eq!(row["runs"], 5);
        let [p50, p90, p99] = ["p50_ms", "p90_ms", "p99_ms"].map(|k| row[k].as_f64().unwrap());
        assert!(p50 <= p90 && p90 <= p99, "{row}");
        assert!(row["peak_rss_mib"].as_f64().unwrap() > 1.0, "{row}");
        let overhead = row["head_overhead_ms"].as_f64().unwrap();
        assert!((overhead - (p50 - baseline)).abs() < 1e-9, "{row}");
    }
    // Without --json: the table, on stdout.
    let output = edge()
        .args(["bench", "--warmup", "0", "--runs", "2"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_ok(&output);
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(
        table.contains("p50 ms") && table.contains("heads-baseline"),
        "{table}"
    );
}

/// `bench --pipeline`: both camera codecs, stage times that add up, and the run loop's frames
/// per second in turn and with prefetch, its overhead computed from them.
#[test]
fn bench_pipeline_times_the_frame_path_and_the_run_loop() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 6);
    let photo = common::photos_dir().join("dog_0.jpg");
    let output = edge()
        .args([
            "bench",
            "--json",
            "--warmup",
            "1",
            "--runs",
            "4",
            "--pipeline",
        ])
        .arg(&photo)
        .arg(&model.dir)
        .output()
        .unwrap();
    assert_ok(&output);
    let rows = lines(&output);
    assert_eq!(rows.len(), 1);
    let stages = rows[0]["pipeline"].as_array().unwrap();
    let codecs: Vec<&str> = stages
        .iter()
        .map(|r| r["codec"].as_str().unwrap())
        .collect();
    assert_eq!(codecs, ["mjpeg", "yuyv"]);
    for row in stages {
        let get = |k: &str| row[k].as_f64().unwrap();
        assert!(get("decode_ms") > 0.0 && get("network_ms") > 0.0, "{row}");
        let overhead = 100.0 * (get("preprocess_ms") + get("postprocess_ms")) / get("network_ms");
        assert!((get("overhead_pct") - overhead).abs() < 1e-9, "{row}");
        assert!(
            get("in_turn_fps") > 0.0 && get("prefetch_fps") > 0.0,
            "{row}"
        );
        let beyond = 100.0 * (1e3 / get("prefetch_fps") - get("network_ms")) / get("network_ms");
        assert!(
            (get("prefetch_overhead_pct") - beyond).abs() < 1e-9,
            "{row}"
        );
    }
}

#[test]
fn bench_profile_ops_breaks_a_run_down_by_operator() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 3);
    let output = edge()
        .args([
            "bench",
            "--profile-ops",
            "--json",
            "--warmup",
            "1",
            "--runs",
            "3",
        ])
        .arg(&model.dir)
        .output()
        .unwrap();
    assert_ok(&output);
    let rows = lines(&output);
    assert_eq!(rows.len(), 1, "one line per model");
    let row = &rows[0];
    assert_eq!(
        (row["threads"].as_u64(), row["runs"].as_u64()),
        (Some(1), Some(3))
    );
    let ops = row["ops"].as_array().unwrap();
    assert!(!ops.is_empty(), "{row}");
    let ms: Vec<f64> = ops.iter().map(|o| o["ms"].as_f64().unwrap()).collect();
    let pct: f64 = ops.iter().map(|o| o["pct"].as_f64().unwrap()).sum();
    assert!(ms.windows(2).all(|w| w[0] >= w[1]), "slowest first: {ms:?}");
    assert!((ms.iter().sum::<f64>() - row["total_ms"].as_f64().unwrap()).abs() < 1e-9);
    assert!((pct - 100.0).abs() < 1e-6, "{pct}");
    // It profiles tract only: another engine is a usage error, not a silent substitution.
    let output = edge()
        .args(["bench", "--profile-ops", "--backend", "onnxruntime"])
        .arg(&model.dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

fn assert_fails(output: &Output, needles: &[&str]) {
    assert_eq!(output.status.code(), Some(1), "{}", stderr(output));
    let text = stderr(output);
    assert!(!text.contains("panicked"), "{text}");
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
}

#[test]
fn a_missing_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_on(&dir.path().join("nope"), &common::photos_dir(), &[]);
    assert_fails(&output, &["nope", "no such file or folder", "--model"]);
}

#[test]
fn a_manifest_disagreeing_with_its_onnx_names_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 4);
    let mut manifest = model.manifest.clone();
    manifest.classes.pop();
    manifest.num_classes -= 1;
    manifest.input.width = 32;
    manifest
        .write(&dir.path().join("model.manifest.json"))
        .unwrap();
    let output = run_on(&model.dir, &common::photos_dir(), &[]);
    assert_fails(
        &output,
        &[
            "model.manifest.json and",
            "model.onnx disagree",
            "lists 5 classes",
            "32×64",
        ],
    );
    let info = edge().arg("info").arg(&model.dir).output().unwrap();
    assert_fails(&info, &["lists 5 classes"]);
}

#[test]
fn unreadable_images_are_skipped_counted_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 6);
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    let good = common::photos_dir().join("cat_0.jpg");
    std::fs::copy(&good, photos.join("a_good.jpg")).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(photos.join("b_truncated.jpg"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(photos.join("c_not_an_image.png"), b"hello").unwrap();
    let output = run_on(&model.dir, &photos, &[]);
    assert_ok(&output);
    assert_eq!(lines(&output).len(), 1);
    let text = stderr(&output);
    assert!(
        text.contains("b_truncated.jpg") && text.contains("c_not_an_image.png"),
        "{text}"
    );
    assert!(text.contains("skipped 2 frame(s)"), "{text}");

    // Nothing readable at all: an error.
    let output = run_on(&model.dir, &photos.join("b_truncated.jpg"), &[]);
    assert_fails(&output, &["none of the 1 input frame(s) could be read"]);
    // Looped over nothing readable: it gives up after one pass instead of spinning.
    let output = run_on(&model.dir, &photos.join("b_truncated.jpg"), &["--loop"]);
    assert_fails(&output, &["none of the 1 input frame(s) could be read"]);
    // Nothing matching at all.
    let output = run_on(&model.dir, &photos.join("*.gif"), &[]);
    assert_fails(&output, &["no image files found"]);
}

#[test]
fn an_unknown_device_profile_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 8);
    let output = edge()
        .args(["--device", "jetson-tx1", "--model"])
        .arg(&model.dir)
        .arg("--input")
        .arg(common::photos_dir())
        .output()
        .unwrap();
    assert_fails(
        &output,
        &["unknown device profile \"jetson-tx1\"", "jetson-orin-nano"],
    );
}

#[test]
fn a_missing_camera_is_a_clear_error_that_points_to_probe() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 8);
    let output = edge()
        .args(["--device", "x86-cpu", "--camera", "/dev/video9", "--model"])
        .arg(&model.dir)
        .output()
        .unwrap();
    assert_fails(&output, &["/dev/video9", "csra-edge probe"]);
}

/// Without the `gstreamer` feature a video or stream input says how to get it.
#[cfg(not(feature = "gstreamer"))]
#[test]
fn a_video_input_without_the_gstreamer_feature_says_how_to_build_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 8);
    let output = edge()
        .args([
            "--device",
            "x86-cpu",
            "--input",
            "rtsp://127.0.0.1:9/cam",
            "--model",
        ])
        .arg(&model.dir)
        .output()
        .unwrap();
    assert_fails(
        &output,
        &["--input rtsp://127.0.0.1:9/cam", "--features gstreamer"],
    );
}

#[test]
fn a_bad_mqtt_address_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 9);
    let output = edge()
        .args(["--device", "x86-cpu", "--mqtt", "mqtt://127.0.0.1/"])
        .arg("--model")
        .arg(&model.dir)
        .arg("--input")
        .arg(common::photos_dir())
        .output()
        .unwrap();
    assert_fails(&output, &["--mqtt mqtt://127.0.0.1/", "topic"]);
}

/// SIGINT (Ctrl-C) or SIGTERM (systemd's stop) during a looped run: the run finishes its
/// frame, flushes, and exits with 0; every line on stdout is complete JSON.
#[test]
fn sigint_and_sigterm_end_cleanly_with_exit_code_zero() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 10);
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    common::photo_subset(&photos);
    for signal in ["-INT", "-TERM"] {
        let mut child = edge()
            .args(["--device", "x86-cpu", "--threads", "1", "--loop", "--model"])
            .arg(&model.dir)
            .arg("--input")
            .arg(&photos)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut seen = String::new();
        for _ in 0..3 {
            stdout.read_line(&mut seen).unwrap();
        }
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let exit = loop {
            if let Some(exit) = child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                Instant::now() < deadline,
                "csra-edge did not stop after {signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        stdout.read_to_string(&mut seen).unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(exit.code(), Some(0), "{signal}: {err}");
        assert!(
            seen.ends_with('\n'),
            "{signal}: last line incomplete: {seen:?}"
        );
        for line in seen.lines() {
            serde_json::from_str::<Value>(line).unwrap();
        }
        assert!(err.contains("done (Stopped)"), "{signal}: {err}");
    }
}

/// A run that can only find TensorRT where `library` says (a missing path: no TensorRT).
fn run_with_trt(model: &Path, library: &Path, cache: &Path, extra: &[&str]) -> Output {
    edge()
        .env("CSRA_TRT_LIBRARY", library)
        .args(["--device", "x86-cpu", "--threads", "1", "--model"])
        .arg(model)
        .arg("--input")
        .arg(common::photos(&["dog_0.jpg"]).first().unwrap())
        .arg("--engine-cache")
        .arg(cache)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn explicit_tensorrt_without_tensorrt_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 11);
    let missing = dir.path().join("nowhere/libcsra_trt.so");
    let output = run_with_trt(&model.dir, &missing, dir.path(), &["--backend", "tensorrt"]);
    assert_fails(
        &output,
        &[
            "TensorRT is not available",
            "nowhere/libcsra_trt.so",
            "--backend tract",
        ],
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn auto_without_tensorrt_runs_tract_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 12);
    let missing = dir.path().join("nowhere/libcsra_trt.so");
    // x86-cpu's profile asks for auto; the flag says it again.
    for extra in [&[][..], &["--backend", "auto"][..]] {
        let output = run_with_trt(&model.dir, &missing, dir.path(), extra);
        assert_ok(&output);
        let text = stderr(&output);
        assert!(
            text.contains("auto: tract (not TensorRT, because TensorRT is not available"),
            "{text}"
        );
        assert!(text.contains("backend: tract"), "{text}");
        assert_eq!(lines(&output).len(), 1);
    }
}

#[test]
fn impossible_tensorrt_options_are_refused_before_anything_loads() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 13);
    let missing = dir.path().join("nowhere/libcsra_trt.so");
    let trt = ["--backend", "tensorrt"];
    let dla_fp32 = [&trt[..], &["--precision", "fp32", "--dla", "0"]].concat();
    let output = run_with_trt(&model.dir, &missing, dir.path(), &dla_fp32);
    assert_fails(&output, &["--dla 0", "fp16 or int8"]);
    let int8 = [&trt[..], &["--precision", "int8"]].concat();
    let output = run_with_trt(&model.dir, &missing, dir.path(), &int8);
    assert_fails(&output, &["--precision int8", "--calibration DIR"]);
    // Too few calibration pictures: one file.
    let photo = common::photos(&["dog_0.jpg"]);
    let one = photo[0].to_str().unwrap();
    let few = [&int8[..], &["--calibration", one]].concat();
    let output = run_with_trt(&model.dir, &missing, dir.path(), &few);
    assert_fails(
        &output,
        &["--calibration", "1 usable picture(s)", "at least 8"],
    );
}

#[test]
fn a_stand_in_tensorrt_builds_and_caches_an_engine_and_a_mismatch_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 14);
    // The stand-in's "network" takes [1, 3, 4, 4]; the test model takes 64×64.
    let standin = csra_test_support::trt_standin(dir.path(), &[]);
    let cache = dir.path().join("engines");
    let output = run_with_trt(&model.dir, &standin, &cache, &["--backend", "tensorrt"]);
    assert_fails(&output, &["48 values", "12288"]);
    let engines: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        engines
            .iter()
            .any(|n| n.ends_with(".engine") && n.contains("fp32")),
        "{engines:?}"
    );
    // auto takes tract when the engine cannot serve the model, and says why.
    let output = run_with_trt(&model.dir, &standin, &cache, &["--backend", "auto"]);
    assert_ok(&output);
    let text = stderr(&output);
    assert!(
        text.contains("auto: tract (not TensorRT") && text.contains("48 values"),
        "{text}"
    );
}

/// `verify` of tract against itself at fp32 on every photo, with `extra` flags.
fn verify_tract(model: &common::TestModel, extra: &[&str]) -> Output {
    edge()
        .args(["verify", "--device", "x86-cpu", "--backend", "tract"])
        .args(["--precisions", "fp32"])
        .args(extra)
        .arg(&model.dir)
        .arg(common::photos_dir())
        .output()
        .unwrap()
}

#[test]
fn verify_against_tract_itself_passes_with_zero_differences() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 15);
    let output = verify_tract(&model, &[]);
    assert_ok(&output);
    let verdicts = lines(&output);
    assert_eq!(verdicts.len(), 1);
    let v = &verdicts[0];
    assert_eq!(v["precision"], "fp32");
    assert_eq!(v["pass"], true);
    assert_eq!(v["max_abs_logit_delta"], 0.0);
    assert_eq!(v["topk_differs"], 0);
    assert!(v["images"].as_u64().unwrap() >= 5, "{v}");
    assert!(stderr(&output).contains("pass"));
}

#[test]
fn verify_fails_when_the_engine_is_too_far_from_tract() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 16);
    let missing = dir.path().join("nowhere/libcsra_trt.so");
    let output = edge()
        .env("CSRA_TRT_LIBRARY", &missing)
        .args(["verify", "--device", "x86-cpu"])
        .arg(&model.dir)
        .arg(common::photos_dir())
        .args(["--engine-cache"])
        .arg(dir.path())
        .output()
        .unwrap();
    // TensorRT is the default engine to check; without it the check cannot pass.
    assert_fails(&output, &["TensorRT is not available"]);
    // Past the tolerance: tract against itself with a negative tolerance.
    let output = verify_tract(&model, &["--tolerance=-1"]);
    assert_fails(&output, &["past the tolerance at fp32"]);
    assert_eq!(lines(&output)[0]["pass"], false);
}
