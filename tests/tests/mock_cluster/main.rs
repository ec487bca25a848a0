//! Fault injection against librdkafka's mock cluster (bundled with the `rdkafka` crate): what
//! tansu cannot do. Every error code of the classification table (`producer-core`'s
//! `state::classify`) injected on Produce and on InitProducerId, brokers going down and up,
//! leaders moving, and a response delayed past the caller's deadline under both
//! `UnknownOutcome` policies.
//!
//! Every test reads the topic back with an independent consumer (librdkafka, CRCs checked) and
//! checks that nothing is duplicated, that each partition holds what it holds in send order,
//! and that every outcome the producer reported is true of the log.
//!
//! The mock is not a faithful broker in two ways that shape these tests:
//! - without a transactional id it never checks sequences, so a resent batch is appended
//!   again. That makes it a duplicate detector for a client that resends what it should not,
//!   but it also duplicates a *legitimate* resend of a batch it had appended. So a request the
//!   mock processed goes unanswered only where the policy forbids a resend (fail-and-fence
//!   past the deadline), or where the one resend is allowed for explicitly
//!   (`broker_down_with_request_in_flight_wait`); elsewhere request timeouts stay above
//!   injected delays and brokers go down only while nothing is in flight.
//! - an injected error never appends; so a "maybe appended" code (7, 20, ...) still leaves
//!   exactly one copy after the retry, and a DUPLICATE_SEQUENCE_NUMBER (46) answer is a lie:
//!   the producer must call it `Persisted { offset: None }`, yet the log does not hold it.

use std::collections::{BTreeMap, HashMap};
use std::ffi::c_int;
use std::thread;
use std::time::{Duration, Instant};

use producer_core::ErrorCode;
use producer_core::client::Receipt;
use producer_core::state::{
    Counters, FatalReason, NotPersistedReason, Outcome, PossiblyPersistedReason, UnknownOutcome,
};
use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, DefaultProducerContext, Producer as _};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use transport_std::{Error, Producer, ProducerConfig, ProducerRecord};

// The mock answers flexible Metadata requests (v9 and up) with one byte too many (its handler
// writes the top-level tagged fields and the generic send appends another empty tag section,
// librdkafka 2.12.1). The client tolerates bytes after a response body, as librdkafka and the
// Java client do, so the mock is used at the highest versions it advertises.

/// librdkafka's "close the connection when the request arrives" pseudo error.
const TRANSPORT: i32 = -195;

mod brokers;
mod delayed;
mod init_errors;
mod produce_errors;

// --- the mock cluster ------------------------------------------------------------------------

/// A mock cluster, owned by an rdkafka client created with `test.mock.num.brokers`, so the raw
/// handle is at hand for what `MockCluster` does not expose (per-broker errors with a delay,
/// arbitrary error codes). Not `Send`: it stays on the thread that made it.
struct Mock {
    owner: BaseProducer,
    raw: *mut rdsys::rd_kafka_mock_cluster_t,
}

impl Mock {
    fn new(brokers: i32) -> Mock {
        let owner: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", brokers.to_string())
            .set("log_level", "2")
            .create()
            .expect("rdkafka client hosting the mock cluster");
        // SAFETY: the handle is the live client's; the cluster lives as long as the client.
        let raw = unsafe { rdsys::rd_kafka_handle_mock_cluster(owner.client().native_ptr()) };
        assert!(!raw.is_null(), "client has no mock cluster");
        Mock { owner, raw }
    }

