//! Who the producer is to the broker: producer id, epoch, and the lifecycle between them.

use crate::error_code::ErrorCode;

/// The broker-assigned producer id (`int64`). Stamped on every batch; the broker keeps
/// sequence state per (producer id, partition).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ProducerId(pub i64);

/// The producer epoch (`int16`). Bumping it (KIP-360) tells the broker to forget the old
/// sequence state and fences any request still carrying the old epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ProducerEpoch(pub i16);

impl ProducerEpoch {
    /// The next epoch, or `None` when the epoch is exhausted (`i16::MAX`): Kafka epochs do not
    /// wrap, so exhaustion means asking for a fresh producer id.
    pub fn bumped(self) -> Option<ProducerEpoch> {
        self.0.checked_add(1).map(ProducerEpoch)
    }
}

/// Why the producer had to fence: stop sending, drain the old epoch, and bump it (or get a new
/// producer id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FenceReason {
    /// A deadline fired on a batch whose sequence was already handed out
    /// (`UnknownOutcome::FailAndFence`): its sequence range can no longer be resent.
    DeadlineAfterStamp,
    /// The broker answered with this code for a batch, and the sequence state can no longer be
    /// trusted (gap, unknown producer, stale epoch, unclassifiable answer).
    Broker(ErrorCode),
    /// The producer restarted and resumed its identity only to resend what it had stamped
    /// before: the broker's next expected sequence of the other partitions is unknown, so
    /// everything else goes under a new producer id.
    Restarted,
}

/// Why the producer stopped for good. Every batch it still held was given an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FatalReason {
    /// The broker refused the idempotent write permission or the producer id request with this
    /// code (authorization, unsupported version): retrying cannot help.
    Broker(ErrorCode),
    /// SASL authentication failed: the broker refused the credentials, the listener does not
    /// enable the configured mechanism, or the broker could not prove it knows the password
    /// (SCRAM). Every broker of a cluster checks the same credentials, so the client stops
    /// dialling rather than retrying; the error says which setting to change.
    Authentication(crate::sasl::Error),
    /// The TLS handshake failed in a way retrying cannot fix (a certificate not trusted or
    /// not for the host, a client certificate refused, no TLS on the listener): see
    /// [`crate::tls`]. The client stops dialling; the failure says which setting to change.
    Tls(crate::tls::TlsFailure),
}

impl core::fmt::Display for FatalReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FatalReason::Broker(code) => write!(
                f,
                "the broker refused the producer with error code {} ({}): check the \
                 principal's IdempotentWrite permission and the broker's version",
                code.0,
                code.name().unwrap_or("unknown")
            ),
            FatalReason::Authentication(e) => write!(
                f,
                "authentication failed, the producer stopped dialling: {e} (the client's sasl \
                 setting)"
            ),
            FatalReason::Tls(failure) => write!(
                f,
                "the TLS handshake failed, the producer stopped dialling: {failure}"
            ),
        }
    }
}

/// The producer's lifecycle. Sends happen only in `Ready`; every other state says what must
/// happen before the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Identity {
    /// No producer id: one must be requested with InitProducerId (not before `retry_at`).
    NoId {
        /// Earliest instant of the next request (backoff after a failed one).
        retry_at: crate::time::Instant,
    },
    /// An InitProducerId request is out.
    RequestingId,
    /// Batches may be stamped with this id and epoch and sent.
    Ready {
        /// The producer id.
        id: ProducerId,
        /// The epoch.
        epoch: ProducerEpoch,
    },
    /// Nothing more may be sent with `epoch`; once no request of it can still be answered, the
    /// epoch is bumped (or a new id requested, when `new_id` or the epoch is exhausted) and
    /// every partition's sequence restarts at 0.
    Fencing {
        /// The producer id being fenced.
        id: ProducerId,
        /// The epoch being retired.
        epoch: ProducerEpoch,
        /// What started the fence.
        reason: FenceReason,
        /// The broker will not accept a bumped epoch for this id: get a fresh producer id.
        new_id: bool,
    },
    /// The producer cannot continue.
    Fatal(FatalReason),
}

impl Identity {
    /// The (id, epoch) batches are stamped with, when sending is allowed.
    pub fn ready(&self) -> Option<(ProducerId, ProducerEpoch)> {
        match *self {
            Identity::Ready { id, epoch } => Some((id, epoch)),
            _ => None,
        }
    }
}
