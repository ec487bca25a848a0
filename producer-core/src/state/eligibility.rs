//! Cancel eligibility: what may happen to a batch when its deadline passes or its caller
//! cancels. This is the one place that decides it (the outcome of a batch it fails is the one
//! rule of [`give_up`]); the table in `docs/design.md`, as code.
//!
//! | batch state | `Wait` | `FailAndFence` |
//! |---|---|---|
//! | `Buffered` (no sequence) | fail now, `NotPersisted` | fail now, `NotPersisted` |
//! | `Stamped`, no attempt maybe written | wait for the resend's answer | fail now, `NotPersisted`, then fence |
//! | `Stamped`, an attempt maybe written | wait for the resend's answer | fail now, `PossiblyPersisted`, then fence |
//! | `InFlight` | wait for the answer | fail now, `PossiblyPersisted`, then fence |
//! | `Decided` | already final | already final |
//!
//! A stamped batch that is given up leaves its sequence range unusable (the broker would see a
//! gap, or a later batch deduplicated against it), so every later batch of the partition is
//! stuck until the sequence state is reset: hence "then fence".
//!
//! The broker's memory of the producer has a lifetime too (see [`expiry_decision`]): a batch
//! that waits for a resend when its records grow older than the producer-state lifetime is
//! given up, under either policy, as `PossiblyPersisted(ProducerStateExpired)` if an attempt
//! may have been appended, since the resend could be appended a second time.

use super::batch::BatchState;
use super::decide::{GiveUp, StampEnd, give_up, stamp_ends};
use super::outcome::Outcome;

/// What to do with batches whose fate is unknown when their deadline passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UnknownOutcome {
    /// Keep waiting for an answer, however long (franz-go's default): outcomes are always
    /// certain, deadlines of sent batches are not honoured.
    Wait,
    /// Report `PossiblyPersisted` at the deadline and fence before sending more: deadlines are
    /// always honoured. The default for gateways, whose callers cannot wait forever.
    #[default]
    FailAndFence,
}

/// What must happen before the producer sends anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BeforeNextSend {
    /// Nothing: the sequence state is untouched.
    Nothing,
    /// Fence: drain the epoch, then bump it, resetting every partition's sequence.
    Fence,
}

/// The answer of [`cancel_decision`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CancelDecision {
    /// Report `outcome` now, and do `first` before the next send.
    Fail {
        /// The outcome to report now.
        outcome: Outcome,
        /// What must happen before anything else is sent.
        first: BeforeNextSend,
    },
    /// Keep the batch: an answer to its request, or to a resend, will decide it.
    Wait,
    /// Nothing to do: the batch already has its outcome.
    AlreadyDecided,
}

/// Decides what a deadline (or a cancel) does to a batch in `state` under `policy`; the
/// outcome of a batch it fails is [`give_up`]'s.
pub fn cancel_decision(state: &BatchState, policy: UnknownOutcome) -> CancelDecision {
    use CancelDecision::*;
    match (*state, policy) {
        (BatchState::Decided { .. }, _) => AlreadyDecided,
        (BatchState::Buffered, _) => Fail {
            outcome: give_up(false, GiveUp::Deadline),
            first: BeforeNextSend::Nothing,
        },
        (BatchState::Stamped { .. } | BatchState::InFlight { .. }, UnknownOutcome::Wait) => Wait,
        (BatchState::Stamped { maybe_written, .. }, UnknownOutcome::FailAndFence) => Fail {
            outcome: give_up(maybe_written, GiveUp::Deadline),
            first: BeforeNextSend::Fence,
        },
        // The request out may have been appended.
        (BatchState::InFlight { .. }, UnknownOutcome::FailAndFence) => Fail {
            outcome: give_up(true, GiveUp::Deadline),
            first: BeforeNextSend::Fence,
        },
    }
}

/// Decides what the end of the producer-state lifetime does to a batch in `state` (its
/// records' newest timestamp is older than `producer_state_ttl` by the wall clock): Kafka
/// forgets a producer `producer.id.expiration.ms` after the newest record timestamp it appended
/// for it, and then appends a resend as new data. A batch waiting to be resent after an
/// attempt that may have been appended is given up, whatever the policy (a resend could write
/// it twice); one that no attempt may have written is resent as new data, which is right
/// either way ([`stamp_ends`]). A batch in flight waits for its answer (or the loss of its
/// connection).
pub fn expiry_decision(state: &BatchState) -> CancelDecision {
    match *state {
        BatchState::Decided { .. } => CancelDecision::AlreadyDecided,
        BatchState::Stamped { maybe_written, .. } => {
            match stamp_ends(maybe_written, StampEnd::ProducerStateExpired) {
                Some(outcome) => CancelDecision::Fail {
                    outcome,
                    first: BeforeNextSend::Fence,
                },
                None => CancelDecision::Wait,
            }
        }
        BatchState::Buffered | BatchState::InFlight { .. } => CancelDecision::Wait,
    }
}
