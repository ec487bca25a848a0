//! The `sasl` crate's (xmpp-rs) SCRAM server for `tests/sasl_scram.rs`, with a SHA-512
//! provider built here from the RustCrypto versions that crate uses, and a user store of one.

use hmac_012::{Hmac, Mac};
use pbkdf2_012::pbkdf2;
use sha2_010::{Digest, Sha512 as Sha512Hash};
use xmpp_sasl::common::scram::{DeriveError, ScramProvider, Sha256 as XSha256};
use xmpp_sasl::common::{ChannelBinding, Identity, Password};
use xmpp_sasl::secret::{Pbkdf2Secret, Pbkdf2Sha256, Secret};
use xmpp_sasl::server::mechanisms::Scram;
use xmpp_sasl::server::{Mechanism, MechanismError, Provider, ProviderError, Response};

pub struct Sha512;

#[derive(Clone)]
pub struct Pbkdf2Sha512 {
    salt: Vec<u8>,
    iterations: u32,
    digest: Vec<u8>,
}

impl Secret for Pbkdf2Sha512 {}

impl Pbkdf2Secret for Pbkdf2Sha512 {
    fn salt(&self) -> &[u8] {
        &self.salt
    }
    fn iterations(&self) -> u32 {
        self.iterations
    }
    fn digest(&self) -> &[u8] {
        &self.digest
    }
}

impl ScramProvider for Sha512 {
    type Secret = Pbkdf2Sha512;
    fn name() -> &'static str {
        "SHA-512"
    }
    fn hash(data: &[u8]) -> Vec<u8> {
        Sha512Hash::digest(data).to_vec()
    }
    fn hmac(data: &[u8], key: &[u8]) -> Result<Vec<u8>, hmac_012::digest::InvalidLength> {
        let mut mac = Hmac::<Sha512Hash>::new_from_slice(key)?;
        mac.update(data);
        Ok(mac.finalize().into_bytes().to_vec())
    }
    fn derive(password: &Password, salt: &[u8], iterations: u32) -> Result<Vec<u8>, DeriveError> {
        let Password::Plain(plain) = password else {
            return Err(DeriveError::IncorrectSalt);
        };
        let mut out = vec![0; 64];
        pbkdf2::<Hmac<Sha512Hash>>(plain.as_bytes(), salt, iterations, &mut out)?;
        Ok(out)
    }
}

/// One user, whose credential the server derives from `password` with `salt` and
/// `iterations`.
pub struct Store {
    pub username: String,
    pub password: String,
    pub salt: Vec<u8>,
    pub iterations: u32,
}

impl Store {
    fn check(&self, identity: &Identity) -> Result<(), ProviderError> {
        match identity {
            Identity::Username(u) if *u == self.username => Ok(()),
            _ => Err(ProviderError::AuthenticationFailed),
        }
    }
}

impl Provider<Pbkdf2Sha256> for Store {
    fn provide(&self, identity: &Identity) -> Result<Pbkdf2Sha256, ProviderError> {
        self.check(identity)?;
        Ok(Pbkdf2Sha256::derive(
            &self.password,
            &self.salt,
            self.iterations,
        )?)
    }
}
xmpp_sasl::impl_validator_using_provider!(Store, Pbkdf2Sha256);

impl Provider<Pbkdf2Sha512> for Store {
    fn provide(&self, identity: &Identity) -> Result<Pbkdf2Sha512, ProviderError> {
        self.check(identity)?;
        let password = Password::Plain(self.password.clone());
        Ok(Pbkdf2Sha512 {
            salt: self.salt.clone(),
            iterations: self.iterations,
            digest: Sha512::derive(&password, &self.salt, self.iterations)?,
        })
    }
}
xmpp_sasl::impl_validator_using_provider!(Store, Pbkdf2Sha512);

/// The server side of one exchange.
pub enum Server {
    Sha256(Scram<XSha256, Store>),
    Sha512(Scram<Sha512, Store>),
}

impl Server {
    /// A server for `store`'s user. The crate insists on `y,,` from clients when it has
    /// no channel binding; an empty `tls-unique` binding makes it expect `n,,` and
    /// `c=biws`, which is what a client without channel binding (Kafka's) sends.
    pub fn new(sha512: bool, store: Store) -> Self {
        let binding = ChannelBinding::TlsUnique(Vec::new());
        if sha512 {
            Server::Sha512(Scram::new(store, binding))
        } else {
            Server::Sha256(Scram::new(store, binding))
        }
    }

    pub fn respond(&mut self, message: &[u8]) -> Result<Response, MechanismError> {
        match self {
            Server::Sha256(s) => s.respond(message),
            Server::Sha512(s) => s.respond(message),
        }
    }
}
