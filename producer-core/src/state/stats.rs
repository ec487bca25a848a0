//! Counters a gateway reports upstream, in the spirit of librdkafka's statistics.

use super::identity::{ProducerEpoch, ProducerId};
use super::outcome::OutcomeKind;
use super::sequence::Sequence;

/// Batches and records that reached one outcome kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OutcomeCount {
    /// Batches.
    pub batches: u64,
    /// Records in those batches.
    pub records: u64,
}

/// Producer-wide counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Counters {
    /// Current producer id, when one is held.
    pub producer_id: Option<ProducerId>,
    /// Current epoch, when an id is held.
    pub epoch: Option<ProducerEpoch>,
    /// Local epoch bumps completed.
    pub epoch_bumps: u64,
    /// Producer ids granted by InitProducerId.
    pub producer_ids: u64,
    /// Fences started.
    pub fences: u64,
    /// Fences completed that a broker's refusal caused or joined (not a deadline's or a
    /// restart's). Those in a row with no batch accepted between hold the sending back for a
    /// growing backoff, so a broker refusing every batch gets a trickle of epoch bumps.
    pub paced_fences: u64,
    /// Resends of a batch under the same stamp after a refused or lost attempt (a batch
    /// restamped after a fence counts as a fresh send).
    pub retries: u64,
    /// Outcomes `Persisted`.
    pub persisted: OutcomeCount,
    /// Outcomes `NotPersisted`.
    pub not_persisted: OutcomeCount,
    /// Outcomes `PossiblyPersisted`.
    pub possibly_persisted: OutcomeCount,
}

impl Counters {
    pub(crate) fn count(&mut self, kind: OutcomeKind, records: u32) {
        let c = match kind {
            OutcomeKind::Persisted => &mut self.persisted,
            OutcomeKind::NotPersisted => &mut self.not_persisted,
            OutcomeKind::PossiblyPersisted => &mut self.possibly_persisted,
        };
        c.batches += 1;
        c.records += u64::from(records);
    }
}

/// One partition's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PartitionCounters {
    /// Sequence the next fresh batch gets.
    pub next_sequence: Sequence,
    /// Last sequence the broker acknowledged under the current identity.
    pub acked_sequence: Option<Sequence>,
    /// Offset of the last acknowledged batch, when known.
    pub acked_offset: Option<i64>,
    /// Requests out for this partition.
    pub in_flight: u8,
    /// Batches held that have no outcome yet.
    pub pending: u16,
}
