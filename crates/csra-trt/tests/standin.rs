//! The Rust side driven end to end through a stand-in shim (tests/standin/csra_trt_standin.c,
//! compiled here with the system C compiler against the real shim/csra_trt.h): loading and the
//! ABI check, the engine cache, rebuilding after a failed deserialisation, running.
// Test helpers panic on failure by design: a failed set-up is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use csra_trt::{Calibration, Engine, Library, Options, Origin, Precision, TrtError};

fn standin(dir: &Path, defines: &[&str]) -> PathBuf {
    csra_test_support::trt_standin(dir, defines)
}

/// Log lines, captured from every test of this binary.
fn logs() -> &'static Mutex<Vec<String>> {
    static LOGS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    struct Capture;
    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            let line = format!("{} {}", record.level(), record.args());
            logs().lock().unwrap().push(line);
        }
        fn flush(&self) {}
    }
    static INSTALL: OnceLock<()> = OnceLock::new();
    INSTALL.get_or_init(|| {
        log::set_logger(&Capture).expect("no other logger in this test binary");
        log::set_max_level(log::LevelFilter::Info);
    });
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

fn logged_about(path: &Path) -> Vec<String> {
    let needle = path.display().to_string();
    logs()
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(&needle))
        .cloned()
        .collect()
}

/// A stand-in library, a fake model file and an engine-cache directory.
struct Setup {
    dir: tempfile::TempDir,
    library: Library,
    model: PathBuf,
}

fn setup() -> Setup {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let library = Library::load_from(&standin(dir.path(), &[])).unwrap();
    let model = dir.path().join("model.onnx");
    std::fs::write(
        &model,
        b"not really onnx, the stand-in only counts its bytes",
    )
    .unwrap();
    Setup {
        dir,
        library,
        model,
    }
}

fn engine_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".engine") || n.starts_with('.'))
        .collect();
    names.sort();
    names
}

#[test]
fn a_standin_with_another_abi_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Library::load_from(&standin(dir.path(), &["STANDIN_ABI=999"])).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, TrtError::Abi { .. }), "{text}");
    assert!(
        text.contains("its ABI version is 999, this csra-trt needs 1"),
        "{text}"
    );
    assert!(text.contains("rebuild csra-edge"), "{text}");
}

#[test]
fn a_machine_without_a_gpu_is_no_usable_gpu_with_cudas_reason() {
    let dir = tempfile::tempdir().unwrap();
    let err = Library::load_from(&standin(dir.path(), &["STANDIN_NO_GPU"])).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, TrtError::NoGpu(_)), "{text}");
    assert!(text.contains("cudaErrorNoDevice"), "{text}");
    assert!(text.contains("--backend tract"), "{text}");
}

#[test]
fn engines_can_move_to_another_thread_and_libraries_be_shared() {
    // Checked by the compiler: csra-edge's Backend is Send, and this test stops compiling if
    // an Engine or a Library ever stops being so.
    fn send<T: Send>() {}
    fn share<T: Send + Sync>() {}
    send::<Engine>();
    share::<Library>();
}

#[test]
fn the_library_reports_versions_and_the_device() {
    let s = setup();
    let v = s.library.versions();
    assert_eq!(v.tensorrt.to_string(), "10.3.0");
    assert_eq!(v.cuda_runtime.to_string(), "12.6.0");
    let device = s.library.device(0).unwrap();
    assert_eq!(device.name, "Stand-in Orin");
    assert_eq!(device.compute, (8, 7));
    assert!(device.zero_copy && device.fast_fp16 && device.fast_int8);
    assert_eq!(device.dla_cores, 2);
    assert!(s.library.device(1).is_err());
}

