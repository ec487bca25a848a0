//! The salted password of SCRAM and the cache that spares recomputing it.
//!
//! `SaltedPassword = PBKDF2(HMAC-H, password, salt, iterations)` is the one expensive step of
//! SCRAM, by design: Kafka asks at least 4096 iterations, two HMAC computations each, by far
//! the largest computation a connection makes on a microcontroller. It depends only on the
//! password and on what the broker's stored credential says (mechanism, salt, iterations),
//! and every broker of a cluster sends the same salt and count for a user (the credential
//! lives in the cluster's metadata), so a client that keeps it computes it once per
//! credential, not once per connection.

use super::scram::ScramHash;
use super::{Error, MAX_SALT_LEN};
use hmac::{Hmac, KeyInit, Mac};
use pbkdf2::pbkdf2_hmac;
use sha2::{Sha256, Sha512};

/// Bytes of the largest SCRAM hash output (SHA-512).
pub(crate) const MAX_HASH_LEN: usize = 64;

/// A password salted and iterated for one SCRAM credential: the key every later step of the
/// exchange derives from. As secret as the password (it lets anyone authenticate as the user
/// to brokers holding that credential), so its `Debug` output shows only the hash.
#[derive(Clone, Copy)]
pub struct SaltedPassword {
    hash: ScramHash,
    key: [u8; MAX_HASH_LEN],
}

impl SaltedPassword {
    /// Computes `PBKDF2(HMAC-hash, password, salt, iterations)` (RFC 5802's `Hi`). The
    /// password is used as its UTF-8 bytes, without SASLprep, as Kafka's own clients and
    /// broker do. This takes `iterations` times two HMAC computations: call it once per
    /// credential (a [`SaltedPasswordCache`] does), never per connection.
    pub fn derive(
        hash: ScramHash,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, Error> {
        if iterations == 0 {
            return Err(Error::ScramBadIterationCount);
        }
        let mut key = [0u8; MAX_HASH_LEN];
        let pw = password.as_bytes();
        match hash {
            ScramHash::Sha256 => pbkdf2_hmac::<Sha256>(pw, salt, iterations, &mut key[..32]),
            ScramHash::Sha512 => pbkdf2_hmac::<Sha512>(pw, salt, iterations, &mut key),
        }
        Ok(SaltedPassword { hash, key })
    }

    /// The hash it was computed with.
    pub fn hash(&self) -> ScramHash {
        self.hash
    }

    /// The key, `hash.output_len()` bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.key.get(..self.hash.output_len()).unwrap_or(&self.key)
    }
}

impl core::fmt::Debug for SaltedPassword {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SaltedPassword")
            .field("hash", &self.hash)
            .field("key", &format_args!("<redacted>"))
            .finish()
    }
}

/// A salted password computed a few iterations at a time, so that a microcontroller that runs
/// the producer beside other work never spends a whole derivation (hundreds of milliseconds
/// at Kafka's 4096 iterations of HMAC-SHA-512) in one call: [`step`](Self::step) runs at most
/// as many iterations as it is given and returns the salted password with the last one.
///
/// This is PBKDF2 with one output block (what SCRAM's `Hi` is, RFC 5802):
/// `U1 = HMAC(password, salt || 1)`, `Ui = HMAC(password, U(i-1))`, the result the XOR of every
/// `Ui`. The `pbkdf2` crate computes it in one call only, so the loop is written here over
/// RustCrypto's `hmac`; the tests check it against `pbkdf2` for every hash, several counts
/// and every way of cutting the work into steps. It keeps no key state between steps (the
/// password is keyed again at each, two compressions), only the last `Ui` and the sum, so its
/// size is about 200 bytes, and its `Debug` shows neither.
#[derive(Clone)]
pub struct Derivation {
    hash: ScramHash,
    salt: [u8; MAX_SALT_LEN],
    salt_len: u8,
    iterations: u32,
    /// Iterations done so far (at least 1: `U1` is computed when the derivation starts).
    done: u32,
    /// The last `Ui`.
    u: [u8; MAX_HASH_LEN],
    /// The XOR of every `Ui` so far.
    sum: [u8; MAX_HASH_LEN],
}

