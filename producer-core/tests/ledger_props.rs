//! Property tests of the sequencer's ledger alone: arbitrary sequences of accepts, sends,
//! answers, connection losses, cancels and clock ticks, with no broker behind them, checked
//! against the invariants every broker relies on.

use producer_core::capacity::Fixed;
use std::collections::{BTreeMap, HashMap};

use producer_core::ErrorCode;
use producer_core::state::{
    BatchToken, Config, Identity, NotPersistedReason, Outcome, PartitionIndex, ProduceResult,
    ProducerEpoch, ProducerId, Sequencer, Stamp, UnknownOutcome,
};
use producer_core::time::Instant;
use proptest::prelude::*;

const PARTITIONS: usize = 3;
type Seq = Sequencer<Fixed<1, PARTITIONS, 8, 1>>;

#[derive(Clone, Debug)]
enum Op {
    Enqueue {
        partition: u16,
        records: u32,
        deadline_ms: u64,
    },
    Send {
        partition: u16,
    },
    Answer {
        pick: usize,
        result: ProduceResult,
    },
    Cancel {
        pick: usize,
    },
    Tick {
        ms: u64,
    },
    Grant {
        epoch: i16,
    },
}

fn result() -> impl Strategy<Value = ProduceResult> {
    prop_oneof![
        4 => Just(0i16),
        1 => prop::sample::select(vec![2i16, 3, 6, 7, 10, 13, 19, 20, 31, 45, 46, 47, 53, 59, 87, 90, 999]),
    ]
    .prop_flat_map(|code| {
        prop_oneof![
            6 => (0i64..1000).prop_map(move |o| ProduceResult::Answered { error: ErrorCode(code), base_offset: o }),
            1 => Just(ProduceResult::NotWritten),
            1 => Just(ProduceResult::LostAfterWrite),
        ]
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..PARTITIONS as u16, 1u32..5, 0u64..3000)
            .prop_map(|(partition, records, deadline_ms)| Op::Enqueue { partition, records, deadline_ms }),
        4 => (0..PARTITIONS as u16).prop_map(|partition| Op::Send { partition }),
        4 => (any::<usize>(), result()).prop_map(|(pick, result)| Op::Answer { pick, result }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        2 => (0u64..400).prop_map(|ms| Op::Tick { ms }),
        1 => prop_oneof![Just(0i16), Just(i16::MAX - 1), Just(i16::MAX)].prop_map(|epoch| Op::Grant { epoch }),
    ]
}

#[derive(Default)]
struct Model {
    in_flight: Vec<BatchToken>,
    held: Vec<BatchToken>,
    outcomes: HashMap<BatchToken, Outcome>,
    /// Batches one of whose attempts may have been appended.
    maybe_written: Vec<BatchToken>,
    /// The stamp each batch carries under its current identity.
    stamps: HashMap<BatchToken, Stamp>,
    /// Next fresh sequence expected per (producer id, epoch, partition).
    next_seq: BTreeMap<(i64, i16, u16), i32>,
    /// Partitions that have had a success per (producer id, epoch).
    acked: BTreeMap<(i64, i16, u16), bool>,
    partition_of: HashMap<BatchToken, u16>,
}

fn run(policy: UnknownOutcome, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut s = Seq::new(Config {
        unknown_outcome: policy,
        ..Config::default()
    })
    .unwrap();
    let mut m = Model::default();
    let mut now = Instant::ZERO;
    let mut next_pid = 1;
    for op in ops {
        match op {
            Op::Enqueue {
                partition,
                records,
                deadline_ms,
            } => {
                let deadline = now + core::time::Duration::from_millis(deadline_ms);
                if let Ok(t) = s.enqueue(PartitionIndex(partition), records, deadline) {
                    m.held.push(t);
                    m.partition_of.insert(t, partition);
                }
            }
            Op::Send { partition } => {
                let identity = s.identity();
                if let Some(p) = s.next_send(PartitionIndex(partition), now) {
                    let (id, epoch) = identity.ready().expect("sent only when ready");
                    prop_assert_eq!((p.stamp.producer_id, p.stamp.epoch), (id, epoch));
                    prop_assert!(
                        !m.outcomes.contains_key(&p.token),
                        "a decided batch was sent"
                    );
                    let key = (id.0, epoch.0, partition);
                    match m.stamps.get(&p.token) {
                        // A resend under the same identity carries the same stamp.
                        Some(old) if old.producer_id == id && old.epoch == epoch => {
                            prop_assert_eq!(*old, p.stamp);
                            prop_assert!(p.attempt > 1);
                        }
                        _ => {
                            // Fresh stamps are contiguous per partition under one identity.
                            let expected = *m.next_seq.get(&key).unwrap_or(&0);
                            prop_assert_eq!(p.stamp.base_sequence.get(), expected);
                            m.next_seq
                                .insert(key, p.stamp.base_sequence.add(p.records).get());
                            m.stamps.insert(p.token, p.stamp);
                        }
                    }
                    m.in_flight.push(p.token);
                    // The window: one in flight before the identity's first success, five after.
                    let out = m
                        .in_flight
                        .iter()
                        .filter(|t| m.partition_of[t] == partition)
                        .count();
                    let limit = if *m.acked.get(&key).unwrap_or(&false) {
                        5
                    } else {
                        1
                    };
                    prop_assert!(
                        out <= limit,
                        "{} in flight on partition {} (limit {})",
                        out,
                        partition,
                        limit
                    );
                }
            }
            Op::Answer { pick, result } => {
                if m.in_flight.is_empty() {
                    continue;
                }
                let t = m.in_flight.remove(pick % m.in_flight.len());
                let stamp = m.stamps[&t];
                if matches!(result, ProduceResult::LostAfterWrite)
                    || matches!(result, ProduceResult::Answered { error, .. } if [3, 6, 7, 13, 20, 999].contains(&error.0))
                {
                    m.maybe_written.push(t);
                }
                s.on_produce_result(t, now, result).expect("in flight");
                // PRODUCER_FENCED: the broker never accepted this identity, so no batch
                // waiting for a resend under it is in the log (those still out are decided
                // by their own answers).
                if matches!(result, ProduceResult::Answered { error, .. } if error.0 == 90) {
                    let refused = (stamp.producer_id, stamp.epoch);
                    let (stamps, in_flight) = (&m.stamps, &m.in_flight);
                    m.maybe_written.retain(|u| {
                        in_flight.contains(u)
                            || stamps
                                .get(u)
                                .is_none_or(|s| (s.producer_id, s.epoch) != refused)
                    });
                }
                if matches!(result, ProduceResult::Answered { error, .. } if error.0 == 0 || error.0 == 46)
                {
                    m.acked.insert(
                        (stamp.producer_id.0, stamp.epoch.0, m.partition_of[&t]),
                        true,
                    );
                }
            }
            Op::Cancel { pick } => {
                if !m.held.is_empty() {
                    let t = m.held[pick % m.held.len()];
                    let _ = s.cancel(t, now);
                }
            }
            Op::Tick { ms } => {
                now = now + core::time::Duration::from_millis(ms);
                if let Some(next) = s.poll(now) {
                    prop_assert!(next > now);
                }
            }
            Op::Grant { epoch } => {
                if s.poll_init_producer_id(now) {
                    s.on_init_producer_id(now, Ok((ProducerId(next_pid), ProducerEpoch(epoch))));
                    next_pid += 1;
                }
            }
        }
        while let Some(d) = s.poll_event() {
            prop_assert!(
                m.outcomes.insert(d.token, d.outcome).is_none(),
                "second outcome"
            );
            // Unknown is sticky: a batch that may have been appended is never NotPersisted.
            if m.maybe_written.contains(&d.token) {
                prop_assert!(
                    !matches!(d.outcome, Outcome::NotPersisted(_)),
                    "{:?}",
                    d.outcome
                );
            }
            if let Outcome::NotPersisted(NotPersistedReason::Deadline) = d.outcome {
                prop_assert!(!m.maybe_written.contains(&d.token));
            }
        }
        // A fatal producer holds nothing it could still send: everything not out is decided.
        if let Identity::Fatal(_) = s.identity() {
            prop_assert!(
                m.held
                    .iter()
                    .all(|t| m.outcomes.contains_key(t) || m.in_flight.contains(t))
            );
        }
    }
    // Settle: answer everything still out, then pass every deadline. Under FailAndFence
    // every batch now has its outcome; under Wait, every one that was never sent.
    for t in std::mem::take(&mut m.in_flight) {
        s.on_produce_result(t, now, ProduceResult::LostAfterWrite)
            .unwrap();
    }
    now = now + core::time::Duration::from_secs(3600);
    s.poll(now);
    while let Some(d) = s.poll_event() {
        prop_assert!(
            m.outcomes.insert(d.token, d.outcome).is_none(),
            "second outcome"
        );
    }
    if policy == UnknownOutcome::FailAndFence {
        for t in &m.held {
            prop_assert!(m.outcomes.contains_key(t), "batch {:?} has no outcome", t);
        }
        prop_assert!(s.is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ledger_invariants_fail_and_fence(ops in prop::collection::vec(op(), 1..200)) {
        run(UnknownOutcome::FailAndFence, ops)?;
    }

    #[test]
    fn ledger_invariants_wait(ops in prop::collection::vec(op(), 1..200)) {
        run(UnknownOutcome::Wait, ops)?;
    }
}
