//! Shared harness for the integration tests: real brokers on loopback and an independent
//! consumer to read back what reached the log.
//!
//! - [`Tansu`]: a fresh tansu broker (memory storage) on a free loopback port, killed on drop.
//! - [`kafka::Kafka`]: Apache Kafka 4.x (KRaft) from its own jars, one node or a cluster
//!   that loses nodes; the reference broker.
//! - [`Broker`], [`BrokerKind`]: either, for test bodies run against both.
//! - [`read_back`]: an rdkafka (librdkafka) consumer that reads whole partitions back, with
//!   CRC checks, for verifying what a producer claims against what the log holds.
//! - [`ChaosProxy`]: a Kafka-framing-aware TCP proxy that cuts connections at chosen points
//!   of the request/response exchange (and counts its cuts per API key, SASL's included),
//!   or stalls produce responses.
//! - [`log_capture`]: a logger that keeps what the producer logs, to check it.
//! - [`free_port`], [`refusing_address`], [`SilentListener`]: dead-end addresses.
//! - [`hostile`]: a fake broker that misbehaves on purpose, and the bounds a producer is held
//!   to against it.
//! - [`sasl_frames`], [`sasl_recorder`]: SaslHandshake and SaslAuthenticate read and written
//!   independently of the producer's codec: a SASL probe of fixed messages, and a proxy recording
//!   a reference client's SASL exchange.

mod chaos;
pub mod hostile;
pub mod kafka;
pub mod log_capture;
pub mod netns;
pub mod records;
pub mod sasl_frames;
pub mod sasl_recorder;
mod tool_binary;

pub use chaos::{ApiStats, ChaosProxy, Cut, ProxyMode, ProxyStats};
pub use tool_binary::produce_binary;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message, Timestamp};
use rdkafka::{Offset, TopicPartitionList};

pub mod qemu;

/// A loopback port nothing listens on right now: bound to 127.0.0.1:0, read, released.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// A `127.0.0.1:PORT` address that refuses connections (nothing listens on it).
pub fn refusing_address() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// Waits until a TCP connection to `addr` succeeds, or `timeout` passes. Returns whether it
/// connected.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> bool {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Where the tansu binary is: `$TANSU` if set, else `~/.cargo/bin/tansu` if it exists, else
/// `tansu` on the `PATH`.
pub fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU") {
        return PathBuf::from(path);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let path = PathBuf::from(home).join(".cargo/bin/tansu");
        if path.exists() {
            return path;
        }
    }
    PathBuf::from("tansu")
}

/// A tansu broker with in-memory storage on a free loopback port, for one test. Killed (and
/// reaped) on drop. Its node id is 111.
pub struct Tansu {
    child: Child,
    port: u16,
    advertised_port: u16,
}

impl Tansu {
    /// Starts a broker that advertises the port it listens on, and waits until it accepts
    /// connections.
    pub fn start() -> Tansu {
        let port = free_port();
        Tansu::start_on(port, port)
    }

