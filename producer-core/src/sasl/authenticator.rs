//! The one type a client drives for any mechanism: [`Authenticator`] makes the SaslHandshake
//! and SaslAuthenticate messages of the configured [`Mechanism`] and reads the broker's
//! answers, one [`Exchange`] per connection.

use super::{Error, NONCE_BYTES, OAuthStatus, oauthbearer, plain};
#[cfg(feature = "sasl-scram")]
use super::{Nonce, SaltedPassword, SaltedPasswordCache, ScramClient, ScramHash, scram};
use crate::ErrorCode;
use crate::wire::{SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse};

const UNSUPPORTED_SASL_MECHANISM: i16 = ErrorCode::UNSUPPORTED_SASL_MECHANISM.0;

/// A mechanism and the credentials it sends: what the application configures. Borrowed, like
/// the rest of the client configuration; `Debug` and `defmt` show the username but never the
/// password or token.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mechanism<'a> {
    /// PLAIN: username and password in clear; only over TLS.
    Plain {
        /// The user.
        username: &'a str,
        /// Its password.
        password: &'a str,
    },
    /// SCRAM-SHA-256: the password never crosses the wire, and the broker proves it knows it.
    #[cfg(feature = "sasl-scram")]
    ScramSha256 {
        /// The user.
        username: &'a str,
        /// Its password.
        password: &'a str,
    },
    /// SCRAM-SHA-512: the same with SHA-512.
    #[cfg(feature = "sasl-scram")]
    ScramSha512 {
        /// The user.
        username: &'a str,
        /// Its password.
        password: &'a str,
    },
    /// OAUTHBEARER: a bearer token from the application's identity provider (fetching and
    /// refreshing it is the application's), with optional SASL extensions such as Confluent
    /// Cloud's `logicalCluster`. Tokens expire long before a client does: a fresh one goes
    /// to [`Authenticator::start_with_token`], this one is the first.
    OAuthBearer {
        /// The access token, without a scheme.
        token: &'a str,
        /// `(key, value)` pairs sent with it.
        extensions: &'a [(&'a str, &'a str)],
    },
}

impl Mechanism<'_> {
    /// The SASL name, as SaslHandshake carries it.
    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::Plain { .. } => "PLAIN",
            #[cfg(feature = "sasl-scram")]
            Mechanism::ScramSha256 { .. } => ScramHash::Sha256.mechanism(),
            #[cfg(feature = "sasl-scram")]
            Mechanism::ScramSha512 { .. } => ScramHash::Sha512.mechanism(),
            Mechanism::OAuthBearer { .. } => "OAUTHBEARER",
        }
    }

    /// Checks that the credentials can be sent, so a configuration mistake shows when the
    /// client is built, not at the first connection.
    pub fn validate(&self) -> Result<(), Error> {
        match *self {
            Mechanism::Plain { username, password } => plain::validate(username, password),
            #[cfg(feature = "sasl-scram")]
            Mechanism::ScramSha256 { username, password }
            | Mechanism::ScramSha512 { username, password } => scram::validate(username, password),
            Mechanism::OAuthBearer { token, extensions } => {
                oauthbearer::validate(token, extensions)
            }
        }
    }

    fn username(&self) -> Option<&str> {
        match *self {
            Mechanism::Plain { username, .. } => Some(username),
            #[cfg(feature = "sasl-scram")]
            Mechanism::ScramSha256 { username, .. } | Mechanism::ScramSha512 { username, .. } => {
                Some(username)
            }
            Mechanism::OAuthBearer { .. } => None,
        }
    }
}

impl core::fmt::Debug for Mechanism<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut s = f.debug_struct(self.name());
        match self.username() {
            Some(user) => s.field("username", &user).field("password", &"<redacted>"),
            None => s.field("token", &"<redacted>"),
        };
        s.finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Mechanism<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self.username() {
            Some(user) => defmt::write!(f, "{} {{ username: {} }}", self.name(), user),
            None => defmt::write!(f, "{}", self.name()),
        }
    }
}

