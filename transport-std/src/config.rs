//! What a [`Producer`](crate::Producer) is built from and what it reports: its settings,
//! where it keeps durable state, its errors, and the records it takes.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use producer_core::client::{ClientConfig, ClientConfigError, SendError};
use producer_core::driver;
use producer_core::flash::{BlockingAsync, Geometry, pages_needed};
use producer_core::state::{ConfigError, FatalReason, UnknownOutcome};

use crate::capacity::Sizes;
use crate::tls::{SecurityProtocol, TlsConfig};

/// What the producer needs to know, in the shape transport-embassy's has: the core's
/// [`ClientConfig`] (`client`: client id, linger, batch size, request timeout, the
/// idempotence policy under `client.producer`), the cluster and topics, and this transport's
/// own settings. Build with [`ProducerConfig::new`] (host defaults), then adjust fields.
#[derive(Clone, Debug)]
pub struct ProducerConfig<'a> {
    /// The client's settings. Set the request timeout with
    /// [`ClientConfig::with_request_timeout`], which also sets the grace after abandoned
    /// requests (`client.producer.abandoned_request_grace`) to five of them. The producer sets
    /// `client.durable` from [`ProducerConfig::durable`], and gives `client.producer.jitter_seed`
    /// a value of its own per process, so that hosts that lost a broker together do not redial
    /// it in step.
    pub client: ClientConfig<'a>,
    /// `host:port` of one or more brokers to learn the cluster from.
    pub bootstrap: Vec<String>,
    /// Topics the producer writes to.
    pub topics: Vec<String>,
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
    /// taken. Each takes `client.batch_bytes` of memory.
    pub batches: usize,
    /// Broker connections at once (1 to 255); with more partition leaders than that,
    /// connections take turns.
    pub brokers: usize,
    /// Where OAUTHBEARER tokens come from (with `client.sasl` OAUTHBEARER): the producer
    /// calls it when the client wants a token (at first, when the configured one is empty,
    /// then at 80% of each token's life), from its own poll loop. `None`: the application
    /// calls [`Producer::set_oauth_token`](crate::Producer::set_oauth_token) itself.
    pub oauth_token: Option<OAuthTokenSource>,
    /// Kafka's `security.protocol`: whether connections run over TLS (`SSL`, `SASL_SSL`).
    /// SASL is on when `client.sasl` is set; `SASL_*` needs it, `SSL` refuses it (say
    /// `SASL_SSL`), and `PLAINTEXT` with it is taken as `SASL_PLAINTEXT`.
    pub security_protocol: SecurityProtocol,
    /// How the brokers' certificates are verified, and the client's certificate (mTLS),
    /// with a TLS [`ProducerConfig::security_protocol`]; set without one, it is refused
    /// rather than silently unused.
    pub tls: TlsConfig,
}

/// A fresh OAUTHBEARER token, and how long it is valid from now (`None`: not known; the
/// token's `exp`, less a margin for clock skew, is the usual answer).
#[derive(Clone)]
pub struct OAuthToken {
    /// The access token itself, without `Bearer`.
    pub token: String,
    /// How long it may be sent.
    pub valid_for: Option<Duration>,
}

impl fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthToken")
            .field("token", &"<redacted>")
            .field("valid_for", &self.valid_for)
            .finish()
    }
}

/// The application's token fetcher: an identity provider's client, a file re-read. Its
/// error is logged (it must hold no secret) and it is asked again a second later.
#[derive(Clone)]
pub struct OAuthTokenSource(pub Arc<dyn Fn() -> Result<OAuthToken, String> + Send + Sync>);

impl fmt::Debug for OAuthTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OAuthTokenSource")
    }
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

