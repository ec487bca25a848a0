//! Error values of the codec.
//!
//! Every decoder in [`crate::wire`] returns [`DecodeError`] instead of
//! panicking, because its input comes from the network and may be truncated,
//! corrupted or hostile. Encoders return [`EncodeError`] because they write
//! into a buffer the caller sized, which may be too small.

/// Why bytes could not be decoded.
///
/// The variants are fine-grained so that a connection handler can tell a
/// transient short read ([`DecodeError::Truncated`] out of a frame decoder is
/// never returned: it says "need more" instead) from a protocol violation
/// that must close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the value did.
    Truncated,
    /// A length or count prefix is negative (other than the null marker),
    /// larger than the bytes that remain, or otherwise out of range.
    LengthOutOfRange,
    /// A varint is longer than its type allows.
    InvalidVarint,
    /// A string is not valid UTF-8.
    InvalidUtf8,
    /// A null was found where this version forbids one.
    UnexpectedNull,
    /// Bytes remain after the end of a message or record.
    TrailingBytes,
    /// Tagged fields are out of order, repeated, or a known tagged field does
    /// not consume exactly its declared size.
    InvalidTaggedField,
    /// The frame length prefix announces more than the caller's maximum.
    FrameTooLarge {
        /// Announced size of the frame, without the 4-byte prefix.
        size: u32,
        /// The caller's limit.
        max: u32,
    },
    /// The API key is not one this codec knows.
    UnknownApiKey(i16),
    /// A request frame is for another API than the one asked for.
    WrongApiKey {
        /// API key the caller expected.
        expected: i16,
        /// API key in the frame.
        found: i16,
    },
    /// The version of this API is outside what this codec implements.
    UnsupportedVersion {
        /// Kafka API key.
        api_key: i16,
        /// Requested version.
        version: i16,
    },
    /// A record batch's magic byte is not 2.
    UnsupportedMagic(i8),
    /// A record batch uses a compression codec not compiled in (the value is
    /// the codec number from the attributes).
    UnsupportedCompression(u8),
    /// The CRC-32C of a record batch does not match its content.
    BadCrc {
        /// CRC stored in the batch.
        stored: u32,
        /// CRC computed over the batch.
        computed: u32,
    },
    /// A record batch's record count disagrees with the records it holds.
    RecordCountMismatch,
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated => f.write_str("input truncated"),
            Self::LengthOutOfRange => f.write_str("length out of range"),
            Self::InvalidVarint => f.write_str("invalid varint"),
            Self::InvalidUtf8 => f.write_str("invalid UTF-8 in string"),
            Self::UnexpectedNull => f.write_str("unexpected null"),
            Self::TrailingBytes => f.write_str("trailing bytes after message"),
            Self::InvalidTaggedField => f.write_str("invalid tagged field"),
            Self::FrameTooLarge { size, max } => {
                write!(f, "frame of {size} bytes exceeds maximum {max}")
            }
            Self::UnknownApiKey(k) => write!(f, "unknown API key {k}"),
            Self::WrongApiKey { expected, found } => {
                write!(f, "expected API key {expected}, found {found}")
            }
            Self::UnsupportedVersion { api_key, version } => {
                write!(f, "unsupported version {version} of API {api_key}")
            }
            Self::UnsupportedMagic(m) => write!(f, "unsupported record batch magic {m}"),
            Self::UnsupportedCompression(c) => write!(f, "unsupported compression codec {c}"),
            Self::BadCrc { stored, computed } => {
                write!(
                    f,
                    "bad CRC: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
            Self::RecordCountMismatch => f.write_str("record count mismatch"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a value could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EncodeError {
    /// The caller's buffer is too small. Nothing useful has been written; the
    /// caller may retry with a larger buffer (or, for a record batch, close
    /// the batch and start a new one).
    BufferTooSmall,
    /// A string, byte array or array is longer than its length prefix can
    /// express.
    ValueTooLarge,
    /// A field is `None` in a version where it is not nullable.
    NullNotAllowed,
    /// The version of this API is outside what this codec implements.
    UnsupportedVersion {
        /// Kafka API key.
        api_key: i16,
        /// Requested version.
        version: i16,
    },
    /// The bytes given to a record batch operation are not a valid batch.
    InvalidBatch(DecodeError),
    /// A list computed by a [`Source`](super::Source) gave fewer elements than its count.
    CountMismatch,
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BufferTooSmall => f.write_str("buffer too small"),
            Self::ValueTooLarge => f.write_str("value too large for its length prefix"),
            Self::CountMismatch => f.write_str("a computed list ended before its count"),
            Self::NullNotAllowed => f.write_str("null not allowed in this version"),
            Self::UnsupportedVersion { api_key, version } => {
                write!(f, "unsupported version {version} of API {api_key}")
            }
            Self::InvalidBatch(e) => write!(f, "invalid record batch: {e}"),
        }
    }
}

impl core::error::Error for EncodeError {}
