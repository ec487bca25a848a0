//! The sans-IO producer client both transports drive: bootstrap, ApiVersions negotiation per
//! connection, Metadata, InitProducerId, a bounded record accumulator in caller-provided
//! storage, routing of batches to leaders with pipelined requests, request timeouts and
//! per-record deadlines. Time and bytes are inputs; connections to open or close, bytes to
//! transmit, the next instant to be polled and delivery outcomes are outputs. Every decision
//! about a batch's fate stays in the [`Sequencer`].
//!
//! A transport's loop, in calls:
//!
//! 1. [`Client::poll`] with the current time; it returns when it next needs polling.
//! 2. [`Client::poll_connect`]: open these connections, then report
//!    [`Client::on_connected`] or [`Client::on_connection_lost`].
//! 3. [`Client::poll_transmit`] per connected socket: write every byte it returns before
//!    asking again.
//! 4. Received bytes go through a [`FrameDecoder`](crate::wire::FrameDecoder); each complete
//!    frame to [`Client::on_frame`].
//! 5. [`Client::poll_close`]: close these sockets (a request timed out), then report
//!    [`Client::on_connection_lost`].
//! 6. [`Client::poll_delivery`] yields each batch's one outcome.

pub mod config;
pub mod connection;
mod dial;
pub mod durable;
pub mod metadata;
mod metadata_answer;
pub mod partitioner;

use core::time::Duration;

use heapless::{String, Vec};

pub use config::{ClientConfig, ClientConfigError, MAX_REQUESTS_PER_CONNECTION};
pub use connection::{ConnId, ConnState, Target};
pub use metadata::{Broker, Endpoint, Metadata, Partition, Topic};
pub use partitioner::{StickyPartitioner, partition_for_key};

pub use durable::{PersistOp, RestoreError, RestoreOptions, RestoreSummary, StorageKey};

use connection::{Connection, Pending, PendingKind};
use dial::Dials;
use durable::{BATCH_HEADER, META_LEN, MetaState, Mirror};

use crate::backoff::{Backoff, Jitter};

use crate::error_code::ErrorCode;
use crate::state::{
    Attempt, BatchState, BatchToken, Counters, EnqueueError, Identity, Outcome, PartitionIndex,
    ProduceResult, ProducerEpoch, ProducerId, Restored, Sequencer, Stored, TokenError,
};
use crate::time::Instant;
use crate::wire::{
    self, ApiVersionsRequest, ApiVersionsResponse, Attributes, BatchBuilder, InitProducerIdRequest,
    InitProducerIdResponse, List, MetadataRequest, MetadataRequestTopic, OpenBatch,
    ProducePartition, ProduceRequest, ProduceResponse, ProduceTopic, RecordHeader, ResponseHeader,
    record::Record, record_batch::RECORD_BATCH_OVERHEAD,
};

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
    Storage,
    /// The record's timestamp is older than `producer_state_ttl` by the wall clock: Kafka
    /// could forget the producer while the record is unresolved and append a resend of it
    /// twice. Give it a current timestamp (or set the device's clock).
    StaleTimestamp,
}

/// A batch's outcome, for the records it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClientDelivery {
    /// The batch.
    pub batch: BatchToken,
    /// Topic index.
    pub topic: u8,
    /// Partition number.
    pub partition: i32,
    /// Records in the batch (receipts with `offset_delta` below this).
    pub records: u32,
    /// Their shared outcome.
    pub outcome: Outcome,
    /// The tag given with the batch's first record ([`Client::send_tagged`]); it survives a
    /// restart, so an application can tell which records a restored batch held.
    pub tag: u64,
    /// The batch was read back from durable storage after a restart.
    pub restored: bool,
}

impl ClientDelivery {
    /// The outcome of each record of the batch, in offset order: what an application that
    /// tracks records (not batches) hands on.
    pub fn records(&self) -> RecordDeliveries {
        RecordDeliveries {
            batch: *self,
            next: 0,
        }
    }
}

/// One record's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RecordDelivery {
    /// What `send` returned for it.
    pub receipt: Receipt,
    /// What is true of it.
    pub outcome: Outcome,
    /// Its offset, when the broker told the batch's base offset.
    pub offset: Option<i64>,
    /// Its batch's tag (see [`ClientDelivery::tag`]).
    pub batch_tag: u64,
    /// Its batch was restored after a restart.
    pub restored: bool,
}

/// The records of one [`ClientDelivery`], one [`RecordDelivery`] each. Holds the batch by
/// value, so a transport can keep it between calls while it hands records out one at a time.
#[derive(Clone, Copy, Debug)]
pub struct RecordDeliveries {
    batch: ClientDelivery,
    next: u32,
}

impl Iterator for RecordDeliveries {
    type Item = RecordDelivery;