impl ProducerConfig<'static> {
    /// Host defaults: client id "gateway-producer", fail-and-fence, 5 in flight, 5 ms linger,
    /// 64 KiB batches, 10 s request timeout, a 12 h producer-state TTL, 8 MiB responses.
    pub fn new<B, T>(bootstrap: B, topics: T) -> Self
    where
        B: IntoIterator,
        B::Item: Into<String>,
        T: IntoIterator,
        T::Item: Into<String>,
    {
        let mut client =
            ClientConfig::new("gateway-producer").with_request_timeout(Duration::from_secs(10));
        client.linger = Duration::from_millis(5);
        client.batch_bytes = 64 * 1024;
        client.producer_state_ttl = Some(Duration::from_secs(12 * 3600));
        client.producer.unknown_outcome = UnknownOutcome::FailAndFence;
        client.producer.max_in_flight_per_partition = 5;
        ProducerConfig {
            client,
            bootstrap: bootstrap.into_iter().map(Into::into).collect(),
            topics: topics.into_iter().map(Into::into).collect(),
            max_response_bytes: 8 * 1024 * 1024,
            durable: None,
            partitions: crate::PARTITIONS,
            batches: crate::BATCHES,
            brokers: crate::BROKERS,
            oauth_token: None,
            security_protocol: SecurityProtocol::Plaintext,
            tls: TlsConfig::default(),
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

impl ProducerConfig<'_> {
    /// Checks `batch_bytes` against [`batch_bytes_range`], as the producer does before it
    /// allocates anything: the error gives the valid range.
    pub fn check_batch_bytes(&self) -> Result<(), Error> {
        let durable = self.durable.is_some();
        let (_, max) = batch_bytes_range(durable);
        let mut config = self.client;
        config.durable = durable;
        config.check_batch_bytes(max).map_err(Error::Config)
    }

    /// Checks that the security protocol, the SASL mechanism and the TLS settings agree, and
    /// builds the TLS client configuration (reading the CA and client certificate files):
    /// `None` without TLS. The error says what to change.
    pub(crate) fn check_security(&self) -> Result<Option<Arc<rustls::ClientConfig>>, Error> {
        let protocol = self.security_protocol;
        let sasl = self.client.sasl.is_some();
        if protocol.sasl() && !sasl {
            return Err(Error::Security(format!(
                "security protocol {protocol} without a SASL mechanism: set client.sasl \
                 (--sasl-mechanism), or use {}",
                if protocol.tls() { "SSL" } else { "PLAINTEXT" }
            )));
        }
        if protocol == SecurityProtocol::Ssl && sasl {
            return Err(Error::Security(
                "a SASL mechanism with security protocol SSL: use SASL_SSL to authenticate \
                 over TLS"
                    .into(),
            ));
        }
        if !protocol.tls() {
            if self.tls.is_set() {
                return Err(Error::Security(format!(
                    "TLS settings (a CA or a client certificate) with security protocol \
                     {protocol}, which does not use TLS: use SSL or SASL_SSL"
                )));
            }
            return Ok(None);
        }
        self.tls.client_config().map(Some).map_err(Error::Security)
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
    /// The producer stopped for good, for this reason (an authentication failure says which
    /// SASL setting to change).
    Stopped(FatalReason),
    /// The deadline passed before the record could be accepted (no metadata yet, or the
    /// buffer stayed full).
    Deadline(SendError),
    /// The operating system refused a poller.
    Io(io::Error),
    /// The durable state could not be opened, restored or written. After a write failed the
    /// producer stops; a new one restores what the file holds.
    Storage(String),
    /// The security settings are refused (the protocol and SASL disagree, a CA or key file
    /// cannot be read, a key does not go with its certificate); the message says what to
    /// change. (A TLS failure against a broker stops the producer instead:
    /// [`Error::Stopped`] with [`FatalReason::Tls`].)
    Security(String),
}

/// The variants every transport shares say what they say in every transport: their
/// messages are the core's ([`driver::Error`]); the host's own failures add theirs.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => driver::Error::Config(*e).fmt(f),
            Error::Send(e) => driver::Error::Send(*e).fmt(f),
            Error::Stopped(r) => driver::Error::Stopped(*r).fmt(f),
            Error::Deadline(e) => driver::Error::Deadline(*e).fmt(f),
            Error::Io(e) => write!(f, "I/O: {e}"),
            Error::Storage(e) => write!(f, "durable state: {e}"),
            Error::Security(e) => write!(f, "security settings: {e}"),
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
            driver::Error::Stopped(r) => Error::Stopped(r),
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