    fn cluster(&self) -> MockCluster<'_, DefaultProducerContext> {
        self.owner.client().mock_cluster().expect("mock cluster")
    }

    fn bootstrap(&self) -> String {
        self.cluster().bootstrap_servers()
    }

    fn bootstrap_list(&self) -> Vec<String> {
        self.bootstrap().split(',').map(str::to_owned).collect()
    }

    /// A topic whose partition `p` is led by broker `leaders[p]`.
    fn topic(&self, name: &str, leaders: &[i32]) {
        let c = self.cluster();
        c.create_topic(name, leaders.len() as i32, 1)
            .expect("create topic");
        for (p, &leader) in leaders.iter().enumerate() {
            c.partition_leader(name, p as i32, Some(leader))
                .expect("set leader");
        }
    }

    /// Pushes `codes` on the cluster-wide error stack of `api`: each later request of that API,
    /// on any broker, takes the next one.
    fn push_errors(&self, api: RDKafkaApiKey, codes: &[i32]) {
        let errors: Vec<RDKafkaRespErr> = codes
            .iter()
            .map(|&c| {
                RDKafkaRespErr::try_from(c)
                    .unwrap_or_else(|_| panic!("librdkafka has no error code {c}"))
            })
            .collect();
        self.cluster().request_errors(api, &errors);
    }

    /// Pushes one error (any code, even one librdkafka does not know) on broker `broker`'s stack
    /// for `api`, its response held back `rtt` (the request itself is processed at once).
    fn push_broker_error(&self, broker: i32, api: RDKafkaApiKey, code: i32, rtt: Duration) {
        // SAFETY: `raw` is live while `owner` is; the variadic pairs are (error, rtt ms) ints.
        let err = unsafe {
            rdsys::rd_kafka_mock_broker_push_request_error_rtts(
                self.raw,
                broker,
                api as i16,
                1,
                code as c_int,
                rtt.as_millis() as c_int,
            )
        };
        assert_eq!(err, RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR);
    }

    /// Pushes `code` `times` times on `api`: cluster-wide when librdkafka knows the code, else
    /// on broker `broker` (where the request will go).
    fn inject(&self, api: RDKafkaApiKey, broker: i32, code: i32, times: usize) {
        if RDKafkaRespErr::try_from(code).is_ok() {
            self.push_errors(api, &vec![code; times]);
        } else {
            for _ in 0..times {
                self.push_broker_error(broker, api, code, Duration::ZERO);
            }
        }
    }
}

// --- reading back ----------------------------------------------------------------------------

/// Per partition, the log as (offset, value), in offset order.
type Log = BTreeMap<i32, Vec<(i64, String)>>;

/// Reads every partition of `topic` from the beginning to its high watermark.
fn read_log(bootstrap: &str, topic: &str, partitions: i32) -> Log {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "mock-cluster-readback")
        .set("enable.auto.commit", "false")
        .set("check.crcs", "true")
        .set("fetch.wait.max.ms", "50")
        .set("log_level", "2")
        .create()
        .expect("read-back consumer");
    let mut tpl = TopicPartitionList::new();
    let mut high = BTreeMap::new();
    let mut log = Log::new();
    for p in 0..partitions {
        let (low, hi) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(5))
            .expect("watermarks");
        assert_eq!(low, 0, "partition {p} lost its beginning");
        high.insert(p, hi);
        log.insert(p, Vec::new());
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let done = |log: &Log| {
        high.iter()
            .all(|(p, &hi)| log[p].last().map_or(0, |&(o, _)| o + 1) >= hi)
    };
    let limit = Instant::now() + Duration::from_secs(15);
    while !done(&log) {
        assert!(
            Instant::now() < limit,
            "read-back of {topic} stalled: have {log:?}, want up to {high:?}"
        );
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.expect("read-back fetch (CRC checked)");
        let value =
            String::from_utf8(message.payload().unwrap_or_default().to_vec()).expect("utf-8 value");
        log.get_mut(&message.partition())
            .expect("assigned partition")
            .push((message.offset(), value));
    }
    log
}

// --- driving the producer --------------------------------------------------------------------

/// One record the test tried to send.
#[derive(Debug)]
struct Sent {
    value: String,
    partition: i32,
    sent_at: Instant,
    /// `None`: `send` refused it.
    receipt: Option<Receipt>,
    /// Outcome, offset, and when it was seen.
    outcome: Option<(Outcome, Option<i64>, Instant)>,
}

/// Our producer, and every record sent through it in send order.
struct Run {
    topic: String,
    producer: Producer,
    sent: Vec<Sent>,
}

impl Run {
    fn new(
        bootstrap: Vec<String>,
        topic: &str,
        configure: impl FnOnce(&mut ProducerConfig),
    ) -> Run {
        let mut config = ProducerConfig::new(bootstrap, [topic]);
        configure(&mut config);
        // The mock answers what it reads at once and drops a closed connection's requests:
        // a fence that needs a new producer id waits 1 s, not Kafka's five produce timeouts
        // (set after `configure`: a request timeout set there derives a grace of its own).
        config.client.producer.abandoned_request_grace = Duration::from_secs(1);
        Run {
            topic: topic.to_owned(),
            producer: Producer::new(config).expect("producer"),
            sent: Vec::new(),
        }
    }

