//! Where Apache Kafka departs from the simpler broker the producer was first written
//! against, each shown on real Kafka and read back by the independent consumer (offsets
//! exact, every outcome true, nothing twice, order kept per partition):
//!
//! - `rolling_restart_with_short_deadlines`: three nodes restarted one by one with a
//!   controlled shutdown while records with 1.5 s deadlines flow under `FailAndFence`. A
//!   shutdown moves leaderships while produce requests wait for their replicas, and Kafka
//!   answers those NOT_LEADER_OR_FOLLOWER although the batch is in the log (the new leader
//!   keeps it): the producer must not report such a batch `NotPersisted` at its deadline, nor
//!   restamp it after a fence.
//! - `broker_restart_between_append_and_retry`: five batches of one partition appended, their
//!   answers held back, then the node restarts (SIGTERM). Kafka reloads producer state from a
//!   snapshot that keeps only the last batch per producer, so the retries of the earlier ones
//!   are no longer recognised as duplicates (OUT_OF_ORDER_SEQUENCE_NUMBER): they must end
//!   `PossiblyPersisted` (they are in the log), never resent under a new epoch.
//! - `expiry_during_a_stall` and `no_ttl_expiry_during_a_stall_appends_twice`: a node that
//!   forgets an idle producer 3 s after its newest record timestamp; a produce answer held
//!   back past that. With a producer-state lifetime of 1.5 s the producer gives the batch up
//!   (`PossiblyPersisted(ProducerStateExpired)`) instead of resending it; without one, the
//!   resend is appended a second time (Kafka has no state left to deduplicate it), which is
//!   why the lifetime exists.
//! - `expiry_while_connections_are_cut`: bursts of records through a proxy that cuts
//!   connections, with silences in which Kafka forgets the producer (DescribeProducers lists
//!   none); each burst goes on with the sequences where the last one stopped, which Kafka 4
//!   accepts from a producer it has no state for (older brokers answered
//!   UNKNOWN_PRODUCER_ID). Every outcome true.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use producer_core::state::{Outcome, OutcomeKind, PossiblyPersistedReason, UnknownOutcome};
use tests::kafka::Kafka;
use tests::records::{Run, produce_paced, produce_until, verify};
use tests::{ChaosProxy, ProxyMode, ReadRecord, free_port, read_back};
use transport_std::{Producer, ProducerConfig, ProducerRecord, RecordDelivery};

#[test]
fn rolling_restart_with_short_deadlines() {
    const PARTITIONS: i32 = 6;
    let kafka = Kafka::builder(3).start();
    let topic = "rolling-short";
    kafka.create_topic_with(topic, PARTITIONS, 3, &[("min.insync.replicas", "2")]);
    let mut config = ProducerConfig::new(kafka.bootstrap_all(), [topic]);
    config.client.producer.unknown_outcome = UnknownOutcome::FailAndFence;
    config.client.batch_bytes = 8 * 1024;
    config.client = config.client.with_request_timeout(Duration::from_secs(5));
    let mut producer = Producer::new(config).expect("producer");
    let stop = AtomicBool::new(false);
    let run = thread::scope(|s| {
        let stop = &stop;
        let kafka = &kafka;
        let restarts = s.spawn(move || {
            thread::sleep(Duration::from_secs(2));
            for node in kafka.node_ids() {
                kafka.stop(node);
                kafka.start(node);
                assert!(
                    kafka.wait_in_sync(topic, Duration::from_secs(60)),
                    "node {node} did not catch up"
                );
            }
            thread::sleep(Duration::from_secs(2));
            stop.store(true, Ordering::Relaxed);
        });
        let run = produce_until(
            &mut producer,
            topic,
            1_000_000,
            Duration::from_millis(1500),
            Some(Duration::from_micros(500)),
            Some(stop),
        );
        if let Err(p) = restarts.join() {
            std::panic::resume_unwind(p);
        }
        run
    });
    drop(producer);
    report(topic, &run);
    assert!(kafka.wait_in_sync(topic, Duration::from_secs(60)));
    let log = read_back(
        &kafka.bootstrap(),
        topic,
        PARTITIONS,
        run.count(OutcomeKind::Persisted),
        Duration::from_secs(120),
    );
    let v = verify(&log, &run.told, true);
    eprintln!(
        "{topic}: verified: {} persisted, {} not persisted, {} possibly persisted ({} of them in the log)",
        v.persisted, v.not_persisted, v.possibly, v.possibly_present
    );
    assert!(v.persisted > 0);
    assert_eq!(run.producer_ids, 1, "every fence is a local epoch bump");
}

