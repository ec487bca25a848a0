//! The model broker's idempotence rules, shared by the simulations: per producer id and
//! partition, the epoch, the last sequence, the last five batches and the newest record
//! timestamp appended (Kafka's `lastTimestamp`, which its producer expiry counts from).
//!
//! `Kafka` (4.x, `docs/kafka-broker-notes.md`): checked in Kafka's order, an exact retry of one
//! of the cached batches (same epoch) answers success with the original offset, a stale epoch
//! 47, a new epoch must start at sequence 0 (else 45), a gap 45; a producer the partition
//! holds no state for is appended whatever its sequence (since 2.5 Kafka never answers 59 on
//! Produce). Its state expires (`expire`) once the broker's wall clock is
//! `producer.id.expiration.ms` past the max timestamp of the last batch appended for it, and
//! a clean restart reloads it from a snapshot that keeps only each producer's last batch
//! (`snapshot`, `load_snapshot`). `Tansu`: the same checks, except that a retry answers 46
//! with offset -1, an unknown producer with a non-zero sequence 59, a producer id it never
//! issued 59, and an epoch other than the one it issued 90 (higher, a local bump) or 47
//! (lower); it neither expires nor snapshots.
//!
//! For the simulations of the whole client, the cluster behind the wire (`broker`), the
//! network to it (`net`), the wall clocks and the application's timestamps (`clock`), the
//! application's records as the broker reads them back (`records`), what each record's
//! outcome must satisfy (`outcomes`), and the counts of the Kafka-only faults (`faults`).

#![allow(dead_code)]

pub mod broker;
pub mod clock;
pub mod faults;
pub mod net;
pub mod outcomes;
pub mod pace;
pub mod records;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use producer_core::ErrorCode;
use producer_core::state::{BatchState, Sequence};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    Kafka,
    Tansu,
}

impl Flavour {
    /// Even seeds meet Kafka, odd ones tansu: a sweep covers both alike.
    pub fn of_seed(seed: u64) -> Self {
        if seed.is_multiple_of(2) {
            Flavour::Kafka
        } else {
            Flavour::Tansu
        }
    }
}

/// What the broker does with a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    Append,
    /// Already appended at this base offset.
    Duplicate(i64),
    Refuse(ErrorCode),
}

#[derive(Clone, Debug)]
struct ProducerState {
    epoch: i16,
    last_seq: i32,
    /// Last five batches: (first seq, last seq, base offset).
    cache: VecDeque<(i32, i32, i64)>,
    /// The max timestamp of the last batch appended (not the largest ever: Kafka's
    /// `ProducerStateEntry.lastTimestamp`).
    last_timestamp: i64,
}

/// What a Kafka broker's producer-state snapshot holds for one partition: per producer id,
/// its epoch and its last batch only (`ProducerSnapshot` v1 has one entry per producer).
#[derive(Clone, Debug, Default)]
pub struct Snapshot(BTreeMap<i64, (i16, (i32, i32, i64))>);

/// A batch's identity as the broker sees it.
#[derive(Clone, Copy, Debug)]
pub struct BatchId {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
    pub records: u32,
    /// The batch header's max timestamp (ms since the Unix epoch).
    pub max_timestamp: i64,
}

impl BatchId {
    fn last(&self) -> i32 {
        Sequence::new(self.base_sequence).map_or(-1, |s| s.last_of(self.records).get())
    }
}

pub struct Idempotence {
    pub flavour: Flavour,
    producers: BTreeMap<(i64, usize), ProducerState>,
    /// Producer ids issued and their epoch (tansu checks these; Kafka does not).
    issued: BTreeMap<i64, i16>,
    next_pid: i64,
    /// Batches a snapshot load dropped from their cache: (producer id, partition, epoch,
    /// first seq, last seq), to tell a retry refused because of it.
    forgotten: BTreeSet<(i64, usize, i16, i32, i32)>,
}

impl Idempotence {
    pub fn new(flavour: Flavour) -> Self {
        Idempotence {
            flavour,
            producers: BTreeMap::new(),
            issued: BTreeMap::new(),
            next_pid: 1000,
            forgotten: BTreeSet::new(),
        }
    }

    /// Issues a fresh producer id with `epoch`.
    pub fn issue(&mut self, epoch: i16) -> i64 {
        let pid = self.next_pid;
        self.next_pid += 1;
        self.issued.insert(pid, epoch);
        pid
    }

    /// The broker forgets producer state (and, for tansu, the ids it issued). Only safe while
    /// no batch is in a state [`pins_producer_state`] names.
    pub fn forget(&mut self) {
        self.producers.clear();
        if self.flavour == Flavour::Tansu {
            self.issued.clear();
        }
    }

