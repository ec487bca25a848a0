//! What the producer is told at construction.

use embassy_net::IpEndpoint;
use producer_core::client::ClientConfig;

/// Maps a broker's advertised `host:port` to where this device can reach it, or `None` to
/// connect to the advertised address itself (an IP literal, or a name looked up through the
/// stack's DNS servers).
///
/// Gateways often sit behind NAT or reach brokers through port forwards, so the addresses
/// brokers advertise in metadata are not always routable from the device; under QEMU's user
/// network, for one, the host is 10.0.2.2. A plain function keeps the producer free of
/// closures' captured state and lifetimes.
pub type MapAddress = fn(host: &str, port: u16) -> Option<IpEndpoint>;

/// The producer's settings. [`ProducerConfig::new`] gives the core's gateway defaults; adjust
/// `client` for linger, batch size, timeouts and the unknown-outcome policy.
#[derive(Clone, Copy, Debug)]
pub struct ProducerConfig<'a> {
    /// The client's settings (request timeout, linger, batch size, idempotence policy), and
    /// SASL: `client.sasl` the mechanism and credentials, `client.entropy` the firmware's
    /// hardware RNG (a `fn(&mut [u8])`, e.g. over a `static` RNG peripheral in a critical
    /// section), which SCRAM needs for its nonces.
    pub client: ClientConfig<'a>,
    /// `host:port` of one or more brokers to learn the cluster from.
    pub bootstrap: &'a [&'a str],
    /// Topics the producer writes to.
    pub topics: &'a [&'a str],
    /// Applied to every address before connecting, bootstrap included.
    pub map_address: Option<MapAddress>,
}

impl<'a> ProducerConfig<'a> {
    /// Core defaults, no address mapping.
    pub fn new(client_id: &'a str, bootstrap: &'a [&'a str], topics: &'a [&'a str]) -> Self {
        ProducerConfig {
            client: ClientConfig::new(client_id),
            bootstrap,
            topics,
            map_address: None,
        }
    }
}

/// What [`Producer::restore`](crate::Producer::restore) needs beyond the store, on the
/// producer's own clock (embassy-time), like every other instant of this crate's API.
#[cfg(feature = "flash")]
#[derive(Clone, Copy, Debug)]
pub struct RestoreOptions {
    /// Deadline given to every restored batch that is not decided yet (instants do not
    /// survive a restart).
    pub deadline: embassy_time::Instant,
    /// The wall clock now, in ms since the Unix epoch, when the device knows it (SNTP, an
    /// RTC); with `producer_state_ttl` it decides whether a stamped batch may still be
    /// resent.
    pub now_ms: Option<i64>,
    /// How long after a batch's newest record timestamp the broker is trusted to still know
    /// the producer (Kafka's `producer.id.expiration.ms`, 24 h by default, minus clock skew).
    /// A stamped batch older than this is reported `PossiblyPersisted(ProducerStateExpired)`
    /// instead of resent; `None` (or no `now_ms`) trusts the broker to remember forever.
    pub producer_state_ttl: Option<core::time::Duration>,
}
