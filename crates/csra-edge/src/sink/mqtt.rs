//! [`MqttSink`]: result lines published to an MQTT broker (`--mqtt mqtt://host:port/topic`),
//! for fleets that report to a broker.
//!
//! Each line is one QoS 1 message (the broker acknowledges it). rumqttc's synchronous client
//! queues publishes; a connection thread drives the network, counts acknowledgements and
//! reconnects with back-off when the broker goes away. Publishing never blocks the pipeline:
//! while the broker is unreachable, lines queue up to [`QUEUE_CAPACITY`], and beyond that they
//! are dropped and counted.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rumqttc::{
    Client, ClientError, ConnectReturnCode, Connection, ConnectionError, Event, MqttOptions,
    Outgoing, Packet, QoS,
};

use percent_encoding::percent_decode_str;
use url::{Host, Url};

use super::{Delivery, Sink, SinkError};

/// Publishes queued while the broker is unreachable before lines are dropped (about half a
/// minute of results at 30 fps).
pub const QUEUE_CAPACITY: usize = 1000;
/// How long [`MqttSink::connect`] waits for the broker to accept the connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`Sink::flush`] waits for the broker to acknowledge every line.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_PORT: u16 = 1883;
const KEEP_ALIVE: Duration = Duration::from_secs(30);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// A broker address parsed from `mqtt://[user[:password]@]host[:port]/topic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    /// User name and password for brokers that require a login (percent-decoded).
    pub credentials: Option<(String, String)>,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port (1883 unless given).
    pub port: u16,
    /// The topic every line is published to (may contain `/` levels; percent-decoded).
    pub topic: String,
}

impl BrokerAddress {
    /// Parses `mqtt://[user[:password]@]host[:port]/topic` as a URL: a user, password or topic
    /// holding `/`, `@` or `:` writes them percent-encoded (`%2F`, `%40`, `%3A`).
    pub fn parse(text: &str) -> Result<BrokerAddress, SinkError> {
        let bad = |reason: &str| SinkError::Address {
            address: redact(text),
            reason: format!("{reason}; expected mqtt://[user[:password]@]host[:port]/topic"),
        };
        let url = Url::parse(text).map_err(|e| match e {
            url::ParseError::RelativeUrlWithoutBase => {
                bad("only plain mqtt:// brokers are supported")
            }
            other => bad(&format!("bad host or port ({other})")),
        })?;
        if url.scheme() != "mqtt" {
            return Err(bad("only plain mqtt:// brokers are supported"));
        }
        let host = match url.host() {
            Some(Host::Domain(name)) if !name.is_empty() => decode(name),
            Some(Host::Ipv4(address)) => address.to_string(),
            Some(Host::Ipv6(address)) => address.to_string(),
            _ => return Err(bad("bad host or port")),
        };
        let port = match url.port() {
            Some(0) => return Err(bad("bad host or port")),
            port => port.unwrap_or(DEFAULT_PORT),
        };
        let Some(topic) = url.path().strip_prefix('/') else {
            return Err(bad("no topic after the host"));
        };
        let topic = decode(topic);
        // A raw `#` starts the URL's fragment: it was meant as the multi-level wildcard.
        if topic.is_empty() || topic.contains(['+', '#']) || url.fragment().is_some() {
            return Err(bad("the topic must be non-empty, without wildcards + or #"));
        }
        if url.query().is_some() {
            return Err(bad("a '?' in the topic must be written %3F"));
        }
        let credentials = match (url.username(), url.password()) {
            ("", None) => None,
            ("", Some(_)) => return Err(bad("empty user name before '@'")),
            (user, password) => Some((decode(user), password.map(decode).unwrap_or_default())),
        };
        Ok(BrokerAddress {
            credentials,
            host,
            port,
            topic,
        })
    }
}

/// A percent-encoded URL part as text (bytes that are not UTF-8 become U+FFFD).
fn decode(part: &str) -> String {
    percent_decode_str(part).decode_utf8_lossy().into_owned()
}

