//! PLAIN (RFC 4616): one client message, `authzid NUL authcid NUL passwd`, and the broker's
//! verdict. The authorization identity is left empty, which makes the broker act as the
//! authenticated user, the only identity Kafka accepts for PLAIN.
//!
//! The password crosses the wire as it is: use PLAIN only over TLS (SASL_SSL).

use super::Error;
use crate::wire::Writer;

/// Checks that PLAIN can carry `username` and `password`: neither empty, neither holding the
/// NUL that separates them.
pub fn validate(username: &str, password: &str) -> Result<(), Error> {
    if username.is_empty() {
        return Err(Error::EmptyUsername);
    }
    if password.is_empty() {
        return Err(Error::EmptyPassword);
    }
    if username.contains('\0') || password.contains('\0') {
        return Err(Error::NulInCredentials);
    }
    Ok(())
}

/// Bytes of the PLAIN message for these credentials.
pub fn message_len(username: &str, password: &str) -> usize {
    2usize
        .saturating_add(username.len())
        .saturating_add(password.len())
}

/// Writes the PLAIN message (`NUL username NUL password`) at the start of `out` and returns
/// its length: the auth bytes of the one SaslAuthenticate request.
pub fn initial_response(username: &str, password: &str, out: &mut [u8]) -> Result<usize, Error> {
    validate(username, password)?;
    let needed = message_len(username, password);
    let mut w = Writer::new(out);
    [&[0u8][..], username.as_bytes(), &[0], password.as_bytes()]
        .into_iter()
        .try_for_each(|part| w.put_slice(part))
        .map_err(|_| Error::BufferTooSmall { needed })?;
    Ok(w.position())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_refusals() {
        let mut out = [0u8; 32];
        let n = initial_response("alice", "s3cret", &mut out).unwrap();
        assert_eq!(&out[..n], b"\0alice\0s3cret");
        assert_eq!(n, message_len("alice", "s3cret"));
        assert_eq!(
            initial_response("alice", "s3cret", &mut out[..12]),
            Err(Error::BufferTooSmall { needed: 13 })
        );
        assert_eq!(validate("", "x"), Err(Error::EmptyUsername));
        assert_eq!(validate("x", ""), Err(Error::EmptyPassword));
        assert_eq!(validate("a\0b", "x"), Err(Error::NulInCredentials));
        assert_eq!(validate("a", "x\0"), Err(Error::NulInCredentials));
    }
}
