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
//!
//! One [`Client`], its parts in one file each (every one an `impl Client` block over the same
//! fields, defined here):
//!
//! - `record`, `delivery`: what goes in ([`ProducerRecord`]) and comes out
//!   ([`ClientDelivery`]).
//! - `accumulator`: records into open batches in the storage, lingering, sealing, flushing.
//! - `timers`: [`Client::poll`], and the next instant to be polled at.
//! - `connections`: the connection slots' lives (dial, handshake start, loss, close);
//!   `connection`: one connection's state and requests; `dial`: reconnect backoff.
//! - `auth`, `credentials`: SASL authentication of each connection (and again before its
//!   session ends), over the client's own copy of the credentials.
//! - `tls`: a TLS failure the transport reports stops the producer (see [`crate::tls`]).
//! - `routing`: which broker or bootstrap address each slot serves, and connection turns.
//! - `requests`, `responses`: building requests, handling their answers.
//! - `metadata`, `metadata_answer`: the cluster as known, applying an answer, when to ask.
//! - `lifetime`: the wall clock and the producer-state lifetime.
//! - `persist`, `restore`, `durable`: the durable mirror, restore after a restart, and the
//!   stored items' encoding.
//! - `scratch`: working memory of single calls, sized by the [`Capacities`] once.

mod accumulator;
mod auth;
mod config;
mod connection;
mod connections;
#[cfg(feature = "sasl")]
mod credentials;
mod delivery;
mod dial;
pub(crate) mod durable;
mod lifetime;
mod metadata;
mod metadata_answer;
mod partitioner;
mod persist;
mod record;
mod requests;
mod responses;
mod restore;
mod routing;
mod scratch;
mod timers;
mod tls;

use core::time::Duration;

use heapless::String;

#[cfg(feature = "sasl-scram")]
pub use auth::SCRAM_ITERATIONS_PER_POLL;
pub use config::{ClientConfig, ClientConfigError, MAX_REQUESTS_PER_CONNECTION};
#[cfg(feature = "sasl")]
pub use config::{
    Entropy, MAX_SASL_EXTENSION_BYTES, MAX_SASL_EXTENSIONS, MAX_SASL_SECRET, MAX_SASL_USERNAME,
};
pub use connection::{ConnId, ConnState, Target};
pub use delivery::{ClientDelivery, RecordDeliveries, RecordDelivery};
pub use metadata::{Broker, Endpoint, HOST_MAX, Metadata, Partition, Topic};
pub use partitioner::{StickyPartitioner, partition_for_key};
pub(crate) use record::NO_TIMESTAMP;
pub use record::{ProducerRecord, Receipt, SendError};

pub use durable::{
    BATCH_HEADER, PersistOp, RestoreError, RestoreOptions, RestoreSummary, StorageKey,
};

use accumulator::SlotUse;
use connection::Connection;
#[cfg(feature = "sasl")]
use credentials::Credentials;
use dial::Dials;
use durable::{META_LEN, Mirror};
use scratch::Scratch;

use crate::backoff::{Backoff, Jitter};
use crate::capacity::{
    Array, BrokerList, Capacities, PerBatch, PerBroker, PerPartition, PerTopic, Table,
};
use crate::state::{BatchToken, Counters, Sequencer, TokenError};
use crate::time::Instant;

/// The producer client. `S` is the batch storage (`batches * batch_bytes` bytes: a static
/// buffer on targets, a `Vec` on hosts); `C` the caller's [`Capacities`]: topics, partitions
/// across them, batches held at once, and broker connections.
pub struct Client<S, C: Capacities> {
    client_id: String<64>,
    request_timeout: Duration,
    linger: Duration,
    batch_bytes: usize,
    /// When each broker and bootstrap address may be dialled again.
    dials: Dials<C>,
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
    acked_at: PerPartition<C, Option<(Instant, i64)>>,
    /// Where the search for a waiting leader starts: advanced at each handed-over slot, so
    /// leaders take turns in rotation when they outnumber the slots.
    rotation: usize,
    /// When the serving connection with the oldest turn may be asked to hand its slot over
    /// (a leader with records waits for one).
    turn_ends: Option<Instant>,
    /// The leader whose turn ended last: it waits behind the others that wait.
    turn_over: Option<Target>,
    sequencer: Sequencer<C>,
    metadata: Metadata<C>,
    bootstrap: BrokerList<C, Endpoint>,
    bootstrap_next: usize,
    storage: S,
    slots: PerBatch<C, SlotUse>,
    open: PerPartition<C, Option<BatchToken>>,
    sticky: PerTopic<C, StickyPartitioner>,
    conns: PerBroker<C, Connection<C>>,
    to_close: BrokerList<C, ConnId>,
    metadata_due: Option<Instant>,
    metadata_fetched_at: Option<Instant>,
    /// Bytes in front of each batch kept for its durable header (0 when not durable).
    reserve: usize,
    durable: bool,
    /// What the durable store holds per batch slot.
    mirror: PerBatch<C, Mirror>,
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
    /// Working memory of single calls, kept here so that no call needs stack in proportion
    /// to a capacity.
    scratch: Scratch<C>,
    /// The SASL mechanism and the client's copy of its credentials (`None`: no SASL).
    #[cfg(feature = "sasl")]
    sasl: Option<Credentials>,
    /// Authentication failed with this: the producer stopped, nothing is dialled.
    #[cfg(feature = "sasl")]
    sasl_error: Option<crate::sasl::Error>,
    /// A TLS handshake failed for good with this: the producer stopped, nothing is dialled.
    tls_error: Option<crate::tls::TlsFailure>,
}

