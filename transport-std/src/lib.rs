//! A blocking idempotent Kafka producer over std sockets: the `producer-core` client driven by
//! non-blocking `mio` sockets and `std::time`, with no async runtime.
//!
//! The transport only moves bytes and time. Every decision (batching, routing, retries,
//! deadlines, fencing, outcomes) is made in `producer-core`, exactly as on a microcontroller.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use transport_std::{Producer, ProducerConfig, ProducerRecord};
//!
//! let mut producer = Producer::new(ProducerConfig::new(["127.0.0.1:9092"], ["sensors"]))?;
//! let deadline = Instant::now() + Duration::from_secs(1);
//! let receipt = producer.send(&ProducerRecord::value("sensors", b"21.5"), deadline)?;
//! producer.flush(deadline + Duration::from_millis(100));
//! while let Some(d) = producer.poll_delivery() {
//!     println!("{:?}: {:?} at offset {:?}", d.receipt, d.outcome, d.offset);
//! }
//! # let _ = receipt;
//! # Ok::<(), transport_std::Error>(())
//! ```

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant, SystemTime, UNIX_EPOCH};

mod capacity;
mod config;
pub mod file_flash;
mod outcomes;
mod resolver;
mod sasl;
mod store;
mod tls;

pub use capacity::{Heap, Sizes};
pub use config::{
    DurableState, Error, OAuthToken, OAuthTokenSource, ProducerConfig, batch_bytes_range,
};
pub use producer_core::client::Entropy;
pub use producer_core::sasl::{Error as SaslError, Mechanism};
pub use producer_core::state::FatalReason;
pub use producer_core::tls::TlsFailure;
pub use tls::{Pem, SecurityProtocol, TlsConfig, TlsRoots};

use file_flash::{FileFlash, PAGE_SIZE};
use outcomes::Unbounded;
use resolver::Resolver;
use store::{Store, persist, store_error};
use tls::{Conn, Handshake, Tls};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
pub use producer_core::client::RecordDelivery;
use producer_core::client::{Client, ConnId, RestoreOptions};
pub use producer_core::client::{Receipt, RestoreSummary};
use producer_core::driver::{self, ConnBuffers, Deliveries, send_step, turn};
// Everything a user of this crate names comes from here: no `producer_core` import needed.
pub use producer_core::ErrorCode;
pub use producer_core::client::{ClientConfig, ClientConfigError, ProducerRecord, SendError};
use producer_core::flash::BlockingAsync;
pub use producer_core::state::{
    BatchToken, Counters, NotPersistedReason, Outcome, OutcomeKind, PossiblyPersistedReason,
    UnknownOutcome,
};
use producer_core::time::Instant;
use producer_core::wire::FrameDecoder;
pub use producer_core::wire::RecordHeader;

/// Partition-table entries a [`Producer`] has by default ([`ProducerConfig::partitions`]):
/// across its topics, more than most clusters give a topic.
pub const PARTITIONS: usize = 4096;
/// Batches held at once by default ([`ProducerConfig::batches`]): buffered, in flight, or
/// decided and not yet drained.
pub const BATCHES: usize = 256;
/// Largest `batch_bytes` a [`Producer`] takes: Kafka's default `message.max.bytes`
/// (1 MiB and a little), beyond which a broker refuses the batch anyway. The producer keeps
/// [`ProducerConfig::batches`] of them.
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Broker connections a [`Producer`] has by default ([`ProducerConfig::brokers`]). More
/// partition leaders than connections still works: connections take turns (see
/// `producer_core::client`), at the cost of a reconnect per turn.
pub const BROKERS: usize = 8;

/// The poll token of the resolver's wake-ups (sockets use their slot number).
const WAKE: Token = Token(usize::MAX);

type CoreClient = Client<Vec<u8>, Sizes>;

/// A name lookup under way for a connection slot, for `host`.
struct Lookup {
    id: u64,
    since: StdInstant,
    host: String,
}

