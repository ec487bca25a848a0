//! ApiVersions (key 18), versions 0–3: the first exchange on every
//! connection, telling the client which versions of each API the broker
//! supports so it can negotiate (see [`ApiVersionsResponse::negotiate`]).

use super::api_key::{ApiKey, VersionRange};
use super::body::{Body, RequestBody, ResponseBody, check_encode_version};
use super::error::{DecodeError, EncodeError};
use super::list::{Item, List};
use super::reader::Reader;
use super::tagged::{
    read_tagged_fields, skip_tagged_fields, write_empty_tagged_fields, write_tagged_field,
};
use super::writer::Writer;

/// Error code a broker returns when it does not support the ApiVersions
/// version the client sent.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// ApiVersions request. Empty before v3; v3 names the client software
/// (brokers expose it in metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApiVersionsRequest<'a> {
    /// Client library name (v3+), e.g. `"producer-core"`.
    pub client_software_name: &'a str,
    /// Client library version (v3+).
    pub client_software_version: &'a str,
}

impl<'a> Body<'a> for ApiVersionsRequest<'a> {
    const API_KEY: ApiKey = ApiKey::ApiVersions;

    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        check_encode_version(Self::API_KEY, version)?;
        if version >= 3 {
            w.put_string(self.client_software_name, true)?;
            w.put_string(self.client_software_version, true)?;
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::API_KEY.check_version(version)?;
        let mut req = ApiVersionsRequest::default();
        if version >= 3 {
            req.client_software_name = r.get_string(true)?;
            req.client_software_version = r.get_string(true)?;
            skip_tagged_fields(r)?;
        }
        Ok(req)
    }
}
impl<'a> RequestBody<'a> for ApiVersionsRequest<'a> {}

/// One API's supported version range, as advertised by the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersion {
    /// Numeric API key.
    pub api_key: i16,
    /// Lowest supported version.
    pub min_version: i16,
    /// Highest supported version.
    pub max_version: i16,
}

impl<'a> Item<'a> for ApiVersion {
    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        w.put_i16(self.api_key)?;
        w.put_i16(self.min_version)?;
        w.put_i16(self.max_version)?;
        if version >= 3 {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }
    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let v = ApiVersion {
            api_key: r.get_i16()?,
            min_version: r.get_i16()?,
            max_version: r.get_i16()?,
        };
        if version >= 3 {
            skip_tagged_fields(r)?;
        }
        Ok(v)
    }
}

/// A feature the broker supports (KIP-584), v3+ tagged field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportedFeature<'a> {
    /// Feature name.
    pub name: &'a str,
    /// Lowest supported level.
    pub min_version: i16,
    /// Highest supported level.
    pub max_version: i16,
}

impl<'a> Item<'a> for SupportedFeature<'a> {
    fn encode(&self, w: &mut Writer<'_>, _version: i16) -> Result<(), EncodeError> {
        w.put_string(self.name, true)?;
        w.put_i16(self.min_version)?;
        w.put_i16(self.max_version)?;
        write_empty_tagged_fields(w)
    }
    fn decode(r: &mut Reader<'a>, _version: i16) -> Result<Self, DecodeError> {
        let f = SupportedFeature {
            name: r.get_string(true)?,
            min_version: r.get_i16()?,
            max_version: r.get_i16()?,
        };
        skip_tagged_fields(r)?;
        Ok(f)
    }
}

/// A cluster-wide finalized feature level (KIP-584), v3+ tagged field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinalizedFeature<'a> {
    /// Feature name.
    pub name: &'a str,
    /// Finalized maximum level.
    pub max_version_level: i16,
    /// Finalized minimum level.
    pub min_version_level: i16,
}

impl<'a> Item<'a> for FinalizedFeature<'a> {
    fn encode(&self, w: &mut Writer<'_>, _version: i16) -> Result<(), EncodeError> {
        w.put_string(self.name, true)?;
        w.put_i16(self.max_version_level)?;
        w.put_i16(self.min_version_level)?;
        write_empty_tagged_fields(w)
    }
    fn decode(r: &mut Reader<'a>, _version: i16) -> Result<Self, DecodeError> {
        let f = FinalizedFeature {
            name: r.get_string(true)?,
            max_version_level: r.get_i16()?,
            min_version_level: r.get_i16()?,
        };
        skip_tagged_fields(r)?;
        Ok(f)
    }
}

