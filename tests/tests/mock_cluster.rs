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

const LONG: Duration = Duration::from_secs(10);
const SETTLE: Duration = Duration::from_secs(8);

// --- Produce errors --------------------------------------------------------------------------

/// What the classification table says an injected Produce error does to the batch and the
/// producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Not appended or maybe appended, retry with the same stamp: `Persisted`, no fence.
    Retried,
    /// Refused batch: `NotPersisted(Rejected)`, epoch bumped.
    Rejected,
    /// 45: epoch bumped, the batch restamped and `Persisted`.
    ResendAfterBump,
    /// 47/49/59/90: a new producer id, the batch restamped and `Persisted`.
    ResendNewId,
    /// 31/53: `NotPersisted(Rejected)`, the producer stops for good.
    Fatal,
    /// 46: `Persisted { offset: None }`.
    Duplicate,
    /// Any other code: `PossiblyPersisted(Unclassified)`, epoch bumped.
    Unclassified,
}

#[derive(Clone, Copy, Debug)]
struct ProduceCase {
    code: i32,
    times: usize,
    expect: Expect,
}

const fn pc(code: i32, times: usize, expect: Expect) -> ProduceCase {
    ProduceCase {
        code,
        times,
        expect,
    }
}

const PRODUCE_CASES: &[ProduceCase] = &[
    // not appended, retry after a metadata refresh
    pc(3, 1, Expect::Retried),
    pc(5, 1, Expect::Retried),
    pc(6, 1, Expect::Retried),
    pc(6, 3, Expect::Retried),
    pc(74, 1, Expect::Retried),
    pc(75, 1, Expect::Retried),
    // not appended, retry
    pc(2, 1, Expect::Retried),
    pc(19, 1, Expect::Retried),
    // maybe appended, retry (the mock never appends an injected attempt)
    pc(7, 1, Expect::Retried),
    pc(7, 3, Expect::Retried),
    pc(20, 1, Expect::Retried),
    pc(13, 1, Expect::Retried),
    pc(56, 1, Expect::Retried),
    // connection closed when the request arrived: lost after write, retry
    pc(TRANSPORT, 1, Expect::Retried),
    // refused batch: fail, bump the epoch
    pc(10, 1, Expect::Rejected),
    pc(17, 1, Expect::Rejected),
    pc(18, 1, Expect::Rejected),
    pc(21, 1, Expect::Rejected),
    pc(29, 1, Expect::Rejected),
    pc(32, 1, Expect::Rejected),
    pc(35, 1, Expect::Rejected),
    pc(43, 1, Expect::Rejected),
    pc(87, 1, Expect::Rejected),
    // sequence gap: bump, resend
    pc(45, 1, Expect::ResendAfterBump),
    pc(45, 2, Expect::ResendAfterBump),
    // identity lost: new producer id, resend
    pc(47, 1, Expect::ResendNewId),
    pc(49, 1, Expect::ResendNewId),
    pc(59, 1, Expect::ResendNewId),
    pc(90, 1, Expect::ResendNewId),
    // fatal
    pc(31, 1, Expect::Fatal),
    pc(53, 1, Expect::Fatal),
    // duplicate: persisted, offset unknown
    pc(46, 1, Expect::Duplicate),
    // anything else: possibly persisted, bump
    pc(-1, 1, Expect::Unclassified),
    pc(1, 1, Expect::Unclassified),
    pc(999, 1, Expect::Unclassified),
];

