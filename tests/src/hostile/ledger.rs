//! What the fake broker did with each record, and the check that every outcome a producer
//! reports is true against it.
//!
//! The broker is the only judge of what reached "the log": a batch it answered with a clean
//! error code was not appended; a batch it read and then answered with garbage, a wrong
//! correlation id, answers for other partitions, or not at all, it counts as appended (the
//! producer cannot tell these apart from an append whose answer was lost, so claiming
//! `NotPersisted` for them would be a false outcome); a batch whose well-formed NONE answer
//! it wrote out whole is acknowledged, at the offset it gave.

use std::collections::HashMap;

/// What happened to one record (by value) at the broker, over every attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fate {
    /// Produce requests that carried it.
    pub received: u32,
    /// Some attempt may be in the log (appended, whatever the answer became).
    pub appended: bool,
    /// (partition, offset) of every clean NONE answer written out for it.
    pub acked: Vec<(i32, i64)>,
}

/// Record value -> its fate.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    fates: HashMap<Vec<u8>, Fate>,
}

impl Ledger {
    /// A produce request carried `value`; `appended` when the broker appends it (whatever it
    /// answers).
    pub fn received(&mut self, value: &[u8], appended: bool) {
        let fate = self.fates.entry(value.to_vec()).or_default();
        fate.received += 1;
        fate.appended |= appended;
    }

    /// A clean NONE answer giving `value` offset `offset` of `partition` was written out.
    pub fn acked(&mut self, value: &[u8], partition: i32, offset: i64) {
        let fate = self.fates.entry(value.to_vec()).or_default();
        fate.appended = true;
        fate.acked.push((partition, offset));
    }

    /// The fate of `value` (default: never received).
    pub fn fate(&self, value: &[u8]) -> Fate {
        self.fates.get(value).cloned().unwrap_or_default()
    }

    /// Records the broker received at least once.
    pub fn received_count(&self) -> usize {
        self.fates.values().filter(|f| f.received > 0).count()
    }
}

/// An outcome a producer reported for one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reported {
    /// `Persisted` at `offset` of `partition` (`offset` -1: unknown).
    Persisted {
        /// Partition.
        partition: i32,
        /// Offset, -1 when unknown.
        offset: i64,
    },
    /// `NotPersisted`.
    NotPersisted,
    /// `PossiblyPersisted`.
    PossiblyPersisted,
}

/// How many records got each outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Persisted.
    pub persisted: usize,
    /// Not persisted.
    pub not_persisted: usize,
    /// Possibly persisted.
    pub possibly_persisted: usize,
}

/// Checks every reported outcome against the ledger: `Persisted` only for a record the broker
/// acknowledged (at that partition and offset, when one is given), `NotPersisted` only for one
/// the broker never appended. `PossiblyPersisted` is always true. `values[i]` is record `i`'s
/// value, `outcomes[i]` its outcome. Returns the tally, or every false outcome found.
pub fn check_outcomes(
    ledger: &Ledger,
    values: &[Vec<u8>],
    outcomes: &[Reported],
) -> Result<Tally, String> {
    let mut tally = Tally::default();
    let mut false_outcomes = Vec::new();
    if values.len() != outcomes.len() {
        return Err(format!(
            "{} records but {} outcomes",
            values.len(),
            outcomes.len()
        ));
    }
    for (i, (value, outcome)) in values.iter().zip(outcomes).enumerate() {
        let fate = ledger.fate(value);
        match *outcome {
            Reported::Persisted { partition, offset } => {
                tally.persisted += 1;
                let matches = fate
                    .acked
                    .iter()
                    .any(|&(p, o)| p == partition && (offset < 0 || o == offset));
                if !matches {
                    false_outcomes.push(format!(
                        "record {i}: Persisted at {partition}/{offset}, but the broker's \
                         acknowledgements were {:?}",
                        fate.acked
                    ));
                }
            }
            Reported::NotPersisted => {
                tally.not_persisted += 1;
                if fate.appended {
                    false_outcomes.push(format!(
                        "record {i}: NotPersisted, but the broker appended it ({fate:?})"
                    ));
                }
            }
            Reported::PossiblyPersisted => tally.possibly_persisted += 1,
        }
    }
    if false_outcomes.is_empty() {
        Ok(tally)
    } else {
        Err(format!(
            "{} false outcomes: {}",
            false_outcomes.len(),
            false_outcomes[..false_outcomes.len().min(5)].join("; ")
        ))
    }
}