/// The URL with its password replaced, for messages and logs; one that does not parse keeps
/// only its scheme and what follows the login.
pub fn redact(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            // Fails only for URLs that cannot have a login, which have no password either.
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(_) => text.to_owned(),
        Err(_) => {
            let (scheme, rest) = text.split_once("://").unwrap_or(("", text));
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rsplit_once('@') {
                Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[authority_end..]),
                None => text.to_owned(),
            }
        }
    }
}

/// What the connection thread reports.
#[derive(Default)]
struct Progress {
    /// Whether a connection is up now.
    connected: bool,
    /// Whether the broker ever accepted the connection.
    ever_connected: bool,
    /// The latest connection error.
    last_error: Option<String>,
    /// Publishes the broker acknowledged.
    acked: u64,
    /// Set when the sink is dropped: the thread stops retrying.
    closing: bool,
}

struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, change: impl FnOnce(&mut Progress)) {
        change(&mut self.lock());
        self.changed.notify_all();
    }

    /// Waits until `done` holds or `timeout` passes; returns the final state of `done`.
    fn wait_for(&self, timeout: Duration, done: impl Fn(&Progress) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut progress = self.lock();
        while !done(&progress) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            progress = self
                .changed
                .wait_timeout(progress, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        true
    }
}

/// Result lines published to one MQTT topic, QoS 1.
pub struct MqttSink {
    url: String,
    topic: String,
    client: Client,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    published: u64,
    dropped: u64,
    /// Lines the connection thread refused because it had stopped.
    failed: u64,
    /// Whether [`Sink::flush`] has run: from then on, publishes not acknowledged are lost.
    flushed: bool,
}