    /// Starts a broker listening on `127.0.0.1:port` that advertises
    /// `127.0.0.1:advertised_port` (e.g. a [`ChaosProxy`] in front of it, so every client
    /// connection after bootstrap goes through the proxy). Waits until it accepts
    /// connections; panics if it does not within 10 s.
    pub fn start_on(port: u16, advertised_port: u16) -> Tansu {
        let binary = tansu_binary();
        let child = Command::new(&binary)
            .arg("broker")
            .arg("--listener-url")
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://127.0.0.1:{advertised_port}"))
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let tansu = Tansu {
            child,
            port,
            advertised_port,
        };
        assert!(
            wait_for_port(tansu.addr(), Duration::from_secs(10)),
            "tansu did not listen on port {port} within 10 s"
        );
        tansu
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `127.0.0.1:PORT` of the listener (not the advertised address).
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT` of the advertised address.
    pub fn advertised(&self) -> String {
        format!("127.0.0.1:{}", self.advertised_port)
    }

    /// Creates `name` with `partitions` partitions (tansu does not auto-create topics).
    /// Panics if `tansu topic create` fails.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        create_topic_with(
            Command::new(tansu_binary()),
            &format!("tcp://127.0.0.1:{}", self.port),
            name,
            partitions,
        );
    }
}

/// Runs `tansu topic create` through `command` (the tansu binary, or a wrapper that runs it,
/// such as `ip netns exec NS tansu`) against the broker at `broker_url`. Panics if it fails.
pub fn create_topic_with(mut command: Command, broker_url: &str, name: &str, partitions: i32) {
    let output = command
        .arg("topic")
        .arg("create")
        .arg("--broker")
        .arg(broker_url)
        .arg("--partitions")
        .arg(partitions.to_string())
        .arg(name)
        .stdin(Stdio::null())
        .output()
        .expect("run tansu topic create");
    assert!(
        output.status.success(),
        "tansu topic create {name} at {broker_url} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which real broker a test body runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerKind {
    /// tansu 0.6.0 (memory storage): answers an exact retry with DUPLICATE_SEQUENCE_NUMBER
    /// and no offset, refuses a locally bumped epoch.
    Tansu,
    /// One Apache Kafka 4.x node (KRaft): the reference. Answers a retry still among the
    /// last five batches with its original offsets and accepts a local epoch bump.
    Kafka,
}

impl BrokerKind {
    /// The broker's name, for test output and topic names.
    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::Tansu => "tansu",
            BrokerKind::Kafka => "kafka",
        }
    }

    /// Every offset it reports is where the record is in the log, retries included (tansu's
    /// offsets after a DUPLICATE_SEQUENCE_NUMBER answer are not to be trusted).
    pub fn exact_offsets(self) -> bool {
        self == BrokerKind::Kafka
    }

    /// It accepts an idempotent producer's local epoch bump (KIP-360), so a fence needs no
    /// new producer id.
    pub fn accepts_epoch_bump(self) -> bool {
        self == BrokerKind::Kafka
    }

    /// The wait before a new producer id the tests give a producer. Kafka gets the default
    /// (five produce timeouts: it goes on processing what it had read from a closed
    /// connection). tansu refuses every local bump, so each fence needs a new producer id;
    /// it writes what it reads without waiting for replicas, and 1 s has covered what it
    /// still processed after a close in every run (the read-back checks the order).
    pub fn abandoned_request_grace(self) -> Option<Duration> {
        match self {
            BrokerKind::Kafka => None,
            BrokerKind::Tansu => Some(Duration::from_secs(1)),
        }
    }

    /// [`BrokerKind::abandoned_request_grace`] as `produce` tool arguments.
    pub fn grace_args(self) -> Vec<String> {
        self.abandoned_request_grace()
            .map(|g| {
                vec![
                    "--abandoned-request-grace-ms".to_string(),
                    g.as_millis().to_string(),
                ]
            })
            .unwrap_or_default()
    }
}

/// A running broker of either kind, for test bodies shared by both.
pub enum Broker {
    /// A tansu broker.
    Tansu(Tansu),
    /// A one-node Kafka cluster.
    Kafka(kafka::Kafka),
}

impl Broker {
    /// Starts one broker of `kind` on a free loopback port, advertising where it listens.
    pub fn start(kind: BrokerKind) -> Broker {
        match kind {
            BrokerKind::Tansu => Broker::Tansu(Tansu::start()),
            BrokerKind::Kafka => Broker::Kafka(kafka::Kafka::single()),
        }
    }

    /// Starts one broker of `kind` listening on `127.0.0.1:port` that advertises
    /// `127.0.0.1:advertised_port` (a [`ChaosProxy`] in front of it, say).
    pub fn start_on(kind: BrokerKind, port: u16, advertised_port: u16) -> Broker {
        match kind {
            BrokerKind::Tansu => Broker::Tansu(Tansu::start_on(port, advertised_port)),
            BrokerKind::Kafka => Broker::Kafka(
                kafka::Kafka::builder(1)
                    .client_ports(vec![port])
                    .advertised(vec![format!("127.0.0.1:{advertised_port}")])
                    .start(),
            ),
        }
    }

    /// Which kind it is.
    pub fn kind(&self) -> BrokerKind {
        match self {
            Broker::Tansu(_) => BrokerKind::Tansu,
            Broker::Kafka(_) => BrokerKind::Kafka,
        }
    }

    /// `127.0.0.1:PORT` it listens on (not what it advertises).
    pub fn bootstrap(&self) -> String {
        match self {
            Broker::Tansu(t) => t.bootstrap(),
            Broker::Kafka(k) => k.bootstrap(),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Broker::Tansu(t) => t.addr(),
            Broker::Kafka(k) => k.client_addr(1),
        }
    }

    /// Creates `name` with `partitions` partitions and waits until it can be written.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        match self {
            Broker::Tansu(t) => t.create_topic(name, partitions),
            Broker::Kafka(k) => k.create_topic(name, partitions),
        }
    }
}

/// A listener that accepts connections and holds them open without reading or writing: a
/// broker that went silent. Stops accepting (and closes what it held) on drop.
pub struct SilentListener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentListener {
    /// Listens on a free loopback port.
    pub fn start() -> SilentListener {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => held.push(stream),
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        SilentListener {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for SilentListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One record as read back from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadRecord {
    /// Its offset in the partition.
    pub offset: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub value: Option<Vec<u8>>,
    /// Headers in order: key and nullable value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Its timestamp when it is the producer's create time (milliseconds since the Unix
    /// epoch); `None` when the log has the broker's append time instead, or no timestamp.
    pub timestamp: Option<i64>,
}

/// Reads partitions `0..partitions` of `topic` from the beginning with an independent
/// consumer (librdkafka via rdkafka, `check.crcs=true`, no group offsets committed).
///
/// Returns, per partition, the records in log order, once at least `expected_count`
/// records were read in all and every partition has reported its end (so extra records,
/// such as duplicates, are read too). At `timeout` it returns what it has. Panics if the
/// consumer reports an error other than end-of-partition (a CRC mismatch, for one).
pub fn read_back(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected_count: usize,
    timeout: Duration,
) -> Vec<Vec<ReadRecord>> {
    let until = Instant::now() + timeout;
    let group = format!("read-back-{}", rand::random::<u64>());
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("check.crcs", "true")
        .set("fetch.wait.max.ms", "50")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("create read-back consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let mut out: Vec<Vec<ReadRecord>> = (0..partitions).map(|_| Vec::new()).collect();
    let mut at_end = vec![false; partitions as usize];
    let mut count = 0usize;
    loop {
        if count >= expected_count && at_end.iter().all(|&e| e) {
            break;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            eprintln!(
                "read_back: timed out with {count} of {expected_count} records; at end: {at_end:?}"
            );
            break;
        }
        match consumer.poll(left.min(Duration::from_millis(100))) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                if let Some(e) = at_end.get_mut(p as usize) {
                    *e = true;
                }
            }
            Some(Err(e)) => panic!("read_back: consumer error: {e}"),
            Some(Ok(m)) => {
                let p = m.partition() as usize;
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default();
                out[p].push(ReadRecord {
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    headers,
                    timestamp: match m.timestamp() {
                        Timestamp::CreateTime(ms) => Some(ms),
                        Timestamp::LogAppendTime(_) | Timestamp::NotAvailable => None,
                    },
                });
                at_end[p] = false;
                count += 1;
            }
        }
    }
    out
}
