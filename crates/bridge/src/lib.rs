//! The MQTT bridge (`wedged --mqtt URL`, and the containerd shim's `WEDGE_SHIM_MQTT`):
//! what apps publish on a message bus also goes to an MQTT broker, and what the broker
//! has for the bus's subscriptions comes in, so topics cross devices, pods and reach the
//! cloud.
//!
//! One client (rumqttc, MQTT 3.1.1) with a persistent session (`clean session` off, a
//! stable client id): the broker keeps its subscriptions and QoS 1 messages while the
//! daemon is away. It reconnects with exponential backoff (100 ms to 30 s), mirrors the
//! bus's subscription filters (subscribing at QoS 1), and drops the echo of its own
//! messages that the broker sends back to matching subscriptions. When its outbox is
//! full (a slow or absent broker) publishers wait rather than lose messages. What comes
//! in is bounded: a packet over [`MAX_INCOMING_PACKET`] is not read, a payload over
//! [`MAX_PAYLOAD`] is refused, and the bus's queue limits apply to the rest.

mod error;

pub use error::BridgeError;
use rumqttc::{
    AsyncClient, ConnectionError, Event, Incoming, MqttOptions, Outgoing, QoS, StateError,
    Transport,
};
use std::collections::{BTreeSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wedge_runtime::{BusMessage, Delivery, MAX_PAYLOAD, MessageBus, OutletWait};

/// Requests the client may queue while the broker is away; beyond them, messages to
/// the broker are dropped (and counted).
const OUTBOX: usize = 10_000;
/// Fingerprints kept of messages sent, to recognize their echo.
const ECHOES: usize = 4096;
/// Largest packet read from the broker: a payload of [`MAX_PAYLOAD`] with the longest
/// topic and the headers. A larger one is not read at all: the client drops the
/// connection (and reconnects), so a hostile broker cannot make the daemon hold more.
const MAX_INCOMING_PACKET: usize = MAX_PAYLOAD + (64 << 10) + 16;
/// Largest packet sent: an app's payload is [`MAX_PAYLOAD`] at most.
const MAX_OUTGOING_PACKET: usize = 2 << 20;
/// How often the bus's subscriptions are compared with the broker's.
const MIRROR_EVERY: Duration = Duration::from_millis(200);

/// Where and how to reach the broker, from `mqtt://[USER[:PASSWORD]@]HOST[:PORT]`
/// (`mqtts://` for TLS); the password better comes from [`BrokerUrl::resolve_password`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Host name or address.
    pub host: String,
    /// Port (1883, or 8883 with TLS, when not given).
    pub port: u16,
    /// Whether to use TLS.
    pub tls: bool,
    /// User name and password.
    pub credentials: Option<(String, String)>,
}

impl std::str::FromStr for BrokerUrl {
    type Err = BridgeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| BridgeError::Config(format!("invalid broker URL `{s}`: {why}"));
        let (tls, rest) = match s.split_once("://") {
            Some(("mqtt", rest)) => (false, rest),
            Some(("mqtts", rest)) => (true, rest),
            _ => return Err(bad("expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")),
        };
        let rest = rest.trim_end_matches('/');
        let (credentials, hostport) = match rest.rsplit_once('@') {
            Some((user, hostport)) => {
                let (u, p) = user.split_once(':').unwrap_or((user, ""));
                (Some((u.to_string(), p.to_string())), hostport)
            }
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => {
                (h, p.parse().map_err(|_| bad("the port is not a number"))?)
            }
            _ => (hostport, if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(BrokerUrl {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            tls,
            credentials,
        })
    }
}

/// Where the bridge's broker password comes from besides the URL: `--mqtt-password-file`
/// and this variable (the URL's password shows in `/proc/PID/cmdline` to every local
/// user; a file or the environment does not).
pub const PASSWORD_VAR: &str = "WEDGE_MQTT_PASSWORD";

impl BrokerUrl {
    /// Sets the password from `file` (its first line), else from `env` (the value of
    /// [`PASSWORD_VAR`]), over any in the URL. Returns a warning to print when the
    /// password is the URL's own.
    pub fn resolve_password(
        &mut self,
        file: Option<&Path>,
        env: Option<String>,
    ) -> Result<Option<String>, BridgeError> {
        let password = match (file, env) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    BridgeError::Config(format!(
                        "cannot read the MQTT password file `{}`: {e}",
                        path.display()
                    ))
                })?;
                Some(text.lines().next().unwrap_or_default().to_string())
            }
            (None, Some(value)) => Some(value),
            (None, None) => None,
        };
        match (password, &mut self.credentials) {
            (Some(password), Some((_, p))) => {
                *p = password;
                Ok(None)
            }
            (Some(_), None) => Err(BridgeError::Config(
                "a broker password needs a user name in the URL: `mqtt://USER@HOST`".into(),
            )),
            (None, Some((_, p))) if !p.is_empty() => Ok(Some(format!(
                "the broker password in `--mqtt` is visible to every local user in the \
                 process's command line; use `--mqtt-password-file` or `{PASSWORD_VAR}`"
            ))),
            (None, _) => Ok(None),
        }
    }
}