impl MqttSink {
    /// Connects to the broker of `url` (`mqtt://[user[:password]@]host[:port]/topic`),
    /// waiting at most [`CONNECT_TIMEOUT`] for it to accept. Errors show the URL with its
    /// password redacted.
    pub fn connect(url: &str) -> Result<MqttSink, SinkError> {
        let address = BrokerAddress::parse(url)?;
        let url = redact(url);
        let mut options = MqttOptions::new(client_id(), &address.host, address.port);
        options
            .set_keep_alive(KEEP_ALIVE)
            .set_request_channel_capacity(QUEUE_CAPACITY);
        if let Some((user, password)) = &address.credentials {
            options.set_credentials(user, password);
        }
        let (client, connection) = Client::new(options, QUEUE_CAPACITY);
        let shared = Arc::new(Shared {
            progress: Mutex::new(Progress::default()),
            changed: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("mqtt connection".into())
            .spawn(move || drive(connection, &worker))
            .map_err(|e| SinkError::Broker {
                url: url.clone(),
                reason: format!("cannot start the connection thread: {e}"),
            })?;
        let mut sink = MqttSink {
            url: url.clone(),
            topic: address.topic,
            client,
            shared,
            thread: Some(thread),
            published: 0,
            dropped: 0,
            failed: 0,
            flushed: false,
        };
        sink.shared.wait_for(CONNECT_TIMEOUT, |p| {
            p.ever_connected || p.last_error.is_some()
        });
        let progress = sink.shared.lock();
        if progress.ever_connected {
            drop(progress);
            log::info!("MQTT: connected to {}:{}", address.host, address.port);
            return Ok(sink);
        }
        let reason = progress
            .last_error
            .clone()
            .unwrap_or_else(|| format!("no answer within {CONNECT_TIMEOUT:?}; {UNREACHABLE}"));
        drop(progress);
        // The thread may be inside a connection attempt; it exits after it, unjoined.
        sink.close(false);
        Err(SinkError::Broker {
            url: url.clone(),
            reason: format!(
                "cannot connect to {}:{}: {reason}",
                address.host, address.port
            ),
        })
    }

    /// Whether the connection to the broker is up now.
    pub fn is_connected(&self) -> bool {
        self.shared.lock().connected
    }

    /// Lines dropped because the queue was full while the broker was unreachable.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Stops the connection thread, disconnecting politely, and joins it when `join`.
    fn close(&mut self, join: bool) {
        self.shared.update(|p| p.closing = true);
        // Fails only when the queue is full or the thread is gone; either way it is closing.
        let _ = self.client.try_disconnect();
        if let Some(thread) = self.thread.take() {
            if join && thread.join().is_err() {
                log::error!("the MQTT connection thread panicked");
            }
        }
    }
}

impl Sink for MqttSink {
    fn send(&mut self, line: &str) -> Result<(), SinkError> {
        match self.client.try_publish(
            self.topic.as_str(),
            QoS::AtLeastOnce,
            false,
            line.as_bytes(),
        ) {
            Ok(()) => {
                self.published += 1;
                Ok(())
            }
            Err(ClientError::TryRequest(_)) => {
                if self.dropped == 0 || self.dropped.is_power_of_two() {
                    log::warn!(
                        "MQTT {}: broker unreachable and {QUEUE_CAPACITY} results queued; \
                         {} dropped so far",
                        self.url,
                        self.dropped + 1
                    );
                }
                self.dropped += 1;
                Ok(())
            }
            Err(ClientError::Request(_)) => {
                self.failed += 1;
                Err(SinkError::Broker {
                    url: self.url.clone(),
                    reason: "the connection thread has stopped".into(),
                })
            }
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.flushed = true;
        let published = self.published;
        if self
            .shared
            .wait_for(FLUSH_TIMEOUT, |p| p.acked >= published)
        {
            return Ok(());
        }
        let progress = self.shared.lock();
        let missing = published.saturating_sub(progress.acked);
        let state = match (&progress.connected, &progress.last_error) {
            (true, _) => "connected".to_owned(),
            (false, Some(e)) => format!("disconnected: {e}"),
            (false, None) => "disconnected".to_owned(),
        };
        Err(SinkError::Broker {
            url: self.url.clone(),
            reason: format!(
                "{missing} of {published} results not acknowledged within {FLUSH_TIMEOUT:?} \
                 ({state})"
            ),
        })
    }

    fn delivery(&self) -> Delivery {
        let unacknowledged = if self.flushed {
            self.published.saturating_sub(self.shared.lock().acked)
        } else {
            0
        };
        Delivery {
            target: self.url.clone(),
            lines: self.published + self.dropped + self.failed,
            lost: self.dropped + self.failed + unacknowledged,
        }
    }
}

impl Drop for MqttSink {
    fn drop(&mut self) {
        self.close(true);
    }
}

/// A client id unique per host and process, so two runtimes never evict each other.
fn client_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!("csra-edge-{host}-{}", std::process::id())
}

/// The connection thread: polls the event loop (which reconnects on the next poll after an
/// error) and reports progress until the sink closes.
fn drive(mut connection: Connection, shared: &Shared) {
    let mut failures: u32 = 0;
    for event in connection.iter() {
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if failures > 0 {
                    log::info!("MQTT: reconnected");
                }
                failures = 0;
                shared.update(|p| {
                    p.connected = true;
                    p.ever_connected = true;
                });
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => shared.update(|p| p.acked += 1),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(e) => {
                let was_connected = shared.lock().connected;
                if was_connected {
                    log::warn!("MQTT: connection lost: {e}");
                }
                shared.update(|p| {
                    p.connected = false;
                    p.last_error = Some(describe(&e));
                });
                let delay = Duration::from_millis(250)
                    .saturating_mul(1 << failures.min(5))
                    .min(MAX_RETRY_DELAY);
                failures = failures.saturating_add(1);
                if shared.wait_for(delay, |p| p.closing) {
                    break;
                }
            }
        }
    }
    shared.update(|p| p.connected = false);
}

/// A connection error as the user can act on it.
fn describe(e: &ConnectionError) -> String {
    match e {
        ConnectionError::ConnectionRefused(
            code @ (ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized),
        ) => format!(
            "the broker refused the login ({code:?}); check the user and password in the URL"
        ),
        ConnectionError::Io(_) | ConnectionError::NetworkTimeout => format!("{e}; {UNREACHABLE}"),
        other => other.to_string(),
    }
}

/// What to check when the broker does not answer.
const UNREACHABLE: &str = "is the broker running and reachable?";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_host_port_and_topic() {
        let parsed = BrokerAddress::parse("mqtt://broker.local:1884/fleet/cam-1").ok();
        assert_eq!(
            parsed,
            Some(BrokerAddress {
                credentials: None,
                host: "broker.local".into(),
                port: 1884,
                topic: "fleet/cam-1".into()
            })
        );
        let default_port = BrokerAddress::parse("mqtt://10.0.0.2/csra").ok();
        assert_eq!(default_port.map(|a| a.port), Some(1883));
        let v6 = BrokerAddress::parse("mqtt://[::1]:1999/t").ok();
        assert_eq!(v6.map(|a| (a.host, a.port)), Some(("::1".into(), 1999)));
        let login = BrokerAddress::parse("mqtt://cam:p@ss:w@[::1]:1999/t").ok();
        assert_eq!(
            login.and_then(|a| a.credentials),
            Some(("cam".into(), "p@ss:w".into()))
        );
    }

