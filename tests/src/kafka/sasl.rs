//! SASL_PLAINTEXT listeners: which mechanisms a cluster offers, its users, and what that
//! makes of the brokers' settings, the storage format and a Java client's settings.
//!
//! Each mechanism gets a listener of its own on every node ([`SaslMechanism::listener`]),
//! so a test picks the mechanism by the address it dials; replication, the controllers and
//! the fixture's admin connections stay on PLAINTEXT listeners.
//!
//! - PLAIN: users in the listener's JAAS `PlainLoginModule` (`user_NAME="PASSWORD"`).
//! - SCRAM-SHA-256 / SCRAM-SHA-512: credentials written into the cluster metadata when the
//!   storage is formatted (`kafka-storage format --add-scram`), 4096 iterations unless
//!   [`Sasl::scram_iterations`] says otherwise.
//! - OAUTHBEARER: Kafka's unsecured JWS validator (its default for the mechanism), which
//!   takes any unsigned token (`alg` `none`) with a `sub`, an `exp` in the future and an
//!   `iat` not in it; [`super::unsecured_jws`] makes one.
//!
//! Passwords stay out of what the fixture prints: [`Sasl::redact`] hides them in the
//! storage format report and in a Java client's output.

use std::time::Duration;

/// A SASL mechanism Kafka offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
    OAuthBearer,
}

impl SaslMechanism {
    /// Every mechanism, in the order [`Sasl::all`] enables them.
    pub const ALL: [SaslMechanism; 4] = [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
        SaslMechanism::OAuthBearer,
    ];

    /// The name SaslHandshake and `sasl.mechanism` use.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The name of the listener that offers this mechanism (alone).
    pub fn listener(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "SASL_PLAIN",
            SaslMechanism::ScramSha256 => "SASL_SCRAM_SHA_256",
            SaslMechanism::ScramSha512 => "SASL_SCRAM_SHA_512",
            SaslMechanism::OAuthBearer => "SASL_OAUTHBEARER",
        }
    }

    pub(super) fn is_scram(self) -> bool {
        matches!(
            self,
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512
        )
    }

    /// The JAAS login module of this mechanism (a broker's or a Java client's
    /// `sasl.jaas.config`).
    pub(super) fn login_module(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "org.apache.kafka.common.security.plain.PlainLoginModule",
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                "org.apache.kafka.common.security.scram.ScramLoginModule"
            }
            SaslMechanism::OAuthBearer => {
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
            }
        }
    }
}

/// A user name and password (for OAUTHBEARER: the token's subject, the password unused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslUser {
    pub name: String,
    pub password: String,
}

impl SaslUser {
    pub fn new(name: &str, password: &str) -> SaslUser {
        SaslUser {
            name: name.to_string(),
            password: password.to_string(),
        }
    }
}

/// The SASL side of a cluster: mechanisms, users, iterations, re-authentication. Given to
/// [`super::KafkaBuilder::sasl`].
#[derive(Clone, Debug, Default)]
pub struct Sasl {
    mechanisms: Vec<SaslMechanism>,
    users: Vec<(SaslMechanism, SaslUser)>,
    iterations: Option<u32>,
    reauth: Option<Duration>,
}

impl Sasl {
    /// No mechanism yet: add users ([`Sasl::user`]) or mechanisms ([`Sasl::enable`]).
    pub fn new() -> Sasl {
        Sasl::default()
    }

    /// Every mechanism, each with user `alice`, password `alice-secret` (OAUTHBEARER: any
    /// subject; `alice` is the one [`Sasl::user_of`] gives).
    pub fn all() -> Sasl {
        SaslMechanism::ALL
            .into_iter()
            .fold(Sasl::new(), |s, m| s.user(m, "alice", "alice-secret"))
    }

    /// Offers `mechanism` (on a listener of its own).
    pub fn enable(mut self, mechanism: SaslMechanism) -> Sasl {
        if !self.mechanisms.contains(&mechanism) {
            self.mechanisms.push(mechanism);
        }
        self
    }

