//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the client side, as Kafka speaks
//! them: no channel binding (`n,,`, so `c=biws`), no authorization identity, no SASLprep.
//!
//! ```text
//! client-first  n,,n=<user>,r=<client nonce>
//! server-first  r=<client nonce><server nonce>,s=<salt, base64>,i=<iterations>
//! client-final  c=biws,r=<both nonces>,p=<proof, base64>
//! server-final  v=<server signature, base64>        (or e=<error>)
//! ```
//!
//! The proof shows the broker that the client knows the password without sending it; the
//! server signature shows the client that the broker knows it too, so a client that checks
//! it (this one always does, in constant time) cannot be fooled by a broker that merely
//! accepts everyone. Nothing is kept between the messages but the nonce and the expected
//! signature: the `AuthMessage` both are computed over is streamed through the HMACs, so no
//! message needs to be stored.

use super::salted::{MAX_HASH_LEN, SaltedPasswordCache};
use super::{Error, MAX_ITERATIONS, MAX_NONCE_LEN, MAX_SALT_LEN, MIN_ITERATIONS, NONCE_BYTES};
use super::{SaltedPassword, ScramServerError};
use crate::wire::Writer;
use base64ct::{Base64, Encoding};
use ctutils::CtEq;
use hmac::{EagerHash, Hmac, KeyInit, Mac};
use sha2::{Sha256, Sha512};

/// The hash of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ScramHash {
    /// SCRAM-SHA-256 (RFC 7677).
    Sha256,
    /// SCRAM-SHA-512 (the same with SHA-512; Kafka offers both).
    Sha512,
}

impl ScramHash {
    /// The SASL mechanism name, as SaslHandshake carries it.
    pub const fn mechanism(self) -> &'static str {
        match self {
            ScramHash::Sha256 => "SCRAM-SHA-256",
            ScramHash::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// Bytes of the hash's output (and of the salted password, the proof, the signature).
    pub const fn output_len(self) -> usize {
        match self {
            ScramHash::Sha256 => 32,
            ScramHash::Sha512 => 64,
        }
    }
}

/// The client's nonce: printable ASCII without commas, at most [`MAX_NONCE_LEN`] characters.
/// Not a secret (it crosses the wire in clear), but it must be unpredictable, or a recorded
/// exchange could be replayed: make it from random bytes with [`Nonce::from_random`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Nonce {
    text: [u8; MAX_NONCE_LEN],
    len: u8,
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl Nonce {
    /// The nonce of `random` (bytes from the transport's RNG): their base64 form,
    /// `4 * NONCE_BYTES / 3` characters.
    pub fn from_random(random: &[u8; NONCE_BYTES]) -> Self {
        let mut text = [0u8; MAX_NONCE_LEN];
        let mut len = 0usize;
        for group in random.chunks(3) {
            let [a, b, c] = [0, 1, 2].map(|i| group.get(i).copied().unwrap_or(0));
            let bits = u32::from(a) << 16 | u32::from(b) << 8 | u32::from(c);
            for shift in [18, 12, 6, 0] {
                let sextet = (bits >> shift) & 63;
                if let (Some(dst), Some(&ch)) =
                    (text.get_mut(len), BASE64_ALPHABET.get(sextet as usize))
                {
                    *dst = ch;
                    len += 1;
                }
            }
        }
        Nonce {
            text,
            len: u8::try_from(len).unwrap_or(0),
        }
    }

    /// A nonce given as text (for known-answer tests and reproducing an exchange): 1 to
    /// [`MAX_NONCE_LEN`] characters of printable ASCII other than `,`.
    pub fn from_printable(text: &str) -> Result<Self, Error> {
        let bytes = text.as_bytes();
        let mut nonce = Nonce {
            text: [0; MAX_NONCE_LEN],
            len: u8::try_from(bytes.len()).map_err(|_| Error::InvalidNonce)?,
        };
        if bytes.is_empty() || !bytes.iter().all(|&c| printable(c)) {
            return Err(Error::InvalidNonce);
        }
        nonce
            .text
            .get_mut(..bytes.len())
            .ok_or(Error::InvalidNonce)?
            .copy_from_slice(bytes);
        Ok(nonce)
    }

    /// The nonce's characters.
    pub fn as_bytes(&self) -> &[u8] {
        self.text.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The nonce as text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl core::fmt::Debug for Nonce {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Nonce").field(&self.as_str()).finish()
    }
}

/// RFC 5802's `printable`: ASCII from `!` to `~` except `,`.
fn printable(c: u8) -> bool {
    (0x21..=0x7e).contains(&c) && c != b','
}

/// Checks that SCRAM can carry `username` and `password`: neither empty, no NUL in the
/// username (its `saslname` cannot hold one).
pub fn validate(username: &str, password: &str) -> Result<(), Error> {
    if username.is_empty() {
        return Err(Error::EmptyUsername);
    }
    if password.is_empty() {
        return Err(Error::EmptyPassword);
    }
    if username.contains('\0') {
        return Err(Error::NulInCredentials);
    }
    Ok(())
}

/// Where the client is in the exchange.
#[derive(Clone, Copy)]
enum Phase {
    New,
    SentFirst,
    SentFinal {
        server_signature: [u8; MAX_HASH_LEN],
    },
    Authenticated,
    Failed,
}

/// The client side of one SCRAM exchange: [`client_first`](Self::client_first), then
/// [`client_final`](Self::client_final) with the server's first message, then
/// [`verify_server_final`](Self::verify_server_final) with its last. Every call takes the same
/// credentials (they are not kept, so the state holds no borrow and no secret but the
/// signature it expects). A failed step ends the exchange: later steps are
/// [`Error::OutOfOrder`], except a full buffer, after which the step may be called again.
#[derive(Clone)]
pub struct ScramClient {
    hash: ScramHash,
    nonce: Nonce,
    phase: Phase,
}

impl core::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let phase = match self.phase {
            Phase::New => "new",
            Phase::SentFirst => "sent client-first",
            Phase::SentFinal { .. } => "sent client-final",
            Phase::Authenticated => "authenticated",
            Phase::Failed => "failed",
        };
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .field("nonce", &self.nonce)
            .field("phase", &phase)
            .finish()
    }
}