    fn next(&mut self) -> Option<RecordDelivery> {
        let d = &self.batch;
        if self.next >= d.records {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let offset = match d.outcome {
            Outcome::Persisted { offset: Some(base) } => base.checked_add(i64::from(i)),
            _ => None,
        };
        Some(RecordDelivery {
            receipt: Receipt {
                batch: d.batch,
                offset_delta: i,
                topic: d.topic,
                partition: d.partition,
            },
            outcome: d.outcome,
            offset,
            batch_tag: d.tag,
            restored: d.restored,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.batch.records.saturating_sub(self.next) as usize;
        (left, Some(left))
    }
}

impl ExactSizeIterator for RecordDeliveries {}

#[derive(Clone, Copy, Debug)]
enum SlotUse {
    Free,
    Open {
        batch: OpenBatch,
        opened_at: Instant,
    },
    Sealed {
        len: usize,
    },
}

/// The storage chunk of batch slot `slot`, after the `reserve` bytes kept for its durable
/// header. Borrows only the storage, so the rest of the client stays usable while a batch is
/// being written.
fn chunk(storage: &mut [u8], batch_bytes: usize, reserve: usize, slot: usize) -> &mut [u8] {
    let start = slot.saturating_mul(batch_bytes);
    storage
        .get_mut(start.saturating_add(reserve)..start.saturating_add(batch_bytes))
        .unwrap_or(&mut [])
}

/// Fixed request overhead allowance: header, client id, acks, timeout, array lengths.
const REQUEST_OVERHEAD: usize = 64;
/// Per topic and per partition allowance in a produce request, beyond names and batches.
const ENTRY_OVERHEAD: usize = 16;

/// The producer client. `S` is the batch storage (`BATCHES * batch_bytes` bytes: a static
/// buffer on targets, a `Vec` on hosts); the capacities are the caller's: topics, partitions
/// across them, batches held at once, and broker connections.
pub struct Client<
    S,
    const TOPICS: usize,
    const PARTITIONS: usize,
    const BATCHES: usize,
    const BROKERS: usize,
> {
    client_id: String<64>,
    request_timeout: Duration,
    linger: Duration,
    batch_bytes: usize,
    /// When each broker and bootstrap address may be dialled again.
    dials: Dials<BROKERS>,
    metadata_max_age: Duration,
    /// Metadata refreshes while answers stay incomplete: `retry_backoff` doubling to
    /// `retry_backoff_max`, as librdkafka's fast refresh.
    metadata_rule: Backoff,
    metadata_jitter: Jitter,
    /// Metadata answers in a row that left something to ask again.
    metadata_failures: u32,
    /// No metadata request sooner than this after the last answer: `retry_backoff` after a
    /// complete one, the growing backoff after incomplete ones.
    metadata_wait: Duration,
    connection_turn: Duration,
    producer_state_ttl: Option<Duration>,
    /// Wall-clock milliseconds since the Unix epoch at `Instant::ZERO`, once the transport or
    /// the application told the time ([`Client::set_wall_clock`]).
    wall_at_zero_ms: Option<i64>,
    /// Per partition (ledger index): when its last success came, and the max timestamp of
    /// that batch, from which Kafka counts its memory of the producer there.
    acked_at: [Option<(Instant, i64)>; PARTITIONS],
    /// Where the search for a waiting leader starts: advanced at each handed-over slot, so
    /// leaders take turns in rotation when they outnumber the slots.
    rotation: usize,
    /// When the serving connection with the oldest turn may be asked to hand its slot over
    /// (a leader with records waits for one).
    turn_ends: Option<Instant>,
    /// The leader whose turn ended last: it waits behind the others that wait.
    turn_over: Option<Target>,
    sequencer: Sequencer<PARTITIONS, BATCHES>,
    metadata: Metadata<TOPICS, PARTITIONS, BROKERS>,
    bootstrap: Vec<Endpoint, BROKERS>,
    bootstrap_next: usize,
    storage: S,
    slots: [SlotUse; BATCHES],
    open: [Option<BatchToken>; PARTITIONS],
    sticky: [StickyPartitioner; TOPICS],
    conns: [Connection<BATCHES>; BROKERS],
    to_close: Vec<ConnId, BROKERS>,
    metadata_due: Option<Instant>,
    metadata_fetched_at: Option<Instant>,
    /// Bytes in front of each batch kept for its durable header (0 when not durable).
    reserve: usize,
    durable: bool,
    /// What the durable store holds per batch slot.
    mirror: [Mirror; BATCHES],
    /// The write handed out by `poll_persist` and not yet confirmed.
    persisting: Option<durable::Pending>,
    meta_buf: [u8; META_LEN],
    storage_failed: bool,
    /// Nothing sent or received yet: restoring is still allowed.
    fresh: bool,
    last_now: Instant,
    /// Tag for the batch the next record opens.
    next_tag: u64,
    /// The batch `poll_delivery` handed out last: it stays in the store until the next call,
    /// so the application has recorded its outcome before the store forgets it.
    handed_out: Option<BatchToken>,
}

impl<S, const TOPICS: usize, const PARTITIONS: usize, const BATCHES: usize, const BROKERS: usize>
    Client<S, TOPICS, PARTITIONS, BATCHES, BROKERS>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// A client for `topics`, bootstrapping from `bootstrap` (`host:port` each), with batch
    /// storage of at least `BATCHES * config.batch_bytes` bytes.
    pub fn new(
        config: ClientConfig<'_>,
        bootstrap: &[&str],
        topics: &[&str],
        storage: S,
    ) -> Result<Self, ClientConfigError> {
        if config.acks != -1 {
            return Err(ClientConfigError::Acks { given: config.acks });
        }
        let max = storage.as_ref().len() / BATCHES.max(1);
        config.check_batch_bytes(max)?;
        config.check_reconnect_backoff()?;
        let timeout_ms = config.request_timeout.as_millis();
        if timeout_ms == 0 || timeout_ms > i32::MAX as u128 {
            return Err(ClientConfigError::RequestTimeout);
        }
        let client_id =
            String::try_from(config.client_id).map_err(|_| ClientConfigError::ClientId)?;
        let mut boot = Vec::new();
        for address in bootstrap {
            let endpoint = Endpoint::parse(address).ok_or(ClientConfigError::Bootstrap)?;
            boot.push(endpoint)
                .map_err(|_| ClientConfigError::Bootstrap)?;
        }
        if boot.is_empty() {
            return Err(ClientConfigError::Bootstrap);
        }
        let mut metadata = Metadata::new();
        for name in topics {
            let name = String::try_from(*name).map_err(|_| ClientConfigError::Topic)?;
            if name.is_empty() || TOPICS > usize::from(u8::MAX) {
                return Err(ClientConfigError::Topic);
            }
            metadata
                .topics
                .push(Topic {
                    name,
                    partitions: 0,
                    full: false,
                })
                .map_err(|_| ClientConfigError::Topic)?;
        }
        let mut sequencer = Sequencer::new(config.producer).map_err(ClientConfigError::Producer)?;
        let reserve = if config.durable { BATCH_HEADER } else { 0 };
        if config.durable {
            // A slot is reused only once the store no longer holds its old batch.
            sequencer.set_retain_delivered(true);
        }
        if BROKERS > usize::from(u8::MAX) {
            return Err(ClientConfigError::Bootstrap);
        }
        // The sequencer draws its jitter from the seed's first output; the client from the
        // ones after, so neither's draws shift the other's.
        let mut jitter = Jitter::new(config.producer.jitter_seed);
        let _ = jitter.next_u64();
        let reconnect = Backoff::new(config.reconnect_backoff, config.reconnect_backoff_max);
        Ok(Client {
            client_id,
            request_timeout: config.request_timeout,
            linger: config.linger,
            batch_bytes: config.batch_bytes,
            dials: Dials::new(reconnect, jitter.fork()),
            metadata_max_age: config.metadata_max_age,
            metadata_rule: config.producer.retry_rule(),
            metadata_jitter: jitter.fork(),
            metadata_failures: 0,
            metadata_wait: config.producer.retry_backoff,
            connection_turn: config.connection_turn,
            producer_state_ttl: config.producer_state_ttl,
            wall_at_zero_ms: None,
            acked_at: [None; PARTITIONS],
            rotation: 0,
            turn_ends: None,
            turn_over: None,
            sequencer,
            metadata,
            bootstrap: boot,
            bootstrap_next: 0,
            storage,
            slots: [SlotUse::Free; BATCHES],
            open: [None; PARTITIONS],
            sticky: [StickyPartitioner::default(); TOPICS],
            conns: core::array::from_fn(|_| Connection::new()),
            to_close: Vec::new(),
            metadata_due: Some(Instant::ZERO),
            metadata_fetched_at: None,
            reserve,
            durable: config.durable,
            mirror: [Mirror::default(); BATCHES],
            persisting: None,
            meta_buf: [0; META_LEN],
            storage_failed: false,
            fresh: true,
            last_now: Instant::ZERO,
            next_tag: 0,
            handed_out: None,
        })
    }

    /// Tells the client the wall clock: `unix_ms` (milliseconds since the Unix epoch) is the
    /// time at `now`. Record timestamps are judged against it (`producer_state_ttl`): the
    /// core has no clock of its own, and a device that never learns the time gets no check
    /// (see the README on gateways without a clock). Call it whenever the time is known
    /// afresh (a host at every poll, a firmware after SNTP).
    pub fn set_wall_clock(&mut self, now: Instant, unix_ms: i64) {
        let since_zero = i64::try_from(now.as_micros() / 1000).unwrap_or(i64::MAX);
        self.wall_at_zero_ms = Some(unix_ms.saturating_sub(since_zero));
    }

    /// The wall clock at `now`, in ms since the Unix epoch, when known.
    pub fn wall_clock_ms(&self, now: Instant) -> Option<i64> {
        let since_zero = i64::try_from(now.as_micros() / 1000).unwrap_or(i64::MAX);
        self.wall_at_zero_ms.map(|z| z.saturating_add(since_zero))
    }

    /// Records timestamped before this (ms since the Unix epoch) are past the
    /// producer-state lifetime at `now`; `None` without a wall clock or a lifetime.
    fn stale_before(&self, now: Instant) -> Option<i64> {
        let ttl = i64::try_from(self.producer_state_ttl?.as_millis()).unwrap_or(i64::MAX);
        Some(self.wall_clock_ms(now)?.saturating_sub(ttl))
    }

    /// The idempotence state: identity, ledger, counters.
    pub fn sequencer(&self) -> &Sequencer<PARTITIONS, BATCHES> {
        &self.sequencer
    }

    /// Producer counters.
    pub fn counters(&self) -> Counters {
        self.sequencer.counters()
    }

    /// What the client knows of the cluster.
    pub fn metadata(&self) -> &Metadata<TOPICS, PARTITIONS, BROKERS> {
        &self.metadata
    }

    /// A connection's state and target.
    pub fn connection(&self, conn: ConnId) -> Option<(Option<Target>, ConnState)> {
        self.conns
            .get(usize::from(conn.0))
            .map(|c| (c.target, c.state))
    }

    /// The smallest transmit buffer that can carry a produce request with one full batch of
    /// any of the client's topics: transports size or check their request buffers with it,
    /// since a smaller one would leave full batches unsendable.
    pub fn request_bytes_needed(&self) -> usize {
        let longest_topic = self
            .metadata
            .topics
            .iter()
            .map(|t| t.name.len())
            .max()
            .unwrap_or(0);
        REQUEST_OVERHEAD
            + self.client_id.len()
            + 2 * ENTRY_OVERHEAD
            + longest_topic
            + self.batch_bytes
    }

    /// Largest record batch in bytes, as configured (with `durable`, including the storage
    /// header in front of each batch).
    pub fn batch_bytes(&self) -> usize {
        self.batch_bytes
    }

    /// Every accepted record has its outcome, drained or not; what a flush waits for.
    pub fn is_decided(&self) -> bool {
        self.sequencer.is_decided()
    }

    /// Nothing is held: every accepted record has its outcome drained.
    pub fn is_idle(&self) -> bool {
        self.sequencer.is_empty()
    }

    /// Accepts a record, to be decided by `deadline`. The record joins its partition's open
    /// batch when it fits, else a new batch; it shares that batch's outcome, and the batch's
    /// deadline is its earliest record's.
    pub fn send(
        &mut self,
        record: &ProducerRecord<'_>,
        deadline: Instant,
        now: Instant,
    ) -> Result<Receipt, SendError> {
        self.send_tagged(record, 0, deadline, now)
    }

    /// [`Client::send`], with a tag for the batch should this record open one: an
    /// application number (a reading's sequence number, an input line) that comes back in
    /// [`ClientDelivery::tag`] and survives a restart with the batch, so an application can
    /// tell which of its records a restored batch holds.
    pub fn send_tagged(
        &mut self,
        record: &ProducerRecord<'_>,
        tag: u64,
        deadline: Instant,
        now: Instant,
    ) -> Result<Receipt, SendError> {
        if self.storage_failed {
            return Err(SendError::Storage);
        }
        if matches!(self.sequencer.identity(), Identity::Fatal(_)) {
            return Err(SendError::Fatal);
        }
        // No timestamp given: the wall clock's, when the client was told it.
        let timestamp = match record.timestamp {
            NO_TIMESTAMP => self.wall_clock_ms(now).unwrap_or(NO_TIMESTAMP),
            given => given,
        };
        if self
            .stale_before(now)
            .is_some_and(|limit| timestamp < limit)
        {
            return Err(SendError::StaleTimestamp);
        }
        self.fresh = false;
        self.next_tag = tag;
        let topic = self
            .metadata
            .topic_index(record.topic)
            .ok_or(SendError::UnknownTopic)?;
        let entry = &self.metadata.topics[usize::from(topic)];
        let count = entry.partitions;
        if count == 0 {
            return Err(SendError::NoMetadata);
        }
        // Records without a key go to partitions the table holds (its lowest ids, when the
        // topic has more than it holds); keys hash over all of them, as every producer's do.
        let sticky_count = if entry.full {
            let held = self
                .metadata
                .partitions
                .iter()
                .filter(|p| p.topic == topic && (p.partition as u32) < count)
                .count();
            u32::try_from(held).unwrap_or(count).min(count)
        } else {
            count
        };
        let partition = match (record.partition, record.key) {
            (Some(p), _) => u32::try_from(p).map_err(|_| SendError::NoSuchPartition)?,
            (None, Some(key)) => partition_for_key(key, count).ok_or(SendError::NoMetadata)?,
            (None, None) => self.sticky[usize::from(topic)]
                .partition(sticky_count)
                .ok_or(SendError::NoMetadata)?,
        };
        if partition >= count {
            return Err(SendError::NoSuchPartition);
        }
        let partition = partition as i32;
        let index = self
            .metadata
            .index_of(topic, partition)
            .ok_or(SendError::NoSuchPartition)?;
        let headers = record.headers;
        // Into the open batch, if there is one and the record fits.
        if let Some(token) = self.open[index] {
            let slot = token.slot();
            if let SlotUse::Open { batch, .. } = self.slots[slot] {
                let chunk = chunk(self.storage.as_mut(), self.batch_bytes, self.reserve, slot);
                let mut builder =
                    BatchBuilder::resume(chunk, batch).map_err(|_| SendError::RecordTooLarge)?;
                let fits = builder.len()
                    + builder.record_len(timestamp, record.key, record.value, headers)
                    <= self.batch_bytes - self.reserve;
                // The ledger first: it refuses when the batch was decided meanwhile (its
                // deadline passed), and then nothing has changed.
                if fits && self.sequencer.extend(token, 1, deadline).is_ok() {
                    let offset_delta = builder.record_count() as u32;
                    if builder
                        .append(timestamp, record.key, record.value, headers)
                        .is_err()
                    {
                        // Cannot happen after the size check; if it did, the ledger would
                        // count a record the batch lacks, so the batch is given up instead.
                        let _ = self.sequencer.cancel(token, now);
                        return Err(SendError::RecordTooLarge);
                    }
                    let batch = builder.suspend();
                    if let SlotUse::Open { batch: b, .. } = &mut self.slots[slot] {
                        *b = batch;
                    }
                    return Ok(Receipt {
                        batch: token,
                        offset_delta,
                        topic,
                        partition,
                    });
                }
            }
            self.seal(index, now);
        }
        // A new batch.
        let alone = Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: 0,
            key: record.key,
            value: record.value,
            headers: List::from_slice(headers),
        };
        if RECORD_BATCH_OVERHEAD + alone.encoded_len() > self.batch_bytes - self.reserve {
            return Err(SendError::RecordTooLarge);
        }
        let token = self
            .sequencer
            .open(PartitionIndex(index as u16), 1, deadline)
            .map_err(|e| match e {
                EnqueueError::Full => SendError::Full,
                EnqueueError::Fatal(_) => SendError::Fatal,
                EnqueueError::NoSuchPartition | EnqueueError::RecordCount => {
                    SendError::NoSuchPartition
                }
            })?;
        let slot = token.slot();
        let chunk = chunk(self.storage.as_mut(), self.batch_bytes, self.reserve, slot);
        let built = BatchBuilder::new(chunk, Attributes::default(), timestamp).and_then(|mut b| {
            b.append(timestamp, record.key, record.value, headers)?;
            Ok(b.suspend())
        });
        let Ok(batch) = built else {
            // Checked above; a failure here would be a codec bug. Give the batch its outcome
            // rather than leave it without one.
            let _ = self.sequencer.cancel(token, now);
            return Err(SendError::RecordTooLarge);
        };
        self.slots[slot] = SlotUse::Open {
            batch,
            opened_at: now,
        };
        self.mirror[slot] = Mirror::default();
        self.mirror[slot].info.tag = self.next_tag;
        self.open[index] = Some(token);
        Ok(Receipt {
            batch: token,
            offset_delta: 0,
            topic,
            partition,
        })
    }

    /// Seals every open batch so it is sent without waiting for the linger time.
    pub fn flush(&mut self, now: Instant) {
        for index in 0..PARTITIONS {
            self.seal(index, now);
        }
    }

    /// Gives up on a batch now, as its deadline passing would (see
    /// [`cancel_decision`](crate::state::cancel_decision)).
    pub fn cancel(&mut self, batch: BatchToken, now: Instant) -> Result<(), TokenError> {
        self.sequencer.cancel(batch, now).map(|_| ())
    }

    /// Applies time: seals lingering batches, applies deadlines, times out requests, schedules
    /// metadata refreshes. Returns the next instant it needs to be polled at.
    pub fn poll(&mut self, now: Instant) -> Option<Instant> {
        self.last_now = now;
        for index in 0..PARTITIONS {
            if let Some(token) = self.open[index]
                && let SlotUse::Open { opened_at, .. } = self.slots[token.slot()]
                && opened_at + self.linger <= now
            {
                self.seal(index, now);
            }
        }
        // A bootstrap connection carries metadata (and InitProducerId) until a leader's
        // connection is ready: closing it at the first metadata answer, while no leader can
        // be reached (a topic reported missing, a leader that refuses), meant a new
        // connection for every refresh. A leader that needs its slot gets it
        // (`assign_targets`).
        let leader_ready = self
            .conns
            .iter()
            .any(|c| matches!(c.target, Some(Target::Node(_))) && c.state == ConnState::Ready);
        for i in 0..BROKERS {
            let timed_out = self.conns[i]
                .deadline(self.request_timeout)
                .is_some_and(|t| t <= now);
            let spare_bootstrap = leader_ready && self.is_spare_bootstrap(i);
            if timed_out || spare_bootstrap {
                if timed_out {
                    warn!("connection {:?}: request timed out", i);
                }
                let _ = self.to_close.push(ConnId(i as u8));
                self.lose(i, now, timed_out, timed_out);
            }
        }
        if let Some(at) = self.metadata_fetched_at
            && at + self.metadata_max_age <= now
        {
            self.want_metadata(now);
        }
        self.expire_stale_batches(now);
        let wake = self.sequencer.poll(now);
        self.next_wakeup(now, wake)
    }

    /// A connection the transport should open now: its id and where to. A slot the transport
    /// has yet to close (see [`Client::poll_close`]) is never handed out again before it is.
    pub fn poll_connect(&mut self, now: Instant) -> Option<(ConnId, &Endpoint)> {
        self.assign_targets(now);
        let i = (0..BROKERS).find(|&i| {
            let c = &self.conns[i];
            !self.to_close.contains(&ConnId(i as u8))
                && c.target.is_some()
                && matches!(c.state, ConnState::Idle { retry_at } if retry_at <= now)
                && self.endpoint_of(c.target).is_some()
        })?;
        self.conns[i].state = ConnState::Connecting;
        let target = self.conns[i].target;
        debug!("connecting {:?} to {:?}", i, target);
        self.endpoint_of(target).map(|e| (ConnId(i as u8), e))
    }

    /// The transport connected `conn`.
    pub fn on_connected(&mut self, conn: ConnId, _now: Instant) {
        if let Some(c) = self.conns.get_mut(usize::from(conn.0))
            && c.state == ConnState::Connecting
        {
            c.state = ConnState::Handshake {
                version: 3,
                sent: false,
            };
        }
    }

    /// `conn` failed to connect, or was lost (reset, closed, or closed by the transport after
    /// [`Client::poll_close`]). Everything out on it counts as written and unanswered.
    pub fn on_connection_lost(&mut self, conn: ConnId, now: Instant) {
        let i = usize::from(conn.0);
        if i < BROKERS && !matches!(self.conns[i].state, ConnState::Idle { .. }) {
            self.lose(i, now, true, true);
        }
    }

    /// Consecutive failed connections to `target` since it last answered a request: the
    /// reconnect backoff grows with it (see [`ClientConfig::reconnect_backoff`]).
    pub fn dial_failures(&self, target: Target) -> u32 {
        self.dials.failures(target)
    }

    /// The earliest instant `target` is dialled again.
    pub fn dial_ready_at(&self, target: Target) -> Instant {
        self.dials.ready_at(target)
    }

    /// A connection the client wants closed (its requests timed out, or it is no longer
    /// needed). Its requests are already accounted for; report nothing back.
    pub fn poll_close(&mut self) -> Option<ConnId> {
        self.to_close.pop()
    }

    /// The next request to write on `conn`, encoded into `buf`: returns its length. Write all
    /// of it before asking again. `None` when there is nothing to send now (or `buf` is too
    /// small for any request). Produce requests take as many ready batches as `buf` holds.
    pub fn poll_transmit(&mut self, conn: ConnId, now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.storage_failed {
            return None;
        }
        self.fresh = false;
        self.last_now = now;
        let i = usize::from(conn.0);
        let c = self.conns.get(i)?;
        if !c.has_room() || c.draining {
            return None;
        }
        match c.state {
            ConnState::Handshake {
                version,
                sent: false,
            } => {
                let request = ApiVersionsRequest {
                    client_software_name: "gateway-producer",
                    client_software_version: env!("CARGO_PKG_VERSION"),
                };
                let n = self.conns[i].send_request(
                    &self.client_id,
                    buf,
                    version,
                    &request,
                    now,
                    PendingKind::ApiVersions,
                )?;
                self.conns[i].state = ConnState::Handshake {
                    version,
                    sent: true,
                };
                Some(n)
            }
            ConnState::Ready => self.transmit_ready(i, now, buf),
            _ => None,
        }
    }

    /// A complete response frame (without its size prefix) arrived on `conn`. A frame that
    /// does not decode, or answers out of order, closes the connection: what was on it is
    /// retried as unanswered.
    pub fn on_frame(&mut self, conn: ConnId, now: Instant, frame: &[u8]) {
        let i = usize::from(conn.0);
        if i >= BROKERS {
            return;
        }
        let Some(pending) = self.conns[i].pending.pop_front() else {
            warn!("connection {:?}: a response nobody asked for", i);
            self.drop_connection(i, now);
            return;
        };
        let ok = match &pending.kind {
            PendingKind::ApiVersions => self.on_api_versions(i, &pending, frame, now),
            PendingKind::Metadata => self.on_metadata(&pending, frame, now),
            PendingKind::InitProducerId => self.on_init_producer_id(&pending, frame, now),
            PendingKind::Produce(batches) => self.on_produce(&pending, batches, frame, now),
        };
        // A real answer, beyond the handshake: the broker works, its reconnect backoff
        // starts again from the beginning.
        if ok
            && !matches!(pending.kind, PendingKind::ApiVersions)
            && let Some(target) = self.conns[i].target
        {
            self.dials.answered(target);
        }
        if !ok {
            warn!("connection {:?}: malformed or mismatched response", i);
            // The popped request is as unanswered as the rest.
            let _ = self.conns[i].pending.push_front(pending);
            self.drop_connection(i, now);
        }
    }

    /// The next batch outcome. With `durable`, an outcome is handed out only once it is
    /// stored, and stays stored until the next call: record it (or act on it) before asking
    /// for the next one, and a restart in between hands it out again rather than lose it or
    /// resend its batch.
    pub fn poll_delivery(&mut self) -> Option<ClientDelivery> {
        if self.storage_failed {
            return None;
        }
        self.handed_out = None;
        if !self.delivery_ready() {
            return None;
        }
        let d = self.sequencer.poll_event()?;
        let slot = d.token.slot();
        self.slots[slot] = SlotUse::Free;
        let index = usize::from(d.partition.0);
        if self.open.get(index).copied().flatten() == Some(d.token) {
            self.open[index] = None;
        }
        let m = self.mirror[slot];
        if self.durable && !m.is_stored() && self.sequencer.release(d.token).is_ok() {
            self.mirror[slot] = Mirror::default();
        }
        if self.durable && m.is_stored() {
            self.handed_out = Some(d.token);
        }
        let p = self.metadata.partitions.get(index).copied();
        Some(ClientDelivery {
            batch: d.token,
            topic: p.map_or(0, |p| p.topic),
            partition: p.map_or(-1, |p| p.partition),
            records: d.records,
            outcome: d.outcome,
            tag: m.info.tag,
            restored: m.restored,
        })
    }

    /// The next write for the durable store (`durable` clients only): apply it, then confirm
    /// with [`Client::on_persisted`]. The same write is returned until it is confirmed.
    /// Transports drain this after every call that can change the client's state, and
    /// before each [`Client::poll_transmit`]: a batch waiting for its stamp to be stored is
    /// not sent until then.
    pub fn poll_persist(&mut self) -> Option<PersistOp<'_>> {
        if !self.wants_persist() {
            return None;
        }
        let op = self.persisting?;
        let size = self.batch_bytes;
        let (slot, is_batch, value) = match op {
            durable::Pending::StoreBatch(slot) => {
                let m = self.mirror[slot];
                let len = match self.slots[slot] {
                    SlotUse::Sealed { len } => len,
                    _ => 0,
                };
                let start = slot * size;
                let storage = self.storage.as_mut();
                let header = storage.get_mut(start..start + BATCH_HEADER)?;
                if !durable::write_header(header, &m.info) {
                    return None;
                }
                let value = storage.get(start..start + BATCH_HEADER + len)?;
                (slot, true, Some(value))
            }
            durable::Pending::StoreMeta(slot, state) => {
                let info = self.mirror[slot].info;
                let n = durable::write_meta(&mut self.meta_buf, &info, &state);
                (slot, false, Some(self.meta_buf.get(..n)?))
            }
            durable::Pending::EraseBatch(slot) => (slot, true, None),
            durable::Pending::EraseMeta(slot) => (slot, false, None),
        };
        Some(PersistOp {
            key: durable::key(is_batch, slot),
            value,
        })
    }

