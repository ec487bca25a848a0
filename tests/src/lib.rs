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

mod byte_cuts;
pub mod hostile;
pub mod kafka;
pub mod log_capture;
pub mod netns;
pub mod records;
pub mod sasl_frames;
pub mod sasl_recorder;
mod tool_binary;

pub use tool_binary::produce_binary;

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sasl_frames::{SASL_AUTHENTICATE, SASL_HANDSHAKE};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
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

/// What a [`ChaosProxy`] does to the traffic it relays.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ProxyMode {
    /// Relay everything.
    Pass,
    /// Before relaying each request frame, with probability `cut_probability`, pick one of
    /// the [`Cut`]s uniformly at random (from the proxy's seeded RNG) and apply it.
    Chaos {
        /// Chance per request frame of cutting its connection somewhere around it.
        cut_probability: f64,
    },
    /// [`ProxyMode::Chaos`], but request frames of the SASL exchange (SaslHandshake and
    /// SaslAuthenticate, [`sasl_frames::SASL_HANDSHAKE`] and [`sasl_frames::SASL_AUTHENTICATE`], re-authentications
    /// included) are cut with probability `sasl_cut_probability` instead: a connection
    /// makes only a few of them, so cuts inside the handshake would be rare otherwise.
    SaslChaos {
        /// Chance per request frame of another API.
        cut_probability: f64,
        /// Chance per SaslHandshake or SaslAuthenticate request frame.
        sasl_cut_probability: f64,
    },
    /// Relay requests, but from the first Produce request on a connection, hold every
    /// response of that connection (not relayed, not dropped) until the mode changes back;
    /// then the held responses are relayed in order.
    StallProduce,
    /// Close every new connection at once, and every live one (a broker that went away
    /// while its port still accepts).
    Drop,
    /// Blind to frames (for TLS, whose frames it cannot see): each new connection is, with
    /// probability `cut_probability`, cut after a random number of bytes in one direction
    /// (see `byte_cuts`): a quarter of the cuts within the first 64 bytes (inside the
    /// ClientHello or the ServerHello, each longer), a quarter at 65 to 4,096, half at
    /// 4,097 to 32,768 (inside records).
    Bytes {
        /// Chance per connection of cutting it.
        cut_probability: f64,
    },
}

/// Where a [`ProxyMode::Chaos`] cut falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Close the connection instead of relaying a request: it never reached the broker.
    BeforeRequest,
    /// Relay part of a request frame (a random prefix, possibly inside the size prefix),
    /// then close.
    MidRequest,
    /// Relay the whole request, let the broker process it, then close the connection when
    /// its response arrives, without relaying any of it.
    AfterRequest,
    /// Relay the whole request and part of its response frame, then close.
    MidResponse,
}

/// Counts of what a [`ChaosProxy`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Client connections accepted.
    pub connections: u64,
    /// Request frames seen (complete).
    pub requests: u64,
    /// Produce request frames seen.
    pub produce_requests: u64,
    /// [`Cut::BeforeRequest`] cuts.
    pub cut_before_request: u64,
    /// [`Cut::MidRequest`] cuts.
    pub cut_mid_request: u64,
    /// [`Cut::AfterRequest`] cuts (counted when the response was discarded).
    pub cut_after_request: u64,
    /// [`Cut::MidResponse`] cuts (counted when the response was cut).
    pub cut_mid_response: u64,
    /// Responses held back by [`ProxyMode::StallProduce`].
    pub responses_held: u64,
    /// [`ProxyMode::Bytes`] cuts.
    pub cut_bytes: u64,
    /// … of which within the first 64 bytes of their direction: inside the TLS handshake's
    /// first message (ClientHello, ServerHello).
    pub cut_bytes_in_hello: u64,
    /// … of which after 4,096 bytes of their direction: past any handshake, inside records.
    pub cut_bytes_in_records: u64,
}

/// Request frames of one API key a [`ChaosProxy`] saw, and the cuts it made at them (a
/// [`Cut::AfterRequest`] or [`Cut::MidResponse`] counted when the response came, like
/// [`ProxyStats`] does).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApiStats {
    /// Request frames seen (complete).
    pub requests: u64,
    /// Cuts made at one of them.
    pub cuts: u64,
}

