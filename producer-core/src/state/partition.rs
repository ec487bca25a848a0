//! Per-partition sequence state under the current (producer id, epoch).

use super::sequence::Sequence;

/// What the producer knows about one partition's sequence. Reset to sequence 0 at every fence,
/// because the broker starts a new sequence space for a new epoch or producer id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PartitionLedger {
    /// The sequence the next fresh batch will start at.
    pub next_sequence: Sequence,
    /// Requests carrying a batch of this partition that are out and unanswered.
    pub in_flight: u8,
    /// A batch succeeded under the current identity: the broker has accepted our sequence
    /// state, so pipelining beyond one request is safe.
    pub acked_this_epoch: bool,
    /// Last sequence and offset the broker acknowledged (offset `None` after a duplicate
    /// answer that gave none).
    pub last_acked: Option<(Sequence, Option<i64>)>,
}

impl PartitionLedger {
    /// Hands out the sequence range of a fresh batch of `records` records.
    pub fn take_sequences(&mut self, records: u32) -> Sequence {
        let base = self.next_sequence;
        self.next_sequence = base.add(records);
        base
    }

    /// How many requests may be in flight now: one until the identity's first success.
    pub fn window(&self, max_in_flight: u8) -> u8 {
        if self.acked_this_epoch {
            max_in_flight
        } else {
            1
        }
    }

    /// Forgets everything tied to the old identity.
    pub fn reset(&mut self) {
        *self = PartitionLedger {
            in_flight: self.in_flight,
            ..PartitionLedger::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_opens_after_first_success() {
        let mut ledger = PartitionLedger::default();
        assert_eq!(ledger.window(5), 1);
        ledger.acked_this_epoch = true;
        assert_eq!(ledger.window(5), 5);
        ledger.reset();
        assert_eq!(ledger.window(5), 1);
        assert_eq!(ledger.next_sequence, Sequence::ZERO);
    }
}
