//! One node: its settings file, its JVM, its storage format, and starting, stopping and
//! killing it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::netns::ip_binary;

use super::{Kafka, LOG4J2, spawn_owned};

/// Heap of each node's JVM: three nodes and the tests fit the machine with room to spare.
pub(super) const HEAP: &str = "-Xmx512m";

/// Sizing of each node's JVM (and of the tools run through [`Kafka::tool`]).
pub(super) const NODE_JVM: &[&str] = &[HEAP, "-Xms64m"];

/// One node of a [`Kafka`] cluster.
pub(super) struct Node {
    pub(super) id: i32,
    /// A KRaft controller (a voter) besides a broker.
    pub(super) controller: bool,
    pub(super) client_port: u16,
    pub(super) internal_port: u16,
    pub(super) controller_port: u16,
    /// The SASL listeners' ports and what each advertises (`host:port`), in the order of
    /// the cluster's mechanisms.
    pub(super) sasl_listeners: Vec<(u16, String)>,
    /// The TLS listeners' ports, in the order of the cluster's [`super::Tls`] listeners.
    pub(super) tls_ports: Vec<u16>,
    pub(super) advertised: String,
    pub(super) dir: PathBuf,
    pub(super) child: Mutex<Option<Child>>,
}

impl Node {
    pub(super) fn log(&self) -> PathBuf {
        self.dir.join("broker.log")
    }
    pub(super) fn stdout_log(&self) -> PathBuf {
        self.dir.join("stdout.log")
    }
    pub(super) fn format_log(&self) -> PathBuf {
        self.dir.join("format.log")
    }
    pub(super) fn properties(&self) -> PathBuf {
        self.dir.join("server.properties")
    }
}

impl Kafka {
    pub(super) fn write_properties(&self, node: &Node, voters: &str, extra: &[(String, String)]) {
        let host = self.host;
        let mut listeners = format!(
            "CLIENT://{host}:{},INTERNAL://{host}:{}",
            node.client_port, node.internal_port
        );
        let mut advertised = format!(
            "CLIENT://{},INTERNAL://{host}:{}",
            node.advertised, node.internal_port
        );
        let mut protocols = "CLIENT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT".to_string();
        let mut sasl_settings = Vec::new();
        if let Some(sasl) = &self.sasl {
            for (m, (port, address)) in sasl.mechanisms().iter().zip(&node.sasl_listeners) {
                listeners.push_str(&format!(",{}://{host}:{port}", m.listener()));
                advertised.push_str(&format!(",{}://{address}", m.listener()));
            }
            protocols.push_str(&sasl.protocol_map());
            sasl_settings = sasl.broker_settings();
        }
        if let Some(tls) = &self.tls {
            for (l, port) in tls.listeners().iter().zip(&node.tls_ports) {
                listeners.push_str(&format!(",{}://{host}:{port}", l.name));
                let to = l
                    .advertised
                    .clone()
                    .unwrap_or_else(|| format!("{host}:{port}"));
                advertised.push_str(&format!(",{}://{to}", l.name));
            }
            protocols.push_str(&tls.protocol_map());
            sasl_settings.extend(tls.broker_settings());
        }
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
            ("listener.security.protocol.map", protocols),
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
        .chain(sasl_settings)
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
    pub(super) fn java(&self, node_dir: &Path) -> Command {
        self.java_sized(node_dir, NODE_JVM)
    }

    /// [`Kafka::java`] with other heap and compiler options (`sizing`).
    pub(super) fn java_sized(&self, node_dir: &Path, sizing: &[&str]) -> Command {
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
    pub(super) fn format(&self, node: &Node) {
        let started = Instant::now();
        let mut command = self.java(&node.dir);
        // `--cluster-id=ID` in one argument: a base64url id starts with '-' one time in 64,
        // and after a separate `-t` the option parser takes it for an option and refuses.
        command
            .args(["kafka.tools.StorageTool", "format"])
            .arg(format!("--cluster-id={}", self.cluster_id))
            .arg("-c")
            .arg(node.properties());
        if let Some(sasl) = &self.sasl {
            command.args(sasl.format_args());
        }
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run java ({e}): install Java 17 (`apt-get install -y openjdk-17-jre-headless`) or run `cargo xtask test`, which does"));
        let report = self.redact(&format!(
            "{command:?}\nexit: {} after {:.1} s\n--- stdout ---\n{}\n--- stderr ---\n{}\n",
            out.status,
            started.elapsed().as_secs_f64(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
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

    pub(super) fn spawn(&self, node: &Node) {
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

    pub(super) fn check_alive(&self, id: i32) {
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
}
