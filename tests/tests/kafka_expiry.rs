//! Producer-id expiry on Apache Kafka, measured: what the README's durable-state section
//! claims, on a broker whose `producer.id.expiration.ms` is 3 s (checked every 500 ms).
//!
//! Each case: a durable producer (`transport-std` with a state file) writes a warm-up record,
//! then a record whose produce response a proxy holds back (Kafka appended it; the producer
//! cannot know), and "crashes" (is dropped without taking outcomes). A second producer
//! restores from the same file:
//!
//! - `resend_within_the_broker_s_memory_is_deduplicated`: restored at once, the stamped batch
//!   is resent with its stamp; Kafka still knows the producer and answers with the batch's
//!   original offset. The record is in the log once, `Persisted` at that offset.
//! - `resend_after_expiry_is_appended_twice`: restored once Kafka has forgotten the producer
//!   (DescribeProducers no longer lists it) and with no `producer_state_ttl`, the resend is
//!   appended as new data, without an error: the record is in the log twice and reported
//!   `Persisted` at its second offset. No client can tell; this is why the TTL exists.
//! - `restore_past_the_ttl_reports_producer_state_expired`: the same, with a TTL shorter than
//!   the batch's age: the batch is not resent but reported
//!   `PossiblyPersisted(ProducerStateExpired)`; the record is in the log once.

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use producer_core::state::{Outcome, PossiblyPersistedReason};
use tests::kafka::Kafka;
use tests::{ChaosProxy, ProxyMode, free_port, read_back};
use transport_std::{DurableState, Producer, ProducerConfig, ProducerRecord, RecordDelivery};

/// The tag of the stalled record's batch.
const STALLED: u64 = 7;

/// Kafka forgets an idle producer this long after the newest record timestamp it appended.
const EXPIRATION_MS: &str = "3000";

struct Setup {
    proxy: ChaosProxy,
    kafka: Kafka,
    state: PathBuf,
    topic: &'static str,
}

fn setup(topic: &'static str) -> Setup {
    let port = free_port();
    let proxy = ChaosProxy::start(([127, 0, 0, 1], port).into(), ProxyMode::Pass, 1);
    let kafka = Kafka::builder(1)
        .client_ports(vec![port])
        .advertised(vec![proxy.address()])
        .config("producer.id.expiration.ms", EXPIRATION_MS)
        .config("producer.id.expiration.check.interval.ms", "500")
        .start();
    kafka.create_topic(topic, 1);
    let state = std::env::temp_dir().join(format!(
        "kafka-expiry-{topic}-{}-{}.state",
        std::process::id(),
        rand::random::<u32>()
    ));
    Setup {
        proxy,
        kafka,
        state,
        topic,
    }
}

fn producer(s: &Setup, ttl: Option<Duration>) -> Producer {
    let mut config = ProducerConfig::new([s.proxy.address()], [s.topic]);
    let mut durable = DurableState::new(&s.state);
    durable.producer_state_ttl = ttl;
    durable.restored_deadline = Duration::from_secs(20);
    config.durable = Some(durable);
    // A batch and its storage header must fit one page of the state file.
    config.client.batch_bytes = 16 * 1024;
    Producer::new(config).expect("producer")
}

/// Sends `value` and drives the producer until its outcome arrives (or `within` passes).
fn send_and_wait(p: &mut Producer, topic: &str, value: &[u8], within: Duration) -> RecordDelivery {
    let deadline = Instant::now() + within;
    p.send(&ProducerRecord::value(topic, value), deadline)
        .expect("accepted");
    take_one(p, deadline)
}

fn take_one(p: &mut Producer, until: Instant) -> RecordDelivery {
    loop {
        if let Some(d) = p.poll_delivery() {
            return d;
        }
        assert!(
            Instant::now() < until + Duration::from_secs(2),
            "no outcome in time"
        );
        p.poll(Duration::from_millis(10));
    }
}

/// The first life: a warm-up record persisted, then `stalled` sent while the proxy holds
/// every produce response; returns once Kafka has answered it (the proxy holds the answer),
/// dropping the producer as a crash would. Returns the offset of the warm-up record.
fn first_life(s: &Setup, ttl: Option<Duration>) -> i64 {
    let mut p = producer(s, ttl);
    let warm = send_and_wait(&mut p, s.topic, b"warm-up", Duration::from_secs(20));
    assert!(
        matches!(warm.outcome, Outcome::Persisted { .. }),
        "warm-up: {warm:?}"
    );
    let warm_offset = warm.offset.expect("Kafka reports the offset");
    s.proxy.set_mode(ProxyMode::StallProduce);
    let held_before = s.proxy.stats().responses_held;
    p.send_tagged(
        &ProducerRecord::value(s.topic, b"stalled"),
        STALLED,
        Instant::now() + Duration::from_secs(30),
    )
    .expect("accepted");
    let until = Instant::now() + Duration::from_secs(20);
    while s.proxy.stats().responses_held == held_before {
        assert!(
            Instant::now() < until,
            "Kafka never answered the stalled record"
        );
        p.poll(Duration::from_millis(10));
    }
    assert!(
        p.poll_delivery().is_none(),
        "no outcome while the answer is held"
    );
    drop(p);
    s.proxy.set_mode(ProxyMode::Pass);
    warm_offset
}

