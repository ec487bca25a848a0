//! The durable mirror (`durable` clients): what the store holds per batch slot, the next write
//! it needs (in the order [`durable`] explains), and what a confirmed or failed write changes.
//! The items' encoding is in [`durable`]; reading them back, in `restore`.
//!
//! The rest of the client asks the mirror what it needs through a few calls at the end of
//! this file (a batch sealed, a stamp about to leave, an outcome about to be handed out);
//! each is a no-op, or a yes, for a client without a store, so no `durable` branch is
//! spread through the accumulator, the requests or the deliveries.

use super::Client;
use super::accumulator::SlotUse;
use super::durable::{self, BATCH_HEADER, MetaState, Mirror, PersistOp};
use crate::capacity::Capacities;
use crate::state::{BatchState, BatchToken, PartitionIndex};
use crate::time::Instant;
use crate::wire;

impl<S, C: Capacities> Client<S, C>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// The next write for the durable store (`durable` clients only): apply it, then confirm
    /// with [`Client::on_persisted`]. The same write is returned until it is confirmed.
    /// Transports drain this after every call that can change the client's state, and
    /// before each [`Client::poll_transmit`]: a batch waiting for its stamp to be stored is
    /// not sent until then.
    pub fn poll_persist(&mut self) -> Option<PersistOp<'_>> {
        if !self.wants_persist() {
            return None;
        }
        let op = self.persisting?;
        let size = self.batch_bytes;
        let (slot, is_batch, value) = match op {
            durable::Pending::StoreBatch(slot) => {
                let m = self.mirror[slot];
                let len = match self.slots[slot] {
                    SlotUse::Sealed { len } => len,
                    _ => 0,
                };
                let start = slot * size;
                let storage = self.storage.as_mut();
                let header = storage.get_mut(start..start + BATCH_HEADER)?;
                if !durable::write_header(header, &m.info) {
                    return None;
                }
                let value = storage.get(start..start + BATCH_HEADER + len)?;
                (slot, true, Some(value))
            }
            durable::Pending::StoreMeta(slot, state) => {
                let info = self.mirror[slot].info;
                let n = durable::write_meta(&mut self.meta_buf, &info, &state);
                (slot, false, Some(self.meta_buf.get(..n)?))
            }
            durable::Pending::EraseBatch(slot) => (slot, true, None),
            durable::Pending::EraseMeta(slot) => (slot, false, None),
        };
        Some(PersistOp {
            key: durable::key(is_batch, slot),
            value,
        })
    }

    /// Whether [`Client::poll_persist`] has a write to hand out: a transport that persists
    /// asynchronously checks this after each turn of its connections, and stores before the
    /// next.
    pub fn wants_persist(&mut self) -> bool {
        if !self.durable || self.storage_failed {
            return false;
        }
        if self.persisting.is_none() {
            self.persisting = self.next_persist();
        }
        self.persisting.is_some()
    }

    /// The write last returned by [`Client::poll_persist`] is durable.
    pub fn on_persisted(&mut self) {
        let Some(op) = self.persisting.take() else {
            return;
        };
        let slot = match op {
            durable::Pending::StoreBatch(slot) => {
                self.mirror[slot].batch = true;
                slot
            }
            durable::Pending::StoreMeta(slot, state) => {
                self.mirror[slot].meta = state;
                slot
            }
            durable::Pending::EraseBatch(slot) => {
                self.mirror[slot].batch = false;
                slot
            }
            durable::Pending::EraseMeta(slot) => {
                self.mirror[slot].meta = MetaState::Absent;
                slot
            }
        };
        self.release_if_erased(slot);
    }

    /// The write last returned by [`Client::poll_persist`] failed (or its outcome is unknown:
    /// the storage may hold it or not). The client stops: it sends nothing more, hands out
    /// no more outcomes and refuses records with [`SendError::Storage`], because it can no
    /// longer tell what a restart would find. Rebuild it and restore from the storage (after
    /// a reset, or once the storage works again): every batch then gets its outcome.
    ///
    /// [`SendError::Storage`]: super::SendError::Storage
    pub fn on_persist_failed(&mut self) {
        warn!("durable storage failed: the producer stops");
        self.persisting = None;
        self.storage_failed = true;
    }

    /// The batch is in the durable store (`durable` clients): its records survive a restart
    /// from here on. An application that keeps its own copy of a record until it is safe
    /// (a sensor reading in RAM, an input position) lets go of it once this is true, or once
    /// the batch's outcome is out.
    pub fn is_durable(&self, batch: BatchToken) -> bool {
        self.sequencer
            .held(batch.slot())
            .is_some_and(|h| h.token == batch && self.mirror[batch.slot()].is_stored())
    }

    /// The batches read back at restore whose outcome is not handed out yet, as (tag,
    /// records): an application that resumes its input after a restart skips what they hold
    /// (their records are already accepted, and keep their place in their partitions).
    pub fn restored_batches(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        (0..self.slots.len()).filter_map(|slot| {
            let h = self.sequencer.held(slot)?;
            let m = &self.mirror[slot];
            (m.restored && !h.delivered).then_some((m.info.tag, h.records))
        })
    }

    /// A durable-storage write failed: see [`Client::on_persist_failed`].
    pub fn storage_failed(&self) -> bool {
        self.storage_failed
    }

    /// The next write the durable store needs, in the order that keeps a restart safe (see
    /// [`durable`]): outcomes and unstamps first (a fence's decisions before any newer
    /// stamp), then sealed batches, then wanted stamps, then erasures.
    fn next_persist(&mut self) -> Option<durable::Pending> {
        use durable::Pending;
        for slot in 0..self.slots.len() {
            let Some(h) = self.sequencer.held(slot) else {
                continue;
            };
            let m = self.mirror[slot];
            if !m.is_stored() {
                continue;
            }
            match h.state {
                // (Handed out already: only a leftover after a restart, erased below.)
                BatchState::Decided { outcome, .. }
                    if !h.delivered && !matches!(m.meta, MetaState::Decided(_)) =>
                {
                    return Some(Pending::StoreMeta(slot, MetaState::Decided(outcome)));
                }
                // Unstamped by a fence (or overtaken by a resend before it left): a stored
                // stamp that is not the one it will go out with must go first.
                BatchState::Buffered
                    if matches!(m.meta, MetaState::Stamped(s)
                        if self.sequencer.peek_send(h.partition, self.last_now) != Some((h.token, s))) =>
                {
                    return Some(Pending::EraseMeta(slot));
                }
                _ => {}
            }
        }
        let unstored = (0..self.slots.len())
            .filter_map(|slot| self.sequencer.held(slot).map(|h| (slot, h)))
            .filter(|(slot, h)| {
                h.sealed
                    && !matches!(h.state, BatchState::Decided { .. })
                    && !self.mirror[*slot].batch
                    && matches!(self.slots[*slot], SlotUse::Sealed { len } if len > 0)
            })
            .min_by_key(|(_, h)| h.order);
        if let Some((slot, _)) = unstored {
            return Some(Pending::StoreBatch(slot));
        }
        for slot in 0..self.slots.len() {
            if !self.mirror[slot].want_stamp {
                continue;
            }
            self.mirror[slot].want_stamp = false;
            // The stamp the batch goes out with now (a fence may have moved on since).
            let Some(h) = self.sequencer.held(slot) else {
                continue;
            };
            if self.mirror[slot].batch
                && matches!(h.state, BatchState::Buffered | BatchState::Stamped { .. })
                && let Some((token, stamp)) = self.sequencer.peek_send(h.partition, self.last_now)
                && token == h.token
                && self.mirror[slot].meta != MetaState::Stamped(stamp)
            {
                return Some(Pending::StoreMeta(slot, MetaState::Stamped(stamp)));
            }
        }
        for slot in 0..self.slots.len() {
            let Some(h) = self.sequencer.held(slot) else {
                continue;
            };
            let m = self.mirror[slot];
            let decided_stored = matches!(h.state, BatchState::Decided { .. })
                && matches!(m.meta, MetaState::Decided(_));
            let done = h.delivered && !h.state.is_outstanding() && self.handed_out != Some(h.token);
            if m.batch && (decided_stored || done) {
                return Some(Pending::EraseBatch(slot));
            }
            if done && m.meta != MetaState::Absent {
                return Some(Pending::EraseMeta(slot));
            }
            if done {
                self.release_if_erased(slot);
            }
        }
        None
    }

    // --- what the rest of the client asks of the mirror -------------------------------------
    // Every `durable` branch outside persisting and restoring is one of these calls, so a
    // client without a store passes through them unchanged.

    /// Batch `slot` (of ledger partition `index`) was just sealed: its header, stored in front
    /// of it, says where it belongs and where it stands in acceptance order.
    pub(super) fn mirror_sealed(&mut self, slot: usize, index: usize) {
        if self.durable
            && let (Some(h), Some(p)) = (
                self.sequencer.held(slot),
                self.metadata.partitions.get(index).copied(),
            )
        {
            let name = self.metadata.topics[usize::from(p.topic)].name.as_bytes();
            let info = &mut self.mirror[slot].info;
            info.topic = p.topic;
            info.topic_crc = wire::crc32c(name);
            info.partition = p.partition;
            info.records = h.records;
            info.order = h.order;
        }
    }

    /// Whether the batch `partition` sends next may leave with its stamp: the stamp must be
    /// durable before a request carrying it leaves. If it is not yet, a stored batch asks for
    /// it to be stored (see `next_persist`). Always, for a client without a store.
    pub(super) fn stamp_stored(&mut self, partition: PartitionIndex, now: Instant) -> bool {
        if !self.durable {
            return true;
        }
        let Some((token, stamp)) = self.sequencer.peek_send(partition, now) else {
            return false;
        };
        let m = &mut self.mirror[token.slot()];
        if m.meta != MetaState::Stamped(stamp) {
            if m.batch {
                m.want_stamp = true;
            }
            return false;
        }
        true
    }

    /// Whether the outcome of the batch in `slot` may be handed out: the store holds nothing
    /// of the batch, or holds its outcome (a restart then hands it out again rather than
    /// resend the batch).
    pub(super) fn outcome_stored(&self, slot: usize) -> bool {
        let m = &self.mirror[slot];
        !self.durable || !m.is_stored() || matches!(m.meta, MetaState::Decided(_))
    }

    /// `token`'s outcome is being handed out. A batch the store does not hold frees its slot
    /// now; a stored one stays until the next `poll_delivery`, so the application has
    /// recorded the outcome before the store forgets it.
    pub(super) fn mirror_handed_out(&mut self, token: BatchToken) {
        let slot = token.slot();
        let m = self.mirror[slot];
        if self.durable && !m.is_stored() && self.sequencer.release(token).is_ok() {
            self.mirror[slot] = Mirror::default();
        }
        if self.durable && m.is_stored() {
            self.handed_out = Some(token);
        }
    }

    /// Frees a delivered batch's slot once the store no longer holds it.
    fn release_if_erased(&mut self, slot: usize) {
        if let Some(h) = self.sequencer.held(slot)
            && self.handed_out != Some(h.token)
            && h.delivered
            && !h.state.is_outstanding()
            && !self.mirror[slot].is_stored()
            && self.sequencer.release(h.token).is_ok()
        {
            self.mirror[slot] = Mirror::default();
        }
    }
}
