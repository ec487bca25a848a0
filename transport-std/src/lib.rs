//! A blocking idempotent Kafka producer over std sockets: the `producer-core` client driven by
//! non-blocking `mio` sockets and `std::time`, with no async runtime.
//!
//! The transport only moves bytes and time. Every decision (batching, routing, retries,
//! deadlines, fencing, outcomes) is made in `producer-core`, exactly as on a microcontroller.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use transport_std::{Producer, ProducerConfig, Record};
//!
//! let mut producer = Producer::new(ProducerConfig::new(["127.0.0.1:9092"], ["sensors"]))?;
//! let deadline = Instant::now() + Duration::from_secs(1);
//! let receipt = producer.send(&Record::value("sensors", b"21.5"), deadline)?;
//! producer.flush(deadline + Duration::from_millis(100));
//! while let Some(d) = producer.poll_delivery() {
//!     println!("{:?}: {:?} at offset {:?}", d.receipt, d.outcome, d.offset);
//! }
//! # let _ = receipt;
//! # Ok::<(), transport_std::Error>(())
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant as StdInstant, SystemTime, UNIX_EPOCH};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
pub use producer_core::client::RecordDelivery;
use producer_core::client::{
    Client, ClientConfig, ClientConfigError, ClientDelivery, ConnId, ProducerRecord, Receipt,
    RecordDeliveries, SendError,
};
use producer_core::state::{Counters, UnknownOutcome};
use producer_core::time::Instant;
use producer_core::wire::{FrameDecoder, FrameStatus, RecordHeader};

/// Topics one producer writes to.
pub const TOPICS: usize = 8;
/// Partitions across those topics.
pub const PARTITIONS: usize = 256;
/// Batches held at once (buffered, in flight, or decided and not yet drained).
pub const BATCHES: usize = 256;
/// Broker connections.
pub const BROKERS: usize = 16;

/// Receive buffer reserved per connection: room for a read and the unfinished frame before
/// it, so steady traffic never grows it.
const INBOX_CAPACITY: usize = 256 * 1024;

type CoreClient = Client<Vec<u8>, TOPICS, PARTITIONS, BATCHES, BROKERS>;

/// What the producer needs to know. Build with [`ProducerConfig::new`], then adjust fields.
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    /// `host:port` of one or more brokers to learn the cluster from.
    pub bootstrap: Vec<String>,
    /// Topics the producer writes to.
    pub topics: Vec<String>,
    /// Sent in request headers.
    pub client_id: String,
    /// What a deadline does to a batch whose fate is unknown.
    pub unknown_outcome: UnknownOutcome,
    /// Requests in flight per partition (1..=5).
    pub max_in_flight: u8,
    /// How long a batch waits for more records.
    pub linger: Duration,
    /// Largest batch in bytes.
    pub batch_bytes: usize,
    /// A request unanswered this long closes its connection; also bounds connecting.
    pub request_timeout: Duration,
    /// Largest response frame accepted.
    pub max_response_bytes: u32,
}

