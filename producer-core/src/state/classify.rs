//! What one produce attempt's result means for the batch and for the producer.
//!
//! This is the whole error policy, in one table. Each row says what the attempt did to the log
//! (`attempt`), what happens to the batch next, whether the producer must fence (bump the epoch,
//! or get a new producer id) and whether metadata must be refreshed. A batch retried with its
//! stamp is resent only once nothing else of its partition is in flight, one request at a time,
//! so that retries reach the broker in sequence order; that holds for every resend (a restored
//! stamped batch's too), so no row says it: [`Sequencer::next_send`](super::Sequencer::next_send)
//! applies it.
//!
//! | result | attempt | batch | fence | metadata |
//! |---|---|---|---|---|
//! | 0 NONE | appended, offset | persisted | – | – |
//! | 46 DUPLICATE_SEQUENCE_NUMBER | appended, offset unknown | persisted | – | – |
//! | 5 LEADER_NOT_AVAILABLE, 74 FENCED_LEADER_EPOCH, 75 UNKNOWN_LEADER_EPOCH | not appended | retry | – | yes |
//! | 2 CORRUPT_MESSAGE, 19 NOT_ENOUGH_REPLICAS | not appended | retry | – | – |
//! | 7 REQUEST_TIMED_OUT, 20 NOT_ENOUGH_REPLICAS_AFTER_APPEND | maybe appended | retry | – | – |
//! | 3 UNKNOWN_TOPIC_OR_PARTITION, 6 NOT_LEADER_OR_FOLLOWER, 13 NETWORK_EXCEPTION, 56 KAFKA_STORAGE_ERROR | maybe appended | retry | – | yes |
//! | 10 MESSAGE_TOO_LARGE, 17, 18, 21, 29, 32, 35, 43, 87 (invalid or refused batch) | not appended | fail | bump epoch | – |
//! | 45 OUT_OF_ORDER_SEQUENCE_NUMBER | not appended | resend after fence | bump epoch | – |
//! | 47 INVALID_PRODUCER_EPOCH, 49 INVALID_PRODUCER_ID_MAPPING, 59 UNKNOWN_PRODUCER_ID, 90 PRODUCER_FENCED | not appended | resend after fence | new producer id | – |
//! | 31 CLUSTER_AUTHORIZATION_FAILED, 53 TRANSACTIONAL_ID_AUTHORIZATION_FAILED | not appended | fail | producer fatal | – |
//! | any other code | maybe appended | fail | bump epoch | yes |
//! | connection lost before the request was written | not appended | retry | – | yes |
//! | connection lost after (part of) it was written | maybe appended | retry | – | yes |
//!
//! "Fail" gives `NotPersisted` when no attempt of the batch may have been appended, and
//! `PossiblyPersisted` otherwise ([`give_up`](super::decide::give_up)): the "maybe appended"
//! mark is sticky across attempts. A batch resent after a fence is restamped under the new
//! epoch only if no attempt may have been appended; otherwise it is given up as
//! `PossiblyPersisted` ([`stamp_ends`](super::decide::stamp_ends)).
//!
//! Where the peers differ, we take the safest answer and say why:
//! - 10/18/87 and friends leave a hole in the sequence. The Java client renumbers the later
//!   in-flight batches in place; we bump the epoch instead, which resets every partition to
//!   sequence 0 with one mechanism we already need, at the cost of one epoch per refused batch.
//! - 45: librdkafka treats an unexplained gap as fatal unless gapless delivery is off; Java
//!   (KIP-360) bumps the epoch. The refused batch was not appended, so bumping and resending it
//!   under the new epoch loses and duplicates nothing; we do that.
//! - 59 and 90: Kafka 2.5 and later never answer 59 on Produce (a producer id they hold no
//!   state for may send any sequence); older brokers and tansu do, and tansu also rejects a
//!   locally bumped epoch (90) and answers 59 for ids it did not issue. Java bumps the epoch
//!   locally for 59; here a bump would cost a round trip and then still need InitProducerId on
//!   the brokers that send it, and a fresh producer id is correct on every broker, so we take
//!   it directly.
//! - 47 on an idempotent (non-transactional) producer means another epoch owns the id; only a
//!   new id gets us out. franz-go and librdkafka do the same.
//! - 90 says more than "not this attempt": the broker never accepted that epoch, so no batch
//!   stamped with it is in the log ([`refuses_identity`]); they take fresh stamps under the
//!   new id instead of being given up.
//! - Unknown codes: Java fails the batch as an unknown server error and librdkafka as a
//!   permanent error; neither can know it was not appended, so we report `PossiblyPersisted` and
//!   bump the epoch because the sequence state is no longer known.
//! - 7, 13, 20, 56 arrive after the leader may have written the batch; a retry with the same
//!   sequence is deduplicated by the broker, so retrying is safe and keeps the batch's chance
//!   of a certain outcome.
//! - 6 and 3 also come after the append on Kafka (`docs/kafka-broker-notes.md`): a produce
//!   request waiting for its in-sync replicas is answered NOT_LEADER_OR_FOLLOWER when its
//!   partition's leadership moves during the wait (a controlled shutdown, a preferred-leader
//!   election), and the new leader keeps the batch if it had fetched it, committed or about to
//!   be; UNKNOWN_TOPIC_OR_PARTITION when the partition goes from the broker during the wait.
//!   Before the append they mean the request reached the wrong broker, and the two cases
//!   answer alike, so both are "maybe appended". The Java client and librdkafka retry both
//!   after a metadata refresh, as here; treating them as "not appended" would let a deadline
//!   report the batch `NotPersisted`, or a fence restamp it and write it a second time, while
//!   it is in the log. The new leader answers the retry, same stamp, with the original
//!   offsets.
//! - 5, 74 and 75 are never sent on Produce by Kafka 4 (its Produce has no leader epoch) and
//!   only before the append by other brokers; 19 is checked before the append (only this
//!   attempt's, so an earlier attempt's mark stays).

