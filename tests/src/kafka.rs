//! Apache Kafka 4.x in KRaft mode, from its own jars, as the tests' reference broker.
//!
//! - [`jars`]: the broker's classpath, fetched once by Maven from `tests/kafka/pom.xml` into
//!   a cache outside the work tree (`$KAFKA_JARS` overrides the place) and reused.
//! - [`Kafka`]: a cluster of one or more nodes, each a JVM with the broker and controller
//!   roles, storage formatted with a fresh cluster id, on free loopback ports (or inside a
//!   network namespace). Ready once Metadata lists every broker. Topics with partitions,
//!   replication factor and configs; [`Kafka::kill`] (SIGKILL), [`Kafka::stop`] (SIGTERM: a
//!   controlled shutdown), [`Kafka::start`]; partition leaders and in-sync replicas;
//!   preferred-leader elections and reassignments through Kafka's own tools; what a
//!   replica stored, batch by batch, from its segment files ([`Kafka::stored_batches`]).
//!
//! Each node has three listeners: `CLIENT` (what producers and consumers use; it may
//! advertise another address, such as a proxy in front of it), `INTERNAL` (replication, and
//! the fixture's own admin connections, so a proxy never sees them) and `CONTROLLER` (the
//! KRaft quorum).
//!
//! Nothing outlives the test process: every JVM is started from one long-lived thread with
//! `PR_SET_PDEATHSIG`, so it is killed when the process dies however it dies, and a new
//! cluster first deletes what killed runs left in the temporary directory. On drop the nodes
//! are killed and their directory removed; when the drop happens during a panic, the tail of
//! each node's log is printed and the whole log kept (the path is printed).

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, Producer};

use crate::free_port;
use crate::netns::{ip_binary, run_in_namespace};

/// The Maven project that names Kafka's version and jars.
pub const POM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/kafka/pom.xml");
/// The log4j2 configuration every node uses (one log file per node).
pub const LOG4J2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/kafka/log4j2.properties");

/// Heap of each node's JVM: three nodes and the tests fit the machine with room to spare.
const HEAP: &str = "-Xmx512m";
/// Sizing of each node's JVM (and of the tools run through [`Kafka::tool`]).
const NODE_JVM: &[&str] = &[HEAP, "-Xms64m"];
/// Sizing of the JVM that reads segment files ([`Kafka::stored_batches`]): a short run that
/// touches no network, so a small heap and the client compiler only (it starts faster).
const SEGMENT_DUMP_JVM: &[&str] = &["-Xmx256m", "-XX:TieredStopAtLevel=1"];

/// The Kafka version `tests/kafka/pom.xml` pins (its `kafka.version` property).
pub fn version() -> String {
    let pom = fs::read_to_string(POM).unwrap_or_else(|e| panic!("read {POM}: {e}"));
    let start = pom
        .find("<kafka.version>")
        .map(|i| i + "<kafka.version>".len());
    let end = pom.find("</kafka.version>");
    match (start, end) {
        (Some(s), Some(e)) if s < e => pom[s..e].trim().to_string(),
        _ => panic!("{POM} has no <kafka.version> property"),
    }
}

/// Where the jars are kept: `$KAFKA_JARS` if set, else
/// `$XDG_CACHE_HOME/gateway-producer/kafka-VERSION` (or `~/.cache/...`).
pub fn jars_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KAFKA_JARS") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache
        .join("gateway-producer")
        .join(format!("kafka-{}", version()))
}

