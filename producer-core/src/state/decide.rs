//! Giving a batch up: the outcome of every batch decided without the broker's word on it (a
//! deadline, a failing answer, a fence, a fatal stop, a restart), by two rules written once.
//!
//! - [`give_up`]: a batch given up is `PossiblyPersisted` when an attempt of it may have been
//!   appended, and `NotPersisted` otherwise, with the reason of the event that gave it up.
//! - [`stamp_ends`]: when a batch's stamp can no longer be resent (a fence ended its epoch, or
//!   the broker may have forgotten the producer), a batch that an attempt may have appended is
//!   given up as `PossiblyPersisted`, since a resend could write it twice; one that no attempt
//!   may have appended loses nothing by being sent as new data, and is not given up.
//!
//! The decisions per batch state are built on them: the cancel and expiry tables
//! ([`cancel_decision`](super::cancel_decision), [`expiry_decision`](super::expiry_decision)),
//! what an answer decides ([`answer_decision`]), what a fatal stop decides
//! ([`fatal_decision`]) and what a restart decides ([`restore_decision`]); the fence applies
//! [`stamp_ends`] to every stamped batch when it completes. `docs/design.md` lists where each
//! decision lives.

use super::batch::{BatchState, Stamp};
use super::classify::{Attempt, Classification, Next};
use super::identity::{FatalReason, FenceReason, ProducerEpoch, ProducerId};
use super::outcome::{NotPersistedReason, Outcome, PossiblyPersistedReason};
use super::sequencer::Restored;
use crate::error_code::ErrorCode;

/// What gave a batch up, whatever its attempts did: see [`give_up`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GiveUp {
    /// Its deadline passed, or its caller cancelled it.
    Deadline,
    /// The broker answered with a code that fails it (the classification's [`Next::Fail`]).
    Failed(ErrorCode),
    /// The producer stopped for good.
    Fatal(FatalReason),
}

/// The outcome of a batch given up: `PossiblyPersisted` when an attempt of it may have been
/// appended (`maybe_written`, sticky across attempts, or a request carrying it is still out),
/// `NotPersisted` otherwise, each with the reason `why` gives.
pub fn give_up(maybe_written: bool, why: GiveUp) -> Outcome {
    if maybe_written {
        Outcome::PossiblyPersisted(match why {
            GiveUp::Deadline => PossiblyPersistedReason::Deadline,
            GiveUp::Failed(code) => PossiblyPersistedReason::Unclassified(code),
            GiveUp::Fatal(reason) => PossiblyPersistedReason::ProducerFatal(reason),
        })
    } else {
        Outcome::NotPersisted(match why {
            GiveUp::Deadline => NotPersistedReason::Deadline,
            GiveUp::Failed(code) => NotPersistedReason::Rejected(code),
            GiveUp::Fatal(reason) => NotPersistedReason::ProducerFatal(reason),
        })
    }
}

/// Why a batch's stamp can no longer be resent: see [`stamp_ends`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StampEnd {
    /// A fence ended the epoch it is stamped with (for a restart: the stamp is not the
    /// resumed identity's).
    Fenced(FenceReason),
    /// The broker may have forgotten the producer (its records are older than the
    /// producer-state lifetime): it would append a resend as new data.
    ProducerStateExpired,
}

/// What becomes of a stamped batch whose stamp can no longer be resent: given up as
/// `PossiblyPersisted` (`Some`) when an attempt may have appended it, since a resend could write
/// it twice; otherwise nothing of it is in the log and it is not given up (`None`): a fence
/// restamps it, and after an expiry it is resent as new data, which is right either way.
pub fn stamp_ends(maybe_written: bool, why: StampEnd) -> Option<Outcome> {
    if !maybe_written {
        return None;
    }
    Some(Outcome::PossiblyPersisted(match why {
        StampEnd::Fenced(reason) => PossiblyPersistedReason::Fenced(reason),
        StampEnd::ProducerStateExpired => PossiblyPersistedReason::ProducerStateExpired,
    }))
}

