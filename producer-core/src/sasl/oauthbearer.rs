//! OAUTHBEARER (RFC 7628): the client sends a bearer token the application got from its
//! identity provider, in one message:
//!
//! ```text
//! n,,\x01auth=Bearer <token>\x01[key=value\x01]...\x01
//! ```
//!
//! (the GS2 header without an authorization identity, then `\x01`-separated key/value pairs;
//! Kafka's client writes the same bytes). A broker that accepts the token answers with an empty
//! message. One that refuses it answers with a JSON object whose `status` says why; the client
//! must then send a single `\x01` to end the exchange, and the broker fails it
//! (SASL_AUTHENTICATION_FAILED). Fetching and refreshing tokens is the application's: this
//! module never sees anything but the token.

use super::Error;
use crate::wire::Writer;

/// The separator of the message's key/value pairs (RFC 7628's `kvsep`).
pub const KVSEP: u8 = 0x01;

/// What the client sends after the broker's error message, to end the exchange.
pub const FINISH: &[u8] = &[KVSEP];

/// Why the broker refused the token: the `status` of its error message (RFC 7628, section
/// 3.2.2; the values are RFC 6750's error codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum OAuthStatus {
    /// `invalid_token`: expired, revoked, malformed, or not for this broker.
    InvalidToken,
    /// `insufficient_scope`: the token lacks a scope the broker requires.
    InsufficientScope,
    /// `invalid_request`: the message or the token's form was refused.
    InvalidRequest,
    /// Another status.
    Other,
    /// The broker's error message was not a JSON object with a string `status`.
    Unreadable,
}

impl OAuthStatus {
    /// The status as the broker names it (`"unreadable"` when it named none).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidRequest => "invalid_request",
            Self::Other => "other status",
            Self::Unreadable => "unreadable",
        }
    }
}

/// Whether `c` may appear in a bearer token (RFC 6750's `b64token`, without its padding).
fn token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

/// Checks `token` against RFC 6750's `b64token`: one or more token characters, then any
/// number of `=`.
fn valid_token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(token_char)
}

