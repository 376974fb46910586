//! The MQTT sink against a real `mosquitto` broker started on a free loopback port, with a
//! real subscriber (a second rumqttc client) checking that every line arrives intact and in
//! order, and that the sink reconnects after the broker restarts.
//!
//! Needs `mosquitto` and `mosquitto_passwd` on PATH (`scripts/test.sh` installs them); without
//! them the tests fail, saying so.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use csra_edge::sink::mqtt::{MqttSink, QUEUE_CAPACITY};
use csra_edge::sink::Sink;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

/// A mosquitto process listening on 127.0.0.1 only; killed on drop.
struct Broker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// Starts a broker; fails the test when mosquitto is not installed.
    fn start(port: Option<u16>) -> Broker {
        Broker::start_with(port, None)
    }

    /// Starts a broker that accepts only `login` (user, password) when given.
    fn start_with(port: Option<u16>, login: Option<(&str, &str)>) -> Broker {
        let port = port.unwrap_or_else(free_port);
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("mosquitto.conf");
        let mut settings = format!("listener {port} 127.0.0.1\npersistence false\n");
        match login {
            None => settings.push_str("allow_anonymous true\n"),
            Some((user, password)) => {
                let passwords = dir.path().join("passwords");
                let made = Command::new("mosquitto_passwd")
                    .arg("-c")
                    .arg("-b")
                    .arg(&passwords)
                    .args([user, password])
                    .status();
                match made {
                    Ok(status) => assert!(status.success(), "mosquitto_passwd failed"),
                    Err(_) => csra_test_support::missing_tool(
                        "mosquitto_passwd",
                        "install it with `apt-get install mosquitto`, or run ./scripts/test.sh, which does",
                    ),
                }
                settings.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\n",
                    passwords.display()
                ));
            }
        }
        std::fs::write(&config, settings).expect("writing the broker config");
        let child = match Command::new("mosquitto")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => csra_test_support::missing_tool(
                "the mosquitto broker",
                "install it with `apt-get install mosquitto mosquitto-clients`, or run ./scripts/test.sh, \
                 which does",
            ),
            Err(e) => panic!("starting mosquitto: {e}"),
        };
        let broker = Broker {
            child,
            port,
            _dir: dir,
        };
        broker.wait_listening(Path::new(&config));
        broker
    }

    fn wait_listening(&self, config: &Path) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto -c {} is not listening on port {}",
                config.display(),
                self.port
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self, topic: &str) -> String {
        format!("mqtt://127.0.0.1:{}/{topic}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("local address").port()
}

/// A subscriber on `topic`: returns once the broker has confirmed the subscription, with a
/// channel of the payloads received.
fn subscribe(port: u16, topic: &str) -> Receiver<Vec<u8>> {
    let options = MqttOptions::new(format!("csra-test-sub-{port}"), "127.0.0.1", port);
    let (client, mut connection) = Client::new(options, 10);
    client
        .subscribe(topic, QoS::AtLeastOnce)
        .expect("subscribing");
    let (payloads, received) = mpsc::channel();
    let (subscribed, confirmed) = mpsc::channel();
    thread::spawn(move || {
        let _client = client; // dropping it would end the connection
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = subscribed.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if payloads.send(p.payload.to_vec()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    confirmed
        .recv_timeout(Duration::from_secs(5))
        .expect("the subscription was not confirmed");
    received
}

fn result_line(frame: u64) -> String {
    serde_json::json!({
        "frame": frame,
        "labels": [{"name": "person", "p": 0.93}, {"name": "café ☕", "p": 0.5}],
        "scores": vec![0.125f32; 80],
    })
    .to_string()
}

fn receive(received: &Receiver<Vec<u8>>, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let payload = received
                .recv_timeout(Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("message {i} of {count} did not arrive: {e}"));
            String::from_utf8(payload).expect("UTF-8 payload")
        })
        .collect()
}

#[test]
fn published_lines_reach_a_subscriber_intact_and_in_order() {
    let broker = Broker::start(None);
    let received = subscribe(broker.port, "fleet/cam-1");
    let mut sink = MqttSink::connect(&broker.url("fleet/cam-1")).unwrap();
    let lines: Vec<String> = (0..50).map(result_line).collect();
    let started = Instant::now();
    for line in &lines {
        sink.send(line).unwrap();
    }
    sink.flush().unwrap();
    eprintln!(
        "50 lines published and acknowledged in {:?}",
        started.elapsed()
    );
    assert_eq!(receive(&received, lines.len()), lines);
    assert_eq!(sink.dropped(), 0);
}

#[test]
fn the_sink_reconnects_after_the_broker_restarts() {
    let broker = Broker::start(None);
    let port = broker.port;
    let mut sink = MqttSink::connect(&broker.url("csra")).unwrap();
    sink.send(&result_line(0)).unwrap();
    sink.flush().unwrap();

    drop(broker);
    let deadline = Instant::now() + Duration::from_secs(5);
    while sink.is_connected() {
        assert!(
            Instant::now() < deadline,
            "the sink did not notice the broker left"
        );
        thread::sleep(Duration::from_millis(10));
    }
    // While the broker is away, publishing queues without blocking the pipeline.
    let started = Instant::now();
    sink.send(&result_line(1)).unwrap();
    assert!(started.elapsed() < Duration::from_millis(100));

    let broker = Broker::start(Some(port));
    let received = subscribe(broker.port, "csra");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sink.is_connected() {
        assert!(Instant::now() < deadline, "the sink did not reconnect");
        thread::sleep(Duration::from_millis(20));
    }
    let lines: Vec<String> = (2..12).map(result_line).collect();
    for line in &lines {
        sink.send(line).unwrap();
    }
    sink.flush().unwrap();
    // Line 1 may or may not reach this subscriber (it can be published before the
    // subscription); the lines sent after the reconnect must all arrive.
    let mut got = receive(&received, lines.len());
    if got.first() == Some(&result_line(1)) {
        got.remove(0);
        got.extend(receive(&received, 1));
    }
    assert_eq!(got, lines);
}

#[test]
fn a_broker_with_a_login_accepts_the_url_credentials_only() {
    let broker = Broker::start_with(None, Some(("cam-7", "s3/cr@t")));
    // The password's `/` and `@` percent-encoded, as a URL writes them.
    let url = format!("mqtt://cam-7:s3%2Fcr%40t@127.0.0.1:{}/csra", broker.port);
    let mut sink = MqttSink::connect(&url).unwrap();
    sink.send(&result_line(0)).unwrap();
    sink.flush().unwrap();

    let wrong = format!("mqtt://cam-7:guess@127.0.0.1:{}/csra", broker.port);
    let err = MqttSink::connect(&wrong)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("the broker refused the login (NotAuthorized); check the user and password"),
        "{err}"
    );
    assert!(!err.contains("guess"), "the password leaked: {err}");
}

#[test]
fn flush_reports_lines_the_broker_never_acknowledged() {
    let broker = Broker::start(None);
    let mut sink = MqttSink::connect(&broker.url("csra")).unwrap();
    drop(broker);
    while sink.is_connected() {
        thread::sleep(Duration::from_millis(10));
    }
    sink.send(&result_line(0)).unwrap();
    let err = sink
        .flush()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("1 of 1 results not acknowledged within 5s"),
        "{err}"
    );
    let delivery = sink.delivery();
    assert_eq!((delivery.lines, delivery.lost), (1, 1));
}

