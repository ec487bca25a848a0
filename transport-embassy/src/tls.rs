//! TLS 1.3 to the brokers (feature `tls`): embedded-tls between the embassy-net socket and the
//! core driver's byte stream, with no allocator. The sans-IO client never sees ciphertext.
//!
//! # Why a runner
//!
//! Every [`Producer`](crate::Producer) method is cancel-safe because all its state lives in
//! the producer and the futures it polls keep none. embedded-tls cannot be driven that way:
//! its handshake (`TlsConnection::open`) and its record reads keep their progress in locals
//! of its futures (the state machine, the record header being read), and its blocking API
//! does the same in a call that must run to the end; a `TlsConnection` cannot be reset
//! (its key schedule keeps the last session's secrets) and borrows its record buffers for
//! its whole life, so a struct that outlives connections cannot make a new one each time
//! without `unsafe`. So the sessions run where embedded-tls expects them to: in one
//! long-lived future, [`TlsRunner::run`], which the firmware runs beside the producer for
//! as long as the producer lives (exactly like embassy-net's own `Runner`), in the same task
//! with `join` or in a task of its own. It owns the record buffers, makes a new
//! `TlsConnection` for each connection, and is never dropped mid-session.
//!
//! The producer and the runner share one [`TlsWire`] per connection: four byte queues
//! (ciphertext in and out, plaintext in and out) and the connection's state, in a
//! `RefCell` that neither holds across an await. The producer moves ciphertext between the
//! socket and the wire, and its driver reads and writes plaintext on the wire; the runner
//! moves bytes between the wire's queues through embedded-tls. Each wakes the other when it
//! has moved something. A producer method dropped mid-turn loses nothing: what it moved is
//! in the wire, and the runner's sessions go on.
//!
//! # Memory, per connection
//!
//! - [`TlsRecords`]`<RX, TX>`: the record buffers. `RX` must hold the largest record the
//!   broker sends: 16,384 bytes of plaintext plus 256 of overhead, so **16,640 bytes**
//!   ([`RECORD_RX_MIN`]). A broker that took the max_fragment_length extension would send
//!   smaller records, but Java's TLS, Kafka's, does not negotiate it by default, so this
//!   client does not offer it and no smaller size is safe. `TX` bounds the records this side
//!   writes: at least a handshake message (about 1 KiB without a client certificate; the
//!   certificate's size more with one) and `TLS_RECORD_OVERHEAD` (128) bytes; 4 KiB is
//!   plenty.
//! - [`TlsWire`]: four queues of [`WIRE_QUEUE`] bytes (8 KiB) and the broker's host name.
//! - In the runner's future, per connection: the verifier's copy of the broker's chain
//!   ([`CHAIN_MAX`] bytes) and embedded-tls's key schedule.
//!
//! # What is verified (embedded-tls 0.19, its `rustpki` verifier)
//!
//! - The chain: from the CA the firmware embeds (exactly one trust anchor) down the chain
//!   the broker sends, each certificate's signature by the one above it. Signature
//!   algorithms: ECDSA P-256 with SHA-256 always; ECDSA P-384 with SHA-384 with `tls-p384`
//!   (a P-384 key signing with SHA-256 is refused: embedded-tls takes that as P-256 only);
//!   RSA PKCS#1 v1.5 (SHA-256/384/512, any modulus the `rsa` crate takes: 2048 and 4096)
//!   with `tls-rsa`, which needs an allocator (the `rsa` crate's big integers: a peak of
//!   about 12 KB per handshake with 2048-bit keys, 22 KB with 4096-bit ones, measured by
//!   `tests/tests/embedded_tls_verifier.rs`). RSA-PSS certificate signatures are not supported.
//! - The handshake signature (CertificateVerify) by the leaf's key: ECDSA P-256; P-384 with
//!   `tls-p384`; RSA-PSS (what a TLS 1.3 RSA server signs with) with `tls-rsa`.
//! - The name: the host dialled (the bootstrap host, then each broker's advertised host),
//!   sent as SNI, against the leaf's DNS subject alternative names and its common name,
//!   with RFC 6125 wildcards. IP-address SANs are not read: brokers are dialled by name.
//! - The dates: this transport checks every certificate of the chain and the CA against the
//!   wall clock, once the firmware gave one
//!   ([`Producer::set_wall_clock`](crate::Producer::set_wall_clock)); without it, dates are
//!   not checked.
//! - Not checked by embedded-tls: basic constraints (that an intermediate is a CA), key
//!   usage and extended key usage, name constraints, revocation.
//! - TLS 1.3 only, TLS_AES_128_GCM_SHA256, key exchange on secp256r1.
//! - Not survived: a KeyUpdate or any post-handshake handshake message but NewSessionTicket
//!   from the broker panics inside embedded-tls 0.19 (`unimplemented!`), as do two
//!   malformed inputs only the broker itself can send (docs/design.md, "TLS", says which and
//!   why Kafka's brokers do not send them to a producer).
//!
//! A failure maps to a [`TlsFailure`]: the producer stops
//! ([`FatalReason::Tls`](crate::FatalReason::Tls)), as on transport-std. A connection that ends during the
//! handshake is an ordinary loss, redialled at the reconnect backoff.

