//! Request and response headers.
//!
//! Request header v1 carries the API key, version, correlation id and a
//! classic nullable client id; v2 (used by flexible versions) adds a tag
//! buffer but keeps the client id in classic form, so brokers can read it
//! before knowing whether the API version is flexible. Response header v0
//! is just the correlation id; v1 adds a tag buffer.

use super::error::{DecodeError, EncodeError};
use super::reader::Reader;
use super::tagged::{skip_tagged_fields, write_empty_tagged_fields};
use super::writer::Writer;

/// Header in front of every request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader<'a> {
    /// Numeric API key (kept raw so that requests for unknown APIs can still
    /// be answered by a model broker).
    pub api_key: i16,
    /// Version of the body that follows.
    pub api_version: i16,
    /// Echoed in the response; how the client matches responses to requests.
    pub correlation_id: i32,
    /// Free-form client name, shown in broker logs and quotas.
    pub client_id: Option<&'a str>,
}

impl<'a> RequestHeader<'a> {
    /// Writes the header: v2 when `flexible`, else v1.
    pub fn encode(&self, w: &mut Writer<'_>, flexible: bool) -> Result<(), EncodeError> {
        w.put_i16(self.api_key)?;
        w.put_i16(self.api_version)?;
        w.put_i32(self.correlation_id)?;
        w.put_nullable_string(self.client_id, false)?;
        if flexible {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }

    /// Reads the fields common to header v1 and v2 (everything but the tag
    /// buffer) from the start of a request frame. Works for any API key, so
    /// a model broker can answer a request it cannot decode; use
    /// [`decode`](Self::decode) to position a reader at the body.
    pub fn peek(frame: &'a [u8]) -> Result<Self, DecodeError> {
        Self::decode(&mut Reader::new(frame), false)
    }

    /// Reads a header: v2 when `flexible`, else v1. Unknown tagged fields
    /// are skipped.
    pub fn decode(r: &mut Reader<'a>, flexible: bool) -> Result<Self, DecodeError> {
        let header = RequestHeader {
            api_key: r.get_i16()?,
            api_version: r.get_i16()?,
            correlation_id: r.get_i32()?,
            client_id: r.get_nullable_string(false)?,
        };
        if flexible {
            skip_tagged_fields(r)?;
        }
        Ok(header)
    }
}

/// Header in front of every response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    /// Correlation id of the request this answers.
    pub correlation_id: i32,
}

impl ResponseHeader {
    /// Writes the header: v1 when `flexible`, else v0.
    pub fn encode(&self, w: &mut Writer<'_>, flexible: bool) -> Result<(), EncodeError> {
        w.put_i32(self.correlation_id)?;
        if flexible {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }

    /// Reads a header: v1 when `flexible`, else v0.
    pub fn decode(r: &mut Reader<'_>, flexible: bool) -> Result<Self, DecodeError> {
        let header = ResponseHeader {
            correlation_id: r.get_i32()?,
        };
        if flexible {
            skip_tagged_fields(r)?;
        }
        Ok(header)
    }
}
