//! What the application hands in and gets back at once: a [`ProducerRecord`], and for it a
//! [`Receipt`] or a [`SendError`].

use crate::state::BatchToken;
use crate::wire::RecordHeader;

/// A record to produce.
#[derive(Clone, Copy, Debug)]
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
    /// Create time, ms since the Unix epoch. [`NO_TIMESTAMP`] lets the client stamp the wall
    /// clock it was told ([`Client::set_wall_clock`]), or leaves the record without a
    /// timestamp when it was told none (the core has no clock of its own).
    ///
    /// [`Client::set_wall_clock`]: super::Client::set_wall_clock
    pub timestamp: i64,
}

/// A record timestamp that asks the client to stamp the wall clock (Kafka's "no timestamp",
/// -1, when the client does not know it either).
pub const NO_TIMESTAMP: i64 = -1;

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