mod der;
mod session;
mod wire;

use core::cell::{Cell, RefCell};
use core::fmt;

use p256::ecdsa::SigningKey;
use rand_core::{CryptoRng, RngCore};

pub use producer_core::tls::TlsFailure;
pub(crate) use wire::Plain;
pub use wire::{TlsProgress, TlsWire};

/// The least record read buffer (`RX` of [`TlsRecords`]) that holds any record a broker may
/// send: 2^14 bytes of plaintext and 256 bytes of expansion.
pub const RECORD_RX_MIN: usize = 16_384 + 256;
/// The least record write buffer (`TX` of [`TlsRecords`]) without a client certificate: the
/// ClientHello and the client's Finished, with room. A client certificate needs its own
/// length more.
pub const RECORD_TX_MIN: usize = 1024;
/// Each of a [`TlsWire`]'s four queues, in bytes.
pub const WIRE_QUEUE: usize = 2048;
/// The longest certificate chain a broker may send (the verifier keeps a copy until it has
/// checked the handshake signature).
pub const CHAIN_MAX: usize = 6144;
/// The longest CA or client certificate, DER, that [`TlsConfig`] takes.
pub const CERT_DER_MAX: usize = 2048;

/// How the producer talks to the brokers, as Kafka's `security.protocol` names it. SASL is on
/// when the client has a mechanism (`client.sasl`); the two must agree
/// ([`Producer::with_tls`](crate::Producer::with_tls) checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SecurityProtocol {
    /// Neither TLS nor SASL: a producer without `with_tls`.
    Plaintext,
    /// TLS, no SASL.
    Ssl,
    /// SASL over plain TCP: a producer without `with_tls`, with `client.sasl`.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether connections run over TLS.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// The firmware's TLS settings. Certificates and the key are DER or PEM; they are decoded
/// once, by [`new`].
#[derive(Clone, Copy)]
pub struct TlsConfig<'a> {
    /// The CA the brokers' certificates chain to (one certificate).
    pub ca: &'a [u8],
    /// For brokers that want a client certificate (`ssl.client.auth=required`): the
    /// client's certificate and its P-256 private key (SEC1 or PKCS#8).
    pub client: Option<ClientIdentity<'a>>,
}

/// A client certificate and its key. `Debug` never shows the key.
#[derive(Clone, Copy)]
pub struct ClientIdentity<'a> {
    /// The certificate, DER or PEM.
    pub cert: &'a [u8],
    /// Its P-256 private key: SEC1 (`EC PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`), DER or PEM.
    pub key: &'a [u8],
}

impl fmt::Debug for ClientIdentity<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ClientIdentity {{ cert: {} bytes, key: <redacted> }}",
            self.cert.len()
        )
    }
}

impl fmt::Debug for TlsConfig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca", &self.ca.len())
            .field("client", &self.client)
            .finish()
    }
}

