//! Producer state that survives connections: identity, sequence ledger, batch lifecycle,
//! cancel eligibility, error classification and fencing.
//!
//! Start at [`Sequencer`]; the cancel decision is [`cancel_decision`] (`eligibility.rs`), the
//! error policy is the table of [`classify()`] (`classify.rs`), and the rules for giving a
//! batch up, which every path that decides an outcome uses, are [`give_up`], [`stamp_ends`],
//! [`fatal_decision`] and [`restore_decision`] (`decide.rs`). The files are private; what
//! they decide is re-exported here, and `docs/design.md` says which file holds each rule.

mod batch;
mod classify;
mod config;
mod decide;
mod eligibility;
mod identity;
mod outcome;
mod pacing;
mod partition;
mod sequence;
mod sequencer;
mod stats;

pub use batch::{BatchState, BatchToken, PartitionIndex, Stamp};
pub use classify::{
    Attempt, Classification, Fence, InitProducerIdNext, Next, ProduceResult, classify,
    classify_init_producer_id, refuses_identity,
};
pub use config::{Config, ConfigError, MAX_IN_FLIGHT_LIMIT};
pub use decide::{
    GiveUp, StampEnd, Stored, answer_decision, fatal_decision, give_up, restore_decision,
    stamp_ends,
};
pub use eligibility::{
    BeforeNextSend, CancelDecision, UnknownOutcome, cancel_decision, expiry_decision,
};
pub use identity::{FatalReason, FenceReason, Identity, ProducerEpoch, ProducerId};
pub use outcome::{NotPersistedReason, Outcome, OutcomeKind, PossiblyPersistedReason};
pub use partition::PartitionLedger;
pub use sequence::Sequence;
pub use sequencer::{
    Delivery, EnqueueError, HeldBatch, RestoreError, Restored, SendPermit, Sequencer, TokenError,
};
pub use stats::{Counters, OutcomeCount, PartitionCounters};
