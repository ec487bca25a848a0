//! Against real brokers, one Apache Kafka 4.x node and tansu, each test body run against
//! both (`_kafka` and `_tansu`), read back by an independent consumer (librdkafka):
//!
//! - `exact_100k_records_three_partitions`: 100,000 records (keys, tombstone-free values,
//!   headers) over 3 partitions all land exactly once, in send order per partition, with
//!   content intact and CRCs checked by the consumer.
//! - `chaos_proxy_cuts_connections`: the same volume through a proxy that cuts connections
//!   at random points of the request/response exchange; the log holds every record at most
//!   once and in order, and every outcome the producer reported is true.
//! - `chaos_short_deadlines_*`: short deadlines under chaos, under both policies.
//!
//! Against Kafka every offset the producer reports must be exactly where the record is in
//! the log, batches retried after a cut response included, and a fence must not need a new
//! producer id (Kafka accepts the local epoch bump). tansu's offsets after a
//! DUPLICATE_SEQUENCE_NUMBER answer are not trusted, and it refuses the bump.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use producer_core::client::Receipt;
use producer_core::state::{OutcomeKind, UnknownOutcome};
use producer_core::wire::RecordHeader;
use tests::{Broker, BrokerKind, ChaosProxy, ProxyMode, ReadRecord, free_port, read_back};
use transport_std::{Error, Producer, ProducerConfig, Record};

const PARTITIONS: i32 = 3;

