//! Accepting batches and handing them out stamped: enqueue, open, extend, seal, next_send.

use crate::capacity::Capacities;
use crate::state::batch::{Batch, BatchState, BatchToken, PartitionIndex, Stamp};
use crate::state::identity::{FatalReason, Identity};
use crate::time::Instant;

use super::{Sequencer, TokenError};

/// A batch handed out for sending: put `stamp` in its header and send it to the partition's
/// leader, then report what became of it with [`Sequencer::on_produce_result`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SendPermit {
    /// The batch.
    pub token: BatchToken,
    /// Producer id, epoch and base sequence to write into the batch header.
    pub stamp: Stamp,
    /// Records in the batch.
    pub records: u32,
    /// 1 for the first attempt under this stamp, more for resends.
    pub attempt: u16,
}

/// Why a batch was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EnqueueError {
    /// Every batch slot is taken: wait for outcomes (and drain them) before adding more. A full
    /// buffer never blocks; the caller decides whether to drop, retry later or spill.
    Full,
    /// The partition index is not below `PARTITIONS`.
    NoSuchPartition,
    /// A batch needs at least one record and at most `i32::MAX`.
    RecordCount,
    /// The producer stopped for good.
    Fatal(FatalReason),
}

impl<C: Capacities> Sequencer<C> {
    /// Accepts a sealed batch of `records` records for `partition`, to be decided by
    /// `deadline`.
    pub fn enqueue(
        &mut self,
        partition: PartitionIndex,
        records: u32,
        deadline: Instant,
    ) -> Result<BatchToken, EnqueueError> {
        self.insert(partition, records, deadline, true)
    }

    /// Accepts a batch that is still filling: it is not sent before [`Sequencer::seal`], but
    /// its deadline already counts, so records lingering in an accumulator get their outcome
    /// from the same [`cancel_decision`](crate::state::cancel_decision) as every other batch.
    pub fn open(
        &mut self,
        partition: PartitionIndex,
        records: u32,
        deadline: Instant,
    ) -> Result<BatchToken, EnqueueError> {
        self.insert(partition, records, deadline, false)
    }

    /// Adds `records` records to an open batch; its deadline becomes the earliest of its
    /// records' (a batch shares one fate). Fails once it is sealed or decided (its deadline
    /// passed): the caller then opens a new batch.
    pub fn extend(
        &mut self,
        token: BatchToken,
        records: u32,
        deadline: Instant,
    ) -> Result<(), TokenError> {
        let batch = self.batch_mut(token).ok_or(TokenError::Unknown)?;
        if batch.sealed || batch.state != BatchState::Buffered {
            return Err(TokenError::NotOpen);
        }
        let total = batch.records.saturating_add(records);
        if total > i32::MAX as u32 {
            return Err(TokenError::NotOpen);
        }
        batch.records = total;
        batch.deadline = batch.deadline.min(deadline);
        Ok(())
    }

    /// Closes an open batch to new records: from now on it may be sent. Sealing a sealed or
    /// decided batch does nothing.
    pub fn seal(&mut self, token: BatchToken) -> Result<(), TokenError> {
        let batch = self.batch_mut(token).ok_or(TokenError::Unknown)?;
        batch.sealed = true;
        Ok(())
    }

