//! SaslHandshake (key 17), version 1: the client names the SASL mechanism it wants, and the
//! broker answers with the mechanisms its listener enables. The exchange of the mechanism's
//! own messages follows in SaslAuthenticate requests (`sasl_authenticate`).
//!
//! Version 0 has the same layout, but after it the mechanism's messages travel as raw,
//! unframed tokens instead of SaslAuthenticate requests. This codec does not implement that
//! exchange, so it does not offer version 0 for negotiation (see [`ApiKey::supported`]).
//! Neither version is flexible.

use super::api_key::ApiKey;
use super::body::{Body, RequestBody, ResponseBody, check_encode_version};
use super::error::{DecodeError, EncodeError};
use super::list::{Item, List};
use super::reader::Reader;
use super::writer::Writer;

/// SaslHandshake request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SaslHandshakeRequest<'a> {
    /// The mechanism the client chose, as SASL names it (`"PLAIN"`, `"SCRAM-SHA-256"`, ...).
    pub mechanism: &'a str,
}

impl<'a> Body<'a> for SaslHandshakeRequest<'a> {
    const API_KEY: ApiKey = ApiKey::SaslHandshake;

    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        check_encode_version(Self::API_KEY, version)?;
        w.put_string(self.mechanism, false)
    }

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::API_KEY.check_version(version)?;
        Ok(SaslHandshakeRequest {
            mechanism: r.get_string(false)?,
        })
    }
}
impl<'a> RequestBody<'a> for SaslHandshakeRequest<'a> {}

/// One entry of [`SaslHandshakeResponse::mechanisms`]: a mechanism name, a classic string.
///
/// A wrapper rather than a bare `&str` because an array element must know its own encoding,
/// and a string's depends on the API: this one's is never compact, since SaslHandshake has no
/// flexible version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MechanismName<'a>(pub &'a str);

impl<'a> MechanismName<'a> {
    /// The name.
    pub const fn as_str(&self) -> &'a str {
        self.0
    }
}

impl<'a> Item<'a> for MechanismName<'a> {
    fn encode(&self, w: &mut Writer<'_>, _version: i16) -> Result<(), EncodeError> {
        w.put_string(self.0, false)
    }
    fn decode(r: &mut Reader<'a>, _version: i16) -> Result<Self, DecodeError> {
        r.get_string(false).map(MechanismName)
    }
}

/// SaslHandshake response.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SaslHandshakeResponse<'a> {
    /// 0, or UNSUPPORTED_SASL_MECHANISM (33) when the listener does not enable the
    /// requested mechanism, or ILLEGAL_SASL_STATE (34) when a handshake was not expected.
    pub error_code: i16,
    /// The mechanisms the listener enables (also sent with an error, so the client can say
    /// which ones it could have used).
    pub mechanisms: List<'a, MechanismName<'a>>,
}

impl<'a> SaslHandshakeResponse<'a> {
    /// Whether the broker listed `mechanism` (compared exactly: SASL names are upper case).
    pub fn enables(&self, mechanism: &str) -> bool {
        self.mechanisms.iter().any(|m| m.0 == mechanism)
    }
}

impl<'a> Body<'a> for SaslHandshakeResponse<'a> {
    const API_KEY: ApiKey = ApiKey::SaslHandshake;

    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        check_encode_version(Self::API_KEY, version)?;
        w.put_i16(self.error_code)?;
        self.mechanisms.encode(w, version, false)
    }

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::API_KEY.check_version(version)?;
        Ok(SaslHandshakeResponse {
            error_code: r.get_i16()?,
            mechanisms: List::decode(r, version, false)?,
        })
    }
}
impl<'a> ResponseBody<'a> for SaslHandshakeResponse<'a> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_layout_and_lookup() {
        // error 0, two classic strings.
        let body = [
            0, 0, 0, 0, 0, 2, 0, 5, b'P', b'L', b'A', b'I', b'N', 0, 1, b'X',
        ];
        let mut r = Reader::new(&body);
        let resp = SaslHandshakeResponse::decode(&mut r, 1).unwrap();
        r.expect_end().unwrap();
        assert!(resp.enables("PLAIN"));
        assert!(!resp.enables("plain"));
        assert_eq!(resp.mechanisms.len(), 2);
        // A count larger than the input is refused, not trusted.
        let mut r = Reader::new(&[0, 0, 0x7f, 0, 0, 0]);
        assert_eq!(
            SaslHandshakeResponse::decode(&mut r, 1),
            Err(DecodeError::LengthOutOfRange)
        );
    }
}
