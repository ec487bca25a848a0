//! What a [`Producer`](crate::Producer) is built from and what it reports: its settings,
//! where it keeps durable state, its errors, and the records it takes.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use producer_core::client::{ClientConfig, ClientConfigError, SendError};
use producer_core::driver;
use producer_core::flash::{BlockingAsync, Geometry, pages_needed};
use producer_core::state::{ConfigError, UnknownOutcome};

use crate::capacity::Sizes;

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
    /// A request unanswered this long closes its connection; also bounds connecting, and is
    /// the produce timeout sent to the broker.
    pub request_timeout: Duration,
    /// How long to wait after a request was abandoned on a closed connection before sending
    /// under a new producer id (see `producer_core::state::Config::abandoned_request_grace`);
    /// `None`: five request timeouts, the time Kafka may go on processing what it had read.
    pub abandoned_request_grace: Option<Duration>,
    /// How long after a record's timestamp the broker is trusted to remember the producer
    /// (see `producer_core::client::ClientConfig::producer_state_ttl`; records are stamped with
    /// the system clock): 12 h by default, below Kafka's 24 h `producer.id.expiration.ms`.
    pub producer_state_ttl: Option<Duration>,
    /// Largest response frame accepted.
    pub max_response_bytes: u32,
    /// Keep the producer's batches, stamps and outcomes in a file so that a restart (crash,
    /// kill, power loss with `sync`) neither loses nor duplicates a record: see
    /// [`DurableState`]. `None` keeps everything in memory.
    pub durable: Option<DurableState>,
    /// Partition-table entries across the topics (1 to 65,535): a partition records go to
    /// holds one for the producer's life, and a topic with more partitions than fit keeps
    /// its lowest ids. About 110 bytes each.
    pub partitions: usize,
    /// Batches held at once (1 to 65,535): buffered, in flight, or decided and not yet
    /// taken. Each takes `batch_bytes` of memory.
    pub batches: usize,
    /// Broker connections at once (1 to 255); with more partition leaders than that,
    /// connections take turns.
    pub brokers: usize,
}

/// Where and how the producer keeps its durable state.
#[derive(Clone, Debug)]
pub struct DurableState {
    /// The state file: a NOR-flash image (see [`file_flash`](crate::file_flash)), created when missing.
    pub path: PathBuf,
    /// `fdatasync` after every write, so the state survives power loss too (without it,
    /// it survives the process dying, not the machine).
    pub sync: bool,
    /// Deadline of the batches restored at startup, from `Producer::new`.
    pub restored_deadline: Duration,
    /// How long after its newest record a restored stamped batch may still be resent: see
    /// [`RestoreOptions::producer_state_ttl`](producer_core::client::RestoreOptions::producer_state_ttl). Keep it below the broker's
    /// `producer.id.expiration.ms` (Kafka's default is 24 h). `None` resends whatever the
    /// age (for brokers that never expire producer state).
    pub producer_state_ttl: Option<Duration>,
}

impl DurableState {
    /// State in `path`, no fsync, 60 s for restored batches, a 12 h producer-state TTL.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DurableState {
            path: path.into(),
            sync: false,
            restored_deadline: Duration::from_secs(60),
            producer_state_ttl: Some(Duration::from_secs(12 * 3600)),
        }
    }
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
            abandoned_request_grace: None,
            producer_state_ttl: Some(Duration::from_secs(12 * 3600)),
            max_response_bytes: 8 * 1024 * 1024,
            durable: None,
            partitions: crate::PARTITIONS,
            batches: crate::BATCHES,
            brokers: crate::BROKERS,
        }
    }
}

/// The `batch_bytes` a [`Producer`](crate::Producer) takes, `(smallest, largest)`: room for
/// a record beside the batch header up to [`MAX_BATCH_BYTES`](crate::MAX_BATCH_BYTES); with
/// durable state a batch must also fit one page of the state file. A tool states the range
/// before it builds anything.
pub fn batch_bytes_range(durable: bool) -> (usize, usize) {
    let mut config = ClientConfig::new("range");
    config.durable = durable;
    let mut max = crate::MAX_BATCH_BYTES;
    if durable
        && let Err(Geometry::BatchTooBig {
            max_batch_bytes, ..
        }) = pages_needed::<BlockingAsync<crate::file_flash::FileFlash>>(
            crate::MAX_BATCH_BYTES,
            crate::BATCHES,
        )
    {
        max = max.min(max_batch_bytes);
    }
    (config.min_batch_bytes(), max)
}

impl ProducerConfig {
    /// Checks `batch_bytes` against [`batch_bytes_range`], as the producer does before it
    /// allocates anything: the error gives the valid range.
    pub fn check_batch_bytes(&self) -> Result<(), Error> {
        let durable = self.durable.is_some();
        let (_, max) = batch_bytes_range(durable);
        let mut config = ClientConfig::new(&self.client_id);
        config.durable = durable;
        config.batch_bytes = self.batch_bytes;
        config.check_batch_bytes(max).map_err(Error::Config)
    }

    /// The capacities this configuration asks for, checked as the producer does before it
    /// allocates anything.
    pub fn check_capacities(&self) -> Result<Sizes, Error> {
        let range = 1..=usize::from(u16::MAX);
        if !range.contains(&self.partitions) {
            return Err(Error::Config(ClientConfigError::Producer(
                ConfigError::PartitionCapacity,
            )));
        }
        if !range.contains(&self.batches) {
            return Err(Error::Config(ClientConfigError::Producer(
                ConfigError::BatchCapacity,
            )));
        }
        if !(1..=usize::from(u8::MAX)).contains(&self.brokers) {
            return Err(Error::Config(ClientConfigError::Bootstrap));
        }
        if self.topics.len() > usize::from(u8::MAX) {
            return Err(Error::Config(ClientConfigError::Topic));
        }
        Ok(Sizes {
            topics: self.topics.len().max(1),
            partitions: self.partitions,
            batches: self.batches,
            brokers: self.brokers,
        })
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
    /// The durable state could not be opened, restored or written. After a write failed the
    /// producer stops; a new one restores what the file holds.
    Storage(String),
}

/// The variants every transport shares say what they say in every transport: their
/// messages are the core's ([`driver::Error`]); the host's own failures add theirs.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => driver::Error::Config(*e).fmt(f),
            Error::Send(e) => driver::Error::Send(*e).fmt(f),
            Error::Deadline(e) => driver::Error::Deadline(*e).fmt(f),
            Error::Io(e) => write!(f, "I/O: {e}"),
            Error::Storage(e) => write!(f, "durable state: {e}"),
        }
    }
}

/// The core's error in this transport's vocabulary. Restore refusals and store failures
/// carry their message as [`Error::Storage`], as the file store's own errors do.
impl From<driver::Error> for Error {
    fn from(e: driver::Error) -> Self {
        match e {
            driver::Error::Config(e) => Error::Config(e),
            driver::Error::Send(e) => Error::Send(e),
            driver::Error::Deadline(e) => Error::Deadline(e),
            driver::Error::Restore(e) => Error::Storage(e.to_string()),
            driver::Error::Storage => Error::Storage(e.to_string()),
            // Not from this transport: its buffers are sized from its configuration.
            driver::Error::RequestBuffer { .. } | driver::Error::ConnectionBuffers { .. } => {
                Error::Io(io::Error::other(e.to_string()))
            }
        }
    }
}

impl std::error::Error for Error {}
