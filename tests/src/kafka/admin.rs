//! What the fixture asks of a running cluster: the brokers Metadata lists, topics, partition
//! leaders and in-sync replicas, and Kafka's own tools (leader elections, reassignments).

use std::fs::{self};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, Producer};

use super::Kafka;

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

impl Kafka {
    pub(super) fn admin_config(&self) -> ClientConfig {
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

    pub(super) fn wait_for_brokers(&self, n: usize, timeout: Duration) {
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
}