/// SIGINT while the broker is down and the queue overflows: the run still ends with its
/// summary, every sink is flushed, and the lines that never reached the broker are counted
/// and make the exit code 3.
#[test]
fn a_signal_while_the_broker_is_down_reports_the_lost_lines_and_exits_3() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = common::write_model(dir.path(), 31);
    let broker = Broker::start(None);
    let mut child = Command::new(env!("CARGO_BIN_EXE_csra-edge"))
        .env("RUST_LOG", "info")
        .args(["--device", "x86-cpu", "--threads", "1", "--loop", "--mqtt"])
        .arg(broker.url("csra"))
        .arg("--model")
        .arg(&model.dir)
        .arg("--input")
        .arg(common::photos_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting csra-edge");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut log = String::new();
    let mut wait_for = |needle: &str, log: &mut String| loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).expect("reading the log") > 0,
            "csra-edge ended before {needle:?}:\n{log}"
        );
        log.push_str(&line);
        if line.contains(needle) {
            break;
        }
    };
    wait_for("MQTT: connected", &mut log);
    drop(broker);
    wait_for("dropped so far", &mut log);
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    stderr.read_to_string(&mut log).expect("reading the log");
    let exit = child.wait().expect("waiting for csra-edge");
    assert_eq!(exit.code(), Some(3), "{log}");
    assert!(log.contains("done (Stopped)"), "{log}");
    let delivery = log
        .lines()
        .find(|l| l.contains("mqtt://127.0.0.1") && l.contains("result line(s)"))
        .unwrap_or_else(|| panic!("no MQTT delivery line in\n{log}"));
    let numbers: Vec<u64> = delivery
        .rsplit_once("]: ")
        .map_or(delivery, |(_, rest)| rest)
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let (lines, lost) = (numbers[numbers.len() - 2], numbers[numbers.len() - 1]);
    assert!(
        lost > QUEUE_CAPACITY as u64 / 2 && lost <= lines,
        "{delivery}"
    );
    assert!(log.contains("the run finished but lost"), "{log}");
}
