//! An async idempotent Kafka producer for microcontrollers: the `producer-core` client driven
//! by embassy-net TCP sockets and embassy-time, with no allocator.
//!
//! The transport only moves bytes and time. Every decision (batching, routing, retries,
//! deadlines, fencing, outcomes) is made in `producer-core`, exactly as in `transport-std` on
//! hosts, so the two behave the same and report the same outcomes.
//!
//! One task owns the [`Producer`]: it sends records, and drives the connections whenever it
//! awaits one of the producer's methods. Every method is cancel-safe (all state lives in the
//! producer, never in a suspended future), so the task may race them against its own events
//! with `embassy_futures::select`:
//!
//! ```ignore
//! loop {
//!     match select(sensor.next_reading(), producer.next_delivery(Instant::MAX)).await {
//!         Either::First(reading) => {
//!             let record = ProducerRecord { topic: "sensors", value: Some(&reading), ..base };
//!             producer.send(&record, Instant::now() + Duration::from_secs(5)).await?;
//!         }
//!         Either::Second(Some(delivery)) => report(delivery),
//!         Either::Second(None) => {}
//!     }
//! }
//! ```
//!
//! With TLS (feature `tls`, [`tls`]) the methods stay cancel-safe: the TLS sessions, whose
//! library keeps its progress inside its own futures, run in [`tls::TlsRunner::run`], which
//! the firmware runs beside the producer for its whole life (as it runs embassy-net's
//! runner); the producer and the runner share only byte queues and flags.
//!
//! Memory is the caller's: the capacities as one type ([`Fixed`]`<TOPICS, PARTITIONS,
//! BATCHES, BROKERS>`), batch storage (`BATCHES * batch_bytes` bytes) and one
//! [`ConnectionBuffers`] per broker connection. The embassy-net `StackResources` must have
//! room for `BROKERS` TCP sockets besides the DNS socket, DHCP's and the application's own.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[macro_use]
mod fmt;

mod buffers;
mod config;
mod durability;
mod link;
#[cfg(feature = "tls")]
pub mod tls;

use core::future::poll_fn;
use core::task::{Context, Poll};
use core::time::Duration;

use embassy_futures::select::{Either, select};
use embassy_net::dns::DnsQueryType;
use embassy_net::tcp::TcpSocket;
use embassy_net::{IpAddress, IpEndpoint, Stack};
use embassy_time::{Instant as EmbassyInstant, Timer};
use heapless::String;
use producer_core::capacity::{Array, PerBroker, Ring};
use producer_core::client::HOST_MAX;
use producer_core::client::{Client, ClientDelivery, ConnId};
use producer_core::driver::{Broken, Deliveries, send_step};
use producer_core::time::Instant;
use producer_core::wire::FrameDecoder;

pub use buffers::ConnectionBuffers;
pub use config::{MapAddress, ProducerConfig};
pub use durability::{Durability, Volatile};
pub use producer_core::client::RecordDelivery;
pub use producer_core::driver::Error;
// Everything a firmware names comes from here: no `producer_core` import needed.
#[cfg(feature = "flash")]
pub use config::RestoreOptions;
pub use producer_core::ErrorCode;
pub use producer_core::capacity::{Capacities, Fixed};
#[cfg(feature = "flash")]
pub use producer_core::client::RestoreSummary;
pub use producer_core::client::{
    ClientConfig, ClientConfigError, ProducerRecord, Receipt, SendError,
};
#[cfg(feature = "flash")]
pub use producer_core::flash::{BlockingAsync, FlashStore, Geometry, pages_needed};
pub use producer_core::sasl::Error as SaslError;
pub use producer_core::state::FatalReason;
pub use producer_core::state::{
    BatchToken, Counters, NotPersistedReason, Outcome, OutcomeKind, PossiblyPersistedReason,
    UnknownOutcome,
};
pub use producer_core::wire::RecordHeader;
#[cfg(feature = "sasl")]
pub use producer_core::{client::Entropy, sasl::Mechanism};