/// Why TLS could not be set up; each says what to change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TlsSetupError {
    /// The CA is neither a DER certificate nor PEM, or is longer than [`CERT_DER_MAX`].
    Ca,
    /// The client certificate is neither DER nor PEM, or is longer than [`CERT_DER_MAX`].
    ClientCert,
    /// The client key is not a P-256 key in SEC1 or PKCS#8 (DER or PEM, unencrypted).
    ClientKey,
    /// Fewer TLS connections ([`TlsResources`]' `N`) than broker connections.
    Connections {
        /// TLS connections given.
        given: usize,
        /// The broker capacity.
        needed: usize,
    },
    /// A record buffer is too small: `RX` below [`RECORD_RX_MIN`] (a broker's record would
    /// not fit), or `TX` below [`RECORD_TX_MIN`] plus the client certificate's length.
    RecordBuffers {
        /// `RX` or `TX` as given.
        given: usize,
        /// The least that works.
        needed: usize,
    },
    /// The security protocol does not agree with the client: `Ssl` with `client.sasl` set, or
    /// `SaslSsl` without; or a protocol without TLS given to `with_tls`.
    Protocol,
}

impl fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsSetupError::Ca => write!(
                f,
                "the TLS CA is not a certificate (DER or PEM) of at most {CERT_DER_MAX} bytes"
            ),
            TlsSetupError::ClientCert => write!(
                f,
                "the TLS client certificate is not a certificate (DER or PEM) of at most \
                 {CERT_DER_MAX} bytes"
            ),
            TlsSetupError::ClientKey => f.write_str(
                "the TLS client key is not an unencrypted P-256 key (SEC1 or PKCS#8, DER or PEM)",
            ),
            TlsSetupError::Connections { given, needed } => write!(
                f,
                "{given} TLS connections for {needed} broker connections: size TlsResources' N \
                 to the broker capacity"
            ),
            TlsSetupError::RecordBuffers { given, needed } => write!(
                f,
                "a TLS record buffer of {given} bytes where {needed} are needed: size \
                 TlsResources' RX to RECORD_RX_MIN (a broker's 16 KiB record) and TX to \
                 RECORD_TX_MIN plus the client certificate"
            ),
            TlsSetupError::Protocol => f.write_str(
                "the security protocol does not agree with client.sasl: SASL_SSL needs a SASL \
                 mechanism, SSL none, and with_tls takes SSL or SASL_SSL only",
            ),
        }
    }
}

/// The record buffers of one connection's session: `RX` at least [`RECORD_RX_MIN`], `TX`
/// at least the client's largest handshake message plus 128 bytes (4 KiB is plenty).
pub struct TlsRecords<const RX: usize, const TX: usize> {
    rx: [u8; RX],
    tx: [u8; TX],
}

/// What the producer's side of TLS shares with the runner: one [`TlsWire`] per connection
/// and the wall clock.
pub struct TlsShared<const N: usize> {
    wires: [TlsWire; N],
    /// Unix seconds at a boot instant (embassy-time seconds), once the firmware told it.
    clock: Cell<Option<(u64, u64)>>,
}

/// All the memory TLS needs for `N` connections (one per broker connection): give it a
/// `static` (`StaticCell`) or the producer task's frame. `RX` and `TX` are the record
/// buffers' sizes ([`TlsRecords`]).
pub struct TlsResources<const N: usize, const RX: usize, const TX: usize> {
    shared: TlsShared<N>,
    records: [TlsRecords<RX, TX>; N],
}

impl<const N: usize, const RX: usize, const TX: usize> TlsResources<N, RX, TX> {
    /// Zeroed; `const` so it can initialise a `static` without copying through the stack.
    pub const fn new() -> Self {
        TlsResources {
            shared: TlsShared {
                wires: [const { TlsWire::new() }; N],
                clock: Cell::new(None),
            },
            records: [const {
                TlsRecords {
                    rx: [0; RX],
                    tx: [0; TX],
                }
            }; N],
        }
    }
}

impl<const N: usize, const RX: usize, const TX: usize> Default for TlsResources<N, RX, TX> {
    fn default() -> Self {
        Self::new()
    }
}

/// The producer's handle on TLS: give it to [`Producer::with_tls`](crate::Producer::with_tls).
/// Not `Clone`: one producer per set of sessions.
pub struct TlsLinks<'d> {
    pub(crate) wires: &'d [TlsWire],
    clock: &'d Cell<Option<(u64, u64)>>,
}

