//! Restore after a restart (`durable` clients): the items read back from the store rebuild
//! the batches, which are resent, sent or handed out again as what the store says of each
//! allows.

use super::accumulator::{SlotUse, chunk};
use super::durable::{self, MetaState, RestoreError, RestoreOptions, RestoreSummary};
use super::{Client, metadata};
use crate::capacity::Capacities;
use crate::state::{PartitionIndex, Restored, Stored};
use crate::wire;

impl<S, C: Capacities> Client<S, C>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Feeds one item read back from the durable store after a restart (`value` `None` for
    /// a tombstone), before anything else is done with the client. Feed every item in the
    /// store's order; a later copy of a key replaces an earlier one. Then call
    /// [`Client::finish_restore`].
    pub fn restore_item(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), RestoreError> {
        if !self.durable {
            return Err(RestoreError::NotDurable);
        }
        if !self.fresh {
            return Err(RestoreError::NotFresh);
        }
        let (is_batch, slot) = durable::parse_key(key)?;
        if slot >= self.slots.len() {
            return Err(RestoreError::Slot { slot: slot as u16 });
        }
        let room = self.batch_bytes - self.reserve;
        match (is_batch, value) {
            (true, Some(value)) => {
                let mut r = wire::Reader::new(value);
                let info = durable::read_header(&mut r)?;
                let bytes = r.rest();
                if bytes.len() > room {
                    return Err(RestoreError::BatchBytes { len: bytes.len() });
                }
                let header = wire::header_of(bytes).map_err(|_| RestoreError::Malformed)?;
                if header.record_count < 1 || header.record_count as u32 != info.records {
                    return Err(RestoreError::Malformed);
                }
                chunk(self.storage.as_mut(), self.batch_bytes, self.reserve, slot)
                    .get_mut(..bytes.len())
                    .ok_or(RestoreError::BatchBytes { len: bytes.len() })?
                    .copy_from_slice(bytes);
                self.slots[slot] = SlotUse::Sealed { len: bytes.len() };
                let m = &mut self.mirror[slot];
                m.batch = true;
                m.info = info;
            }
            (true, None) => {
                self.slots[slot] = SlotUse::Free;
                self.mirror[slot].batch = false;
            }
            (false, Some(value)) => {
                let (info, state) = durable::read_meta(value)?;
                let m = &mut self.mirror[slot];
                m.meta = state;
                // Both items carry the header; the batch's, when there is one, is kept.
                if !m.batch {
                    m.info = info;
                }
            }
            (false, None) => self.mirror[slot].meta = MetaState::Absent,
        }
        Ok(())
    }

    /// Rebuilds the batches fed through [`Client::restore_item`]: batches never stamped are
    /// sent as new; stamped ones are resent with their stamp under their producer id and
    /// epoch (the broker deduplicates what it already appended), unless
    /// `options.producer_state_ttl` says the broker may have forgotten the producer (Kafka 2.5
    /// and later append a resend from a producer they forgot as new data, without an error);
    /// decided ones are handed out again. Older brokers and tansu answer UNKNOWN_PRODUCER_ID
    /// (or fence the id) instead, and those batches get `PossiblyPersisted` with that reason.
    /// Once the restored stamped batches are decided, the producer fences the resumed epoch
    /// (a local bump, or a new producer id where the broker refuses it).
    pub fn finish_restore(
        &mut self,
        options: RestoreOptions,
    ) -> Result<RestoreSummary, RestoreError> {
        if !self.durable {
            return Err(RestoreError::NotDurable);
        }
        if !self.fresh {
            return Err(RestoreError::NotFresh);
        }
        // Check everything before changing anything.
        let mut resume: Option<(u64, crate::state::Stamp)> = None;
        for slot in 0..self.slots.len() {
            let m = &self.mirror[slot];
            if !m.is_stored() {
                continue;
            }
            let info = m.info;
            let topic = self
                .metadata
                .topics
                .get(usize::from(info.topic))
                .ok_or(RestoreError::Topic { topic: info.topic })?;
            if wire::crc32c(topic.name.as_bytes()) != info.topic_crc {
                return Err(RestoreError::Topic { topic: info.topic });
            }
            if let (true, MetaState::Stamped(stamp)) = (m.batch, m.meta)
                && resume.is_none_or(|(order, _)| info.order > order)
            {
                resume = Some((info.order, stamp));
            }
        }
        let fresh_enough = |bytes: &[u8]| -> bool {
            let (Some(now_ms), Some(ttl)) = (options.now_ms, options.producer_state_ttl) else {
                return true;
            };
            let Ok(header) = wire::header_of(bytes) else {
                return false;
            };
            let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
            now_ms.saturating_sub(header.max_timestamp) < ttl
        };
        let mut summary = RestoreSummary::default();
        if let Some((_, stamp)) = resume {
            self.sequencer.resume(stamp.producer_id, stamp.epoch);
        }
        let mut last: Option<u64> = None;
        loop {
            // The next slot in acceptance order (BATCHES is small: a selection is enough).
            let next = (0..self.slots.len())
                .filter(|&s| self.mirror[s].is_stored())
                .filter(|&s| last.is_none_or(|l| self.mirror[s].info.order > l))
                .min_by_key(|&s| self.mirror[s].info.order);
            let Some(slot) = next else { break };
            let m = self.mirror[slot];
            last = Some(m.info.order);
            let index = match self.metadata.index_of(m.info.topic, m.info.partition) {
                Some(index) => index,
                None => {
                    self.metadata
                        .partitions
                        .push(metadata::Partition {
                            topic: m.info.topic,
                            partition: m.info.partition,
                            leader: None,
                        })
                        .map_err(|_| RestoreError::Partitions)?;
                    self.metadata.partitions.len() - 1
                }
            };
            let len = match (m.batch, self.slots[slot]) {
                (true, SlotUse::Sealed { len }) => len,
                _ => 0,
            };
            let bytes = chunk(self.storage.as_mut(), self.batch_bytes, self.reserve, slot)
                .get(..len)
                .unwrap_or(&[]);
            // The facts the store holds; the sequencer decides what they mean.
            let stored = match (m.batch, m.meta) {
                (_, MetaState::Decided(outcome)) => Stored::Decided(outcome),
                (true, MetaState::Stamped(stamp)) => Stored::Stamped {
                    stamp,
                    expired: !fresh_enough(bytes),
                },
                (true, MetaState::Absent) => Stored::Buffered,
                // Only the meta item is left: its batch was decided and handed out; erase it.
                (false, _) => Stored::Delivered,
            };
            if let Stored::Stamped { expired: true, .. } = stored {
                summary.expired += 1;
            }
            let restored = self.sequencer.decide_restored(stored);
            match restored {
                Restored::Buffered => summary.buffered += 1,
                Restored::Stamped(_) => summary.stamped += 1,
                Restored::Decided {
                    delivered: false, ..
                } => summary.decided += 1,
                Restored::Decided { .. } => {}
            }
            self.sequencer
                .restore(
                    slot,
                    PartitionIndex(index as u16),
                    m.info.records,
                    m.info.order,
                    options.deadline,
                    restored,
                )
                .map_err(|_| RestoreError::Malformed)?;
            self.slots[slot] = SlotUse::Sealed { len };
            self.mirror[slot].restored = true;
            // A leftover of a batch already handed out is only erased, not counted.
            if !matches!(
                restored,
                Restored::Decided {
                    delivered: true,
                    ..
                }
            ) {
                summary.batches += 1;
                summary.records = summary.records.saturating_add(m.info.records);
            }
        }
        self.fresh = false;
        if summary.batches > 0 {
            info!(
                "restored {:?} batches: {:?} buffered, {:?} stamped, {:?} decided, {:?} expired",
                summary.batches,
                summary.buffered,
                summary.stamped,
                summary.decided,
                summary.expired
            );
        }
        Ok(summary)
    }
}
