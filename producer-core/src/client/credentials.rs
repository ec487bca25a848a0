//! The client's own copy of its SASL credentials.
//!
//! [`ClientConfig`](super::ClientConfig) borrows, like the rest of the configuration; the
//! client does not, so that no transport type carries a lifetime. The username, the password
//! or token, and the OAUTHBEARER extensions are copied here into bounded strings when the
//! client is built (too long is a [`ClientConfigError`] naming the limit); each step of an
//! exchange borrows them for a short-lived [`Authenticator`], which takes and gives back the
//! SCRAM salted passwords, so the derivation runs once per client, not per connection.
//!
//! `Debug` shows the mechanism and the username, never the password, token or salted
//! password; nothing here logs.

use heapless::String;

use super::config::{
    ClientConfigError, Entropy, MAX_SASL_EXTENSION_BYTES, MAX_SASL_EXTENSIONS, MAX_SASL_SECRET,
    MAX_SASL_USERNAME,
};
use crate::sasl::{self, Authenticator, Mechanism};
use crate::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Plain,
    #[cfg(feature = "sasl-scram")]
    ScramSha256,
    #[cfg(feature = "sasl-scram")]
    ScramSha512,
    OAuthBearer,
}

/// Separates keys and values in [`Credentials::extensions`]: a control character, which no
/// valid extension holds.
const SEP: char = '\u{1f}';

pub(super) struct Credentials {
    kind: Kind,
    username: String<MAX_SASL_USERNAME>,
    /// The password, or the OAUTHBEARER token (empty: none yet).
    secret: String<MAX_SASL_SECRET>,
    /// OAUTHBEARER extensions, `key SEP value SEP` each.
    extensions: String<MAX_SASL_EXTENSION_BYTES>,
    /// When the token was given, and when it expires (`None`: not known).
    pub token_set_at: Instant,
    pub token_expires_at: Option<Instant>,
    pub entropy: Option<Entropy>,
    #[cfg(feature = "sasl-scram")]
    salted: sasl::SaltedPasswordCache<1>,
    /// The salted password being derived, a step per poll (one at a time: every broker of a
    /// cluster names the same credential).
    #[cfg(feature = "sasl-scram")]
    pub derivation: Option<sasl::Derivation>,
}

impl core::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Credentials")
            .field("mechanism", &self.kind)
            .field("username", &self.username.as_str())
            .field("secret", &"<redacted>")
            .field("token_expires_at", &self.token_expires_at)
            .finish()
    }
}

impl Credentials {
    /// A copy of `mechanism`'s credentials, checked.
    pub fn new(
        mechanism: &Mechanism<'_>,
        entropy: Option<Entropy>,
    ) -> Result<Self, ClientConfigError> {
        let (kind, username, secret, extensions): (_, &str, &str, &[(&str, &str)]) =
            match *mechanism {
                Mechanism::Plain { username, password } => (Kind::Plain, username, password, &[]),
                #[cfg(feature = "sasl-scram")]
                Mechanism::ScramSha256 { username, password } => {
                    (Kind::ScramSha256, username, password, &[])
                }
                #[cfg(feature = "sasl-scram")]
                Mechanism::ScramSha512 { username, password } => {
                    (Kind::ScramSha512, username, password, &[])
                }
                Mechanism::OAuthBearer { token, extensions } => {
                    (Kind::OAuthBearer, "", token, extensions)
                }
            };
        // An OAUTHBEARER token may come later, through `Client::set_oauth_token`.
        let later = kind == Kind::OAuthBearer && secret.is_empty();
        if !later {
            mechanism.validate().map_err(ClientConfigError::Sasl)?;
        } else {
            sasl::oauthbearer::validate("t", extensions).map_err(ClientConfigError::Sasl)?;
        }
        #[cfg(feature = "sasl-scram")]
        if matches!(kind, Kind::ScramSha256 | Kind::ScramSha512) && entropy.is_none() {
            return Err(ClientConfigError::SaslEntropy);
        }
        if extensions.len() > MAX_SASL_EXTENSIONS {
            return Err(ClientConfigError::SaslExtensions);
        }
        let mut kept = String::new();
        for (k, v) in extensions {
            for part in [*k, *v] {
                kept.push_str(part)
                    .and_then(|_| kept.push(SEP))
                    .map_err(|_| ClientConfigError::SaslExtensions)?;
            }
        }
        Ok(Credentials {
            kind,
            username: String::try_from(username)
                .map_err(|_| ClientConfigError::SaslUsernameTooLong)?,
            secret: String::try_from(secret).map_err(|_| ClientConfigError::SaslSecretTooLong)?,
            extensions: kept,
            token_set_at: Instant::ZERO,
            token_expires_at: None,
            entropy,
            #[cfg(feature = "sasl-scram")]
            salted: sasl::SaltedPasswordCache::new(),
            #[cfg(feature = "sasl-scram")]
            derivation: None,
        })
    }