#[test]
fn build_cache_reload_and_rebuild_after_a_corrupt_engine() {
    let s = setup();
    let cache = s.dir.path().join("engines");
    let mut options = Options::new(&cache);
    options.precision = Precision::Fp16;

    // First open: built, written atomically under the key's name, timing cache written.
    let mut engine = Engine::open(&s.library, &s.model, &options).unwrap();
    assert_eq!(engine.origin(), &Origin::Built);
    let path = engine.path().to_path_buf();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let sha = csra_trt::sha256_hex(&std::fs::read(&s.model).unwrap());
    assert_eq!(
        name,
        format!("model-{sha}-trt10.3.0-stand_in_orin-sm87-gpu-fp16.engine")
    );
    assert_eq!(engine_files(&cache), [name], "no temporary file left");
    let timing = cache.join("timing-trt10.3.0-stand_in_orin-sm87.cache");
    assert_eq!(
        std::fs::read_to_string(&timing).unwrap(),
        "stand-in timings"
    );
    assert!(engine.describe().contains("fp16 on Stand-in Orin"));

    // Running: the stand-in's logits are (i + 1) * sum(input); its n-th run takes 0.5 n ms.
    assert_eq!(engine.input().shape, [1, 3, 4, 4]);
    let input: Vec<f32> = (0..48).map(|i| i as f32 / 48.0).collect();
    let sum: f32 = input.iter().sum();
    let out = engine.run(&input).unwrap();
    let logits = out.get("logits").unwrap();
    assert_eq!(logits.shape, [1, 5]);
    for (i, &l) in logits.data.iter().enumerate() {
        assert!((l - (i + 1) as f32 * sum).abs() < 1e-4, "{i}: {l}");
    }
    let probs = &out.get("probs").unwrap().data;
    assert!((probs[0] - sum / (1.0 + sum)).abs() < 1e-6);
    assert_eq!(out.network_ms, 0.5);
    assert_eq!(engine.run(&input).unwrap().network_ms, 1.0);
    let short = engine.run(&input[..47]).unwrap_err().to_string();
    assert!(short.contains("47 values, the engine takes 48"), "{short}");
    drop(engine);

    // Second open: from the cache, nothing built.
    let engine = Engine::open(&s.library, &s.model, &options).unwrap();
    assert_eq!(engine.origin(), &Origin::Cache);
    drop(engine);

    // A corrupt engine file: deleted, rebuilt, logged, and valid again afterwards.
    std::fs::write(&path, b"garbage").unwrap();
    let engine = Engine::open(&s.library, &s.model, &options).unwrap();
    match engine.origin() {
        Origin::Rebuilt { reason } => assert!(reason.contains("magicTagRead"), "{reason}"),
        other => panic!("expected a rebuild, got {other:?}"),
    }
    assert!(std::fs::read(&path).unwrap().starts_with(b"STANDIN-PLAN"));
    let lines = logged_about(&path);
    assert!(
        lines.iter().any(|l| l.starts_with("WARN")
            && l.contains("cannot be deserialized")
            && l.contains("deleting it and rebuilding")),
        "{lines:#?}"
    );
    drop(engine);
    assert_eq!(
        Engine::open(&s.library, &s.model, &options)
            .unwrap()
            .origin(),
        &Origin::Cache
    );
}

#[test]
fn another_precision_or_dla_core_is_another_engine_file() {
    let s = setup();
    let cache = s.dir.path().join("engines");
    let mut options = Options::new(&cache);
    let fp32 = Engine::open(&s.library, &s.model, &options).unwrap();
    options.precision = Precision::Fp16;
    options.dla_core = Some(1);
    let dla = Engine::open(&s.library, &s.model, &options).unwrap();
    assert_eq!(dla.origin(), &Origin::Built);
    assert_ne!(fp32.path(), dla.path());
    assert!(dla.path().to_string_lossy().ends_with("-dla1-fp16.engine"));
    assert!(dla.describe().contains("DLA core 1 with GPU fallback"));
    assert_eq!(engine_files(&cache).len(), 2);
}

#[test]
fn int8_writes_its_calibration_cache_and_a_missing_dla_core_is_refused_before_building() {
    let s = setup();
    let cache = s.dir.path().join("engines");
    let calibration_cache = s.dir.path().join("calibration.cache");
    let mut options = Options::new(&cache);
    options.precision = Precision::Int8;
    options.calibration = Some(Calibration {
        data: vec![0.25; 96],
        cache: calibration_cache.clone(),
    });
    Engine::open(&s.library, &s.model, &options).unwrap();
    assert_eq!(
        std::fs::read_to_string(&calibration_cache).unwrap(),
        "calibrated on 96 values"
    );

    options.dla_core = Some(2);
    let err = Engine::open(&s.library, &s.model, &options).unwrap_err();
    assert!(
        err.to_string().contains("has 2 DLA cores, so no core 2"),
        "{err}"
    );
}

#[test]
fn a_missing_model_names_the_file() {
    let s = setup();
    let missing = s.dir.path().join("absent.onnx");
    let err = Engine::open(&s.library, &missing, &Options::new(s.dir.path())).unwrap_err();
    assert!(matches!(err, TrtError::Io { .. }));
    assert!(err.to_string().contains("absent.onnx"), "{err}");
}

#[test]
fn a_parser_error_names_the_model_and_the_way_out() {
    let s = setup();
    let empty = s.dir.path().join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    let err = Engine::open(&s.library, &empty, &Options::new(s.dir.path())).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, TrtError::Parse { .. }), "{text}");
    assert!(text.contains("empty.onnx: node 0: empty model"), "{text}");
}
