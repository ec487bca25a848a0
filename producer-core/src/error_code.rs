//! Kafka protocol error codes, as a transparent number: brokers send codes this build has never
//! heard of, and those must flow through classification as values, not be rejected by a decoder.

/// A Kafka error code as it appears on the wire (`int16`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ErrorCode(pub i16);

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal,)*) => {
        impl ErrorCode {
            $( $(#[$doc])* pub const $name: ErrorCode = ErrorCode($value); )*

            /// The protocol's name for the code, or `None` for codes this build does not know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($name)), )*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    /// The server hit an error it could not map to a code.
    UNKNOWN_SERVER_ERROR = -1,
    /// Success.
    NONE = 0,
    /// The message failed its CRC check or is otherwise corrupt on arrival.
    CORRUPT_MESSAGE = 2,
    /// The broker does not host this topic-partition (yet, or any more).
    UNKNOWN_TOPIC_OR_PARTITION = 3,
    /// The partition is between leaders.
    LEADER_NOT_AVAILABLE = 5,
    /// The broker is not the partition's leader.
    NOT_LEADER_OR_FOLLOWER = 6,
    /// The leader appended the batch but replication did not finish in time.
    REQUEST_TIMED_OUT = 7,
    /// The batch is larger than the broker or topic accepts.
    MESSAGE_TOO_LARGE = 10,
    /// The broker hit a network problem talking to another broker.
    NETWORK_EXCEPTION = 13,
    /// The coordinator is loading state.
    COORDINATOR_LOAD_IN_PROGRESS = 14,
    /// No coordinator is available.
    COORDINATOR_NOT_AVAILABLE = 15,
    /// The broker is not the coordinator.
    NOT_COORDINATOR = 16,
    /// The topic name is invalid.
    INVALID_TOPIC_EXCEPTION = 17,
    /// The request's record set exceeds the broker's limit.
    RECORD_LIST_TOO_LARGE = 18,
    /// Too few in-sync replicas; checked before appending.
    NOT_ENOUGH_REPLICAS = 19,
    /// Too few in-sync replicas; found after appending to the leader.
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = 20,
    /// The acks value is invalid.
    INVALID_REQUIRED_ACKS = 21,
    /// The client may not write to the topic.
    TOPIC_AUTHORIZATION_FAILED = 29,
    /// The client may not perform a cluster action (idempotent write).
    CLUSTER_AUTHORIZATION_FAILED = 31,
    /// A record timestamp is out of the accepted range.
    INVALID_TIMESTAMP = 32,
    /// The listener does not enable the SASL mechanism the handshake named.
    UNSUPPORTED_SASL_MECHANISM = 33,
    /// A SASL request came out of turn (a handshake after authentication, say).
    ILLEGAL_SASL_STATE = 34,
    /// The broker does not support this API version.
    UNSUPPORTED_VERSION = 35,
    /// The message format is not supported by the topic.
    UNSUPPORTED_FOR_MESSAGE_FORMAT = 43,
    /// The batch's sequence is not the next the broker expects.
    OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
    /// The batch duplicates one the broker already appended.
    DUPLICATE_SEQUENCE_NUMBER = 46,
    /// The producer epoch is not the broker's current one.
    INVALID_PRODUCER_EPOCH = 47,
    /// The producer id does not match the transactional id's.
    INVALID_PRODUCER_ID_MAPPING = 49,
    /// A transaction is in progress for this transactional id.
    CONCURRENT_TRANSACTIONS = 51,
    /// The client may not use this transactional id.
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53,
    /// The log directory holding the partition is offline.
    KAFKA_STORAGE_ERROR = 56,
    /// The broker refused the SASL credentials.
    SASL_AUTHENTICATION_FAILED = 58,
    /// The broker has no state for the producer id.
    UNKNOWN_PRODUCER_ID = 59,
    /// The leader epoch in the request is older than the broker's.
    FENCED_LEADER_EPOCH = 74,
    /// The leader epoch in the request is newer than the broker's.
    UNKNOWN_LEADER_EPOCH = 75,
    /// A record failed broker-side validation.
    INVALID_RECORD = 87,
    /// Another producer with a newer epoch has taken over this producer id.
    PRODUCER_FENCED = 90,
}
