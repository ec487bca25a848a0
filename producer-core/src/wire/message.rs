//! Whole messages: header plus body inside a size-prefixed frame.
//!
//! Each API's request and response body implements [`Body`](super::Body)
//! (in the leaf module `body`, which the API modules import: no module here imports
//! the API modules back); the functions here add the right header version for the API and
//! version, the frame size prefix, and the checks that a body fully consumes its frame. The
//! producer encodes requests and decodes responses; the request decoders exist for model
//! brokers and cross-checks, and are built only with the `decode-any` feature, as is the
//! `any` module that decodes a frame of whichever API.

#[cfg(feature = "decode-any")]
use super::api_key::ApiKey;
use super::body::{RequestBody, ResponseBody, check_encode_version};
use super::error::{DecodeError, EncodeError};
use super::frame::{FRAME_PREFIX_LEN, write_frame_prefix};
use super::header::{RequestHeader, ResponseHeader};
use super::reader::Reader;
use super::writer::Writer;

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

#[cfg(feature = "decode-any")]
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

#[cfg(feature = "decode-any")]
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
