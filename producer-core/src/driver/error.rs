//! Why a producer could not be built or a record not accepted: one vocabulary for every
//! transport, each message saying what to do. A transport with failures of its own (a host's
//! operating system) wraps this in its error and takes these messages from here.

use core::fmt;

use crate::client::{ClientConfigError, RestoreError, SendError};
use crate::state::FatalReason;

/// Why the producer could not be built or a record not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// The configuration is refused; the message says what to change.
    Config(ClientConfigError),
    /// The transport's request buffer (`TX` of an embassy producer's connection buffers)
    /// cannot hold a request with one batch of `batch_bytes`: raise it or lower
    /// `batch_bytes`.
    RequestBuffer {
        /// The buffer's size as given.
        given: usize,
        /// The least size that works with this `batch_bytes`.
        needed: usize,
    },
    /// Fewer connection buffers than broker connections (the broker capacity): give one per
    /// connection.
    ConnectionBuffers {
        /// Buffers given.
        given: usize,
        /// The broker capacity.
        needed: usize,
    },
    /// A record was refused.
    Send(SendError),
    /// The producer stopped for good, for this reason (an authentication failure says which
    /// SASL setting to change): records are refused, and those it held were decided.
    Stopped(FatalReason),
    /// The deadline passed before the record could be accepted (no metadata yet, or every
    /// batch slot stayed taken).
    Deadline(SendError),
    /// The durable store holds state this producer cannot take back (other topics, smaller
    /// capacities); the message says what to change.
    Restore(RestoreError),
    /// The durable store failed (reading at restore, or a write, after which the producer
    /// stops: records are refused with `Send(SendError::Storage)`). Reset, and restore.
    Storage,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => write!(f, "bad configuration: {e}"),
            Error::RequestBuffer { given, needed } => write!(
                f,
                "connection buffers' TX is {given} bytes but a request with one full batch \
                 needs {needed}: raise TX or lower batch_bytes"
            ),
            Error::ConnectionBuffers { given, needed } => write!(
                f,
                "{given} connection buffers for {needed} broker connections: give one per \
                 connection (the broker capacity)"
            ),
            Error::Send(e) => write!(f, "record refused: {e}"),
            Error::Stopped(reason) => write!(f, "the producer stopped: {reason}"),
            Error::Deadline(e) => {
                write!(f, "deadline passed before the record was accepted: {e}")
            }
            Error::Restore(e) => write!(f, "cannot restore the durable state: {e}"),
            Error::Storage => f.write_str("the durable store failed"),
        }
    }
}

impl core::error::Error for Error {}
