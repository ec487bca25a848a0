//! The client's settings, checked once at construction.

use core::fmt;
use core::time::Duration;

#[cfg(feature = "sasl")]
use crate::sasl;
use crate::state;

/// Longest SASL username the client keeps, in bytes.
#[cfg(feature = "sasl")]
pub const MAX_SASL_USERNAME: usize = 255;

/// Longest SASL password, or OAUTHBEARER token, the client keeps, in bytes: room for the
/// JWTs of Confluent Cloud, Azure and MSK IAM, which run from a few hundred bytes to about
/// 1.5 KiB. The client keeps its own copy (it holds no borrow), so this is RAM a firmware
/// gives up for SASL.
#[cfg(feature = "sasl")]
pub const MAX_SASL_SECRET: usize = 2048;

/// Bytes of OAUTHBEARER extensions the client keeps (every key and value, plus two per
/// extension), and their most: [`MAX_SASL_EXTENSIONS`].
#[cfg(feature = "sasl")]
pub const MAX_SASL_EXTENSION_BYTES: usize = 256;

/// Most OAUTHBEARER extensions the client sends.
#[cfg(feature = "sasl")]
pub const MAX_SASL_EXTENSIONS: usize = 4;

/// A source of cryptographically secure random bytes, for SCRAM's client nonce: the sans-IO
/// core has no RNG of its own, so the transport supplies one (transport-std the operating
/// system's, through `getrandom`; a firmware its hardware RNG). It must fill the whole
/// buffer, with bytes an observer of the network cannot predict.
#[cfg(feature = "sasl")]
#[derive(Clone, Copy)]
pub struct Entropy(pub fn(&mut [u8]));

#[cfg(feature = "sasl")]
impl PartialEq for Entropy {
    fn eq(&self, other: &Self) -> bool {
        core::ptr::fn_addr_eq(self.0, other.0)
    }
}

#[cfg(feature = "sasl")]
impl Eq for Entropy {}

#[cfg(feature = "sasl")]
impl fmt::Debug for Entropy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Entropy")
    }
}

#[cfg(all(feature = "defmt", feature = "sasl"))]
impl defmt::Format for Entropy {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Entropy")
    }
}

/// Kafka's protocol limit on unanswered requests per connection that keeps responses ordered
/// and idempotent retries within the broker's five-batch window.
pub const MAX_REQUESTS_PER_CONNECTION: usize = 5;

/// How the client behaves. `ClientConfig::new` gives gateway defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClientConfig<'a> {
    /// Sent in every request header; brokers log and quota by it.
    pub client_id: &'a str,
    /// A request unanswered for this long means the connection is dead: it is closed, and
    /// what was on it is retried. Also the broker-side produce timeout. The sequencer's
    /// `abandoned_request_grace` is derived from it (five of it) by `ClientConfig::new`:
    /// set both when changing it ([`ClientConfig::with_request_timeout`] does).
    pub request_timeout: Duration,
    /// How long a batch may wait for more records before it is sealed and sent.
    pub linger: Duration,
    /// Largest record batch, in bytes: at most the batch storage given to `Client::new`
    /// divided by `BATCHES` (each batch slot holds one batch of this size).
    pub batch_bytes: usize,
    /// Wait before dialling a broker (or a bootstrap address) again after its connection
    /// failed, or was lost before it answered a request; doubles per consecutive failure,
    /// jittered, up to `reconnect_backoff_max` (librdkafka's `reconnect.backoff.ms`). The
    /// count is kept per broker, not per connection slot, and is reset by a real answer (to
    /// Metadata, InitProducerId or Produce; a TCP connect or an ApiVersions handshake is not
    /// one): a broker that accepts and closes, refuses, or cannot be looked up is dialled a
    /// few times a second at first and then every `reconnect_backoff_max`.
    pub reconnect_backoff: Duration,
    /// Upper bound of the doubling reconnect backoff (librdkafka's `reconnect.backoff.max.ms`,
    /// 10 s): also the longest a broker that comes back waits to be noticed.
    pub reconnect_backoff_max: Duration,
    /// Metadata is refreshed at least this often, and at once when a leader may have moved.
    pub metadata_max_age: Duration,
    /// When the leaders of the partitions with records to send outnumber the `BROKERS`
    /// connection slots, connections take turns: one that has served its leader this long
    /// while another leader waits stops sending, and once its requests are answered it is
    /// closed and the slot goes to the leader that waited. Each turn costs a connection
    /// set-up (and, when the waiting leader's address was not kept, a metadata request), so
    /// a longer turn gives more throughput and a shorter one lower latency.
    pub connection_turn: Duration,
    /// How long after a record's timestamp the broker is trusted to still remember the
    /// producer's sequence state. Kafka forgets an idle producer `producer.id.expiration.ms`
    /// (24 h by default) after the newest record timestamp it appended for it (on CreateTime
    /// topics: the timestamps this producer writes), and then appends a resend as new data.
    /// With a wall clock ([`Client::set_wall_clock`](super::Client::set_wall_clock)), a record
    /// older than this is refused (`SendError::StaleTimestamp`), and a batch waiting for a
    /// resend after an attempt that may have been appended is given up as
    /// `PossiblyPersisted(ProducerStateExpired)` once its records are older than this. Keep it
    /// well below the broker's setting, to cover clock skew. `None` trusts the broker to
    /// remember forever.
    pub producer_state_ttl: Option<Duration>,
    /// The idempotence settings (policy for unknown outcomes, in-flight window, backoffs).
    pub producer: state::Config,
    /// Mirror every sealed batch, its stamp and its outcome in durable storage through
    /// [`Client::poll_persist`](super::Client::poll_persist), so that a restart neither loses
    /// nor duplicates it (see `client/durable.rs`). Each batch then gives up
    /// [`BATCH_HEADER`](super::durable::BATCH_HEADER) bytes of `batch_bytes` to its storage
    /// header, and nothing is sent or handed out before the write it depends on is confirmed.
    pub durable: bool,
    /// Authenticate every connection with SASL, right after ApiVersions: the mechanism and
    /// its credentials (see [`sasl::Mechanism`]; `Debug` and `defmt` never show the password
    /// or token). `None`: no authentication (a PLAINTEXT or SSL listener). The client copies
    /// the credentials when it is built (username up to [`MAX_SASL_USERNAME`] bytes, password
    /// or token up to [`MAX_SASL_SECRET`]), so it holds no borrow. For OAUTHBEARER the token
    /// may be empty: the client then waits for one from
    /// [`Client::set_oauth_token`](super::Client::set_oauth_token), which is also how a
    /// token is renewed before it expires.
    #[cfg(feature = "sasl")]
    pub sasl: Option<sasl::Mechanism<'a>>,
    /// Random bytes for SCRAM nonces: required with a SCRAM mechanism (transport-std sets
    /// the operating system's).
    #[cfg(feature = "sasl")]
    pub entropy: Option<Entropy>,
}