/// ApiVersions response.
///
/// Decoding (and encoding) uses the v0 layout whenever the error code is
/// [`UNSUPPORTED_VERSION`]: a Kafka broker that does not understand the
/// request version answers in v0, and the client is expected to retry with
/// a version from the returned list, or v0 if the list is empty. Bodies that
/// are not valid v0 after that error code (empty, or the librdkafka mock
/// cluster's hybrid layout) decode as the error with an empty list rather
/// than failing, so the client can still fall back to v0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApiVersionsResponse<'a> {
    /// 0, or an error such as [`UNSUPPORTED_VERSION`].
    pub error_code: i16,
    /// Supported version ranges, one per API.
    pub api_keys: List<'a, ApiVersion>,
    /// Throttle time in ms (v1+).
    pub throttle_time_ms: i32,
    /// Supported features (v3+, tagged 0).
    pub supported_features: List<'a, SupportedFeature<'a>>,
    /// Finalized features epoch, -1 if unknown (v3+, tagged 1).
    pub finalized_features_epoch: i64,
    /// Finalized features (v3+, tagged 2).
    pub finalized_features: List<'a, FinalizedFeature<'a>>,
    /// Whether the controller is ready for ZK migration (v3+, tagged 3).
    pub zk_migration_ready: bool,
}

impl Default for ApiVersionsResponse<'_> {
    fn default() -> Self {
        ApiVersionsResponse {
            error_code: 0,
            api_keys: List::EMPTY,
            throttle_time_ms: 0,
            supported_features: List::EMPTY,
            finalized_features_epoch: -1,
            finalized_features: List::EMPTY,
            zk_migration_ready: false,
        }
    }
}

impl<'a> ApiVersionsResponse<'a> {
    /// The broker's range for `api`, if it advertised one.
    pub fn range_of(&self, api: ApiKey) -> Option<VersionRange> {
        self.api_keys
            .iter()
            .find(|v| v.api_key == api.as_i16())
            .map(|v| VersionRange::new(v.min_version, v.max_version))
    }

    /// The version to use for `api`: the highest one both this codec
    /// ([`ApiKey::supported`]) and the broker support, or `None` if the
    /// ranges do not overlap (the connection cannot use this API).
    pub fn negotiate(&self, api: ApiKey) -> Option<i16> {
        self.range_of(api)?.highest_common(&api.supported())
    }

    /// Negotiated versions of every API the producer uses, in one go.
    pub fn negotiate_all(&self) -> NegotiatedVersions {
        NegotiatedVersions {
            api_versions: self.negotiate(ApiKey::ApiVersions),
            metadata: self.negotiate(ApiKey::Metadata),
            init_producer_id: self.negotiate(ApiKey::InitProducerId),
            produce: self.negotiate(ApiKey::Produce),
            sasl_handshake: self.negotiate(ApiKey::SaslHandshake),
            sasl_authenticate: self.negotiate(ApiKey::SaslAuthenticate),
        }
    }
}

/// Result of version negotiation with one broker (`None`: no common version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NegotiatedVersions {
    /// ApiVersions version for later requests.
    pub api_versions: Option<i16>,
    /// Metadata version.
    pub metadata: Option<i16>,
    /// InitProducerId version.
    pub init_producer_id: Option<i16>,
    /// Produce version.
    pub produce: Option<i16>,
    /// SaslHandshake version (only v1 is implemented; `None` from a broker without SASL
    /// support or one that offers only v0).
    pub sasl_handshake: Option<i16>,
    /// SaslAuthenticate version.
    pub sasl_authenticate: Option<i16>,
}

