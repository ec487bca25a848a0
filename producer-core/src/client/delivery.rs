//! Outcomes handed out: each batch's one [`ClientDelivery`], and per record through
//! [`ClientDelivery::records`]. With `durable`, an outcome leaves only once it is stored.

use super::accumulator::SlotUse;
use super::{Client, Receipt};
use crate::capacity::Capacities;
use crate::state::{BatchToken, Outcome};

/// A batch's outcome, for the records it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClientDelivery {
    /// The batch.
    pub batch: BatchToken,
    /// Topic index.
    pub topic: u8,
    /// Partition number.
    pub partition: i32,
    /// Records in the batch (receipts with `offset_delta` below this).
    pub records: u32,
    /// Their shared outcome.
    pub outcome: Outcome,
    /// The tag given with the batch's first record ([`Client::send_tagged`]); it survives a
    /// restart, so an application can tell which records a restored batch held.
    pub tag: u64,
    /// The batch was read back from durable storage after a restart.
    pub restored: bool,
}

impl ClientDelivery {
    /// The outcome of each record of the batch, in offset order: what an application that
    /// tracks records (not batches) hands on.
    pub fn records(&self) -> RecordDeliveries {
        RecordDeliveries {
            batch: *self,
            next: 0,
        }
    }
}

/// One record's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RecordDelivery {
    /// What `send` returned for it.
    pub receipt: Receipt,
    /// What is true of it.
    pub outcome: Outcome,
    /// Its offset, when the broker told the batch's base offset.
    pub offset: Option<i64>,
    /// Its batch's tag (see [`ClientDelivery::tag`]).
    pub batch_tag: u64,
    /// Its batch was restored after a restart.
    pub restored: bool,
}

/// The records of one [`ClientDelivery`], one [`RecordDelivery`] each. Holds the batch by
/// value, so a transport can keep it between calls while it hands records out one at a time.
#[derive(Clone, Copy, Debug)]
pub struct RecordDeliveries {
    batch: ClientDelivery,
    next: u32,
}

impl Iterator for RecordDeliveries {
    type Item = RecordDelivery;

    fn next(&mut self) -> Option<RecordDelivery> {
        let d = &self.batch;
        if self.next >= d.records {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let offset = match d.outcome {
            Outcome::Persisted { offset: Some(base) } => base.checked_add(i64::from(i)),
            _ => None,
        };
        Some(RecordDelivery {
            receipt: Receipt {
                batch: d.batch,
                offset_delta: i,
                topic: d.topic,
                partition: d.partition,
            },
            outcome: d.outcome,
            offset,
            batch_tag: d.tag,
            restored: d.restored,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.batch.records.saturating_sub(self.next) as usize;
        (left, Some(left))
    }
}

impl ExactSizeIterator for RecordDeliveries {}

impl<S, C: Capacities> Client<S, C>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// The next batch outcome. With `durable`, an outcome is handed out only once it is
    /// stored, and stays stored until the next call: record it (or act on it) before asking
    /// for the next one, and a restart in between hands it out again rather than lose it or
    /// resend its batch.
    pub fn poll_delivery(&mut self) -> Option<ClientDelivery> {
        if self.storage_failed {
            return None;
        }
        self.handed_out = None;
        if !self.delivery_ready() {
            return None;
        }
        let d = self.sequencer.poll_event()?;
        let slot = d.token.slot();
        self.slots[slot] = SlotUse::Free;
        let index = usize::from(d.partition.0);
        if self.open.get(index).copied().flatten() == Some(d.token) {
            self.open[index] = None;
        }
        let m = self.mirror[slot];
        self.mirror_handed_out(d.token);
        let p = self.metadata.partitions.get(index).copied();
        Some(ClientDelivery {
            batch: d.token,
            topic: p.map_or(0, |p| p.topic),
            partition: p.map_or(-1, |p| p.partition),
            records: d.records,
            outcome: d.outcome,
            tag: m.info.tag,
            restored: m.restored,
        })
    }

    /// Whether [`Client::poll_delivery`] would hand out an outcome now.
    pub fn delivery_ready(&self) -> bool {
        if self.storage_failed {
            return false;
        }
        let Some(token) = self.sequencer.peek_event() else {
            return false;
        };
        self.outcome_stored(token.slot())
    }
}