use link::{Link, Phase};

/// Why a turn of the connections handed control back to `drive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// The stop condition holds, or the time is up.
    Done,
    /// The client has writes for the durable store: they go before anything else moves.
    Persist,
}

/// When a drive of the connections hands control back to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// Only at the `until` instant.
    Until,
    /// As soon as anything moved (a record may now be accepted).
    Progress,
    /// When a record outcome is ready.
    Delivery,
    /// When every accepted record is decided.
    Decided,
}

/// The producer. `S` is the batch storage; `C` the capacities, the caller's, named once
/// (`Fixed<TOPICS, PARTITIONS, BATCHES, BROKERS>`): topics, partitions across them, batches
/// held at once (buffered, in flight, or decided and not yet taken), and broker
/// connections. `D` is where batches survive power cuts: nowhere
/// ([`Volatile`]) or a `FlashStore` (feature `flash`, `Producer::new_durable`).
pub struct Producer<'d, S, C: Capacities, D = Volatile> {
    stack: Stack<'d>,
    client: Client<S, C>,
    links: PerBroker<C, Link<'d>>,
    frames: FrameDecoder,
    map_address: Option<MapAddress>,
    connect_timeout: Duration,
    /// When the client next needs polling, from its last poll.
    wake: Option<Instant>,
    /// Outcomes taken from the client, not yet handed out. Bounded by the batch capacity:
    /// when it is full the client keeps the rest, and `send` sees its slots taken.
    deliveries:
        Deliveries<Ring<ClientDelivery, <C as Capacities>::Batches<Option<ClientDelivery>>>>,
    durability: D,
    /// A drive returned because the client wants an OAUTHBEARER token; until one is given,
    /// drives do not return for it again.
    #[cfg(feature = "sasl")]
    token_asked: bool,
    /// The TLS sessions' side shared with the producer, when it uses TLS.
    #[cfg(feature = "tls")]
    tls: Option<tls::TlsLinks<'d>>,
    /// `client.sasl` is set: with TLS, the protocol must be SASL_SSL.
    #[cfg(feature = "tls")]
    sasl_configured: bool,
}

/// The core's clock is the embassy clock: microseconds since boot.
fn core_now() -> Instant {
    to_core(EmbassyInstant::now())
}

fn to_core(t: EmbassyInstant) -> Instant {
    Instant::from_micros(t.as_micros())
}

fn to_embassy(t: Instant) -> EmbassyInstant {
    EmbassyInstant::try_from_micros(t.as_micros()).unwrap_or(EmbassyInstant::MAX)
}

impl<'d, S, C: Capacities + Default> Producer<'d, S, C, Volatile>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Validates the configuration and claims one TCP socket of `stack` per broker
    /// connection; connections open when the producer is first driven.
    pub fn new<const RX: usize, const TX: usize>(
        stack: Stack<'d>,
        config: ProducerConfig<'_>,
        storage: S,
        buffers: &'d mut [ConnectionBuffers<RX, TX>],
    ) -> Result<Self, Error> {
        Producer::with_durability(stack, config, storage, buffers, Volatile)
    }
}