struct Socket {
    stream: TcpStream,
    /// TCP connected.
    connected: bool,
    /// The client was told (TCP connected and, with TLS, the handshake done).
    ready: bool,
    /// With TLS: the connection's rustls state.
    tls: Option<Tls>,
    since: StdInstant,
    /// `host:port` dialled, for the logs.
    peer: String,
}

impl Socket {
    /// The byte stream the driver's turn runs over.
    fn conn(&mut self) -> Conn<'_> {
        match &mut self.tls {
            Some(t) => Conn::Tls(&mut self.stream, t),
            None => Conn::Plain(&mut self.stream),
        }
    }
}

/// A connection slot's buffers: the largest response frame with its length, and one request.
type Buffers = ConnBuffers<Vec<u8>, Vec<u8>>;

/// The producer. Single-threaded: call [`Producer::send`], then drive it with
/// [`Producer::poll`] or [`Producer::flush`] and take outcomes with
/// [`Producer::poll_delivery`]. Its capacities (partitions, batches, broker connections)
/// come from its [`ProducerConfig`].
pub struct Producer {
    client: Box<CoreClient>,
    origin: StdInstant,
    poll: Poll,
    events: Events,
    sockets: Vec<Option<Socket>>,
    /// Name lookups under way, per slot (see `resolver`).
    lookups: Vec<Option<Lookup>>,
    resolver: Resolver,
    /// Per slot, kept across reconnections (zeroed lazily by the allocator: untouched pages
    /// cost nothing).
    buffers: Vec<Buffers>,
    frames: FrameDecoder,
    request_timeout: Duration,
    deliveries: Deliveries<Unbounded>,
    ready: Vec<usize>,
    store: Option<Store>,
    restored: RestoreSummary,
    storage_error: Option<String>,
    /// When the sockets last had a turn.
    last_turn: StdInstant,
    /// Where OAUTHBEARER tokens come from (see `sasl`).
    tokens: sasl::Tokens,
    /// With a TLS security protocol: every connection's rustls configuration.
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// A seed for the backoff jitter that differs between processes and runs: the standard
/// library's per-process random hash keys, the time and the process id.
fn jitter_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = SystemTime::now().duration_since(UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

impl Producer {
    /// Validates the configuration, then allocates what it asks for; connections open on the
    /// first poll.
    pub fn new(config: ProducerConfig<'_>) -> Result<Producer, Error> {
        let mut client_config = config.client;
        client_config.durable = config.durable.is_some();
        // Hosts that lost a broker together must not redial it in step.
        client_config.producer.jitter_seed = jitter_seed();
        // SCRAM nonces from the operating system's RNG, unless the caller gave a source.
        client_config.entropy = client_config.entropy.or(Some(sasl::OS_ENTROPY));
        let bootstrap: Vec<&str> = config.bootstrap.iter().map(String::as_str).collect();
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        // Checked before the storage is allocated: a wrong value gets the valid range (with
        // durable state, also within a page of the state file).
        config.check_batch_bytes()?;
        let sizes = config.check_capacities()?;
        let tls = config.check_security()?;
        let storage = vec![0u8; sizes.batches * config.client.batch_bytes];
        let mut client = Box::new(
            CoreClient::with_capacities(client_config, &sizes, &bootstrap, &topics, storage)
                .map_err(Error::Config)?,
        );
        let origin = StdInstant::now();
        let mut store = None;
        let mut restored = RestoreSummary::default();
        if let Some(state) = &config.durable {
            let pages = producer_core::flash::pages_needed::<BlockingAsync<FileFlash>>(
                config.client.batch_bytes,
                sizes.batches,
            )
            .map_err(|e| Error::Storage(e.to_string()))?;
            // Half again as many pages as the worst case, so garbage collection stays cheap.
            let pages = pages + pages / 2;
            let flash = FileFlash::open(&state.path, pages, state.sync)
                .map_err(|e| Error::Storage(format!("{}: {e}", state.path.display())))?;
            let buffer = vec![0u8; Store::buffer_len(config.client.batch_bytes)];
            let mut s = Store::new(
                BlockingAsync::new(flash),
                0..(pages * PAGE_SIZE) as u32,
                buffer,
                &client,
            )
            .map_err(|e| Error::Storage(store_error(e)))?;
            let deadline = Instant::from_micros(state.restored_deadline.as_micros() as u64);
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()
                .map(|d| d.as_millis() as i64);
            restored = s
                .restore_blocking(
                    &mut client,
                    RestoreOptions {
                        deadline,
                        now_ms,
                        producer_state_ttl: state.producer_state_ttl,
                    },
                )
                .map_err(|e| Error::Storage(store_error(e)))?;
            store = Some(s);
        }
        let poll = Poll::new().map_err(Error::Io)?;
        let resolver = Resolver::new(poll.registry(), WAKE).map_err(Error::Io)?;
        let mut producer = Producer {
            client,
            origin,
            poll,
            events: Events::with_capacity(64),
            sockets: (0..sizes.brokers).map(|_| None).collect(),
            lookups: (0..sizes.brokers).map(|_| None).collect(),
            resolver,
            buffers: (0..sizes.brokers)
                .map(|_| {
                    ConnBuffers::new(
                        vec![0u8; config.max_response_bytes as usize + 4],
                        vec![0u8; config.client.batch_bytes * 4 + 64 * 1024],
                    )
                })
                .collect(),
            frames: FrameDecoder::new(config.max_response_bytes),
            request_timeout: config.client.request_timeout,
            deliveries: Deliveries::new(Unbounded(VecDeque::with_capacity(sizes.batches))),
            ready: Vec::with_capacity(sizes.brokers),
            store,
            restored,
            storage_error: None,
            last_turn: StdInstant::now(),
            tokens: sasl::Tokens {
                source: config.oauth_token.clone(),
                failed_at: None,
            },
            tls,
        };
        producer.tell_time();
        Ok(producer)
    }

    /// The batches restored at startup whose outcomes are not handed out yet, as (tag,
    /// records): see [`Producer::send_tagged`].
    pub fn restored_batches(&self) -> Vec<(u64, u32)> {
        self.client.restored_batches().collect()
    }

    /// What was restored from the durable state at startup (all zero without one).
    pub fn restored(&self) -> RestoreSummary {
        self.restored
    }

    /// Writes what the client needs in the durable state; returns how many writes. A failed
    /// write stops the producer (see [`Error::Storage`]).
    fn persist(&mut self) -> usize {
        persist(&mut self.store, &mut self.client, &mut self.storage_error)
    }

    /// The durable state failed: the producer has stopped (see [`Error::Storage`]).
    pub fn storage_error(&self) -> Option<&str> {
        self.storage_error.as_deref()
    }

    fn now(&self) -> Instant {
        self.at(StdInstant::now())
    }

    /// Tells the client the wall clock (record timestamps are judged against it) and
    /// returns the current instant.
    fn tell_time(&mut self) -> Instant {
        let now = self.now();
        if let Ok(since_epoch) = SystemTime::now().duration_since(UNIX_EPOCH) {
            self.client
                .set_wall_clock(now, since_epoch.as_millis() as i64);
        }
        now
    }

    fn at(&self, t: StdInstant) -> Instant {
        Instant::from_micros(t.saturating_duration_since(self.origin).as_micros() as u64)
    }

    /// Accepts a record, to be decided by `deadline`. While the topic's partitions are not
    /// known yet, or every batch slot is taken, it drives the producer until they are, but
    /// never past the deadline. With durable state a slot frees only once its outcome is
    /// taken, so when every slot holds an outcome waiting for [`Producer::poll_delivery`],
    /// it returns [`Error::Send`]`(`[`SendError::Full`]`)` at once: take them, and send
    /// again.
    pub fn send(
        &mut self,
        record: &ProducerRecord<'_>,
        deadline: StdInstant,
    ) -> Result<Receipt, Error> {
        self.send_tagged(record, 0, deadline)
    }

    /// [`Producer::send`] with a tag for the batch this record opens, handed back with every
    /// record of the batch ([`RecordDelivery::batch_tag`]) and kept in the durable state:
    /// after a restart it tells which of the application's records a restored batch holds.
    /// The record's batch is stored (and survives a restart) only in a later call to the
    /// producer, never in this one: note where the record went before calling again.
    pub fn send_tagged(
        &mut self,
        record: &ProducerRecord<'_>,
        tag: u64,
        deadline: StdInstant,
    ) -> Result<Receipt, Error> {
        // No timestamp given: the system clock's, now (the client is told it too).
        let r = ProducerRecord {
            timestamp: record.timestamp.or_else(|| {
                Some(
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as i64),
                )
            }),
            ..*record
        };
        // Keep the wire moving while the caller only sends: one turn of the sockets, without
        // waiting, at most every millisecond. It comes before the record is accepted, never
        // after: a record's batch becomes durable only in a later call, so a caller can note
        // where the record went (as `produce --state-dir` does) before that.
        if self.last_turn.elapsed() >= Duration::from_millis(1) {
            self.poll(Duration::ZERO);
        }
        loop {
            let now = self.now();
            let (until, durable) = (self.at(deadline), self.store.is_some());
            match send_step(&mut self.client, &r, tag, until, now, durable) {
                std::task::Poll::Ready(Ok(receipt)) => return Ok(receipt),
                // The durable state failed: say how.
                std::task::Poll::Ready(Err(driver::Error::Send(SendError::Storage))) => {
                    let e = self.storage_error.clone().unwrap_or_default();
                    return Err(Error::Storage(e));
                }
                std::task::Poll::Ready(Err(e)) => return Err(e.into()),
                std::task::Poll::Pending => {
                    let left = deadline.saturating_duration_since(StdInstant::now());
                    self.poll(left.min(Duration::from_millis(10)));
                }
            }
        }
    }

    /// Seals open batches and drives the producer until every accepted record has its outcome
    /// or `deadline` passes. Returns whether everything was decided.
    pub fn flush(&mut self, deadline: StdInstant) -> bool {
        let now = self.now();
        self.client.flush(now);
        loop {
            self.collect();
            if self.storage_error.is_some() {
                return false;
            }
            // Durable outcomes stay in the client until taken one at a time (see
            // `poll_delivery`), so there "decided" is what is waited for.
            let done = if self.store.is_some() {
                self.client.is_decided()
            } else {
                self.client.is_idle()
            };
            if done {
                return true;
            }
            let left = deadline.saturating_duration_since(StdInstant::now());
            if left.is_zero() {
                return false;
            }
            self.poll(left);
        }
    }

    /// The next record outcome, if any is ready.
    ///
    /// With durable state, a batch's outcome stays in the state until the call after its
    /// last record was handed out: record each outcome before asking for the next, and a
    /// restart in between hands the batch's outcomes out again (identical) rather than lose
    /// them. Outcomes are thus handed out at least once across restarts, exactly once
    /// without one.
    pub fn poll_delivery(&mut self) -> Option<RecordDelivery> {
        self.collect();
        if self.store.is_none() {
            return self.deliveries.next(&mut self.client);
        }
        let (store, client, storage_error) =
            (&mut self.store, &mut self.client, &mut self.storage_error);
        self.deliveries.next_with(|| {
            // Outcomes are stored before they are handed out.
            persist(store, client, storage_error);
            let next = client.poll_delivery();
            if next.is_none() {
                // Everything taken: the store may forget the last batch now.
                persist(store, client, storage_error);
            }
            next
        })
    }

    /// Producer counters.
    pub fn counters(&self) -> Counters {
        self.client.counters()
    }

    /// Nothing is held: every accepted record's outcome was handed out.
    pub fn is_idle(&self) -> bool {
        self.client.is_idle() && self.deliveries.is_empty()
    }

    fn collect(&mut self) {
        if self.store.is_some() {
            return;
        }
        self.deliveries.collect(&mut self.client);
    }

    /// Drives I/O once: waits at most `timeout` for sockets or the next timer, then moves
    /// bytes and applies time.
    pub fn poll(&mut self, timeout: Duration) {
        self.last_turn = StdInstant::now();
        let now = self.tell_time();
        let wake = self.client.poll(now);
        self.renew_token();
        self.persist();
        self.close_requested();
        self.open_connections();
        self.transmit();
        let until_wake = wake.map_or(timeout, |w| {
            Duration::from_micros(w.as_micros().saturating_sub(now.as_micros()))
        });
        let wait = timeout.min(until_wake).min(Duration::from_millis(100));
        if self.poll.poll(&mut self.events, Some(wait)).is_err() {
            return;
        }
        // A scratch list kept across polls: the steady state allocates nothing.
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        ready.extend(self.events.iter().map(|e| e.token().0));
        for &i in &ready {
            if i != WAKE.0 {
                self.service(i);
            }
        }
        self.ready = ready;
        self.take_lookups();
        self.check_connect_timeouts();
        let now = self.now();
        self.client.poll(now);
        self.close_requested();
        self.transmit();
        self.collect();
    }

    /// Closes the sockets the client gave up on; their requests are already accounted for.
    fn close_requested(&mut self) {
        while let Some(conn) = self.client.poll_close() {
            self.drop_socket(usize::from(conn.0));
        }
    }

    /// Opens the connections the client asks for. A host name is looked up off the loop
    /// (see `resolver`); an address connects at once.
    fn open_connections(&mut self) {
        let now = self.now();
        while let Some((conn, endpoint)) = self.client.poll_connect(now) {
            let i = usize::from(conn.0);
            let (host, port) = (endpoint.host.to_string(), endpoint.port);
            if let Ok(ip) = host.parse::<IpAddr>() {
                let address = SocketAddr::new(ip, port);
                self.connect(i, address, &host);
                continue;
            }
            match self.resolver.lookup(&host, port) {
                Some(id) => {
                    self.lookups[i] = Some(Lookup {
                        id,
                        since: StdInstant::now(),
                        host,
                    });
                }
                None => self.client.on_connection_lost(conn, now),
            }
        }
    }

    /// Connects the slots whose lookups answered; a lookup that found nothing is a failed
    /// connection.
    fn take_lookups(&mut self) {
        while let Some(answer) = self.resolver.answer() {
            let Some(i) = self
                .lookups
                .iter()
                .position(|l| l.as_ref().is_some_and(|l| l.id == answer.id))
            else {
                // Timed out or closed meanwhile.
                continue;
            };
            let Some(lookup) = self.lookups[i].take() else {
                continue;
            };
            match answer.address {
                Some(address) => self.connect(i, address, &lookup.host),
                None => {
                    let now = self.now();
                    self.client.on_connection_lost(ConnId(i as u8), now);
                }
            }
        }
    }

    /// Connects slot `i` to `address`; with TLS, the certificate must name `host`.
    fn connect(&mut self, i: usize, address: SocketAddr, host: &str) {
        let tls = match self.tls.as_ref().map(|config| Tls::new(config, host)) {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(failure)) => {
                log::error!("TLS with {host}:{}: {failure}", address.port());
                let now = self.now();
                self.client.on_tls_failure(ConnId(i as u8), now, failure);
                return;
            }
        };
        let opened = TcpStream::connect(address).ok().and_then(|mut s| {
            self.poll
                .registry()
                .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
                .ok()
                .map(|()| s)
        });
        match opened {
            Some(stream) => {
                let _ = stream.set_nodelay(true);
                self.buffers[i].clear();
                self.sockets[i] = Some(Socket {
                    stream,
                    connected: false,
                    ready: false,
                    tls,
                    since: StdInstant::now(),
                    peer: format!("{host}:{}", address.port()),
                });
            }
            None => {
                let now = self.now();
                self.client.on_connection_lost(ConnId(i as u8), now);
            }
        }
    }

