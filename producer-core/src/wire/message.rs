//! Whole messages: header plus body inside a size-prefixed frame.
//!
//! Each API's request and response body implements [`Body`]; the functions
//! here add the right header version for the API and version, the frame
//! size prefix, and the checks that a body fully consumes its frame. The
//! producer encodes requests and decodes responses; the reverse directions
//! exist for the cross-checks and for model brokers in tests.

use super::api_key::ApiKey;
use super::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
use super::error::{DecodeError, EncodeError};
use super::frame::{FRAME_PREFIX_LEN, write_frame_prefix};
use super::header::{RequestHeader, ResponseHeader};
use super::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use super::metadata::{MetadataRequest, MetadataResponse};
use super::produce::{ProduceRequest, ProduceResponse};
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

/// Writes a framed request (size prefix, header, body) at the start of
/// `buf` and returns the number of bytes written.
pub fn encode_request<'a, B: RequestBody<'a>>(
    buf: &mut [u8],
    version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
    body: &B,
) -> Result<usize, EncodeError> {
    check_encode_version(B::API_KEY, version)?;
    let header = RequestHeader {
        api_key: B::API_KEY.as_i16(),
        api_version: version,
        correlation_id,
        client_id,
    };
    let content_len = {
        let mut w = Writer::new(
            buf.get_mut(FRAME_PREFIX_LEN..)
                .ok_or(EncodeError::BufferTooSmall)?,
        );
        header.encode(&mut w, B::API_KEY.request_header_version(version) >= 2)?;
        body.encode(&mut w, version)?;
        w.position()
    };
    write_frame_prefix(buf, content_len)?;
    Ok(content_len + FRAME_PREFIX_LEN)
}

/// Writes a framed response (size prefix, header, body) at the start of
/// `buf` and returns the number of bytes written.
pub fn encode_response<'a, B: ResponseBody<'a>>(
    buf: &mut [u8],
    version: i16,
    correlation_id: i32,
    body: &B,
) -> Result<usize, EncodeError> {
    check_encode_version(B::API_KEY, version)?;
    let header = ResponseHeader { correlation_id };
    let content_len = {
        let mut w = Writer::new(
            buf.get_mut(FRAME_PREFIX_LEN..)
                .ok_or(EncodeError::BufferTooSmall)?,
        );
        header.encode(&mut w, B::API_KEY.response_header_version(version) >= 1)?;
        body.encode(&mut w, version)?;
        w.position()
    };
    write_frame_prefix(buf, content_len)?;
    Ok(content_len + FRAME_PREFIX_LEN)
}

/// Decodes a response frame (content without the size prefix, as returned
/// by the frame decoder) to a request sent at `version`. The caller checks
/// the correlation id against its in-flight request.
pub fn decode_response<'a, B: ResponseBody<'a>>(
    frame: &'a [u8],
    version: i16,
) -> Result<(ResponseHeader, B), DecodeError> {
    B::API_KEY.check_version(version)?;
    let mut r = Reader::new(frame);
    let header = ResponseHeader::decode(&mut r, B::API_KEY.response_header_version(version) >= 1)?;
    let body = B::decode(&mut r, version)?;
    r.expect_end()?;
    Ok((header, body))
}

/// Decodes a response like [`decode_response`], but accepts bytes after the body and returns
/// how many there were. Brokers are not always exact: librdkafka's mock cluster closes its
/// flexible Metadata responses with one extra empty tag section, and Kafka's own clients ignore
/// what follows the body of a length-delimited frame. A client uses this and logs the excess.
pub fn decode_response_lenient<'a, B: ResponseBody<'a>>(
    frame: &'a [u8],
    version: i16,
) -> Result<(ResponseHeader, B, usize), DecodeError> {
    B::API_KEY.check_version(version)?;
    let mut r = Reader::new(frame);
    let header = ResponseHeader::decode(&mut r, B::API_KEY.response_header_version(version) >= 1)?;
    let body = B::decode(&mut r, version)?;
    let trailing = frame.len().saturating_sub(r.position());
    Ok((header, body, trailing))
}