/// One Produce error case: a warm-up record (id, connection, first ack), then the error
/// injected `times` times on the request carrying a batch of 3 records, then 3 more records.
fn produce_case(case: ProduceCase) {
    let mock = Mock::new(1);
    let topic = format!("produce_{}_x{}", case.code, case.times);
    mock.topic(&topic, &[1]);
    let mut run = Run::new(mock.bootstrap_list(), &topic, |_| {});
    let warm = run.send_ok(0, LONG);
    run.settle(SETTLE);
    assert_eq!(run.outcome(warm), Outcome::Persisted { offset: Some(0) });
    let before = run.counters();
    assert_eq!(before.producer_ids, 1);
    assert_eq!(before.epoch.map(|e| e.0), Some(0));

    mock.inject(RDKafkaApiKey::Produce, 1, case.code, case.times);
    let batch: Vec<usize> = (0..3).map(|_| run.send_ok(0, LONG)).collect();
    let receipts: Vec<_> = batch
        .iter()
        .map(|&i| run.sent[i].receipt.expect("receipt").batch)
        .collect();
    assert!(
        receipts.iter().all(|&b| b == receipts[0]),
        "the 3 records should share one batch: {receipts:?}"
    );
    run.settle(SETTLE);
    let after = run.counters();
    let code = ErrorCode(case.code as i16);
    let outcomes: Vec<Outcome> = batch.iter().map(|&i| run.outcome(i)).collect();
    let offsets: Vec<Option<i64>> = batch
        .iter()
        .map(|&i| run.sent[i].outcome.expect("outcome").1)
        .collect();
    let expected = match case.expect {
        Expect::Retried | Expect::ResendAfterBump | Expect::ResendNewId => {
            Outcome::Persisted { offset: Some(1) }
        }
        Expect::Rejected | Expect::Fatal => {
            Outcome::NotPersisted(NotPersistedReason::Rejected(code))
        }
        Expect::Duplicate => Outcome::Persisted { offset: None },
        Expect::Unclassified => {
            Outcome::PossiblyPersisted(PossiblyPersistedReason::Unclassified(code))
        }
    };
    for (k, outcome) in outcomes.iter().enumerate() {
        assert_eq!(*outcome, expected, "record {k} of the batch");
    }
    if let Outcome::Persisted { offset: Some(base) } = expected {
        assert_eq!(offsets, vec![Some(base), Some(base + 1), Some(base + 2)]);
    } else {
        assert_eq!(offsets, vec![None; 3]);
    }

    // Counters, as deltas over the warm-up.
    let fences = after.fences - before.fences;
    let bumps = after.epoch_bumps - before.epoch_bumps;
    let ids = after.producer_ids - before.producer_ids;
    let retries = after.retries - before.retries;
    let times = case.times as u64;
    match case.expect {
        Expect::Retried => {
            assert_eq!((fences, bumps, ids), (0, 0, 0), "{after:?}");
            assert_eq!(retries, times, "one resend per refused attempt: {after:?}");
            assert_eq!(after.epoch, before.epoch);
        }
        Expect::Duplicate => {
            assert_eq!((fences, bumps, ids, retries), (0, 0, 0, 0), "{after:?}");
        }
        Expect::Rejected | Expect::Unclassified => {
            assert_eq!((fences, bumps, ids), (1, 1, 0), "{after:?}");
            assert_eq!(after.epoch.map(|e| e.0), Some(1), "{after:?}");
            assert_eq!(after.producer_id, before.producer_id);
        }
        Expect::ResendAfterBump => {
            assert_eq!((fences, bumps, ids), (times, times, 0), "{after:?}");
            assert_eq!(after.epoch.map(|e| e.0), Some(times as i16), "{after:?}");
            assert_eq!(after.producer_id, before.producer_id);
        }
        Expect::ResendNewId => {
            assert_eq!((fences, bumps, ids), (1, 0, 1), "{after:?}");
            assert_ne!(after.producer_id, before.producer_id, "{after:?}");
        }
        Expect::Fatal => {
            assert_eq!((bumps, ids), (0, 0), "{after:?}");
        }
    }
    assert_eq!(
        after.persisted.records - before.persisted.records,
        if matches!(expected, Outcome::Persisted { .. }) {
            3
        } else {
            0
        },
        "{after:?}"
    );

    // Later records.
    if case.expect == Expect::Fatal {
        for _ in 0..3 {
            let (_, error) = run.send(0, LONG);
            assert!(
                matches!(error, Some(Error::Stopped(FatalReason::Broker(_)))),
                "a fatal producer must refuse records with the reason, got {error:?}"
            );
        }
    } else {
        let later: Vec<usize> = (0..3).map(|_| run.send_ok(0, LONG)).collect();
        run.settle(SETTLE);
        for &i in &later {
            assert!(
                matches!(run.outcome(i), Outcome::Persisted { offset: Some(_) }),
                "record after the error: {:?}",
                run.sent[i]
            );
        }
    }

    let log = run.read_and_verify(&mock.bootstrap(), 1, case.expect == Expect::Duplicate);
    let values: Vec<&str> = log[&0].iter().map(|(_, v)| v.as_str()).collect();
    let want: Vec<&str> = match case.expect {
        Expect::Retried | Expect::ResendAfterBump | Expect::ResendNewId => {
            (0..7).map(|i| run.sent[i].value.as_str()).collect()
        }
        // The mock never appended the injected attempt.
        Expect::Rejected | Expect::Duplicate | Expect::Unclassified => [0, 4, 5, 6]
            .iter()
            .map(|&i| run.sent[i].value.as_str())
            .collect(),
        Expect::Fatal => vec![run.sent[0].value.as_str()],
    };
    assert_eq!(values, want, "log of {topic}");
}

