//! `csra-edge-soak`: the reliability soak benchmark (not a test). The fake camera at 30 fps
//! through the whole pipeline (capture thread, decode, network, post-processing) with every
//! result published to a real local `mosquitto`, for an hour or more, while the broker is
//! restarted and the camera unplugged every few minutes.
//!
//! Every `--window` seconds it prints one JSON line: RSS, the live heap (now and the window's
//! peak, from a counting allocator), latency percentiles of that window, frames, bad frames
//! and what the stream counted (dropped, reconnects). RSS alone cannot tell a leak from the
//! allocator keeping pages a burst once needed; the live heap can. At the end it prints
//! the summary: lines handed to the MQTT sink, lost by its own count, and received by an
//! independent subscriber, so "nothing lost that the counters do not show" is checked:
//! `received (distinct) ≥ lines − lost`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use csra_edge::backend::TractBackend;
use csra_edge::model::ModelFiles;
use csra_edge::pipeline::{nearest_rank, Pipeline, PipelineOptions};
use csra_edge::postprocess::PostprocessConfig;
use csra_edge::sink::mqtt::MqttSink;
use csra_edge::sink::{Delivery, Sink, SinkError};
use csra_edge::source::capture::{Capture, ReconnectPolicy};
use csra_edge::source::fake::{FakeCamera, FakeFormat, Faults, Unplug};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};

/// The system allocator, counting the bytes allocated and not yet freed.
struct CountingAllocator;

/// Heap bytes allocated and not yet freed.
static HEAP_LIVE: AtomicUsize = AtomicUsize::new(0);
/// The most `HEAP_LIVE` has been since the last report.
static HEAP_PEAK: AtomicUsize = AtomicUsize::new(0);