    /// Whether [`Client::poll_persist`] has a write to hand out: a transport that persists
    /// asynchronously checks this after each turn of its connections, and stores before the
    /// next.
    pub fn wants_persist(&mut self) -> bool {
        if !self.durable || self.storage_failed {
            return false;
        }
        if self.persisting.is_none() {
            self.persisting = self.next_persist();
        }
        self.persisting.is_some()
    }

    /// Whether [`Client::poll_delivery`] would hand out an outcome now.
    pub fn delivery_ready(&self) -> bool {
        if self.storage_failed {
            return false;
        }
        let Some(token) = self.sequencer.peek_event() else {
            return false;
        };
        let m = &self.mirror[token.slot()];
        !self.durable || !m.is_stored() || matches!(m.meta, MetaState::Decided(_))
    }

    /// The write last returned by [`Client::poll_persist`] is durable.
    pub fn on_persisted(&mut self) {
        let Some(op) = self.persisting.take() else {
            return;
        };
        let slot = match op {
            durable::Pending::StoreBatch(slot) => {
                self.mirror[slot].batch = true;
                slot
            }
            durable::Pending::StoreMeta(slot, state) => {
                self.mirror[slot].meta = state;
                slot
            }
            durable::Pending::EraseBatch(slot) => {
                self.mirror[slot].batch = false;
                slot
            }
            durable::Pending::EraseMeta(slot) => {
                self.mirror[slot].meta = MetaState::Absent;
                slot
            }
        };
        self.release_if_erased(slot);
    }

