//! The run's settings, from the semihosting command line (QEMU's
//! `-semihosting-config ...,arg=gateway,arg=port=9092,arg=records=1000`).
//!
//! The SASL password and the entropy seed come this way too, which is fine for a QEMU test
//! and nothing else: a real gateway keeps its credentials in its configuration flash and
//! seeds its RNG from its hardware TRNG (see the README). The TLS CA (`ca=`) comes this way
//! for the test too: it is public, but a real gateway embeds its CA in the image.

use embassy_time::Duration;
use semihosting::experimental::env::{Args, args};
use static_cell::StaticCell;

/// Bytes kept for the whole command line (a SASL password included).
const ARGS_BYTES: usize = 3072;

/// Bytes of the entropy seed (`entropy_seed=`, 64 hex digits): a ChaCha20 key.
pub const SEED_BYTES: usize = 32;

/// A SASL mechanism the firmware can authenticate with (`sasl=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum SaslSetting {
    /// `sasl=scram-sha-256`.
    ScramSha256,
    /// `sasl=scram-sha-512`.
    ScramSha512,
}

impl SaslSetting {
    /// The mechanism's SASL name.
    #[cfg_attr(not(feature = "scram"), allow(dead_code))]
    pub fn name(self) -> &'static str {
        match self {
            SaslSetting::ScramSha256 => "SCRAM-SHA-256",
            SaslSetting::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// How the connections go, by Kafka's `security.protocol` names (`security_protocol=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum Security {
    /// `PLAINTEXT`: neither TLS nor SASL.
    Plaintext,
    /// `SASL_PLAINTEXT`: SASL over plain TCP.
    SaslPlaintext,
    /// `SSL`: TLS, no SASL.
    Ssl,
    /// `SASL_SSL`: SASL over TLS.
    SaslSsl,
}

impl Security {
    /// Whether connections run over TLS.
    pub fn tls(self) -> bool {
        matches!(self, Security::Ssl | Security::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn sasl(self) -> bool {
        matches!(self, Security::SaslPlaintext | Security::SaslSsl)
    }

    /// Kafka's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Security::Plaintext => "PLAINTEXT",
            Security::SaslPlaintext => "SASL_PLAINTEXT",
            Security::Ssl => "SSL",
            Security::SaslSsl => "SASL_SSL",
        }
    }
}

/// What to do in this run. Every field has a default; `KEY=VALUE` arguments override them.
/// `Debug` shows neither the password nor the entropy seed.
#[derive(Clone, Copy)]
pub struct Settings {
    /// `port=PORT`: the broker's port on the host, reached at 10.0.2.2 (default 9092).
    pub port: u16,
    /// `host=NAME`: the bootstrap broker's name (bootstrap `NAME:PORT`), reached at 10.0.2.2
    /// like every broker advertising it; over TLS the name sent as SNI and checked against
    /// the broker's certificate (default: none, the bootstrap is `10.0.2.2:PORT`).
    pub host: Option<&'static str>,
    /// `security_protocol=PLAINTEXT|SASL_PLAINTEXT|SSL|SASL_SSL` (default: `SASL_PLAINTEXT`
    /// with `sasl=`, else `PLAINTEXT`).
    pub security: Option<Security>,
    /// `ca=HEX`: the CA certificate the brokers' certificates chain to, DER in hex (with
    /// `SSL` or `SASL_SSL`).
    pub ca: Option<&'static str>,
    /// `records=N`: how many sensor readings to produce (default 1000).
    pub records: u32,
    /// `topic=NAME`: where to produce them (default `sensors`).
    pub topic: &'static str,
    /// `deadline_ms=MS`: each record's delivery deadline, counted from when it is produced
    /// (default 30000).
    pub deadline: Duration,
    /// `seed=N`: seed of the TCP stack's random numbers (initial sequence numbers, local
    /// ports). Give a different one per run, or a broker may see a new connection reuse the
    /// last run's local port (default 0x5eed).
    pub seed: u64,
    /// `epoch_ms=MS`: Unix time at boot, in milliseconds, the clock the application sets:
    /// record timestamps count from it, and the producer is told it
    /// (`Producer::set_wall_clock`). Without it the firmware has no wall clock: records go
    /// without a timestamp and nothing checks them (see the README on gateways without a
    /// clock).
    pub epoch_ms: Option<u64>,
    /// `sasl=scram-sha-512` (or `scram-sha-256`): authenticate every connection with this
    /// mechanism, as `username` with `password`; needs `entropy_seed` for its nonces
    /// (default: none, a PLAINTEXT listener).
    pub sasl: Option<SaslSetting>,
    /// `username=NAME`: the SASL user.
    pub username: Option<&'static str>,
    /// `password=SECRET`: the SASL password.
    pub password: Option<&'static str>,
    /// `entropy_seed=HEX`: 32 bytes (64 hex digits) that seed the ChaCha20 RNG behind the
    /// SCRAM nonces. This board has no TRNG, so the host gives a fresh random seed per boot;
    /// a seed used twice makes a boot repeat the nonces of the last.
    pub entropy_seed: Option<[u8; SEED_BYTES]>,
    /// `bench=scram`: instead of producing, time one SCRAM-SHA-512 exchange (4096
    /// iterations, Kafka's known answer) on the CPU alone and exit (see `bench.rs`).
    pub bench: bool,
    /// `bench=tls`: instead of producing, time a TLS handshake's P-256 operations on the CPU
    /// alone and exit (see `bench_tls.rs`).
    pub bench_tls: bool,
}

impl core::fmt::Debug for Settings {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Settings")
            .field("port", &self.port)
            .field("host", &self.host)
            .field("security", &self.security)
            .field("ca", &self.ca.map(|hex| hex.len() / 2))
            .field("records", &self.records)
            .field("topic", &self.topic)
            .field("deadline", &self.deadline)
            .field("seed", &self.seed)
            .field("epoch_ms", &self.epoch_ms)
            .field("sasl", &self.sasl)
            .field("username", &self.username)
            .field("password", &self.password.map(|_| "<redacted>"))
            .field("entropy_seed", &self.entropy_seed.map(|_| "<redacted>"))
            .field("bench", &self.bench)
            .field("bench_tls", &self.bench_tls)
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            port: 9092,
            host: None,
            security: None,
            ca: None,
            records: 1000,
            topic: "sensors",
            deadline: Duration::from_secs(30),
            seed: 0x5eed,
            epoch_ms: None,
            sasl: None,
            username: None,
            password: None,
            entropy_seed: None,
            bench: false,
            bench_tls: false,
        }
    }
}