impl<'d> TlsLinks<'d> {
    /// The connections' wires, one per broker connection, to watch their sessions'
    /// [`progress`](TlsWire::progress) (take it before the links go to the producer).
    pub fn wires(&self) -> &'d [TlsWire] {
        self.wires
    }

    /// The wall clock, `unix_ms` now: certificate dates are checked from then on.
    pub(crate) fn set_wall_clock(&self, unix_ms: i64) {
        let boot = embassy_time::Instant::now().as_secs();
        let unix = u64::try_from(unix_ms / 1000).unwrap_or(0);
        self.clock.set(Some((unix, boot)));
    }
}

fn now_unix(clock: &Cell<Option<(u64, u64)>>) -> Option<u64> {
    let (unix, boot) = clock.get()?;
    Some(unix + embassy_time::Instant::now().as_secs().saturating_sub(boot))
}

/// Runs the TLS sessions: see the module documentation. Run [`TlsRunner::run`] for as long
/// as the producer lives.
pub struct TlsRunner<'d, R, const N: usize, const RX: usize, const TX: usize> {
    shared: &'d TlsShared<N>,
    records: &'d mut [TlsRecords<RX, TX>; N],
    rng: RefCell<R>,
    ca: heapless::Vec<u8, CERT_DER_MAX>,
    client: Option<(heapless::Vec<u8, CERT_DER_MAX>, SigningKey)>,
}

/// Sets TLS up over `resources`: decodes the CA (and the client identity), and splits the
/// memory into the producer's handle and the runner. `rng` is the firmware's
/// cryptographically secure generator (a hardware RNG, or a CSPRNG seeded from one); it
/// makes each handshake's key share.
pub fn new<'d, R, const N: usize, const RX: usize, const TX: usize>(
    resources: &'d mut TlsResources<N, RX, TX>,
    config: TlsConfig<'_>,
    rng: R,
) -> Result<(TlsLinks<'d>, TlsRunner<'d, R, N, RX, TX>), TlsSetupError>
where
    R: RngCore + CryptoRng,
{
    if RX < RECORD_RX_MIN {
        return Err(TlsSetupError::RecordBuffers {
            given: RX,
            needed: RECORD_RX_MIN,
        });
    }
    let ca = decode_cert(config.ca).ok_or(TlsSetupError::Ca)?;
    let client = match config.client {
        None => None,
        Some(id) => {
            let cert = decode_cert(id.cert).ok_or(TlsSetupError::ClientCert)?;
            Some((cert, decode_key(id.key).ok_or(TlsSetupError::ClientKey)?))
        }
    };
    let tx_needed = RECORD_TX_MIN + client.as_ref().map_or(0, |(cert, _)| cert.len());
    if TX < tx_needed {
        return Err(TlsSetupError::RecordBuffers {
            given: TX,
            needed: tx_needed,
        });
    }
    let TlsResources { shared, records } = resources;
    let shared: &'d TlsShared<N> = shared;
    Ok((
        TlsLinks {
            wires: &shared.wires,
            clock: &shared.clock,
        },
        TlsRunner {
            shared,
            records,
            rng: RefCell::new(rng),
            ca,
            client,
        },
    ))
}

/// DER as given, or the first PEM block decoded.
fn decode_der<const M: usize>(input: &[u8]) -> Option<heapless::Vec<u8, M>> {
    let mut out = heapless::Vec::new();
    if input.first() == Some(&0x30) {
        out.extend_from_slice(input).ok()?;
        return Some(out);
    }
    let start = input.windows(5).position(|w| w == b"-----")?;
    let mut buf = [0u8; M];
    let (_label, der) = pem_rfc7468::decode(&input[start..], &mut buf).ok()?;
    out.extend_from_slice(der).ok()?;
    Some(out)
}

fn decode_cert(input: &[u8]) -> Option<heapless::Vec<u8, CERT_DER_MAX>> {
    decode_der(input).filter(|der| der::facts(der).is_some())
}

