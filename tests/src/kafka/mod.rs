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
//! KRaft quorum), all PLAINTEXT; and, when the builder asks for [`Sasl`], one
//! SASL_PLAINTEXT listener per mechanism ([`Kafka::sasl_bootstrap`]); and, when it asks
//! for [`Tls`], its SSL and SASL_SSL listeners ([`Kafka::tls_bootstrap`]). Kafka's own Java
//! console clients run against any of them ([`Kafka::console_produce`],
//! [`Kafka::console_consume`]).
//!
//! Nothing outlives the test process: every JVM is started from one long-lived thread with
//! `PR_SET_PDEATHSIG`, so it is killed when the process dies however it dies, and a new
//! cluster first deletes what killed runs left in the temporary directory. On drop the nodes
//! are killed and their directory removed; when the drop happens during a panic, the tail of
//! each node's log is printed and the whole log kept (the path is printed).

mod admin;
mod builder;
mod jars;
mod java_clients;
mod node;
mod oauth;
mod process;
mod sasl;
mod segments;
mod tls;

pub use admin::PartitionState;
pub use builder::KafkaBuilder;
pub use jars::{LOG4J2, POM, jars, jars_dir, version};
pub use java_clients::{ClientRun, java_client_properties};
pub use oauth::{
    oauthbearer_initial_response, unsecured_jws, unsecured_jws_of, unsecured_jws_valid_for,
};
pub use process::spawn_owned;
pub use sasl::{Sasl, SaslMechanism, SaslUser};
pub use segments::StoredBatch;
pub use tls::{Issued, KeyKind, TestCa, Tls, TlsListener, Validity};

use node::Node;
use process::{DIR_PREFIX, NEXT_CLUSTER, cluster_id, remove_leftovers};

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::netns::run_in_namespace;

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
    sasl: Option<Sasl>,
    tls: Option<Tls>,
}

impl Kafka {
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

    /// The SASL settings and users the cluster was built with; panics if it has none.
    pub fn sasl(&self) -> &Sasl {
        self.sasl
            .as_ref()
            .expect("a cluster without SASL listeners (KafkaBuilder::sasl)")
    }

    /// `host:port` of every node's listener for `mechanism`, node 1 first.
    pub fn sasl_bootstrap_all(&self, mechanism: SaslMechanism) -> Vec<String> {
        self.node_ids()
            .into_iter()
            .map(|id| self.sasl_addr(id, mechanism).to_string())
            .collect()
    }

    /// The listeners of every node for `mechanism`, comma-separated.
    pub fn sasl_bootstrap(&self, mechanism: SaslMechanism) -> String {
        self.sasl_bootstrap_all(mechanism).join(",")
    }

    /// Node `id`'s listener for `mechanism`; panics if the cluster does not offer it.
    pub fn sasl_addr(&self, id: i32, mechanism: SaslMechanism) -> SocketAddr {
        let index = self
            .sasl()
            .mechanisms()
            .iter()
            .position(|&m| m == mechanism)
            .unwrap_or_else(|| panic!("this cluster does not offer {}", mechanism.name()));
        SocketAddr::from((self.host, self.node(id).sasl_listeners[index].0))
    }

    /// Node `id`'s TLS listener `name` (where it listens); panics if there is none.
    pub fn tls_addr(&self, id: i32, name: &str) -> SocketAddr {
        let tls = self
            .tls
            .as_ref()
            .expect("a cluster without TLS listeners (KafkaBuilder::tls)");
        SocketAddr::from((self.host, self.node(id).tls_ports[tls.index(name)]))
    }

    /// `host:port` of every node's TLS listener `name`, comma-separated.
    pub fn tls_bootstrap(&self, name: &str) -> String {
        self.node_ids()
            .into_iter()
            .map(|id| self.tls_addr(id, name).to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `text` with the SASL users' passwords hidden (see [`Sasl::redact`]).
    pub fn redact(&self, text: &str) -> String {
        match &self.sasl {
            Some(sasl) => sasl.redact(text),
            None => text.to_string(),
        }
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

    /// Runs `f` where the cluster's addresses are reachable (inside its namespace, if any).
    fn reach<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        match &self.netns {
            Some(ns) => run_in_namespace(ns, f),
            None => f(),
        }
    }

    /// The last `lines` lines of each node's storage format output (`format.log`), log,
    /// and stdout (where the JVM reports what kept it from starting), for a failure message.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            for path in [node.format_log(), node.log(), node.stdout_log()] {
                let text = self.redact(&tail(&path, lines));
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