/// Why the command line was refused.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub enum SettingsError {
    /// The host gave no command line, or one longer than the buffer.
    Unavailable,
    /// An argument is not valid UTF-8.
    NotUtf8,
    /// An argument is not `KEY=VALUE` with a known key and a valid value.
    Invalid(&'static str),
}

impl Settings {
    /// Reads the command line (argument 0, the program name, is skipped). Call once: the
    /// arguments are kept in a static for the topic name to borrow.
    pub fn from_args() -> Result<Settings, SettingsError> {
        static ARGS: StaticCell<Args<ARGS_BYTES>> = StaticCell::new();
        let args: &'static Args<ARGS_BYTES> =
            ARGS.init(args::<ARGS_BYTES>().map_err(|_| SettingsError::Unavailable)?);
        let mut settings = Settings::default();
        for arg in args.skip(1) {
            let arg = arg.map_err(|_| SettingsError::NotUtf8)?;
            // A refused secret is named by its key alone: the log is not the place for it.
            let shown = match arg.split_once('=') {
                // The CA is no secret, but a thousand hex digits say nothing.
                Some((key @ ("password" | "entropy_seed" | "ca"), _)) => key,
                _ => arg,
            };
            settings.apply(arg).ok_or(SettingsError::Invalid(shown))?;
        }
        Ok(settings)
    }

    /// Applies one `KEY=VALUE`; `None` if the key is unknown or the value invalid.
    fn apply(&mut self, arg: &'static str) -> Option<()> {
        let (key, value) = arg.split_once('=')?;
        match key {
            "port" => self.port = value.parse().ok().filter(|&p| p != 0)?,
            "records" => self.records = value.parse().ok()?,
            "topic" if !value.is_empty() => self.topic = value,
            "deadline_ms" => {
                self.deadline = Duration::from_millis(value.parse().ok().filter(|&ms| ms > 0)?);
            }
            "host" if !value.is_empty() => self.host = Some(value),
            "security_protocol" => {
                self.security = Some(match value {
                    "PLAINTEXT" => Security::Plaintext,
                    "SASL_PLAINTEXT" => Security::SaslPlaintext,
                    "SSL" => Security::Ssl,
                    "SASL_SSL" => Security::SaslSsl,
                    _ => return None,
                });
            }
            "ca" if is_hex(value) => self.ca = Some(value),
            "seed" => self.seed = value.parse().ok()?,
            "epoch_ms" => self.epoch_ms = Some(value.parse().ok()?),
            "sasl" => {
                self.sasl = Some(match value {
                    "scram-sha-256" => SaslSetting::ScramSha256,
                    "scram-sha-512" => SaslSetting::ScramSha512,
                    _ => return None,
                });
            }
            "username" if !value.is_empty() => self.username = Some(value),
            "password" if !value.is_empty() => self.password = Some(value),
            "entropy_seed" => self.entropy_seed = Some(parse_hex(value)?),
            "bench" if value == "scram" => self.bench = true,
            "bench" if value == "tls" => self.bench_tls = true,
            _ => return None,
        }
        Some(())
    }
}

/// A non-empty, even number of hex digits.
fn is_hex(hex: &str) -> bool {
    !hex.is_empty() && hex.len().is_multiple_of(2) && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The bytes of `hex` (checked by [`is_hex`]) into `out`; `None` if they do not fit.
#[cfg_attr(not(feature = "tls"), allow(dead_code))]
pub fn decode_hex<'a>(hex: &str, out: &'a mut [u8]) -> Option<&'a [u8]> {
    let out = out.get_mut(..hex.len() / 2)?;
    for (byte, pair) in out.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        *byte = u8::from_str_radix(core::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// `N` bytes from exactly `2 * N` hex digits.
fn parse_hex<const N: usize>(hex: &str) -> Option<[u8; N]> {
    let digits = hex.as_bytes();
    if digits.len() != 2 * N || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut bytes = [0u8; N];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        let pair = core::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(bytes)
}
