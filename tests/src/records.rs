//! Records the integration tests send and the checks they make on what the log holds.
//!
//! - [`content`]: record `i`'s key, value and headers (tombstones and null header values
//!   included); [`index_of`] recovers `i` from a record read back.
//! - [`produce_all`]: sends records `0..n` through a `transport-std` producer (optionally
//!   paced), drives it until each has its one outcome, and returns what it was told.
//! - [`verify`]: checks the log against those claims: every record at most once, in the
//!   partition its receipt named, in send order per partition, content intact, `Persisted`
//!   present, `NotPersisted` absent, offsets exact when asked; [`assert_log_is_what_was_sent`]:
//!   the log is exactly the records sent, in send order per partition.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use producer_core::client::Receipt;
use producer_core::state::OutcomeKind;
use producer_core::wire::RecordHeader;
use transport_std::{Error, Producer, ProducerRecord};

use crate::ReadRecord;

/// `headers` as the producer takes them: borrowed names and values.
pub fn header_refs(headers: &[(String, Option<Vec<u8>>)]) -> Vec<RecordHeader<'_>> {
    headers
        .iter()
        .map(|(k, v)| RecordHeader {
            key: k,
            value: v.as_deref(),
        })
        .collect()
}

/// The content of record `i`: a unique value (it names the record), a key for most records,
/// and 0 to 3 headers (some with null values). Every 101st record is a tombstone (no value)
/// named by its unique key.
pub struct Content {
    /// Key (most records have one).
    pub key: Option<Vec<u8>>,
    /// Value (`None`: a tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers, some with null values.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

pub fn content(i: usize) -> Content {
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
pub fn index_of(r: &ReadRecord) -> Option<usize> {
    let digits = match (&r.value, &r.key) {
        (Some(value), _) => value.get(6..13)?,
        (None, Some(key)) => key.get(10..17)?,
        (None, None) => return None,
    };
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// What the producer said about one record.
#[derive(Clone, Copy, Debug, Default)]
pub struct Told {
    /// Partition from its receipt (`None`: never accepted).
    pub partition: Option<i32>,
    /// Its outcome.
    pub outcome: Option<OutcomeKind>,
    /// Offset the producer reported with a `Persisted` outcome.
    pub offset: Option<i64>,
    /// When `send` was called for it.
    pub sent_at: Option<Instant>,
    /// The deadline it was given.
    pub deadline: Option<Instant>,
    /// When its outcome was taken (outcomes are taken after every send and while waiting,
    /// so within about a millisecond of being ready).
    pub decided_at: Option<Instant>,
}

/// Records awaiting their outcome, by (batch, offset delta).
pub type Pending = HashMap<(producer_core::state::BatchToken, u32), usize>;

/// Takes every outcome the producer has ready.
pub fn drain(producer: &mut Producer, pending: &mut Pending, told: &mut [Told]) {
    while let Some(d) = producer.poll_delivery() {
        let i = pending
            .remove(&(d.receipt.batch, d.receipt.offset_delta))
            .unwrap_or_else(|| panic!("a delivery for no pending record: {d:?}"));
        assert!(told[i].outcome.is_none(), "record {i} got a second outcome");
        assert_eq!(told[i].partition, Some(d.receipt.partition));
        told[i].outcome = Some(d.outcome.kind());
        told[i].offset = d.offset;
        told[i].decided_at = Some(Instant::now());
    }
}

/// What a [`produce_all`] run was told, and the producer's counters at its end.
pub struct Run {
    /// Per record, in send order.
    pub told: Vec<Told>,
    /// From the first send to the last outcome.
    pub elapsed: Duration,
    /// Resends under the same stamp.
    pub retries: u64,
    /// Local epoch bumps.
    pub epoch_bumps: u64,
    /// Producer ids granted (the first one included).
    pub producer_ids: u64,
}

impl Run {
    /// Records that got outcome `kind`.
    pub fn count(&self, kind: OutcomeKind) -> usize {
        self.told.iter().filter(|t| t.outcome == Some(kind)).count()
    }
}

/// Sends records `0..n` with `deadline_after` each, then drives the producer until every
/// record has its outcome (at most 5 s after the last deadline). With `interval`, record `i`
/// is not sent before `i * interval` from the start (the producer is driven meanwhile).
pub fn produce_all(
    producer: &mut Producer,
    topic: &str,
    n: usize,
    deadline_after: Duration,
    interval: Option<Duration>,
) -> Run {
    produce_until(producer, topic, n, deadline_after, interval, None)
}

/// [`produce_all`], but it stops sending early once `stop` is set (records flowing while
/// another thread breaks brokers, until it is done): `Run::told` then holds the records
/// sent.
pub fn produce_until(
    producer: &mut Producer,
    topic: &str,
    n: usize,
    deadline_after: Duration,
    interval: Option<Duration>,
    stop: Option<&AtomicBool>,
) -> Run {
    produce_paced(producer, topic, n, deadline_after, interval, stop, None)
}

/// [`produce_until`], and while `pause` is set no record is sent (the producer is driven
/// meanwhile, and the pacing resumes where it stopped): bursts with silences between them.
pub fn produce_paced(
    producer: &mut Producer,
    topic: &str,
    n: usize,
    deadline_after: Duration,
    interval: Option<Duration>,
    stop: Option<&AtomicBool>,
    pause: Option<&AtomicBool>,
) -> Run {
    let mut started = Instant::now();
    let mut told = vec![Told::default(); n];
    let mut pending = Pending::new();
    let mut last_deadline = Instant::now();
    let mut sent = n;
    for i in 0..n {
        if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            sent = i;
            break;
        }
        if pause.is_some_and(|p| p.load(Ordering::Relaxed)) {
            let paused = Instant::now();
            while pause.is_some_and(|p| p.load(Ordering::Relaxed))
                && !stop.is_some_and(|s| s.load(Ordering::Relaxed))
            {
                producer.poll(Duration::from_millis(5));
                drain(producer, &mut pending, &mut told);
            }
            started += paused.elapsed();
            if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                sent = i;
                break;
            }
        }
        if let Some(interval) = interval {
            let due = started + interval * i as u32;
            while Instant::now() < due {
                producer.poll(due.saturating_duration_since(Instant::now()));
                drain(producer, &mut pending, &mut told);
            }
        }
        let c = content(i);
        let headers = header_refs(&c.headers);
        let record = ProducerRecord {
            topic,
            partition: None,
            key: c.key.as_deref(),
            value: c.value.as_deref(),
            headers: &headers,
            timestamp: None,
        };
        let now = Instant::now();
        let deadline = now + deadline_after;
        last_deadline = deadline;
        told[i].sent_at = Some(now);
        told[i].deadline = Some(deadline);
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
                told[i].decided_at = Some(Instant::now());
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
    told.truncate(sent);
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
/// What [`verify`] found.
pub struct Verified {
    /// Records reported `Persisted` (all in the log).
    pub persisted: usize,
    /// Records reported `NotPersisted` (none in the log).
    pub not_persisted: usize,
    /// Records reported `PossiblyPersisted`.
    pub possibly: usize,
    /// … of which the log holds.
    pub possibly_present: usize,
    /// `Persisted` records whose reported offset differs from the log's (0 when checked).
    pub offset_mismatches: usize,
}

/// Checks the log against the producer's claims: every record read is one we sent, with its
/// content intact, in the partition its receipt named, at most once, in send order per
/// partition; `Persisted` records are all present, `NotPersisted` ones absent. With
/// `exact_offsets`, offsets the producer reported must match the log.
pub fn verify(log: &[Vec<ReadRecord>], told: &[Told], exact_offsets: bool) -> Verified {
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

/// Exact: per partition, the log is exactly the records routed there, in send order.
pub fn assert_log_is_what_was_sent(log: &[Vec<ReadRecord>], told: &[Told]) {
    for (p, records) in log.iter().enumerate() {
        let sent: Vec<usize> = (0..told.len())
            .filter(|&i| told[i].partition == Some(p as i32))
            .collect();
        let read: Vec<usize> = records.iter().map(|r| index_of(r).unwrap()).collect();
        assert_eq!(read.len(), sent.len(), "partition {p}: record count");
        assert!(
            read == sent,
            "partition {p}: log order differs from send order"
        );
    }
}