/// Checks an extension: a key of letters only that is not `auth`, a value of printable ASCII,
/// space, tab, CR or LF, not empty (RFC 7628, section 3.1, as Kafka checks it).
fn valid_extension(key: &str, value: &str) -> bool {
    !key.is_empty()
        && key.bytes().all(|c| c.is_ascii_alphabetic())
        && key != "auth"
        && !value.is_empty()
        && value
            .bytes()
            .all(|c| matches!(c, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'))
}

/// Checks that the token and extensions can be sent (see [`Error::InvalidToken`] and
/// [`Error::InvalidExtension`]).
pub fn validate(token: &str, extensions: &[(&str, &str)]) -> Result<(), Error> {
    if !valid_token(token) {
        return Err(Error::InvalidToken);
    }
    if !extensions.iter().all(|(k, v)| valid_extension(k, v)) {
        return Err(Error::InvalidExtension);
    }
    Ok(())
}

/// The parts of the message, in order.
fn parts<'a>(
    token: &'a str,
    extensions: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = &'a [u8]> + 'a {
    let head: [&[u8]; 2] = [b"n,,\x01auth=Bearer ", token.as_bytes()];
    let ext = extensions
        .iter()
        .flat_map(|(k, v)| [FINISH, k.as_bytes(), b"=", v.as_bytes()]);
    head.into_iter().chain(ext).chain([FINISH, FINISH])
}

/// Bytes of the initial client response for this token and these extensions.
pub fn message_len(token: &str, extensions: &[(&str, &str)]) -> usize {
    parts(token, extensions).fold(0usize, |n, p| n.saturating_add(p.len()))
}

/// Writes the initial client response at the start of `out` and returns its length: the auth
/// bytes of the first SaslAuthenticate request.
pub fn initial_response(
    token: &str,
    extensions: &[(&str, &str)],
    out: &mut [u8],
) -> Result<usize, Error> {
    validate(token, extensions)?;
    let needed = message_len(token, extensions);
    let mut w = Writer::new(out);
    parts(token, extensions)
        .try_for_each(|part| w.put_slice(part))
        .map_err(|_| Error::BufferTooSmall { needed })?;
    Ok(w.position())
}

/// Reads the `status` of the broker's error message. Only what RFC 7628 sends is understood:
/// a flat JSON object whose members are strings (`status`, `scope`, `openid-configuration`);
/// anything else is [`OAuthStatus::Unreadable`], never a panic.
pub fn error_status(message: &[u8]) -> OAuthStatus {
    let mut json = Json {
        bytes: message,
        at: 0,
    };
    json.status().unwrap_or(OAuthStatus::Unreadable)
}

/// A cursor over a flat JSON object of strings.
struct Json<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Json<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == c).then(|| self.at += 1)
    }

    /// A string's raw content (escapes left in place: none of the values compared has any).
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let start = self.at;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => self.at += 2,
                _ => self.at += 1,
            }
        }
        let s = self.bytes.get(start..self.at)?;
        self.at += 1;
        Some(s)
    }

    fn status(&mut self) -> Option<OAuthStatus> {
        self.eat(b'{')?;
        let mut status = None;
        if self.eat(b'}').is_some() {
            return status;
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            let value = self.string()?;
            if key == b"status" {
                status = Some(match value {
                    b"invalid_token" => OAuthStatus::InvalidToken,
                    b"insufficient_scope" => OAuthStatus::InsufficientScope,
                    b"invalid_request" => OAuthStatus::InvalidRequest,
                    _ => OAuthStatus::Other,
                });
            }
            if self.eat(b',').is_none() {
                self.eat(b'}')?;
                self.skip_ws();
                return if self.at == self.bytes.len() {
                    status
                } else {
                    None
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let mut out = [0u8; 96];
        let n = initial_response("eyJhbGciOi.J9.sig-_", &[], &mut out).unwrap();
        assert_eq!(&out[..n], b"n,,\x01auth=Bearer eyJhbGciOi.J9.sig-_\x01\x01");
        assert_eq!(n, message_len("eyJhbGciOi.J9.sig-_", &[]));
        let ext = [("traceId", "abc 1"), ("logicalCluster", "lkc-1")];
        let n = initial_response("tok==", &ext, &mut out).unwrap();
        assert_eq!(
            &out[..n],
            &b"n,,\x01auth=Bearer tok==\x01traceId=abc 1\x01logicalCluster=lkc-1\x01\x01"[..]
        );
        assert_eq!(
            initial_response("tok", &ext, &mut out[..20]),
            Err(Error::BufferTooSmall {
                needed: message_len("tok", &ext)
            })
        );
    }

    #[test]
    fn refusals() {
        for bad in ["", "===", "Bearer tok", "to\x01k", "tök", "a=b"] {
            assert_eq!(validate(bad, &[]), Err(Error::InvalidToken), "{bad:?}");
        }
        for ext in [
            ("auth", "x"),
            ("", "x"),
            ("k1", "x"),
            ("k", ""),
            ("k", "a\x01"),
        ] {
            assert_eq!(validate("t", &[ext]), Err(Error::InvalidExtension));
        }
    }

    #[test]
    fn error_statuses() {
        let kafka = br#"{"status":"invalid_token"}"#;
        assert_eq!(error_status(kafka), OAuthStatus::InvalidToken);
        let full = br#" { "status" : "insufficient_scope", "scope":"a b",
            "openid-configuration":"https://x/.well-known" } "#;
        assert_eq!(error_status(full), OAuthStatus::InsufficientScope);
        assert_eq!(
            error_status(br#"{"scope":"q\"x","status":"weird"}"#),
            OAuthStatus::Other
        );
        for bad in [
            &b""[..],
            b"{",
            b"{}",
            b"{\"status\"}",
            b"{\"status\":1}",
            b"{\"status\":\"invalid_token\"",
            b"{\"status\":\"invalid_token\"}x",
            b"{\"a\":\"\\",
            b"[\"status\"]",
        ] {
            assert_eq!(error_status(bad), OAuthStatus::Unreadable, "{bad:?}");
        }
    }
}