    /// The write last returned by [`Client::poll_persist`] failed (or its outcome is unknown:
    /// the storage may hold it or not). The client stops: it sends nothing more, hands out
    /// no more outcomes and refuses records with [`SendError::Storage`], because it can no
    /// longer tell what a restart would find. Rebuild it and restore from the storage (after
    /// a reset, or once the storage works again): every batch then gets its outcome.
    pub fn on_persist_failed(&mut self) {
        warn!("durable storage failed: the producer stops");
        self.persisting = None;
        self.storage_failed = true;
    }

    /// The batch is in the durable store (`durable` clients): its records survive a restart
    /// from here on. An application that keeps its own copy of a record until it is safe
    /// (a sensor reading in RAM, an input position) lets go of it once this is true, or once
    /// the batch's outcome is out.
    pub fn is_durable(&self, batch: BatchToken) -> bool {
        self.sequencer
            .held(batch.slot())
            .is_some_and(|h| h.token == batch && self.mirror[batch.slot()].is_stored())
    }

    /// The batches read back at restore whose outcome is not handed out yet, as (tag,
    /// records): an application that resumes its input after a restart skips what they hold
    /// (their records are already accepted, and keep their place in their partitions).
    pub fn restored_batches(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        (0..BATCHES).filter_map(|slot| {
            let h = self.sequencer.held(slot)?;
            let m = &self.mirror[slot];
            (m.restored && !h.delivered).then_some((m.info.tag, h.records))
        })
    }

    /// A durable-storage write failed: see [`Client::on_persist_failed`].
    pub fn storage_failed(&self) -> bool {
        self.storage_failed
    }

    /// Feeds one item read back from the durable store after a restart (`value` `None` for
    /// a tombstone), before anything else is done with the client. Feed every item in the
    /// store's order; a later copy of a key replaces an earlier one. Then call
    /// [`Client::finish_restore`].
    pub fn restore_item(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), RestoreError> {
        if !self.durable {
            return Err(RestoreError::NotDurable);
        }
        if !self.fresh {
            return Err(RestoreError::NotFresh);
        }
        let (is_batch, slot) = durable::parse_key(key)?;
        if slot >= BATCHES {
            return Err(RestoreError::Slot { slot: slot as u16 });
        }
        let room = self.batch_bytes - self.reserve;
        match (is_batch, value) {
            (true, Some(value)) => {
                let mut r = wire::Reader::new(value);
                let info = durable::read_header(&mut r)?;
                let bytes = r.rest();
                if bytes.len() > room {
                    return Err(RestoreError::BatchBytes { len: bytes.len() });
                }
                let header =
                    wire::record_batch::header_of(bytes).map_err(|_| RestoreError::Malformed)?;
                if header.record_count < 1 || header.record_count as u32 != info.records {
                    return Err(RestoreError::Malformed);
                }
                chunk(self.storage.as_mut(), self.batch_bytes, self.reserve, slot)
                    .get_mut(..bytes.len())
                    .ok_or(RestoreError::BatchBytes { len: bytes.len() })?
                    .copy_from_slice(bytes);
                self.slots[slot] = SlotUse::Sealed { len: bytes.len() };
                let m = &mut self.mirror[slot];
                m.batch = true;
                m.info = info;
            }
            (true, None) => {
                self.slots[slot] = SlotUse::Free;
                self.mirror[slot].batch = false;
            }
            (false, Some(value)) => {
                let (info, state) = durable::read_meta(value)?;
                let m = &mut self.mirror[slot];
                m.meta = state;
                // Both items carry the header; the batch's, when there is one, is kept.
                if !m.batch {
                    m.info = info;
                }
            }
            (false, None) => self.mirror[slot].meta = MetaState::Absent,
        }
        Ok(())
    }