/// Every code of the classification table the mock can inject, on Produce, one fresh cluster
/// per case.
#[test]
fn produce_errors_follow_the_classification_table() {
    run_cases(PRODUCE_CASES, produce_case);
}

/// Cases for one request carrying batches of three partitions, all answered with the code.
const MULTI_CASES: &[ProduceCase] = &[
    pc(6, 1, Expect::Retried),
    pc(7, 1, Expect::Retried),
    pc(TRANSPORT, 1, Expect::Retried),
    pc(10, 1, Expect::Rejected),
    pc(45, 1, Expect::ResendAfterBump),
    pc(47, 1, Expect::ResendNewId),
    pc(59, 1, Expect::ResendNewId),
    pc(31, 1, Expect::Fatal),
    pc(46, 1, Expect::Duplicate),
    pc(999, 1, Expect::Unclassified),
];

/// One request, three partitions' batches, one error code for all: each batch gets the
/// table's outcome, and the producer fences once, not once per batch.
fn multi_partition_case(case: ProduceCase) {
    let mock = Mock::new(1);
    let topic = format!("multi_{}", case.code);
    mock.topic(&topic, &[1, 1, 1]);
    // Batches seal only when `seal` says, so the three go out in one request.
    let mut run = Run::new(mock.bootstrap_list(), &topic, |c| {
        c.client.linger = Duration::from_secs(5);
    });
    for p in 0..3 {
        run.send_ok(p, LONG);
    }
    run.seal();
    run.settle(SETTLE);
    let before = run.counters();
    assert_eq!(before.persisted.batches, 3, "{before:?}");

    mock.inject(RDKafkaApiKey::Produce, 1, case.code, 1);
    let batch: Vec<usize> = (0..3).map(|p| run.send_ok(p, LONG)).collect();
    run.seal();
    run.settle(SETTLE);
    let after = run.counters();
    let code = ErrorCode(case.code as i16);
    let expected = match case.expect {
        Expect::Retried | Expect::ResendAfterBump | Expect::ResendNewId => {
            Outcome::Persisted { offset: Some(1) }
        }
        Expect::Rejected | Expect::Fatal => {
            Outcome::NotPersisted(NotPersistedReason::Rejected(code))
        }
        Expect::Duplicate => Outcome::Persisted { offset: None },
        Expect::Unclassified => {
            Outcome::PossiblyPersisted(PossiblyPersistedReason::Unclassified(code))
        }
    };
    let outcomes: Vec<Outcome> = batch.iter().map(|&i| run.outcome(i)).collect();
    assert_eq!(outcomes, vec![expected; 3], "partitions 0, 1, 2");
    let fences = after.fences - before.fences;
    let bumps = after.epoch_bumps - before.epoch_bumps;
    let ids = after.producer_ids - before.producer_ids;
    let retries = after.retries - before.retries;
    match case.expect {
        Expect::Retried => {
            assert_eq!((fences, bumps, ids, retries), (0, 0, 0, 3), "{after:?}")
        }
        Expect::Duplicate => assert_eq!((fences, bumps, ids, retries), (0, 0, 0, 0), "{after:?}"),
        Expect::Rejected | Expect::Unclassified | Expect::ResendAfterBump => {
            assert_eq!(
                (fences, bumps, ids),
                (1, 1, 0),
                "one fence for 3 batches: {after:?}"
            )
        }
        Expect::ResendNewId => {
            assert_eq!(
                (fences, bumps, ids),
                (1, 0, 1),
                "one new id for 3 batches: {after:?}"
            )
        }
        Expect::Fatal => assert_eq!((bumps, ids), (0, 0), "{after:?}"),
    }
    if case.expect == Expect::Fatal {
        let (_, error) = run.send(0, LONG);
        assert!(
            matches!(error, Some(Error::Stopped(FatalReason::Broker(_)))),
            "{error:?}"
        );
    } else {
        let later: Vec<usize> = (0..3).map(|p| run.send_ok(p, LONG)).collect();
        run.seal();
        run.settle(SETTLE);
        for &i in &later {
            assert!(
                matches!(run.outcome(i), Outcome::Persisted { offset: Some(_) }),
                "{:?}",
                run.sent[i]
            );
        }
    }
    let log = run.read_and_verify(&mock.bootstrap(), 3, case.expect == Expect::Duplicate);
    let appended = matches!(
        case.expect,
        Expect::Retried | Expect::ResendAfterBump | Expect::ResendNewId
    );
    let later = usize::from(case.expect != Expect::Fatal);
    for p in 0..3 {
        assert_eq!(
            log[&p].len(),
            1 + usize::from(appended) + later,
            "p{p}: {log:?}"
        );
    }
}

