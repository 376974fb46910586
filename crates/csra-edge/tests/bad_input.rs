//! The bad-input suite of `csra-edge`: broken models, manifests, profiles, images, flag values
//! and URLs, every one made here by the test (no stored junk). Each case asserts the exit
//! code, that nothing panicked, and that the message names the file or flag and what to do.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use csra_onnx::pb::tensor_proto::DataType;
use csra_onnx::pb::ModelProto;
use serde_json::Value;

use common::{edge, stderr};

/// A run of `args` (after `--device x86-cpu`).
fn run(args: &[&str]) -> Output {
    edge()
        .args(["--device", "x86-cpu"])
        .args(args)
        .output()
        .unwrap()
}

/// Exit `code`, no panic, and every one of `needles` in the message.
fn assert_refused(case: &str, output: &Output, code: i32, needles: &[&str]) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{case}: {err}");
    assert!(!err.contains("panicked"), "{case}: {err}");
    for needle in needles {
        assert!(err.contains(needle), "{case}: no {needle:?} in\n{err}");
    }
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn dog() -> PathBuf {
    common::photos(&["dog_0.jpg"]).remove(0)
}

/// A copy of the test model in `dir/name` with its ONNX changed by `change`.
fn mutated(dir: &Path, name: &str, change: impl FnOnce(&mut ModelProto)) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir(&folder).unwrap();
    let model = common::write_model(&folder, 3);
    let mut proto = csra_onnx::read_model(&model.onnx).unwrap();
    change(&mut proto);
    csra_onnx::write_model(&model.onnx, &proto).unwrap();
    folder
}

fn graph(proto: &mut ModelProto) -> &mut csra_onnx::pb::GraphProto {
    proto.graph.as_mut().unwrap()
}

fn set_elem_type(proto: &mut ModelProto, input: usize, elem: DataType) {
    let value = &mut graph(proto).input[input];
    let Some(csra_onnx::pb::type_proto::Value::TensorType(tensor)) =
        value.r#type.as_mut().unwrap().value.as_mut()
    else {
        panic!("not a tensor input")
    };
    tensor.elem_type = elem as i32;
}

fn output_dims<'a>(
    proto: &'a mut ModelProto,
    name: &str,
) -> &'a mut Vec<csra_onnx::pb::tensor_shape_proto::Dimension> {
    let value = graph(proto)
        .output
        .iter_mut()
        .find(|o| o.name == name)
        .unwrap();
    let Some(csra_onnx::pb::type_proto::Value::TensorType(tensor)) =
        value.r#type.as_mut().unwrap().value.as_mut()
    else {
        panic!("not a tensor output")
    };
    &mut tensor.shape.as_mut().unwrap().dim
}

/// Models `run` refuses must be refused by `info` too, with the same reason: one validation.
#[test]
fn info_and_run_refuse_the_same_broken_models() {
    let dir = tempfile::tempdir().unwrap();
    let dog = dog();
    let cases: Vec<(&str, PathBuf, &[&str])> = vec![
        (
            "rank-3 probs",
            mutated(dir.path(), "rank3", |m| {
                let dims = output_dims(m, "probs");
                let extra = dims[1].clone();
                dims.push(extra);
            }),
            &["probs", "rank 2"],
        ),
        (
            "int64 input",
            mutated(dir.path(), "int64", |m| {
                set_elem_type(m, 0, DataType::Int64)
            }),
            &["INT64", "float32"],
        ),
        (
            "fp16 input",
            mutated(dir.path(), "fp16", |m| {
                set_elem_type(m, 0, DataType::Float16);
            }),
            &["FLOAT16", "float32"],
        ),
        (
            "unknown op",
            mutated(dir.path(), "unknown-op", |m| {
                let node = graph(m)
                    .node
                    .iter_mut()
                    .find(|n| n.op_type == "Relu")
                    .unwrap();
                node.op_type = "Frobnicate".into();
            }),
            &["Frobnicate", "tract backend cannot load it"],
        ),
        (
            "class count",
            mutated(dir.path(), "classes", |m| {
                let dims = output_dims(m, "probs");
                dims[1].value =
                    Some(csra_onnx::pb::tensor_shape_proto::dimension::Value::DimValue(7));
            }),
            &["6 classes", "has 7"],
        ),
    ];
    for (case, model, needles) in cases {
        let info = edge().arg("info").arg(&model).output().unwrap();
        assert_refused(&format!("info, {case}"), &info, 1, needles);
        let ran = run(&["--model", s(&model), "--input", s(&dog)]);
        assert_refused(&format!("run, {case}"), &ran, 1, needles);
    }
}

