//! One attempt to accept a record, and what a refusal means.
//!
//! A record can be refused for a while (the topic's partitions are not known yet, or every
//! batch slot is taken) or for good. Both transports retry the first kind by driving their
//! connections until the deadline and report the second at once; the rule lives here so
//! they cannot drift apart. [`send_step`] returns a [`Poll`]: `Pending` means "drive the
//! connections, then call again"; how to wait is the caller's (a blocking poll of its
//! sockets, or an await).

use crate::capacity::Capacities;
use core::task::Poll;

use super::Error;
use crate::client::{Client, ProducerRecord, Receipt, SendError};
use crate::time::Instant;

/// Offers `record` (opening a batch tagged `tag`) to `client`, to be decided by `deadline`.
///
/// - `Ready(Ok)`: accepted.
/// - `Pending`: refused for now ([`SendError::NoMetadata`], or [`SendError::Full`] with
///   slots that free as the connections turn) and `deadline` is still ahead: drive the
///   connections and call again.
/// - `Ready(Err(`[`Error::Deadline`]`))`: refused for now, but the deadline has passed.
/// - `Ready(Err(`[`Error::Stopped`]`))`: the producer stopped for good, with its reason.
/// - `Ready(Err(`[`Error::Send`]`))`: refused for good, or (`durable`, every slot holding an
///   outcome waiting to be taken) [`SendError::Full`] until the application takes
///   outcomes: turning the connections would not free a slot.
pub fn send_step<S, C: Capacities>(
    client: &mut Client<S, C>,
    record: &ProducerRecord<'_>,
    tag: u64,
    deadline: Instant,
    now: Instant,
    durable: bool,
) -> Poll<Result<Receipt, Error>>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    match client.send_tagged(record, tag, deadline, now) {
        Ok(receipt) => Poll::Ready(Ok(receipt)),
        // With a durable store a slot frees only when its outcome is taken: the caller must
        // take outcomes first.
        Err(SendError::Full) if durable && client.delivery_ready() => {
            Poll::Ready(Err(Error::Send(SendError::Full)))
        }
        Err(e @ (SendError::NoMetadata | SendError::Full)) => {
            if now >= deadline {
                Poll::Ready(Err(Error::Deadline(e)))
            } else {
                Poll::Pending
            }
        }
        Err(SendError::Fatal) => Poll::Ready(Err(match client.sequencer().identity() {
            crate::state::Identity::Fatal(reason) => Error::Stopped(reason),
            _ => Error::Send(SendError::Fatal),
        })),
        Err(e) => Poll::Ready(Err(Error::Send(e))),
    }
}