    pub fn is_oauth(&self) -> bool {
        self.kind == Kind::OAuthBearer
    }

    pub fn is_scram(&self) -> bool {
        !matches!(self.kind, Kind::Plain | Kind::OAuthBearer)
    }

    /// The mechanism's SASL name.
    pub fn name(&self) -> &'static str {
        self.with_mechanism(|m| m.name())
    }

    /// Replaces the OAUTHBEARER token.
    pub fn set_token(
        &mut self,
        token: &str,
        now: Instant,
        expires_at: Option<Instant>,
    ) -> Result<(), sasl::Error> {
        if !self.is_oauth() {
            return Err(sasl::Error::WrongMechanism);
        }
        let secret = String::try_from(token).map_err(|_| sasl::Error::BufferTooSmall {
            needed: token.len(),
        })?;
        self.with_extensions(|ext| sasl::oauthbearer::validate(token, ext))?;
        self.secret = secret;
        self.token_set_at = now;
        self.token_expires_at = expires_at;
        Ok(())
    }

    /// A token is held that has not expired at `now` (always true for other mechanisms).
    pub fn token_usable(&self, now: Instant) -> bool {
        !self.is_oauth()
            || (!self.secret.is_empty() && self.token_expires_at.is_none_or(|at| now < at))
    }

    /// When the application should be asked for a new token: at once without one, else at
    /// 80% of the token's life (as librdkafka), so that it comes before any connection needs
    /// it. `None`: not OAUTHBEARER, or a token with no known expiry.
    pub fn token_refresh_at(&self) -> Option<Instant> {
        if !self.is_oauth() {
            return None;
        }
        if self.secret.is_empty() {
            return Some(Instant::ZERO);
        }
        let expires = self.token_expires_at?;
        let life = expires.saturating_duration_since(self.token_set_at);
        Some(self.token_set_at + life * 4 / 5)
    }

    fn with_extensions<R>(&self, f: impl FnOnce(&[(&str, &str)]) -> R) -> R {
        let mut pairs = [("", ""); MAX_SASL_EXTENSIONS];
        let mut parts = self.extensions.split(SEP);
        let mut n = 0;
        while n < MAX_SASL_EXTENSIONS {
            let (Some(k), Some(v)) = (parts.next(), parts.next()) else {
                break;
            };
            pairs[n] = (k, v);
            n += 1;
        }
        f(&pairs[..n])
    }

    fn with_mechanism<R>(&self, f: impl FnOnce(Mechanism<'_>) -> R) -> R {
        let (username, password) = (self.username.as_str(), self.secret.as_str());
        match self.kind {
            Kind::Plain => f(Mechanism::Plain { username, password }),
            #[cfg(feature = "sasl-scram")]
            Kind::ScramSha256 => f(Mechanism::ScramSha256 { username, password }),
            #[cfg(feature = "sasl-scram")]
            Kind::ScramSha512 => f(Mechanism::ScramSha512 { username, password }),
            Kind::OAuthBearer => self.with_extensions(|extensions| {
                f(Mechanism::OAuthBearer {
                    token: password,
                    extensions,
                })
            }),
        }
    }

    /// Runs `f` with an authenticator over these credentials and the salted passwords kept.
    pub fn authenticate<R>(
        &mut self,
        f: impl FnOnce(&mut Authenticator<'_>) -> Result<R, sasl::Error>,
    ) -> Result<R, sasl::Error> {
        #[cfg(feature = "sasl-scram")]
        {
            let salted = core::mem::take(&mut self.salted);
            let (result, salted) = {
                let this = &*self;
                this.with_mechanism(|m| match Authenticator::with_salted(m, salted.clone()) {
                    Ok(mut auth) => {
                        let r = f(&mut auth);
                        (r, auth.into_salted())
                    }
                    Err(e) => (Err(e), salted),
                })
            };
            self.salted = salted;
            result
        }
        #[cfg(not(feature = "sasl-scram"))]
        {
            self.with_mechanism(|m| {
                let mut auth = Authenticator::new(m)?;
                f(&mut auth)
            })
        }
    }

    /// Runs up to `budget` iterations of the derivation under way; true when it has just
    /// ended, its salted password kept for every connection.
    #[cfg(feature = "sasl-scram")]
    pub fn derive_step(&mut self, budget: u32) -> bool {
        let Some(d) = self.derivation.as_mut() else {
            return false;
        };
        let Some(salted) = d.step(self.secret.as_str(), budget) else {
            return false;
        };
        self.salted.insert(d.salt(), d.iterations(), salted);
        self.derivation = None;
        true
    }

    /// Fills `out` from the entropy source (SCRAM only; zeros otherwise, which PLAIN and
    /// OAUTHBEARER ignore).
    pub fn random(&self, out: &mut [u8]) {
        if let Some(Entropy(fill)) = self.entropy.filter(|_| self.is_scram()) {
            fill(out);
        }
    }
}
