//! The core of an idempotent Kafka producer for microcontrollers and hosts alike: `no_std`,
//! no allocator, no clock, no sockets.
//!
//! The problem it exists for: a caller's deadline fires while a produce request's outcome is
//! unknown. It answers with a truthful three-valued [`Outcome`](state::Outcome) on time and
//! never corrupts the sequence state the broker deduplicates with.
//!
//! - [`state`]: producer identity, per-partition sequence ledger, cancel eligibility, error
//!   classification and fencing, all in the [`Sequencer`](state::Sequencer).
//! - [`wire`]: the sans-IO Kafka codec.
//! - [`sasl`]: SASL authentication, sans-IO like the codec: PLAIN and OAUTHBEARER with
//!   feature `sasl`, SCRAM-SHA-256/512 with `sasl-scram` too. Without `sasl` only its
//!   [`Error`](sasl::Error) is left (a stored outcome may name it), and the client has no
//!   authentication step and keeps no credentials, so a firmware that does not authenticate
//!   pays nothing for it.
//! - [`tls`]: what a failed TLS handshake means ([`TlsFailure`](tls::TlsFailure): fatal, and
//!   which setting to change). TLS itself is the transports', below the driver's byte
//!   stream.
//! - [`client`]: the sans-IO producer client both transports drive: connections, metadata,
//!   the record accumulator, routing and timers.
//! - [`driver`]: what both transports share around the client: delivery buffering, the
//!   send step, the error type.
//! - [`capacity`]: the four capacities a user chooses (topics, partitions, batches,
//!   brokers) as one type, and the storage behind them.
//! - [`time`]: time as an input.
//! - [`backoff`]: the one rule every retry waits by (exponential, jittered, capped).
//! - `flash` (feature `flash`): the durable store that lets a producer survive power cuts
//!   without losing or duplicating a batch (see `client/durable.rs`).
//!
//! Logging goes through `defmt` (feature `defmt`) or `log` (feature `log`); nothing logs by
//! default.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// Nothing from the network may panic: outside tests, no unwrap or expect at all.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[macro_use]
mod fmt;

pub mod backoff;
pub mod capacity;
pub mod client;
pub mod driver;
pub mod error_code;
#[cfg(feature = "flash")]
pub mod flash;
pub mod sasl;
pub mod state;
pub mod time;
pub mod tls;
pub mod wire;

pub use error_code::ErrorCode;