    fn check_connect_timeouts(&mut self) {
        for i in 0..self.lookups.len() {
            if self.lookups[i]
                .as_ref()
                .is_some_and(|l| l.since.elapsed() >= self.request_timeout)
            {
                log::info!("connection {i}: name lookup timed out");
                self.fail(i);
            }
        }
        // The connect timeout bounds the TLS handshake too.
        for i in 0..self.sockets.len() {
            if let Some(s) = &self.sockets[i]
                && !s.ready
                && s.since.elapsed() >= self.request_timeout
            {
                if s.connected && s.tls.is_some() {
                    log::warn!(
                        "TLS handshake with {} did not finish within the connect timeout ({:?})",
                        s.peer,
                        self.request_timeout
                    );
                }
                self.fail(i);
            }
        }
    }

    fn drop_socket(&mut self, i: usize) {
        self.lookups[i] = None;
        if let Some(mut s) = self.sockets[i].take() {
            let _ = self.poll.registry().deregister(&mut s.stream);
        }
    }

    fn fail(&mut self, i: usize) {
        self.drop_socket(i);
        let now = self.now();
        self.client.on_connection_lost(ConnId(i as u8), now);
    }

    /// TLS with slot `i`'s broker failed for good: the client stops the producer.
    fn tls_failed(&mut self, i: usize, failure: TlsFailure) {
        if let Some(s) = &self.sockets[i] {
            log::error!("TLS with {}: {failure}", s.peer);
        }
        self.drop_socket(i);
        let now = self.now();
        self.client.on_tls_failure(ConnId(i as u8), now, failure);
    }

