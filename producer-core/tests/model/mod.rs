//! The model broker's idempotence rules, shared by the simulations: per producer id and
//! partition, the epoch, the last sequence and the last five batches.
//!
//! `Kafka`: an exact retry of one of the last five batches answers success with the original
//! offset, a gap 45, a stale epoch 47, an unknown producer with a non-zero sequence 59, and a
//! new epoch must start at sequence 0. `Tansu`: the same, except that a retry answers 46 with
//! offset -1, a producer id it never issued answers 59, and an epoch other than the one it
//! issued answers 90 (higher, a local bump) or 47 (lower).
//!
//! For the simulations of the whole client, the cluster behind the wire (`broker`), the
//! network to it (`net`), the application's records as the broker reads them back
//! (`records`), and what each record's outcome must satisfy (`outcomes`).

#![allow(dead_code)]

pub mod broker;
pub mod net;
pub mod outcomes;
pub mod records;

use std::collections::{BTreeMap, VecDeque};

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
}

/// A batch's identity as the broker sees it.
#[derive(Clone, Copy, Debug)]
pub struct BatchId {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
    pub records: u32,
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
}

impl Idempotence {
    pub fn new(flavour: Flavour) -> Self {
        Idempotence {
            flavour,
            producers: BTreeMap::new(),
            issued: BTreeMap::new(),
            next_pid: 1000,
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
        match self.producers.get(&(pid, partition)) {
            None if first == 0 => Check::Append,
            None => Check::Refuse(ErrorCode::UNKNOWN_PRODUCER_ID),
            Some(st) if epoch < st.epoch => Check::Refuse(ErrorCode::INVALID_PRODUCER_EPOCH),
            Some(st) if epoch > st.epoch && first == 0 => Check::Append,
            Some(st) if epoch > st.epoch => Check::Refuse(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER),
            Some(st) => {
                if let Some(&(_, _, offset)) =
                    st.cache.iter().find(|&&(f, l, _)| f == first && l == last)
                {
                    return Check::Duplicate(offset);
                }
                let expected = Sequence::new(st.last_seq).map_or(0, |s| s.add(1).get());
                if first == expected {
                    Check::Append
                } else {
                    Check::Refuse(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
                }
            }
        }
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
            });
        if b.epoch != st.epoch {
            st.epoch = b.epoch;
            st.cache.clear();
        }
        st.last_seq = last;
        st.cache.push_back((first, last, base_offset));
        if st.cache.len() > 5 {
            st.cache.pop_front();
        }
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