impl ProducerConfig {
    /// Defaults: fail-and-fence, 5 in flight, 5 ms linger, 64 KiB batches, 10 s request
    /// timeout.
    pub fn new<B, T>(bootstrap: B, topics: T) -> Self
    where
        B: IntoIterator,
        B::Item: Into<String>,
        T: IntoIterator,
        T::Item: Into<String>,
    {
        ProducerConfig {
            bootstrap: bootstrap.into_iter().map(Into::into).collect(),
            topics: topics.into_iter().map(Into::into).collect(),
            client_id: "gateway-producer".into(),
            unknown_outcome: UnknownOutcome::FailAndFence,
            max_in_flight: 5,
            linger: Duration::from_millis(5),
            batch_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(10),
            max_response_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Why the producer could not be built or a record not accepted.
#[derive(Debug)]
pub enum Error {
    /// The configuration is refused; the message says what to change.
    Config(ClientConfigError),
    /// A record was refused.
    Send(SendError),
    /// The deadline passed before the record could be accepted (no metadata yet, or the
    /// buffer stayed full).
    Deadline(SendError),
    /// The operating system refused a poller.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => write!(f, "bad configuration: {e}"),
            Error::Send(e) => write!(f, "record refused: {e:?}"),
            Error::Deadline(e) => {
                write!(f, "deadline passed before the record was accepted ({e:?})")
            }
            Error::Io(e) => write!(f, "I/O: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// A record to send.
#[derive(Clone, Copy, Debug)]
pub struct Record<'r> {
    /// Topic.
    pub topic: &'r str,
    /// Forced partition.
    pub partition: Option<i32>,
    /// Key.
    pub key: Option<&'r [u8]>,
    /// Value.
    pub value: Option<&'r [u8]>,
    /// Headers.
    pub headers: &'r [RecordHeader<'r>],
}

impl<'r> Record<'r> {
    /// A record with only a value.
    pub fn value(topic: &'r str, value: &'r [u8]) -> Self {
        Record {
            topic,
            partition: None,
            key: None,
            value: Some(value),
            headers: &[],
        }
    }
}

struct Socket {
    stream: TcpStream,
    connected: bool,
    since: StdInstant,
    out: Vec<u8>,
    written: usize,
    inbox: Vec<u8>,
}

/// The producer. Single-threaded: call [`Producer::send`], then drive it with
/// [`Producer::poll`] or [`Producer::flush`] and take outcomes with
/// [`Producer::poll_delivery`].
pub struct Producer {
    client: Box<CoreClient>,
    origin: StdInstant,
    poll: Poll,
    events: Events,
    sockets: Vec<Option<Socket>>,
    tx: Vec<u8>,
    frames: FrameDecoder,
    request_timeout: Duration,
    deliveries: VecDeque<ClientDelivery>,
    expanding: Option<RecordDeliveries>,
    ready: Vec<usize>,
}

impl Producer {
    /// Validates the configuration; connections open on the first poll.
    pub fn new(config: ProducerConfig) -> Result<Producer, Error> {
        let mut client_config = ClientConfig::new(&config.client_id);
        client_config.linger = config.linger;
        client_config.batch_bytes = config.batch_bytes;
        client_config.request_timeout = config.request_timeout;
        client_config.producer.unknown_outcome = config.unknown_outcome;
        client_config.producer.max_in_flight_per_partition = config.max_in_flight;
        let bootstrap: Vec<&str> = config.bootstrap.iter().map(String::as_str).collect();
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        let storage = vec![0u8; BATCHES * config.batch_bytes];
        let client = Box::new(
            CoreClient::new(client_config, &bootstrap, &topics, storage).map_err(Error::Config)?,
        );
        Ok(Producer {
            client,
            origin: StdInstant::now(),
            poll: Poll::new().map_err(Error::Io)?,
            events: Events::with_capacity(64),
            sockets: (0..BROKERS).map(|_| None).collect(),
            tx: vec![0u8; config.batch_bytes * 4 + 64 * 1024],
            frames: FrameDecoder::new(config.max_response_bytes),
            request_timeout: config.request_timeout,
            deliveries: VecDeque::with_capacity(BATCHES),
            expanding: None,
            ready: Vec::with_capacity(BROKERS),
        })
    }

    fn now(&self) -> Instant {
        self.at(StdInstant::now())
    }

    fn at(&self, t: StdInstant) -> Instant {
        Instant::from_micros(t.saturating_duration_since(self.origin).as_micros() as u64)
    }

    /// Accepts a record, to be decided by `deadline`. While the topic's partitions are not
    /// known yet, or every batch slot is taken, it drives the producer until they are, but
    /// never past the deadline.
    pub fn send(&mut self, record: &Record<'_>, deadline: StdInstant) -> Result<Receipt, Error> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let r = ProducerRecord {
            topic: record.topic,
            partition: record.partition,
            key: record.key,
            value: record.value,
            headers: record.headers,
            timestamp,
        };
        loop {
            let now = self.now();
            match self.client.send(&r, self.at(deadline), now) {
                Ok(receipt) => return Ok(receipt),
                Err(e @ (SendError::NoMetadata | SendError::Full)) => {
                    let left = deadline.saturating_duration_since(StdInstant::now());
                    if left.is_zero() {
                        return Err(Error::Deadline(e));
                    }
                    self.poll(left.min(Duration::from_millis(10)));
                }
                Err(e) => return Err(Error::Send(e)),
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
            if self.client.is_idle() {
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
    pub fn poll_delivery(&mut self) -> Option<RecordDelivery> {
        self.collect();
        loop {
            if let Some(record) = self.expanding.as_mut().and_then(Iterator::next) {
                return Some(record);
            }
            self.expanding = None;
            self.expanding = Some(self.deliveries.pop_front()?.records());
        }
    }

    /// Producer counters.
    pub fn counters(&self) -> Counters {
        self.client.counters()
    }

    /// Records in flight and buffered, per the ledger.
    pub fn is_idle(&self) -> bool {
        self.client.is_idle() && self.deliveries.is_empty() && self.expanding.is_none()
    }

    fn collect(&mut self) {
        while let Some(d) = self.client.poll_delivery() {
            self.deliveries.push_back(d);
        }
    }

    /// Drives I/O once: waits at most `timeout` for sockets or the next timer, then moves
    /// bytes and applies time.
    pub fn poll(&mut self, timeout: Duration) {
        let now = self.now();
        let wake = self.client.poll(now);
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
            self.service(i);
        }
        self.ready = ready;
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

    fn open_connections(&mut self) {
        let now = self.now();
        while let Some((conn, endpoint)) = self.client.poll_connect(now) {
            let i = usize::from(conn.0);
            let address: Option<SocketAddr> = (endpoint.host.as_str(), endpoint.port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next());
            let opened = address
                .and_then(|a| TcpStream::connect(a).ok())
                .and_then(|mut s| {
                    self.poll
                        .registry()
                        .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
                        .ok()
                        .map(|()| s)
                });
            match opened {
                Some(stream) => {
                    let _ = stream.set_nodelay(true);
                    self.sockets[i] = Some(Socket {
                        stream,
                        connected: false,
                        since: StdInstant::now(),
                        out: Vec::with_capacity(self.tx.len()),
                        written: 0,
                        inbox: Vec::with_capacity(INBOX_CAPACITY),
                    });
                }
                None => self.client.on_connection_lost(conn, now),
            }
        }
    }

    fn check_connect_timeouts(&mut self) {
        for i in 0..self.sockets.len() {
            if let Some(s) = &self.sockets[i]
                && !s.connected
                && s.since.elapsed() >= self.request_timeout
            {
                self.fail(i);
            }
        }
    }

    fn drop_socket(&mut self, i: usize) {
        if let Some(mut s) = self.sockets[i].take() {
            let _ = self.poll.registry().deregister(&mut s.stream);
        }
    }

    fn fail(&mut self, i: usize) {
        self.drop_socket(i);
        let now = self.now();
        self.client.on_connection_lost(ConnId(i as u8), now);
    }

    fn service(&mut self, i: usize) {
        let Some(s) = self.sockets.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        if !s.connected {
            match s.stream.take_error() {
                Ok(None) if s.stream.peer_addr().is_ok() => {
                    s.connected = true;
                    let now = self.now();
                    self.client.on_connected(ConnId(i as u8), now);
                }
                Ok(None) => return,
                _ => return self.fail(i),
            }
        }
        if self.flush_out(i).is_err() {
            return self.fail(i);
        }
        let mut buf = [0u8; 64 * 1024];
        loop {
            let Some(s) = self.sockets.get_mut(i).and_then(Option::as_mut) else {
                return;
            };
            match s.stream.read(&mut buf) {
                Ok(0) => return self.fail(i),
                Ok(n) => s.inbox.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.fail(i),
            }
        }
        self.deliver_frames(i);
    }

    fn deliver_frames(&mut self, i: usize) {
        let mut inbox = match self.sockets.get_mut(i).and_then(Option::as_mut) {
            Some(s) => std::mem::take(&mut s.inbox),
            None => return,
        };
        let mut used = 0;
        loop {
            match self.frames.decode(&inbox[used..]) {
                Ok(FrameStatus::Complete { frame, consumed }) => {
                    let now = self.now();
                    self.client.on_frame(ConnId(i as u8), now, frame);
                    used += consumed;
                }
                Ok(FrameStatus::NeedMore(_)) => break,
                Err(_) => {
                    // A frame we will not buffer: the stream is unusable.
                    return self.fail(i);
                }
            }
        }
        inbox.drain(..used);
        if let Some(s) = self.sockets.get_mut(i).and_then(Option::as_mut) {
            s.inbox = inbox;
        }
    }

    /// Writes what is pending on socket `i`; `Err` when the connection broke.
    fn flush_out(&mut self, i: usize) -> io::Result<()> {
        let Some(s) = self.sockets.get_mut(i).and_then(Option::as_mut) else {
            return Ok(());
        };
        while s.written < s.out.len() {
            match s.stream.write(&s.out[s.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => s.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        s.out.clear();
        s.written = 0;
        Ok(())
    }

    fn transmit(&mut self) {
        for i in 0..self.sockets.len() {
            loop {
                let ready = matches!(&self.sockets[i], Some(s) if s.connected && s.out.is_empty());
                if !ready {
                    break;
                }
                let now = self.now();
                let Some(n) = self
                    .client
                    .poll_transmit(ConnId(i as u8), now, &mut self.tx)
                else {
                    break;
                };
                if let Some(s) = self.sockets[i].as_mut() {
                    s.out.extend_from_slice(&self.tx[..n]);
                }
                if self.flush_out(i).is_err() {
                    self.fail(i);
                    break;
                }
            }
        }
    }
}
