//! SASL authentication, sans-IO: the mechanisms' messages, written into caller buffers and
//! read from the broker's answers, with no socket, clock, allocator or randomness of its own.
//!
//! On a SASL_PLAINTEXT or SASL_SSL listener a Kafka connection authenticates right after
//! ApiVersions and before any other request:
//!
//! 1. SaslHandshake v1 names the mechanism ([`Authenticator::handshake_request`]); the answer
//!    says whether the listener enables it ([`Authenticator::check_handshake`]).
//! 2. SaslAuthenticate requests carry the mechanism's messages: the first from
//!    [`Authenticator::start`], each next one from [`Authenticator::on_response`], until it
//!    says [`Step::Done`] (authenticated, with the session lifetime after which the broker
//!    wants the client to authenticate again, KIP-368) or fails with an [`Error`].
//!
//! Mechanisms: [`plain`] (PLAIN, RFC 4616), `scram` (SCRAM-SHA-256 and SCRAM-SHA-512,
//! RFC 5802 and RFC 7677; feature `sasl-scram`, which brings SHA-2, HMAC, PBKDF2 and base64
//! from RustCrypto) and [`oauthbearer`] (OAUTHBEARER, RFC 7628, with a token the application
//! supplies). Each module also offers its messages on their own.
//!
//! Secrets (passwords, tokens, salted passwords) never appear in `Debug` or `defmt` output of
//! anything here, and this module logs nothing; [`Error`]s carry none, so they can be logged.
//!
//! # Example: PLAIN, one round trip
//!
//! ```
//! use producer_core::sasl::{Authenticator, Mechanism, NONCE_BYTES, Step};
//! use producer_core::wire::{SaslAuthenticateResponse, SaslHandshakeResponse, MechanismName, List};
//!
//! // One per client; for SCRAM it keeps the salted password for every connection.
//! let mut auth = Authenticator::new(Mechanism::Plain { username: "alice", password: "s3cret" })?;
//! assert_eq!(auth.handshake_request().mechanism, "PLAIN");
//! let enabled = [MechanismName("SCRAM-SHA-512"), MechanismName("PLAIN")];
//! auth.check_handshake(&SaslHandshakeResponse { error_code: 0, mechanisms: List::from_slice(&enabled) })?;
//!
//! let mut out = [0u8; 64];
//! let random = [0u8; NONCE_BYTES]; // from the transport's RNG (only SCRAM uses it)
//! let (mut exchange, n) = auth.start(&random, &mut out)?;
//! assert_eq!(&out[..n], b"\0alice\0s3cret"); // the first SaslAuthenticate's auth bytes
//! let verdict = SaslAuthenticateResponse { session_lifetime_ms: 3_600_000, ..Default::default() };
//! let step = auth.on_response(&mut exchange, &verdict, &mut out)?;
//! assert_eq!(step, Step::Done { session_lifetime_ms: 3_600_000 });
//! # Ok::<(), producer_core::sasl::Error>(())
//! ```

#[cfg(feature = "sasl")]
mod authenticator;
mod error;
#[cfg(feature = "sasl")]
pub mod oauthbearer;
#[cfg(feature = "sasl")]
pub mod plain;
#[cfg(feature = "sasl-scram")]
mod salted;
#[cfg(feature = "sasl-scram")]
pub mod scram;

#[cfg(feature = "sasl")]
pub use authenticator::{Authenticator, Exchange, Mechanism, Step};
pub use error::{Error, ScramServerError};
#[cfg(feature = "sasl")]
pub use oauthbearer::OAuthStatus;
#[cfg(feature = "sasl-scram")]
pub use salted::{Derivation, SaltedPassword, SaltedPasswordCache};
#[cfg(feature = "sasl-scram")]
pub use scram::{Nonce, ScramClient, ScramHash};

/// Random bytes [`Authenticator::start`] takes for a SCRAM nonce (192 bits; 32 characters
/// once encoded). PLAIN and OAUTHBEARER ignore them.
pub const NONCE_BYTES: usize = 24;

/// Longest SCRAM nonce this client sends, in characters.
pub const MAX_NONCE_LEN: usize = 64;

/// Longest SCRAM salt accepted from a broker, in bytes (Kafka's are at most 26).
pub const MAX_SALT_LEN: usize = 64;

/// Fewest SCRAM iterations accepted: what RFC 7677 asks and Kafka's minimum. Fewer make a
/// stolen salted credential cheap to attack, and a broker asking fewer is misconfigured or
/// not the cluster's.
pub const MIN_ITERATIONS: u32 = 4096;

/// Most SCRAM iterations accepted: Kafka's own maximum. A broker asking more would keep a
/// small device computing for minutes before it can even fail.
pub const MAX_ITERATIONS: u32 = 16_384;