fn report(topic: &str, run: &Run) {
    eprintln!(
        "{topic}: {} records in {:.1} s: {} persisted, {} not persisted, {} possibly persisted; \
         {} retries, {} epoch bumps, {} producer ids",
        run.told.len(),
        run.elapsed.as_secs_f64(),
        run.count(OutcomeKind::Persisted),
        run.count(OutcomeKind::NotPersisted),
        run.count(OutcomeKind::PossiblyPersisted),
        run.retries,
        run.epoch_bumps,
        run.producer_ids
    );
}

/// One node behind a proxy (which it advertises), with `configs` on the broker, and a
/// one-partition topic.
fn proxied_node(topic: &str, configs: &[(&str, &str)]) -> (ChaosProxy, Kafka) {
    let port = free_port();
    let proxy = ChaosProxy::start(([127, 0, 0, 1], port).into(), ProxyMode::Pass, 7);
    let mut builder = Kafka::builder(1)
        .client_ports(vec![port])
        .advertised(vec![proxy.address()]);
    for (k, v) in configs {
        builder = builder.config(k, v);
    }
    let kafka = builder.start();
    kafka.create_topic(topic, 1);
    (proxy, kafka)
}

/// Drives `p` until `n` outcomes arrived (at most `within`).
fn outcomes(p: &mut Producer, n: usize, within: Duration) -> Vec<RecordDelivery> {
    let until = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            Instant::now() < until,
            "{} of {n} outcomes after {within:?}",
            out.len()
        );
        p.poll(Duration::from_millis(10));
        while let Some(d) = p.poll_delivery() {
            out.push(d);
        }
    }
    out
}

/// The offsets at which each value is in partition 0.
fn offsets(log: &[Vec<ReadRecord>], value: &str) -> Vec<i64> {
    log[0]
        .iter()
        .filter(|r| r.value.as_deref() == Some(value.as_bytes()))
        .map(|r| r.offset)
        .collect()
}