/// Fingerprints of messages sent to the broker, oldest first.
#[derive(Default)]
struct Echoes(VecDeque<u64>);

impl Echoes {
    fn fingerprint(topic: &str, payload: &[u8]) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        topic.hash(&mut h);
        payload.hash(&mut h);
        h.finish()
    }

    fn sent(&mut self, print: u64) {
        if self.0.len() >= ECHOES {
            self.0.pop_front();
        }
        self.0.push_back(print);
    }

    /// Whether `print` is the echo of a message sent (forgetting it if so).
    fn is_echo(&mut self, print: u64) -> bool {
        match self.0.iter().position(|p| *p == print) {
            Some(i) => {
                self.0.remove(i);
                true
            }
            None => false,
        }
    }
}

/// A running bridge.
#[derive(Clone)]
pub struct Bridge {
    /// Messages handed to the client and not yet sent (QoS 0) or acknowledged by the
    /// broker (QoS 1).
    pending: Arc<AtomicUsize>,
}

impl Bridge {
    /// Waits until every message published so far has reached the broker, or `within`
    /// has passed: for a process that ends after its app (a container), so its last
    /// messages are not lost.
    pub async fn flush(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.pending.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Connects `bus` to the broker at `url`, as `client_id`, trusting the PEM certificates
/// in `ca` for TLS (or the usual public roots). With a `prefix` (e.g. `tenant/`), the
/// bus's topic `a/b` is `tenant/a/b` on the broker, and only the broker's topics under
/// the prefix reach the bus. Runs until the process ends; the returned [`Bridge`] can
/// wait for what was published to go out.
pub fn start(
    bus: MessageBus,
    url: &BrokerUrl,
    client_id: &str,
    ca: Option<&Path>,
    prefix: &str,
) -> Result<Bridge, BridgeError> {
    let prefix: Arc<str> = prefix.into();
    let mut options = MqttOptions::new(client_id, url.host.clone(), url.port);
    options.set_keep_alive(Duration::from_secs(15));
    options.set_clean_session(false);
    options.set_inflight(100);
    options.set_max_packet_size(MAX_INCOMING_PACKET, MAX_OUTGOING_PACKET);
    if let Some((user, password)) = &url.credentials {
        options.set_credentials(user.clone(), password.clone());
    }
    if url.tls {
        options.set_transport(Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(Arc::new(wedge_client::tls::client_config(ca)?)),
        ));
    }
    let (client, mut eventloop) = AsyncClient::new(options, OUTBOX);
    let echoes = Arc::new(Mutex::new(Echoes::default()));

    let bridge = Bridge {
        pending: Arc::new(AtomicUsize::new(0)),
    };
    let outbox = client.clone();
    let sent = echoes.clone();
    let queued = bridge.pending.clone();
    let outward = prefix.clone();
    bus.set_outlet(Arc::new(move |m: &BusMessage, delivery: Delivery| {
        let qos = match delivery {
            Delivery::AtMostOnce => QoS::AtMostOnce,
            Delivery::AtLeastOnce => QoS::AtLeastOnce,
        };
        let topic = format!("{outward}{}", m.topic);
        lock(&sent).sent(Echoes::fingerprint(&topic, &m.payload));
        let payload = m.payload.clone();
        match outbox.try_publish(topic.as_str(), qos, false, payload.clone()) {
            Ok(()) => {
                queued.fetch_add(1, Ordering::AcqRel);
                None
            }
            // The outbox is full (the broker is slow or away): the publisher waits
            // (and the message counts as pending once the client has it).
            Err(_) => {
                let outbox = outbox.clone();
                let queued = queued.clone();
                Some(Box::pin(async move {
                    if outbox.publish(topic, qos, false, payload).await.is_ok() {
                        queued.fetch_add(1, Ordering::AcqRel);
                    }
                }) as OutletWait)
            }
        }
    }));

    // The filters the broker has for us; cleared when it reports a fresh session.
    let subscribed = Arc::new(Mutex::new(BTreeSet::new()));
    tokio::spawn(mirror(
        bus.clone(),
        client,
        subscribed.clone(),
        prefix.clone(),
    ));
    let pending = bridge.pending.clone();
    let done = move || {
        let _ = pending.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    };
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                    backoff = Duration::from_millis(100);
                    if !ack.session_present {
                        lock(&subscribed).clear();
                    }
                    eprintln!("wedge: MQTT bridge connected");
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    // The bus refuses (and counts) a payload over `MAX_PAYLOAD`.
                    let print = Echoes::fingerprint(&p.topic, &p.payload);
                    if let Some(topic) = p.topic.strip_prefix(&*prefix)
                        && !lock(&echoes).is_echo(print)
                    {
                        let message = BusMessage {
                            topic: topic.into(),
                            payload: p.payload,
                        };
                        bus.publish(message, Delivery::AtLeastOnce, true);
                    }
                }
                // A QoS 0 message is out once written; a QoS 1 one once acknowledged.
                Ok(
                    Event::Outgoing(Outgoing::Publish(0)) | Event::Incoming(Incoming::PubAck(_)),
                ) => {
                    done();
                }
                Ok(_) => {}
                Err(e) => {
                    if let ConnectionError::MqttState(StateError::Deserialization(
                        rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(_),
                    )) = &e
                    {
                        bus.count_refused();
                    }
                    eprintln!("wedge: MQTT bridge: {e}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    });
    Ok(bridge)
}

/// Keeps the broker's subscriptions equal to the bus's filters.
async fn mirror(
    bus: MessageBus,
    client: AsyncClient,
    subscribed: Arc<Mutex<BTreeSet<String>>>,
    prefix: Arc<str>,
) {
    loop {
        let wanted: BTreeSet<String> = bus
            .filters()
            .iter()
            .map(|filter| format!("{prefix}{filter}"))
            .collect();
        let (add, remove): (Vec<String>, Vec<String>) = {
            let have = lock(&subscribed);
            (
                wanted.difference(&have).cloned().collect(),
                have.difference(&wanted).cloned().collect(),
            )
        };
        for filter in add {
            if client.subscribe(&filter, QoS::AtLeastOnce).await.is_ok() {
                lock(&subscribed).insert(filter);
            }
        }
        for filter in remove {
            if client.unsubscribe(&filter).await.is_ok() {
                lock(&subscribed).remove(&filter);
            }
        }
        tokio::time::sleep(MIRROR_EVERY).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_with_defaults_and_credentials() {
        let u: BrokerUrl = "mqtt://127.0.0.1:1884".parse().unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("127.0.0.1", 1884, false));
        let u: BrokerUrl = "mqtts://bob:s3cret@broker.example".parse().unwrap();
        assert_eq!((u.port, u.tls), (8883, true));
        assert_eq!(u.credentials, Some(("bob".into(), "s3cret".into())));
        assert_eq!("mqtt://h".parse::<BrokerUrl>().unwrap().port, 1883);
        for bad in ["http://h", "mqtt://", "mqtt://h:port", "h:1883"] {
            assert!(bad.parse::<BrokerUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_password_from_a_file_or_the_environment_replaces_the_urls() {
        let dir = std::env::temp_dir().join(format!("wedge-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "fromfile\n").unwrap();
        let mut u: BrokerUrl = "mqtt://bob@h".parse().unwrap();
        assert_eq!(
            u.resolve_password(Some(&file), Some("env".into())).unwrap(),
            None
        );
        assert_eq!(u.credentials, Some(("bob".into(), "fromfile".into())));
        let mut u: BrokerUrl = "mqtt://bob:inurl@h".parse().unwrap();
        assert_eq!(u.resolve_password(None, Some("env".into())).unwrap(), None);
        assert_eq!(u.credentials, Some(("bob".into(), "env".into())));
        let mut u: BrokerUrl = "mqtt://bob:inurl@h".parse().unwrap();
        let warning = u.resolve_password(None, None).unwrap().unwrap();
        assert!(warning.contains("--mqtt-password-file"), "{warning}");
        let mut u: BrokerUrl = "mqtt://h".parse().unwrap();
        assert!(u.resolve_password(None, Some("x".into())).is_err());
        assert!(u.resolve_password(Some(&dir.join("none")), None).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn echoes_are_recognized_once() {
        let mut e = Echoes::default();
        let p = Echoes::fingerprint("a/b", b"x");
        e.sent(p);
        assert!(e.is_echo(p));
        assert!(!e.is_echo(p));
    }
}
