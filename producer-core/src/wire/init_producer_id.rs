//! InitProducerId (key 22), versions 0–5: obtains the producer id and epoch
//! that make produce requests idempotent. From v3 (KIP-360) a producer that
//! already has an id passes it with its epoch, and the broker bumps the
//! epoch instead of allocating a new id, so the producer can recover from
//! sequence errors without losing its identity.

use super::api_key::ApiKey;
use super::body::{Body, RequestBody, ResponseBody, check_encode_version};
use super::error::{DecodeError, EncodeError};
use super::reader::Reader;
use super::tagged::{skip_tagged_fields, write_empty_tagged_fields};
use super::writer::Writer;

const FIRST_FLEXIBLE: i16 = 2;

/// InitProducerId request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitProducerIdRequest<'a> {
    /// Transactional id; `None` for an idempotent-only producer.
    pub transactional_id: Option<&'a str>,
    /// Transaction timeout in ms (ignored without a transactional id).
    pub transaction_timeout_ms: i32,
    /// Current producer id (v3+), -1 for a fresh producer.
    pub producer_id: i64,
    /// Current producer epoch (v3+), -1 for a fresh producer.
    pub producer_epoch: i16,
}

impl Default for InitProducerIdRequest<'_> {
    fn default() -> Self {
        InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 0,
            producer_id: -1,
            producer_epoch: -1,
        }
    }
}

impl<'a> Body<'a> for InitProducerIdRequest<'a> {
    const API_KEY: ApiKey = ApiKey::InitProducerId;

    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        check_encode_version(Self::API_KEY, version)?;
        let flexible = version >= FIRST_FLEXIBLE;
        w.put_nullable_string(self.transactional_id, flexible)?;
        w.put_i32(self.transaction_timeout_ms)?;
        if version >= 3 {
            w.put_i64(self.producer_id)?;
            w.put_i16(self.producer_epoch)?;
        }
        if flexible {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::API_KEY.check_version(version)?;
        let flexible = version >= FIRST_FLEXIBLE;
        let mut req = InitProducerIdRequest {
            transactional_id: r.get_nullable_string(flexible)?,
            transaction_timeout_ms: r.get_i32()?,
            ..Default::default()
        };
        if version >= 3 {
            req.producer_id = r.get_i64()?;
            req.producer_epoch = r.get_i16()?;
        }
        if flexible {
            skip_tagged_fields(r)?;
        }
        Ok(req)
    }
}
impl<'a> RequestBody<'a> for InitProducerIdRequest<'a> {}

/// InitProducerId response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitProducerIdResponse {
    /// Throttle time in ms.
    pub throttle_time_ms: i32,
    /// 0, or an error (e.g. coordinator not available, producer fenced).
    pub error_code: i16,
    /// Allocated producer id, -1 on error.
    pub producer_id: i64,
    /// Producer epoch, -1 on error.
    pub producer_epoch: i16,
}

impl Default for InitProducerIdResponse {
    fn default() -> Self {
        InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code: 0,
            producer_id: -1,
            producer_epoch: -1,
        }
    }
}

impl<'a> Body<'a> for InitProducerIdResponse {
    const API_KEY: ApiKey = ApiKey::InitProducerId;

    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        check_encode_version(Self::API_KEY, version)?;
        w.put_i32(self.throttle_time_ms)?;
        w.put_i16(self.error_code)?;
        w.put_i64(self.producer_id)?;
        w.put_i16(self.producer_epoch)?;
        if version >= FIRST_FLEXIBLE {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::API_KEY.check_version(version)?;
        let resp = InitProducerIdResponse {
            throttle_time_ms: r.get_i32()?,
            error_code: r.get_i16()?,
            producer_id: r.get_i64()?,
            producer_epoch: r.get_i16()?,
        };
        if version >= FIRST_FLEXIBLE {
            skip_tagged_fields(r)?;
        }
        Ok(resp)
    }
}
impl<'a> ResponseBody<'a> for InitProducerIdResponse {}