/// One Produce request carrying batches of three partitions, answered with one code for all.
#[test]
fn produce_errors_on_a_multi_partition_request() {
    run_cases(MULTI_CASES, multi_partition_case);
}

// --- InitProducerId errors -------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct InitCase {
    code: i32,
    times: usize,
    fatal: bool,
}

const fn ic(code: i32, times: usize, fatal: bool) -> InitCase {
    InitCase { code, times, fatal }
}

const INIT_CASES: &[InitCase] = &[
    ic(14, 1, false),
    ic(15, 1, false),
    ic(16, 1, false),
    ic(16, 3, false),
    ic(7, 1, false),
    ic(-1, 1, false),
    ic(999, 1, false),
    ic(TRANSPORT, 1, false),
    ic(31, 1, true),
    ic(53, 1, true),
    ic(35, 1, true),
];

/// One InitProducerId case: the error injected on the first request(s), then 3 records.
fn init_case(case: InitCase) {
    let mock = Mock::new(1);
    let topic = format!("init_{}_x{}", case.code, case.times);
    mock.topic(&topic, &[1]);
    mock.inject(RDKafkaApiKey::InitProducerId, 1, case.code, case.times);
    let mut run = Run::new(mock.bootstrap_list(), &topic, |_| {});
    let code = ErrorCode(case.code as i16);
    let fatal = NotPersistedReason::ProducerFatal(FatalReason::Broker(code));
    let mut accepted = Vec::new();
    for _ in 0..3 {
        let (i, error) = run.send(0, LONG);
        match error {
            None => accepted.push(i),
            // The fatal answer can beat the metadata the first send waits for.
            Some(Error::Stopped(FatalReason::Broker(r))) if case.fatal && r == code => {}
            Some(e) => panic!("send refused: {e}"),
        }
    }
    run.settle(SETTLE);
    let c = run.counters();
    if case.fatal {
        for &i in &accepted {
            assert_eq!(run.outcome(i), Outcome::NotPersisted(fatal));
        }
        let (_, error) = run.send(0, LONG);
        assert!(
            matches!(error, Some(Error::Stopped(FatalReason::Broker(r))) if r == code),
            "a fatal producer must refuse records with the reason, got {error:?}"
        );
        assert_eq!(c.producer_ids, 0, "{c:?}");
        assert_eq!(c.producer_id, None, "{c:?}");
    } else {
        assert_eq!(accepted.len(), 3);
        for (k, &i) in accepted.iter().enumerate() {
            assert_eq!(
                run.outcome(i),
                Outcome::Persisted { offset: Some(0) },
                "{k}"
            );
        }
        assert_eq!(
            (c.producer_ids, c.fences, c.epoch_bumps),
            (1, 0, 0),
            "{c:?}"
        );
    }
    let log = run.read_and_verify(&mock.bootstrap(), 1, false);
    let want = if case.fatal { 0 } else { 3 };
    assert_eq!(log[&0].len(), want, "log of {topic}: {log:?}");
}

