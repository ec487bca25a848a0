//! A restart: the resumed identity and the batches read back from durable storage.

use crate::capacity::Capacities;
use crate::state::batch::{Batch, BatchState, BatchToken, PartitionIndex, Stamp};
use crate::state::decide::{RESTORED_MAYBE_WRITTEN, Stored, restore_decision};
use crate::state::identity::{FenceReason, Identity, ProducerEpoch, ProducerId};
use crate::state::outcome::Outcome;
use crate::time::Instant;

use super::Sequencer;

/// What a batch read back from durable storage after a restart had reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Restored {
    /// It had no durable stamp: nothing of it can have been sent.
    Buffered,
    /// It had this stamp, so a request carrying it may have been appended: it is resent
    /// with the same stamp, under the [resumed](Sequencer::resume) identity.
    Stamped(Stamp),
    /// Its outcome was decided (and `delivered`, when only its erasure was pending).
    Decided {
        /// The outcome.
        outcome: Outcome,
        /// It was handed out already.
        delivered: bool,
    },
}

/// Why [`Sequencer::restore`] refused a batch: the stored state does not fit this sequencer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RestoreError {
    /// The slot is not below `BATCHES`, or already holds a batch.
    Slot,
    /// The partition index is not below `PARTITIONS`.
    NoSuchPartition,
    /// A batch needs at least one record and at most `i32::MAX`.
    RecordCount,
    /// A stamped batch whose identity was not [resumed](Sequencer::resume) first.
    NotResumed,
}

impl<C: Capacities> Sequencer<C> {
    /// After a restart, takes back the identity the restored stamped batches carry, before
    /// any of them is [restored](Sequencer::restore). Only those batches are sent under it, so
    /// that the broker deduplicates whichever of them it already appended; once they are all
    /// decided, the identity is retired and a new producer id requested for everything else.
    /// Refused (false) unless the sequencer is fresh: no identity and no batch yet.
    pub fn resume(&mut self, id: ProducerId, epoch: ProducerEpoch) -> bool {
        if !matches!(self.identity, Identity::NoId { .. }) || !self.is_empty() {
            return false;
        }
        info!("resuming producer id {:?} epoch {:?}", id.0, epoch.0);
        self.identity = Identity::Ready { id, epoch };
        self.resume_only = true;
        true
    }

    /// What a restart decides for a batch that durable storage held as `stored`, under the
    /// identity taken back by [`Sequencer::resume`] (see [`restore_decision`]): pass the
    /// answer to [`Sequencer::restore`].
    pub fn decide_restored(&self, stored: Stored) -> Restored {
        restore_decision(stored, self.resumed())
    }

    /// The identity [`Sequencer::resume`] took back, while only the restored stamped batches
    /// may be sent under it.
    fn resumed(&self) -> Option<(ProducerId, ProducerEpoch)> {
        match self.identity {
            Identity::Ready { id, epoch } if self.resume_only => Some((id, epoch)),
            _ => None,
        }
    }

    /// After a restart, puts a batch read back from durable storage into slot `slot` (the
    /// slot it had, so the storage keys stay valid), sealed, with its acceptance `order`
    /// (batches of one partition are sent in order), to be decided by `deadline`.
    pub fn restore(
        &mut self,
        slot: usize,
        partition: PartitionIndex,
        records: u32,
        order: u64,
        deadline: Instant,
        restored: Restored,
    ) -> Result<BatchToken, RestoreError> {
        if usize::from(partition.0) >= self.partitions.len() {
            return Err(RestoreError::NoSuchPartition);
        }
        if records == 0 || records > i32::MAX as u32 {
            return Err(RestoreError::RecordCount);
        }
        let resumed = self.resumed();
        let (state, delivered) = match restored {
            Restored::Buffered => (BatchState::Buffered, false),
            Restored::Stamped(stamp) => {
                if resumed != Some((stamp.producer_id, stamp.epoch)) {
                    return Err(RestoreError::NotResumed);
                }
                let state = BatchState::Stamped {
                    stamp,
                    maybe_written: RESTORED_MAYBE_WRITTEN,
                    retry_at: Instant::ZERO,
                };
                (state, false)
            }
            Restored::Decided { outcome, delivered } => (
                BatchState::Decided {
                    outcome,
                    outstanding: false,
                },
                delivered,
            ),
        };
        let s = self.slots.get_mut(slot).ok_or(RestoreError::Slot)?;
        if s.batch.is_some() {
            return Err(RestoreError::Slot);
        }
        // A request of the previous life may have been out when the power went (carrying
        // this batch, or one decided and erased before the restart, whose store says
        // nothing any more), and a broker may still append it after this life started: no
        // new producer id before the grace.
        self.restart_abandoned = true;
        self.next_out.set(None);
        s.generation = s.generation.wrapping_add(1);
        s.batch = Some(Batch {
            partition,
            records,
            deadline,
            order,
            attempts: 0,
            sealed: true,
            state,
            delivered,
        });
        self.next_order = self.next_order.max(order.saturating_add(1));
        if let BatchState::Stamped { stamp, .. } = state {
            let ledger = &mut self.partitions[usize::from(partition.0)];
            let end = stamp.base_sequence.add(records);
            // Batches are restored in acceptance order: the last one's end is the newest.
            ledger.next_sequence = end;
        }
        Ok(BatchToken {
            slot: slot as u16,
            generation: s.generation,
        })
    }

    /// At the first instant after a restart that restored a batch with a stamp or an
    /// outcome, counts every request of the previous life as abandoned now: a broker may
    /// still process one it had read (or that was still on its way), and a new producer id
    /// does not fence it, so the first producer id of this life (or the one after a resumed
    /// identity) waits `abandoned_request_grace`, as after any abandoned request.
    pub(super) fn note_restart(&mut self, now: Instant) {
        if !self.restart_abandoned {
            return;
        }
        self.restart_abandoned = false;
        self.last_abandoned = Some(self.last_abandoned.map_or(now, |at| at.max(now)));
        if let Identity::NoId { retry_at } = &mut self.identity {
            *retry_at = (*retry_at).max(now + self.config.abandoned_request_grace);
        }
    }

    /// Retires a resumed identity once every restored stamped batch is decided: the epoch is
    /// bumped (a new producer id where the broker refuses the bump). A bump, not a new id,
    /// because a request of the previous life may still be processed by a broker that had
    /// read it: once a batch of the new epoch is in its partition the broker refuses the old
    /// epoch, where a new producer id would let the straggler land after newer batches.
    pub(super) fn end_resume(&mut self) {
        if self.resume_only
            && !self
                .batches()
                .any(|b| matches!(b.state, BatchState::Stamped { .. }) || b.state.is_outstanding())
        {
            self.resume_only = false;
            self.start_fence(FenceReason::Restarted, false);
        }
    }
}