    /// Rebuilds the batches fed through [`Client::restore_item`]: batches never stamped are
    /// sent as new; stamped ones are resent with their stamp under their producer id and
    /// epoch (the broker deduplicates what it already appended), unless
    /// `options.producer_state_ttl` says the broker may have forgotten the producer (Kafka 2.5
    /// and later append a resend from a producer they forgot as new data, without an error);
    /// decided ones are handed out again. Older brokers and tansu answer UNKNOWN_PRODUCER_ID
    /// (or fence the id) instead, and those batches get `PossiblyPersisted` with that reason.
    /// Once the restored stamped batches are decided, the producer fences the resumed epoch
    /// (a local bump, or a new producer id where the broker refuses it).
    pub fn finish_restore(
        &mut self,
        options: RestoreOptions,
    ) -> Result<RestoreSummary, RestoreError> {
        if !self.durable {
            return Err(RestoreError::NotDurable);
        }
        if !self.fresh {
            return Err(RestoreError::NotFresh);
        }
        // Check everything before changing anything.
        let mut resume: Option<(u64, crate::state::Stamp)> = None;
        for slot in 0..BATCHES {
            let m = &self.mirror[slot];
            if !m.is_stored() {
                continue;
            }
            let info = m.info;
            let topic = self
                .metadata
                .topics
                .get(usize::from(info.topic))
                .ok_or(RestoreError::Topic { topic: info.topic })?;
            if wire::crc::crc32c(topic.name.as_bytes()) != info.topic_crc {
                return Err(RestoreError::Topic { topic: info.topic });
            }
            if let (true, MetaState::Stamped(stamp)) = (m.batch, m.meta)
                && resume.is_none_or(|(order, _)| info.order > order)
            {
                resume = Some((info.order, stamp));
            }
        }
        let fresh_enough = |bytes: &[u8]| -> bool {
            let (Some(now_ms), Some(ttl)) = (options.now_ms, options.producer_state_ttl) else {
                return true;
            };
            let Ok(header) = wire::record_batch::header_of(bytes) else {
                return false;
            };
            let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
            now_ms.saturating_sub(header.max_timestamp) < ttl
        };
        let mut summary = RestoreSummary::default();
        if let Some((_, stamp)) = resume {
            self.sequencer.resume(stamp.producer_id, stamp.epoch);
        }
        let mut last: Option<u64> = None;
        loop {
            // The next slot in acceptance order (BATCHES is small: a selection is enough).
            let next = (0..BATCHES)
                .filter(|&s| self.mirror[s].is_stored())
                .filter(|&s| last.is_none_or(|l| self.mirror[s].info.order > l))
                .min_by_key(|&s| self.mirror[s].info.order);
            let Some(slot) = next else { break };
            let m = self.mirror[slot];
            last = Some(m.info.order);
            let index = match self.metadata.index_of(m.info.topic, m.info.partition) {
                Some(index) => index,
                None => {
                    self.metadata
                        .partitions
                        .push(metadata::Partition {
                            topic: m.info.topic,
                            partition: m.info.partition,
                            leader: None,
                        })
                        .map_err(|_| RestoreError::Partitions)?;
                    self.metadata.partitions.len() - 1
                }
            };
            let len = match (m.batch, self.slots[slot]) {
                (true, SlotUse::Sealed { len }) => len,
                _ => 0,
            };
            let bytes = chunk(self.storage.as_mut(), self.batch_bytes, self.reserve, slot)
                .get(..len)
                .unwrap_or(&[]);
            // The facts the store holds; the sequencer decides what they mean.
            let stored = match (m.batch, m.meta) {
                (_, MetaState::Decided(outcome)) => Stored::Decided(outcome),
                (true, MetaState::Stamped(stamp)) => Stored::Stamped {
                    stamp,
                    expired: !fresh_enough(bytes),
                },
                (true, MetaState::Absent) => Stored::Buffered,
                // Only the meta item is left: its batch was decided and handed out; erase it.
                (false, _) => Stored::Delivered,
            };
            if let Stored::Stamped { expired: true, .. } = stored {
                summary.expired += 1;
            }
            let restored = self.sequencer.decide_restored(stored);
            match restored {
                Restored::Buffered => summary.buffered += 1,
                Restored::Stamped(_) => summary.stamped += 1,
                Restored::Decided {
                    delivered: false, ..
                } => summary.decided += 1,
                Restored::Decided { .. } => {}
            }
            self.sequencer
                .restore(
                    slot,
                    PartitionIndex(index as u16),
                    m.info.records,
                    m.info.order,
                    options.deadline,
                    restored,
                )
                .map_err(|_| RestoreError::Malformed)?;
            self.slots[slot] = SlotUse::Sealed { len };
            self.mirror[slot].restored = true;
            // A leftover of a batch already handed out is only erased, not counted.
            if !matches!(
                restored,
                Restored::Decided {
                    delivered: true,
                    ..
                }
            ) {
                summary.batches += 1;
                summary.records = summary.records.saturating_add(m.info.records);
            }
        }
        self.fresh = false;
        if summary.batches > 0 {
            info!(
                "restored {:?} batches: {:?} buffered, {:?} stamped, {:?} decided, {:?} expired",
                summary.batches,
                summary.buffered,
                summary.stamped,
                summary.decided,
                summary.expired
            );
        }
        Ok(summary)
    }

    /// Name of the topic with index `topic`.
    pub fn topic_name(&self, topic: u8) -> Option<&str> {
        self.metadata
            .topics
            .get(usize::from(topic))
            .map(|t| t.name.as_str())
    }

    // --- internals --------------------------------------------------------------------------

    /// The next write the durable store needs, in the order that keeps a restart safe (see
    /// [`durable`]): outcomes and unstamps first (a fence's decisions before any newer
    /// stamp), then sealed batches, then wanted stamps, then erasures.
    fn next_persist(&mut self) -> Option<durable::Pending> {
        use durable::Pending;
        for slot in 0..BATCHES {
            let Some(h) = self.sequencer.held(slot) else {
                continue;
            };
            let m = self.mirror[slot];
            if !m.is_stored() {
                continue;
            }
            match h.state {
                // (Handed out already: only a leftover after a restart, erased below.)
                BatchState::Decided { outcome, .. }
                    if !h.delivered && !matches!(m.meta, MetaState::Decided(_)) =>
                {
                    return Some(Pending::StoreMeta(slot, MetaState::Decided(outcome)));
                }
                // Unstamped by a fence (or overtaken by a resend before it left): a stored
                // stamp that is not the one it will go out with must go first.
                BatchState::Buffered
                    if matches!(m.meta, MetaState::Stamped(s)
                        if self.sequencer.peek_send(h.partition, self.last_now) != Some((h.token, s))) =>
                {
                    return Some(Pending::EraseMeta(slot));
                }
                _ => {}
            }
        }
        let unstored = (0..BATCHES)
            .filter_map(|slot| self.sequencer.held(slot).map(|h| (slot, h)))
            .filter(|(slot, h)| {
                h.sealed
                    && !matches!(h.state, BatchState::Decided { .. })
                    && !self.mirror[*slot].batch
                    && matches!(self.slots[*slot], SlotUse::Sealed { len } if len > 0)
            })
            .min_by_key(|(_, h)| h.order);
        if let Some((slot, _)) = unstored {
            return Some(Pending::StoreBatch(slot));
        }
        for slot in 0..BATCHES {
            if !self.mirror[slot].want_stamp {
                continue;
            }
            self.mirror[slot].want_stamp = false;
            // The stamp the batch goes out with now (a fence may have moved on since).
            let Some(h) = self.sequencer.held(slot) else {
                continue;
            };
            if self.mirror[slot].batch
                && matches!(h.state, BatchState::Buffered | BatchState::Stamped { .. })
                && let Some((token, stamp)) = self.sequencer.peek_send(h.partition, self.last_now)
                && token == h.token
                && self.mirror[slot].meta != MetaState::Stamped(stamp)
            {
                return Some(Pending::StoreMeta(slot, MetaState::Stamped(stamp)));
            }
        }
        for slot in 0..BATCHES {
            let Some(h) = self.sequencer.held(slot) else {
                continue;
            };
            let m = self.mirror[slot];
            let decided_stored = matches!(h.state, BatchState::Decided { .. })
                && matches!(m.meta, MetaState::Decided(_));
            let done = h.delivered && !h.state.is_outstanding() && self.handed_out != Some(h.token);
            if m.batch && (decided_stored || done) {
                return Some(Pending::EraseBatch(slot));
            }
            if done && m.meta != MetaState::Absent {
                return Some(Pending::EraseMeta(slot));
            }
            if done {
                self.release_if_erased(slot);
            }
        }
        None
    }

