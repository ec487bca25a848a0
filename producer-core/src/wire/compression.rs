//! Record batch attributes: compression codec, timestamp type and flags.
//!
//! No codec is implemented yet; the [`Compression`] enum is the extension
//! point (each codec would be a variant behind a cargo feature). Decoding a
//! batch whose codec is not compiled in is an error
//! ([`DecodeError::UnsupportedCompression`]) rather than silently treating
//! compressed bytes as records.

use super::error::DecodeError;

/// Compression codec of a record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Compression {
    /// Records are stored as-is.
    #[default]
    None,
}

impl Compression {
    /// The codec number stored in attribute bits 0–2.
    pub const fn codec_id(self) -> u8 {
        match self {
            Compression::None => 0,
        }
    }

    /// The codec for attribute bits 0–2, if compiled in. Known Kafka codecs
    /// (1 gzip, 2 snappy, 3 lz4, 4 zstd) and unknown numbers alike are
    /// reported as [`DecodeError::UnsupportedCompression`].
    pub const fn from_codec_id(id: u8) -> Result<Self, DecodeError> {
        match id {
            0 => Ok(Compression::None),
            other => Err(DecodeError::UnsupportedCompression(other)),
        }
    }
}

/// Meaning of the batch timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TimestampType {
    /// Set by the producer (the normal case).
    #[default]
    CreateTime,
    /// Overwritten by the broker on append.
    LogAppendTime,
}

/// The `int16` attributes of a record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Attributes(pub i16);

impl Attributes {
    const CODEC_MASK: i16 = 0x07;
    const TIMESTAMP_TYPE: i16 = 0x08;
    const TRANSACTIONAL: i16 = 0x10;
    const CONTROL: i16 = 0x20;
    const DELETE_HORIZON: i16 = 0x40;

    /// Attributes for a producer batch.
    pub const fn new(
        compression: Compression,
        timestamp_type: TimestampType,
        transactional: bool,
    ) -> Self {
        let mut bits = compression.codec_id() as i16;
        if matches!(timestamp_type, TimestampType::LogAppendTime) {
            bits |= Self::TIMESTAMP_TYPE;
        }
        if transactional {
            bits |= Self::TRANSACTIONAL;
        }
        Attributes(bits)
    }

    /// Raw codec number (bits 0–2).
    pub const fn codec_id(self) -> u8 {
        (self.0 & Self::CODEC_MASK) as u8
    }

    /// The compression codec, or an error if it is not compiled in.
    pub const fn compression(self) -> Result<Compression, DecodeError> {
        Compression::from_codec_id(self.codec_id())
    }

    /// Timestamp type (bit 3).
    pub const fn timestamp_type(self) -> TimestampType {
        if self.0 & Self::TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the batch is part of a transaction (bit 4).
    pub const fn is_transactional(self) -> bool {
        self.0 & Self::TRANSACTIONAL != 0
    }

    /// Whether the batch holds control records (bit 5).
    pub const fn is_control(self) -> bool {
        self.0 & Self::CONTROL != 0
    }

    /// Whether the base timestamp is a delete horizon (bit 6).
    pub const fn has_delete_horizon(self) -> bool {
        self.0 & Self::DELETE_HORIZON != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits() {
        let a = Attributes::new(Compression::None, TimestampType::LogAppendTime, true);
        assert_eq!(a.0, 0x18);
        assert_eq!(a.timestamp_type(), TimestampType::LogAppendTime);
        assert!(a.is_transactional() && !a.is_control() && !a.has_delete_horizon());
        assert_eq!(a.compression(), Ok(Compression::None));
        assert_eq!(
            Attributes(4).compression(),
            Err(DecodeError::UnsupportedCompression(4))
        );
        assert_eq!(Attributes(7).codec_id(), 7);
    }
}