    /// Sends a fresh record to `partition`, due `deadline` from now. Returns its index, and the
    /// error when `send` refused it.
    fn send(&mut self, partition: i32, deadline: Duration) -> (usize, Option<Error>) {
        let value = format!("{}-{}", self.topic, self.sent.len());
        let now = Instant::now();
        let record = ProducerRecord {
            topic: &self.topic,
            partition: Some(partition),
            key: None,
            value: Some(value.as_bytes()),
            headers: &[],
            timestamp: None,
        };
        let result = self.producer.send(&record, now + deadline);
        let (receipt, error) = match result {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e)),
        };
        self.sent.push(Sent {
            value,
            partition,
            sent_at: now,
            receipt,
            outcome: None,
        });
        self.collect();
        (self.sent.len() - 1, error)
    }

    /// Sends a record that must be accepted.
    fn send_ok(&mut self, partition: i32, deadline: Duration) -> usize {
        let (i, error) = self.send(partition, deadline);
        if let Some(e) = error {
            panic!("send of record {i} refused: {e}");
        }
        i
    }

    fn collect(&mut self) {
        while let Some(d) = self.producer.poll_delivery() {
            let at = Instant::now();
            let sent = self
                .sent
                .iter_mut()
                .find(|s| s.receipt == Some(d.receipt) && s.outcome.is_none())
                .unwrap_or_else(|| panic!("outcome for no waiting record: {d:?}"));
            sent.outcome = Some((d.outcome, d.offset, at));
        }
    }

    fn waiting(&self) -> usize {
        self.sent
            .iter()
            .filter(|s| s.receipt.is_some() && s.outcome.is_none())
            .count()
    }

    /// Drives the producer for `d`.
    fn pump(&mut self, d: Duration) {
        let until = Instant::now() + d;
        loop {
            self.collect();
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            self.producer.poll(left.min(Duration::from_millis(10)));
        }
    }

    /// Drives the producer until every accepted record has its outcome; fails after `limit`.
    fn settle(&mut self, limit: Duration) {
        let until = Instant::now() + limit;
        loop {
            self.collect();
            if self.waiting() == 0 {
                return;
            }
            assert!(
                Instant::now() < until,
                "{} records still without an outcome after {limit:?}: {:?}",
                self.waiting(),
                self.sent
                    .iter()
                    .filter(|s| s.outcome.is_none())
                    .collect::<Vec<_>>()
            );
            self.producer.poll(Duration::from_millis(10));
        }
    }

    fn outcome(&self, i: usize) -> Outcome {
        self.sent[i]
            .outcome
            .unwrap_or_else(|| panic!("record {i} has no outcome"))
            .0
    }

    /// How long after its send record `i` got its outcome.
    fn latency(&self, i: usize) -> Duration {
        let s = &self.sent[i];
        s.outcome.expect("outcome").2.duration_since(s.sent_at)
    }

    fn counters(&self) -> Counters {
        self.producer.counters()
    }

    /// Every record sent, but those at the indexes in `except`, was persisted at a known
    /// offset.
    fn assert_persisted_except(&self, except: &[usize]) {
        for (i, s) in self.sent.iter().enumerate() {
            if !except.contains(&i) {
                assert!(
                    matches!(
                        s.outcome,
                        Some((Outcome::Persisted { offset: Some(_) }, ..))
                    ),
                    "{s:?}"
                );
            }
        }
    }

    /// The producer's identity history: (fences, epoch bumps, producer ids obtained).
    fn assert_identity(&self, expected: (u64, u64, u64)) {
        let c = self.counters();
        assert_eq!((c.fences, c.epoch_bumps, c.producer_ids), expected, "{c:?}");
    }

    /// Checks the log against what was sent and reported:
    /// - only records of this run are in the log, each at most once;
    /// - each partition holds them in send order, in the partition they were sent to;
    /// - every outcome is true: `Persisted` ones are in the log (at the reported offset, when
    ///   one was reported), `NotPersisted` ones and refused records are absent.
    ///
    /// Two allowances for the mock, both explicit: with `dup_seq_lie`, a
    /// `Persisted { offset: None }` record may be absent (an injected DUPLICATE_SEQUENCE_NUMBER
    /// never appended it); a record in `resent` may be there twice, back to back (a legitimate
    /// resend, under the same sequence, of a request the mock had appended: a broker would
    /// deduplicate it, the mock appends it again).
    fn verify(&self, log: &Log, dup_seq_lie: bool, resent: &[usize]) {
        let index: HashMap<&str, usize> = self
            .sent
            .iter()
            .enumerate()
            .map(|(i, s)| (s.value.as_str(), i))
            .collect();
        let mut found: HashMap<usize, Vec<i64>> = HashMap::new();
        for (&p, entries) in log {
            let mut last: Option<usize> = None;
            for (offset, value) in entries {
                let &i = index
                    .get(value.as_str())
                    .unwrap_or_else(|| panic!("p{p}@{offset}: {value:?} was never sent"));
                assert_eq!(
                    self.sent[i].partition, p,
                    "{value:?} landed in partition {p}"
                );
                let copies = found.entry(i).or_default();
                copies.push(*offset);
                let resend = copies.len() == 2 && resent.contains(&i) && last == Some(i);
                assert!(
                    copies.len() == 1 || resend,
                    "{value:?} is in the log {} times: p{p}@{copies:?}",
                    copies.len()
                );
                if let Some(prev) = last {
                    assert!(
                        prev < i || resend,
                        "p{p}: {value:?} (sent #{i}) sits after {:?} (sent #{prev}) in the log",
                        self.sent[prev].value
                    );
                }
                last = Some(i);
            }
        }
        for (i, s) in self.sent.iter().enumerate() {
            let at = found.get(&i);
            let Some((outcome, offset, _)) = s.outcome else {
                assert!(
                    s.receipt.is_none(),
                    "{:?} was accepted and never given an outcome",
                    s.value
                );
                assert!(
                    at.is_none(),
                    "refused {:?} is in the log at {at:?}",
                    s.value
                );
                continue;
            };
            match outcome {
                Outcome::Persisted { offset: reported } => {
                    assert_eq!(reported.is_some(), offset.is_some(), "{s:?}");
                    match (at, offset) {
                        (Some(copies), Some(r)) => assert!(
                            copies.contains(&r),
                            "{:?} reported at offset {r}, is at {copies:?}",
                            s.value
                        ),
                        (Some(_), None) => {}
                        (None, None) if dup_seq_lie => {}
                        (None, _) => panic!("{:?} reported {outcome:?}, not in the log", s.value),
                    }
                }
                Outcome::NotPersisted(_) => assert!(
                    at.is_none(),
                    "{:?} reported {outcome:?}, yet is in the log at {at:?}",
                    s.value
                ),
                // At most once (or a resend the mock duplicated): checked above.
                Outcome::PossiblyPersisted(_) => {}
            }
        }
    }

    fn read_and_verify(&self, bootstrap: &str, partitions: i32, dup_seq_lie: bool) -> Log {
        let log = read_log(bootstrap, &self.topic, partitions);
        self.verify(&log, dup_seq_lie, &[]);
        log
    }

    /// Seals every open batch now (as `flush` does), without driving the producer.
    fn seal(&mut self) {
        self.producer.flush(Instant::now());
        self.collect();
    }
}

/// Runs each case on its own thread (each with its own mock cluster), a few at a time, and
/// fails with the list of failed cases after all ran.
fn run_cases<C: Copy + Send + std::fmt::Debug + 'static>(cases: &[C], f: fn(C)) {
    const PARALLEL: usize = 4;
    let mut failed = Vec::new();
    for chunk in cases.chunks(PARALLEL) {
        let handles: Vec<_> = chunk
            .iter()
            .map(|&case| (case, thread::spawn(move || f(case))))
            .collect();
        for (case, handle) in handles {
            if let Err(payload) = handle.join() {
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                failed.push(format!("{case:?}: {message}"));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}

/// How long the injected response delays hold an answer back, and the deadline the delayed
/// records get (shared by the delay and the broker tests).
const DELAY: Duration = Duration::from_secs(3);
const DEADLINE: Duration = Duration::from_secs(1);
const LONG: Duration = Duration::from_secs(10);
const SETTLE: Duration = Duration::from_secs(8);