    /// Offers `mechanism` and adds a user of it.
    pub fn user(mut self, mechanism: SaslMechanism, name: &str, password: &str) -> Sasl {
        assert!(
            !name.is_empty() && !name.contains(['"', ',', '=', ']', ' ']),
            "a user name the settings can quote: {name:?}"
        );
        assert!(
            !password.contains(['"', ',', ']']),
            "a password the settings can quote"
        );
        self.users.push((mechanism, SaslUser::new(name, password)));
        self.enable(mechanism)
    }

    /// PBKDF2 iterations of every SCRAM credential (Kafka's default and the fixture's: 4096).
    pub fn scram_iterations(mut self, iterations: u32) -> Sasl {
        assert!(
            iterations >= 4096,
            "Kafka refuses fewer than 4096 iterations"
        );
        self.iterations = Some(iterations);
        self
    }

    /// The brokers' `connections.max.reauth.ms` (KIP-368): a session ends this long after
    /// its authentication (OAUTHBEARER: at the token's expiry if sooner) unless the client
    /// authenticates again; SaslAuthenticate answers carry the session's lifetime.
    pub fn reauth(mut self, after: Duration) -> Sasl {
        self.reauth = Some(after);
        self
    }

    /// The mechanisms offered, in the order they were enabled.
    pub fn mechanisms(&self) -> &[SaslMechanism] {
        &self.mechanisms
    }

    /// The users of `mechanism`.
    pub fn users(&self, mechanism: SaslMechanism) -> Vec<&SaslUser> {
        self.users
            .iter()
            .filter(|(m, _)| *m == mechanism)
            .map(|(_, u)| u)
            .collect()
    }

    /// The first user of `mechanism`; panics if it has none.
    pub fn user_of(&self, mechanism: SaslMechanism) -> &SaslUser {
        self.users(mechanism)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {} user in this cluster", mechanism.name()))
    }

    /// PBKDF2 iterations of the SCRAM credentials.
    pub fn iterations(&self) -> u32 {
        self.iterations.unwrap_or(4096)
    }

    /// `text` with every password of this cluster replaced by `<password>`.
    pub fn redact(&self, text: &str) -> String {
        self.users
            .iter()
            .filter(|(_, u)| !u.password.is_empty())
            .fold(text.to_string(), |t, (_, u)| {
                t.replace(&u.password, "<password>")
            })
    }

    /// `listener.security.protocol.map` entries of the SASL listeners.
    pub(super) fn protocol_map(&self) -> String {
        self.mechanisms
            .iter()
            .map(|m| format!(",{}:SASL_PLAINTEXT", m.listener()))
            .collect()
    }

    /// Broker settings: each listener's mechanism and its JAAS configuration, and the
    /// re-authentication limit.
    pub(super) fn broker_settings(&self) -> Vec<(String, String)> {
        let mut settings = Vec::new();
        for &m in &self.mechanisms {
            let prefix = format!("listener.name.{}", m.listener().to_lowercase());
            settings.push((
                format!("{prefix}.sasl.enabled.mechanisms"),
                m.name().to_string(),
            ));
            let options: String = match m {
                SaslMechanism::Plain => self
                    .users(m)
                    .iter()
                    .map(|u| format!(" user_{}=\"{}\"", u.name, u.password))
                    .collect(),
                _ => String::new(),
            };
            settings.push((
                format!("{prefix}.{}.sasl.jaas.config", m.name().to_lowercase()),
                format!("{} required{options};", m.login_module()),
            ));
        }
        if let Some(after) = self.reauth {
            settings.push((
                "connections.max.reauth.ms".to_string(),
                after.as_millis().to_string(),
            ));
        }
        settings
    }

    /// `kafka-storage format` arguments that create the SCRAM credentials.
    pub(super) fn format_args(&self) -> Vec<String> {
        self.users
            .iter()
            .filter(|(m, _)| m.is_scram())
            .flat_map(|(m, u)| {
                [
                    "--add-scram".to_string(),
                    format!(
                        "{}=[name={},password={},iterations={}]",
                        m.name(),
                        u.name,
                        u.password,
                        self.iterations()
                    ),
                ]
            })
            .collect()
    }
}