#[test]
fn broken_manifests_profiles_and_model_files_name_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 4);
    let dog = dog();
    let manifest_text = std::fs::read_to_string(model.dir.join("model.manifest.json")).unwrap();

    // A 100000×100000 input: refused before anything is allocated.
    let huge = dir.path().join("huge");
    std::fs::create_dir(&huge).unwrap();
    std::fs::copy(&model.onnx, huge.join("model.onnx")).unwrap();
    let mut manifest: Value = serde_json::from_str(&manifest_text).unwrap();
    manifest["input"]["width"] = 100_000.into();
    manifest["input"]["height"] = 100_000.into();
    std::fs::write(huge.join("model.manifest.json"), manifest.to_string()).unwrap();
    let output = run(&["--model", s(&huge), "--input", s(&dog)]);
    assert_refused(
        "huge input",
        &output,
        1,
        &["model.manifest.json", "100000x100000", "re-export"],
    );

    // A labels file from another export.
    let stale = dir.path().join("stale");
    std::fs::create_dir(&stale).unwrap();
    std::fs::copy(&model.onnx, stale.join("model.onnx")).unwrap();
    std::fs::write(stale.join("model.manifest.json"), &manifest_text).unwrap();
    std::fs::write(
        stale.join("labels.txt"),
        "person\nbicycle\ncar\ndog\nhorse\ntraffic light\n",
    )
    .unwrap();
    let output = run(&["--model", s(&stale), "--input", s(&dog)]);
    assert_refused(
        "stale labels",
        &output,
        1,
        &["labels.txt", "\"horse\"", "re-export"],
    );

    // An .onnx with no manifest beside it.
    let lone = dir.path().join("lone.onnx");
    std::fs::copy(&model.onnx, &lone).unwrap();
    let output = run(&["--model", s(&lone), "--input", s(&dog)]);
    assert_refused(
        "no manifest",
        &output,
        1,
        &["lone.manifest.json", "csra-host export", "csra-edge graft"],
    );

    // A manifest that is not JSON, and an ONNX file that is not protobuf.
    let junk = dir.path().join("junk");
    std::fs::create_dir(&junk).unwrap();
    std::fs::write(
        junk.join("model.manifest.json"),
        "{\"format\": \"csra-manifest\",",
    )
    .unwrap();
    let output = run(&["--model", s(&junk), "--input", s(&dog)]);
    assert_refused("truncated manifest", &output, 1, &["model.manifest.json"]);
    let garbage = dir.path().join("garbage");
    std::fs::create_dir(&garbage).unwrap();
    std::fs::write(garbage.join("model.manifest.json"), &manifest_text).unwrap();
    std::fs::write(
        garbage.join("model.onnx"),
        b"\x08\x07not an onnx file at all",
    )
    .unwrap();
    let output = run(&["--model", s(&garbage), "--input", s(&dog)]);
    assert_refused("garbage onnx", &output, 1, &["model.onnx"]);

    // Profiles with absurd values.
    let profile = include_str!("../../../devices/x86-cpu.toml");
    for (from, to, needle) in [
        ("threads = 0", "threads = 100000", "threads = 100000"),
        (
            "input_size = 224",
            "input_size = 100000",
            "input_size = 100000",
        ),
        ("rate = 30", "rate = 0", "rate = 0"),
    ] {
        let path = dir.path().join("bad-profile.toml");
        std::fs::write(&path, profile.replace(from, to)).unwrap();
        let output = edge()
            .args([
                "--device",
                s(&path),
                "--model",
                s(&model.dir),
                "--input",
                s(&dog),
            ])
            .output()
            .unwrap();
        assert_refused(to, &output, 1, &["bad-profile.toml", needle]);
    }

    // A missing file is said once, not twice.
    let output = run(&[
        "--model",
        s(&model.dir),
        "--input",
        "/nonexistent/photo.jpg",
    ]);
    let err = stderr(&output);
    assert_refused("missing input", &output, 1, &["/nonexistent/photo.jpg"]);
    let missing_profile = run_profile("/nonexistent/profile.toml", &model.dir, &dog);
    let profile_err = stderr(&missing_profile);
    assert_refused(
        "missing profile",
        &missing_profile,
        1,
        &["/nonexistent/profile.toml"],
    );
    for text in [&err, &profile_err] {
        let os = "No such file or directory (os error 2)";
        assert!(text.matches(os).count() <= 1, "{text}");
    }
}