/// What an answer to a batch's request (or the loss of its connection), classified as
/// `class`, decides for the batch: its outcome, or `None` to resend it. `maybe_written` counts
/// this attempt too; `fatal` is set when the producer had stopped for good while the request
/// was out (then no resend will follow).
pub fn answer_decision(
    class: &Classification,
    maybe_written: bool,
    code: ErrorCode,
    fatal: Option<FatalReason>,
) -> Option<Outcome> {
    match (class.next, class.attempt) {
        (Next::Persisted, Attempt::Appended { offset }) => Some(Outcome::Persisted { offset }),
        (Next::Fail, _) => Some(give_up(maybe_written, GiveUp::Failed(code))),
        (Next::Retry, _) => fatal.map(|reason| give_up(maybe_written, GiveUp::Fatal(reason))),
        _ => None,
    }
}

/// What the producer stopping for good decides for a batch in `state`: its outcome, or `None`
/// when it has one already or a request carrying it is out (its answer, or the loss of its
/// connection, decides it: an answer in the same response as the fatal one is as definitive as
/// that one).
pub fn fatal_decision(state: &BatchState, reason: FatalReason) -> Option<Outcome> {
    match *state {
        BatchState::Decided { .. } | BatchState::InFlight { .. } => None,
        BatchState::Buffered => Some(give_up(false, GiveUp::Fatal(reason))),
        BatchState::Stamped { maybe_written, .. } => {
            Some(give_up(maybe_written, GiveUp::Fatal(reason)))
        }
    }
}

/// What durable storage held for a batch after a restart: the facts [`restore_decision`]
/// decides on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Stored {
    /// The batch, never stamped.
    Buffered,
    /// The batch and its durable stamp. `expired`: its newest record is older than the
    /// producer-state lifetime by the wall clock (the client judges that), so the broker may
    /// have forgotten the producer.
    Stamped {
        /// The stamp.
        stamp: Stamp,
        /// The broker may have forgotten the producer.
        expired: bool,
    },
    /// An outcome decided before the restart, not handed out yet.
    Decided(Outcome),
    /// Only the record of an outcome already handed out was left, its erasure pending.
    Delivered,
}

/// A restored stamped batch may have been appended: nothing tells whether its request had
/// left before the restart.
pub(crate) const RESTORED_MAYBE_WRITTEN: bool = true;

/// What a restart decides for a batch found as `stored`, under the identity `resumed` (the
/// newest stored stamp's, which [`Sequencer::resume`](super::Sequencer::resume) took back).
/// A stamped batch is resent with its stamp when the stamp is the resumed identity's and the
/// broker may still deduplicate it; otherwise its stamp ends ([`stamp_ends`]): expired, or
/// stamped under an older identity (which a store this client wrote never holds, since a
/// fence stores its decisions before any newer stamp).
pub fn restore_decision(stored: Stored, resumed: Option<(ProducerId, ProducerEpoch)>) -> Restored {
    match stored {
        Stored::Buffered => Restored::Buffered,
        Stored::Decided(outcome) => Restored::Decided {
            outcome,
            delivered: false,
        },
        Stored::Stamped { stamp, expired } => {
            let ended = if expired {
                Some(StampEnd::ProducerStateExpired)
            } else if resumed != Some((stamp.producer_id, stamp.epoch)) {
                Some(StampEnd::Fenced(FenceReason::Restarted))
            } else {
                None
            };
            match ended.map(|why| stamp_ends(RESTORED_MAYBE_WRITTEN, why)) {
                None => Restored::Stamped(stamp),
                Some(Some(outcome)) => Restored::Decided {
                    outcome,
                    delivered: false,
                },
                Some(None) => Restored::Buffered,
            }
        }
        // Never handed out again, only erased: the outcome is a placeholder.
        Stored::Delivered => Restored::Decided {
            outcome: Outcome::PossiblyPersisted(PossiblyPersistedReason::Fenced(
                FenceReason::Restarted,
            )),
            delivered: true,
        },
    }
}