impl<'a> ClientConfig<'a> {
    /// Defaults for a gateway: 10 s request timeout, 5 ms linger, 16 KiB batches, reconnects
    /// backing off from 100 ms to 10 s, 500 ms connection turns, a 12 h producer-state
    /// lifetime. There is no `acks` setting: every request asks for all in-sync replicas, the
    /// only value idempotence allows.
    pub fn new(client_id: &'a str) -> Self {
        ClientConfig {
            client_id,
            request_timeout: Duration::from_secs(10),
            linger: Duration::from_millis(5),
            batch_bytes: 16 * 1024,
            reconnect_backoff: Duration::from_millis(100),
            reconnect_backoff_max: Duration::from_secs(10),
            metadata_max_age: Duration::from_secs(300),
            connection_turn: Duration::from_millis(500),
            producer_state_ttl: Some(Duration::from_secs(12 * 3600)),
            producer: state::Config::default(),
            durable: false,
            #[cfg(feature = "sasl")]
            sasl: None,
            #[cfg(feature = "sasl")]
            entropy: None,
        }
    }
}

impl ClientConfig<'_> {
    /// Checks the reconnect backoff: not zero, its cap not below it.
    pub fn check_reconnect_backoff(&self) -> Result<(), ClientConfigError> {
        if self.reconnect_backoff.is_zero() {
            return Err(ClientConfigError::ZeroReconnectBackoff);
        }
        if self.reconnect_backoff_max < self.reconnect_backoff {
            return Err(ClientConfigError::ReconnectBackoffMaxBelowBackoff);
        }
        Ok(())
    }

    /// The smallest `batch_bytes`: a batch header and a small record, plus the storage
    /// header with `durable`.
    pub fn min_batch_bytes(&self) -> usize {
        let reserve = if self.durable {
            super::durable::BATCH_HEADER
        } else {
            0
        };
        crate::wire::RECORD_BATCH_OVERHEAD + 16 + reserve
    }

    /// Checks `batch_bytes` against its smallest value and `max` (the storage per batch slot,
    /// or a transport's own limit): a transport calls it before it allocates the storage,
    /// so a wrong value is refused with the valid range rather than allocated.
    pub fn check_batch_bytes(&self, max: usize) -> Result<(), ClientConfigError> {
        let min = self.min_batch_bytes();
        if self.batch_bytes < min || self.batch_bytes > max {
            return Err(ClientConfigError::BatchBytes {
                given: self.batch_bytes,
                min,
                max,
            });
        }
        Ok(())
    }

    /// Sets the request timeout and the grace derived from it: the time a broker may still
    /// process requests abandoned on a closed connection, five produce timeouts (see
    /// [`state::Config::abandoned_request_grace`]).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self.producer.abandoned_request_grace =
            timeout.saturating_mul(MAX_REQUESTS_PER_CONNECTION as u32);
        self
    }
}