    /// Frees a delivered batch's slot once the store no longer holds it.
    fn release_if_erased(&mut self, slot: usize) {
        if let Some(h) = self.sequencer.held(slot)
            && self.handed_out != Some(h.token)
            && h.delivered
            && !h.state.is_outstanding()
            && !self.mirror[slot].is_stored()
            && self.sequencer.release(h.token).is_ok()
        {
            self.mirror[slot] = Mirror::default();
        }
    }

    fn seal(&mut self, index: usize, now: Instant) {
        let Some(token) = self.open.get_mut(index).and_then(Option::take) else {
            return;
        };
        let slot = token.slot();
        if let SlotUse::Open { batch, .. } = self.slots[slot] {
            let chunk = chunk(self.storage.as_mut(), self.batch_bytes, self.reserve, slot);
            let len = BatchBuilder::resume(chunk, batch)
                // The CRC is computed once, when the batch is stamped for sending.
                .and_then(|b| b.finish_for_stamp().map(|f| f.len()))
                .ok();
            match len {
                Some(len) => {
                    self.slots[slot] = SlotUse::Sealed { len };
                    let _ = self.sequencer.seal(token);
                    if self.durable
                        && let (Some(h), Some(p)) = (
                            self.sequencer.held(slot),
                            self.metadata.partitions.get(index).copied(),
                        )
                    {
                        let name = self.metadata.topics[usize::from(p.topic)].name.as_bytes();
                        let info = &mut self.mirror[slot].info;
                        info.topic = p.topic;
                        info.topic_crc = wire::crc::crc32c(name);
                        info.partition = p.partition;
                        info.records = h.records;
                        info.order = h.order;
                    }
                }
                None => {
                    let _ = self.sequencer.cancel(token, now);
                }
            }
            if let Some(p) = self.metadata.partitions.get(index).copied() {
                let count = self.metadata.topics[usize::from(p.topic)].partitions;
                self.sticky[usize::from(p.topic)].on_batch_sealed(p.partition as u32, count);
            }
        }
    }

    /// Asks for metadata as soon as the metadata backoff allows: never sooner than
    /// `metadata_wait` after the last answer, so that answers which each ask for a refresh
    /// (a leader that moved, a lost connection) cost at most one request per backoff.
    fn want_metadata(&mut self, now: Instant) {
        let at = self.metadata_not_before(now);
        if self.metadata_due.is_none_or(|t| t > at) {
            self.metadata_due = Some(at);
        }
    }

    fn metadata_not_before(&self, now: Instant) -> Instant {
        self.metadata_fetched_at
            .map_or(now, |t| (t + self.metadata_wait).max(now))
    }

    fn endpoint_of(&self, target: Option<Target>) -> Option<&Endpoint> {
        match target? {
            Target::Bootstrap(n) => self.bootstrap.get(usize::from(n)),
            Target::Node(id) => self.metadata.broker(id).map(|b| &b.endpoint),
        }
    }

    /// The max timestamp in the header of the batch stored in `slot`.
    fn batch_max_timestamp(&mut self, slot: usize) -> Option<i64> {
        let SlotUse::Sealed { len } = self.slots[slot] else {
            return None;
        };
        chunk(self.storage.as_mut(), self.batch_bytes, self.reserve, slot)
            .get(..len)
            .and_then(|bytes| wire::record_batch::header_of(bytes).ok())
            .map(|h| h.max_timestamp)
    }

    /// Whether the broker may have forgotten the producer's state on partition `index`
    /// before a request sent now is processed: Kafka keeps it `producer.id.expiration.ms`
    /// after the max timestamp of the last batch it appended there, and `producer_state_ttl`
    /// is the part of that the client counts on. So: the last success is a TTL old, or the
    /// records of it or of a batch in flight (one of which may be the last appended) are
    /// older than the TTL by the wall clock. Without a TTL, never.
    fn state_may_be_forgotten(&mut self, index: usize, now: Instant) -> bool {
        let (Some(ttl), Some(&Some((at, newest)))) =
            (self.producer_state_ttl, self.acked_at.get(index))
        else {
            return false;
        };
        if now.saturating_duration_since(at) >= ttl {
            return true;
        }
        let Some(limit) = self.stale_before(now) else {
            return false;
        };
        if newest < limit {
            return true;
        }
        (0..BATCHES).any(|slot| {
            self.sequencer.held(slot).is_some_and(|held| {
                usize::from(held.partition.0) == index
                    && matches!(held.state, BatchState::InFlight { .. })
            }) && self.batch_max_timestamp(slot).is_some_and(|ts| ts < limit)
        })
    }

    /// Hands the sequencer every batch waiting for a resend whose records are past the
    /// producer-state lifetime (its newest record timestamp, from the stored batch header,
    /// against the wall clock): the sequencer decides what that means for it.
    fn expire_stale_batches(&mut self, now: Instant) {
        let Some(limit) = self.stale_before(now) else {
            return;
        };
        for slot in 0..BATCHES {
            let Some(held) = self.sequencer.held(slot) else {
                continue;
            };
            if !matches!(
                held.state,
                BatchState::Stamped {
                    maybe_written: true,
                    ..
                }
            ) {
                continue;
            }
            let SlotUse::Sealed { len } = self.slots[slot] else {
                continue;
            };
            let newest = chunk(self.storage.as_mut(), self.batch_bytes, self.reserve, slot)
                .get(..len)
                .and_then(|bytes| wire::record_batch::header_of(bytes).ok())
                .map(|h| h.max_timestamp);
            if newest.is_some_and(|ts| ts < limit) {
                warn!(
                    "batch in slot {:?}: records past the producer-state lifetime",
                    slot
                );
                let _ = self.sequencer.expire_producer_state(held.token, now);
            }
        }
    }

    /// Which partitions (by ledger index) hold a batch without an outcome: their leaders
    /// need a connection.
    fn partitions_with_work(&self) -> [bool; PARTITIONS] {
        let mut work = [false; PARTITIONS];
        for slot in 0..BATCHES {
            if let Some(held) = self.sequencer.held(slot)
                && !matches!(held.state, BatchState::Decided { .. })
                && let Some(w) = work.get_mut(usize::from(held.partition.0))
            {
                *w = true;
            }
        }
        work
    }

    /// A slot (not draining) serves `target`.
    fn serves(&self, target: Target) -> bool {
        self.conns
            .iter()
            .any(|c| c.target == Some(target) && !c.draining)
    }

