//! Kafka batch sequence numbers.

/// A producer sequence number: `0..=i32::MAX`, counting records per partition under one
/// (producer id, epoch). It wraps from `i32::MAX` to 0 exactly as the broker's
/// `incrementSequence` does, so a long-lived producer keeps matching the broker's expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Sequence(i32);

impl Sequence {
    /// The first sequence of every (producer id, epoch).
    pub const ZERO: Sequence = Sequence(0);

    /// `None` for negative values, which Kafka reserves (-1 means "no sequence").
    pub const fn new(value: i32) -> Option<Sequence> {
        if value < 0 {
            None
        } else {
            Some(Sequence(value))
        }
    }

    /// The value as it goes on the wire.
    pub const fn get(self) -> i32 {
        self.0
    }

    /// The sequence `records` records later, wrapping past `i32::MAX` to 0.
    pub const fn add(self, records: u32) -> Sequence {
        // Arithmetic modulo 2^31, in 64 bits so it cannot overflow.
        let modulus = i32::MAX as i64 + 1;
        Sequence(((self.0 as i64 + records as i64) % modulus) as i32)
    }

    /// The last sequence of a batch of `records` records starting here (`records` ≥ 1).
    pub const fn last_of(self, records: u32) -> Sequence {
        self.add(records.saturating_sub(1))
    }
}