/// InitProducerId errors: retriable ones end in an id and persisted records, fatal ones stop
/// the producer with every record `NotPersisted(ProducerFatal)`.
#[test]
fn init_producer_id_errors() {
    run_cases(INIT_CASES, init_case);
}

// --- broker down and up ----------------------------------------------------------------------

/// A partition's leader goes down while nothing is in flight, records keep coming for all
/// partitions; the other partitions keep flowing, a record on the down partition whose deadline
/// passes is `NotPersisted(Deadline)` (never sent), and once the broker is back everything else
/// is `Persisted`, once, in order.
#[test]
fn broker_down_and_up() {
    let mock = Mock::new(3);
    let topic = "down_up";
    mock.topic(topic, &[1, 2, 3]);
    let mut run = Run::new(mock.bootstrap_list(), topic, |_| {});
    for p in 0..3 {
        run.send_ok(p, LONG);
    }
    run.settle(SETTLE);

    mock.cluster().broker_down(2).expect("broker down");
    let down_at = Instant::now();
    let mut short = Vec::new();
    for round in 0..20 {
        for p in 0..3 {
            run.send_ok(p, LONG);
        }
        if round == 5 {
            // Alone in its batch (the previous one has sealed): it alone misses its deadline.
            run.pump(Duration::from_millis(20));
            short.push(run.send_ok(1, Duration::from_millis(300)));
        }
        run.pump(Duration::from_millis(50));
    }
    // While broker 2 is down: partitions 0 and 2 flowed, partition 1 waited, except the short
    // deadline record, given up at its deadline as never sent.
    let mut flowed = [0usize; 3];
    for s in &run.sent[3..] {
        if s.outcome.is_some() {
            flowed[s.partition as usize] += 1;
        }
    }
    assert!(
        flowed[0] >= 15 && flowed[2] >= 15,
        "partitions 0 and 2 must keep flowing while broker 2 is down: {flowed:?}"
    );
    assert_eq!(
        flowed[1],
        short.len(),
        "only the short deadline decided on p1"
    );
    for &i in &short {
        assert_eq!(
            run.outcome(i),
            Outcome::NotPersisted(NotPersistedReason::Deadline)
        );
        let late = run.latency(i);
        assert!(
            late < Duration::from_millis(450),
            "deadline outcome {late:?} after send"
        );
    }
    let down_for = down_at.elapsed();

    mock.cluster().broker_up(2).expect("broker up");
    run.settle(SETTLE);
    run.assert_persisted_except(&short);
    run.assert_identity((0, 0, 1));
    let log = run.read_and_verify(&mock.bootstrap(), 3, false);
    for p in 0..3 {
        // Warm-up and 20 rounds; the short deadline record is not there.
        assert_eq!(
            log[&p].len(),
            21,
            "p{p}, broker 2 down {down_for:?}: {log:?}"
        );
    }
}

/// A partition's leader goes down while its answer to a request it already appended is held
/// back: the request is lost after being written. Under fail-and-fence the record is
/// `PossiblyPersisted` at its deadline and never resent (the epoch is bumped instead); once the
/// broker is back, later records of that partition are `Persisted`. The log holds it once.
#[test]
fn broker_down_with_request_in_flight_fail_and_fence() {
    let (mock, run, x) = in_flight_when_down(UnknownOutcome::FailAndFence, "down_fence");
    assert_eq!(
        run.outcome(x),
        Outcome::PossiblyPersisted(PossiblyPersistedReason::Deadline)
    );
    let late = run.latency(x);
    assert!(
        late >= DEADLINE && late < DEADLINE + Duration::from_millis(150),
        "PossiblyPersisted {late:?} after send, deadline {DEADLINE:?}"
    );
    run.assert_identity((1, 1, 1));
    let log = run.read_and_verify(&mock.bootstrap(), 3, false);
    // Warm-up, the lost request's record (appended by the mock at once), the record after.
    assert_eq!(log[&1].len(), 3, "{log:?}");
}

