//! Framing: every Kafka request and response is an `int32` size followed by
//! that many bytes.
//!
//! [`FrameDecoder`] is the one place that handles partial reads: the
//! transport appends received bytes to its buffer and asks the decoder,
//! which either says how many more bytes are needed or returns the complete
//! frame as a slice of that buffer. A size above the caller's maximum is an
//! error value, decided from the 4-byte prefix alone, so a hostile or
//! corrupt peer cannot make the transport buffer (or allocate) unbounded
//! data.

use super::error::{DecodeError, EncodeError};

/// Bytes of the size prefix.
pub const FRAME_PREFIX_LEN: usize = 4;

/// What the bytes received so far amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameStatus<'a> {
    /// Not a complete frame yet: at least this many more bytes are needed.
    NeedMore(usize),
    /// A complete frame.
    Complete {
        /// The frame content, without the size prefix.
        frame: &'a [u8],
        /// Bytes of the input this frame occupied (prefix included); the
        /// transport drops these before looking for the next frame.
        consumed: usize,
    },
}

/// Splits a byte stream into frames, enforcing a maximum frame size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDecoder {
    max_frame_size: u32,
}

impl FrameDecoder {
    /// A decoder accepting frames of at most `max_frame_size` bytes (not
    /// counting the prefix). Size it to the receive buffer.
    pub const fn new(max_frame_size: u32) -> Self {
        FrameDecoder { max_frame_size }
    }

    /// The configured maximum.
    pub const fn max_frame_size(&self) -> u32 {
        self.max_frame_size
    }

    /// Looks at the bytes received so far (starting at a frame boundary).
    ///
    /// Errors: [`DecodeError::LengthOutOfRange`] for a negative size,
    /// [`DecodeError::FrameTooLarge`] above the maximum.
    pub fn decode<'a>(&self, received: &'a [u8]) -> Result<FrameStatus<'a>, DecodeError> {
        let Some(prefix) = received.get(..FRAME_PREFIX_LEN) else {
            return Ok(FrameStatus::NeedMore(FRAME_PREFIX_LEN - received.len()));
        };
        let mut size_bytes = [0u8; FRAME_PREFIX_LEN];
        size_bytes.copy_from_slice(prefix);
        let size = i32::from_be_bytes(size_bytes);
        let size = u32::try_from(size).map_err(|_| DecodeError::LengthOutOfRange)?;
        if size > self.max_frame_size {
            return Err(DecodeError::FrameTooLarge {
                size,
                max: self.max_frame_size,
            });
        }
        let size = usize::try_from(size).map_err(|_| DecodeError::LengthOutOfRange)?;
        let total = size
            .checked_add(FRAME_PREFIX_LEN)
            .ok_or(DecodeError::LengthOutOfRange)?;
        match received.get(FRAME_PREFIX_LEN..total) {
            Some(frame) => Ok(FrameStatus::Complete {
                frame,
                consumed: total,
            }),
            None => Ok(FrameStatus::NeedMore(total - received.len())),
        }
    }
}

/// Writes the size prefix of a frame whose content occupies
/// `buf[4..4 + content_len]`; used by the message encoders after the content
/// is written, since its size is only known then.
pub fn write_frame_prefix(buf: &mut [u8], content_len: usize) -> Result<(), EncodeError> {
    let size = i32::try_from(content_len).map_err(|_| EncodeError::ValueTooLarge)?;
    buf.get_mut(..FRAME_PREFIX_LEN)
        .ok_or(EncodeError::BufferTooSmall)?
        .copy_from_slice(&size.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_reads() {
        let d = FrameDecoder::new(16);
        let stream = [0, 0, 0, 3, 1, 2, 3, 0, 0];
        assert_eq!(d.decode(&stream[..0]), Ok(FrameStatus::NeedMore(4)));
        assert_eq!(d.decode(&stream[..2]), Ok(FrameStatus::NeedMore(2)));
        assert_eq!(d.decode(&stream[..5]), Ok(FrameStatus::NeedMore(2)));
        assert_eq!(
            d.decode(&stream),
            Ok(FrameStatus::Complete {
                frame: &[1, 2, 3],
                consumed: 7
            })
        );
        assert_eq!(d.decode(&stream[7..]), Ok(FrameStatus::NeedMore(2)));
    }

    #[test]
    fn oversized_and_negative() {
        let d = FrameDecoder::new(16);
        assert_eq!(
            d.decode(&[0, 0, 0, 17]),
            Err(DecodeError::FrameTooLarge { size: 17, max: 16 })
        );
        assert_eq!(
            d.decode(&[0xff, 0, 0, 0]),
            Err(DecodeError::LengthOutOfRange)
        );
        assert_eq!(
            FrameDecoder::new(u32::MAX).decode(&[0x7f, 0xff, 0xff, 0xff]),
            Ok(FrameStatus::NeedMore(0x7fff_ffff))
        );
    }
}