fn run_profile(profile: &str, model: &Path, input: &Path) -> Output {
    edge()
        .args([
            "--device",
            profile,
            "--model",
            s(model),
            "--input",
            s(input),
        ])
        .output()
        .unwrap()
}

#[test]
fn out_of_range_flag_values_are_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 5);
    let dog = dog();
    let base = ["--model", s(&model.dir), "--input", s(&dog)];
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let unwritable = file.join("attention");
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (
            vec!["--stats-interval", "2e19"],
            &["--stats-interval 20000000000000000000", "at most 86400"],
        ),
        (vec!["--stats-interval", "nan"], &["--stats-interval NaN"]),
        (vec!["--threads", "1000"], &["--threads 1000", "pass 1 to"]),
        (vec!["--threshold", "-1"], &["--threshold -1", "[0, 1]"]),
        (
            vec!["--hysteresis", "0.6"],
            &["--hysteresis 0.6", "lowest threshold", "never turn off"],
        ),
        (
            vec!["--threshold", "0.3", "--hysteresis", "0.3"],
            &["--hysteresis 0.3", "--threshold"],
        ),
        (
            vec!["--save-attention", s(&unwritable), "--attention-every", "0"],
            &["--attention-every 0"],
        ),
        (vec!["--frames", "0"], &["--frames 0"]),
        (
            vec!["--save-attention", s(&unwritable)],
            &["a-file/attention", "pass a folder you can write to"],
        ),
        (vec!["--ema", "-0.5"], &["--ema -0.5", "(0, 1]"]),
    ];
    for (extra, needles) in cases {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        let output = run(&args);
        assert_refused(&extra.join(" "), &output, 1, needles);
    }
    let output = edge()
        .args(["bench", "--threads", "0", s(&model.dir)])
        .output()
        .unwrap();
    assert_refused(
        "bench --threads 0",
        &output,
        1,
        &["--threads 0", "pass 1 to"],
    );
}

#[test]
fn an_mqtt_password_never_reaches_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 6);
    let dog = dog();
    for url in [
        "mqtt://user:s3cret-pw@127.0.0.1:1/topic",
        "mqtt://user:s3cret-pw@127.0.0.1:1/",
        "mqtts://user:s3cret-pw@127.0.0.1/topic",
    ] {
        let output = run(&["--model", s(&model.dir), "--input", s(&dog), "--mqtt", url]);
        assert_refused(url, &output, 1, &["--mqtt", "***"]);
        assert!(!stderr(&output).contains("s3cret"), "{}", stderr(&output));
    }
}

