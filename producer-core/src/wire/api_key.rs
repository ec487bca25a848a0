//! The APIs this codec speaks, the versions it implements, and the
//! per-version facts (flexible or not, header versions) that every encoder
//! and decoder needs.

use super::error::DecodeError;

/// Kafka API keys implemented by this codec.
///
/// Only what an idempotent producer needs; unknown keys are reported as
/// [`DecodeError::UnknownApiKey`] so a model broker can answer them with an
/// error rather than crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(i16)]
pub enum ApiKey {
    /// Produce (0): send record batches.
    Produce = 0,
    /// Metadata (3): discover brokers and partition leaders.
    Metadata = 3,
    /// SaslHandshake (17): choose the SASL mechanism of a connection.
    SaslHandshake = 17,
    /// ApiVersions (18): learn which versions the broker supports.
    ApiVersions = 18,
    /// InitProducerId (22): obtain or bump a producer id and epoch.
    InitProducerId = 22,
    /// SaslAuthenticate (36): carry the SASL mechanism's messages.
    SaslAuthenticate = 36,
}

/// An inclusive range of API versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct VersionRange {
    /// Lowest version.
    pub min: i16,
    /// Highest version.
    pub max: i16,
}

impl VersionRange {
    /// A range from `min` to `max`, inclusive.
    pub const fn new(min: i16, max: i16) -> Self {
        VersionRange { min, max }
    }

    /// Whether `version` lies in the range.
    pub const fn contains(&self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }

    /// The highest version in both ranges, if they overlap. This is the
    /// version negotiation rule of the Kafka protocol: each side advertises
    /// a range, and the client uses the newest version both understand.
    pub const fn highest_common(&self, other: &VersionRange) -> Option<i16> {
        let lo = if self.min > other.min {
            self.min
        } else {
            other.min
        };
        let hi = if self.max < other.max {
            self.max
        } else {
            other.max
        };
        if lo <= hi { Some(hi) } else { None }
    }
}

impl ApiKey {
    /// Every API this codec implements.
    pub const ALL: [ApiKey; 6] = [
        ApiKey::Produce,
        ApiKey::Metadata,
        ApiKey::SaslHandshake,
        ApiKey::ApiVersions,
        ApiKey::InitProducerId,
        ApiKey::SaslAuthenticate,
    ];

    /// The numeric key on the wire.
    pub const fn as_i16(self) -> i16 {
        self as i16
    }

    /// Maps a wire key to an [`ApiKey`].
    pub const fn from_i16(key: i16) -> Result<ApiKey, DecodeError> {
        match key {
            0 => Ok(ApiKey::Produce),
            3 => Ok(ApiKey::Metadata),
            17 => Ok(ApiKey::SaslHandshake),
            18 => Ok(ApiKey::ApiVersions),
            22 => Ok(ApiKey::InitProducerId),
            36 => Ok(ApiKey::SaslAuthenticate),
            k => Err(DecodeError::UnknownApiKey(k)),
        }
    }

    /// The versions this codec implements for this API.
    ///
    /// Produce starts at v3 (the first with record batch v2 and
    /// transactional id), Metadata at v1 (null topic list means "all"), and
    /// the upper bounds are the newest versions whose layout is implemented
    /// here (Produce v12+ and Metadata v13+ change semantics we do not need).
    /// SaslHandshake is v1 only: after a v0 handshake the mechanism's messages travel
    /// unframed instead of in SaslAuthenticate requests, an exchange not implemented here
    /// (brokers since Kafka 1.0 offer v1).
    pub const fn supported(self) -> VersionRange {
        match self {
            ApiKey::Produce => VersionRange::new(3, 11),
            ApiKey::Metadata => VersionRange::new(1, 12),
            ApiKey::SaslHandshake => VersionRange::new(1, 1),
            ApiKey::ApiVersions => VersionRange::new(0, 3),
            ApiKey::InitProducerId => VersionRange::new(0, 5),
            ApiKey::SaslAuthenticate => VersionRange::new(0, 2),
        }
    }

    /// The first flexible version (compact strings/arrays, tagged fields). SaslHandshake has
    /// none: `i16::MAX` stands for "never".
    pub const fn first_flexible_version(self) -> i16 {
        match self {
            ApiKey::Produce => 9,
            ApiKey::Metadata => 9,
            ApiKey::SaslHandshake => i16::MAX,
            ApiKey::ApiVersions => 3,
            ApiKey::InitProducerId => 2,
            ApiKey::SaslAuthenticate => 2,
        }
    }

    /// Whether `version` of this API is flexible.
    pub const fn is_flexible(self, version: i16) -> bool {
        version >= self.first_flexible_version()
    }

    /// Request header version used with `version` of this API: v2 (tagged
    /// fields) for flexible versions, v1 otherwise.
    pub const fn request_header_version(self, version: i16) -> i16 {
        if self.is_flexible(version) { 2 } else { 1 }
    }

    /// Response header version used with `version` of this API: v1 for
    /// flexible versions, v0 otherwise. ApiVersions always answers with v0,
    /// because the client cannot yet know whether the broker understood its
    /// flexible request.
    pub const fn response_header_version(self, version: i16) -> i16 {
        match self {
            ApiKey::ApiVersions => 0,
            _ if self.is_flexible(version) => 1,
            _ => 0,
        }
    }

    /// Error if `version` is outside [`supported`](Self::supported).
    pub const fn check_version(self, version: i16) -> Result<(), DecodeError> {
        if self.supported().contains(version) {
            Ok(())
        } else {
            Err(DecodeError::UnsupportedVersion {
                api_key: self.as_i16(),
                version,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_picks_highest_common() {
        let ours = VersionRange::new(3, 11);
        assert_eq!(ours.highest_common(&VersionRange::new(0, 9)), Some(9));
        assert_eq!(ours.highest_common(&VersionRange::new(0, 13)), Some(11));
        assert_eq!(ours.highest_common(&VersionRange::new(0, 2)), None);
        assert_eq!(ours.highest_common(&VersionRange::new(12, 13)), None);
    }

    #[test]
    fn header_versions() {
        assert_eq!(ApiKey::ApiVersions.request_header_version(3), 2);
        assert_eq!(ApiKey::ApiVersions.response_header_version(3), 0);
        assert_eq!(ApiKey::Produce.response_header_version(9), 1);
        assert_eq!(ApiKey::Produce.request_header_version(8), 1);
        assert_eq!(ApiKey::SaslHandshake.request_header_version(1), 1);
        assert_eq!(ApiKey::SaslHandshake.response_header_version(1), 0);
        assert_eq!(ApiKey::SaslAuthenticate.request_header_version(2), 2);
        assert_eq!(ApiKey::SaslAuthenticate.response_header_version(1), 0);
        assert_eq!(ApiKey::from_i16(7), Err(DecodeError::UnknownApiKey(7)));
        for k in ApiKey::ALL {
            assert_eq!(ApiKey::from_i16(k.as_i16()), Ok(k));
        }
    }
}
