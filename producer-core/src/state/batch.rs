//! One batch's place in the ledger: what it is, and how far it got.

use super::identity::{ProducerEpoch, ProducerId};
use super::outcome::Outcome;
use super::sequence::Sequence;
use crate::time::Instant;

/// Names a batch handed to the [`Sequencer`](super::Sequencer). Tokens are never reused while
/// the batch holds its slot, and a stale token is detected (its generation no longer matches).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BatchToken {
    pub(crate) slot: u16,
    pub(crate) generation: u16,
}

impl BatchToken {
    /// Fills the unused places of a table of tokens; never handed out.
    pub(crate) const FILL: BatchToken = BatchToken {
        slot: u16::MAX,
        generation: u16::MAX,
    };

    /// The slot the batch occupies, below the batch capacity: lets a client keep the batch's bytes in a
    /// parallel array of its own, with no map.
    pub fn slot(self) -> usize {
        usize::from(self.slot)
    }
}

/// A partition, as an index below the partition capacity into the ledger. The client maps topic-partitions
/// to indexes; the ledger needs no strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PartitionIndex(pub u16);

/// What a batch carries to the broker so that retries deduplicate: written into the record
/// batch header at send time, and kept identical on every resend under one epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stamp {
    /// Producer id.
    pub producer_id: ProducerId,
    /// Producer epoch.
    pub epoch: ProducerEpoch,
    /// Sequence of the batch's first record.
    pub base_sequence: Sequence,
}

/// A batch's lifecycle. `Stamped { maybe_written: true }` is what the design calls "unknown":
/// once an attempt may have been appended, the mark never clears, so such a batch can never be
/// reported `NotPersisted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BatchState {
    /// Accepted, with no sequence under the current identity: nothing of it can be in the log.
    Buffered,
    /// Holds a sequence range; the last attempt was answered or lost, and it waits to be resent
    /// with the same stamp (not before `retry_at`).
    Stamped {
        /// Its stamp.
        stamp: Stamp,
        /// Some earlier attempt may have been appended.
        maybe_written: bool,
        /// Earliest resend.
        retry_at: Instant,
    },
    /// A request carrying it is out and unanswered.
    InFlight {
        /// Its stamp.
        stamp: Stamp,
        /// Some earlier attempt may have been appended.
        maybe_written: bool,
    },
    /// Its outcome is final. `outstanding` is set while a request carrying it is still out
    /// (it was decided at a deadline or by a fatal error): the slot stays taken so that a fence
    /// can tell when its epoch is drained, and the late answer is only recorded.
    Decided {
        /// The outcome reported.
        outcome: Outcome,
        /// A request carrying it is still out.
        outstanding: bool,
    },
}

impl BatchState {
    /// A request carrying the batch is out.
    pub fn is_outstanding(&self) -> bool {
        matches!(
            self,
            BatchState::InFlight { .. }
                | BatchState::Decided {
                    outstanding: true,
                    ..
                }
        )
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Batch {
    pub partition: PartitionIndex,
    pub records: u32,
    pub deadline: Instant,
    /// Acceptance order across the producer: within a partition it is the send order.
    pub order: u64,
    pub attempts: u16,
    /// No more records will join it: it may be sent. An open batch is still filling in the
    /// client's accumulator.
    pub sealed: bool,
    pub state: BatchState,
    /// The outcome was handed to the caller.
    pub delivered: bool,
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Slot {
    pub generation: u16,
    pub batch: Option<Batch>,
}