/// What to do after a step of the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Step {
    /// Send the first this many bytes of the output buffer as the next SaslAuthenticate
    /// request's auth bytes.
    Send(usize),
    /// Authenticated: other requests may follow.
    Done {
        /// The broker's session lifetime (SaslAuthenticate v1+): authenticate again on this
        /// connection before it ends, or the broker closes it (KIP-368). 0: no limit.
        session_lifetime_ms: i64,
    },
}

/// Where one connection's exchange is.
#[derive(Clone)]
enum State {
    /// PLAIN sent; the verdict is awaited.
    Plain,
    #[cfg(feature = "sasl-scram")]
    Scram(ScramClient),
    /// OAUTHBEARER sent; the verdict is awaited.
    OAuthBearer,
    /// The broker refused the token with this status; the closing `\x01` was sent.
    OAuthRejected(OAuthStatus),
    Done,
    Failed,
}

/// One connection's authentication in progress: owned, no borrow, a few hundred bytes at
/// most, so a connection can keep it beside its other state. Made by
/// [`Authenticator::start`], advanced by [`Authenticator::on_response`].
#[derive(Clone)]
pub struct Exchange {
    state: State,
}

impl Exchange {
    /// Whether the exchange succeeded.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

impl core::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match &self.state {
            State::Plain => f.write_str("Exchange(PLAIN sent)"),
            #[cfg(feature = "sasl-scram")]
            State::Scram(c) => write!(f, "Exchange({c:?})"),
            State::OAuthBearer => f.write_str("Exchange(OAUTHBEARER sent)"),
            State::OAuthRejected(s) => write!(f, "Exchange(OAUTHBEARER rejected: {s:?})"),
            State::Done => f.write_str("Exchange(authenticated)"),
            State::Failed => f.write_str("Exchange(failed)"),
        }
    }
}

/// A client's SASL configuration and what it keeps across connections: the mechanism with
/// its credentials and, for SCRAM, up to `CACHE` salted passwords (see
/// `SaltedPasswordCache`), so the costly derivation runs once, not per connection. One per
/// client; each connection gets an [`Exchange`] from it.
pub struct Authenticator<'a, const CACHE: usize = 1> {
    mechanism: Mechanism<'a>,
    #[cfg(feature = "sasl-scram")]
    salted: SaltedPasswordCache<CACHE>,
}

impl<const CACHE: usize> core::fmt::Debug for Authenticator<'_, CACHE> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut s = f.debug_struct("Authenticator");
        s.field("mechanism", &self.mechanism);
        #[cfg(feature = "sasl-scram")]
        s.field("salted", &self.salted);
        s.finish()
    }
}

impl<'a> Authenticator<'a> {
    /// An authenticator for `mechanism`, whose credentials are checked now, keeping one
    /// salted password (one cluster's credential). See [`with_cache`](Self::with_cache) for
    /// more.
    pub fn new(mechanism: Mechanism<'a>) -> Result<Self, Error> {
        Self::with_cache(mechanism)
    }
}

impl<'a, const CACHE: usize> Authenticator<'a, CACHE> {
    /// An authenticator for `mechanism`, whose credentials are checked now, keeping up to
    /// `CACHE` salted passwords.
    pub fn with_cache(mechanism: Mechanism<'a>) -> Result<Self, Error> {
        mechanism.validate()?;
        Ok(Authenticator {
            mechanism,
            #[cfg(feature = "sasl-scram")]
            salted: SaltedPasswordCache::new(),
        })
    }

    /// An authenticator for `mechanism` that goes on with salted passwords kept before
    /// (see [`into_salted`](Self::into_salted)): how a client that owns its credentials, and
    /// so cannot keep an authenticator borrowing them, keeps the costly derivation across
    /// connections.
    #[cfg(feature = "sasl-scram")]
    pub fn with_salted(
        mechanism: Mechanism<'a>,
        salted: SaltedPasswordCache<CACHE>,
    ) -> Result<Self, Error> {
        mechanism.validate()?;
        Ok(Authenticator { mechanism, salted })
    }

    /// The salted passwords kept, for [`with_salted`](Self::with_salted).
    #[cfg(feature = "sasl-scram")]
    pub fn into_salted(self) -> SaltedPasswordCache<CACHE> {
        self.salted
    }