impl<S, C: Capacities> Client<S, C>
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
    ) -> Result<Self, ClientConfigError>
    where
        C: Default,
    {
        Self::with_capacities(config, &C::default(), bootstrap, topics, storage)
    }

    /// [`Client::new`] with capacities chosen at run time (a host's, from its
    /// configuration).
    pub fn with_capacities(
        config: ClientConfig<'_>,
        capacities: &C,
        bootstrap: &[&str],
        topics: &[&str],
        storage: S,
    ) -> Result<Self, ClientConfigError> {
        let (n_topics, n_partitions) = (capacities.topics(), capacities.partitions());
        let (n_batches, n_brokers) = (capacities.batches(), capacities.brokers());
        // The capacities first: nothing is allocated for a refused configuration.
        config
            .producer
            .validate(n_partitions, n_batches)
            .map_err(ClientConfigError::Producer)?;
        if n_brokers == 0 || n_brokers > usize::from(u8::MAX) {
            return Err(ClientConfigError::Bootstrap);
        }
        if n_topics > usize::from(u8::MAX) {
            return Err(ClientConfigError::Topic);
        }
        let max = storage.as_ref().len() / n_batches.max(1);
        config.check_batch_bytes(max)?;
        config.check_reconnect_backoff()?;
        let timeout_ms = config.request_timeout.as_millis();
        if timeout_ms == 0 || timeout_ms > i32::MAX as u128 {
            return Err(ClientConfigError::RequestTimeout);
        }
        let client_id =
            String::try_from(config.client_id).map_err(|_| ClientConfigError::ClientId)?;
        #[cfg(feature = "sasl")]
        let sasl = config
            .sasl
            .as_ref()
            .map(|m| Credentials::new(m, config.entropy))
            .transpose()?;
        let mut boot = Table::new(n_brokers, Endpoint::default());
        for address in bootstrap {
            let endpoint = Endpoint::parse(address).ok_or(ClientConfigError::Bootstrap)?;
            boot.push(endpoint)
                .map_err(|_| ClientConfigError::Bootstrap)?;
        }
        if boot.is_empty() {
            return Err(ClientConfigError::Bootstrap);
        }
        let mut metadata = Metadata::new(capacities);
        for name in topics {
            let name = String::try_from(*name).map_err(|_| ClientConfigError::Topic)?;
            if name.is_empty() {
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
        let mut sequencer = Sequencer::with_capacities(config.producer, capacities)
            .map_err(ClientConfigError::Producer)?;
        let reserve = if config.durable { BATCH_HEADER } else { 0 };
        if config.durable {
            // A slot is reused only once the store no longer holds its old batch.
            sequencer.set_retain_delivered(true);
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
            dials: Dials::new(n_brokers, reconnect, jitter.fork()),
            metadata_max_age: config.metadata_max_age,
            metadata_rule: config.producer.retry_rule(),
            metadata_jitter: jitter.fork(),
            metadata_failures: 0,
            metadata_wait: config.producer.retry_backoff,
            connection_turn: config.connection_turn,
            producer_state_ttl: config.producer_state_ttl,
            wall_at_zero_ms: None,
            acked_at: Array::new(n_partitions, None),
            rotation: 0,
            turn_ends: None,
            turn_over: None,
            sequencer,
            metadata,
            bootstrap: boot,
            bootstrap_next: 0,
            storage,
            slots: Array::new(n_batches, SlotUse::Free),
            open: Array::new(n_partitions, None),
            sticky: Array::new(n_topics, StickyPartitioner::default()),
            conns: Array::from_fn(n_brokers, |_| Connection::new(n_batches)),
            to_close: Table::new(n_brokers, ConnId(0)),
            metadata_due: Some(Instant::ZERO),
            metadata_fetched_at: None,
            reserve,
            durable: config.durable,
            mirror: Array::new(n_batches, Mirror::default()),
            persisting: None,
            meta_buf: [0; META_LEN],
            storage_failed: false,
            fresh: true,
            last_now: Instant::ZERO,
            next_tag: 0,
            handed_out: None,
            scratch: Scratch::new(capacities),
            #[cfg(feature = "sasl")]
            sasl,
            #[cfg(feature = "sasl")]
            sasl_error: None,
            tls_error: None,
        })
    }

    /// The idempotence state: identity, ledger, counters.
    pub fn sequencer(&self) -> &Sequencer<C> {
        &self.sequencer
    }

    /// Producer counters.
    pub fn counters(&self) -> Counters {
        self.sequencer.counters()
    }

    /// What the client knows of the cluster.
    pub fn metadata(&self) -> &Metadata<C> {
        &self.metadata
    }

    /// Largest record batch in bytes, as configured (with `durable`, including the storage
    /// header in front of each batch).
    pub fn batch_bytes(&self) -> usize {
        self.batch_bytes
    }

    /// Batch slots: batches held at once.
    pub fn batch_slots(&self) -> usize {
        self.slots.len()
    }

    /// Every accepted record has its outcome, drained or not; what a flush waits for.
    pub fn is_decided(&self) -> bool {
        self.sequencer.is_decided()
    }

    /// Nothing is held: every accepted record has its outcome drained.
    pub fn is_idle(&self) -> bool {
        self.sequencer.is_empty()
    }

    /// Gives up on a batch now, as its deadline passing would (see
    /// [`cancel_decision`](crate::state::cancel_decision)).
    pub fn cancel(&mut self, batch: BatchToken, now: Instant) -> Result<(), TokenError> {
        self.sequencer.cancel(batch, now).map(|_| ())
    }

    /// Name of the topic with index `topic`.
    pub fn topic_name(&self, topic: u8) -> Option<&str> {
        self.metadata
            .topics
            .get(usize::from(topic))
            .map(|t| t.name.as_str())
    }
}