use crate::error_code::ErrorCode;

/// What became of one attempt to deliver a batch, as the transport saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProduceResult {
    /// The broker answered for this batch's partition.
    Answered {
        /// The partition's error code.
        error: ErrorCode,
        /// The base offset the broker reported (-1 when none).
        base_offset: i64,
    },
    /// The request never left: the connection failed, or was abandoned, before any byte of it
    /// was written to the socket.
    NotWritten,
    /// The connection failed, or the request was abandoned, after some or all of it was written,
    /// and no answer came. The broker may have appended it.
    LostAfterWrite,
}

/// What one attempt did to the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Attempt {
    /// The broker holds the batch.
    Appended {
        /// Its base offset, when the broker said.
        offset: Option<i64>,
    },
    /// This attempt certainly did not append it.
    NotAppended,
    /// This attempt may have appended it.
    MaybeAppended,
}

/// What happens to the batch after the attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Next {
    /// It is persisted.
    Persisted,
    /// Send it again: with the same stamp when no fence is required, else restamped (or given
    /// up, if an attempt may have been appended) once the fence completes.
    Retry,
    /// Give it up now.
    Fail,
}

/// What the producer must do before it sends again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Fence {
    /// Nothing: the sequence state is intact.
    None,
    /// Drain the epoch, bump it and restart every partition at sequence 0.
    BumpEpoch,
    /// Drain the epoch and get a fresh producer id.
    NewProducerId,
    /// Stop for good.
    Fatal,
}

/// The table row for one result. See the module documentation for the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Classification {
    /// What the attempt did to the log.
    pub attempt: Attempt,
    /// What happens to the batch.
    pub next: Next,
    /// What the producer must do before sending again.
    pub fence: Fence,
    /// The partition's leader may have moved: refresh metadata before resending.
    pub refresh_metadata: bool,
}

impl Classification {
    const fn row(attempt: Attempt, next: Next, fence: Fence, refresh_metadata: bool) -> Self {
        Classification {
            attempt,
            next,
            fence,
            refresh_metadata,
        }
    }
}