/// The same under wait: the record waits past its deadline for the broker to come back, is
/// resent under its sequence and `Persisted`. The mock appends the resend again (a broker
/// would deduplicate it): the one duplicate the log may hold, explicitly allowed.
#[test]
fn broker_down_with_request_in_flight_wait() {
    let (mock, run, x) = in_flight_when_down(UnknownOutcome::Wait, "down_wait");
    assert!(
        matches!(run.outcome(x), Outcome::Persisted { offset: Some(_) }),
        "{:?}",
        run.sent[x]
    );
    assert!(
        run.latency(x) > DOWN_FOR,
        "decided while the broker was down"
    );
    run.assert_identity((0, 0, 1));
    let c = run.counters();
    assert!(c.retries >= 1, "{c:?}");
    let log = read_log(&mock.bootstrap(), &run.topic, 3);
    run.verify(&log, false, &[x]);
    assert_eq!(
        log[&1].len(),
        4,
        "warm-up, the record and its resend (the mock does not deduplicate), the record \
         after: {log:?}"
    );
}

const DOWN_FOR: Duration = Duration::from_millis(1500);

/// Three brokers, one partition each. A record to partition 1 (deadline `DEADLINE`) whose
/// answer broker 2 holds back 3 s; 300 ms later broker 2 goes down (the mock appended the
/// request, the answer is lost), and comes back after `DOWN_FOR`, while records keep coming
/// for partitions 0 and 2. Then one more record for each partition; everything settles.
fn in_flight_when_down(policy: UnknownOutcome, topic: &str) -> (Mock, Run, usize) {
    let mock = Mock::new(3);
    mock.topic(topic, &[1, 2, 3]);
    let mut run = Run::new(mock.bootstrap_list(), topic, |c| {
        c.client.producer.unknown_outcome = policy
    });
    for p in 0..3 {
        run.send_ok(p, LONG);
    }
    run.settle(SETTLE);
    mock.push_broker_error(2, RDKafkaApiKey::Produce, 0, DELAY);
    let x = run.send_ok(1, DEADLINE);
    run.pump(Duration::from_millis(300));
    assert!(run.sent[x].outcome.is_none(), "{:?}", run.sent[x]);
    mock.cluster().broker_down(2).expect("broker down");
    let down_at = Instant::now();
    while down_at.elapsed() < DOWN_FOR {
        run.send_ok(0, LONG);
        run.send_ok(2, LONG);
        run.pump(Duration::from_millis(50));
    }
    mock.cluster().broker_up(2).expect("broker up");
    for p in 0..3 {
        run.send_ok(p, LONG);
    }
    run.settle(SETTLE);
    run.assert_persisted_except(&[x]);
    (mock, run, x)
}

// --- leader moves ----------------------------------------------------------------------------

/// Partition leaders move between brokers while records stream to every partition, several
/// requests in flight: the old leader answers NOT_LEADER_OR_FOLLOWER (never appending), the
/// producer refreshes metadata and resends to the new leader. Everything is `Persisted`, once,
/// in order.
#[test]
fn leader_moves() {
    let mock = Mock::new(3);
    let topic = "leader_moves";
    mock.topic(topic, &[1, 2, 3]);
    let mut run = Run::new(mock.bootstrap_list(), topic, |_| {});
    for p in 0..3 {
        run.send_ok(p, LONG);
    }
    run.settle(SETTLE);
    let moves: &[(usize, i32, i32)] = &[(10, 0, 2), (20, 1, 3), (30, 2, 1), (40, 0, 3), (50, 0, 1)];
    for round in 0..60 {
        if let Some(&(_, p, leader)) = moves.iter().find(|m| m.0 == round) {
            mock.cluster()
                .partition_leader(topic, p, Some(leader))
                .expect("move leader");
        }
        for p in 0..3 {
            run.send_ok(p, LONG);
        }
        run.pump(Duration::from_millis(15));
    }
    run.settle(SETTLE);
    run.assert_persisted_except(&[]);
    let c = run.counters();
    assert!(c.retries > 0, "no move was noticed: {c:?}");
    run.assert_identity((0, 0, 1));
    let log = run.read_and_verify(&mock.bootstrap(), 3, false);
    for p in 0..3 {
        assert_eq!(log[&p].len(), 61, "p{p}");
    }
}