    /// The configured mechanism.
    pub fn mechanism(&self) -> &Mechanism<'a> {
        &self.mechanism
    }

    /// The salted passwords kept so far.
    #[cfg(feature = "sasl-scram")]
    pub fn salted_passwords(&self) -> &SaltedPasswordCache<CACHE> {
        &self.salted
    }

    /// The SaslHandshake request (v1) naming the mechanism.
    pub fn handshake_request(&self) -> SaslHandshakeRequest<'static> {
        SaslHandshakeRequest {
            mechanism: self.mechanism.name(),
        }
    }

    /// Checks the SaslHandshake answer: the listener must enable the mechanism.
    pub fn check_handshake(&self, response: &SaslHandshakeResponse<'_>) -> Result<(), Error> {
        let mechanism = self.mechanism.name();
        match response.error_code {
            0 if response.enables(mechanism) => Ok(()),
            0 | UNSUPPORTED_SASL_MECHANISM => Err(Error::MechanismNotEnabled { mechanism }),
            error_code => Err(Error::AuthenticationFailed { error_code }),
        }
    }

    /// Starts a connection's exchange: writes the mechanism's first message into `out` and
    /// returns the exchange and the message's length (the first SaslAuthenticate request's
    /// auth bytes). `random` makes the SCRAM nonce: fresh bytes from an RNG every time.
    pub fn start(
        &self,
        random: &[u8; NONCE_BYTES],
        out: &mut [u8],
    ) -> Result<(Exchange, usize), Error> {
        #[cfg(not(feature = "sasl-scram"))]
        let _ = random;
        let (state, n) = match self.mechanism {
            Mechanism::Plain { username, password } => (
                State::Plain,
                plain::initial_response(username, password, out)?,
            ),
            #[cfg(feature = "sasl-scram")]
            Mechanism::ScramSha256 { username, .. } => {
                scram_start(ScramHash::Sha256, username, random, out)?
            }
            #[cfg(feature = "sasl-scram")]
            Mechanism::ScramSha512 { username, .. } => {
                scram_start(ScramHash::Sha512, username, random, out)?
            }
            Mechanism::OAuthBearer { token, extensions } => (
                State::OAuthBearer,
                oauthbearer::initial_response(token, extensions, out)?,
            ),
        };
        Ok((Exchange { state }, n))
    }

    /// Starts an OAUTHBEARER exchange like [`start`](Self::start), with `token` instead of
    /// the configured one (and the configured extensions): how a long-lived client sends the
    /// fresh token the application fetched, on a new connection or to authenticate again
    /// before the session lifetime ends. [`Error::WrongMechanism`] for another mechanism.
    pub fn start_with_token(
        &self,
        token: &str,
        out: &mut [u8],
    ) -> Result<(Exchange, usize), Error> {
        let Mechanism::OAuthBearer { extensions, .. } = self.mechanism else {
            return Err(Error::WrongMechanism);
        };
        let n = oauthbearer::initial_response(token, extensions, out)?;
        Ok((
            Exchange {
                state: State::OAuthBearer,
            },
            n,
        ))
    }

    /// The salted-password derivation `response` (a SCRAM server-first message) needs before
    /// [`on_response`](Self::on_response) can answer it without computing it whole, or `None`
    /// when there is none to do: another mechanism or step, a salted password already kept,
    /// or a message `on_response` will refuse. A caller that must not block runs the
    /// [`Derivation`](super::Derivation) in steps, gives the result to
    /// [`keep_salted`](Self::keep_salted), then calls `on_response`.
    #[cfg(feature = "sasl-scram")]
    pub fn derivation_for(
        &self,
        exchange: &Exchange,
        response: &SaslAuthenticateResponse<'_>,
    ) -> Option<super::Derivation> {
        let State::Scram(client) = &exchange.state else {
            return None;
        };
        let (Mechanism::ScramSha256 { password, .. } | Mechanism::ScramSha512 { password, .. }) =
            self.mechanism
        else {
            return None;
        };
        if response.error_code != 0 {
            return None;
        }
        let (salt, len, iterations) = client.credential(response.auth_bytes)?;
        let salt = salt.get(..len)?;
        if self.salted.get(client.hash(), salt, iterations).is_some() {
            return None;
        }
        super::Derivation::new(client.hash(), password, salt, iterations).ok()
    }

    /// Keeps a salted password computed in steps (see [`derivation_for`](Self::derivation_for)).
    #[cfg(feature = "sasl-scram")]
    pub fn keep_salted(&mut self, derivation: &super::Derivation, salted: SaltedPassword) {
        self.salted
            .insert(derivation.salt(), derivation.iterations(), salted);
    }

    /// The password a SCRAM derivation runs with (`None` for other mechanisms).
    #[cfg(feature = "sasl-scram")]
    pub fn scram_password(&self) -> Option<&'a str> {
        match self.mechanism {
            Mechanism::ScramSha256 { password, .. } | Mechanism::ScramSha512 { password, .. } => {
                Some(password)
            }
            _ => None,
        }
    }

    /// Reads the broker's SaslAuthenticate answer to the exchange's last message, and says
    /// what comes next: another message (written into `out`), or done. An error ends the
    /// exchange (the connection should be closed), except [`Error::BufferTooSmall`], after
    /// which the call may be repeated with a larger buffer.
    pub fn on_response(
        &mut self,
        exchange: &mut Exchange,
        response: &SaslAuthenticateResponse<'_>,
        out: &mut [u8],
    ) -> Result<Step, Error> {
        let result = self.advance(&mut exchange.state, response, out);
        if let Err(e) = result
            && !matches!(e, Error::BufferTooSmall { .. })
        {
            exchange.state = State::Failed;
        }
        result
    }

    fn advance(
        &mut self,
        state: &mut State,
        response: &SaslAuthenticateResponse<'_>,
        out: &mut [u8],
    ) -> Result<Step, Error> {
        let done = Step::Done {
            session_lifetime_ms: response.session_lifetime_ms,
        };
        if response.error_code != 0 {
            return Err(match state {
                State::OAuthRejected(status) => Error::TokenRejected { status: *status },
                _ => Error::AuthenticationFailed {
                    error_code: response.error_code,
                },
            });
        }
        let message = response.auth_bytes;
        match state {
            State::Plain if message.is_empty() => {
                *state = State::Done;
                Ok(done)
            }
            State::OAuthBearer if message.is_empty() => {
                *state = State::Done;
                Ok(done)
            }
            State::OAuthBearer => {
                let status = oauthbearer::error_status(message);
                let dst = out
                    .get_mut(..1)
                    .ok_or(Error::BufferTooSmall { needed: 1 })?;
                dst.copy_from_slice(oauthbearer::FINISH);
                *state = State::OAuthRejected(status);
                Ok(Step::Send(1))
            }
            // A broker that ends the exchange with no error after the closing message still
            // refused the token.
            State::OAuthRejected(status) => Err(Error::TokenRejected { status: *status }),
            #[cfg(feature = "sasl-scram")]
            State::Scram(client) => {
                let (Mechanism::ScramSha256 { username, password }
                | Mechanism::ScramSha512 { username, password }) = self.mechanism
                else {
                    return Err(Error::WrongMechanism);
                };
                if client.awaits_server_first() {
                    let n =
                        client.client_final(username, password, message, &mut self.salted, out)?;
                    Ok(Step::Send(n))
                } else {
                    client.verify_server_final(message)?;
                    *state = State::Done;
                    Ok(done)
                }
            }
            State::Plain | State::Done => Err(Error::UnexpectedServerMessage),
            State::Failed => Err(Error::OutOfOrder),
        }
    }
}

/// A SCRAM exchange's first message.
#[cfg(feature = "sasl-scram")]
fn scram_start(
    hash: ScramHash,
    username: &str,
    random: &[u8; NONCE_BYTES],
    out: &mut [u8],
) -> Result<(State, usize), Error> {
    let mut client = ScramClient::new(hash, Nonce::from_random(random));
    let n = client.client_first(username, out)?;
    Ok((State::Scram(client), n))
}