    pub fn check(&self, partition: usize, b: BatchId) -> Check {
        let (pid, epoch, first, last) = (b.producer_id, b.epoch, b.base_sequence, b.last());
        if self.flavour == Flavour::Tansu {
            match self.issued.get(&pid) {
                None => return Check::Refuse(ErrorCode::UNKNOWN_PRODUCER_ID),
                Some(&issued) if epoch > issued => {
                    return Check::Refuse(ErrorCode::PRODUCER_FENCED);
                }
                Some(&issued) if epoch < issued => {
                    return Check::Refuse(ErrorCode::INVALID_PRODUCER_EPOCH);
                }
                Some(_) => {}
            }
        }
        let Some(st) = self.producers.get(&(pid, partition)) else {
            // Kafka 2.5+ (KIP-360): no state for the producer here (new, expired, or lost),
            // so any sequence is accepted (`NO_PRODUCER_EPOCH` skips the check).
            return if first == 0 || self.flavour == Flavour::Kafka {
                Check::Append
            } else {
                Check::Refuse(ErrorCode::UNKNOWN_PRODUCER_ID)
            };
        };
        // Kafka's order: the duplicate check first (same epoch, exact range among the
        // cached batches), then the epoch, then the sequence.
        if epoch == st.epoch
            && let Some(&(_, _, offset)) =
                st.cache.iter().find(|&&(f, l, _)| f == first && l == last)
        {
            return Check::Duplicate(offset);
        }
        if epoch < st.epoch {
            return Check::Refuse(ErrorCode::INVALID_PRODUCER_EPOCH);
        }
        if epoch > st.epoch {
            return if first == 0 {
                Check::Append
            } else {
                Check::Refuse(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
            };
        }
        let expected = Sequence::new(st.last_seq).map_or(0, |s| s.add(1).get());
        if first == expected {
            Check::Append
        } else {
            Check::Refuse(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        }
    }

    /// The partition holds no state for the batch's producer: an append of it is one from
    /// an unknown producer.
    pub fn knows(&self, partition: usize, producer_id: i64) -> bool {
        self.producers.contains_key(&(producer_id, partition))
    }

    /// A snapshot load dropped this batch from its producer's cache.
    pub fn was_forgotten(&self, partition: usize, b: BatchId) -> bool {
        self.forgotten
            .contains(&(b.producer_id, partition, b.epoch, b.base_sequence, b.last()))
    }

    /// Records that the batch was appended at `base_offset`.
    pub fn appended(&mut self, partition: usize, b: BatchId, base_offset: i64) {
        let (first, last) = (b.base_sequence, b.last());
        let st = self
            .producers
            .entry((b.producer_id, partition))
            .or_insert(ProducerState {
                epoch: b.epoch,
                last_seq: -1,
                cache: VecDeque::new(),
                last_timestamp: b.max_timestamp,
            });
        if b.epoch != st.epoch {
            st.epoch = b.epoch;
            st.cache.clear();
        }
        st.last_seq = last;
        st.last_timestamp = b.max_timestamp;
        st.cache.push_back((first, last, base_offset));
        if st.cache.len() > 5 {
            st.cache.pop_front();
        }
    }

    /// Kafka's `removeExpiredProducers(now)`: drops every producer state whose last batch's
    /// max timestamp is `expiration_ms` or more behind `broker_ms` (the broker's wall
    /// clock), whatever the client still has pending. Returns how many it dropped.
    pub fn expire(&mut self, broker_ms: i64, expiration_ms: i64) -> Vec<(i64, usize)> {
        let expired: Vec<(i64, usize)> = self
            .producers
            .iter()
            .filter(|(_, st)| broker_ms.saturating_sub(st.last_timestamp) >= expiration_ms)
            .map(|(k, _)| *k)
            .collect();
        for k in &expired {
            self.producers.remove(k);
        }
        expired
    }

    /// What a snapshot of `partition` taken now holds (Kafka writes one at a clean
    /// shutdown): each producer's epoch and last batch.
    pub fn snapshot(&self, partition: usize) -> Snapshot {
        Snapshot(
            self.producers
                .iter()
                .filter(|((_, p), _)| *p == partition)
                .filter_map(|((pid, _), st)| st.cache.back().map(|&b| (*pid, (st.epoch, b))))
                .collect(),
        )
    }

    /// The broker that took `snapshot` of `partition` at its shutdown leads it again: it
    /// loaded the snapshot (one batch per producer) and replicated what was appended since,
    /// so each producer's cache keeps its snapshot batch and the later ones, and forgets
    /// those before. Returns how many batches were forgotten.
    pub fn load_snapshot(&mut self, partition: usize, snapshot: &Snapshot) -> u64 {
        let mut forgotten = 0;
        for ((pid, p), st) in self.producers.iter_mut() {
            if *p != partition {
                continue;
            }
            let Some(&(epoch, kept)) = snapshot.0.get(pid) else {
                continue;
            };
            // A new epoch cleared the cache since: what the broker replicated rebuilds it.
            if epoch != st.epoch {
                continue;
            }
            let Some(at) = st.cache.iter().position(|&b| b == kept) else {
                continue;
            };
            for (first, last, _) in st.cache.drain(..at) {
                self.forgotten.insert((*pid, *p, st.epoch, first, last));
                forgotten += 1;
            }
        }
        forgotten
    }

    /// The answer to a duplicate, per flavour: (error code, base offset).
    pub fn duplicate_answer(&self, offset: i64) -> (ErrorCode, i64) {
        match self.flavour {
            Flavour::Kafka => (ErrorCode::NONE, offset),
            Flavour::Tansu => (ErrorCode::DUPLICATE_SEQUENCE_NUMBER, -1),
        }
    }
}

/// A batch in this state may still be appended, or resent after it was: the broker must keep
/// its producer state, or it appends the batch twice. No client can do without that, so the
/// simulations only make the broker forget while no batch is in such a state.
pub fn pins_producer_state(state: BatchState) -> bool {
    matches!(
        state,
        BatchState::InFlight { .. }
            | BatchState::Stamped {
                maybe_written: true,
                ..
            }
            | BatchState::Decided {
                outstanding: true,
                ..
            }
    )
}