impl ScramClient {
    /// A new exchange with this hash and client nonce.
    pub fn new(hash: ScramHash, nonce: Nonce) -> Self {
        ScramClient {
            hash,
            nonce,
            phase: Phase::New,
        }
    }

    /// The exchange's hash.
    pub fn hash(&self) -> ScramHash {
        self.hash
    }

    /// Whether the server's signature was verified: the exchange succeeded.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.phase, Phase::Authenticated)
    }

    /// Whether the client-first message was sent and the server's answer is awaited.
    pub fn awaits_server_first(&self) -> bool {
        matches!(self.phase, Phase::SentFirst)
    }

    /// Writes the client-first message, `n,,n=<username>,r=<nonce>`, into `out` and returns
    /// its length. `=` and `,` in the username are escaped (`=3D`, `=2C`).
    pub fn client_first(&mut self, username: &str, out: &mut [u8]) -> Result<usize, Error> {
        if !matches!(self.phase, Phase::New) {
            return Err(Error::OutOfOrder);
        }
        if username.is_empty() {
            return Err(Error::EmptyUsername);
        }
        if username.contains('\0') {
            return Err(Error::NulInCredentials);
        }
        let n = write_all(out, |put| {
            put(b"n,,");
            client_first_bare(username, &self.nonce, put);
        })?;
        self.phase = Phase::SentFirst;
        Ok(n)
    }

    /// Reads the server-first message, checks it (nonce, salt, iteration bounds), and writes
    /// the client-final message with the proof into `out`, returning its length. The salted
    /// password comes from `cache`, or is computed (the slow part) and kept there.
    pub fn client_final<const N: usize>(
        &mut self,
        username: &str,
        password: &str,
        server_first: &[u8],
        cache: &mut SaltedPasswordCache<N>,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        if !matches!(self.phase, Phase::SentFirst) {
            return Err(Error::OutOfOrder);
        }
        let result = self.client_final_inner(username, password, server_first, cache, out);
        if let Err(e) = result
            && !matches!(e, Error::BufferTooSmall { .. })
        {
            self.phase = Phase::Failed;
        }
        result
    }

    fn client_final_inner<const N: usize>(
        &mut self,
        username: &str,
        password: &str,
        server_first: &[u8],
        cache: &mut SaltedPasswordCache<N>,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        validate(username, password)?;
        let first = ServerFirst::parse(server_first, self.nonce.as_bytes())?;
        let salted = cache.get_or_derive(self.hash, password, first.salt(), first.iterations)?;
        let auth_message = |put: &mut dyn FnMut(&[u8])| {
            client_first_bare(username, &self.nonce, put);
            put(b",");
            put(server_first);
            put(b",c=biws,r=");
            put(first.nonce);
        };
        let keys = match self.hash {
            ScramHash::Sha256 => Keys::compute::<Sha256>(&salted, &auth_message),
            ScramHash::Sha512 => Keys::compute::<Sha512>(&salted, &auth_message),
        };
        let len = self.hash.output_len();
        let mut proof = [0u8; 88];
        let proof = Base64::encode(keys.client_proof.get(..len).unwrap_or(&[]), &mut proof)
            .map_err(|_| Error::BufferTooSmall { needed: 0 })?;
        let n = write_all(out, |put| {
            put(b"c=biws,r=");
            put(first.nonce);
            put(b",p=");
            put(proof.as_bytes());
        })?;
        self.phase = Phase::SentFinal {
            server_signature: keys.server_signature,
        };
        Ok(n)
    }

    /// The salt and iteration count of the credential a server-first message names, when it
    /// is one this exchange would accept (its nonce extends ours, the count is within
    /// bounds); `None` otherwise, and [`client_final`](Self::client_final) then reports why.
    /// For computing the salted password ahead, in steps (see
    /// [`Derivation`](super::Derivation)).
    pub fn credential(&self, server_first: &[u8]) -> Option<([u8; MAX_SALT_LEN], usize, u32)> {
        if !matches!(self.phase, Phase::SentFirst) {
            return None;
        }
        let first = ServerFirst::parse(server_first, self.nonce.as_bytes()).ok()?;
        Some((first.salt, first.salt_len, first.iterations))
    }

    /// Reads the server-final message: `v=` with the server's signature, checked in constant
    /// time against the one the password gives, or `e=` with the server's error.
    pub fn verify_server_final(&mut self, server_final: &[u8]) -> Result<(), Error> {
        let Phase::SentFinal { server_signature } = self.phase else {
            return Err(Error::OutOfOrder);
        };
        self.phase = Phase::Failed;
        let first = server_final.split(|&c| c == b',').next().unwrap_or(&[]);
        let signature = match first {
            [b'e', b'=', value @ ..] => {
                return Err(Error::ScramServerError(ScramServerError::from_value(value)));
            }
            [b'v', b'=', value @ ..] => value,
            _ => return Err(Error::ScramMissingAttribute { attribute: 'v' }),
        };
        let mut decoded = [0u8; MAX_HASH_LEN];
        // Longer than any signature: wrong, like one of the right length with other bytes.
        let decoded = Base64::decode(signature, &mut decoded).map_err(|e| match e {
            base64ct::Error::InvalidLength => Error::ScramServerSignatureMismatch,
            base64ct::Error::InvalidEncoding => Error::ScramBadBase64 { attribute: 'v' },
        })?;
        let expected = server_signature
            .get(..self.hash.output_len())
            .unwrap_or(&[]);
        if !bool::from(decoded.ct_eq(expected)) {
            return Err(Error::ScramServerSignatureMismatch);
        }
        self.phase = Phase::Authenticated;
        Ok(())
    }
}