impl Derivation {
    /// Starts `PBKDF2(HMAC-hash, password, salt, iterations)`, computing its first iteration.
    pub fn new(
        hash: ScramHash,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, Error> {
        if iterations == 0 {
            return Err(Error::ScramBadIterationCount);
        }
        let mut kept = [0u8; MAX_SALT_LEN];
        let salt_len = u8::try_from(salt.len()).map_err(|_| Error::ScramSaltTooLong)?;
        kept.get_mut(..salt.len())
            .ok_or(Error::ScramSaltTooLong)?
            .copy_from_slice(salt);
        let mut u = [0u8; MAX_HASH_LEN];
        let block = 1u32.to_be_bytes();
        match hash {
            ScramHash::Sha256 => hmac_into::<Hmac<Sha256>>(password, &[salt, &block], &mut u),
            ScramHash::Sha512 => hmac_into::<Hmac<Sha512>>(password, &[salt, &block], &mut u),
        }
        Ok(Derivation {
            hash,
            salt: kept,
            salt_len,
            iterations,
            done: 1,
            u,
            sum: u,
        })
    }

    /// Whether this derives the salted password of this credential.
    pub fn is_for(&self, hash: ScramHash, salt: &[u8], iterations: u32) -> bool {
        self.hash == hash && self.iterations == iterations && self.salt() == salt
    }

    /// The salt it derives with.
    pub fn salt(&self) -> &[u8] {
        self.salt
            .get(..usize::from(self.salt_len))
            .unwrap_or(&self.salt)
    }

    /// The iteration count it derives with.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Runs up to `budget` more iterations with `password` (the one it started with), and
    /// returns the salted password once the last is done (again at every later call).
    pub fn step(&mut self, password: &str, budget: u32) -> Option<SaltedPassword> {
        let n = budget.min(self.iterations - self.done);
        match self.hash {
            ScramHash::Sha256 => self.iterate::<Hmac<Sha256>>(password, n),
            ScramHash::Sha512 => self.iterate::<Hmac<Sha512>>(password, n),
        }
        (self.done == self.iterations).then_some(SaltedPassword {
            hash: self.hash,
            key: self.sum,
        })
    }

    fn iterate<M: Mac + KeyInit + Clone>(&mut self, password: &str, n: u32) {
        if n == 0 {
            return;
        }
        let len = self.hash.output_len();
        let Ok(keyed) = <M as KeyInit>::new_from_slice(password.as_bytes()) else {
            return;
        };
        for _ in 0..n {
            let mut mac = keyed.clone();
            mac.update(self.u.get(..len).unwrap_or(&[]));
            let out = mac.finalize().into_bytes();
            for ((u, sum), &b) in self.u.iter_mut().zip(self.sum.iter_mut()).zip(out.iter()) {
                *u = b;
                *sum ^= b;
            }
        }
        self.done += n;
    }
}

impl core::fmt::Debug for Derivation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Derivation")
            .field("hash", &self.hash)
            .field("iterations", &self.iterations)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// `HMAC(key, parts...)` into the start of `out`.
fn hmac_into<M: Mac + KeyInit>(key: &str, parts: &[&[u8]], out: &mut [u8]) {
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key.as_bytes()) else {
        return;
    };
    for part in parts {
        mac.update(part);
    }
    let bytes = mac.finalize().into_bytes();
    for (o, b) in out.iter_mut().zip(bytes.iter()) {
        *o = *b;
    }
}

/// One cached credential.
#[derive(Clone, Copy)]
struct Entry {
    iterations: u32,
    salt: [u8; MAX_SALT_LEN],
    salt_len: u8,
    salted: SaltedPassword,
}

impl Entry {
    fn salt(&self) -> &[u8] {
        self.salt
            .get(..usize::from(self.salt_len))
            .unwrap_or(&self.salt)
    }

    fn is(&self, hash: ScramHash, salt: &[u8], iterations: u32) -> bool {
        self.salted.hash == hash && self.iterations == iterations && self.salt() == salt
    }
}

/// Salted passwords of up to `N` SCRAM credentials (mechanism, salt, iterations), kept so that
/// each is computed once, in fixed memory (about 140 bytes an entry).
///
/// A cache belongs to one password: it is keyed by what the broker sends, which does not
/// change when the application's password does. A client keeps one next to its credentials
/// (the [`Authenticator`](super::Authenticator) does) and lends it to every connection's
/// exchange; one entry serves a whole cluster, more only help a client that talks to several
/// clusters with one password, or sees a credential being replaced. When full, the oldest
/// entry makes room.
#[derive(Clone)]
pub struct SaltedPasswordCache<const N: usize> {
    entries: [Option<Entry>; N],
    next: usize,
}

impl<const N: usize> SaltedPasswordCache<N> {
    /// An empty cache.
    pub const fn new() -> Self {
        SaltedPasswordCache {
            entries: [None; N],
            next: 0,
        }
    }

    /// The salted password of this credential, if cached.
    pub fn get(&self, hash: ScramHash, salt: &[u8], iterations: u32) -> Option<SaltedPassword> {
        self.entries
            .iter()
            .flatten()
            .find(|e| e.is(hash, salt, iterations))
            .map(|e| e.salted)
    }

