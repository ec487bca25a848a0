//! The record accumulator: records gather per partition into an open batch, encoded in place
//! in the caller's storage (one batch slot of `batch_bytes` each), until the next record does
//! not fit, the batch has lingered `linger`, or the application flushes; then the batch is
//! sealed and left to the [`Sequencer`](crate::state::Sequencer) to stamp and send. The
//! ledger takes each record before the storage is written: a record it refuses leaves the
//! batch as it was.

use super::durable::Mirror;
use super::{Client, NO_TIMESTAMP, ProducerRecord, Receipt, SendError, partition_for_key};
use crate::capacity::Capacities;
use crate::state::{EnqueueError, Identity, PartitionIndex};
use crate::time::Instant;
use crate::wire::{Attributes, BatchBuilder, List, OpenBatch, RECORD_BATCH_OVERHEAD, Record};

/// What a batch slot of the storage holds: nothing, a batch being filled, or a sealed one.
#[derive(Clone, Copy, Debug)]
pub(super) enum SlotUse {
    Free,
    Open {
        batch: OpenBatch,
        opened_at: Instant,
    },
    Sealed {
        len: usize,
    },
}

/// The storage chunk of batch slot `slot`, after the `reserve` bytes kept for its durable
/// header. Borrows only the storage, so the rest of the client stays usable while a batch is
/// being written.
pub(super) fn chunk(
    storage: &mut [u8],
    batch_bytes: usize,
    reserve: usize,
    slot: usize,
) -> &mut [u8] {
    let start = slot.saturating_mul(batch_bytes);
    storage
        .get_mut(start.saturating_add(reserve)..start.saturating_add(batch_bytes))
        .unwrap_or(&mut [])
}

