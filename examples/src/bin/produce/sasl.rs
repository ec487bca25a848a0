//! `produce`'s SASL settings: the mechanism, the username, and the secret (a password, or an
//! OAUTHBEARER token) from a file or an environment variable, never from the command line
//! alone, where other users of the machine could read it (`ps`, shell history).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use transport_std::{Mechanism, OAuthToken, OAuthTokenSource, ProducerConfig};

/// A SASL mechanism, as `sasl.mechanism` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SaslMechanism {
    #[value(name = "PLAIN")]
    Plain,
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
    #[value(name = "OAUTHBEARER")]
    OAuthBearer,
}

/// SASL authentication (SASL_PLAINTEXT listeners), with librdkafka's names in brackets.
#[derive(Args, Debug)]
pub struct SaslArgs {
    /// Authenticate with this mechanism [sasl.mechanism].
    #[arg(long, value_enum, value_name = "MECHANISM")]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// The user (PLAIN, SCRAM) [sasl.username].
    #[arg(long, value_name = "NAME")]
    pub sasl_username: Option<String>,
    /// Read the password from FILE (its first line) [sasl.password].
    #[arg(long, value_name = "FILE", conflicts_with = "sasl_password_env")]
    pub sasl_password_file: Option<PathBuf>,
    /// Take the password from the environment variable NAME [sasl.password].
    #[arg(long, value_name = "NAME")]
    pub sasl_password_env: Option<String>,
    /// OAUTHBEARER: read the token from FILE (its first line), read again whenever the
    /// producer wants a fresh one.
    #[arg(long, value_name = "FILE", conflicts_with = "sasl_token_env")]
    pub sasl_token_file: Option<PathBuf>,
    /// OAUTHBEARER: take the token from the environment variable NAME.
    #[arg(long, value_name = "NAME")]
    pub sasl_token_env: Option<String>,
    /// OAUTHBEARER: how long each token read stays valid; the producer asks for the next at
    /// 80% of it (without it a token is sent until the broker refuses it).
    #[arg(long, value_name = "MS")]
    pub sasl_token_lifetime_ms: Option<u64>,
}

/// The credentials read, kept while the producer is built from them.
pub struct Secrets {
    mechanism: Option<SaslMechanism>,
    username: String,
    secret: String,
}

/// The first line of `text`, without its line ending.
fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .trim_end_matches('\r')
        .to_string()
}

fn read_file(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|t| first_line(&t))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn read_env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("the environment variable {name} is not set"))
}

impl SaslArgs {
    /// Checks the settings and reads the secret.
    pub fn read(&self) -> Result<Secrets, String> {
        let Some(mechanism) = self.sasl_mechanism else {
            let any = self.sasl_username.is_some()
                || self.sasl_password_file.is_some()
                || self.sasl_password_env.is_some()
                || self.sasl_token_file.is_some()
                || self.sasl_token_env.is_some();
            if any {
                return Err("SASL settings without --sasl-mechanism: name the mechanism".into());
            }
            return Ok(Secrets {
                mechanism: None,
                username: String::new(),
                secret: String::new(),
            });
        };
        let secret = if mechanism == SaslMechanism::OAuthBearer {
            match (&self.sasl_token_file, &self.sasl_token_env) {
                (Some(path), _) => read_file(path)?,
                (None, Some(name)) => read_env(name)?,
                (None, None) => {
                    return Err(
                        "OAUTHBEARER needs --sasl-token-file FILE or --sasl-token-env NAME".into(),
                    );
                }
            }
        } else {
            match (&self.sasl_password_file, &self.sasl_password_env) {
                (Some(path), _) => read_file(path)?,
                (None, Some(name)) => read_env(name)?,
                (None, None) => {
                    return Err(
                        "give the password with --sasl-password-file FILE or --sasl-password-env \
                         NAME (never on the command line)"
                            .into(),
                    );
                }
            }
        };
        let username = match (mechanism, &self.sasl_username) {
            (SaslMechanism::OAuthBearer, _) => String::new(),
            (_, Some(name)) => name.clone(),
            (_, None) => return Err("--sasl-username is needed with this mechanism".into()),
        };
        Ok(Secrets {
            mechanism: Some(mechanism),
            username,
            secret,
        })
    }

    /// Where fresh OAUTHBEARER tokens come from: the file or the variable, read again.
    fn token_source(&self) -> OAuthTokenSource {
        let (file, env) = (self.sasl_token_file.clone(), self.sasl_token_env.clone());
        let valid_for = self.sasl_token_lifetime_ms.map(Duration::from_millis);
        OAuthTokenSource(Arc::new(move || {
            let token = match (&file, &env) {
                (Some(path), _) => read_file(path)?,
                (None, Some(name)) => read_env(name)?,
                (None, None) => return Err("no token source".into()),
            };
            Ok(OAuthToken { token, valid_for })
        }))
    }
}

impl Secrets {
    /// Sets `config`'s SASL settings from these credentials.
    pub fn configure<'a>(&'a self, args: &SaslArgs, config: &mut ProducerConfig<'a>) {
        let (username, password) = (self.username.as_str(), self.secret.as_str());
        config.client.sasl = match self.mechanism {
            None => None,
            Some(SaslMechanism::Plain) => Some(Mechanism::Plain { username, password }),
            Some(SaslMechanism::ScramSha256) => Some(Mechanism::ScramSha256 { username, password }),
            Some(SaslMechanism::ScramSha512) => Some(Mechanism::ScramSha512 { username, password }),
            Some(SaslMechanism::OAuthBearer) => {
                // The first token comes through the source too, with its lifetime.
                config.oauth_token = Some(args.token_source());
                Some(Mechanism::OAuthBearer {
                    token: "",
                    extensions: &[],
                })
            }
        };
    }
}