    /// Keeps `salted` for this salt and iteration count (and its hash), replacing the entry of
    /// the same credential or, when full, the oldest. A salt longer than
    /// [`MAX_SALT_LEN`] is not kept.
    pub fn insert(&mut self, salt: &[u8], iterations: u32, salted: SaltedPassword) {
        let (Ok(salt_len), Some(slot)) = (u8::try_from(salt.len()), N.checked_sub(1)) else {
            return;
        };
        let mut copy = [0u8; MAX_SALT_LEN];
        let Some(dst) = copy.get_mut(..salt.len()) else {
            return;
        };
        dst.copy_from_slice(salt);
        let entry = Entry {
            iterations,
            salt: copy,
            salt_len,
            salted,
        };
        let existing = self
            .entries
            .iter()
            .position(|e| e.is_some_and(|e| e.is(salted.hash, salt, iterations)));
        let at = existing.unwrap_or(self.next.min(slot));
        if let Some(e) = self.entries.get_mut(at) {
            *e = Some(entry);
        }
        if existing.is_none() {
            self.next = if self.next >= slot { 0 } else { self.next + 1 };
        }
    }

    /// The cached salted password of this credential, or a new one computed from `password`
    /// and kept.
    pub fn get_or_derive(
        &mut self,
        hash: ScramHash,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<SaltedPassword, Error> {
        if let Some(salted) = self.get(hash, salt, iterations) {
            return Ok(salted);
        }
        let salted = SaltedPassword::derive(hash, password, salt, iterations)?;
        self.insert(salt, iterations, salted);
        Ok(salted)
    }

    /// Forgets every entry (for a new password).
    pub fn clear(&mut self) {
        self.entries = [None; N];
        self.next = 0;
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.iter().flatten().count()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<const N: usize> Default for SaltedPasswordCache<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> core::fmt::Debug for SaltedPasswordCache<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut list = f.debug_list();
        for e in self.entries.iter().flatten() {
            list.entry(&(e.salted.hash, e.iterations, e.salt_len));
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn derive(salt: &[u8]) -> SaltedPassword {
        SaltedPassword::derive(ScramHash::Sha256, "pw", salt, 1).unwrap()
    }

    #[test]
    fn keeps_the_newest_n_and_replaces_its_own() {
        let mut c = SaltedPasswordCache::<2>::new();
        c.insert(b"a", 1, derive(b"a"));
        c.insert(b"b", 1, derive(b"b"));
        c.insert(b"a", 1, derive(b"a"));
        assert_eq!(c.len(), 2);
        c.insert(b"c", 1, derive(b"c"));
        assert!(c.get(ScramHash::Sha256, b"a", 1).is_none());
        assert!(c.get(ScramHash::Sha256, b"b", 1).is_some());
        assert!(c.get(ScramHash::Sha256, b"c", 1).is_some());
        assert!(c.get(ScramHash::Sha512, b"c", 1).is_none());
        assert!(c.get(ScramHash::Sha256, b"c", 2).is_none());
        c.clear();
        assert!(c.is_empty());
        // A cache of nothing keeps nothing, and does not fail.
        let mut none = SaltedPasswordCache::<0>::new();
        none.insert(b"a", 1, derive(b"a"));
        assert!(none.is_empty());
    }

    #[test]
    fn derivation_in_steps_is_pbkdf2() {
        for hash in [ScramHash::Sha256, ScramHash::Sha512] {
            for iterations in [1u32, 2, 7, 64, 4096] {
                let salt = b"producer-core-salt";
                let whole = SaltedPassword::derive(hash, "pencil", salt, iterations).unwrap();
                for budget in [1u32, 3, 64, 4096] {
                    let mut d = Derivation::new(hash, "pencil", salt, iterations).unwrap();
                    assert!(d.is_for(hash, salt, iterations));
                    let mut steps = 0;
                    let salted = loop {
                        steps += 1;
                        if let Some(s) = d.step("pencil", budget) {
                            break s;
                        }
                        assert!(steps <= iterations, "no end");
                    };
                    assert_eq!(
                        salted.bytes(),
                        whole.bytes(),
                        "{hash:?} {iterations} {budget}"
                    );
                    assert_eq!(steps, (iterations - 1).div_ceil(budget).max(1));
                    // Done is done.
                    assert_eq!(d.step("pencil", budget).unwrap().bytes(), whole.bytes());
                }
            }
        }
        assert!(Derivation::new(ScramHash::Sha256, "p", b"s", 0).is_err());
        assert!(Derivation::new(ScramHash::Sha256, "p", &[0; 65], 1).is_err());
    }

    #[test]
    fn debug_shows_no_key() {
        let s = derive(b"salt");
        let mut c = SaltedPasswordCache::<1>::new();
        c.insert(b"salt", 1, s);
        let mut text = heapless::String::<256>::new();
        core::fmt::write(&mut text, format_args!("{s:?} {c:?}")).unwrap();
        assert_eq!(
            text.as_str(),
            "SaltedPassword { hash: Sha256, key: <redacted> } [(Sha256, 1, 4)]"
        );
    }
}
