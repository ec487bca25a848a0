//! What both transports do the same way around the [`Client`](crate::client::Client), so that
//! each transport is only its sockets, its clock and its API.
//!
//! The client is sans-IO: it says what to send and is told what arrived and what time it is.
//! Between it and a transport's public API sit a few pieces of glue that do not depend on
//! how bytes move or how a caller waits, and that two transports would otherwise each write
//! in their own shape (and let drift apart):
//!
//! - `deliveries`: batch outcomes taken from the client, buffered (bounded by the queue the
//!   transport picks) and handed out one record at a time, in order.
//! - `send`: one attempt to accept a record, and which refusals mean "drive the connections
//!   and try again before the deadline" and which are final. It returns a
//!   [`Poll`](core::task::Poll), so a blocking caller polls its sockets and an async one
//!   awaits them, each its own way.
//! - `error`: the one [`Error`] a producer reports, whose messages say what to do.
//!
//! - `io` and [`turn`]: a connection as a non-blocking byte stream with its buffers, and an
//!   established connection's turn over it (frames in, requests out, partial writes kept).
//!   A transport brings the stream (its sockets), dials, resolves names and waits.
//!
//! Like the rest of the core: `no_std`, no allocation, caller-provided storage.

mod deliveries;
mod error;
mod io;
mod send;
pub mod turn;

pub use deliveries::{Deliveries, DeliveryQueue};
pub use error::Error;
pub use io::{Broken, ConnBuffers, Io};
pub use send::send_step;