    /// Why TLS failed, once it has: the producer stopped and dials no more.
    /// [`TlsFailure`]'s message says which setting to change.
    pub fn tls_error(&self) -> Option<TlsFailure> {
        self.client.tls_error()
    }

    fn service(&mut self, i: usize) {
        let now = self.now();
        let Some(s) = self.sockets.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        if !s.connected {
            match s.stream.take_error() {
                Ok(None) if s.stream.peer_addr().is_ok() => s.connected = true,
                Ok(None) => return,
                _ => return self.fail(i),
            }
        }
        if !s.ready {
            if let Some(t) = &mut s.tls {
                match t.handshake(&mut s.stream) {
                    Handshake::Pending => return,
                    Handshake::Done => {}
                    Handshake::Failed(failure) => return self.tls_failed(i, failure),
                    Handshake::Lost { heard } => {
                        if heard {
                            log::info!("TLS handshake with {} cut", s.peer);
                        } else {
                            log::warn!(
                                "TLS handshake with {} ended before the server answered: is \
                                 the listener PLAINTEXT?",
                                s.peer
                            );
                        }
                        return self.fail(i);
                    }
                }
            }
            s.ready = true;
            self.client.on_connected(ConnId(i as u8), now);
        }
        // What TLS holds for the socket first, as it is writable again.
        let flushed = match &mut s.tls {
            Some(t) => t.flush(&mut s.stream),
            None => Ok(()),
        };
        let mut io = s.conn();
        let buffers = &mut self.buffers[i];
        let conn = ConnId(i as u8);
        // What is unsent first, as the socket is writable again; then what arrived.
        let served = flushed
            .and_then(|()| buffers.write_to(&mut io))
            .and_then(|_| {
                turn::receive(&mut self.client, &mut io, buffers, &self.frames, conn, now)
            });
        if served.is_err() {
            self.lost(i);
        }
    }

    /// Slot `i`'s established connection broke: a loss, unless TLS says why for good.
    fn lost(&mut self, i: usize) {
        let failure = self.sockets[i]
            .as_mut()
            .and_then(|s| s.tls.as_mut())
            .and_then(|t| t.failure.take());
        match failure {
            Some(f) => self.tls_failed(i, f),
            None => self.fail(i),
        }
    }

    fn transmit(&mut self) {
        loop {
            self.persist();
            self.transmit_once();
            // Batches held back until their stamps are stored go once they are.
            if self.persist() == 0 {
                break;
            }
        }
    }

    fn transmit_once(&mut self) {
        for i in 0..self.sockets.len() {
            let now = self.now();
            let Some(s) = self.sockets[i].as_mut().filter(|s| s.ready) else {
                continue;
            };
            let mut io = s.conn();
            let conn = ConnId(i as u8);
            let buffers = &mut self.buffers[i];
            if turn::transmit(&mut self.client, &mut io, buffers, conn, now).is_err() {
                self.lost(i);
            }
        }
    }
}
