//! The sequencer: the producer's idempotence state, which outlives every connection.
//!
//! It owns the identity (producer id, epoch, lifecycle), the per-partition sequence ledger and
//! every batch's state, and it is the only thing that decides outcomes, by the rules of
//! [`decide`](super::decide) and the tables they serve. It moves no bytes and reads no clock:
//! a client feeds it `now`, answers and connection losses, and asks it what to send. Its
//! life, in calls:
//!
//! 1. [`Sequencer::poll_init_producer_id`] says when to ask for a producer id;
//!    [`Sequencer::on_init_producer_id`] takes the answer.
//! 2. [`Sequencer::enqueue`] accepts a batch (a token, a partition, a record count and a
//!    deadline); the bytes stay with the client.
//! 3. [`Sequencer::next_send`] hands out the next batch of a partition with its [`Stamp`],
//!    when the in-flight window and the identity allow.
//! 4. [`Sequencer::on_produce_result`] takes what became of the attempt (answer, or connection
//!    lost before or after writing) and applies the [classification](mod@super::classify).
//! 5. [`Sequencer::poll`] applies deadlines through [`cancel_decision`], completes fences and
//!    says when it next needs `now`; [`Sequencer::poll_event`] yields each batch's one outcome.
//!
//! [`Stamp`]: crate::state::Stamp
//! [`cancel_decision`]: crate::state::cancel_decision

mod answer;
mod deadline;
mod delivery;
mod fence;
mod restore;
mod send;

pub use delivery::{Delivery, HeldBatch};
pub use restore::{RestoreError, Restored};
pub use send::{EnqueueError, SendPermit};

use core::cell::Cell;

use crate::capacity::{Array, Capacities, PerBatch, PerPartition};
use crate::state::batch::{Batch, BatchState, BatchToken, PartitionIndex, Slot};
use crate::state::config::{Config, ConfigError};
use crate::state::identity::Identity;
use crate::state::pacing::Pacing;
use crate::state::partition::PartitionLedger;
use crate::state::stats::{Counters, PartitionCounters};
use crate::time::Instant;

/// A call that does not fit the batch's state: a client bug, never caused by network input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TokenError {
    /// No batch holds this token (any more).
    Unknown,
    /// The batch has no request out.
    NotInFlight,
    /// The batch is sealed (or already decided): no record may join it.
    NotOpen,
}

/// The idempotence state of one producer, for the partitions and batches its
/// [`Capacities`] hold (batches buffered, in flight, or decided and not yet drained).
#[derive(Debug)]
pub struct Sequencer<C: Capacities> {
    config: Config,
    identity: Identity,
    partitions: PerPartition<C, PartitionLedger>,
    slots: PerBatch<C, Slot>,
    next_order: u64,
    counters: Counters,
    /// When a request was last abandoned unanswered: see `Config::abandoned_request_grace`.
    last_abandoned: Option<Instant>,
    /// Delivered batches keep their slot until [`Sequencer::release`]: a client that mirrors
    /// batches in durable storage must erase them there before the slot is reused.
    retain_delivered: bool,
    /// The identity was restored after a restart: only the restored stamped batches may be
    /// sent under it (the broker's next expected sequence of the other partitions is not
    /// known), and once they are decided the identity is retired for a new producer id.
    resume_only: bool,
    /// A batch restored after a restart may have had a request out before it: every request
    /// of the previous life counts as abandoned at the first instant this one sees.
    restart_abandoned: bool,
    /// Backoffs of resends, InitProducerId retries and the sending after fences.
    pacing: Pacing,
    /// The slot of the next outcome to hand out, once looked for (`None`: look again): see
    /// `next_decided`. Cleared whenever a batch is decided, handed out or placed in a slot.
    next_out: Cell<Option<Option<u16>>>,
}

impl<C: Capacities> Sequencer<C> {
    /// A sequencer with no producer id yet; it asks for one on its first poll.
    pub fn new(config: Config) -> Result<Self, ConfigError>
    where
        C: Default,
    {
        Self::with_capacities(config, &C::default())
    }

