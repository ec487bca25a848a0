//! The traits every API's request and response body implements: a leaf module, so the API
//! modules and the framing in `message` both depend on it and on nothing of each other.

use super::api_key::ApiKey;
use super::error::{DecodeError, EncodeError};
use super::reader::Reader;
use super::writer::Writer;

/// A request or response body of one API.
pub trait Body<'a>: Sized {
    /// The API this body belongs to.
    const API_KEY: ApiKey;

    /// Writes the body as it appears at `version`. Fields that do not exist
    /// in `version` are ignored.
    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError>;

    /// Reads the body as it appears at `version`. Fields that do not exist
    /// in `version` take their protocol default.
    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError>;

    /// Exact encoded size of the body at `version`, for sizing buffers.
    fn encoded_len(&self, version: i16) -> Result<usize, EncodeError> {
        let mut w = Writer::counting();
        self.encode(&mut w, version)?;
        Ok(w.position())
    }
}

/// Marker for request bodies (selects the request header).
pub trait RequestBody<'a>: Body<'a> {}
/// Marker for response bodies (selects the response header).
pub trait ResponseBody<'a>: Body<'a> {}

/// Fails with [`EncodeError::UnsupportedVersion`] outside the implemented range.
pub(crate) fn check_encode_version(api: ApiKey, version: i16) -> Result<(), EncodeError> {
    api.check_version(version)
        .map_err(|_| EncodeError::UnsupportedVersion {
            api_key: api.as_i16(),
            version,
        })
}
