//! Decoding a frame of whichever API: the view of a model broker or a cross-check, which
//! does not know beforehand what it was sent. The producer never needs it (it knows the
//! request each correlation id belongs to), so it is built only with the `decode-any`
//! feature, which the tests and the fuzz target enable.

use super::api_key::ApiKey;
use super::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
use super::error::DecodeError;
use super::header::{RequestHeader, ResponseHeader};
use super::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use super::message::{decode_request_as, decode_request_header, decode_response};
use super::metadata::{MetadataRequest, MetadataResponse};
use super::produce::{ProduceRequest, ProduceResponse};
use super::sasl_authenticate::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use super::sasl_handshake::{SaslHandshakeRequest, SaslHandshakeResponse};

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
    /// SaslHandshake request.
    SaslHandshake(SaslHandshakeRequest<'a>),
    /// SaslAuthenticate request.
    SaslAuthenticate(SaslAuthenticateRequest<'a>),
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
        ApiKey::SaslHandshake => {
            let (h, b) = decode_request_as(frame)?;
            (h, Request::SaslHandshake(b))
        }
        ApiKey::SaslAuthenticate => {
            let (h, b) = decode_request_as(frame)?;
            (h, Request::SaslAuthenticate(b))
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
    /// SaslHandshake response.
    SaslHandshake(SaslHandshakeResponse<'a>),
    /// SaslAuthenticate response.
    SaslAuthenticate(SaslAuthenticateResponse<'a>),
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
        ApiKey::SaslHandshake => {
            let (h, b) = decode_response(frame, version)?;
            (h, Response::SaslHandshake(b))
        }
        ApiKey::SaslAuthenticate => {
            let (h, b) = decode_response(frame, version)?;
            (h, Response::SaslAuthenticate(b))
        }
    })
}