/// The content of record `i`: a unique value (it names the record), a key for most records,
/// and 0 to 3 headers (some with null values). Every 101st record is a tombstone (no value)
/// named by its unique key.
struct Content {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn content(i: usize) -> Content {
    let tombstone = i % 101 == 50;
    let key = if tombstone {
        Some(format!("tombstone-{i:07}").into_bytes())
    } else {
        (i % 7 != 3).then(|| format!("key-{}", i % 1009).into_bytes())
    };
    let value =
        (!tombstone).then(|| format!("value-{i:07}-{}", "abcdefghij".repeat(i % 13)).into_bytes());
    let mut headers = Vec::new();
    if i % 4 >= 1 {
        headers.push(("index".to_string(), Some(i.to_string().into_bytes())));
    }
    if i % 4 >= 2 {
        headers.push(("null".to_string(), None));
    }
    if i % 4 == 3 {
        headers.push(("empty".to_string(), Some(Vec::new())));
    }
    Content {
        key,
        value,
        headers,
    }
}

/// Index of the record read back: from its value, or a tombstone's key.
fn index_of(r: &ReadRecord) -> Option<usize> {
    let digits = match (&r.value, &r.key) {
        (Some(value), _) => value.get(6..13)?,
        (None, Some(key)) => key.get(10..17)?,
        (None, None) => return None,
    };
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// What the producer said about one record.
#[derive(Clone, Copy, Debug, Default)]
struct Told {
    /// Partition from its receipt (`None`: never accepted).
    partition: Option<i32>,
    /// Its outcome.
    outcome: Option<OutcomeKind>,
    /// Offset the producer reported with a `Persisted` outcome.
    offset: Option<i64>,
}

type Pending = HashMap<(producer_core::state::BatchToken, u32), usize>;

/// Takes every outcome the producer has ready.
fn drain(producer: &mut Producer, pending: &mut Pending, told: &mut [Told]) {
    while let Some(d) = producer.poll_delivery() {
        let i = pending
            .remove(&(d.receipt.batch, d.receipt.offset_delta))
            .unwrap_or_else(|| panic!("a delivery for no pending record: {d:?}"));
        assert!(told[i].outcome.is_none(), "record {i} got a second outcome");
        assert_eq!(told[i].partition, Some(d.receipt.partition));
        told[i].outcome = Some(d.outcome.kind());
        told[i].offset = d.offset;
    }
}

struct Run {
    told: Vec<Told>,
    elapsed: Duration,
    retries: u64,
    epoch_bumps: u64,
    producer_ids: u64,
}

/// Sends records `0..n` with `deadline_after` each, then drives the producer until every
/// record has its outcome (at most 5 s after the last deadline). With `interval`, record `i`
/// is not sent before `i * interval` from the start (the producer is driven meanwhile).
fn produce_all(
    producer: &mut Producer,
    topic: &str,
    n: usize,
    deadline_after: Duration,
    interval: Option<Duration>,
) -> Run {
    let started = Instant::now();
    let mut told = vec![Told::default(); n];
    let mut pending = Pending::new();
    let mut last_deadline = Instant::now();
    for i in 0..n {
        if let Some(interval) = interval {
            let due = started + interval * i as u32;
            while Instant::now() < due {
                producer.poll(due.saturating_duration_since(Instant::now()));
                drain(producer, &mut pending, &mut told);
            }
        }
        let c = content(i);
        let headers: Vec<RecordHeader<'_>> = c
            .headers
            .iter()
            .map(|(k, v)| RecordHeader {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        let record = Record {
            topic,
            partition: None,
            key: c.key.as_deref(),
            value: c.value.as_deref(),
            headers: &headers,
        };
        let deadline = Instant::now() + deadline_after;
        last_deadline = deadline;
        match producer.send(&record, deadline) {
            Ok(Receipt {
                batch,
                offset_delta,
                partition,
                ..
            }) => {
                let previous = pending.insert((batch, offset_delta), i);
                assert!(
                    previous.is_none(),
                    "receipt {batch:?}/{offset_delta} handed out twice"
                );
                told[i].partition = Some(partition);
            }
            Err(Error::Deadline(_)) => {
                told[i].outcome = Some(OutcomeKind::NotPersisted);
            }
            Err(e) => panic!("record {i} refused: {e}"),
        }
        drain(producer, &mut pending, &mut told);
    }
    let give_up = last_deadline + Duration::from_secs(5);
    while !pending.is_empty() && Instant::now() < give_up {
        producer.flush(Instant::now() + Duration::from_millis(200));
        drain(producer, &mut pending, &mut told);
    }
    assert!(
        pending.is_empty(),
        "{} records had no outcome 5 s after the last deadline",
        pending.len()
    );
    let c = producer.counters();
    Run {
        told,
        elapsed: started.elapsed(),
        retries: c.retries,
        epoch_bumps: c.epoch_bumps,
        producer_ids: c.producer_ids,
    }
}

#[derive(Debug, Default)]
struct Verified {
    persisted: usize,
    not_persisted: usize,
    possibly: usize,
    possibly_present: usize,
    offset_mismatches: usize,
}

/// Checks the log against the producer's claims: every record read is one we sent, with its
/// content intact, in the partition its receipt named, at most once, in send order per
/// partition; `Persisted` records are all present, `NotPersisted` ones absent. With
/// `exact_offsets`, offsets the producer reported must match the log.
fn verify(log: &[Vec<ReadRecord>], told: &[Told], exact_offsets: bool) -> Verified {
    let mut seen = vec![false; told.len()];
    let mut v = Verified::default();
    for (p, records) in log.iter().enumerate() {
        let p = p as i32;
        let mut previous: Option<(usize, i64)> = None;
        for r in records {
            let i = index_of(r)
                .unwrap_or_else(|| panic!("partition {p}: a record we never sent: {r:?}"));
            assert!(i < told.len(), "index {i} out of range");
            let c = content(i);
            assert_eq!(r.value, c.value, "record {i}: value");
            assert_eq!(r.key, c.key, "record {i}: key");
            assert_eq!(r.headers, c.headers, "record {i}: headers");
            assert!(
                !seen[i],
                "record {i} is in the log twice (second at partition {p} offset {})",
                r.offset
            );
            seen[i] = true;
            assert_eq!(
                told[i].partition,
                Some(p),
                "record {i} found in partition {p}, its receipt said {:?}",
                told[i].partition
            );
            assert_ne!(
                told[i].outcome,
                Some(OutcomeKind::NotPersisted),
                "record {i} reported NotPersisted is in the log (partition {p} offset {})",
                r.offset
            );
            if let Some((j, offset)) = previous {
                assert!(
                    j < i,
                    "partition {p}: record {i} (offset {}) after record {j} (offset {offset}): out of send order",
                    r.offset
                );
                assert!(offset < r.offset, "partition {p}: offsets not increasing");
            }
            previous = Some((i, r.offset));
            if told[i].outcome == Some(OutcomeKind::Persisted)
                && let Some(o) = told[i].offset
                && o != r.offset
            {
                v.offset_mismatches += 1;
                assert!(
                    !exact_offsets,
                    "record {i}: producer reported offset {o}, the log has it at {}",
                    r.offset
                );
            }
        }
    }
    for (i, t) in told.iter().enumerate() {
        match t.outcome {
            Some(OutcomeKind::Persisted) => {
                v.persisted += 1;
                assert!(
                    seen[i],
                    "record {i} reported Persisted (partition {:?}, offset {:?}) is not in the log",
                    t.partition, t.offset
                );
            }
            Some(OutcomeKind::NotPersisted) => v.not_persisted += 1,
            Some(OutcomeKind::PossiblyPersisted) => {
                v.possibly += 1;
                v.possibly_present += usize::from(seen[i]);
            }
            None => panic!("record {i} has no outcome"),
        }
    }
    v
}

#[test]
fn exact_100k_records_three_partitions_kafka() {
    exact_100k_records_three_partitions(BrokerKind::Kafka);
}

#[test]
fn exact_100k_records_three_partitions_tansu() {
    exact_100k_records_three_partitions(BrokerKind::Tansu);
}

fn exact_100k_records_three_partitions(kind: BrokerKind) {
    const N: usize = 100_000;
    let broker = Broker::start(kind);
    broker.create_topic("exact", PARTITIONS);
    let mut producer =
        Producer::new(ProducerConfig::new([broker.bootstrap()], ["exact"])).expect("producer");
    let run = produce_all(&mut producer, "exact", N, Duration::from_secs(60), None);
    drop(producer);
    let persisted = run
        .told
        .iter()
        .filter(|t| t.outcome == Some(OutcomeKind::Persisted))
        .count();
    eprintln!(
        "produced {N} records in {:?}: {persisted} persisted, {} retries",
        run.elapsed, run.retries
    );
    assert_eq!(
        persisted, N,
        "every record persists against a healthy broker"
    );
    let started = Instant::now();
    let log = read_back(
        &broker.bootstrap(),
        "exact",
        PARTITIONS,
        N,
        Duration::from_secs(120),
    );
    eprintln!(
        "read back {} records in {:?} (per partition: {:?})",
        log.iter().map(Vec::len).sum::<usize>(),
        started.elapsed(),
        log.iter().map(Vec::len).collect::<Vec<_>>()
    );
    // Offsets are exact on Kafka, and on tansu while no retry happened (its offsets after
    // a DUPLICATE_SEQUENCE_NUMBER answer are not to be trusted).
    let v = verify(&log, &run.told, kind.exact_offsets() || run.retries == 0);
    // Exact: per partition, the log is exactly the records routed there, in send order.
    for p in 0..PARTITIONS {
        let sent: Vec<usize> = (0..N)
            .filter(|&i| run.told[i].partition == Some(p))
            .collect();
        let read: Vec<usize> = log[p as usize]
            .iter()
            .map(|r| index_of(r).unwrap())
            .collect();
        assert!(!sent.is_empty(), "partition {p} got no records");
        assert_eq!(read.len(), sent.len(), "partition {p}: record count");
        assert!(
            read == sent,
            "partition {p}: log order differs from send order"
        );
    }
    assert_eq!(v.persisted, N);
}

/// A chaos run: `n` records through a [`ChaosProxy`] cutting with `cut_probability` per
/// request, each with `deadline_after`, then read back and verified. Returns the outcome
/// counts and the proxy's statistics.
fn chaos_run(
    kind: BrokerKind,
    topic: &str,
    n: usize,
    deadline_after: Duration,
    interval: Option<Duration>,
    cut_probability: f64,
    policy: UnknownOutcome,
) -> (u64, Verified, tests::ProxyStats) {
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    // For exploration: CHAOS_CUT_PROBABILITY overrides the test's cut probability.
    let cut_probability = std::env::var("CHAOS_CUT_PROBABILITY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(cut_probability);
    eprintln!(
        "{topic} on {}: chaos seed {seed}, cut probability {cut_probability} (rerun with CHAOS_SEED={seed})",
        kind.name()
    );
    let broker_port = free_port();
    let proxy = ChaosProxy::start(([127, 0, 0, 1], broker_port).into(), ProxyMode::Pass, seed);
    let broker = Broker::start_on(kind, broker_port, proxy.port());
    broker.create_topic(topic, PARTITIONS);
    let mut config = ProducerConfig::new([proxy.address()], [topic]);
    config.unknown_outcome = policy;
    // Small batches: more requests, so more places to cut.
    config.batch_bytes = 4 * 1024;
    config.request_timeout = Duration::from_secs(5);
    // For exploration: CHAOS_MAX_IN_FLIGHT overrides the requests in flight per partition.
    if let Some(m) = std::env::var("CHAOS_MAX_IN_FLIGHT")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        config.max_in_flight = m;
    }
    let mut producer = Producer::new(config).expect("producer");
    proxy.set_mode(ProxyMode::Chaos { cut_probability });
    let run = produce_all(&mut producer, topic, n, deadline_after, interval);
    drop(producer);
    proxy.set_mode(ProxyMode::Pass);
    let stats = proxy.stats();
    let count = |k| run.told.iter().filter(|t| t.outcome == Some(k)).count();
    let persisted = count(OutcomeKind::Persisted);
    eprintln!(
        "{topic}: seed {seed}: produced {n} records in {:?}: {persisted} persisted, {} not persisted, \
         {} possibly persisted; {} retries, {} epoch bumps, {} producer ids; proxy: {stats:?}",
        run.elapsed,
        count(OutcomeKind::NotPersisted),
        count(OutcomeKind::PossiblyPersisted),
        run.retries,
        run.epoch_bumps,
        run.producer_ids
    );
    let log = read_back(
        &proxy.address(),
        topic,
        PARTITIONS,
        persisted,
        Duration::from_secs(120),
    );
    let v = verify(&log, &run.told, kind.exact_offsets());
    eprintln!("{topic}: seed {seed}: verified {v:?}");
    if kind.accepts_epoch_bump() {
        // Kafka accepts the local bump: a fence never needs a new producer id.
        assert_eq!(
            run.producer_ids, 1,
            "seed {seed}: {} producer ids for {} epoch bumps; Kafka accepts a local bump",
            run.producer_ids, run.epoch_bumps
        );
    }
    for (name, n) in [
        ("before request", stats.cut_before_request),
        ("mid request", stats.cut_mid_request),
        ("after request", stats.cut_after_request),
        ("mid response", stats.cut_mid_response),
    ] {
        assert!(n > 0, "seed {seed}: no cut {name}");
    }
    (seed, v, stats)
}

#[test]
fn chaos_proxy_cuts_connections_kafka() {
    chaos_proxy_cuts_connections(BrokerKind::Kafka);
}

#[test]
fn chaos_proxy_cuts_connections_tansu() {
    chaos_proxy_cuts_connections(BrokerKind::Tansu);
}

fn chaos_proxy_cuts_connections(kind: BrokerKind) {
    const N: usize = 100_000;
    let (seed, v, stats) = chaos_run(
        kind,
        "chaos",
        N,
        Duration::from_secs(60),
        None,
        0.1,
        UnknownOutcome::FailAndFence,
    );
    assert!(
        stats.cuts() >= 50,
        "seed {seed}: the proxy cut only {} times",
        stats.cuts()
    );
    assert!(
        v.persisted >= N * 9 / 10,
        "seed {seed}: only {} of {N} persisted",
        v.persisted
    );
}

/// Short deadlines under chaos: batches in flight when a connection is cut often miss their
/// deadline, so the producer reports PossiblyPersisted and fences (a local epoch bump, which
/// Kafka accepts and tansu refuses, then a new producer id). Every outcome must still be true.
#[test]
fn chaos_short_deadlines_fail_and_fence_kafka() {
    chaos_short_deadlines_fail_and_fence(BrokerKind::Kafka);
}

#[test]
fn chaos_short_deadlines_fail_and_fence_tansu() {
    chaos_short_deadlines_fail_and_fence(BrokerKind::Tansu);
}

fn chaos_short_deadlines_fail_and_fence(kind: BrokerKind) {
    const N: usize = 20_000;
    let (seed, v, stats) = chaos_run(
        kind,
        "chaos-short",
        N,
        Duration::from_millis(300),
        Some(Duration::from_micros(500)),
        0.02,
        UnknownOutcome::FailAndFence,
    );
    assert!(
        stats.cuts() >= 15,
        "seed {seed}: the proxy cut only {} times",
        stats.cuts()
    );
    // Each fence costs tansu a refused epoch bump, then a new producer id after a grace
    // period for abandoned requests (1 s): records meanwhile miss their 300 ms deadline.
    // Seen: 50-80 % persisted.
    assert!(
        v.persisted >= N / 4,
        "seed {seed}: only {} of {N} persisted",
        v.persisted
    );
}

/// The same under `Wait`: a batch in flight at its deadline waits for its answer (a retry on a
/// new connection brings it), so fewer fences and more records persist; every outcome must
/// still be true.
#[test]
fn chaos_short_deadlines_wait_kafka() {
    chaos_short_deadlines_wait(BrokerKind::Kafka);
}

#[test]
fn chaos_short_deadlines_wait_tansu() {
    chaos_short_deadlines_wait(BrokerKind::Tansu);
}

fn chaos_short_deadlines_wait(kind: BrokerKind) {
    const N: usize = 20_000;
    let (seed, v, stats) = chaos_run(
        kind,
        "chaos-wait",
        N,
        Duration::from_millis(300),
        Some(Duration::from_micros(500)),
        0.02,
        UnknownOutcome::Wait,
    );
    assert!(
        stats.cuts() >= 20,
        "seed {seed}: the proxy cut only {} times",
        stats.cuts()
    );
    assert!(
        v.persisted >= N / 2,
        "seed {seed}: only {} of {N} persisted",
        v.persisted
    );
}
