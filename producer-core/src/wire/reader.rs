//! Bounds-checked cursor for decoding borrowed input.
//!
//! Every `get_*` returns a [`DecodeError`] instead of panicking, and strings
//! and byte arrays are returned as slices of the input (no copy, no
//! allocation). Length prefixes are checked against the bytes that remain
//! before anything is taken, so a hostile length can never make a decoder
//! walk past the input or loop for long.

use super::error::DecodeError;
use super::varint::{unzigzag32, unzigzag64};

/// Cursor over an input byte slice.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The unconsumed input.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// The input consumed between `start` (an earlier [`position`](Self::position)) and now.
    pub fn since(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or(&[])
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless all input was consumed.
    pub fn expect_end(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let out = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.take(N)?.try_into().map_err(|_| DecodeError::Truncated)
    }

    /// Reads one byte.
    pub fn get_u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.take_array()?))
    }
    /// Reads a signed byte.
    pub fn get_i8(&mut self) -> Result<i8, DecodeError> {
        Ok(i8::from_be_bytes(self.take_array()?))
    }
    /// Reads a big-endian `int16`.
    pub fn get_i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.take_array()?))
    }
    /// Reads a big-endian `int32`.
    pub fn get_i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.take_array()?))
    }
    /// Reads a big-endian `uint32`.
    pub fn get_u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take_array()?))
    }
    /// Reads a big-endian `int64`.
    pub fn get_i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.take_array()?))
    }
    /// Reads a boolean; any non-zero byte is true, as in the Java client.
    pub fn get_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.get_u8()? != 0)
    }
    /// Reads a 16-byte UUID.
    pub fn get_uuid(&mut self) -> Result<[u8; 16], DecodeError> {
        self.take_array()
    }

    /// Reads an unsigned LEB128 varint of at most `max_len` bytes whose value
    /// fits in `bits` bits.
    fn get_leb128(&mut self, max_len: usize, bits: u32) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..max_len {
            let b = self.get_u8()?;
            let shift = 7 * i as u32;
            let chunk = u64::from(b & 0x7f);
            // Reject bits beyond the type's width in the last byte.
            if shift + 7 > bits && (chunk >> (bits - shift)) != 0 {
                return Err(DecodeError::InvalidVarint);
            }
            value |= chunk << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::InvalidVarint)
    }

    /// Reads an unsigned 32-bit varint.
    pub fn get_unsigned_varint(&mut self) -> Result<u32, DecodeError> {
        let v = self.get_leb128(5, 32)?;
        u32::try_from(v).map_err(|_| DecodeError::InvalidVarint)
    }
    /// Reads an unsigned 64-bit varint.
    pub fn get_unsigned_varlong(&mut self) -> Result<u64, DecodeError> {
        self.get_leb128(10, 64)
    }
    /// Reads a zigzag varint.
    pub fn get_varint(&mut self) -> Result<i32, DecodeError> {
        Ok(unzigzag32(self.get_unsigned_varint()?))
    }
    /// Reads a zigzag varlong.
    pub fn get_varlong(&mut self) -> Result<i64, DecodeError> {
        Ok(unzigzag64(self.get_unsigned_varlong()?))
    }

    /// Reads a length prefix (see the writer); `None` is the null marker.
    /// The length is checked against the remaining input.
    fn get_len(&mut self, compact: bool, wide: bool) -> Result<Option<usize>, DecodeError> {
        let len: i64 = if compact {
            i64::from(self.get_unsigned_varint()?) - 1
        } else if wide {
            i64::from(self.get_i32()?)
        } else {
            i64::from(self.get_i16()?)
        };
        match len {
            -1 => Ok(None),
            n if n < 0 => Err(DecodeError::LengthOutOfRange),
            n => {
                let n = usize::try_from(n).map_err(|_| DecodeError::LengthOutOfRange)?;
                if n > self.remaining() {
                    Err(DecodeError::LengthOutOfRange)
                } else {
                    Ok(Some(n))
                }
            }
        }
    }

    /// Reads a nullable string.
    pub fn get_nullable_string(&mut self, compact: bool) -> Result<Option<&'a str>, DecodeError> {
        match self.get_len(compact, false)? {
            None => Ok(None),
            Some(n) => core::str::from_utf8(self.take(n)?)
                .map(Some)
                .map_err(|_| DecodeError::InvalidUtf8),
        }
    }
    /// Reads a non-null string.
    pub fn get_string(&mut self, compact: bool) -> Result<&'a str, DecodeError> {
        self.get_nullable_string(compact)?
            .ok_or(DecodeError::UnexpectedNull)
    }
    /// Reads a nullable byte array.
    pub fn get_nullable_bytes(&mut self, compact: bool) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.get_len(compact, true)? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }
    /// Reads a non-null byte array.
    pub fn get_bytes(&mut self, compact: bool) -> Result<&'a [u8], DecodeError> {
        self.get_nullable_bytes(compact)?
            .ok_or(DecodeError::UnexpectedNull)
    }
    /// Reads an array length prefix (`None` = null array). Every array element
    /// this codec knows takes at least one byte, so the count is bounded by
    /// the remaining input.
    pub fn get_array_len(&mut self, compact: bool) -> Result<Option<usize>, DecodeError> {
        self.get_len(compact, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_limits() {
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x0f]).get_unsigned_varint(),
            Ok(u32::MAX)
        );
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x1f]).get_unsigned_varint(),
            Err(DecodeError::InvalidVarint)
        );
        assert_eq!(
            Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]).get_unsigned_varint(),
            Err(DecodeError::InvalidVarint)
        );
        assert_eq!(
            Reader::new(&[0x80]).get_unsigned_varint(),
            Err(DecodeError::Truncated)
        );
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Reader::new(&max).get_unsigned_varlong(), Ok(u64::MAX));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(
            Reader::new(&over).get_unsigned_varlong(),
            Err(DecodeError::InvalidVarint)
        );
        assert_eq!(Reader::new(&[0x01]).get_varint(), Ok(-1));
    }

    #[test]
    fn strings() {
        assert_eq!(Reader::new(&[0, 2, b'h', b'i']).get_string(false), Ok("hi"));
        assert_eq!(Reader::new(&[3, b'h', b'i']).get_string(true), Ok("hi"));
        assert_eq!(Reader::new(&[0]).get_nullable_string(true), Ok(None));
        assert_eq!(
            Reader::new(&[0xff, 0xff]).get_string(false),
            Err(DecodeError::UnexpectedNull)
        );
        assert_eq!(
            Reader::new(&[0, 3, b'h']).get_string(false),
            Err(DecodeError::LengthOutOfRange)
        );
        assert_eq!(
            Reader::new(&[0xff, 0xfe]).get_string(false),
            Err(DecodeError::LengthOutOfRange)
        );
        assert_eq!(
            Reader::new(&[2, 0xff]).get_string(true),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff]).get_nullable_bytes(false),
            Ok(None)
        );
    }
}