/// Classifies one produce attempt's result. The single source of the error policy.
pub fn classify(result: ProduceResult) -> Classification {
    use Attempt::*;
    use Classification as C;
    let (error, base_offset) = match result {
        ProduceResult::NotWritten => return C::row(NotAppended, Next::Retry, Fence::None, true),
        ProduceResult::LostAfterWrite => {
            return C::row(MaybeAppended, Next::Retry, Fence::None, true);
        }
        ProduceResult::Answered { error, base_offset } => (error, base_offset),
    };
    let offset = if base_offset >= 0 {
        Some(base_offset)
    } else {
        None
    };
    match error {
        ErrorCode::NONE => C::row(Appended { offset }, Next::Persisted, Fence::None, false),
        // tansu answers an exact retry with 46 and offset -1; the batch is in the log.
        ErrorCode::DUPLICATE_SEQUENCE_NUMBER => {
            C::row(Appended { offset }, Next::Persisted, Fence::None, false)
        }
        ErrorCode::LEADER_NOT_AVAILABLE
        | ErrorCode::FENCED_LEADER_EPOCH
        | ErrorCode::UNKNOWN_LEADER_EPOCH => C::row(NotAppended, Next::Retry, Fence::None, true),
        ErrorCode::CORRUPT_MESSAGE | ErrorCode::NOT_ENOUGH_REPLICAS => {
            C::row(NotAppended, Next::Retry, Fence::None, false)
        }
        ErrorCode::REQUEST_TIMED_OUT | ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND => {
            C::row(MaybeAppended, Next::Retry, Fence::None, false)
        }
        ErrorCode::UNKNOWN_TOPIC_OR_PARTITION
        | ErrorCode::NOT_LEADER_OR_FOLLOWER
        | ErrorCode::NETWORK_EXCEPTION
        | ErrorCode::KAFKA_STORAGE_ERROR => C::row(MaybeAppended, Next::Retry, Fence::None, true),
        ErrorCode::MESSAGE_TOO_LARGE
        | ErrorCode::INVALID_TOPIC_EXCEPTION
        | ErrorCode::RECORD_LIST_TOO_LARGE
        | ErrorCode::INVALID_REQUIRED_ACKS
        | ErrorCode::TOPIC_AUTHORIZATION_FAILED
        | ErrorCode::INVALID_TIMESTAMP
        | ErrorCode::UNSUPPORTED_VERSION
        | ErrorCode::UNSUPPORTED_FOR_MESSAGE_FORMAT
        | ErrorCode::INVALID_RECORD => C::row(NotAppended, Next::Fail, Fence::BumpEpoch, false),
        ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER => {
            C::row(NotAppended, Next::Retry, Fence::BumpEpoch, false)
        }
        ErrorCode::INVALID_PRODUCER_EPOCH
        | ErrorCode::INVALID_PRODUCER_ID_MAPPING
        | ErrorCode::UNKNOWN_PRODUCER_ID
        | ErrorCode::PRODUCER_FENCED => {
            C::row(NotAppended, Next::Retry, Fence::NewProducerId, false)
        }
        ErrorCode::CLUSTER_AUTHORIZATION_FAILED
        | ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED => {
            C::row(NotAppended, Next::Fail, Fence::Fatal, false)
        }
        _ => C::row(MaybeAppended, Next::Fail, Fence::BumpEpoch, true),
    }
}

/// The answer says the broker never accepted the batch's producer epoch at all, so no attempt
/// of any batch stamped with that producer id and epoch can be in its log: PRODUCER_FENCED
/// (90). Kafka never sends it on Produce to a producer without a transactional id (it
/// answers a stale epoch with 47, docs/kafka-broker-notes.md); the brokers that do (tansu)
/// send it for an epoch other than the one they issued, which is how they refuse a local
/// epoch bump. Such batches may then take a fresh stamp under the new producer id, rather
/// than be given up as possibly persisted: a gateway that restarted, resumed its identity
/// and bumped it before the broker's refusal reached it loses nothing.
pub fn refuses_identity(error: ErrorCode) -> bool {
    error == ErrorCode::PRODUCER_FENCED
}

/// What to do after an InitProducerId answer that did not grant an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InitProducerIdNext {
    /// Ask again after the retry backoff. Nothing is at stake while no id is held: buffered
    /// batches keep their deadlines, so an unknown code is retried rather than made fatal.
    Retry,
    /// The cluster will never grant an id to this client: stop.
    Fatal,
}

/// Classifies an InitProducerId error code (`None` = the connection was lost first).
pub fn classify_init_producer_id(error: Option<ErrorCode>) -> InitProducerIdNext {
    match error {
        Some(
            ErrorCode::CLUSTER_AUTHORIZATION_FAILED
            | ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            | ErrorCode::UNSUPPORTED_VERSION,
        ) => InitProducerIdNext::Fatal,
        _ => InitProducerIdNext::Retry,
    }
}