    /// Gives connection slots to the targets needed: a bootstrap address until metadata
    /// names brokers, then the partition leaders, those with records to send first.
    ///
    /// With more such leaders than slots, connections take turns: a connection that has
    /// served its leader for `connection_turn` while another leader with records waits is
    /// drained (no new requests; the ones out are answered) and then closed, and its slot
    /// goes to the waiting leader, searched from a point that advances at every handover so
    /// every leader gets its turn. A connection to a leader with nothing to send gives its
    /// slot up at once to one that has. No partition is left without a way to its leader.
    fn assign_targets(&mut self, now: Instant) {
        let mut wanted: Vec<Target, BROKERS> = Vec::new();
        let mut waiting = false;
        if self.metadata.known {
            let work = self.partitions_with_work();
            let n = self.metadata.partitions.len();
            // 0. Leaders with records that hold a slot keep it (until their turn is over);
            // 1. then leaders with records that wait, from the rotation point;
            // 2. then the leader whose turn just ended, if it has records again;
            // 3. then the other leaders, while slots are free.
            for pass in 0..4 {
                for k in 0..n {
                    let index = (self.rotation + k) % n;
                    let Some(leader) = self.metadata.partitions[index].leader else {
                        continue;
                    };
                    let t = Target::Node(leader);
                    let serving = self.serves(t);
                    let reachable = serving || self.metadata.broker(leader).is_some();
                    let last = self.turn_over == Some(t);
                    let take = match pass {
                        0 => work[index] && serving,
                        1 => work[index] && !serving && !last,
                        2 => work[index] && !serving && last,
                        _ => !work[index] && reachable,
                    };
                    if !take || wanted.contains(&t) {
                        continue;
                    }
                    if (1..=2).contains(&pass) && !reachable {
                        // Its address was not kept (more brokers than slots): ask again.
                        self.want_metadata_paced(now);
                        continue;
                    }
                    if wanted.push(t).is_err() && pass < 3 {
                        waiting = true;
                    }
                }
            }
        }
        let any_usable = self
            .conns
            .iter()
            .any(|c| c.target.is_some() && !matches!(c.state, ConnState::Idle { .. }));
        // With no connection up and no wanted broker whose address is known (none named
        // yet, or the full table kept others), only a bootstrap address leads to metadata.
        let reachable = wanted.iter().any(|&t| self.endpoint_of(Some(t)).is_some());
        if !any_usable && !reachable {
            wanted.clear();
            // The next bootstrap address in turn, unless another may be dialled sooner.
            let count = self.bootstrap.len().max(1);
            let n = (0..count)
                .map(|k| (self.bootstrap_next + k) % count)
                .min_by_key(|&n| self.dials.ready_at(Target::Bootstrap(n as u8)))
                .unwrap_or(0);
            let _ = wanted.push(Target::Bootstrap(n as u8));
        }
        let leader_waits = waiting
            || wanted
                .iter()
                .any(|&t| !self.conns.iter().any(|c| c.target == Some(t)));
        for i in 0..BROKERS {
            let c = &mut self.conns[i];
            let Some(t) = c.target else { continue };
            if wanted.contains(&t) || matches!(t, Target::Bootstrap(_)) {
                continue;
            }
            if matches!(c.state, ConnState::Idle { .. }) {
                // Free idle slots whose target is no longer wanted.
                c.target = None;
                c.draining = false;
            } else if leader_waits && !c.draining {
                // A live connection to a leader that needs none, while another does.
                c.draining = true;
            }
        }
        // A turn is over: the oldest serving connection hands its slot on.
        self.turn_ends = None;
        if waiting && !self.conns.iter().any(|c| c.draining) {
            let oldest = (0..BROKERS)
                .filter(|&i| {
                    matches!(self.conns[i].target, Some(Target::Node(_)))
                        && !matches!(self.conns[i].state, ConnState::Idle { .. })
                })
                .min_by_key(|&i| self.conns[i].assigned_at);
            if let Some(i) = oldest {
                let ends = self.conns[i].assigned_at + self.connection_turn;
                if ends <= now {
                    debug!("connection {:?}: turn over, handing the slot on", i);
                    self.conns[i].draining = true;
                } else {
                    self.turn_ends = Some(ends);
                }
            }
        }
        // Drained connections close; their slots are free for the next leader.
        for i in 0..BROKERS {
            let c = &self.conns[i];
            if c.draining
                && c.pending.is_empty()
                && !matches!(c.state, ConnState::Idle { .. })
                && !self.to_close.contains(&ConnId(i as u8))
            {
                let _ = self.to_close.push(ConnId(i as u8));
                let c = &mut self.conns[i];
                self.turn_over = c.target;
                c.state = ConnState::Idle { retry_at: now };
                c.versions = Default::default();
                c.target = None;
                c.draining = false;
                self.rotation = self.rotation.wrapping_add(1);
            }
        }
        for t in wanted {
            if self.conns.iter().any(|c| c.target == Some(t)) {
                continue;
            }
            // A free slot the transport has closed already first; one it is yet to close
            // (see `poll_close`) connects once it has.
            let mut free = (0..BROKERS)
                .filter(|&i| self.conns[i].target.is_none())
                .min_by_key(|&i| self.to_close.contains(&ConnId(i as u8)));
            if free.is_none()
                && matches!(t, Target::Node(_))
                && let Some(spare) = (0..BROKERS).find(|&i| self.is_spare_bootstrap(i))
            {
                // A leader needs the slot the spare bootstrap connection holds.
                let _ = self.to_close.push(ConnId(spare as u8));
                self.lose(spare, now, false, false);
                free = Some(spare);
            }
            if let Some(i) = free {
                // The target's own backoff, whichever slot it had before.
                let retry_at = self.dials.ready_at(t);
                let c = &mut self.conns[i];
                c.target = Some(t);
                c.assigned_at = now;
                c.draining = false;
                c.state = ConnState::Idle { retry_at };
            }
        }
        // A slot given to a leader whose address the full table did not keep connects once
        // a metadata answer brings it (the table keeps the brokers slots are given to).
        let unknown = self.conns.iter().any(|c| {
            matches!(c.state, ConnState::Idle { .. })
                && c.target.is_some()
                && self.endpoint_of(c.target).is_none()
        });
        if unknown {
            self.want_metadata_paced(now);
        }
    }

    /// Asks for metadata no sooner than one connection turn after the last answer: while
    /// leaders outnumber the slots, the addresses of the ones not kept are learnt again at
    /// most once a turn.
    fn want_metadata_paced(&mut self, now: Instant) {
        let at = self
            .metadata_fetched_at
            .map_or(now, |t| (t + self.connection_turn).max(now))
            .max(self.metadata_not_before(now));
        if self.metadata_due.is_none_or(|t| t > at) {
            self.metadata_due = Some(at);
        }
    }

    /// The transport lost connection `i`, or the client gave it up: everything out on it is
    /// unanswered after being written. A lost connection may mean a moved or dead leader, so
    /// metadata is refreshed when `refresh`. `failed`: the broker failed it (not a spare
    /// connection the client let go), which delays the next dial of its target.
    fn lose(&mut self, i: usize, now: Instant, refresh: bool, failed: bool) {
        let retry_at = match self.conns[i].target {
            Some(t) if failed => self.dials.failed(t, now),
            Some(t) => self.dials.ready_at(t).max(now),
            None => now,
        };
        let c = &mut self.conns[i];
        c.state = ConnState::Idle { retry_at };
        c.versions = Default::default();
        c.draining = false;
        if let Some(Target::Bootstrap(_)) = c.target {
            // Try the next bootstrap address next time.
            self.bootstrap_next = self.bootstrap_next.wrapping_add(1);
            c.target = None;
        }
        while let Some(p) = self.conns[i].pending.pop_front() {
            match p.kind {
                PendingKind::ApiVersions => {}
                PendingKind::Metadata => self.want_metadata(now),
                PendingKind::InitProducerId => self.sequencer.on_init_producer_id(now, Err(None)),
                PendingKind::Produce(batches) => {
                    for (token, _) in batches {
                        let _ = self.sequencer.on_produce_result(
                            token,
                            now,
                            ProduceResult::LostAfterWrite,
                        );
                    }
                }
            }
        }
        if refresh {
            self.want_metadata(now);
        }
    }

    fn drop_connection(&mut self, i: usize, now: Instant) {
        let _ = self.to_close.push(ConnId(i as u8));
        self.lose(i, now, true, true);
    }

    /// Connection `i` is a bootstrap connection up and idle, kept only to carry metadata
    /// until a leader's connection is ready.
    fn is_spare_bootstrap(&self, i: usize) -> bool {
        let c = &self.conns[i];
        self.metadata.known
            && matches!(c.target, Some(Target::Bootstrap(_)))
            && c.pending.is_empty()
            && !matches!(c.state, ConnState::Idle { .. })
            && !self.to_close.contains(&ConnId(i as u8))
    }

