//! What the application hands in and gets back at once: a [`ProducerRecord`], and for it a
//! [`Receipt`] or a [`SendError`].

use crate::state::BatchToken;
use crate::wire::RecordHeader;

/// A record to produce: the one record type of both transports.
///
/// Only the topic is required: `ProducerRecord { key: Some(k), ..ProducerRecord::value(t, v) }`
/// or `..Default::default()` fills the rest.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProducerRecord<'r> {
    /// Topic: one of those the client was built with.
    pub topic: &'r str,
    /// Force a partition; otherwise the key's murmur2 hash picks it, or, without a key, the
    /// sticky partitioner.
    pub partition: Option<i32>,
    /// Key.
    pub key: Option<&'r [u8]>,
    /// Value (`None` is a tombstone).
    pub value: Option<&'r [u8]>,
    /// Headers.
    pub headers: &'r [RecordHeader<'r>],
    /// Create time, ms since the Unix epoch. `None` lets the client stamp the wall clock it
    /// was told ([`Client::set_wall_clock`]; transport-std tells it the system clock), or
    /// leaves the record without a timestamp when it was told none (the core has no clock
    /// of its own).
    ///
    /// [`Client::set_wall_clock`]: super::Client::set_wall_clock
    pub timestamp: Option<i64>,
}

impl<'r> ProducerRecord<'r> {
    /// A record of `topic` with only a value, stamped with the wall clock.
    pub fn value(topic: &'r str, value: &'r [u8]) -> Self {
        ProducerRecord {
            topic,
            value: Some(value),
            ..Default::default()
        }
    }
}

/// Kafka's "no timestamp" (-1) on the wire, for a record the client could not stamp either.
pub(crate) const NO_TIMESTAMP: i64 = -1;

/// Where an accepted record went: its batch (whose outcome it shares) and its place in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Receipt {
    /// The batch holding the record.
    pub batch: BatchToken,
    /// The record's index in the batch: its offset is the batch's base offset plus this.
    pub offset_delta: u32,
    /// Topic index (in the client's topic list).
    pub topic: u8,
    /// Partition number.
    pub partition: i32,
}

/// Why a record was not accepted. None of these blocks: the caller decides what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SendError {
    /// The topic is not one the client was built with.
    UnknownTopic,
    /// The topic's partitions are not known yet: poll until metadata arrives.
    NoMetadata,
    /// The forced partition does not exist, or the partition table (`PARTITIONS`) is full.
    NoSuchPartition,
    /// The record cannot fit in a batch of `batch_bytes`.
    RecordTooLarge,
    /// Every batch slot is taken: wait for outcomes before sending more.
    Full,
    /// The producer stopped for good.
    Fatal,
    /// A durable-storage write failed (see [`Client::on_persist_failed`]): the client stops
    /// until it is rebuilt and restored from the storage.
    ///
    /// [`Client::on_persist_failed`]: super::Client::on_persist_failed
    Storage,
    /// The record's timestamp is older than `producer_state_ttl` by the wall clock: Kafka
    /// could forget the producer while the record is unresolved and append a resend of it
    /// twice. Give it a current timestamp (or set the device's clock).
    StaleTimestamp,
}

impl core::fmt::Display for SendError {
    /// What happened and what to do about it, for logs and error messages.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SendError::UnknownTopic => {
                "the topic is not one the producer was built with: add it to the topics"
            }
            SendError::NoMetadata => {
                "the topic's partitions are not known yet: drive the producer until metadata \
                 arrives, or give the record a later deadline"
            }
            SendError::NoSuchPartition => {
                "the partition does not exist in the topic, or the partition table \
                 (PARTITIONS) is full: pick an existing partition or raise PARTITIONS"
            }
            SendError::RecordTooLarge => {
                "the record does not fit in a batch of batch_bytes: raise batch_bytes or send \
                 a smaller record"
            }
            SendError::Full => {
                "every batch slot is taken: take outcomes (poll_delivery) before sending more, \
                 or raise BATCHES"
            }
            SendError::Fatal => {
                "the producer stopped for good (see its fatal reason): build a new one"
            }
            SendError::Storage => {
                "a durable-storage write failed and the producer stopped: rebuild it and \
                 restore from the storage"
            }
            SendError::StaleTimestamp => {
                "the record's timestamp is older than producer_state_ttl by the wall clock: \
                 give it a current timestamp, or set the device's clock"
            }
        })
    }
}
