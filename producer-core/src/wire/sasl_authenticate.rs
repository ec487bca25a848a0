//! SaslAuthenticate (key 36), versions 0–2: carries one message of the SASL mechanism chosen
//! by SaslHandshake each way, until the mechanism says the client is authenticated. Version 1
//! adds the session lifetime (KIP-368: the client must authenticate again before it ends);
//! version 2 is flexible.
//!
//! The messages are secrets (a PLAIN message holds the password, an OAUTHBEARER one the
//! token), so the `Debug` output of these bodies shows only their length.

use super::api_key::ApiKey;
use super::body::{Body, RequestBody, ResponseBody, check_encode_version};
use super::error::{DecodeError, EncodeError};
use super::reader::Reader;
use super::tagged::{skip_tagged_fields, write_empty_tagged_fields};
use super::writer::Writer;

const FIRST_FLEXIBLE: i16 = 2;

/// SaslAuthenticate request.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct SaslAuthenticateRequest<'a> {
    /// The mechanism's message from the client.
    pub auth_bytes: &'a [u8],
}

impl core::fmt::Debug for SaslAuthenticateRequest<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SaslAuthenticateRequest")
            .field("auth_bytes", &Redacted(self.auth_bytes.len()))
            .finish()
    }
}

impl<'a> Body<'a> for SaslAuthenticateRequest<'a> {
    const API_KEY: ApiKey = ApiKey::SaslAuthenticate;

    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        check_encode_version(Self::API_KEY, version)?;
        let flexible = version >= FIRST_FLEXIBLE;
        w.put_bytes(self.auth_bytes, flexible)?;
        if flexible {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::API_KEY.check_version(version)?;
        let flexible = version >= FIRST_FLEXIBLE;
        let req = SaslAuthenticateRequest {
            auth_bytes: r.get_bytes(flexible)?,
        };
        if flexible {
            skip_tagged_fields(r)?;
        }
        Ok(req)
    }
}
impl<'a> RequestBody<'a> for SaslAuthenticateRequest<'a> {}

/// SaslAuthenticate response.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct SaslAuthenticateResponse<'a> {
    /// 0, or SASL_AUTHENTICATION_FAILED (58) when the broker refused the credentials, or
    /// ILLEGAL_SASL_STATE (34) when the request came out of turn.
    pub error_code: i16,
    /// The broker's explanation of an error, for logs.
    pub error_message: Option<&'a str>,
    /// The mechanism's message from the server (empty when it has nothing to say).
    pub auth_bytes: &'a [u8],
    /// Milliseconds until the broker closes the session unless the client authenticates
    /// again (v1+); 0 when the broker sets no limit.
    pub session_lifetime_ms: i64,
}

impl core::fmt::Debug for SaslAuthenticateResponse<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SaslAuthenticateResponse")
            .field("error_code", &self.error_code)
            .field("error_message", &self.error_message)
            .field("auth_bytes", &Redacted(self.auth_bytes.len()))
            .field("session_lifetime_ms", &self.session_lifetime_ms)
            .finish()
    }
}

impl<'a> Body<'a> for SaslAuthenticateResponse<'a> {
    const API_KEY: ApiKey = ApiKey::SaslAuthenticate;

    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        check_encode_version(Self::API_KEY, version)?;
        let flexible = version >= FIRST_FLEXIBLE;
        w.put_i16(self.error_code)?;
        w.put_nullable_string(self.error_message, flexible)?;
        w.put_bytes(self.auth_bytes, flexible)?;
        if version >= 1 {
            w.put_i64(self.session_lifetime_ms)?;
        }
        if flexible {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::API_KEY.check_version(version)?;
        let flexible = version >= FIRST_FLEXIBLE;
        let mut resp = SaslAuthenticateResponse {
            error_code: r.get_i16()?,
            error_message: r.get_nullable_string(flexible)?,
            auth_bytes: r.get_bytes(flexible)?,
            session_lifetime_ms: 0,
        };
        if version >= 1 {
            resp.session_lifetime_ms = r.get_i64()?;
        }
        if flexible {
            skip_tagged_fields(r)?;
        }
        Ok(resp)
    }
}
impl<'a> ResponseBody<'a> for SaslAuthenticateResponse<'a> {}

/// Shows a secret as its length only.
struct Redacted(usize);

impl core::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "<{} bytes redacted>", self.0)
    }
}

#[cfg(test)]
mod tests {
    use core::fmt::Write as _;

    use super::*;

    /// `value`'s `Debug`, in a fixed buffer (the crate has no allocator, tests included).
    fn debug(value: &impl core::fmt::Debug) -> heapless::String<256> {
        let mut shown = heapless::String::new();
        write!(shown, "{value:?}").unwrap();
        shown
    }

    #[test]
    fn debug_hides_the_mechanism_messages() {
        let req = SaslAuthenticateRequest {
            auth_bytes: b"\0user\0hunter2",
        };
        let shown = debug(&req);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("13 bytes"), "{shown}");
        let resp = SaslAuthenticateResponse {
            auth_bytes: b"v=secret",
            ..Default::default()
        };
        assert!(!debug(&resp).contains("secret"));
    }

    #[test]
    fn v2_is_compact_with_tags() {
        let mut buf = [0u8; 16];
        let mut w = Writer::new(&mut buf);
        let req = SaslAuthenticateRequest { auth_bytes: b"ab" };
        req.encode(&mut w, 2).unwrap();
        assert_eq!(w.written(), &[3, b'a', b'b', 0]);
        let mut w = Writer::new(&mut buf);
        req.encode(&mut w, 0).unwrap();
        assert_eq!(w.written(), &[0, 0, 0, 2, b'a', b'b']);
    }
}