#[cfg(feature = "flash")]
impl<'d, S, C: Capacities + Default, F, B, H>
    Producer<'d, S, C, producer_core::flash::FlashStore<F, B, H>>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
    F: embedded_storage_async::nor_flash::NorFlash,
    B: AsMut<[u8]>,
    H: producer_core::flash::sequential_storage::cache::CacheImpl<
            producer_core::client::StorageKey,
        >,
{
    /// A producer whose batches, stamps and outcomes live in `store` as well as in RAM, so a
    /// power cut neither loses nor duplicates them (`ClientConfig::durable` is set for it).
    /// Call [`Producer::restore`] before anything else. Build `store` with the client's
    /// geometry: [`FlashStore::new`](producer_core::flash::FlashStore::new) checks it against
    /// [`Producer::client`], so build a volatile-free client first with the same config, or
    /// size the range with [`producer_core::flash::pages_needed`].
    pub fn new_durable<const RX: usize, const TX: usize>(
        stack: Stack<'d>,
        mut config: ProducerConfig<'_>,
        storage: S,
        buffers: &'d mut [ConnectionBuffers<RX, TX>],
        store: producer_core::flash::FlashStore<F, B, H>,
    ) -> Result<Self, Error> {
        config.client.durable = true;
        Producer::with_durability(stack, config, storage, buffers, store)
    }

    /// Reads the store back after a boot: batches never sent are sent, batches that may have
    /// reached the broker are resent with their producer id, epoch and sequences (the broker
    /// deduplicates them), and outcomes decided before the cut are handed out again. Call
    /// once, before anything else. A store that does not fit this producer (other topics,
    /// smaller capacities) is refused with what to change, and nothing is sent.
    pub async fn restore(&mut self, options: RestoreOptions) -> Result<RestoreSummary, Error> {
        let options = producer_core::client::RestoreOptions {
            deadline: to_core(options.deadline),
            now_ms: options.now_ms,
            producer_state_ttl: options.producer_state_ttl,
        };
        self.durability
            .restore(&mut self.client, options)
            .await
            .map_err(|e| match e {
                producer_core::flash::StoreError::Restore(e) => Error::Restore(e),
                _ => Error::Storage,
            })
    }
}