impl CountingAllocator {
    fn grew(by: usize) {
        let live = HEAP_LIVE.fetch_add(by, Ordering::Relaxed) + by;
        HEAP_PEAK.fetch_max(live, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed to `System` unchanged; the counters are only arithmetic on
// the sizes of the blocks that `System` handed out or took back.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is `System.alloc`'s.
        let block = unsafe { System.alloc(layout) };
        if !block.is_null() {
            Self::grew(layout.size());
        }
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let block = unsafe { System.alloc_zeroed(layout) };
        if !block.is_null() {
            Self::grew(layout.size());
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: `block` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(block, layout) };
        HEAP_LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `block` came from `System` with `layout`, as `realloc` requires.
        let moved = unsafe { System.realloc(block, layout, new_size) };
        if !moved.is_null() {
            HEAP_LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            Self::grew(new_size);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Bytes as MiB, for the report lines.
fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The soak's settings.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The model folder [default: the shipped model].
    #[arg(long)]
    model: Option<PathBuf>,
    /// Photos the fake camera shows in turn.
    #[arg(long, required = true, num_args = 1..)]
    photos: Vec<PathBuf>,
    /// Length of the soak in minutes.
    #[arg(long, default_value_t = 60.0)]
    minutes: f64,
    /// Camera frames per second.
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    /// Seconds between camera unplugs (each lasts 2 s).
    #[arg(long, default_value_t = 180)]
    unplug_every: u64,
    /// Seconds between broker restarts (each down for 5 s).
    #[arg(long, default_value_t = 240)]
    broker_every: u64,
    /// Seconds per report window.
    #[arg(long, default_value_t = 300)]
    window: u64,
    /// Inference threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", csra_core::error_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// What the pipeline's sinks saw, shared with the reporting thread.
#[derive(Default)]
struct Window {
    latencies: Vec<f64>,
    frames: u64,
}

/// The one field of a result line the soak reads; serde skips the rest without building it.
#[derive(serde::Deserialize)]
struct TimedLine {
    timings_ms: Total,
}

/// A line's `timings_ms.total`.
#[derive(serde::Deserialize)]
struct Total {
    total: f64,
}

/// Forwards to the MQTT sink and keeps each line's capture-to-result latency.
struct Recording {
    inner: MqttSink,
    window: Arc<Mutex<Window>>,
}

impl Sink for Recording {
    fn send(&mut self, line: &str) -> Result<(), SinkError> {
        if let Ok(timed) = serde_json::from_str::<TimedLine>(line) {
            let total = timed.timings_ms.total;
            let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
            window.latencies.push(total);
            window.frames += 1;
        }
        self.inner.send(line)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.inner.flush()
    }

    fn delivery(&self) -> Delivery {
        self.inner.delivery()
    }
}

fn run(args: &Args) -> Result<()> {
    let port = free_port()?;
    let dir = std::env::temp_dir().join(format!("csra-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating {} for the broker", dir.display()))?;
    let mut broker = Broker::start(port, &dir)?;
    let received = subscribe(port, camera_frames(args));
    let model = ModelFiles::locate(args.model.as_deref())?;
    let backend = Box::new(TractBackend::load(&model, args.threads)?);
    let options = PipelineOptions {
        stats_every: Duration::from_secs(args.window),
        ..PipelineOptions::default()
    };
    let post = PostprocessConfig::from_manifest(&model.manifest, None);
    let mut pipeline = Pipeline::new(&model.manifest, backend, post, options)?;
    let camera = camera(args)?;
    let delivered = camera.delivered_counter();
    let mut stream = Capture::spawn(Box::new(camera), ReconnectPolicy::default());
    let window = Arc::new(Mutex::new(Window::default()));
    let mqtt = MqttSink::connect(&format!("mqtt://127.0.0.1:{port}/soak"))?;
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(Recording {
        inner: mqtt,
        window: Arc::clone(&window),
    })];
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let reporter = {
        let stop = Arc::clone(&stop);
        let window = Arc::clone(&window);
        let (length, every, restart) = (
            Duration::from_secs_f64(args.minutes * 60.0),
            Duration::from_secs(args.window),
            Duration::from_secs(args.broker_every),
        );
        thread::spawn(move || {
            let mut restarts = 0;
            let mut next_report = start + every;
            let mut next_restart = start + restart;
            while start.elapsed() < length {
                thread::sleep(Duration::from_millis(200));
                if Instant::now() >= next_restart {
                    broker.restart(Duration::from_secs(5));
                    restarts += 1;
                    next_restart += restart;
                }
                if Instant::now() >= next_report {
                    report_window(start, &window, &delivered, restarts);
                    next_report += every;
                }
            }
            stop.store(true, Ordering::SeqCst);
            (broker, restarts)
        })
    };
    let summary = pipeline.run(&mut stream, &mut sinks, &stop)?;
    let (broker, restarts) = reporter
        .join()
        .map_err(|_| anyhow::anyhow!("the reporting thread panicked"))?;
    // The subscriber gets what is still in flight.
    thread::sleep(Duration::from_secs(3));
    drop(broker);
    let received = received
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .distinct;
    let mqtt = &summary.sinks[0];
    let line = json!({
        "summary": true,
        "minutes": start.elapsed().as_secs_f64() / 60.0,
        "frames": summary.frames,
        "bad_frames": summary.bad_frames,
        "dropped": summary.stream.dropped,
        "reconnects": summary.stream.reconnects,
        "corrupt": summary.stream.corrupt,
        "source_errors": summary.stream.source_errors,
        "broker_restarts": restarts,
        "mqtt_lines": mqtt.lines,
        "mqtt_lost": mqtt.lost,
        "received_distinct": received,
        "rss_mib": rss_mib(),
        "heap_live_mib": mib(HEAP_LIVE.load(Ordering::Relaxed)),
        "latency_p50_ms": summary.latency_p50_ms,
        "latency_p99_ms": summary.latency_p99_ms,
    });
    println!("{line}");
    let accounted = mqtt.lines - mqtt.lost;
    if received < accounted {
        bail!(
            "{received} lines reached the subscriber but the sink counts {accounted} delivered: {} lost without a count",
            accounted - received
        );
    }
    Ok(())
}

/// How many frames the camera shows in the soak's length.
fn camera_frames(args: &Args) -> u64 {
    (args.minutes * 60.0 * args.fps) as u64
}

/// The fake camera with an unplug every `--unplug-every` seconds and a corrupt frame every
/// 100.
fn camera(args: &Args) -> Result<FakeCamera> {
    let total = camera_frames(args);
    let every = (args.unplug_every as f64 * args.fps) as u64;
    let unplugs = (1..)
        .map(|i| i * every.max(1))
        .take_while(|&frame| frame < total)
        .map(|at_frame| Unplug {
            at_frame,
            duration: Duration::from_secs(2),
        })
        .collect();
    let faults = Faults {
        truncate: (0..total).step_by(100).skip(1).collect(),
        unplugs,
        ..Faults::default()
    };
    Ok(FakeCamera::new(&args.photos, FakeFormat::Mjpeg, 1280, 720, args.fps)?.with_faults(faults))
}

fn report_window(start: Instant, window: &Mutex<Window>, delivered: &AtomicU64, restarts: u32) {
    let mut window = window.lock().unwrap_or_else(PoisonError::into_inner);
    let mut latencies = std::mem::take(&mut window.latencies);
    let frames = std::mem::take(&mut window.frames);
    drop(window);
    latencies.sort_by(f64::total_cmp);
    let line = json!({
        "minute": start.elapsed().as_secs_f64() / 60.0,
        "rss_mib": rss_mib(),
        "heap_live_mib": mib(HEAP_LIVE.load(Ordering::Relaxed)),
        "heap_peak_mib": mib(HEAP_PEAK.swap(HEAP_LIVE.load(Ordering::Relaxed), Ordering::Relaxed)),
        "frames": frames,
        "camera_frames": delivered.load(Ordering::Relaxed),
        "latency_p50_ms": nearest_rank(&latencies, 0.5),
        "latency_p99_ms": nearest_rank(&latencies, 0.99),
        "latency_max_ms": latencies.last(),
        "broker_restarts": restarts,
    });
    println!("{line}");
}

/// This process's resident memory in MiB, from `/proc/self/status`.
fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A mosquitto on 127.0.0.1 that can be restarted on the same port.
struct Broker {
    child: Child,
    config: PathBuf,
    port: u16,
}

impl Broker {
    fn start(port: u16, dir: &std::path::Path) -> Result<Broker> {
        let config = dir.join("mosquitto.conf");
        std::fs::write(
            &config,
            // Persistent, so the subscriber's session and the messages queued for it survive
            // a restart, as on a real broker.
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n",
                dir.display()
            ),
        )?;
        let child = spawn_mosquitto(&config)?;
        let broker = Broker {
            child,
            config,
            port,
        };
        broker.wait_listening();
        Ok(broker)
    }

    /// Stops the broker the way a service manager does (SIGTERM: it saves its sessions),
    /// waits `down`, and starts it again.
    fn restart(&mut self, down: Duration) {
        let stopped = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        if !stopped.is_ok_and(|s| s.success()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        thread::sleep(down);
        match spawn_mosquitto(&self.config) {
            Ok(child) => self.child = child,
            Err(error) => log::error!("restarting mosquitto: {error:#}"),
        }
        self.wait_listening();
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_mosquitto(config: &std::path::Path) -> Result<Child> {
    Command::new("mosquitto")
        .arg("-c")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting mosquitto (apt-get install mosquitto)")
}

/// The distinct frame numbers a subscriber received, as a bitmap sized for the whole soak
/// up front, so the harness's own memory does not grow with the run it measures.
struct Received {
    seen: Vec<u64>,
    distinct: u64,
}

impl Received {
    fn with_room_for(frames: u64) -> Received {
        Received {
            seen: vec![0; frames.div_ceil(64) as usize + 1],
            distinct: 0,
        }
    }

    fn insert(&mut self, frame: u64) {
        let (word, bit) = ((frame / 64) as usize, frame % 64);
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) == 0 {
            self.seen[word] |= 1 << bit;
            self.distinct += 1;
        }
    }
}

/// A subscriber that stays subscribed across broker restarts and counts the distinct frame
/// numbers it received.
fn subscribe(port: u16, frames: u64) -> Arc<Mutex<Received>> {
    let received = Arc::new(Mutex::new(Received::with_room_for(frames)));
    let seen = Arc::clone(&received);
    let mut options = MqttOptions::new("csra-soak-subscriber", "127.0.0.1", port);
    options
        .set_keep_alive(Duration::from_secs(5))
        .set_clean_session(false);
    let (client, mut connection) = Client::new(options, 100);
    thread::spawn(move || {
        for event in connection.iter() {
            match event {
                // A restarted broker has no sessions: subscribe on every connection.
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.try_subscribe("soak", QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let frame = serde_json::from_slice::<Value>(&publish.payload)
                        .ok()
                        .and_then(|v| v["frame"].as_u64());
                    if let Some(frame) = frame {
                        seen.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(frame);
                    }
                }
                Ok(_) => {}
                Err(_) => thread::sleep(Duration::from_millis(200)),
            }
        }
    });
    received
}