/// Writes the parts `parts` hands to `put` into `out`, or fails with the length they need.
fn write_all(out: &mut [u8], parts: impl FnOnce(&mut dyn FnMut(&[u8]))) -> Result<usize, Error> {
    let mut w = Writer::new(out);
    let mut needed = 0usize;
    let mut full = false;
    parts(&mut |part| {
        needed = needed.saturating_add(part.len());
        full = full || w.put_slice(part).is_err();
    });
    if full {
        Err(Error::BufferTooSmall { needed })
    } else {
        Ok(w.position())
    }
}

/// `n=<saslname>,r=<nonce>`, the part of client-first that goes into the `AuthMessage`.
fn client_first_bare(username: &str, nonce: &Nonce, put: &mut dyn FnMut(&[u8])) {
    put(b"n=");
    let mut rest = username.as_bytes();
    while let Some(at) = rest.iter().position(|&c| c == b',' || c == b'=') {
        let (run, tail) = rest.split_at(at);
        put(run);
        let Some((&special, tail)) = tail.split_first() else {
            break;
        };
        put(if special == b',' { b"=2C" } else { b"=3D" });
        rest = tail;
    }
    put(rest);
    put(b",r=");
    put(nonce.as_bytes());
}

/// The server-first message, checked.
struct ServerFirst<'a> {
    /// The combined nonce (the client's, then the server's).
    nonce: &'a [u8],
    salt: [u8; MAX_SALT_LEN],
    salt_len: usize,
    iterations: u32,
}