impl ProxyStats {
    /// All cuts made.
    pub fn cuts(&self) -> u64 {
        self.cut_before_request
            + self.cut_mid_request
            + self.cut_after_request
            + self.cut_mid_response
            + self.cut_bytes
    }
}

pub(crate) struct ProxyShared {
    upstream: SocketAddr,
    mode: Mutex<ProxyMode>,
    rng: Mutex<StdRng>,
    stats: Mutex<ProxyStats>,
    by_api: Mutex<BTreeMap<i16, ApiStats>>,
    stop: AtomicBool,
    live: Mutex<Vec<(u64, TcpStream, TcpStream)>>,
    next_id: AtomicU64,
}

impl ProxyShared {
    fn mode(&self) -> ProxyMode {
        *self.mode.lock().unwrap()
    }

    fn stat(&self, f: impl FnOnce(&mut ProxyStats)) {
        f(&mut self.stats.lock().unwrap());
    }

    fn api_stat(&self, api_key: i16, f: impl FnOnce(&mut ApiStats)) {
        f(self.by_api.lock().unwrap().entry(api_key).or_default());
    }
}

/// A TCP proxy on a free loopback port that relays Kafka traffic to `upstream`, frame by
/// frame (4-byte big-endian size prefix), and cuts or stalls connections as its
/// [`ProxyMode`] says. Cuts are drawn from an RNG seeded at construction.
///
/// To put it between a client and a broker for every connection (not just bootstrap), the
/// broker must advertise the proxy's address: bind the proxy first with the broker's future
/// port, then start the broker with [`Tansu::start_on`]`(broker_port, proxy.port())`.
pub struct ChaosProxy {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
    accept: Option<JoinHandle<()>>,
}