    fn transmit_ready(&mut self, i: usize, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let versions = self.conns[i].versions;
        // Metadata first: routing depends on it. One request at a time, cluster-wide.
        let metadata_out = self.conns.iter().any(|c| {
            c.pending
                .iter()
                .any(|p| matches!(p.kind, PendingKind::Metadata))
        });
        if self.metadata_due.is_some_and(|t| t <= now)
            && !metadata_out
            && let Some(version) = versions.metadata
        {
            let mut topics: Vec<MetadataRequestTopic<'_>, TOPICS> = Vec::new();
            for t in &self.metadata.topics {
                let _ = topics.push(MetadataRequestTopic {
                    topic_id: [0; 16],
                    name: Some(t.name.as_str()),
                });
            }
            let request = MetadataRequest {
                topics: Some(List::from_slice(&topics)),
                allow_auto_topic_creation: false,
                include_cluster_authorized_operations: false,
                include_topic_authorized_operations: false,
            };
            let n = self.conns[i].send_request(
                &self.client_id,
                buf,
                version,
                &request,
                now,
                PendingKind::Metadata,
            )?;
            // The next refresh is scheduled by the answer (or by the loss of this request).
            self.metadata_due = None;
            return Some(n);
        }
        if matches!(self.sequencer.identity(), Identity::NoId { .. })
            && let Some(version) = versions.init_producer_id
            && self.sequencer.poll_init_producer_id(now)
        {
            let request = InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: i32::MAX,
                producer_id: -1,
                producer_epoch: -1,
            };
            let n = self.conns[i].send_request(
                &self.client_id,
                buf,
                version,
                &request,
                now,
                PendingKind::InitProducerId,
            );
            if n.is_none() {
                self.sequencer.on_init_producer_id(now, Err(None));
            }
            return n;
        }
        let Some(Target::Node(node)) = self.conns[i].target else {
            return None;
        };
        let version = versions.produce?;
        self.transmit_produce(i, node, version, now, buf)
    }

    fn transmit_produce(
        &mut self,
        i: usize,
        node: i32,
        version: i16,
        now: Instant,
        buf: &mut [u8],
    ) -> Option<usize> {
        // Take batches while the request certainly fits: every batch is at most batch_bytes.
        let mut budget = buf
            .len()
            .checked_sub(REQUEST_OVERHEAD + self.client_id.len())?;
        let mut taken: Vec<(BatchToken, u16), BATCHES> = Vec::new();
        let mut topics_used: Vec<u8, TOPICS> = Vec::new();
        for index in 0..self.metadata.partitions.len() {
            let p = self.metadata.partitions[index];
            if p.leader != Some(node) {
                continue;
            }
            let topic_cost = if topics_used.contains(&p.topic) {
                0
            } else {
                ENTRY_OVERHEAD + self.metadata.topics[usize::from(p.topic)].name.len()
            };
            // One batch per partition per request: a request names each partition once, and
            // further batches of the partition pipeline in the following requests.
            let cost = topic_cost + ENTRY_OVERHEAD + self.batch_bytes;
            if budget < cost || taken.is_full() {
                break;
            }
            if self.state_may_be_forgotten(index, now) {
                self.sequencer
                    .producer_state_may_be_forgotten(PartitionIndex(index as u16));
            }
            if self.durable {
                // The stamp must be durable before a request carrying it leaves.
                let Some((token, stamp)) =
                    self.sequencer.peek_send(PartitionIndex(index as u16), now)
                else {
                    continue;
                };
                let m = &mut self.mirror[token.slot()];
                if m.meta != MetaState::Stamped(stamp) {
                    if m.batch {
                        m.want_stamp = true;
                    }
                    continue;
                }
            }
            let Some(permit) = self.sequencer.next_send(PartitionIndex(index as u16), now) else {
                continue;
            };
            let slot = permit.token.slot();
            let len = match self.slots[slot] {
                SlotUse::Sealed { len } => len,
                _ => 0,
            };
            let stamped = len > 0
                && wire::stamp(
                    chunk(self.storage.as_mut(), self.batch_bytes, self.reserve, slot)
                        .get_mut(..len)
                        .unwrap_or(&mut []),
                    permit.stamp.producer_id.0,
                    permit.stamp.epoch.0,
                    permit.stamp.base_sequence.get(),
                )
                .is_ok();
            if !stamped {
                // Storage does not hold this batch: a client bug, never network input. Give
                // the batch its outcome rather than send garbage.
                let _ =
                    self.sequencer
                        .on_produce_result(permit.token, now, ProduceResult::NotWritten);
                let _ = self.sequencer.cancel(permit.token, now);
                continue;
            }
            budget -= cost;
            if topic_cost > 0 {
                let _ = topics_used.push(p.topic);
            }
            let _ = taken.push((permit.token, index as u16));
        }
        if taken.is_empty() {
            return None;
        }
        let storage = self.storage.as_ref();
        let size = self.batch_bytes;
        let mut partitions: Vec<Vec<ProducePartition<'_>, BATCHES>, TOPICS> = Vec::new();
        for _ in 0..self.metadata.topics.len() {
            let _ = partitions.push(Vec::new());
        }
        for &(token, index) in &taken {
            let slot = token.slot();
            let p = self.metadata.partitions[usize::from(index)];
            let len = match self.slots[slot] {
                SlotUse::Sealed { len, .. } => len,
                _ => 0,
            };
            let start = slot * size + self.reserve;
            let records = storage.get(start..start + len);
            if let Some(list) = partitions.get_mut(usize::from(p.topic)) {
                let _ = list.push(ProducePartition {
                    index: p.partition,
                    records,
                });
            }
        }
        let mut topics: Vec<ProduceTopic<'_>, TOPICS> = Vec::new();
        for (t, list) in partitions.iter().enumerate() {
            if !list.is_empty() {
                let _ = topics.push(ProduceTopic {
                    name: self.metadata.topics[t].name.as_str(),
                    partitions: List::from_slice(list),
                });
            }
        }
        let request = ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: self.request_timeout.as_millis() as i32,
            topics: List::from_slice(&topics),
        };
        let sent = self.conns[i].send_request(
            &self.client_id,
            buf,
            version,
            &request,
            now,
            PendingKind::Produce(taken.clone()),
        );
        if sent.is_some() {
            return sent;
        }
        // Could not be encoded or queued: none of it left.
        for (token, _) in taken {
            let _ = self
                .sequencer
                .on_produce_result(token, now, ProduceResult::NotWritten);
        }
        None
    }

    /// Decodes a response, tolerating (and logging) bytes after its body.
    fn decode<'f, B: wire::ResponseBody<'f>>(
        frame: &'f [u8],
        version: i16,
    ) -> Option<(ResponseHeader, B)> {
        let (header, body, trailing) = wire::decode_response_lenient::<B>(frame, version).ok()?;
        if trailing > 0 {
            debug!("{:?} trailing bytes after a response", trailing);
        }
        Some((header, body))
    }

    fn check_correlation(pending: &Pending<BATCHES>, header: &ResponseHeader) -> bool {
        header.correlation_id == pending.correlation
    }

    fn on_api_versions(
        &mut self,
        i: usize,
        p: &Pending<BATCHES>,
        frame: &[u8],
        _now: Instant,
    ) -> bool {
        let Some((header, response)) = Self::decode::<ApiVersionsResponse<'_>>(frame, p.version)
        else {
            return false;
        };
        if !Self::check_correlation(p, &header) {
            return false;
        }
        if response.error_code == ErrorCode::UNSUPPORTED_VERSION.0 && p.version > 0 {
            // Ask again in the version every broker understands.
            self.conns[i].state = ConnState::Handshake {
                version: 0,
                sent: false,
            };
            return true;
        }
        let versions = response.negotiate_all();
        if response.error_code != 0
            || versions.produce.is_none()
            || versions.metadata.is_none()
            || versions.init_producer_id.is_none()
        {
            warn!("broker lacks the APIs an idempotent producer needs");
            return false;
        }
        self.conns[i].versions = versions;
        self.conns[i].state = ConnState::Ready;
        true
    }

    fn on_init_producer_id(&mut self, p: &Pending<BATCHES>, frame: &[u8], now: Instant) -> bool {
        let Some((header, r)) = Self::decode::<InitProducerIdResponse>(frame, p.version) else {
            return false;
        };
        if !Self::check_correlation(p, &header) {
            return false;
        }
        let answer = if r.error_code == 0 {
            Ok((ProducerId(r.producer_id), ProducerEpoch(r.producer_epoch)))
        } else {
            Err(Some(ErrorCode(r.error_code)))
        };
        self.sequencer.on_init_producer_id(now, answer);
        true
    }

    fn on_produce(
        &mut self,
        p: &Pending<BATCHES>,
        batches: &Vec<(BatchToken, u16), BATCHES>,
        frame: &[u8],
        now: Instant,
    ) -> bool {
        let Some((header, response)) = Self::decode::<ProduceResponse<'_>>(frame, p.version) else {
            return false;
        };
        if !Self::check_correlation(p, &header) {
            return false;
        }
        let mut answered: Vec<bool, BATCHES> = Vec::new();
        for _ in batches {
            let _ = answered.push(false);
        }
        for t in &response.topics {
            let Some(topic) = self.metadata.topic_index(t.name) else {
                continue;
            };
            for part in &t.partitions {
                let found = batches.iter().position(|&(_, index)| {
                    self.metadata
                        .partitions
                        .get(usize::from(index))
                        .is_some_and(|m| m.topic == topic && m.partition == part.index)
                });
                let Some(k) = found else { continue };
                if answered[k] {
                    continue;
                }
                answered[k] = true;
                let result = ProduceResult::Answered {
                    error: ErrorCode(part.error_code),
                    base_offset: part.base_offset,
                };
                let Ok(class) = self.sequencer.on_produce_result(batches[k].0, now, result) else {
                    continue;
                };
                if class.refresh_metadata {
                    self.want_metadata(now);
                }
                if let Attempt::Appended { .. } = class.attempt {
                    let newest = self.batch_max_timestamp(batches[k].0.slot());
                    if let Some(at) = self.acked_at.get_mut(usize::from(batches[k].1)) {
                        *at = Some((now, newest.unwrap_or(NO_TIMESTAMP)));
                    }
                }
            }
        }
        // A batch the broker did not answer for was written and is unanswered.
        for (k, &(token, _)) in batches.iter().enumerate() {
            if !answered[k] {
                let _ = self
                    .sequencer
                    .on_produce_result(token, now, ProduceResult::LostAfterWrite);
            }
        }
        true
    }

    fn next_wakeup(&self, now: Instant, sequencer: Option<Instant>) -> Option<Instant> {
        let linger = self
            .open
            .iter()
            .flatten()
            .filter_map(|t| match self.slots[t.slot()] {
                SlotUse::Open { opened_at, .. } => Some(opened_at + self.linger),
                _ => None,
            });
        let timeouts = self
            .conns
            .iter()
            .filter_map(|c| c.deadline(self.request_timeout));
        let reconnects = self.conns.iter().filter_map(|c| match (c.target, c.state) {
            (Some(_), ConnState::Idle { retry_at }) => Some(retry_at),
            _ => None,
        });
        let metadata = self
            .metadata_due
            .into_iter()
            .chain(self.metadata_fetched_at.map(|t| t + self.metadata_max_age));
        // A socket to close, or a slot that may connect now (a connection handed its slot
        // on, or a leader waits for one): the transport's next turn does it.
        let connect_now = !self.to_close.is_empty()
            || self.conns.iter().any(|c| {
                matches!(c.state, ConnState::Idle { retry_at } if retry_at <= now)
                    && self.endpoint_of(c.target).is_some()
            });
        if connect_now {
            return Some(now);
        }
        sequencer
            .into_iter()
            .chain(linger)
            .chain(timeouts)
            .chain(reconnects)
            .chain(metadata)
            .chain(self.turn_ends)
            .map(|t| t.max(now))
            .filter(|&t| t > now)
            .min()
    }
}