    pub(super) fn insert(
        &mut self,
        partition: PartitionIndex,
        records: u32,
        deadline: Instant,
        sealed: bool,
    ) -> Result<BatchToken, EnqueueError> {
        if let Identity::Fatal(reason) = self.identity {
            return Err(EnqueueError::Fatal(reason));
        }
        if usize::from(partition.0) >= self.partitions.len() {
            return Err(EnqueueError::NoSuchPartition);
        }
        if records == 0 || records > i32::MAX as u32 {
            return Err(EnqueueError::RecordCount);
        }
        let (index, slot) = self
            .slots
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.batch.is_none())
            .ok_or(EnqueueError::Full)?;
        slot.generation = slot.generation.wrapping_add(1);
        slot.batch = Some(Batch {
            partition,
            records,
            deadline,
            order: self.next_order,
            attempts: 0,
            sealed,
            state: BatchState::Buffered,
            delivered: false,
        });
        self.next_order += 1;
        Ok(BatchToken {
            // `new` checked BATCHES fits in u16.
            slot: index as u16,
            generation: slot.generation,
        })
    }

    /// Hands out the next batch of `partition` to send, stamped, or `None` when nothing may be
    /// sent on it now (no id, fencing, window full, draining for a resend, or backing off).
    /// The batch counts as in flight from here: report its fate with
    /// [`Sequencer::on_produce_result`], `ProduceResult::NotWritten` if it never left.
    pub fn next_send(&mut self, partition: PartitionIndex, now: Instant) -> Option<SendPermit> {
        let (index, stamp, maybe_written, fresh) = self.select_send(partition, now)?;
        if fresh {
            let records = self.slots[index].batch.as_ref()?.records;
            self.partitions[usize::from(partition.0)].take_sequences(records);
        } else {
            self.counters.retries += 1;
        }
        self.launch(index, stamp, maybe_written)
    }

    /// The batch and stamp [`Sequencer::next_send`] would hand out now, without handing it
    /// out: a client that must make the stamp durable before the request leaves persists it,
    /// then calls `next_send`, which returns the same stamp while nothing else happened.
    pub fn peek_send(
        &mut self,
        partition: PartitionIndex,
        now: Instant,
    ) -> Option<(BatchToken, Stamp)> {
        let (index, stamp, _, _) = self.select_send(partition, now)?;
        Some((self.token_at(index)?, stamp))
    }

    /// The next send of `partition`: (slot, stamp, maybe written, fresh stamp).
    pub(super) fn select_send(
        &mut self,
        partition: PartitionIndex,
        now: Instant,
    ) -> Option<(usize, Stamp, bool, bool)> {
        // A batch whose deadline has passed must not leave: its caller has its outcome.
        self.expire(now);
        let (id, epoch) = self.identity.ready()?;
        // Consecutive fences without an accepted batch hold sending back (see `pacing`).
        if now < self.pacing.resume_sending_at() {
            return None;
        }
        let p = usize::from(partition.0);
        let ledger = *self.partitions.get(p)?;
        // Resends first, lowest sequence first (acceptance order is sequence order within one
        // identity), and only once nothing else of the partition is out: the broker must see
        // the retried sequences in order.
        if let Some(index) = self.oldest(partition, |s| matches!(s, BatchState::Stamped { .. })) {
            let Some(Batch {
                state:
                    BatchState::Stamped {
                        stamp,
                        maybe_written,
                        retry_at,
                    },
                ..
            }) = self.slots[index].batch
            else {
                return None;
            };
            if ledger.in_flight > 0 || retry_at > now {
                return None;
            }
            return Some((index, stamp, maybe_written, false));
        }
        // A restored identity only finishes what it had stamped.
        if self.resume_only {
            return None;
        }
        if ledger.in_flight >= ledger.window(self.config.max_in_flight_per_partition) {
            return None;
        }
        let index = self.oldest_sealed_buffered(partition)?;
        let stamp = Stamp {
            producer_id: id,
            epoch,
            base_sequence: ledger.next_sequence,
        };
        Some((index, stamp, false, true))
    }

    /// The slot of the partition's earliest-accepted batch whose state matches.
    pub(super) fn oldest(
        &self,
        partition: PartitionIndex,
        matches: impl Fn(&BatchState) -> bool,
    ) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.batch.as_ref().map(|b| (i, b)))
            .filter(|(_, b)| b.partition == partition && matches(&b.state))
            .min_by_key(|(_, b)| b.order)
            .map(|(i, _)| i)
    }

    /// The partition's earliest-accepted batch that may take a fresh stamp: sealed, buffered.
    pub(super) fn oldest_sealed_buffered(&self, partition: PartitionIndex) -> Option<usize> {
        let index = self.oldest(partition, |s| matches!(s, BatchState::Buffered))?;
        // Batches of a partition are sealed in acceptance order, so an open oldest one means
        // nothing behind it is sealed either.
        self.slots[index]
            .batch
            .as_ref()
            .is_some_and(|b| b.sealed)
            .then_some(index)
    }

    pub(super) fn launch(
        &mut self,
        index: usize,
        stamp: Stamp,
        maybe_written: bool,
    ) -> Option<SendPermit> {
        let slot = self.slots.get_mut(index)?;
        let generation = slot.generation;
        let batch = slot.batch.as_mut()?;
        batch.state = BatchState::InFlight {
            stamp,
            maybe_written,
        };
        batch.attempts = batch.attempts.saturating_add(1);
        let permit = SendPermit {
            token: BatchToken {
                slot: index as u16,
                generation,
            },
            stamp,
            records: batch.records,
            attempt: batch.attempts,
        };
        let ledger = &mut self.partitions[usize::from(batch.partition.0)];
        ledger.in_flight = ledger.in_flight.saturating_add(1);
        Some(permit)
    }
}
