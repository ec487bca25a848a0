//! How a cluster is asked for: nodes, controllers, ports, advertised addresses, broker
//! settings; and its start.

use std::fs;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use crate::free_port;

use super::{
    DIR_PREFIX, Kafka, NEXT_CLUSTER, Node, Sasl, SaslMechanism, Tls, cluster_id, jars,
    remove_leftovers, version,
};

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
    sasl: Option<Sasl>,
    /// Per mechanism: each node's listener port and what it advertises.
    sasl_listeners: Vec<(SaslMechanism, Vec<u16>, Vec<String>)>,
    tls: Option<Tls>,
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

    /// SASL_PLAINTEXT listeners besides the others: one per mechanism `sasl` enables, on
    /// free ports of every node, with its users ([`Kafka::sasl_bootstrap`],
    /// [`Kafka::sasl`]).
    pub fn sasl(mut self, sasl: Sasl) -> Self {
        assert!(!sasl.mechanisms().is_empty(), "SASL with no mechanism");
        self.sasl = Some(sasl);
        self
    }

    /// Node `i`'s listener for `mechanism` on port `ports[i]`, advertising `advertised[i]`
    /// (`host:port`; default: a free port, advertised where it listens), e.g. a proxy in
    /// front of it, bound first with that port upstream, so that every connection a client
    /// makes after bootstrap goes through it. Needs [`KafkaBuilder::sasl`] offering
    /// `mechanism`.
    pub fn sasl_listener(
        mut self,
        mechanism: SaslMechanism,
        ports: Vec<u16>,
        advertised: Vec<String>,
    ) -> Self {
        assert_eq!(ports.len(), self.nodes, "one port per node");
        assert_eq!(
            advertised.len(),
            self.nodes,
            "one advertised address per node"
        );
        self.sasl_listeners.retain(|(m, _, _)| *m != mechanism);
        self.sasl_listeners.push((mechanism, ports, advertised));
        self
    }

    /// SSL and SASL_SSL listeners besides the others, each with its certificate (see
    /// [`Tls`]; [`Kafka::tls_addr`], [`Kafka::tls_bootstrap`]).
    pub fn tls(mut self, tls: Tls) -> Self {
        assert!(!tls.listeners().is_empty(), "TLS with no listener");
        self.tls = Some(tls);
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
        let mechanisms: Vec<SaslMechanism> = self
            .sasl
            .iter()
            .flat_map(|s| s.mechanisms().to_vec())
            .collect();
        for (m, _, _) in &self.sasl_listeners {
            assert!(
                mechanisms.contains(m),
                "a listener for {}, which the cluster does not offer",
                m.name()
            );
        }
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
                    sasl_listeners: mechanisms
                        .iter()
                        .map(
                            |m| match self.sasl_listeners.iter().find(|(l, _, _)| l == m) {
                                Some((_, ports, advertised)) => (ports[i], advertised[i].clone()),
                                None => {
                                    let port = free_port();
                                    (port, format!("{}:{port}", self.host))
                                }
                            },
                        )
                        .collect(),
                    tls_ports: self
                        .tls
                        .iter()
                        .flat_map(|t| t.listeners())
                        .map(|l| l.port.unwrap_or_else(free_port))
                        .collect(),
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
            sasl: self.sasl.clone(),
            tls: self.tls.clone(),
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
            sasl: None,
            sasl_listeners: Vec::new(),
            tls: None,
        };
        builder
            .config("offsets.topic.replication.factor", &replication)
            .config("transaction.state.log.replication.factor", &replication)
    }
}
