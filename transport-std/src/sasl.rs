//! SASL on hosts: the operating system's random bytes for SCRAM nonces, and OAUTHBEARER
//! tokens handed to the client when it wants them.
//!
//! The core decides everything (when to authenticate, when a token is wanted, what an error
//! means); this file only supplies what the core cannot own: an RNG, and a way to the
//! application's identity provider ([`OAuthTokenSource`]).

use std::time::{Duration, Instant as StdInstant};

use producer_core::client::Entropy;
use producer_core::sasl;

use crate::Producer;
use crate::config::OAuthTokenSource;

/// The operating system's RNG (`getrandom`), for SCRAM nonces. Should it ever fail (it does
/// not on a running Linux, macOS or Windows), the bytes come from the standard library's
/// per-process random hash keys and the time, and the failure is logged.
pub(crate) fn os_random(out: &mut [u8]) {
    if let Err(e) = getrandom::fill(out) {
        log::error!(
            "the operating system's random source failed ({e}): SCRAM nonces fall back to hashed keys"
        );
        use std::hash::{BuildHasher, Hasher};
        for chunk in out.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(StdInstant::now().elapsed().as_nanos());
            let bytes = h.finish().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// The entropy the producer gives the client unless the configuration names its own.
pub(crate) const OS_ENTROPY: Entropy = Entropy(os_random);

/// How long after a failed fetch the token source is asked again.
const RETRY: Duration = Duration::from_secs(1);

/// The token source and when it last failed.
pub(crate) struct Tokens {
    pub source: Option<OAuthTokenSource>,
    pub failed_at: Option<StdInstant>,
}

impl Producer {
    /// Gives the producer an OAUTHBEARER token valid for `valid_for` from now (`None`: not
    /// known), for the connections it authenticates from now on; see
    /// [`Client::set_oauth_token`](producer_core::client::Client::set_oauth_token).
    pub fn set_oauth_token(
        &mut self,
        token: &str,
        valid_for: Option<Duration>,
    ) -> Result<(), sasl::Error> {
        let now = self.now();
        self.client
            .set_oauth_token(token, now, valid_for.map(|d| now + d))
    }

    /// The producer wants a new OAUTHBEARER token (none yet, or the current one is 80% through
    /// its life): give it one with [`Producer::set_oauth_token`], unless the configuration's
    /// `oauth_token` source does it.
    pub fn oauth_token_wanted(&self) -> bool {
        self.client.oauth_token_wanted(self.now())
    }

    /// Why authentication failed, once it has: the producer stopped and dials no more.
    /// [`sasl::Error`]'s message says which setting to change.
    pub fn authentication_error(&self) -> Option<sasl::Error> {
        self.client.authentication_error()
    }

    /// Asks the configured token source for a token when the client wants one.
    pub(crate) fn renew_token(&mut self) {
        if !self.oauth_token_wanted()
            || self.tokens.failed_at.is_some_and(|at| at.elapsed() < RETRY)
        {
            return;
        }
        let Some(source) = self.tokens.source.clone() else {
            return;
        };
        match (source.0)() {
            Ok(t) => match self.set_oauth_token(&t.token, t.valid_for) {
                Ok(()) => self.tokens.failed_at = None,
                Err(e) => {
                    log::warn!(
                        "the OAUTHBEARER token source gave a token that cannot be sent: {e}"
                    );
                    self.tokens.failed_at = Some(StdInstant::now());
                }
            },
            Err(e) => {
                log::warn!("the OAUTHBEARER token source failed: {e}");
                self.tokens.failed_at = Some(StdInstant::now());
            }
        }
    }
}
