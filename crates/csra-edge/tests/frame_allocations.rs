//! Heap allocations per frame in steady state, counted by this test binary's global allocator,
//! on the shipped model and 720p MJPEG and YUYV camera frames made from a real photo. Not zero:
//! the counts are printed (`--nocapture`) and bounded, so a regression shows, and README
//! "Speed" says where they come from.

#![allow(clippy::unwrap_used)]
// A counting global allocator is the one way to see every allocation; it only forwards.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use csra_edge::backend::{Backend, TractBackend};
use csra_edge::model::ModelFiles;
use csra_edge::pipeline::{Pipeline, PipelineOptions};
use csra_edge::postprocess::{PostprocessConfig, Postprocessor};
use csra_edge::preprocess::Preprocessor;
use csra_edge::source::synthetic::{camera_frame, CameraCodec, RepeatedFrame};
use csra_edge::source::Frame;
use csra_image::Decoder;
use csra_test_support::{data_dir, workspace_root};

/// The system allocator, counting every allocation and reallocation of the process.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator, with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations `f` makes, per call, over `runs` calls.
fn allocations_per_call(runs: u64, mut f: impl FnMut()) -> f64 {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..runs {
        f();
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / runs as f64
}

/// Frames timed after the warm-up; tract's first runs size its scratch buffers.
const RUNS: u64 = 20;
const WARMUP: usize = 3;

// One test in this binary, so no other test's allocations are counted.
#[test]
fn allocations_per_frame_stay_within_their_known_sources() {
    let model =
        ModelFiles::open(&workspace_root().join("models/mobilenet_v2-coco-voc-mini")).unwrap();
    let photo = data_dir().join("photos/city_1.jpg");
    let mut backend = TractBackend::load(&model, 1).unwrap();
    let mut post = Postprocessor::new(PostprocessConfig::from_manifest(&model.manifest, None));
    for codec in [CameraCodec::Mjpeg, CameraCodec::Yuyv] {
        let frame = camera_frame(&photo, codec, 1280, 720).unwrap();
        let mut preprocessor = Preprocessor::new(&model.manifest);
        let mut input = vec![0.0; preprocessor.input_len()];
        for _ in 0..WARMUP {
            preprocessor.run(&frame, &mut input).unwrap();
            post.update(&backend.run(&input).unwrap().probs);
        }
        let mut decoder = Decoder::new();
        decoder.decode(frame.raw()).unwrap();
        let decode = allocations_per_call(RUNS, || {
            decoder.decode(frame.raw()).unwrap();
        });
        let preprocess =
            allocations_per_call(RUNS, || preprocessor.run(&frame, &mut input).unwrap());
        let mut probs = Vec::new();
        let network = allocations_per_call(RUNS, || probs = backend.run(&input).unwrap().probs);
        let postprocess = allocations_per_call(RUNS, || {
            post.update(&probs);
        });
        println!(
            "{codec:?}: allocations per frame: decode {decode}, preprocess (decode, resize, \
             normalise) {preprocess}, network {network}, postprocess {postprocess}"
        );
        // Decoding reuses its RGB buffer; zune-jpeg's per-picture decoder state is a few.
        assert!(
            decode <= 8.0,
            "{codec:?}: decoding allocates {decode} per frame"
        );
        // fast_image_resize recomputes its filter coefficients on every call, a vector per
        // output row and column; anything beyond that is ours.
        let (w, h) = (model.manifest.input.width, model.manifest.input.height);
        let resize_bound = decode + f64::from(w + h) + 8.0;
        assert!(
            preprocess <= resize_bound,
            "{codec:?}: preprocessing allocates {preprocess}"
        );
        // The post-processor reuses its decision and class sets.
        assert_eq!(
            postprocess, 0.0,
            "{codec:?}: post-processing allocates {postprocess} per frame"
        );
        // tract keeps one state per backend but allocates its intermediate tensors on every
        // run (688 on the shipped MobileNetV2); the bound catches a jump.
        assert!(
            network < 1000.0,
            "{codec:?}: the network allocates {network} per frame"
        );
    }
    // The whole run loop, result lines included, in turn and with prefetch: the hand-off
    // between the worker and the network (slots, channels) allocates nothing per frame.
    let frame = camera_frame(&photo, CameraCodec::Mjpeg, 1280, 720).unwrap();
    let [in_turn, ahead] =
        [false, true].map(|prefetch| run_loop_allocations(&model, &frame, prefetch));
    println!("run loop: allocations per frame: in turn {in_turn}, with prefetch {ahead}");
    assert!(
        ahead <= in_turn + 1.0,
        "prefetch allocates {ahead} per frame, in turn {in_turn}"
    );
}

/// Allocations per frame of [`Pipeline::run`] over copies of `frame` (no sinks), from the
/// difference between a long and a short run, so the per-run set-up cancels out.
fn run_loop_allocations(model: &ModelFiles, frame: &Frame, prefetch: bool) -> f64 {
    let backend = Box::new(TractBackend::load(model, 1).unwrap());
    let post = PostprocessConfig::from_manifest(&model.manifest, None);
    let options = PipelineOptions {
        prefetch,
        ..PipelineOptions::default()
    };
    let mut pipeline = Pipeline::new(&model.manifest, backend, post, options).unwrap();
    let mut run = |frames: u64| {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let mut stream = RepeatedFrame::new(frame.clone(), frames);
        let summary = pipeline
            .run(&mut stream, &mut [], &AtomicBool::new(false))
            .unwrap();
        assert_eq!(summary.frames, frames);
        ALLOCATIONS.load(Ordering::Relaxed) - before
    };
    run(WARMUP as u64);
    let (short, long) = (run(RUNS / 2), run(RUNS / 2 + RUNS));
    (long - short) as f64 / RUNS as f64
}