/// Reads only the header of a request frame, whatever its API; a model
/// broker uses this to answer requests it cannot decode.
pub fn decode_request_header(frame: &[u8]) -> Result<(RequestHeader<'_>, usize), DecodeError> {
    let mut r = Reader::new(frame);
    let key = r.get_i16()?;
    let version = r.get_i16()?;
    let api = ApiKey::from_i16(key)?;
    let mut r = Reader::new(frame);
    let header = RequestHeader::decode(&mut r, api.request_header_version(version) >= 2)?;
    Ok((header, r.position()))
}

/// Decodes a request frame of a known API and type.
pub fn decode_request_as<'a, B: RequestBody<'a>>(
    frame: &'a [u8],
) -> Result<(RequestHeader<'a>, B), DecodeError> {
    let (header, at) = decode_request_header(frame)?;
    if header.api_key != B::API_KEY.as_i16() {
        return Err(DecodeError::WrongApiKey {
            expected: B::API_KEY.as_i16(),
            found: header.api_key,
        });
    }
    B::API_KEY.check_version(header.api_version)?;
    let mut r = Reader::new(frame.get(at..).unwrap_or(&[]));
    let body = B::decode(&mut r, header.api_version)?;
    r.expect_end()?;
    Ok((header, body))
}

/// Any request this codec understands, as decoded by [`decode_request`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Request<'a> {
    /// ApiVersions request.
    ApiVersions(ApiVersionsRequest<'a>),
    /// Metadata request.
    Metadata(MetadataRequest<'a>),
    /// InitProducerId request.
    InitProducerId(InitProducerIdRequest<'a>),
    /// Produce request.
    Produce(ProduceRequest<'a>),
}

/// Decodes a request frame of any implemented API (for model brokers).
pub fn decode_request(frame: &[u8]) -> Result<(RequestHeader<'_>, Request<'_>), DecodeError> {
    let (header, _) = decode_request_header(frame)?;
    Ok(match ApiKey::from_i16(header.api_key)? {
        ApiKey::ApiVersions => {
            let (h, b) = decode_request_as(frame)?;
            (h, Request::ApiVersions(b))
        }
        ApiKey::Metadata => {
            let (h, b) = decode_request_as(frame)?;
            (h, Request::Metadata(b))
        }
        ApiKey::InitProducerId => {
            let (h, b) = decode_request_as(frame)?;
            (h, Request::InitProducerId(b))
        }
        ApiKey::Produce => {
            let (h, b) = decode_request_as(frame)?;
            (h, Request::Produce(b))
        }
    })
}

/// The response to decode for a request, chosen by the API the caller
/// remembers for the correlation id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Response<'a> {
    /// ApiVersions response.
    ApiVersions(ApiVersionsResponse<'a>),
    /// Metadata response.
    Metadata(MetadataResponse<'a>),
    /// InitProducerId response.
    InitProducerId(InitProducerIdResponse),
    /// Produce response.
    Produce(ProduceResponse<'a>),
}

/// Decodes a response frame to a request of `api` at `version`.
pub fn decode_any_response(
    frame: &[u8],
    api: ApiKey,
    version: i16,
) -> Result<(ResponseHeader, Response<'_>), DecodeError> {
    Ok(match api {
        ApiKey::ApiVersions => {
            let (h, b) = decode_response(frame, version)?;
            (h, Response::ApiVersions(b))
        }
        ApiKey::Metadata => {
            let (h, b) = decode_response(frame, version)?;
            (h, Response::Metadata(b))
        }
        ApiKey::InitProducerId => {
            let (h, b) = decode_response(frame, version)?;
            (h, Response::InitProducerId(b))
        }
        ApiKey::Produce => {
            let (h, b) = decode_response(frame, version)?;
            (h, Response::Produce(b))
        }
    })
}