impl<'a> ServerFirst<'a> {
    fn parse(message: &'a [u8], client_nonce: &[u8]) -> Result<Self, Error> {
        let mut attrs = message.split(|&c| c == b',');
        let first = attrs.next().unwrap_or(&[]);
        if first.starts_with(b"m=") {
            return Err(Error::ScramMandatoryExtension);
        }
        let nonce = value(Some(first), 'r')?;
        if !nonce.iter().all(|&c| printable(c)) {
            return Err(Error::ScramMalformed);
        }
        if nonce.len() <= client_nonce.len() || !nonce.starts_with(client_nonce) {
            return Err(Error::ScramNonceMismatch);
        }
        let salt_text = value(attrs.next(), 's')?;
        if salt_text.is_empty() {
            return Err(Error::ScramMissingAttribute { attribute: 's' });
        }
        let mut salt = [0u8; MAX_SALT_LEN];
        let salt_len = Base64::decode(salt_text, &mut salt)
            .map_err(|e| match e {
                base64ct::Error::InvalidLength => Error::ScramSaltTooLong,
                base64ct::Error::InvalidEncoding => Error::ScramBadBase64 { attribute: 's' },
            })?
            .len();
        let iterations = parse_iterations(value(attrs.next(), 'i')?)?;
        // Further attributes are extensions, which a client ignores (RFC 5802, section 5.1).
        Ok(ServerFirst {
            nonce,
            salt,
            salt_len,
            iterations,
        })
    }

    fn salt(&self) -> &[u8] {
        self.salt.get(..self.salt_len).unwrap_or(&[])
    }
}

/// The value of attribute `name` (`name=value`), or the error that it is missing.
fn value(attr: Option<&[u8]>, name: char) -> Result<&[u8], Error> {
    match attr {
        Some([n, b'=', value @ ..]) if char::from(*n) == name => Ok(value),
        _ => Err(Error::ScramMissingAttribute { attribute: name }),
    }
}

/// A positive decimal number without leading zeros, within the iteration bounds.
fn parse_iterations(text: &[u8]) -> Result<u32, Error> {
    if text.first().is_none_or(|&c| c == b'0') || !text.iter().all(u8::is_ascii_digit) {
        return Err(Error::ScramBadIterationCount);
    }
    let n = text.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    let iterations = u32::try_from(n).unwrap_or(u32::MAX);
    if iterations < MIN_ITERATIONS {
        Err(Error::ScramIterationsTooLow { iterations })
    } else if iterations > MAX_ITERATIONS {
        Err(Error::ScramIterationsTooHigh { iterations })
    } else {
        Ok(iterations)
    }
}

/// Hands the parts of a message, in order, to the sink it is given: how the `AuthMessage` is
/// streamed through both HMACs without being stored.
type Parts<'f> = &'f dyn Fn(&mut dyn FnMut(&[u8]));

/// What the client sends and expects, from the salted password and the `AuthMessage`.
struct Keys {
    client_proof: [u8; MAX_HASH_LEN],
    server_signature: [u8; MAX_HASH_LEN],
}

