//! Handing outcomes out, once per batch, and freeing slots.

use crate::capacity::Capacities;
use crate::state::batch::{BatchState, BatchToken, PartitionIndex};
use crate::state::outcome::Outcome;

use super::{Sequencer, TokenError};

/// A batch's outcome, handed to the caller once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Delivery {
    /// The batch.
    pub token: BatchToken,
    /// Its partition.
    pub partition: PartitionIndex,
    /// Records it held.
    pub records: u32,
    /// What is true of them.
    pub outcome: Outcome,
}

/// A held batch, as [`Sequencer::held`] shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HeldBatch {
    /// Its token.
    pub token: BatchToken,
    /// Its partition.
    pub partition: PartitionIndex,
    /// Records it holds.
    pub records: u32,
    /// Acceptance order across the producer.
    pub order: u64,
    /// No more records may join it.
    pub sealed: bool,
    /// Where it is in its lifecycle.
    pub state: BatchState,
    /// Its outcome was handed out.
    pub delivered: bool,
}

impl<C: Capacities> Sequencer<C> {
    /// Takes the next decided outcome, oldest batch first. Each batch yields exactly one.
    pub fn poll_event(&mut self) -> Option<Delivery> {
        let index = self.next_decided()?;
        let slot = &mut self.slots[index];
        let batch = slot.batch.as_mut()?;
        let BatchState::Decided { outcome, .. } = batch.state else {
            return None;
        };
        batch.delivered = true;
        self.next_out.set(None);
        let delivery = Delivery {
            token: BatchToken {
                slot: index as u16,
                generation: slot.generation,
            },
            partition: batch.partition,
            records: batch.records,
            outcome,
        };
        self.release_if_done(index);
        Some(delivery)
    }

    /// The slot of the oldest decided batch not yet handed out. Found by a walk of the
    /// slots, kept until a batch is decided, handed out or placed: a transport asks after
    /// every record it sends, and the answer changes once per batch.
    fn next_decided(&self) -> Option<usize> {
        if let Some(known) = self.next_out.get() {
            return known.map(usize::from);
        }
        let next = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.batch.as_ref().map(|b| (i, b)))
            .filter(|(_, b)| !b.delivered && matches!(b.state, BatchState::Decided { .. }))
            .min_by_key(|(_, b)| b.order)
            .map(|(i, _)| i);
        // Slots are numbered in u16 (checked at construction).
        self.next_out.set(Some(next.map(|i| i as u16)));
        next
    }

    /// The batch [`Sequencer::poll_event`] would yield next, without yielding it: a client
    /// that must make an outcome durable before handing it out checks it first.
    pub fn peek_event(&self) -> Option<BatchToken> {
        let index = self.next_decided()?;
        self.token_at(index)
    }

    /// What the sequencer holds in slot `slot`, if anything.
    pub fn held(&self, slot: usize) -> Option<HeldBatch> {
        let s = self.slots.get(slot)?;
        let b = s.batch.as_ref()?;
        Some(HeldBatch {
            token: BatchToken {
                slot: slot as u16,
                generation: s.generation,
            },
            partition: b.partition,
            records: b.records,
            order: b.order,
            sealed: b.sealed,
            state: b.state,
            delivered: b.delivered,
        })
    }

    /// Keeps delivered batches in their slots until [`Sequencer::release`] (on), or frees them
    /// as they are delivered (off, the default). A client that mirrors its batches in durable
    /// storage turns this on, so that no slot is reused before its old batch is erased there.
    pub fn set_retain_delivered(&mut self, on: bool) {
        self.retain_delivered = on;
    }

    /// Frees the slot of a delivered batch kept by [`Sequencer::set_retain_delivered`]. Fails
    /// while its outcome is undelivered or a request carrying it is still out.
    pub fn release(&mut self, token: BatchToken) -> Result<(), TokenError> {
        let batch = self.batch(token).ok_or(TokenError::Unknown)?;
        if !batch.delivered || batch.state.is_outstanding() {
            return Err(TokenError::NotOpen);
        }
        self.slots[token.slot()].batch = None;
        Ok(())
    }

    pub(super) fn release_if_done(&mut self, index: usize) {
        if let Some(slot) = self.slots.get_mut(index)
            && let Some(batch) = slot.batch
            && batch.delivered
            && !batch.state.is_outstanding()
            && !self.retain_delivered
        {
            slot.batch = None;
        }
    }
}
