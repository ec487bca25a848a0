//! The project's own hostile suite: a fake Kafka broker that misbehaves on purpose, and the
//! checks every case holds a producer to, whichever transport drives it.
//!
//! - [`broker`]: the broker (std threads, a `TcpListener` the caller binds, e.g. inside a
//!   [`crate::netns::NetNs`]) and its [`Misbehaviour`]s: bad frame lengths, truncated bodies,
//!   random bytes after valid headers, unknown and duplicated correlation ids, metadata with
//!   10,000 brokers, 100,000 partitions or negative ids, unknown and refusing error codes,
//!   answers for partitions never asked, slow-dribbled answers, a broker that never reads,
//!   one that closes on accept, HTTP instead of Kafka, a topic reported missing.
//! - [`answers`]: what it answers, encoded with producer-core's codec at the version asked.
//! - [`ledger`]: what it did with each record, and the check that no outcome is false.
//! - [`bounds`], [`verdict`]: the backoff schedules and the bounds on connections, requests
//!   and fences derived from the configuration, with their reasoning.
//! - [`tool`], [`tool_case`]: the `produce` tool run in a namespace of its own (exit,
//!   report, summary, peak RSS and CPU time, the kernel's count of `connect()` calls).
//! - [`embassy_case`]: the same cases (a subset) against transport-embassy on a TAP device.

pub mod answers;
pub mod bounds;
pub mod broker;
pub mod embassy_case;
pub mod ledger;
pub mod tool;
pub mod tool_case;
pub mod verdict;

pub use answers::Api;
pub use broker::{Counts, FakeBroker, Misbehaviour};