    #[test]
    fn percent_encoded_logins_and_topics_hold_slashes_and_at_signs() {
        // The password `a/b@c:d` and the user `cam@site`: a raw `/` would end the host.
        let parsed =
            BrokerAddress::parse("mqtt://cam%40site:a%2Fb%40c%3Ad@broker:1884/fleet/cam%201").ok();
        assert_eq!(
            parsed,
            Some(BrokerAddress {
                credentials: Some(("cam@site".into(), "a/b@c:d".into())),
                host: "broker".into(),
                port: 1884,
                topic: "fleet/cam 1".into()
            })
        );
        let user_only = BrokerAddress::parse("mqtt://cam@broker/t").ok();
        assert_eq!(
            user_only.and_then(|a| a.credentials),
            Some(("cam".into(), String::new()))
        );
        assert_eq!(
            redact("mqtt://cam:a%2Fb%40c@broker/t"),
            "mqtt://cam:***@broker/t"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("mqtt://cam:secret@host:1883/a/b"),
            "mqtt://cam:***@host:1883/a/b"
        );
        assert_eq!(redact("mqtt://host/t"), "mqtt://host/t");
        // Unparseable (the port), still without the password.
        assert_eq!(
            redact("mqtt://cam:secret@host:99999/t"),
            "mqtt://***@host:99999/t"
        );
        let err = BrokerAddress::parse("mqtt://cam:secret@host:0/t")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn bad_broker_urls_say_what_is_expected() {
        for (url, reason) in [
            ("mqtts://h/t", "only plain mqtt:// brokers are supported"),
            ("mqtt://host:1883", "no topic after the host"),
            ("mqtt://host/", "the topic must be non-empty"),
            ("mqtt://host/a/#", "without wildcards"),
            ("mqtt://host:99999/t", "bad host or port"),
            ("mqtt://:1883/t", "bad host or port"),
            ("mqtt://:pw@host/t", "empty user name"),
        ] {
            let err = BrokerAddress::parse(url).err().map(|e| e.to_string());
            let err = err.unwrap_or_default();
            assert!(err.contains(reason), "{url}: {err}");
            assert!(
                err.ends_with("expected mqtt://[user[:password]@]host[:port]/topic"),
                "{err}"
            );
        }
    }

    #[test]
    fn an_unreachable_broker_fails_to_connect_with_a_clear_error() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let err = MqttSink::connect("mqtt://127.0.0.1:1/t")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("MQTT mqtt://127.0.0.1:1/t: cannot connect to 127.0.0.1:1: "),
            "{err}"
        );
        assert!(
            err.ends_with("is the broker running and reachable?"),
            "{err}"
        );
    }
}
