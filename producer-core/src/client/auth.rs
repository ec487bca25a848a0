//! SASL on each connection: a connection is usable only once authenticated.
//!
//! After ApiVersions, a client configured with a mechanism ([`ClientConfig::sasl`]) puts the
//! connection in [`ConnState::Authenticating`]: SaslHandshake v1 names the mechanism, then
//! SaslAuthenticate requests carry the mechanism's messages (made by a `sasl::Authenticator`
//! over the client's own copy of the credentials, `credentials.rs`) until the broker accepts,
//! and the connection is `Ready`. One request at a time; the request timeout applies to each.
//!
//! - A failure of the exchange (the broker refusing the credentials, 58; a mechanism the
//!   listener does not enable, 33; ILLEGAL_SASL_STATE, 34; a SCRAM server that cannot prove
//!   it knows the password; a refused OAUTHBEARER token) is the same on every broker of the
//!   cluster and retrying cannot fix it: the producer stops for good
//!   ([`FatalReason::Authentication`], every batch not in flight decided at once), the client
//!   dials no more, and [`Client::authentication_error`] says which setting to change. A
//!   connection lost or timed out mid-exchange is an ordinary loss: backed off and redialled.
//! - Re-authentication (KIP-368): when the broker gives a session lifetime, the connection
//!   stops taking new requests at 85% of it (`reauth_at`), waits for the answers to those out,
//!   and runs SaslHandshake and SaslAuthenticate again on the same connection. Draining first
//!   means no answer is interleaved with the exchange, and nothing in flight is lost; the
//!   15% left covers the answers still out (a Produce answer takes milliseconds to a request
//!   timeout) and the exchange itself. A connection that has not finished by the broker's
//!   deadline is closed by it: an ordinary loss. Kafka refuses a re-authentication that
//!   begins less than a second after the connection's previous one began (ILLEGAL_SASL_STATE,
//!   which would stop the producer): when a session is too short for that (a token close to
//!   its expiry, say, while the identity provider is down), the connection is not
//!   re-authenticated but drained and closed at the same point, and a new connection
//!   authenticates afresh (`MIN_REAUTH_INTERVAL`).
//! - OAUTHBEARER tokens come from the application ([`Client::set_oauth_token`]); the client
//!   asks for a new one at 80% of the current one's life ([`Client::oauth_token_wanted`]),
//!   and never starts an exchange with a token past its expiry: the connection waits for a
//!   fresh one.
//!
//! Without feature `sasl` none of this is built: a connection is ready once its versions are
//! negotiated, and the client keeps no credentials (the four answers at the end of the file).
//!
//! [`ClientConfig::sasl`]: super::ClientConfig::sasl

use super::Client;
use super::connection::ConnState;
#[cfg(feature = "sasl")]
use super::connection::{AUTH_REPLY_MAX, AuthPhase, Pending, PendingKind};
use crate::capacity::Capacities;
#[cfg(feature = "sasl")]
use crate::sasl::{self, NONCE_BYTES, Step};
#[cfg(feature = "sasl")]
use crate::state::FatalReason;
use crate::time::Instant;
#[cfg(feature = "sasl")]
use crate::wire::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};

/// Room in a request, beyond the auth bytes: header, client id (at most 64), lengths.
#[cfg(feature = "sasl")]
const AUTH_REQUEST_OVERHEAD: usize = 96;

/// The least time between the starts of two re-authentications of one connection: Kafka's
/// one second (`KafkaChannel`'s `MIN_REAUTH_INTERVAL_ONE_SECOND_NANOS`), measured by the
/// broker when a SaslHandshake arrives, plus a quarter second for the difference between
/// when this client sends and when the broker reads.
#[cfg(feature = "sasl")]
const MIN_REAUTH_INTERVAL: core::time::Duration = core::time::Duration::from_millis(1250);

/// SCRAM iterations of the salted-password derivation per [`Client::poll`]: at Kafka's 4096,
/// 128 polls. Measured on the QEMU gateway firmware (README, "SASL"), a whole SCRAM-SHA-512
/// derivation is about 100 million instructions, over half a second on a Cortex-M4, and 32
/// iterations about 0.8 million, 5 to 8 ms at 100 to 168 MHz: in steps, the firmware's other
/// tasks and the producer's own deadlines are served between them. The transport polls again
/// at once while one is under way.
#[cfg(feature = "sasl-scram")]
pub const SCRAM_ITERATIONS_PER_POLL: u32 = 32;