impl<'d, S, C: Capacities + Default, D> Producer<'d, S, C, D>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
    D: Durability,
{
    fn with_durability<const RX: usize, const TX: usize>(
        stack: Stack<'d>,
        config: ProducerConfig<'_>,
        storage: S,
        buffers: &'d mut [ConnectionBuffers<RX, TX>],
        durability: D,
    ) -> Result<Self, Error> {
        let capacities = C::default();
        let brokers = capacities.brokers();
        if buffers.len() < brokers {
            return Err(Error::ConnectionBuffers {
                given: buffers.len(),
                needed: brokers,
            });
        }
        let client = Client::with_capacities(
            config.client,
            &capacities,
            config.bootstrap,
            config.topics,
            storage,
        )
        .map_err(Error::Config)?;
        let needed = client.request_bytes_needed();
        if TX < needed {
            return Err(Error::RequestBuffer { given: TX, needed });
        }
        let links = buffers.iter_mut().map(|b| {
            let ConnectionBuffers {
                socket_rx,
                socket_tx,
                frame,
                request,
            } = b;
            Link::new(TcpSocket::new(stack, socket_rx, socket_tx), frame, request)
        });
        let links = Array::try_from_iter(brokers, links).ok_or(Error::ConnectionBuffers {
            given: 0,
            needed: brokers,
        })?;
        #[cfg(all(feature = "tls", feature = "sasl"))]
        let sasl_configured = config.client.sasl.is_some();
        #[cfg(all(feature = "tls", not(feature = "sasl")))]
        let sasl_configured = false;
        let batches = client.batch_slots();
        let max_frame = u32::try_from(RX.saturating_sub(4)).unwrap_or(u32::MAX);
        Ok(Producer {
            stack,
            client,
            links,
            frames: FrameDecoder::new(max_frame),
            map_address: config.map_address,
            connect_timeout: config.client.request_timeout,
            wake: None,
            deliveries: Deliveries::new(Ring::new(batches)),
            durability,
            #[cfg(feature = "sasl")]
            token_asked: false,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "tls")]
            sasl_configured,
        })
    }

    /// Accepts a record, to be decided by `deadline`. First it moves whatever bytes are
    /// ready without waiting, so a task that only sends still makes progress. While the
    /// topic's partitions are not known yet, or every batch slot is taken, it drives the
    /// connections until they are, but never past the deadline.
    ///
    /// Slots free as outcomes are taken: a task that never calls
    /// [`Producer::poll_delivery`] or [`Producer::next_delivery`] ends up refused with
    /// [`Error::Deadline`]`(`[`SendError::Full`]`)`. With a durable store a slot frees only
    /// once its outcome is taken, so when every slot holds an outcome waiting to be taken it
    /// returns [`Error::Send`]`(`[`SendError::Full`]`)` at once: take them, and send again.
    ///
    /// With a durable store, the record's batch is stored (and survives a power cut) only in
    /// a later call, never in this one: note where the record went before calling again.
    pub async fn send(
        &mut self,
        record: &ProducerRecord<'_>,
        deadline: EmbassyInstant,
    ) -> Result<Receipt, Error> {
        self.send_tagged(record, 0, deadline).await
    }

    /// [`Producer::send`], with a tag for the batch should this record open one: an
    /// application number (a reading's sequence number) that comes back with every record of
    /// the batch ([`RecordDelivery::batch_tag`]) and, with a durable store, survives a power
    /// cut with the batch, so that after `restore` (feature `flash`) the application can tell
    /// which of its records the restored batches hold (`client().restored_batches()`).
    pub async fn send_tagged(
        &mut self,
        record: &ProducerRecord<'_>,
        tag: u64,
        deadline: EmbassyInstant,
    ) -> Result<Receipt, Error> {
        self.drive(EmbassyInstant::MIN, Stop::Until).await;
        // Let the network runner put what was just queued on the wire: a task that only sends
        // would otherwise never give it a turn. Nothing is accepted yet, so a cancel here
        // loses nothing.
        embassy_futures::yield_now().await;
        loop {
            let step = send_step(
                &mut self.client,
                record,
                tag,
                to_core(deadline),
                core_now(),
                D::DURABLE,
            );
            match step {
                Poll::Ready(result) => return result,
                Poll::Pending => self.drive(deadline, Stop::Progress).await,
            }
        }
    }

    /// Seals the open batches and drives the connections until every accepted record is
    /// decided or `deadline` passes. Returns whether everything was decided; the outcomes
    /// are then ready to take.
    pub async fn flush(&mut self, deadline: EmbassyInstant) -> bool {
        self.client.flush(core_now());
        self.drive(deadline, Stop::Decided).await;
        self.all_decided()
    }

    /// Drives the connections until `until`: the producer's background work, for a task
    /// that has nothing else to wait on.
    pub async fn run_until(&mut self, until: EmbassyInstant) {
        self.drive(until, Stop::Until).await;
    }

    /// The next record outcome, driving the connections until one is ready or `until`
    /// passes. The outcome is handed out here, not kept for [`Producer::poll_delivery`].
    #[must_use = "the outcome returned is handed out only once; dropping it loses it"]
    pub async fn next_delivery(&mut self, until: EmbassyInstant) -> Option<RecordDelivery> {
        if let Some(d) = self.poll_delivery() {
            return Some(d);
        }
        self.drive(until, Stop::Delivery).await;
        self.poll_delivery()
    }

    /// The next record outcome, if one is ready; never waits.
    pub fn poll_delivery(&mut self) -> Option<RecordDelivery> {
        self.deliveries.next(&mut self.client)
    }

    /// Producer counters.
    pub fn counters(&self) -> Counters {
        self.client.counters()
    }

    /// Tells the producer the wall clock, `unix_ms` milliseconds since the Unix epoch now
    /// (from SNTP, an RTC, or the application), so record timestamps are judged against it:
    /// a record older than the client's `producer_state_ttl` is refused, and a batch whose
    /// records age past it is not resent (the broker may have forgotten the producer and
    /// would append it twice). Without it no timestamp is checked; see the README on
    /// gateways without a clock.
    pub fn set_wall_clock(&mut self, unix_ms: i64) {
        self.client.set_wall_clock(core_now(), unix_ms);
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            tls.set_wall_clock(unix_ms);
        }
    }

    #[cfg(feature = "tls")]
    /// Runs every broker connection over TLS (`protocol` SSL, or SASL_SSL when `client.sasl`
    /// is set), through the sessions of `tls` (from [`tls::new`]), whose runner must run
    /// beside the producer. Call it right after building the producer, before it is driven.
    /// Certificate dates are checked once [`Producer::set_wall_clock`] was called.
    pub fn with_tls(
        mut self,
        protocol: tls::SecurityProtocol,
        tls: tls::TlsLinks<'d>,
    ) -> Result<Self, tls::TlsSetupError> {
        if !protocol.tls() || protocol.sasl() != self.sasl_configured {
            return Err(tls::TlsSetupError::Protocol);
        }
        if tls.wires.len() < self.links.len() {
            return Err(tls::TlsSetupError::Connections {
                given: tls.wires.len(),
                needed: self.links.len(),
            });
        }
        for (link, wire) in self.links.iter_mut().zip(tls.wires) {
            link.wire = Some(wire);
        }
        self.tls = Some(tls);
        Ok(self)
    }

    #[cfg(feature = "sasl")]
    /// Gives the producer an OAUTHBEARER token (the access token alone), valid until
    /// `expires_at` (`None`: not known), for every connection it authenticates from now on.
    /// A firmware fetches tokens itself (its identity provider, or one provisioned): when the
    /// producer wants one, the method being awaited ([`Producer::next_delivery`],
    /// [`Producer::flush`], [`Producer::run_until`]) returns early, once, and
    /// [`Producer::oauth_token_wanted`] says so.
    pub fn set_oauth_token(
        &mut self,
        token: &str,
        expires_at: Option<EmbassyInstant>,
    ) -> Result<(), producer_core::sasl::Error> {
        self.client
            .set_oauth_token(token, core_now(), expires_at.map(to_core))?;
        self.token_asked = false;
        Ok(())
    }

    #[cfg(feature = "sasl")]
    /// The producer wants a new OAUTHBEARER token: it has none, or the current one is 80%
    /// through its life (the producer's drive loop wakes at that instant).
    pub fn oauth_token_wanted(&self) -> bool {
        self.client.oauth_token_wanted(core_now())
    }

    #[cfg(feature = "sasl")]
    /// Why SASL authentication failed, once it has: the producer stopped and dials no more;
    /// the error's message says which setting to change.
    pub fn authentication_error(&self) -> Option<producer_core::sasl::Error> {
        self.client.authentication_error()
    }

    /// The core client: identity, ledger and metadata, for inspection.
    pub fn client(&self) -> &Client<S, C> {
        &self.client
    }

    /// Every accepted record has its outcome, and every outcome has been taken.
    pub fn is_idle(&self) -> bool {
        self.client.is_idle() && self.deliveries.is_empty()
    }

    /// Closes the connections gracefully (FIN, then waiting for the broker's), aborting those
    /// still open at `deadline`. Call [`Producer::flush`] first: requests still unanswered
    /// are treated as lost, and retried if the producer is used again.
    pub async fn close(&mut self, deadline: EmbassyInstant) {
        let now = core_now();
        for (i, link) in self.links.iter_mut().enumerate() {
            match link.phase {
                Phase::Up => link.close(),
                Phase::Idle | Phase::Closing => continue,
                Phase::Resolving { .. } | Phase::Connecting { .. } => link.abort(),
                #[cfg(feature = "tls")]
                Phase::Handshaking { .. } => link.abort(),
            }
            self.client.on_connection_lost(ConnId(i as u8), now);
        }
        poll_fn(|cx| {
            let mut open = false;
            for link in self.links.iter_mut() {
                if matches!(link.phase, Phase::Closing) && !link.poll_closed(cx) {
                    open = true;
                }
            }
            if !open {
                return Poll::Ready(());
            }
            if EmbassyInstant::now() >= deadline {
                for link in self.links.iter_mut() {
                    if matches!(link.phase, Phase::Closing) {
                        link.abort();
                    }
                }
                return Poll::Ready(());
            }
            embassy_time_driver::schedule_wake(deadline.as_ticks(), cx.waker());
            Poll::Pending
        })
        .await;
        info!("producer: connections closed");
    }

    fn all_decided(&self) -> bool {
        self.client.is_decided()
    }

    /// Drives the connections until `stop` says so or `until` passes. A name lookup runs
    /// alongside; if the drive ends first, the lookup is abandoned and starts again on the
    /// next drive (it is bounded by the connect timeout either way).
    async fn drive(&mut self, until: EmbassyInstant, stop: Stop) {
        loop {
            // Whole writes, outside any select: the flash has the task to itself.
            if D::DURABLE && self.client.wants_persist() {
                self.durability.persist(&mut self.client).await;
            }
            let lookup = self
                .links
                .iter()
                .enumerate()
                .find_map(|(i, l)| match &l.phase {
                    Phase::Resolving { host, .. } => Some((i, host.clone())),
                    _ => None,
                });
            let Some((i, host)) = lookup.filter(|_| EmbassyInstant::now() < until) else {
                match poll_fn(|cx| self.poll_io(cx, until, stop)).await {
                    Ended::Done => return,
                    Ended::Persist => continue,
                }
            };
            let give_up = self.links[i]
                .connect_deadline(self.connect_timeout)
                .map_or(EmbassyInstant::MAX, to_embassy);
            let stack = self.stack;
            let query = resolve(stack, &host, give_up);
            match select(query, poll_fn(|cx| self.poll_io(cx, until, stop))).await {
                Either::First(address) => self.resolved(i, &host, address),
                Either::Second(Ended::Done) => return,
                Either::Second(Ended::Persist) => {}
            }
        }
    }

    /// Connects link `i` to the address `host` resolved to, unless the link gave up on it
    /// meanwhile (its connect timeout passed while the other connections were served).
    fn resolved(&mut self, i: usize, host: &str, address: Option<IpAddress>) {
        let link = &mut self.links[i];
        let (port, since) = match &link.phase {
            Phase::Resolving {
                host: h,
                port,
                since,
            } if h.as_str() == host => (*port, *since),
            _ => return,
        };
        match address {
            // The attempt's clock keeps running from when the client asked for it.
            Some(address) => link.connect(IpEndpoint::new(address, port), since),
            None => {
                link.abort();
                self.client.on_connection_lost(ConnId(i as u8), core_now());
            }
        }
    }

    /// One turn of the connections, then whether to hand control back.
    fn poll_io(&mut self, cx: &mut Context<'_>, until: EmbassyInstant, stop: Stop) -> Poll<Ended> {
        let now = core_now();
        let progress = self.pump(cx, now);
        if D::DURABLE && self.client.wants_persist() {
            return Poll::Ready(Ended::Persist);
        }
        // The application fetches tokens: it hears of the want from whichever method it
        // awaits, once per want.
        #[cfg(feature = "sasl")]
        if !self.token_asked && self.client.oauth_token_wanted(now) {
            self.token_asked = true;
            info!("producer: an OAUTHBEARER token is wanted");
            return Poll::Ready(Ended::Done);
        }
        let done = match stop {
            Stop::Until => false,
            Stop::Progress => progress,
            Stop::Delivery => self.deliveries.ready(&self.client),
            Stop::Decided => self.all_decided(),
        };
        if done || EmbassyInstant::now() >= until {
            return Poll::Ready(Ended::Done);
        }
        if progress {
            // Let the network runner move what was just queued, then take another turn.
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let mut wake = until;
        if let Some(w) = self.wake {
            wake = wake.min(to_embassy(w));
        }
        for link in &self.links {
            if let Some(d) = link.connect_deadline(self.connect_timeout) {
                wake = wake.min(to_embassy(d));
            }
        }
        embassy_time_driver::schedule_wake(wake.as_ticks(), cx.waker());
        Poll::Pending
    }

    /// Moves bytes and time between the sockets and the client without waiting; registers
    /// the task's waker with every socket it waits on. Returns whether anything changed.
    fn pump(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = false;
        self.client.poll(now);
        while let Some(conn) = self.client.poll_close() {
            if let Some(link) = self.links.get_mut(usize::from(conn.0)) {
                debug!("producer: closing connection {:?}", conn.0);
                link.abort();
                progress = true;
            }
        }
        while let Some((conn, endpoint)) = self.client.poll_connect(now) {
            let Some(link) = self.links.get_mut(usize::from(conn.0)) else {
                continue;
            };
            progress = true;
            let mapped = self
                .map_address
                .and_then(|map| map(&endpoint.host, endpoint.port));
            let literal = endpoint
                .host
                .parse()
                .ok()
                .map(|a| IpEndpoint::new(IpAddress::Ipv4(a), endpoint.port));
            match mapped.or(literal) {
                Some(to) => {
                    debug!("producer: connection {:?} to {:?}", conn.0, to);
                    link.connect(to, now);
                }
                None => link.resolve(&endpoint.host, endpoint.port, now),
            }
            #[cfg(feature = "tls")]
            link.dialling(&endpoint.host);
        }
        for i in 0..self.links.len() {
            let conn = ConnId(i as u8);
            let link = &mut self.links[i];
            let result = match link.phase {
                Phase::Idle | Phase::Closing => Ok(false),
                Phase::Resolving { .. } => {
                    // The lookup itself runs in `drive`; here only its time limit.
                    let expired = link
                        .connect_deadline(self.connect_timeout)
                        .is_some_and(|d| d <= now);
                    if expired { Err(Broken) } else { Ok(false) }
                }
                Phase::Connecting { .. } => {
                    match link.poll_connect(cx, now, self.connect_timeout) {
                        Poll::Ready(Ok(())) => {
                            info!("producer: connection {:?} established", conn.0);
                            self.client.on_connected(conn, now);
                            Ok(true)
                        }
                        Poll::Ready(Err(e)) => Err(e),
                        // TCP is up and the TLS handshake starts: a turn for it at once.
                        Poll::Pending => Ok(!matches!(link.phase, Phase::Connecting { .. })),
                    }
                }
                #[cfg(feature = "tls")]
                Phase::Handshaking { .. } => {
                    match link.poll_handshake(cx, now, self.connect_timeout) {
                        Poll::Ready(Ok(true)) => {
                            info!("producer: connection {:?} established (TLS)", conn.0);
                            self.client.on_connected(conn, now);
                            Ok(true)
                        }
                        Poll::Ready(Ok(false)) => Ok(true),
                        Poll::Ready(Err(e)) => Err(e),
                        Poll::Pending => Ok(false),
                    }
                }
                Phase::Up => link.service(&mut self.client, &self.frames, cx, conn, now),
            };
            match result {
                Ok(moved) => progress |= moved,
                Err(Broken) => {
                    #[cfg(feature = "tls")]
                    if let Some(failure) = link.tls_failure() {
                        link.abort();
                        self.client.on_tls_failure(conn, now, failure);
                        progress = true;
                        continue;
                    }
                    info!("producer: connection {:?} lost", conn.0);
                    link.abort();
                    self.client.on_connection_lost(conn, now);
                    progress = true;
                }
            }
        }
        self.wake = self.client.poll(now);
        // Durable outcomes stay in the client until taken one at a time: the store forgets
        // one only after the application asked for the next.
        if !D::DURABLE {
            progress |= self.deliveries.collect(&mut self.client);
        }
        progress
    }
}

/// Looks `host` up through the stack's DNS servers, giving up at `give_up`. An IP literal
/// answers at once without a query.
async fn resolve(
    stack: Stack<'_>,
    host: &String<HOST_MAX>,
    give_up: EmbassyInstant,
) -> Option<IpAddress> {
    let query = stack.dns_query(host.as_str(), DnsQueryType::A);
    match select(query, Timer::at(give_up)).await {
        Either::First(Ok(addresses)) => {
            let address = addresses.first().copied();
            debug!("producer: {:?} is {:?}", host.as_str(), address);
            address
        }
        Either::First(Err(e)) => {
            info!("producer: cannot resolve {:?}: {:?}", host.as_str(), e);
            None
        }
        Either::Second(()) => {
            info!("producer: resolving {:?} timed out", host.as_str());
            None
        }
    }
}