impl Keys {
    /// RFC 5802, section 3: `ClientKey = HMAC(SaltedPassword, "Client Key")`,
    /// `StoredKey = H(ClientKey)`, `ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage)`,
    /// `ServerSignature = HMAC(HMAC(SaltedPassword, "Server Key"), AuthMessage)`.
    fn compute<D: EagerHash>(salted: &SaltedPassword, auth_message: Parts<'_>) -> Keys {
        let client_key = hmac::<D>(salted.bytes(), b"Client Key");
        let stored_key = D::digest(&client_key);
        let server_key = hmac::<D>(salted.bytes(), b"Server Key");
        let mut client_mac = keyed::<D>(&stored_key);
        let mut server_mac = keyed::<D>(&server_key);
        auth_message(&mut |part| {
            client_mac.update(part);
            server_mac.update(part);
        });
        let mut keys = Keys {
            client_proof: [0; MAX_HASH_LEN],
            server_signature: [0; MAX_HASH_LEN],
        };
        let client_signature = client_mac.finalize().into_bytes();
        for ((p, k), s) in keys
            .client_proof
            .iter_mut()
            .zip(client_key.iter())
            .zip(client_signature.iter())
        {
            *p = k ^ s;
        }
        for (dst, s) in keys
            .server_signature
            .iter_mut()
            .zip(server_mac.finalize().into_bytes().iter())
        {
            *dst = *s;
        }
        keys
    }
}

/// An HMAC keyed with `key`. HMAC takes keys of any length (longer ones are hashed first),
/// so `new_from_slice` cannot fail; the fallback only keeps this free of a panic path.
fn keyed<D: EagerHash>(key: &[u8]) -> Hmac<D> {
    <Hmac<D> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<D> as KeyInit>::new(&Default::default()))
}

/// `HMAC(key, data)`.
fn hmac<D: EagerHash>(key: &[u8], data: &[u8]) -> hmac::digest::Output<Hmac<D>> {
    let mut mac = keyed::<D>(key);
    mac.update(data);
    mac.finalize().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_from_random_is_base64() {
        let mut bytes = [0u8; NONCE_BYTES];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        assert_eq!(
            Nonce::from_random(&bytes).as_str(),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"
        );
        assert_eq!(
            Nonce::from_random(&[0xff; NONCE_BYTES]).as_str().len(),
            NONCE_BYTES / 3 * 4
        );
    }

    #[test]
    fn nonce_from_printable_refuses_what_scram_cannot_carry() {
        assert!(Nonce::from_printable("rOprNGfwEbeRWgbNEkqO").is_ok());
        for bad in ["", "a,b", "a b", "\u{e9}", &"x".repeat(MAX_NONCE_LEN + 1)] {
            assert_eq!(
                Nonce::from_printable(bad),
                Err(Error::InvalidNonce),
                "{bad}"
            );
        }
    }

    #[test]
    fn usernames_are_escaped() {
        let nonce = Nonce::from_printable("N").unwrap();
        let mut c = ScramClient::new(ScramHash::Sha256, nonce);
        let mut out = [0u8; 64];
        let n = c.client_first("a=b,c,", &mut out).unwrap();
        assert_eq!(&out[..n], b"n,,n=a=3Db=2Cc=2C,r=N");
        assert_eq!(c.client_first("a", &mut out), Err(Error::OutOfOrder));
    }

    #[test]
    fn iteration_counts() {
        assert_eq!(parse_iterations(b"4096"), Ok(4096));
        assert_eq!(parse_iterations(b"16384"), Ok(16384));
        for bad in [
            &b""[..],
            b"0",
            b"04096",
            b"-4096",
            b"+4096",
            b"40 96",
            b"4096 ",
        ] {
            assert_eq!(parse_iterations(bad), Err(Error::ScramBadIterationCount));
        }
        assert_eq!(
            parse_iterations(b"4095"),
            Err(Error::ScramIterationsTooLow { iterations: 4095 })
        );
        assert_eq!(
            parse_iterations(b"99999999999999999999999"),
            Err(Error::ScramIterationsTooHigh {
                iterations: u32::MAX
            })
        );
    }

    #[test]
    fn a_full_buffer_can_be_retried() {
        let mut c = ScramClient::new(ScramHash::Sha256, Nonce::from_printable("N").unwrap());
        let mut out = [0u8; 64];
        assert_eq!(
            c.client_first("user", &mut out[..5]),
            Err(Error::BufferTooSmall { needed: 13 })
        );
        assert_eq!(c.client_first("user", &mut out), Ok(13));
    }
}
