//! The three-valued delivery outcome, the only thing a caller ever learns about a batch.

use super::identity::{FatalReason, FenceReason};
use crate::error_code::ErrorCode;

/// What is true about a batch's records in the partition's log. Exactly one is reported per
/// batch, and it is never revised: a later answer can only confirm it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Outcome {
    /// The broker acknowledged the batch. `offset` is its base offset, or `None` when the
    /// broker only said DUPLICATE_SEQUENCE_NUMBER (it holds the batch but did not say where).
    Persisted {
        /// Base offset of the batch in the partition, when the broker told it.
        offset: Option<i64>,
    },
    /// The records are certainly not in the log: never sent, or every attempt was refused.
    NotPersisted(NotPersistedReason),
    /// The records may be in the log, at most once; nobody can tell without reading it back.
    PossiblyPersisted(PossiblyPersistedReason),
}

impl Outcome {
    /// The outcome's kind, for counting.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Persisted { .. } => OutcomeKind::Persisted,
            Outcome::NotPersisted(_) => OutcomeKind::NotPersisted,
            Outcome::PossiblyPersisted(_) => OutcomeKind::PossiblyPersisted,
        }
    }
}

/// The outcome without its details.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OutcomeKind {
    /// See [`Outcome::Persisted`].
    Persisted,
    /// See [`Outcome::NotPersisted`].
    NotPersisted,
    /// See [`Outcome::PossiblyPersisted`].
    PossiblyPersisted,
}

/// Why a batch is certainly not in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NotPersistedReason {
    /// The deadline passed (or the caller cancelled) while no attempt could have been appended.
    Deadline,
    /// The broker refused the batch with a code retrying cannot fix (too large, invalid,
    /// not authorized...).
    Rejected(ErrorCode),
    /// The producer stopped for good before any attempt could have been appended.
    ProducerFatal(FatalReason),
}

/// Why a batch's fate is unknown. Each says which event made it unknowable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PossiblyPersistedReason {
    /// The deadline passed (or the caller cancelled) while an attempt may have been appended
    /// and no answer had come (`UnknownOutcome::FailAndFence`).
    Deadline,
    /// The producer fenced its epoch while an attempt of this batch may have been appended:
    /// resending it under the new epoch could write it twice, so it is given up.
    Fenced(FenceReason),
    /// The broker answered with a code that does not say whether it appended the batch.
    Unclassified(ErrorCode),
    /// The producer stopped for good while an attempt may have been appended.
    ProducerFatal(FatalReason),
    /// Restored after a restart with a stamp the broker may no longer deduplicate: its
    /// records are older than the producer-state lifetime allowed for
    /// (`producer.id.expiration.ms` on Kafka), so a resend could be appended twice and is
    /// not made.
    ProducerStateExpired,
}