#[cfg(feature = "sasl")]
impl<S, C: Capacities> Client<S, C>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Why authentication failed, once it has: the client then dials no more, and every
    /// record is decided `NotPersisted` (or `PossiblyPersisted` when an attempt of it may have
    /// been appended) with [`FatalReason::Authentication`]. Its `Display` says which setting
    /// to change.
    pub fn authentication_error(&self) -> Option<sasl::Error> {
        self.sasl_error
    }

    /// Gives the client an OAUTHBEARER token (the access token alone, without `Bearer`),
    /// valid until `expires_at` on the client's clock (`None`: not known). It is used for
    /// every connection authenticated from now on, and for re-authentications; one that
    /// expires is never sent. [`sasl::Error::WrongMechanism`] when the client is not
    /// configured for OAUTHBEARER; [`sasl::Error::InvalidToken`] for a token that cannot be
    /// sent; [`sasl::Error::BufferTooSmall`] for one longer than the client keeps
    /// ([`MAX_SASL_SECRET`](super::MAX_SASL_SECRET)).
    pub fn set_oauth_token(
        &mut self,
        token: &str,
        now: Instant,
        expires_at: Option<Instant>,
    ) -> Result<(), sasl::Error> {
        let creds = self.sasl.as_mut().ok_or(sasl::Error::WrongMechanism)?;
        creds.set_token(token, now, expires_at)?;
        debug!("OAUTHBEARER token set");
        Ok(())
    }

    /// The client wants a new OAUTHBEARER token: it has none, or the one it has is 80% through
    /// its life. Transports ask after each poll and hand the application's answer to
    /// [`Client::set_oauth_token`]; [`Client::poll`] wakes at the instant it becomes true.
    pub fn oauth_token_wanted(&self, now: Instant) -> bool {
        self.sasl_error.is_none()
            && self
                .sasl
                .as_ref()
                .and_then(|c| c.token_refresh_at())
                .is_some_and(|at| at <= now)
    }

    /// When the next OAUTHBEARER token is wanted, for the timer table.
    pub(super) fn token_refresh_at(&self) -> Option<Instant> {
        self.sasl.as_ref().and_then(|c| c.token_refresh_at())
    }

    /// Authentication failed: the client dials no more (each broker would refuse alike).
    pub(super) fn authentication_stopped(&self) -> bool {
        self.sasl_error.is_some()
    }

    /// ApiVersions answered on connection `i`: authenticate it, or it is ready.
    pub(super) fn after_api_versions(&mut self, i: usize, now: Instant) {
        let Some(mechanism) = self.sasl.as_ref().map(|c| c.name()) else {
            self.conns[i].state = ConnState::Ready;
            return;
        };
        let v = self.conns[i].versions;
        if v.sasl_handshake.is_none() || v.sasl_authenticate.is_none() {
            // A broker without SaslHandshake v1 (Kafka before 1.0) cannot authenticate this
            // client anywhere.
            warn!("broker lacks SaslHandshake v1 or SaslAuthenticate");
            let e = sasl::Error::MechanismNotEnabled { mechanism };
            self.authentication_failed(i, e, now);
            return;
        }
        self.start_authentication(i, now);
    }

    fn start_authentication(&mut self, i: usize, now: Instant) {
        let c = &mut self.conns[i];
        if c.state == ConnState::Ready {
            c.reauth_began_at = Some(now);
        }
        c.state = ConnState::Authenticating;
        c.auth = Some(AuthPhase::Handshake { sent: false });
        c.reauth_at = None;
    }

    /// Connection `i` is ready and its re-authentication is due: once nothing is out on it,
    /// it authenticates again (and is `Authenticating`). True while it waits for the answers
    /// out, sending nothing.
    pub(super) fn reauthentication_due(&mut self, i: usize, now: Instant) -> bool {
        let c = &self.conns[i];
        if c.state != ConnState::Ready || c.reauth_at.is_none_or(|at| now < at) {
            return false;
        }
        if !c.reauth_in_place {
            // Too soon after the last re-authentication for Kafka: hand the connection on.
            if !c.draining {
                debug!(
                    "connection {:?}: session too short to renew in place, replacing it",
                    i
                );
                self.conns[i].draining = true;
            }
            return true;
        }
        if !c.pending.is_empty() {
            return true;
        }
        debug!("connection {:?}: authenticating again", i);
        self.start_authentication(i, now);
        false
    }

    /// The next SASL request on connection `i` (in `Authenticating`), into `buf`.
    pub(super) fn transmit_auth(
        &mut self,
        i: usize,
        now: Instant,
        buf: &mut [u8],
    ) -> Option<usize> {
        if !self.conns[i].pending.is_empty() {
            return None;
        }
        let versions = self.conns[i].versions;
        let phase = self.conns[i].auth.take()?;
        let creds = self.sasl.as_mut()?;
        let (next, sent) = match phase {
            AuthPhase::Handshake { sent: false } if !creds.token_usable(now) => {
                // No OAUTHBEARER token, or an expired one: the exchange starts with a fresh
                // one.
                (AuthPhase::Handshake { sent: false }, None)
            }
            AuthPhase::Handshake { sent: false } => {
                let request = SaslHandshakeRequest {
                    mechanism: creds.name(),
                };
                let n = self.conns[i].send_request(
                    &self.client_id,
                    buf,
                    versions.sasl_handshake?,
                    &request,
                    now,
                    PendingKind::SaslHandshake,
                );
                let next = AuthPhase::Handshake { sent: n.is_some() };
                (next, n)
            }
            AuthPhase::Start => {
                if !creds.token_usable(now) {
                    // No OAUTHBEARER token, or an expired one: wait for a fresh one.
                    self.conns[i].auth = Some(AuthPhase::Start);
                    return None;
                }
                let mut random = [0u8; NONCE_BYTES];
                creds.random(&mut random);
                // The message is written in the second half of `buf`, the request in the first.
                let (head, tail) = buf.split_at_mut(buf.len() / 2);
                let started = creds.authenticate(|auth| auth.start(&random, tail));
                let (exchange, n) = match started {
                    Ok(started) => started,
                    Err(e) => {
                        self.authentication_failed(i, e, now);
                        return None;
                    }
                };
                let request = SaslAuthenticateRequest {
                    auth_bytes: tail.get(..n).unwrap_or(&[]),
                };
                let sent = self.conns[i].send_request(
                    &self.client_id,
                    head,
                    versions.sasl_authenticate?,
                    &request,
                    now,
                    PendingKind::SaslAuthenticate,
                );
                if sent.is_none() {
                    let needed = 2 * (n + AUTH_REQUEST_OVERHEAD);
                    self.authentication_failed(i, sasl::Error::BufferTooSmall { needed }, now);
                    return None;
                }
                (AuthPhase::Waiting(exchange), sent)
            }
            AuthPhase::Reply(exchange, message) => {
                let request = SaslAuthenticateRequest {
                    auth_bytes: &message,
                };
                let n = self.conns[i].send_request(
                    &self.client_id,
                    buf,
                    versions.sasl_authenticate?,
                    &request,
                    now,
                    PendingKind::SaslAuthenticate,
                );
                match n {
                    Some(_) => (AuthPhase::Waiting(exchange), n),
                    None => (AuthPhase::Reply(exchange, message), None),
                }
            }
            waiting => (waiting, None),
        };
        self.conns[i].auth = Some(next);
        sent
    }

    /// The SaslHandshake answer on connection `i`: false when it does not decode.
    pub(super) fn on_sasl_handshake(
        &mut self,
        i: usize,
        p: &Pending,
        frame: &[u8],
        now: Instant,
    ) -> bool {
        let Some((header, response)) = Self::decode::<SaslHandshakeResponse<'_>>(frame, p.version)
        else {
            return false;
        };
        if !Self::check_correlation(p, &header) {
            return false;
        }
        let Some(creds) = self.sasl.as_mut() else {
            return false;
        };
        match creds.authenticate(|auth| auth.check_handshake(&response)) {
            Ok(()) => self.conns[i].auth = Some(AuthPhase::Start),
            Err(e) => self.authentication_failed(i, e, now),
        }
        true
    }

    /// A SaslAuthenticate answer on connection `i`: false when it does not decode.
    pub(super) fn on_sasl_authenticate(
        &mut self,
        i: usize,
        p: &Pending,
        frame: &[u8],
        now: Instant,
    ) -> bool {
        let Some((header, response)) =
            Self::decode::<SaslAuthenticateResponse<'_>>(frame, p.version)
        else {
            return false;
        };
        if !Self::check_correlation(p, &header) {
            return false;
        }
        let Some(AuthPhase::Waiting(exchange)) = self.conns[i].auth.take() else {
            return false;
        };
        #[cfg(feature = "sasl-scram")]
        if let Some(creds) = self.sasl.as_mut()
            && creds.derivation.is_none()
            && let Ok(Some(d)) =
                creds.authenticate(|auth| Ok(auth.derivation_for(&exchange, &response)))
            && let Ok(message) = heapless::Vec::from_slice(response.auth_bytes)
        {
            // The salted password is not kept yet: derived in steps by `poll`, and the
            // server-first answered once it is.
            debug!("connection {:?}: deriving the SCRAM salted password", i);
            creds.derivation = Some(d);
            self.conns[i].auth = Some(AuthPhase::Deriving(exchange, message));
            return true;
        }
        self.answer_sasl(i, exchange, &response, now);
        true
    }

    /// Answers `response` on connection `i`'s `exchange`: the next message to send, or
    /// authenticated, or failed.
    fn answer_sasl(
        &mut self,
        i: usize,
        mut exchange: sasl::Exchange,
        response: &SaslAuthenticateResponse<'_>,
        now: Instant,
    ) {
        let Some(creds) = self.sasl.as_mut() else {
            return;
        };
        let mut out = [0u8; AUTH_REPLY_MAX];
        let step = creds.authenticate(|auth| auth.on_response(&mut exchange, response, &mut out));
        match step {
            Ok(Step::Send(n)) => {
                let message = out
                    .get(..n)
                    .and_then(|m| heapless::Vec::from_slice(m).ok())
                    .unwrap_or_default();
                self.conns[i].auth = Some(AuthPhase::Reply(exchange, message));
            }
            Ok(Step::Done {
                session_lifetime_ms,
            }) => {
                let c = &mut self.conns[i];
                c.state = ConnState::Ready;
                c.reauth_at = u64::try_from(session_lifetime_ms)
                    .ok()
                    .filter(|&ms| ms > 0)
                    .map(|ms| {
                        now + core::time::Duration::from_millis(ms / 100 * 85 + ms % 100 * 85 / 100)
                    });
                c.reauth_in_place = match (c.reauth_at, c.reauth_began_at) {
                    (Some(at), Some(began)) => began + MIN_REAUTH_INTERVAL <= at,
                    _ => true,
                };
                debug!(
                    "connection {:?}: authenticated, session lifetime {:?} ms",
                    i, session_lifetime_ms
                );
            }
            Err(e) => self.authentication_failed(i, e, now),
        }
    }

    /// A step of the salted-password derivation under way, then the server-first messages
    /// that waited for it answered (from the kept salted password). A connection that waits
    /// for another credential (a salt that changed) starts its own derivation next.
    #[cfg(feature = "sasl-scram")]
    pub(super) fn advance_derivation(&mut self, now: Instant) {
        let Some(creds) = self.sasl.as_mut() else {
            return;
        };
        if creds.derivation.is_some() && !creds.derive_step(SCRAM_ITERATIONS_PER_POLL) {
            return;
        }
        for i in 0..self.conns.len() {
            if !matches!(self.conns[i].auth, Some(AuthPhase::Deriving(..))) {
                continue;
            }
            let Some(AuthPhase::Deriving(exchange, message)) = self.conns[i].auth.take() else {
                continue;
            };
            let response = SaslAuthenticateResponse {
                auth_bytes: &message,
                ..Default::default()
            };
            let Some(creds) = self.sasl.as_mut() else {
                return;
            };
            let wanted = creds.authenticate(|auth| Ok(auth.derivation_for(&exchange, &response)));
            match wanted {
                Ok(Some(d)) if creds.derivation.is_none() => {
                    creds.derivation = Some(d);
                    self.conns[i].auth = Some(AuthPhase::Deriving(exchange, message));
                }
                Ok(Some(_)) => self.conns[i].auth = Some(AuthPhase::Deriving(exchange, message)),
                _ => self.answer_sasl(i, exchange, &response, now),
            }
        }
    }

    /// Whether a salted password is being derived: the client wants polling again at once.
    #[cfg(feature = "sasl-scram")]
    pub(super) fn deriving(&self) -> bool {
        self.sasl.as_ref().is_some_and(|c| c.derivation.is_some())
    }

    /// The exchange on connection `i` failed with `e`: the producer stops, and dials no more.
    fn authentication_failed(&mut self, i: usize, e: sasl::Error, now: Instant) {
        warn!("connection {:?}: SASL authentication failed: {:?}", i, e);
        if self.sasl_error.is_none() {
            self.sasl_error = Some(e);
        }
        self.sequencer.stop(FatalReason::Authentication(e));
        self.drop_connection(i, now);
    }
}

/// The client without SASL: every connection is ready after ApiVersions, nothing stops the
/// dialling, and no timer waits for a session or a token.
#[cfg(not(feature = "sasl"))]
impl<S, C: Capacities> Client<S, C>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    pub(super) fn after_api_versions(&mut self, i: usize, _now: Instant) {
        self.conns[i].state = ConnState::Ready;
    }

    pub(super) fn authentication_stopped(&self) -> bool {
        false
    }

    pub(super) fn reauthentication_due(&mut self, _i: usize, _now: Instant) -> bool {
        false
    }

    pub(super) fn token_refresh_at(&self) -> Option<Instant> {
        None
    }
}