impl ChaosProxy {
    /// Listens on a free loopback port and relays to `upstream` (which need not be up yet:
    /// each accepted connection dials it then).
    pub fn start(upstream: SocketAddr, mode: ProxyMode, seed: u64) -> ChaosProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(ProxyShared {
            upstream,
            mode: Mutex::new(mode),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            stats: Mutex::new(ProxyStats::default()),
            by_api: Mutex::new(BTreeMap::new()),
            stop: AtomicBool::new(false),
            live: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
        });
        let s = shared.clone();
        let accept = thread::spawn(move || {
            while !s.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let s = s.clone();
                        thread::spawn(move || serve(s, client));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        ChaosProxy {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:PORT` it listens on.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Changes what it does from now on. Leaving [`ProxyMode::StallProduce`] releases the
    /// held responses; entering [`ProxyMode::Drop`] closes every live connection.
    pub fn set_mode(&self, mode: ProxyMode) {
        *self.shared.mode.lock().unwrap() = mode;
        if mode == ProxyMode::Drop {
            self.cut_all();
        }
    }

    /// Closes every live connection now.
    pub fn cut_all(&self) {
        for (_, client, upstream) in self.shared.live.lock().unwrap().iter() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
    }

    /// What it did so far.
    pub fn stats(&self) -> ProxyStats {
        *self.shared.stats.lock().unwrap()
    }

    /// What it saw and cut so far, per API key of the request frames (frames too short to
    /// have one under -1).
    pub fn by_api_key(&self) -> BTreeMap<i16, ApiStats> {
        self.shared.by_api.lock().unwrap().clone()
    }

    /// What it saw and cut so far at request frames of `api_key`.
    pub fn api_stats(&self, api_key: i16) -> ApiStats {
        self.by_api_key().get(&api_key).copied().unwrap_or_default()
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.cut_all();
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// Per-connection state shared by its two relay directions.
#[derive(Default)]
struct ConnPlan {
    /// Discard the response with this correlation id and close ([`Cut::AfterRequest`]).
    drop_response: Option<i32>,
    /// Relay part of the response with this correlation id and close.
    cut_response: Option<i32>,
    /// The API key of the request whose response is dropped or cut.
    cut_api_key: i16,
    /// A produce request went out while stalling: hold responses.
    stalled: bool,
    /// The connection is being closed.
    closed: bool,
}

fn serve(shared: Arc<ProxyShared>, client: TcpStream) {
    shared.stat(|s| s.connections += 1);
    if shared.mode() == ProxyMode::Drop || shared.stop.load(Ordering::Relaxed) {
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let Ok(upstream) = TcpStream::connect_timeout(&shared.upstream, Duration::from_secs(2)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    shared.live.lock().unwrap().push((id, c2, u2));
    if let ProxyMode::Bytes { cut_probability } = shared.mode() {
        byte_cuts::relay(&shared, cut_probability, client, upstream);
        shared.live.lock().unwrap().retain(|(i, _, _)| *i != id);
        return;
    }
    let plan = Arc::new(Mutex::new(ConnPlan::default()));
    let (Ok(c3), Ok(u3)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let (s2, p2) = (shared.clone(), plan.clone());
    let responses = thread::spawn(move || relay_responses(&s2, &p2, u3, c3));
    relay_requests(
        &shared,
        &plan,
        client.try_clone().unwrap(),
        upstream.try_clone().unwrap(),
    );
    close(&plan, &client, &upstream);
    let _ = responses.join();
    shared.live.lock().unwrap().retain(|(i, _, _)| *i != id);
}

fn close(plan: &Mutex<ConnPlan>, client: &TcpStream, upstream: &TcpStream) {
    plan.lock().unwrap().closed = true;
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.shutdown(Shutdown::Both);
}

/// Reads whole frames (size prefix included) from a socket with a read timeout, so the
/// caller can look at shared state between reads.
struct FrameReader {
    stream: TcpStream,
    buf: Vec<u8>,
}

enum Next {
    Frame(Vec<u8>),
    Idle,
    Closed,
}

impl FrameReader {
    fn new(stream: TcpStream) -> FrameReader {
        let _ = stream.set_read_timeout(Some(Duration::from_millis(10)));
        FrameReader {
            stream,
            buf: Vec::new(),
        }
    }

    fn next(&mut self) -> Next {
        loop {
            if self.buf.len() >= 4 {
                let size = i32::from_be_bytes(self.buf[..4].try_into().unwrap());
                if size < 0 {
                    return Next::Closed;
                }
                let total = 4 + size as usize;
                if self.buf.len() >= total {
                    let rest = self.buf.split_off(total);
                    let frame = std::mem::replace(&mut self.buf, rest);
                    return Next::Frame(frame);
                }
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Next::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Next::Idle;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Closed,
            }
        }
    }
}

fn relay_requests(
    shared: &ProxyShared,
    plan: &Mutex<ConnPlan>,
    client: TcpStream,
    mut upstream: TcpStream,
) {
    let mut reader = FrameReader::new(client);
    loop {
        if plan.lock().unwrap().closed || shared.stop.load(Ordering::Relaxed) {
            return;
        }
        let frame = match reader.next() {
            Next::Frame(f) => f,
            Next::Idle => {
                if shared.mode() == ProxyMode::Drop {
                    return;
                }
                continue;
            }
            Next::Closed => return,
        };
        // Request header v1+: api key (2), api version (2), correlation id (4).
        let api_key = frame.get(4..6).map(|b| i16::from_be_bytes([b[0], b[1]]));
        let correlation = frame
            .get(8..12)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let is_produce = api_key == Some(0);
        let api_key = api_key.unwrap_or(-1);
        shared.stat(|s| {
            s.requests += 1;
            if is_produce {
                s.produce_requests += 1;
            }
        });
        shared.api_stat(api_key, |s| s.requests += 1);
        let mode = shared.mode();
        let cut = match mode {
            ProxyMode::Pass | ProxyMode::Bytes { .. } => None,
            ProxyMode::Drop => return,
            ProxyMode::StallProduce => {
                if is_produce {
                    plan.lock().unwrap().stalled = true;
                }
                None
            }
            ProxyMode::Chaos { cut_probability }
            | ProxyMode::SaslChaos {
                cut_probability, ..
            } => {
                let p = match mode {
                    ProxyMode::SaslChaos {
                        sasl_cut_probability,
                        ..
                    } if matches!(api_key, SASL_HANDSHAKE | SASL_AUTHENTICATE) => {
                        sasl_cut_probability
                    }
                    _ => cut_probability,
                };
                let mut rng = shared.rng.lock().unwrap();
                if rng.random_bool(p.clamp(0.0, 1.0)) {
                    Some(match rng.random_range(0..4) {
                        0 => Cut::BeforeRequest,
                        1 => Cut::MidRequest,
                        2 => Cut::AfterRequest,
                        _ => Cut::MidResponse,
                    })
                } else {
                    None
                }
            }
        };
        match cut {
            Some(Cut::BeforeRequest) => {
                shared.stat(|s| s.cut_before_request += 1);
                shared.api_stat(api_key, |s| s.cuts += 1);
                return;
            }
            Some(Cut::MidRequest) => {
                let at = shared.rng.lock().unwrap().random_range(1..frame.len());
                let _ = upstream.write_all(&frame[..at]);
                let _ = upstream.flush();
                shared.stat(|s| s.cut_mid_request += 1);
                shared.api_stat(api_key, |s| s.cuts += 1);
                // Let the partial bytes reach the broker before the close.
                thread::sleep(Duration::from_millis(2));
                return;
            }
            Some(Cut::AfterRequest) => {
                let mut p = plan.lock().unwrap();
                p.drop_response = correlation;
                p.cut_api_key = api_key;
            }
            Some(Cut::MidResponse) => {
                let mut p = plan.lock().unwrap();
                p.cut_response = correlation;
                p.cut_api_key = api_key;
            }
            None => {}
        }
        if upstream.write_all(&frame).is_err() {
            return;
        }
        if matches!(cut, Some(Cut::AfterRequest | Cut::MidResponse)) {
            // Relay nothing more: wait (bounded) for the response side to close.
            let until = Instant::now() + Duration::from_secs(5);
            while !plan.lock().unwrap().closed && Instant::now() < until {
                thread::sleep(Duration::from_millis(2));
            }
            return;
        }
    }
}

fn relay_responses(
    shared: &ProxyShared,
    plan: &Mutex<ConnPlan>,
    upstream: TcpStream,
    mut client: TcpStream,
) {
    let mut reader = FrameReader::new(upstream.try_clone().unwrap());
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let stalling = plan.lock().unwrap().stalled && shared.mode() == ProxyMode::StallProduce;
        if !stalling {
            plan.lock().unwrap().stalled = false;
            for frame in held.drain(..) {
                if client.write_all(&frame).is_err() {
                    break;
                }
            }
        }
        let frame = match reader.next() {
            Next::Frame(f) => f,
            Next::Idle => {
                if plan.lock().unwrap().closed {
                    break;
                }
                continue;
            }
            Next::Closed => break,
        };
        let correlation = frame
            .get(4..8)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let (drop_it, cut_it, stalled, cut_api_key) = {
            let p = plan.lock().unwrap();
            (
                correlation.is_some() && p.drop_response == correlation,
                correlation.is_some() && p.cut_response == correlation,
                p.stalled,
                p.cut_api_key,
            )
        };
        if drop_it {
            shared.stat(|s| s.cut_after_request += 1);
            shared.api_stat(cut_api_key, |s| s.cuts += 1);
            break;
        }
        if cut_it {
            let at = shared.rng.lock().unwrap().random_range(1..frame.len());
            let _ = client.write_all(&frame[..at]);
            let _ = client.flush();
            shared.stat(|s| s.cut_mid_response += 1);
            shared.api_stat(cut_api_key, |s| s.cuts += 1);
            thread::sleep(Duration::from_millis(2));
            break;
        }
        if stalled && shared.mode() == ProxyMode::StallProduce {
            shared.stat(|s| s.responses_held += 1);
            held.push(frame);
            continue;
        }
        if client.write_all(&frame).is_err() {
            break;
        }
    }
    close(plan, &client, &upstream);
}