    /// [`Sequencer::new`] with capacities chosen at run time. Only the partition and batch
    /// capacities count.
    pub fn with_capacities(config: Config, capacities: &C) -> Result<Self, ConfigError> {
        let (partitions, batches) = (capacities.partitions(), capacities.batches());
        config.validate(partitions, batches)?;
        Ok(Sequencer {
            config,
            identity: Identity::NoId {
                retry_at: Instant::ZERO,
            },
            partitions: Array::new(partitions, PartitionLedger::default()),
            slots: Array::new(batches, Slot::default()),
            next_order: 0,
            counters: Counters::default(),
            last_abandoned: None,
            retain_delivered: false,
            resume_only: false,
            restart_abandoned: false,
            pacing: Pacing::new(&config),
            next_out: Cell::new(None),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Fences the broker caused, completed since a batch was last accepted: each one after
    /// the first holds the sending back for a growing backoff (see [`Config::retry_backoff`]).
    pub fn fences_without_progress(&self) -> u32 {
        self.pacing.fences_without_progress()
    }

    /// No batch is handed out before this instant: the pause after the latest fence.
    pub fn resume_sending_at(&self) -> Instant {
        self.pacing.resume_sending_at()
    }

    /// Where the producer is in its lifecycle.
    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// Producer-wide counters.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters;
        (c.producer_id, c.epoch) = match self.identity {
            Identity::Ready { id, epoch } | Identity::Fencing { id, epoch, .. } => {
                (Some(id), Some(epoch))
            }
            _ => (None, None),
        };
        c
    }

    /// One partition's counters, `None` for an index out of range.
    pub fn partition_counters(&self, partition: PartitionIndex) -> Option<PartitionCounters> {
        let ledger = self.partitions.get(usize::from(partition.0))?;
        let pending = self
            .batches()
            .filter(|b| b.partition == partition && !matches!(b.state, BatchState::Decided { .. }))
            .count();
        Some(PartitionCounters {
            next_sequence: ledger.next_sequence,
            acked_sequence: ledger.last_acked.map(|(s, _)| s),
            acked_offset: ledger.last_acked.and_then(|(_, o)| o),
            in_flight: ledger.in_flight,
            pending: u16::try_from(pending).unwrap_or(u16::MAX),
        })
    }

    /// The state of a held batch.
    pub fn batch_state(&self, token: BatchToken) -> Option<BatchState> {
        self.batch(token).map(|b| b.state)
    }

    /// No batch is held: everything accepted has been decided and drained.
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(|s| s.batch.is_none())
    }

    /// Every batch held has its outcome (some may wait to be drained, or for a late answer):
    /// what a flush waits for.
    pub fn is_decided(&self) -> bool {
        self.slots
            .iter()
            .filter_map(|s| s.batch.as_ref())
            .all(|b| matches!(b.state, BatchState::Decided { .. }))
    }

    /// Gives the batch in slot `index` its outcome and counts it. A request carrying it may
    /// still be out (a deadline or a fatal stop decided it first): `outstanding` keeps the
    /// fence waiting for that request's answer, which then changes nothing.
    fn decide(&mut self, index: usize, outcome: crate::state::Outcome) {
        let Some(batch) = self.slots[index].batch.as_mut() else {
            return;
        };
        let outstanding = batch.state.is_outstanding();
        batch.state = BatchState::Decided {
            outcome,
            outstanding,
        };
        self.next_out.set(None);
        self.counters.count(outcome.kind(), batch.records);
    }

    fn token_at(&self, index: usize) -> Option<BatchToken> {
        let slot = self.slots.get(index)?;
        slot.batch.as_ref()?;
        Some(BatchToken {
            slot: index as u16,
            generation: slot.generation,
        })
    }

    fn batches(&self) -> impl Iterator<Item = &Batch> {
        self.slots.iter().filter_map(|s| s.batch.as_ref())
    }

    fn batch(&self, token: BatchToken) -> Option<&Batch> {
        let slot = self.slots.get(token.slot())?;
        (slot.generation == token.generation)
            .then_some(slot.batch.as_ref())
            .flatten()
    }

    fn batch_mut(&mut self, token: BatchToken) -> Option<&mut Batch> {
        let slot = self.slots.get_mut(token.slot())?;
        if slot.generation != token.generation {
            return None;
        }
        slot.batch.as_mut()
    }
}