#[test]
fn broker_restart_between_append_and_retry() {
    let topic = "restart-retry";
    let (proxy, kafka) = proxied_node(topic, &[]);
    let mut config = ProducerConfig::new([proxy.address()], [topic]);
    config.client.producer.unknown_outcome = UnknownOutcome::Wait;
    config.client.linger = Duration::ZERO;
    let mut p = Producer::new(config).expect("producer");
    // A first batch answered: the producer has an id, and five may go out at once.
    p.send(&ProducerRecord::value(topic, b"warm-up"), far())
        .unwrap();
    let warm = outcomes(&mut p, 1, Duration::from_secs(20));
    assert!(matches!(warm[0].outcome, Outcome::Persisted { .. }));
    proxy.set_mode(ProxyMode::StallProduce);
    for i in 0..5 {
        p.send(
            &ProducerRecord::value(topic, format!("held-{i}").as_bytes()),
            far(),
        )
        .unwrap();
        // One batch each: linger zero, and the sockets get a turn.
        p.flush(Instant::now() + Duration::from_millis(20));
    }
    let until = Instant::now() + Duration::from_secs(20);
    while proxy.stats().responses_held < 5 {
        assert!(
            Instant::now() < until,
            "Kafka did not answer the five batches"
        );
        p.poll(Duration::from_millis(10));
    }
    // All five are in Kafka's log; the node now restarts from its producer-state snapshot.
    kafka.stop(1);
    proxy.set_mode(ProxyMode::Pass);
    kafka.start(1);
    let told = outcomes(&mut p, 5, Duration::from_secs(60));
    p.send(&ProducerRecord::value(topic, b"after"), far())
        .unwrap();
    let after = outcomes(&mut p, 1, Duration::from_secs(30));
    let c = p.counters();
    drop(p);
    eprintln!("{topic}: outcomes {told:?}, then {after:?}; counters {c:?}");
    let log = read_back(&kafka.bootstrap(), topic, 1, 7, Duration::from_secs(30));
    for (i, d) in told.iter().enumerate() {
        let at = offsets(&log, &format!("held-{i}"));
        assert_eq!(at.len(), 1, "held-{i} is in the log once: {at:?}");
        match d.outcome {
            Outcome::Persisted { .. } => {
                assert_eq!(d.offset, Some(at[0]), "held-{i}: reported offset")
            }
            Outcome::PossiblyPersisted(_) => {}
            other => panic!("held-{i} is in the log but was reported {other:?}"),
        }
    }
    assert!(matches!(after[0].outcome, Outcome::Persisted { .. }));
    assert_eq!(offsets(&log, "after"), [after[0].offset.unwrap()]);
    assert_eq!(c.producer_ids, 1, "the fence was a local epoch bump");
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

/// Kafka forgets an idle producer 3 s after its newest record timestamp (checked every
/// 500 ms).
const EXPIRY: [(&str, &str); 2] = [
    ("producer.id.expiration.ms", "3000"),
    ("producer.id.expiration.check.interval.ms", "500"),
];

/// A warm-up record, then `held` sent while its answer is held back for 6 s (past the
/// broker's expiry), during which the request timeout (4 s) closes the connection; returns
/// the held record's outcome and the offsets at which it is in the log.
fn stall_past_expiry(topic: &str, ttl: Option<Duration>) -> (RecordDelivery, Vec<i64>) {
    let (proxy, kafka) = proxied_node(topic, &EXPIRY);
    let mut config = ProducerConfig::new([proxy.address()], [topic]);
    config.client.producer.unknown_outcome = UnknownOutcome::Wait;
    config.client = config.client.with_request_timeout(Duration::from_secs(4));
    config.client.producer_state_ttl = ttl;
    let mut p = Producer::new(config).expect("producer");
    p.send(&ProducerRecord::value(topic, b"warm-up"), far())
        .unwrap();
    assert!(matches!(
        outcomes(&mut p, 1, Duration::from_secs(20))[0].outcome,
        Outcome::Persisted { .. }
    ));
    proxy.set_mode(ProxyMode::StallProduce);
    p.send(&ProducerRecord::value(topic, b"held"), far())
        .unwrap();
    // The request times out at 4 s and its connection closes; with a lifetime, the batch is
    // given up then (its record is 4 s old), before the answer would have been released.
    let released = Instant::now() + Duration::from_secs(6);
    let mut early = None;
    while Instant::now() < released {
        p.poll(Duration::from_millis(10));
        if let Some(d) = p.poll_delivery() {
            early.get_or_insert(d);
        }
    }
    proxy.set_mode(ProxyMode::Pass);
    let d = match early {
        Some(d) => d,
        None => outcomes(&mut p, 1, Duration::from_secs(30))[0],
    };
    drop(p);
    let log = read_back(&kafka.bootstrap(), topic, 1, 2, Duration::from_secs(30));
    (d, offsets(&log, "held"))
}

#[test]
fn expiry_during_a_stall() {
    let (d, at) = stall_past_expiry("stall-ttl", Some(Duration::from_millis(1500)));
    eprintln!("stall-ttl: {d:?}; in the log at {at:?}");
    assert_eq!(
        d.outcome,
        Outcome::PossiblyPersisted(PossiblyPersistedReason::ProducerStateExpired)
    );
    assert_eq!(at.len(), 1, "appended once, never resent");
}

#[test]
fn no_ttl_expiry_during_a_stall_appends_twice() {
    let (d, at) = stall_past_expiry("stall-no-ttl", None);
    eprintln!("stall-no-ttl: {d:?}; in the log at {at:?}");
    // What a producer without the lifetime gets from Kafka: the resend appended as new data,
    // answered NONE with its new offset.
    assert_eq!(
        at.len(),
        2,
        "Kafka appended the resend of a forgotten producer"
    );
    assert_eq!(
        d.outcome,
        Outcome::Persisted {
            offset: Some(at[1])
        }
    );
}

#[test]
fn expiry_while_connections_are_cut() {
    const PARTITIONS: i32 = 3;
    const BURSTS: usize = 5;
    const PER_BURST: usize = 600;
    let topic = "expiry-chaos";
    let port = free_port();
    let seed: u64 = rand::random();
    eprintln!("{topic}: chaos seed {seed}");
    let proxy = ChaosProxy::start(([127, 0, 0, 1], port).into(), ProxyMode::Pass, seed);
    let mut builder = Kafka::builder(1)
        .client_ports(vec![port])
        .advertised(vec![proxy.address()]);
    for (k, v) in EXPIRY {
        builder = builder.config(k, v);
    }
    let kafka = builder.start();
    kafka.create_topic(topic, PARTITIONS);
    let mut config = ProducerConfig::new([proxy.address()], [topic]);
    config.client.producer.unknown_outcome = UnknownOutcome::FailAndFence;
    config.client = config.client.with_request_timeout(Duration::from_secs(2));
    config.client.batch_bytes = 2 * 1024;
    config.client.producer_state_ttl = Some(Duration::from_millis(1500));
    let mut producer = Producer::new(config).expect("producer");
    proxy.set_mode(ProxyMode::Chaos {
        cut_probability: 0.05,
    });
    // Bursts of records with 5 s of silence between them: Kafka forgets the producer in each
    // silence (3 s after its newest record, checked every 500 ms).
    let stop = AtomicBool::new(false);
    let pause = AtomicBool::new(false);
    let run = thread::scope(|s| {
        let (stop, pause, kafka) = (&stop, &pause, &kafka);
        let pacer = s.spawn(move || {
            let mut forgotten = 0;
            for _ in 0..BURSTS {
                thread::sleep(Duration::from_millis(600));
                pause.store(true, Ordering::Relaxed);
                let silence = Instant::now();
                thread::sleep(Duration::from_millis(3600));
                let listed = kafka.tool(
                    "org.apache.kafka.tools.TransactionsCommand",
                    &["describe-producers", "--topic", topic, "--partition", "0"],
                );
                forgotten += usize::from(listed.lines().skip(1).all(|l| l.trim().is_empty()));
                thread::sleep(Duration::from_secs(5).saturating_sub(silence.elapsed()));
                pause.store(false, Ordering::Relaxed);
            }
            stop.store(true, Ordering::Relaxed);
            forgotten
        });
        let run = produce_paced(
            &mut producer,
            topic,
            BURSTS * PER_BURST * 8,
            Duration::from_secs(8),
            Some(Duration::from_millis(1)),
            Some(stop),
            Some(pause),
        );
        let forgotten = pacer.join().expect("pacer");
        (run, forgotten)
    });
    let (run, forgotten) = run;
    eprintln!("{topic}: Kafka had forgotten the producer in {forgotten} of {BURSTS} silences");
    assert!(forgotten > 0, "Kafka never forgot the producer");
    drop(producer);
    proxy.set_mode(ProxyMode::Pass);
    report(topic, &run);
    let log = read_back(
        &kafka.bootstrap(),
        topic,
        PARTITIONS,
        run.count(OutcomeKind::Persisted),
        Duration::from_secs(60),
    );
    let v = verify(&log, &run.told, true);
    eprintln!(
        "{topic}: verified: {} persisted, {} not persisted, {} possibly persisted ({} in the log); proxy {:?}",
        v.persisted,
        v.not_persisted,
        v.possibly,
        v.possibly_present,
        proxy.stats()
    );
    assert!(proxy.stats().cuts() > 0, "the proxy cut nothing");
}