/// The directory of Kafka's jars, fetched by Maven on first use (about 45 MB, seconds on a
/// warm network) and reused by later runs. Needs `java` (17 or newer) and `mvn` on the
/// `PATH`; `cargo xtask test` installs both when missing. Panics with what to do otherwise.
pub fn jars() -> PathBuf {
    static JARS: OnceLock<PathBuf> = OnceLock::new();
    JARS.get_or_init(|| {
        let dir = jars_dir();
        let done = dir.join(".complete");
        if done.exists() {
            return dir;
        }
        let parent = dir.parent().expect("cache directory").to_path_buf();
        fs::create_dir_all(&parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        // Another test process may be fetching too: one at a time.
        let _lock = FileLock::take(&parent.join(".kafka-fetch.lock"));
        if done.exists() {
            return dir;
        }
        let staging = parent.join(format!(".kafka-fetch-{}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        let started = Instant::now();
        eprintln!(
            "kafka: fetching Apache Kafka {} with Maven into {}",
            version(),
            dir.display()
        );
        let status = Command::new("mvn")
            .args(["-q", "-B", "-Dstyle.color=never", "-f", POM, "dependency:copy-dependencies"])
            .arg(format!("-DoutputDirectory={}", staging.display()))
            .stdin(Stdio::null())
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run mvn ({e}): install Maven (`apt-get install -y maven`) or run `cargo xtask test`, which does")
            });
        assert!(status.success(), "mvn dependency:copy-dependencies for {POM} failed: {status}");
        let _ = fs::remove_dir_all(&dir);
        fs::rename(&staging, &dir)
            .unwrap_or_else(|e| panic!("move {} to {}: {e}", staging.display(), dir.display()));
        File::create(&done).unwrap_or_else(|e| panic!("create {}: {e}", done.display()));
        eprintln!("kafka: fetched in {:.1} s", started.elapsed().as_secs_f64());
        dir
    })
    .clone()
}

/// An exclusive `flock` on a file, released on drop.
struct FileLock(File);

impl FileLock {
    fn take(path: &Path) -> FileLock {
        let file = File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(
            rc,
            0,
            "flock {}: {}",
            path.display(),
            io::Error::last_os_error()
        );
        FileLock(file)
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as above.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Starts `command` from a thread that lives as long as the process, with the child set to
/// be SIGKILLed when that thread (so the process) dies: a test that panics, is killed or
/// exits leaves no broker running. (`PR_SET_PDEATHSIG` follows the thread that forked, which
/// is why one thread does every fork.)
pub fn spawn_owned(command: Command) -> io::Result<Child> {
    type Job = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("kafka-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    // SAFETY: prctl only changes this child's own death signal; it is
                    // async-signal-safe, as a pre_exec hook requires.
                    unsafe {
                        command.pre_exec(|| {
                            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                                return Err(io::Error::last_os_error());
                            }
                            Ok(())
                        });
                    }
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("spawn the spawner thread");
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap()
        .send((command, tx))
        .map_err(|_| io::Error::other("spawner thread gone"))?;
    rx.recv()
        .map_err(|_| io::Error::other("spawner thread gone"))?
}

/// Where clusters live: `TMP/kp-kafka-PID-N`.
const DIR_PREFIX: &str = "kp-kafka-";

static NEXT_CLUSTER: AtomicU32 = AtomicU32::new(0);

/// Removes cluster directories of processes that no longer exist, SIGKILLing any JVM still
/// running from one (its command line names the directory).
fn remove_leftovers() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(DIR_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        kill_jvms_under(&dir);
        let _ = fs::remove_dir_all(&dir);
    }
}

/// SIGKILLs processes whose command line mentions `dir`.
fn kill_jvms_under(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(procs) = fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let cmdline = fs::read(p.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            // SAFETY: kill on a pid; a pid that went away makes it fail harmlessly.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// A fresh Kafka cluster id: 16 random bytes, base64url without padding, as Kafka's
/// `Uuid.toString` writes them.
fn cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes: [u8; 16] = rand::random();
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = String::new();
    for b in bytes {
        bits = (bits << 8) | u32::from(b);
        n += 8;
        while n >= 6 {
            n -= 6;
            out.push(ALPHABET[((bits >> n) & 63) as usize] as char);
        }
    }
    if n > 0 {
        out.push(ALPHABET[((bits << (6 - n)) & 63) as usize] as char);
    }
    out
}

/// How to build a [`Kafka`] cluster: [`Kafka::builder`], adjust, [`KafkaBuilder::start`].
#[derive(Clone, Debug)]
pub struct KafkaBuilder {
    nodes: usize,
    controllers: usize,
    host: Ipv4Addr,
    netns: Option<String>,
    client_ports: Option<Vec<u16>>,
    advertised: Option<Vec<String>>,
    configs: Vec<(String, String)>,
}

impl KafkaBuilder {
    /// Listen on `host` inside network namespace `netns` (made by [`crate::netns::NetNs`])
    /// instead of on 127.0.0.1: the JVMs run through `ip netns exec`, and the fixture's own
    /// admin connections are made from inside it.
    pub fn in_namespace(mut self, netns: &str, host: Ipv4Addr) -> Self {
        self.netns = Some(netns.to_string());
        self.host = host;
        self
    }

    /// How many nodes (the first ones) are also KRaft controllers, forming the quorum
    /// (default: every node, up to three); the others are brokers only. One controller
    /// lets a test take two of three brokers down without losing the quorum, so the
    /// controller goes on shrinking in-sync replica sets and moving leaders.
    pub fn controllers(mut self, controllers: usize) -> Self {
        assert!(
            (1..=self.nodes).contains(&controllers),
            "between 1 and {} controllers",
            self.nodes
        );
        self.controllers = controllers;
        self
    }

    /// The `CLIENT` listener ports, one per node (default: free ports), e.g. to point a
    /// proxy at them before the cluster starts.
    pub fn client_ports(mut self, ports: Vec<u16>) -> Self {
        assert_eq!(ports.len(), self.nodes, "one client port per node");
        self.client_ports = Some(ports);
        self
    }

    /// What each node's `CLIENT` listener advertises (`host:port`, one per node; default:
    /// where it listens), e.g. a proxy in front of it, or a name only the client can map.
    pub fn advertised(mut self, addresses: Vec<String>) -> Self {
        assert_eq!(
            addresses.len(),
            self.nodes,
            "one advertised address per node"
        );
        self.advertised = Some(addresses);
        self
    }

    /// A broker setting (`server.properties` line) on every node, replacing the fixture's
    /// default for that key if it has one.
    pub fn config(mut self, key: &str, value: &str) -> Self {
        self.configs.retain(|(k, _)| k != key);
        self.configs.push((key.to_string(), value.to_string()));
        self
    }

    /// Formats every node's storage with a fresh cluster id, starts the nodes and waits
    /// until Metadata lists every broker (at most 90 s; panics with the nodes' logs
    /// otherwise).
    pub fn start(self) -> Kafka {
        let jars = jars();
        remove_leftovers();
        let dir = std::env::temp_dir().join(format!(
            "{DIR_PREFIX}{}-{}",
            std::process::id(),
            NEXT_CLUSTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let n = self.nodes;
        let client_ports = self
            .client_ports
            .clone()
            .unwrap_or_else(|| (0..n).map(|_| free_port()).collect());
        let nodes: Vec<Node> = (0..n)
            .map(|i| {
                let id = i as i32 + 1;
                let node_dir = dir.join(format!("node{id}"));
                fs::create_dir_all(node_dir.join("data")).expect("create node directory");
                Node {
                    id,
                    controller: i < self.controllers,
                    client_port: client_ports[i],
                    internal_port: free_port(),
                    controller_port: free_port(),
                    advertised: self
                        .advertised
                        .as_ref()
                        .map(|a| a[i].clone())
                        .unwrap_or_else(|| format!("{}:{}", self.host, client_ports[i])),
                    dir: node_dir,
                    child: Mutex::new(None),
                }
            })
            .collect();
        let kafka = Kafka {
            dir,
            jars,
            host: self.host,
            netns: self.netns.clone(),
            nodes,
            cluster_id: cluster_id(),
            keep: Mutex::new(false),
        };
        let voters: Vec<String> = kafka
            .nodes
            .iter()
            .filter(|node| node.controller)
            .map(|node| format!("{}@{}:{}", node.id, kafka.host, node.controller_port))
            .collect();
        for node in &kafka.nodes {
            kafka.write_properties(node, &voters.join(","), &self.configs);
        }
        let started = Instant::now();
        // Format every node at once: each is a JVM start.
        thread::scope(|s| {
            for node in &kafka.nodes {
                let k = &kafka;
                s.spawn(move || k.format(node));
            }
        });
        for node in &kafka.nodes {
            kafka.spawn(node);
        }
        kafka.wait_for_brokers(n, Duration::from_secs(90));
        eprintln!(
            "kafka: {n} node(s) ready in {:.1} s (Kafka {}, cluster {}, client ports {:?}, logs in {})",
            started.elapsed().as_secs_f64(),
            version(),
            kafka.cluster_id,
            client_ports,
            kafka.dir.display()
        );
        kafka
    }
}

/// One node of a [`Kafka`] cluster.
struct Node {
    id: i32,
    /// A KRaft controller (a voter) besides a broker.
    controller: bool,
    client_port: u16,
    internal_port: u16,
    controller_port: u16,
    advertised: String,
    dir: PathBuf,
    child: Mutex<Option<Child>>,
}

impl Node {
    fn log(&self) -> PathBuf {
        self.dir.join("broker.log")
    }
    fn stdout_log(&self) -> PathBuf {
        self.dir.join("stdout.log")
    }
    fn format_log(&self) -> PathBuf {
        self.dir.join("format.log")
    }
    fn properties(&self) -> PathBuf {
        self.dir.join("server.properties")
    }
}

/// The state of one partition, from Metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionState {
    /// Partition number.
    pub partition: i32,
    /// Node id of the leader (`-1`: none).
    pub leader: i32,
    /// Replica node ids, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
}

/// One record batch as a node stored it in a partition's segment files: a batch line of
/// Kafka's `DumpLogSegments`. Sequences, producer ids and epochs are `-1` where the batch has
/// none (a producer that is not idempotent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBatch {
    /// The node whose replica this was read from.
    pub node: i32,
    /// Partition number.
    pub partition: i32,
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// Records in the batch (`last_offset - base_offset + 1`, unless compaction removed some).
    pub count: i64,
    /// Producer sequence number of the first record.
    pub base_sequence: i64,
    /// Producer sequence number of the last record.
    pub last_sequence: i64,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i64,
    /// Leader epoch of the partition when the leader appended the batch.
    pub partition_leader_epoch: i64,
    /// Part of a transaction.
    pub is_transactional: bool,
    /// A control batch (a transaction marker), not records a producer sent.
    pub is_control: bool,
    /// The batch's largest record timestamp: the producer's create time, or the broker's
    /// append time when `log_append_time`.
    pub max_timestamp: i64,
    /// `max_timestamp` is the broker's append time (topic `message.timestamp.type` set to
    /// `LogAppendTime`), not what the producer stamped.
    pub log_append_time: bool,
    /// Size in bytes of the batch in the segment.
    pub size: i64,
    /// Whether its CRC matches its contents.
    pub crc_valid: bool,
}

impl StoredBatch {
    /// Parses a batch line of `DumpLogSegments` (`baseOffset: 0 lastOffset: 9 count: 10 ...`).
    fn parse(node: i32, partition: i32, line: &str) -> Result<StoredBatch, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let value = |name: &str| -> Result<&str, String> {
            words
                .iter()
                .position(|w| *w == name)
                .and_then(|i| words.get(i + 1).copied())
                .ok_or_else(|| format!("DumpLogSegments: no {name} in {line:?}"))
        };
        let number = |name: &str| -> Result<i64, String> {
            let v = value(name)?;
            v.parse()
                .map_err(|e| format!("DumpLogSegments: {name} {v:?} in {line:?}: {e}"))
        };
        let flag = |name: &str| -> Result<bool, String> {
            let v = value(name)?;
            v.parse()
                .map_err(|e| format!("DumpLogSegments: {name} {v:?} in {line:?}: {e}"))
        };
        // The timestamp is labelled with its type.
        let (max_timestamp, log_append_time) = if words.contains(&"LogAppendTime:") {
            (number("LogAppendTime:")?, true)
        } else {
            (number("CreateTime:")?, false)
        };
        Ok(StoredBatch {
            node,
            partition,
            base_offset: number("baseOffset:")?,
            last_offset: number("lastOffset:")?,
            count: number("count:")?,
            base_sequence: number("baseSequence:")?,
            last_sequence: number("lastSequence:")?,
            producer_id: number("producerId:")?,
            producer_epoch: number("producerEpoch:")?,
            partition_leader_epoch: number("partitionLeaderEpoch:")?,
            is_transactional: flag("isTransactional:")?,
            is_control: flag("isControl:")?,
            max_timestamp,
            log_append_time,
            size: number("size:")?,
            crc_valid: flag("isvalid:")?,
        })
    }
}

/// A Kafka cluster for one test (see the module documentation). Killed and removed on drop.
/// Node ids are `1..=n`. Every method takes `&self`, so one thread may kill or restart nodes
/// while another produces.
pub struct Kafka {
    dir: PathBuf,
    jars: PathBuf,
    host: Ipv4Addr,
    netns: Option<String>,
    nodes: Vec<Node>,
    cluster_id: String,
    keep: Mutex<bool>,
}

impl Kafka {
    /// A builder for a cluster of `nodes` nodes, each broker and controller, on 127.0.0.1.
    pub fn builder(nodes: usize) -> KafkaBuilder {
        assert!(nodes >= 1, "a cluster has at least one node");
        let replication = nodes.min(3).to_string();
        let builder = KafkaBuilder {
            nodes,
            controllers: nodes.min(3),
            host: Ipv4Addr::LOCALHOST,
            netns: None,
            client_ports: None,
            advertised: None,
            configs: Vec::new(),
        };
        builder
            .config("offsets.topic.replication.factor", &replication)
            .config("transaction.state.log.replication.factor", &replication)
    }

    /// One node on free loopback ports.
    pub fn single() -> Kafka {
        Kafka::builder(1).start()
    }

    /// Three nodes on free loopback ports.
    pub fn three_nodes() -> Kafka {
        Kafka::builder(3).start()
    }

    /// `host:port` of every node's `CLIENT` listener (where it listens, not what it
    /// advertises), node 1 first.
    pub fn bootstrap_all(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("{}:{}", self.host, n.client_port))
            .collect()
    }

    /// The `CLIENT` listeners of every node, comma-separated, as librdkafka takes them.
    pub fn bootstrap(&self) -> String {
        self.bootstrap_all().join(",")
    }

    /// The `CLIENT` listener of node `id`.
    pub fn client_addr(&self, id: i32) -> SocketAddr {
        SocketAddr::from((self.host, self.node(id).client_port))
    }

    /// What node `id`'s `CLIENT` listener advertises.
    pub fn advertised(&self, id: i32) -> &str {
        &self.node(id).advertised
    }

    /// Node ids, `1..=n`.
    pub fn node_ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// The cluster's directory (node data and logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn node(&self, id: i32) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id} in this cluster"))
    }

    /// The `INTERNAL` listeners of the nodes that run now (every node if none does).
    fn internal_bootstrap(&self) -> String {
        let live: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| self.is_running(n.id))
            .map(|n| format!("{}:{}", self.host, n.internal_port))
            .collect();
        if live.is_empty() {
            self.nodes
                .iter()
                .map(|n| format!("{}:{}", self.host, n.internal_port))
                .collect::<Vec<_>>()
                .join(",")
        } else {
            live.join(",")
        }
    }

    fn write_properties(&self, node: &Node, voters: &str, extra: &[(String, String)]) {
        let host = self.host;
        let mut listeners = format!(
            "CLIENT://{host}:{},INTERNAL://{host}:{}",
            node.client_port, node.internal_port
        );
        let mut advertised = format!(
            "CLIENT://{},INTERNAL://{host}:{}",
            node.advertised, node.internal_port
        );
        let roles = if node.controller {
            let controller = format!(",CONTROLLER://{host}:{}", node.controller_port);
            listeners.push_str(&controller);
            advertised.push_str(&controller);
            "broker,controller"
        } else {
            "broker"
        };
        let mut settings: Vec<(String, String)> = [
            ("process.roles", roles.to_string()),
            ("node.id", node.id.to_string()),
            ("controller.quorum.voters", voters.to_string()),
            ("listeners", listeners),
            ("advertised.listeners", advertised),
            (
                "listener.security.protocol.map",
                "CLIENT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT".to_string(),
            ),
            ("inter.broker.listener.name", "INTERNAL".to_string()),
            ("controller.listener.names", "CONTROLLER".to_string()),
            ("log.dirs", node.dir.join("data").display().to_string()),
            // Tests create their topics; a misspelt one must not appear by itself.
            ("auto.create.topics.enable", "false".to_string()),
            ("num.partitions", "1".to_string()),
            ("offsets.topic.num.partitions", "3".to_string()),
            ("transaction.state.log.num.partitions", "1".to_string()),
            ("transaction.state.log.min.isr", "1".to_string()),
            ("group.initial.rebalance.delay.ms", "0".to_string()),
            // Two cores for the whole machine: fewer threads than a production broker.
            ("num.network.threads", "2".to_string()),
            ("num.io.threads", "2".to_string()),
            ("background.threads", "2".to_string()),
            ("num.replica.fetchers", "1".to_string()),
            ("num.recovery.threads.per.data.dir", "1".to_string()),
            // A killed broker is fenced (its partitions get new leaders) within about 3 s
            // rather than 9.
            ("broker.heartbeat.interval.ms", "500".to_string()),
            ("broker.session.timeout.ms", "3000".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in extra {
            settings.retain(|(key, _)| key != k);
            settings.push((k.clone(), v.clone()));
        }
        let text: String = settings.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        fs::write(node.properties(), text).expect("write server.properties");
    }

    /// `java` with the broker's classpath and a node's JVM sizing, through `ip netns exec`
    /// when in a namespace; it logs to `node_dir/broker.log` and runs in `node_dir`.
    fn java(&self, node_dir: &Path) -> Command {
        self.java_sized(node_dir, NODE_JVM)
    }

    /// [`Kafka::java`] with other heap and compiler options (`sizing`).
    fn java_sized(&self, node_dir: &Path, sizing: &[&str]) -> Command {
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new(ip_binary());
                c.args(["netns", "exec", ns, "java"]);
                c
            }
            None => Command::new("java"),
        };
        command
            .args(sizing)
            .arg("-XX:+UseSerialGC")
            .arg("-XX:+ExitOnOutOfMemoryError")
            .arg("-Djava.awt.headless=true")
            .arg(format!("-Dlog4j2.configurationFile={LOG4J2}"))
            .arg(format!(
                "-Dgateway.kafka.log={}",
                node_dir.join("broker.log").display()
            ))
            .arg("-cp")
            .arg(format!("{}/*", self.jars.display()))
            .current_dir(node_dir)
            .stdin(Stdio::null());
        command
    }

    /// Formats `node`'s storage with the cluster id. What the tool printed, its exit status
    /// and how long it took go to the node's `format.log` (kept with the node's other logs
    /// when a test fails, and in [`Kafka::log_tails`]) and, on failure, into the panic.
    fn format(&self, node: &Node) {
        let started = Instant::now();
        let mut command = self.java(&node.dir);
        command
            .args([
                "kafka.tools.StorageTool",
                "format",
                "-t",
                &self.cluster_id,
                "-c",
            ])
            .arg(node.properties());
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run java ({e}): install Java 17 (`apt-get install -y openjdk-17-jre-headless`) or run `cargo xtask test`, which does"));
        let report = format!(
            "{command:?}\nexit: {} after {:.1} s\n--- stdout ---\n{}\n--- stderr ---\n{}\n",
            out.status,
            started.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let written = fs::write(node.format_log(), &report);
        assert!(
            out.status.success(),
            "kafka-storage format of node {} failed ({}; {}):\n{report}",
            node.id,
            out.status,
            match written {
                Ok(()) => format!("also in {}", node.format_log().display()),
                Err(e) => format!("cannot write {}: {e}", node.format_log().display()),
            }
        );
    }

    fn spawn(&self, node: &Node) {
        let stdout = File::options()
            .create(true)
            .append(true)
            .open(node.stdout_log())
            .expect("node stdout log");
        let mut command = self.java(&node.dir);
        command
            .arg("kafka.Kafka")
            .arg(node.properties())
            .stdout(stdout.try_clone().expect("log file"))
            .stderr(stdout);
        let child =
            spawn_owned(command).unwrap_or_else(|e| panic!("cannot start node {}: {e}", node.id));
        *node.child.lock().unwrap() = Some(child);
    }

    /// Whether node `id`'s JVM runs (it may not serve yet).
    pub fn is_running(&self, id: i32) -> bool {
        let node = self.node(id);
        let mut child = node.child.lock().unwrap();
        match child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILLs node `id` (a crash: no controlled shutdown) and reaps it.
    pub fn kill(&self, id: i32) {
        let node = self.node(id);
        if let Some(mut child) = node.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        eprintln!("kafka: node {id} killed (SIGKILL)");
    }

    /// SIGTERMs node `id`, which shuts down in a controlled way (hands its leaderships over
    /// first), and waits until it exits (SIGKILL after 60 s).
    pub fn stop(&self, id: i32) {
        let node = self.node(id);
        let started = Instant::now();
        if let Some(mut child) = node.child.lock().unwrap().take() {
            // SAFETY: kill on the pid of our own child, which has not been reaped.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            let until = Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > until {
                    eprintln!("kafka: node {id} still running 60 s after SIGTERM; SIGKILL");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        eprintln!(
            "kafka: node {id} stopped (SIGTERM, controlled shutdown) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    /// Starts node `id` again (it keeps its data) and waits until Metadata lists it.
    pub fn start(&self, id: i32) {
        assert!(!self.is_running(id), "node {id} runs already");
        let started = Instant::now();
        self.spawn(self.node(id));
        let until = Instant::now() + Duration::from_secs(90);
        loop {
            if self.brokers().contains(&id) {
                break;
            }
            self.check_alive(id);
            assert!(
                Instant::now() < until,
                "node {id} did not rejoin within 90 s{}",
                self.log_tails(40)
            );
            thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "kafka: node {id} started again, listed in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    fn check_alive(&self, id: i32) {
        let node = self.node(id);
        let mut child = node.child.lock().unwrap();
        if let Some(c) = child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            *child = None;
            drop(child);
            panic!("kafka node {id} exited ({status}){}", self.log_tails(60));
        }
    }

    /// Runs `f` where the cluster's addresses are reachable (inside its namespace, if any).
    fn reach<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        match &self.netns {
            Some(ns) => run_in_namespace(ns, f),
            None => f(),
        }
    }

    fn admin_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.internal_bootstrap())
            .set("socket.timeout.ms", "10000")
            .set("log_level", "3");
        config
    }

    /// Node ids Metadata lists now (through the `INTERNAL` listeners), empty when no node
    /// answers.
    pub fn brokers(&self) -> Vec<i32> {
        let config = self.admin_config();
        self.reach(move || {
            let Ok(client) = config.create::<BaseProducer>() else {
                return Vec::new();
            };
            match client.client().fetch_metadata(None, Duration::from_secs(2)) {
                Ok(m) => {
                    let mut ids: Vec<i32> = m.brokers().iter().map(|b| b.id()).collect();
                    ids.sort_unstable();
                    ids
                }
                Err(_) => Vec::new(),
            }
        })
    }

    fn wait_for_brokers(&self, n: usize, timeout: Duration) {
        let until = Instant::now() + timeout;
        loop {
            if self.brokers().len() >= n {
                return;
            }
            for node in &self.nodes {
                self.check_alive(node.id);
            }
            if Instant::now() > until {
                panic!(
                    "kafka: Metadata did not list {n} brokers within {timeout:?}{}",
                    self.log_tails(40)
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Creates `name` with `partitions` partitions, replicated on every node up to three.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        let replication = self.nodes.len().min(3) as i32;
        self.create_topic_with(name, partitions, replication, &[]);
    }

    /// Creates `name` with `partitions` partitions, `replication` replicas each and the
    /// topic `configs` (`min.insync.replicas`, say), then waits until every partition has a
    /// leader. Panics if Kafka refuses.
    pub fn create_topic_with(
        &self,
        name: &str,
        partitions: i32,
        replication: i32,
        configs: &[(&str, &str)],
    ) {
        let config = self.admin_config();
        let configs: Vec<(String, String)> = configs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let name_owned = name.to_string();
        let result = self.reach(move || {
            let admin: AdminClient<DefaultClientContext> =
                config.create().map_err(|e| e.to_string())?;
            let mut topic = NewTopic::new(
                &name_owned,
                partitions,
                TopicReplication::Fixed(replication),
            );
            for (k, v) in &configs {
                topic = topic.set(k, v);
            }
            let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
            let results = futures_executor::block_on(admin.create_topics([&topic], &options))
                .map_err(|e| e.to_string())?;
            for r in results {
                r.map_err(|(t, e)| format!("{t}: {e}"))?;
            }
            Ok::<(), String>(())
        });
        if let Err(e) = result {
            panic!("kafka: create topic {name}: {e}");
        }
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let parts = self.partitions(name);
            if parts.len() == partitions as usize && parts.iter().all(|p| p.leader >= 0) {
                return;
            }
            assert!(
                Instant::now() < until,
                "kafka: topic {name} has no leader for every partition after 30 s: {parts:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Leader, replicas and in-sync replicas of each partition of `topic`, by partition
    /// number (empty when the topic is unknown or no node answers).
    pub fn partitions(&self, topic: &str) -> Vec<PartitionState> {
        let config = self.admin_config();
        let topic = topic.to_string();
        self.reach(move || {
            let Ok(client) = config.create::<BaseProducer>() else {
                return Vec::new();
            };
            let Ok(m) = client
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(5))
            else {
                return Vec::new();
            };
            let Some(t) = m.topics().iter().find(|t| t.name() == topic) else {
                return Vec::new();
            };
            if t.error().is_some() {
                return Vec::new();
            }
            let mut parts: Vec<PartitionState> = t
                .partitions()
                .iter()
                .map(|p| PartitionState {
                    partition: p.id(),
                    leader: p.leader(),
                    replicas: p.replicas().to_vec(),
                    isr: p.isr().to_vec(),
                })
                .collect();
            parts.sort_by_key(|p| p.partition);
            parts
        })
    }

    /// The node leading the most partitions of `topic` (the lowest id on a tie).
    pub fn busiest_leader(&self, topic: &str) -> i32 {
        let parts = self.partitions(topic);
        let mut best = (0usize, i32::MAX);
        for id in self.node_ids() {
            let led = parts.iter().filter(|p| p.leader == id).count();
            if led > best.0 || (led == best.0 && id < best.1) {
                best = (led, id);
            }
        }
        best.1
    }

    /// Waits until every partition of `topic` has all its replicas in sync (a restarted
    /// node caught up), at most `timeout`. Returns whether it happened.
    pub fn wait_in_sync(&self, topic: &str, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        loop {
            let parts = self.partitions(topic);
            if !parts.is_empty()
                && parts.iter().all(|p| {
                    let mut a = p.replicas.clone();
                    let mut b = p.isr.clone();
                    a.sort_unstable();
                    b.sort_unstable();
                    a == b
                })
            {
                return true;
            }
            if Instant::now() > until {
                return false;
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs one of Kafka's command-line tools (`class`, e.g.
    /// `org.apache.kafka.tools.LeaderElectionCommand`) against this cluster's `INTERNAL`
    /// listeners; returns its standard output. Panics if it fails.
    pub fn tool(&self, class: &str, args: &[&str]) -> String {
        let out = self
            .java(&self.dir)
            .arg(class)
            .arg("--bootstrap-server")
            .arg(self.internal_bootstrap())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {class}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{class} {} failed ({}):\n{stdout}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// The record batches of partition `partition` of `topic`, in log order, read from the
    /// segment files of one replica with Kafka's `DumpLogSegments` (run like the nodes, in the
    /// cluster's namespace if any, with a small JVM). The replica is node 1's when node 1 runs
    /// and holds one, else that of another running node holding one (in-sync first, then the
    /// lowest id); [`StoredBatch::node`] says which. These are that replica's segments: a
    /// follower may lag the leader, and any replica may hold batches not yet committed.
    /// Panics, with `DumpLogSegments`' standard error, if they cannot be read; see
    /// [`Kafka::try_stored_batches`] for an error instead.
    pub fn stored_batches(&self, topic: &str, partition: i32) -> Vec<StoredBatch> {
        self.try_stored_batches(topic, partition)
            .unwrap_or_else(|e| panic!("kafka: stored batches of {topic}-{partition}: {e}"))
    }

    /// [`Kafka::stored_batches`], returning what went wrong (no running node holds the
    /// partition, `DumpLogSegments` failed, with its standard error, or printed a batch line
    /// it cannot parse) rather than panicking.
    pub fn try_stored_batches(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<StoredBatch>, String> {
        let name = format!("{topic}-{partition}");
        let state = self
            .partitions(topic)
            .into_iter()
            .find(|p| p.partition == partition);
        // A node holds a replica if Metadata says so (when it answers) and has its directory.
        let holds = |n: &Node| {
            n.dir.join("data").join(&name).is_dir()
                && state.as_ref().is_none_or(|s| s.replicas.contains(&n.id))
        };
        let in_sync = |n: &Node| state.as_ref().is_some_and(|s| s.isr.contains(&n.id));
        let node = self
            .nodes
            .iter()
            .filter(|n| self.is_running(n.id) && holds(n))
            .min_by_key(|n| (n.id != 1, !in_sync(n), n.id))
            .ok_or_else(|| format!("no running node holds a replica (Metadata: {state:?})"))?;
        let dir = node.dir.join("data").join(&name);
        let mut segments: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(|e| format!("read {}: {e}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<_>>()
            .map_err(|e| format!("read {}: {e}", dir.display()))?;
        // Named by base offset, zero-padded: in name order, in log order.
        segments.retain(|p| p.extension().is_some_and(|x| x == "log"));
        segments.sort();
        if segments.is_empty() {
            return Err(format!("no segment files in {}", dir.display()));
        }
        let files: Vec<String> = segments.iter().map(|p| p.display().to_string()).collect();
        let out = self
            .java_sized(&self.dir, SEGMENT_DUMP_JVM)
            .arg("org.apache.kafka.tools.DumpLogSegments")
            .arg("--files")
            .arg(files.join(","))
            .output()
            .map_err(|e| format!("cannot run DumpLogSegments: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "DumpLogSegments {files:?} failed ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        stdout
            .lines()
            .filter(|l| l.starts_with("baseOffset: "))
            .map(|line| StoredBatch::parse(node.id, partition, line))
            .collect()
    }

    /// Moves each partition of `topic` whose leader is not its preferred replica (the
    /// first listed) back to it: Kafka's preferred-leader election.
    pub fn elect_preferred_leaders(&self, topic: &str) -> String {
        let json = self.dir.join(format!("elect-{topic}.json"));
        let parts: Vec<String> = self
            .partitions(topic)
            .iter()
            .map(|p| format!("{{\"topic\":\"{topic}\",\"partition\":{}}}", p.partition))
            .collect();
        fs::write(&json, format!("{{\"partitions\":[{}]}}", parts.join(",")))
            .expect("write election file");
        self.tool(
            "org.apache.kafka.tools.LeaderElectionCommand",
            &[
                "--election-type",
                "PREFERRED",
                "--path-to-json-file",
                &json.display().to_string(),
            ],
        )
    }

    /// Reassigns the replicas of `topic`'s partitions (`(partition, replicas)`, preferred
    /// leader first) with Kafka's reassignment tool and waits until it completes (at most
    /// 60 s).
    pub fn reassign(&self, topic: &str, assignment: &[(i32, Vec<i32>)]) {
        let json = self.dir.join(format!("reassign-{topic}.json"));
        let parts: Vec<String> = assignment
            .iter()
            .map(|(p, replicas)| {
                let r: Vec<String> = replicas.iter().map(i32::to_string).collect();
                format!(
                    "{{\"topic\":\"{topic}\",\"partition\":{p},\"replicas\":[{}]}}",
                    r.join(",")
                )
            })
            .collect();
        fs::write(
            &json,
            format!("{{\"version\":1,\"partitions\":[{}]}}", parts.join(",")),
        )
        .expect("write reassignment file");
        let file = json.display().to_string();
        let class = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand";
        self.tool(class, &["--reassignment-json-file", &file, "--execute"]);
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.tool(class, &["--reassignment-json-file", &file, "--verify"]);
            if !out.contains("is still in progress") {
                return;
            }
            assert!(
                Instant::now() < until,
                "reassignment of {topic} still running after 60 s:\n{out}"
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last `lines` lines of each node's storage format output (`format.log`), log,
    /// and stdout (where the JVM reports what kept it from starting), for a failure message.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            for path in [node.format_log(), node.log(), node.stdout_log()] {
                let text = tail(&path, lines);
                if !text.is_empty() {
                    out.push_str(&format!(
                        "\n--- node {} {} (last {lines} lines) ---\n{text}",
                        node.id,
                        path.display()
                    ));
                }
            }
        }
        out
    }

    /// Keep the cluster's directory (logs and data) after drop, e.g. to study a failure.
    pub fn keep_logs(&self) {
        *self.keep.lock().unwrap() = true;
    }

    /// Waits until node `id`'s `CLIENT` listener accepts connections (at most `timeout`).
    pub fn wait_for_listener(&self, id: i32, timeout: Duration) -> bool {
        let addr = self.client_addr(id);
        self.reach(move || {
            let until = Instant::now() + timeout;
            while Instant::now() < until {
                if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                    return true;
                }
                thread::sleep(Duration::from_millis(20));
            }
            false
        })
    }
}

/// The last `lines` lines of a file (empty if it cannot be read).
fn tail(path: &Path, lines: usize) -> String {
    let Ok(file) = File::open(path) else {
        return String::new();
    };
    let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    let from = all.len().saturating_sub(lines);
    all[from..].join("\n")
}

impl Drop for Kafka {
    fn drop(&mut self) {
        for node in &self.nodes {
            if let Some(mut child) = node.child.lock().unwrap().take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let failed = thread::panicking();
        if failed {
            let _ = writeln!(
                io::stderr(),
                "kafka: the test failed;{}",
                self.log_tails(60)
            );
        }
        if failed || *self.keep.lock().unwrap() {
            // Out of the leftovers' way: kept until someone deletes it.
            let kept = std::env::temp_dir().join(format!(
                "kp-kept-{}",
                self.dir.file_name().unwrap_or_default().to_string_lossy()
            ));
            let _ = fs::rename(&self.dir, &kept);
            let _ = writeln!(
                io::stderr(),
                "kafka: logs and data kept in {}",
                kept.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StoredBatch;

    #[test]
    fn parses_a_batch_line_of_dump_log_segments() {
        // As Kafka 4.4.0's DumpLogSegments prints a batch of an idempotent producer.
        let line = "baseOffset: 13 lastOffset: 15 count: 3 baseSequence: 13 lastSequence: 15 \
                    producerId: 1000 producerEpoch: 2 partitionLeaderEpoch: 4 \
                    isTransactional: false isControl: false deleteHorizonMs: OptionalLong.empty \
                    position: 1172 CreateTime: 1796221063986 size: 176 magic: 2 \
                    compresscodec: none crc: 3513265677 isvalid: true";
        let b = StoredBatch::parse(1, 2, line).unwrap();
        assert_eq!(
            b,
            StoredBatch {
                node: 1,
                partition: 2,
                base_offset: 13,
                last_offset: 15,
                count: 3,
                base_sequence: 13,
                last_sequence: 15,
                producer_id: 1000,
                producer_epoch: 2,
                partition_leader_epoch: 4,
                is_transactional: false,
                is_control: false,
                max_timestamp: 1796221063986,
                log_append_time: false,
                size: 176,
                crc_valid: true,
            }
        );
        let appended = line.replace("CreateTime:", "LogAppendTime:");
        let b = StoredBatch::parse(1, 2, &appended).unwrap();
        assert!(b.log_append_time);
        assert_eq!(b.max_timestamp, 1796221063986);
        let err = StoredBatch::parse(1, 2, &line.replace("producerId: 1000 ", "")).unwrap_err();
        assert!(err.contains("no producerId:"), "{err}");
    }
}