fn decode_key(input: &[u8]) -> Option<SigningKey> {
    use p256::pkcs8::DecodePrivateKey;
    let der: heapless::Vec<u8, 512> = decode_der(input)?;
    p256::SecretKey::from_sec1_der(&der)
        .ok()
        .or_else(|| p256::SecretKey::from_pkcs8_der(&der).ok())
        .map(|k| SigningKey::from(&k))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    /// A self-signed P-256 certificate (public data only; its key was thrown away): CN
    /// probe.example, DNS SANs broker.example and other.example, valid from 2026-12-04
    /// 19:18:05 to 2036-12-01 19:18:05 UTC.
    const PEM: &[u8] = b"-----BEGIN CERTIFICATE-----
MIIBrzCCAVWgAwIBAgIUKKm/c6sRDWrqNVA1gXNZI/uMLt4wCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNcHJvYmUuZXhhbXBsZTAeFw0yNjEyMDQxOTE4MDVaFw0zNjEy
MDExOTE4MDVaMBgxFjAUBgNVBAMMDXByb2JlLmV4YW1wbGUwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAAS0Hzsm9t5PIkq3zZaDF5nLF6He/icgJcF8BwyqaWORCMoS
TVxTwRVXN2Hcdgu7HYCDJjqGOBaYW5TfWjKhZeuKo30wezAdBgNVHQ4EFgQUcSqh
WWzozu11vGiYW8exJ5GF6ZYwHwYDVR0jBBgwFoAUcSqhWWzozu11vGiYW8exJ5GF
6ZYwDwYDVR0TAQH/BAUwAwEB/zAoBgNVHREEITAfgg5icm9rZXIuZXhhbXBsZYIN
b3RoZXIuZXhhbXBsZTAKBggqhkjOPQQDAgNIADBFAiEAnYbPDXgEEkrTZJrusnzz
KmH53niLLQVqygx1rt2IbvECIDGYwdfTu3c7EMecsq91UYrJPJ9Rps3m0Ig6T+zb
vBPf
-----END CERTIFICATE-----
";

    #[test]
    fn pem_and_der_give_the_same_certificate_and_its_facts() {
        let der = decode_cert(PEM).expect("PEM");
        assert_eq!(der.first(), Some(&0x30));
        // Text before the block (a comment, a bundle's heading) is skipped.
        let mut commented = b"# the brokers' CA\n".to_vec();
        commented.extend_from_slice(PEM);
        assert_eq!(decode_cert(&commented).as_deref(), Some(&der[..]));
        assert_eq!(decode_cert(&der).as_deref(), Some(&der[..]));
        let facts = der::facts(&der).expect("facts");
        assert_eq!(facts.not_before, 1_796_411_885);
        assert_eq!(facts.not_after, 2_111_771_885);
        // The first DNS SAN, not the common name.
        assert_eq!(facts.name, Some(&b"broker.example"[..]));
    }

    struct NoRng;
    impl RngCore for NoRng {
        fn next_u32(&mut self) -> u32 {
            unreachable!()
        }
        fn next_u64(&mut self) -> u64 {
            unreachable!()
        }
        fn fill_bytes(&mut self, _: &mut [u8]) {
            unreachable!()
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), rand_core::Error> {
            unreachable!()
        }
    }
    impl CryptoRng for NoRng {}

    #[test]
    fn record_buffers_below_what_a_broker_forces_are_refused() {
        let config = TlsConfig {
            ca: PEM,
            client: None,
        };
        let mut small = std::boxed::Box::new(TlsResources::<1, 4096, 4096>::new());
        assert_eq!(
            new(&mut small, config, NoRng).err(),
            Some(TlsSetupError::RecordBuffers {
                given: 4096,
                needed: RECORD_RX_MIN
            })
        );
        let mut tiny_tx = std::boxed::Box::new(TlsResources::<1, RECORD_RX_MIN, 512>::new());
        assert!(matches!(
            new(&mut tiny_tx, config, NoRng).err(),
            Some(TlsSetupError::RecordBuffers { given: 512, .. })
        ));
        let mut enough = std::boxed::Box::new(TlsResources::<1, RECORD_RX_MIN, 2048>::new());
        assert!(new(&mut enough, config, NoRng).is_ok());
    }

    #[test]
    fn what_is_not_a_certificate_is_refused_at_setup() {
        assert!(decode_cert(b"not a certificate").is_none());
        assert!(decode_cert(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_none());
        assert!(decode_key(PEM).is_none(), "a certificate is not a key");
        let config = TlsConfig {
            ca: PEM,
            client: Some(ClientIdentity {
                cert: PEM,
                key: b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
            }),
        };
        let shown = format!("{config:?}");
        assert!(
            shown.contains("<redacted>") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
    }
}
