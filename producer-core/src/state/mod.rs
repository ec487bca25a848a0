//! Producer state that survives connections: identity, sequence ledger, batch lifecycle,
//! cancel eligibility, error classification and fencing.
//!
//! Start at [`Sequencer`]; the cancel decision is [`cancel_decision`] in
//! [`eligibility`], the error policy is the table in [`mod@classify`], and the rules for
//! giving a batch up, which every path that decides an outcome uses, are in [`decide`].

pub mod batch;
pub mod classify;
pub mod config;
pub mod decide;
pub mod eligibility;
pub mod identity;
pub mod outcome;
mod pacing;
pub mod partition;
pub mod sequence;
pub mod sequencer;
pub mod stats;

pub use batch::{BatchState, BatchToken, PartitionIndex, Stamp};
pub use classify::{Attempt, Classification, Fence, Next, ProduceResult, classify};
pub use config::{Config, ConfigError, MAX_IN_FLIGHT_LIMIT};
pub use decide::Stored;
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