/// Failover: a partition's leader goes down and its partition moves to another broker (the
/// mock does not move it by itself), then the broker comes back and leads again. The
/// producer follows, through the lost connection and the metadata refresh. Brokers go down
/// only while nothing is in flight (see the module notes).
#[test]
fn leader_fails_over_when_its_broker_goes_down() {
    let mock = Mock::new(3);
    let topic = "failover";
    mock.topic(topic, &[1, 2, 3]);
    let mut run = Run::new(mock.bootstrap_list(), topic, |_| {});
    for round in 0..40 {
        if round == 10 {
            run.settle(SETTLE);
            mock.cluster().broker_down(2).expect("broker down");
            mock.cluster()
                .partition_leader(topic, 1, Some(3))
                .expect("move leader");
        }
        if round == 25 {
            run.settle(SETTLE);
            mock.cluster().broker_up(2).expect("broker up");
            mock.cluster()
                .partition_leader(topic, 1, Some(2))
                .expect("move leader back");
        }
        for p in 0..3 {
            run.send_ok(p, LONG);
        }
        run.pump(Duration::from_millis(15));
    }
    run.settle(SETTLE);
    run.assert_persisted_except(&[]);
    run.assert_identity((0, 0, 1));
    let log = run.read_and_verify(&mock.bootstrap(), 3, false);
    for p in 0..3 {
        assert_eq!(log[&p].len(), 40, "p{p}");
    }
}

// --- a response delayed past the deadline ----------------------------------------------------

const DELAY: Duration = Duration::from_secs(3);
const DEADLINE: Duration = Duration::from_secs(1);

/// Two brokers, one partition each, a warm-up record on each; then one record to partition 0
/// whose request broker 1 appends at once but answers only after `DELAY`, with a `DEADLINE`
/// deadline (request timeout 10 s, above the delay). Returns the mock, the run and the delayed
/// record's index.
fn delayed(policy: UnknownOutcome, topic: &str) -> (Mock, Run, usize) {
    let mock = Mock::new(2);
    mock.topic(topic, &[1, 2]);
    let mut run = Run::new(mock.bootstrap_list(), topic, |c| {
        c.client.producer.unknown_outcome = policy;
        c.client = c.client.with_request_timeout(Duration::from_secs(10));
    });
    for p in 0..2 {
        let warm = run.send_ok(p, LONG);
        run.settle(SETTLE);
        assert_eq!(run.outcome(warm), Outcome::Persisted { offset: Some(0) });
    }
    mock.push_broker_error(1, RDKafkaApiKey::Produce, 0, DELAY);
    let x = run.send_ok(0, DEADLINE);
    (mock, run, x)
}

/// Fail-and-fence: `PossiblyPersisted` at the deadline. Records sent next, to the same
/// partition and to one on the other broker, wait for the old epoch to drain (the delayed
/// answer): the fence stops every partition. They go out under the bumped epoch and are
/// `Persisted`. The delayed record is in the log once.
#[test]
fn delayed_response_fail_and_fence() {
    let (mock, mut run, x) = delayed(UnknownOutcome::FailAndFence, "delayed_fence");
    let t0 = run.sent[x].sent_at;
    while run.sent[x].outcome.is_none() && t0.elapsed() < DELAY {
        run.pump(Duration::from_millis(5));
    }
    assert_eq!(
        run.outcome(x),
        Outcome::PossiblyPersisted(PossiblyPersistedReason::Deadline)
    );
    let late = run.latency(x);
    assert!(
        late >= DEADLINE && late < DEADLINE + Duration::from_millis(150),
        "PossiblyPersisted {late:?} after send, deadline {DEADLINE:?}"
    );
    // Sent while the fence waits for the delayed answer.
    let y0 = run.send_ok(0, LONG);
    let y1 = run.send_ok(1, LONG);
    run.settle(SETTLE);
    assert_eq!(run.outcome(y0), Outcome::Persisted { offset: Some(2) });
    assert_eq!(run.outcome(y1), Outcome::Persisted { offset: Some(1) });
    for y in [y0, y1] {
        let y_at = run.sent[y].outcome.expect("outcome").2.duration_since(t0);
        assert!(
            y_at >= DELAY - Duration::from_millis(100),
            "{:?} was answered {y_at:?} after the delayed record was sent: nothing may go \
             out before the old epoch drained ({DELAY:?})",
            run.sent[y].value
        );
    }
    run.assert_identity((1, 1, 1));
    assert_eq!(run.counters().epoch.map(|e| e.0), Some(1));
    let log = run.read_and_verify(&mock.bootstrap(), 2, false);
    assert_eq!(log[&0].len(), 3, "{log:?}");
    assert_eq!(log[&1].len(), 2, "{log:?}");
}