/// A configuration the client refuses, and what to change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClientConfigError {
    /// `batch_bytes` cannot hold a batch header and a record, or exceeds the batch storage
    /// per slot (or the transport's limit).
    BatchBytes {
        /// The value given.
        given: usize,
        /// The smallest allowed: a batch header and a small record (with `durable`, the
        /// storage header too).
        min: usize,
        /// The largest allowed: the storage per batch slot, or the transport's limit.
        max: usize,
    },
    /// `request_timeout` is zero or above `i32::MAX` milliseconds.
    RequestTimeout,
    /// `client_id` is longer than the 64 bytes kept.
    ClientId,
    /// `reconnect_backoff` is zero, which would redial a failing broker in a busy loop.
    ZeroReconnectBackoff,
    /// `reconnect_backoff_max` is below `reconnect_backoff`.
    ReconnectBackoffMaxBelowBackoff,
    /// No bootstrap address, or more than the `BROKERS` capacity.
    Bootstrap,
    /// A topic name is empty, longer than 249 bytes, or more topics than `TOPICS`.
    Topic,
    /// The idempotence settings are refused.
    Producer(state::ConfigError),
    /// The SASL credentials cannot be sent as they are (see the error).
    #[cfg(feature = "sasl")]
    Sasl(sasl::Error),
    /// The SASL username is longer than [`MAX_SASL_USERNAME`] bytes.
    #[cfg(feature = "sasl")]
    SaslUsernameTooLong,
    /// The SASL password or OAUTHBEARER token is longer than [`MAX_SASL_SECRET`] bytes.
    #[cfg(feature = "sasl")]
    SaslSecretTooLong,
    /// More OAUTHBEARER extensions, or bytes of them, than the client keeps
    /// ([`MAX_SASL_EXTENSIONS`], [`MAX_SASL_EXTENSION_BYTES`]).
    #[cfg(feature = "sasl")]
    SaslExtensions,
    /// A SCRAM mechanism with no `entropy` source for its nonces.
    #[cfg(feature = "sasl")]
    SaslEntropy,
}

impl fmt::Display for ClientConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientConfigError::BatchBytes { given, min, max } if max < min => write!(
                f,
                "batch bytes is {given}, but the batch storage holds only {max} bytes per slot, \
                 less than the smallest batch ({min}): give BATCHES × batch_bytes of storage"
            ),
            ClientConfigError::BatchBytes { given, min, max } => {
                write!(f, "batch bytes is {given}: set it between {min} and {max}")
            }
            ClientConfigError::RequestTimeout => {
                f.write_str("request timeout must be between 1 ms and 24 days")
            }
            ClientConfigError::ClientId => f.write_str("client id must be at most 64 bytes"),
            ClientConfigError::ZeroReconnectBackoff => {
                f.write_str("reconnect backoff is zero: set it to at least 1 ms (100 ms is usual)")
            }
            ClientConfigError::ReconnectBackoffMaxBelowBackoff => f.write_str(
                "reconnect backoff max is below reconnect backoff: raise it to at least the \
                 backoff (10 s is usual)",
            ),
            ClientConfigError::Bootstrap => f.write_str(
                "give at least one bootstrap address, and no more than the brokers capacity (1 to 255)",
            ),
            ClientConfigError::Topic => f.write_str(
                "topic names must be 1 to 249 bytes, and no more topics than the topics capacity",
            ),
            ClientConfigError::Producer(e) => e.fmt(f),
            #[cfg(feature = "sasl")]
            ClientConfigError::Sasl(e) => write!(f, "sasl: {e}"),
            #[cfg(feature = "sasl")]
            ClientConfigError::SaslUsernameTooLong => write!(
                f,
                "sasl: the username is longer than the {MAX_SASL_USERNAME} bytes the client keeps"
            ),
            #[cfg(feature = "sasl")]
            ClientConfigError::SaslSecretTooLong => write!(
                f,
                "sasl: the password or token is longer than the {MAX_SASL_SECRET} bytes the \
                 client keeps"
            ),
            #[cfg(feature = "sasl")]
            ClientConfigError::SaslExtensions => write!(
                f,
                "sasl: at most {MAX_SASL_EXTENSIONS} OAUTHBEARER extensions of \
                 {MAX_SASL_EXTENSION_BYTES} bytes in all"
            ),
            #[cfg(feature = "sasl")]
            ClientConfigError::SaslEntropy => f.write_str(
                "sasl: SCRAM needs random nonces: set the client config's entropy source (the \
                 transport's RNG)",
            ),
        }
    }
}