impl<'a> Body<'a> for ApiVersionsResponse<'a> {
    const API_KEY: ApiKey = ApiKey::ApiVersions;

    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        check_encode_version(Self::API_KEY, version)?;
        w.put_i16(self.error_code)?;
        if self.error_code == UNSUPPORTED_VERSION {
            // What a broker sends when it cannot parse the request version,
            // and what `decode` expects: the v0 layout.
            return self.api_keys.encode(w, 0, false);
        }
        let flexible = version >= 3;
        self.api_keys.encode(w, version, flexible)?;
        if version >= 1 {
            w.put_i32(self.throttle_time_ms)?;
        }
        if flexible {
            let count = u32::from(!self.supported_features.is_empty())
                + u32::from(self.finalized_features_epoch != -1)
                + u32::from(!self.finalized_features.is_empty())
                + u32::from(self.zk_migration_ready);
            w.put_unsigned_varint(count)?;
            if !self.supported_features.is_empty() {
                write_tagged_field(w, 0, |w| self.supported_features.encode(w, version, true))?;
            }
            if self.finalized_features_epoch != -1 {
                write_tagged_field(w, 1, |w| w.put_i64(self.finalized_features_epoch))?;
            }
            if !self.finalized_features.is_empty() {
                write_tagged_field(w, 2, |w| self.finalized_features.encode(w, version, true))?;
            }
            if self.zk_migration_ready {
                write_tagged_field(w, 3, |w| w.put_bool(true))?;
            }
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::API_KEY.check_version(version)?;
        let mut resp = ApiVersionsResponse {
            error_code: r.get_i16()?,
            ..Default::default()
        };
        if resp.error_code == UNSUPPORTED_VERSION && version > 0 {
            // A Kafka broker sends a v0 body listing (at least) its
            // ApiVersions range. Anything else after the error code (nothing
            // at all, or the librdkafka mock's mix of compact count and
            // classic fields) carries no usable range: the error code alone
            // tells the client to retry with v0, so the rest is skipped.
            let mut v0 = r.clone();
            match List::decode(&mut v0, 0, false) {
                Ok(keys) if v0.remaining() == 0 => {
                    resp.api_keys = keys;
                    *r = v0;
                }
                _ => {
                    r.take(r.remaining())?;
                }
            }
            return Ok(resp);
        }
        let flexible = version >= 3;
        resp.api_keys = List::decode(r, version, flexible)?;
        if version >= 1 {
            resp.throttle_time_ms = r.get_i32()?;
        }
        if flexible {
            read_tagged_fields(r, |tag, f| {
                match tag {
                    0 => resp.supported_features = List::decode(f, version, true)?,
                    1 => resp.finalized_features_epoch = f.get_i64()?,
                    2 => resp.finalized_features = List::decode(f, version, true)?,
                    3 => resp.zk_migration_ready = f.get_bool()?,
                    _ => return Ok(false),
                }
                Ok(true)
            })?;
        }
        Ok(resp)
    }
}
impl<'a> ResponseBody<'a> for ApiVersionsResponse<'a> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_to_v0_on_unsupported_version() {
        // Only the error code, as the librdkafka mock answers.
        let mut r = Reader::new(&[0, 35]);
        let resp = ApiVersionsResponse::decode(&mut r, 3).unwrap();
        assert_eq!(resp.error_code, 35);
        assert!(resp.api_keys.is_empty());
        // v0 body with the broker's ApiVersions range, as Kafka answers.
        let body = [0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 2];
        let mut r = Reader::new(&body);
        let resp = ApiVersionsResponse::decode(&mut r, 3).unwrap();
        assert_eq!(resp.negotiate(ApiKey::ApiVersions), Some(2));
        r.expect_end().unwrap();
        // Encoding such a response produces the same v0 body.
        let mut out = [0u8; 16];
        let mut w = Writer::new(&mut out);
        resp.encode(&mut w, 3).unwrap();
        assert_eq!(w.written(), &body[..]);
    }

    #[test]
    fn fallback_on_librdkafka_mock_body() {
        // librdkafka's mock answers a v3 request it does not support with
        // error, a one-byte count, the ApiVersions entry and throttle time.
        let body = [0, 35, 1, 0, 18, 0, 0, 0, 2, 0, 0, 0, 0];
        let mut r = Reader::new(&body);
        let resp = ApiVersionsResponse::decode(&mut r, 3).unwrap();
        assert_eq!(resp.error_code, UNSUPPORTED_VERSION);
        assert!(resp.api_keys.is_empty());
        r.expect_end().unwrap();
    }

    #[test]
    fn negotiation() {
        let keys = [
            ApiVersion {
                api_key: 0,
                min_version: 0,
                max_version: 13,
            },
            ApiVersion {
                api_key: 3,
                min_version: 0,
                max_version: 8,
            },
            ApiVersion {
                api_key: 22,
                min_version: 4,
                max_version: 6,
            },
        ];
        let resp = ApiVersionsResponse {
            api_keys: List::from_slice(&keys),
            ..Default::default()
        };
        let n = resp.negotiate_all();
        assert_eq!(n.produce, Some(11));
        assert_eq!(n.metadata, Some(8));
        assert_eq!(n.init_producer_id, Some(5));
        assert_eq!(n.api_versions, None);
    }
}