/// Waits until Kafka's DescribeProducers no longer lists any producer on partition 0 (it
/// expired them), at most 30 s.
fn wait_until_forgotten(s: &Setup) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let out = s.kafka.tool(
            "org.apache.kafka.tools.TransactionsCommand",
            &["describe-producers", "--topic", s.topic, "--partition", "0"],
        );
        // A header line, then one line per producer the partition still has state for.
        let producers = out.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
        if producers == 0 {
            eprintln!("{}: Kafka no longer lists the producer", s.topic);
            return;
        }
        assert!(
            Instant::now() < until,
            "Kafka still lists the producer after 30 s:\n{out}"
        );
        thread::sleep(Duration::from_millis(500));
    }
}

/// The second life: restores and takes the outcome the stalled record's restored batch gets
/// (the warm-up's, already handed out, may come again: outcomes are at-least-once across a
/// restart).
fn second_life(
    s: &Setup,
    ttl: Option<Duration>,
) -> (Vec<RecordDelivery>, transport_std::RestoreSummary) {
    let mut p = producer(s, ttl);
    let summary = p.restored();
    eprintln!("{}: restored {summary:?}", s.topic);
    let until = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    while !p.is_idle() {
        assert!(
            Instant::now() < until,
            "restored batches undecided after 20 s"
        );
        p.flush(Instant::now() + Duration::from_millis(100));
        while let Some(d) = p.poll_delivery() {
            if d.batch_tag == STALLED {
                assert!(d.restored, "{d:?}");
                out.push(d);
            }
        }
    }
    (out, summary)
}

/// The offsets at which `value` is in partition 0.
fn offsets_of(s: &Setup, value: &[u8], expected: usize) -> Vec<i64> {
    let log = read_back(
        &s.kafka.bootstrap(),
        s.topic,
        1,
        expected,
        Duration::from_secs(30),
    );
    log[0]
        .iter()
        .filter(|r| r.value.as_deref() == Some(value))
        .map(|r| r.offset)
        .collect()
}

#[test]
fn resend_within_the_broker_s_memory_is_deduplicated() {
    let s = setup("expiry-fresh");
    let warm = first_life(&s, None);
    let (outcomes, summary) = second_life(&s, None);
    assert_eq!(summary.stamped, 1, "the stalled batch is restored stamped");
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    let d = outcomes[0];
    assert_eq!(
        d.outcome,
        Outcome::Persisted {
            offset: Some(warm + 1)
        }
    );
    assert_eq!(offsets_of(&s, b"stalled", 2), [warm + 1], "in the log once");
    let _ = std::fs::remove_file(&s.state);
}

#[test]
fn resend_after_expiry_is_appended_twice() {
    let s = setup("expiry-resent");
    let warm = first_life(&s, None);
    wait_until_forgotten(&s);
    let (outcomes, summary) = second_life(&s, None);
    assert_eq!(summary.stamped, 1, "the stalled batch is restored stamped");
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    // Kafka 2.5+ accepts any sequence from a producer it has no state for: the resend is
    // new data to it, answered NONE with a new offset.
    assert_eq!(
        outcomes[0].outcome,
        Outcome::Persisted {
            offset: Some(warm + 2)
        }
    );
    let offsets = offsets_of(&s, b"stalled", 3);
    eprintln!("expiry-resent: the stalled record is in the log at offsets {offsets:?}");
    assert_eq!(
        offsets,
        [warm + 1, warm + 2],
        "Kafka appended the resend of an expired producer as new data"
    );
    let _ = std::fs::remove_file(&s.state);
}

#[test]
fn restore_past_the_ttl_reports_producer_state_expired() {
    let s = setup("expiry-ttl");
    let ttl = Some(Duration::from_secs(1));
    let warm = first_life(&s, ttl);
    wait_until_forgotten(&s);
    let (outcomes, summary) = second_life(&s, ttl);
    assert_eq!(
        summary.expired, 1,
        "the stalled batch is past the TTL: {summary:?}"
    );
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(
        outcomes[0].outcome,
        Outcome::PossiblyPersisted(PossiblyPersistedReason::ProducerStateExpired)
    );
    assert_eq!(
        offsets_of(&s, b"stalled", 2),
        [warm + 1],
        "in the log once, not resent"
    );
    let _ = std::fs::remove_file(&s.state);
}