/// Wait: the deadline passes unheeded; the outcome arrives with the delayed answer and is
/// `Persisted`, with no fence. The record is in the log once.
#[test]
fn delayed_response_wait() {
    let (mock, mut run, x) = delayed(UnknownOutcome::Wait, "delayed_wait");
    run.settle(SETTLE);
    assert_eq!(run.outcome(x), Outcome::Persisted { offset: Some(1) });
    let late = run.latency(x);
    assert!(
        late >= DELAY - Duration::from_millis(100) && late < DELAY + Duration::from_secs(1),
        "outcome {late:?} after send; the answer was delayed {DELAY:?}"
    );
    let y = run.send_ok(0, LONG);
    run.settle(SETTLE);
    assert_eq!(run.outcome(y), Outcome::Persisted { offset: Some(2) });
    let c = run.counters();
    assert_eq!(
        (c.fences, c.epoch_bumps, c.producer_ids, c.retries),
        (0, 0, 1, 0),
        "{c:?}"
    );
    let log = run.read_and_verify(&mock.bootstrap(), 2, false);
    assert_eq!(log[&0].len(), 3, "{log:?}");
}

/// Fail-and-fence with the answer held back past the request timeout (2 s): the producer
/// closes the connection, which drains the old epoch; the next record goes out under the
/// bumped epoch on a new connection. The delayed record is never resent: in the log once.
#[test]
fn delayed_response_past_request_timeout_fail_and_fence() {
    let timeout = Duration::from_secs(2);
    let mock = Mock::new(1);
    let topic = "delayed_timeout";
    mock.topic(topic, &[1]);
    let mut run = Run::new(mock.bootstrap_list(), topic, |c| {
        c.client = c.client.with_request_timeout(timeout)
    });
    let warm = run.send_ok(0, LONG);
    run.settle(SETTLE);
    assert_eq!(run.outcome(warm), Outcome::Persisted { offset: Some(0) });
    mock.push_broker_error(1, RDKafkaApiKey::Produce, 0, DELAY);
    let x = run.send_ok(0, DEADLINE);
    let t0 = run.sent[x].sent_at;
    while run.sent[x].outcome.is_none() && t0.elapsed() < DELAY {
        run.pump(Duration::from_millis(5));
    }
    assert_eq!(
        run.outcome(x),
        Outcome::PossiblyPersisted(PossiblyPersistedReason::Deadline)
    );
    assert!(run.latency(x) < DEADLINE + Duration::from_millis(150));
    let y = run.send_ok(0, LONG);
    run.settle(SETTLE);
    assert_eq!(run.outcome(y), Outcome::Persisted { offset: Some(2) });
    let y_at = run.sent[y].outcome.expect("outcome").2.duration_since(t0);
    assert!(
        y_at >= timeout - Duration::from_millis(50) && y_at < DELAY,
        "the next record was answered {y_at:?} after the delayed one was sent: it must wait \
         for the request timeout ({timeout:?}) and not for the answer ({DELAY:?})"
    );
    let c = run.counters();
    assert_eq!(
        (c.fences, c.epoch_bumps, c.producer_ids, c.retries),
        (1, 1, 1, 0),
        "{c:?}"
    );
    let log = run.read_and_verify(&mock.bootstrap(), 1, false);
    assert_eq!(log[&0].len(), 3, "{log:?}");
}