impl<S, C: Capacities> Client<S, C>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Accepts a record, to be decided by `deadline`. The record joins its partition's open
    /// batch when it fits, else a new batch; it shares that batch's outcome, and the batch's
    /// deadline is its earliest record's.
    pub fn send(
        &mut self,
        record: &ProducerRecord<'_>,
        deadline: Instant,
        now: Instant,
    ) -> Result<Receipt, SendError> {
        self.send_tagged(record, 0, deadline, now)
    }

    /// [`Client::send`], with a tag for the batch should this record open one: an
    /// application number (a reading's sequence number, an input line) that comes back in
    /// [`ClientDelivery::tag`] and survives a restart with the batch, so an application can
    /// tell which of its records a restored batch holds.
    ///
    /// [`ClientDelivery::tag`]: super::ClientDelivery::tag
    pub fn send_tagged(
        &mut self,
        record: &ProducerRecord<'_>,
        tag: u64,
        deadline: Instant,
        now: Instant,
    ) -> Result<Receipt, SendError> {
        if self.storage_failed {
            return Err(SendError::Storage);
        }
        if matches!(self.sequencer.identity(), Identity::Fatal(_)) {
            return Err(SendError::Fatal);
        }
        // No timestamp given: the wall clock's, when the client was told it.
        let timestamp = match record.timestamp {
            None => self.wall_clock_ms(now).unwrap_or(NO_TIMESTAMP),
            Some(given) => given,
        };
        if self
            .stale_before(now)
            .is_some_and(|limit| timestamp < limit)
        {
            return Err(SendError::StaleTimestamp);
        }
        self.fresh = false;
        self.next_tag = tag;
        let topic = self
            .metadata
            .topic_index(record.topic)
            .ok_or(SendError::UnknownTopic)?;
        let entry = &self.metadata.topics[usize::from(topic)];
        let count = entry.partitions;
        if count == 0 {
            return Err(SendError::NoMetadata);
        }
        // Records without a key go to partitions the table holds (its lowest ids, when the
        // topic has more than it holds); keys hash over all of them, as every producer's do.
        let sticky_count = if entry.full {
            let held = self
                .metadata
                .partitions
                .iter()
                .filter(|p| p.topic == topic && (p.partition as u32) < count)
                .count();
            u32::try_from(held).unwrap_or(count).min(count)
        } else {
            count
        };
        let partition = match (record.partition, record.key) {
            (Some(p), _) => u32::try_from(p).map_err(|_| SendError::NoSuchPartition)?,
            (None, Some(key)) => partition_for_key(key, count).ok_or(SendError::NoMetadata)?,
            (None, None) => self.sticky[usize::from(topic)]
                .partition(sticky_count)
                .ok_or(SendError::NoMetadata)?,
        };
        if partition >= count {
            return Err(SendError::NoSuchPartition);
        }
        let partition = partition as i32;
        let index = self
            .metadata
            .index_of(topic, partition)
            .ok_or(SendError::NoSuchPartition)?;
        let headers = record.headers;
        // Into the open batch, if there is one and the record fits.
        if let Some(token) = self.open[index] {
            let slot = token.slot();
            if let SlotUse::Open { batch, .. } = self.slots[slot] {
                let chunk = chunk(self.storage.as_mut(), self.batch_bytes, self.reserve, slot);
                let mut builder =
                    BatchBuilder::resume(chunk, batch).map_err(|_| SendError::RecordTooLarge)?;
                let fits = builder.len()
                    + builder.record_len(timestamp, record.key, record.value, headers)
                    <= self.batch_bytes - self.reserve;
                // The ledger first: it refuses when the batch was decided meanwhile (its
                // deadline passed), and then nothing has changed.
                if fits && self.sequencer.extend(token, 1, deadline).is_ok() {
                    let offset_delta = builder.record_count() as u32;
                    if builder
                        .append(timestamp, record.key, record.value, headers)
                        .is_err()
                    {
                        // Cannot happen after the size check; if it did, the ledger would
                        // count a record the batch lacks, so the batch is given up instead.
                        let _ = self.sequencer.cancel(token, now);
                        return Err(SendError::RecordTooLarge);
                    }
                    let batch = builder.suspend();
                    if let SlotUse::Open { batch: b, .. } = &mut self.slots[slot] {
                        *b = batch;
                    }
                    return Ok(Receipt {
                        batch: token,
                        offset_delta,
                        topic,
                        partition,
                    });
                }
            }
            self.seal(index, now);
        }
        // A new batch.
        let alone = Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: 0,
            key: record.key,
            value: record.value,
            headers: List::from_slice(headers),
        };
        if RECORD_BATCH_OVERHEAD + alone.encoded_len() > self.batch_bytes - self.reserve {
            return Err(SendError::RecordTooLarge);
        }
        let token = self
            .sequencer
            .open(PartitionIndex(index as u16), 1, deadline)
            .map_err(|e| match e {
                EnqueueError::Full => SendError::Full,
                EnqueueError::Fatal(_) => SendError::Fatal,
                EnqueueError::NoSuchPartition | EnqueueError::RecordCount => {
                    SendError::NoSuchPartition
                }
            })?;
        let slot = token.slot();
        let chunk = chunk(self.storage.as_mut(), self.batch_bytes, self.reserve, slot);
        let built = BatchBuilder::new(chunk, Attributes::default(), timestamp).and_then(|mut b| {
            b.append(timestamp, record.key, record.value, headers)?;
            Ok(b.suspend())
        });
        let Ok(batch) = built else {
            // Checked above; a failure here would be a codec bug. Give the batch its outcome
            // rather than leave it without one.
            let _ = self.sequencer.cancel(token, now);
            return Err(SendError::RecordTooLarge);
        };
        self.slots[slot] = SlotUse::Open {
            batch,
            opened_at: now,
        };
        self.mirror[slot] = Mirror::default();
        self.mirror[slot].info.tag = self.next_tag;
        self.open[index] = Some(token);
        Ok(Receipt {
            batch: token,
            offset_delta: 0,
            topic,
            partition,
        })
    }

    /// Seals every open batch so it is sent without waiting for the linger time.
    pub fn flush(&mut self, now: Instant) {
        for index in 0..self.open.len() {
            self.seal(index, now);
        }
    }

    pub(super) fn seal(&mut self, index: usize, now: Instant) {
        let Some(token) = self.open.get_mut(index).and_then(Option::take) else {
            return;
        };
        let slot = token.slot();
        if let SlotUse::Open { batch, .. } = self.slots[slot] {
            let chunk = chunk(self.storage.as_mut(), self.batch_bytes, self.reserve, slot);
            let len = BatchBuilder::resume(chunk, batch)
                // The CRC is computed once, when the batch is stamped for sending.
                .and_then(|b| b.finish_for_stamp().map(|f| f.len()))
                .ok();
            match len {
                Some(len) => {
                    self.slots[slot] = SlotUse::Sealed { len };
                    let _ = self.sequencer.seal(token);
                    self.mirror_sealed(slot, index);
                }
                None => {
                    let _ = self.sequencer.cancel(token, now);
                }
            }
            if let Some(p) = self.metadata.partitions.get(index).copied() {
                let count = self.metadata.topics[usize::from(p.topic)].partitions;
                self.sticky[usize::from(p.topic)].on_batch_sealed(p.partition as u32, count);
            }
        }
    }
}