/// `> /dev/full`: every line is lost, and the run says so in its summary and exit code 3.
#[test]
fn results_that_cannot_be_written_are_counted_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 7);
    let full = File::options().write(true).open("/dev/full").unwrap();
    let output = edge()
        .args([
            "--device",
            "x86-cpu",
            "--threads",
            "1",
            "--model",
            s(&model.dir),
            "--input",
        ])
        .arg(common::photos_dir())
        .stdout(full)
        .output()
        .unwrap();
    assert_refused("/dev/full", &output, 3, &["result lines to stdout", "lost"]);
    let err = stderr(&output);
    let counts = err
        .lines()
        .filter(|l| l.contains("result line(s)"))
        .find_map(|l| l.split_once("stdout: ").map(|(_, rest)| rest.to_owned()))
        .unwrap_or_else(|| panic!("no stdout delivery line in\n{err}"));
    let numbers: Vec<u64> = counts
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(numbers.len(), 2, "{counts}");
    assert!(numbers[0] > 0 && numbers[0] == numbers[1], "{counts}");
}

/// An unusable attention folder is found at start; the bench measures every model it can and
/// names the one it cannot.
#[test]
fn bench_measures_the_good_models_and_names_the_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("heads-1");
    std::fs::create_dir(&good).unwrap();
    common::write_model(&good, 8);
    let broken = dir.path().join("heads-2");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("model.manifest.json"), "{}").unwrap();
    let output = edge()
        .args([
            "bench", "--json", "--device", "x86-cpu", "--runs", "2", "--warmup", "0",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_refused(
        "bench",
        &output,
        1,
        &["1 of 2 measurement(s) could not be made", "heads-2"],
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{stdout}");
    assert!(rows[0]["model"].as_str().unwrap().ends_with("heads-1"));
}

/// A non-UTF-8 file name is a file like any other.
#[test]
fn a_non_utf8_input_path_runs() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 9);
    let photo = dir.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9.jpg"));
    std::fs::copy(dog(), &photo).unwrap();
    let output = edge()
        .args([
            "--device",
            "x86-cpu",
            "--threads",
            "1",
            "--model",
            s(&model.dir),
            "--input",
        ])
        .arg(&photo)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(String::from_utf8(output.stdout).unwrap().lines().count(), 1);
}

/// A `/dev/null` camera: not a capture device, and the message says how to find one.
#[cfg(feature = "camera")]
#[test]
fn a_camera_that_is_not_a_camera_says_how_to_find_one() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 10);
    let output = run(&["--model", s(&model.dir), "--camera", "/dev/null"]);
    assert_refused(
        "/dev/null",
        &output,
        1,
        &["/dev/null", "not a V4L2", "csra-edge probe"],
    );
}

/// SIGTERM while the run is still starting (here: waiting for a broker that accepts the TCP
/// connection and never answers) exits at once with 0, instead of waiting the start-up out.
#[test]
fn a_signal_during_start_up_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 11);
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("mqtt://127.0.0.1:{}/t", silent.local_addr().unwrap().port());
    let mut child = edge()
        .args([
            "--device",
            "x86-cpu",
            "--threads",
            "1",
            "--loop",
            "--mqtt",
            &url,
        ])
        .args(["--model", s(&model.dir), "--input", s(&dog())])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // csra-edge is inside its connection wait once the broker's port has its connection.
    let (_connection, _) = silent.accept().unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = wait(&mut child, Duration::from_secs(30));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(exit.code(), Some(0), "{err}");
    assert!(err.contains("during start-up"), "{err}");
}

fn wait(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            return exit;
        }
        assert!(Instant::now() < deadline, "csra-edge did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lines that reached a reader are whole JSON even when the reader goes away mid-run.
#[test]
fn a_closed_pipe_ends_the_run_without_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::write_model(dir.path(), 12);
    let mut child = edge()
        .args([
            "--device",
            "x86-cpu",
            "--threads",
            "1",
            "--loop",
            "--model",
            s(&model.dir),
        ])
        .arg("--input")
        .arg(common::photos_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    serde_json::from_str::<Value>(&line).unwrap();
    drop(stdout);
    let exit = wait(&mut child, Duration::from_secs(30));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(exit.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
