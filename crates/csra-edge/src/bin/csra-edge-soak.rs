//! `csra-edge-soak`: the reliability soak benchmark (not a test). The fake camera at 30 fps
//! through the whole pipeline (capture thread, decode, network, post-processing) with every
//! result published to a real local `mosquitto`, for an hour or more, while the broker is
//! restarted and the camera unplugged every few minutes.
//!
//! Every `--window` seconds it prints one JSON line: RSS, latency percentiles of that window,
//! frames, bad frames and what the stream counted (dropped, reconnects). At the end it prints
//! the summary: lines handed to the MQTT sink, lost by its own count, and received by an
//! independent subscriber, so "nothing lost that the counters do not show" is checked:
//! `received (distinct) ≥ lines − lost`.

use std::collections::HashSet;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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

/// Forwards to the MQTT sink and keeps each line's capture-to-result latency.
struct Recording {
    inner: MqttSink,
    window: Arc<Mutex<Window>>,
}

impl Sink for Recording {
    fn send(&mut self, line: &str) -> Result<(), SinkError> {
        if let Ok(value) = serde_json::from_str::<Value>(line) {
            let total = value["timings_ms"]["total"].as_f64().unwrap_or(f64::NAN);
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
    let received = subscribe(port);
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
    let received = received.lock().unwrap_or_else(PoisonError::into_inner);
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
        "received_distinct": received.len(),
        "rss_mib": rss_mib(),
        "latency_p50_ms": summary.latency_p50_ms,
        "latency_p99_ms": summary.latency_p99_ms,
    });
    println!("{line}");
    let accounted = mqtt.lines - mqtt.lost;
    if (received.len() as u64) < accounted {
        bail!(
            "{} lines reached the subscriber but the sink counts {accounted} delivered: {} lost without a count",
            received.len(),
            accounted - received.len() as u64
        );
    }
    Ok(())
}

/// The fake camera with an unplug every `--unplug-every` seconds and a corrupt frame every
/// 100.
fn camera(args: &Args) -> Result<FakeCamera> {
    let total = (args.minutes * 60.0 * args.fps) as u64;
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

/// A subscriber that stays subscribed across broker restarts and keeps the distinct frame
/// numbers it received.
fn subscribe(port: u16) -> Arc<Mutex<HashSet<u64>>> {
    let frames = Arc::new(Mutex::new(HashSet::new()));
    let seen = Arc::clone(&frames);
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
    frames
}
