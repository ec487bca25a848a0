//! Bounds-checked cursor for encoding into a caller-provided buffer.
//!
//! Every `put_*` returns [`EncodeError::BufferTooSmall`] instead of panicking
//! when the buffer is full, so an encoder can be handed any slice. A writer
//! can also be created in *counting* mode ([`Writer::counting`]), where it
//! stores nothing and only measures: encoders use it to learn the exact size
//! of a value before writing it (tagged field sizes, record lengths, frame
//! sizing by the caller), with the same code path as real encoding so the two
//! can never disagree.

use super::error::EncodeError;
use super::varint::{zigzag32, zigzag64};

/// Cursor over a mutable byte buffer (or a byte counter).
#[derive(Debug)]
pub struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
    counting: bool,
}

impl<'b> Writer<'b> {
    /// A writer that fills `buf` from its start.
    pub fn new(buf: &'b mut [u8]) -> Self {
        Writer {
            buf,
            pos: 0,
            counting: false,
        }
    }

    /// A writer that stores nothing and only counts bytes; its
    /// [`position`](Self::position) after encoding is the encoded size.
    pub fn counting() -> Writer<'static> {
        Writer {
            buf: &mut [],
            pos: 0,
            counting: true,
        }
    }

    /// Bytes written so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Whether this writer only counts.
    pub fn is_counting(&self) -> bool {
        self.counting
    }

    /// The bytes written so far (empty for a counting writer).
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.pos).unwrap_or(&[])
    }

    /// Appends raw bytes.
    pub fn put_slice(&mut self, data: &[u8]) -> Result<(), EncodeError> {
        let end = self
            .pos
            .checked_add(data.len())
            .ok_or(EncodeError::BufferTooSmall)?;
        if !self.counting {
            self.buf
                .get_mut(self.pos..end)
                .ok_or(EncodeError::BufferTooSmall)?
                .copy_from_slice(data);
        }
        self.pos = end;
        Ok(())
    }

    /// Overwrites bytes already written at `at` (used to fill in length
    /// prefixes once the length is known). No-op for a counting writer.
    pub fn patch(&mut self, at: usize, data: &[u8]) -> Result<(), EncodeError> {
        if self.counting {
            return Ok(());
        }
        let end = at
            .checked_add(data.len())
            .ok_or(EncodeError::BufferTooSmall)?;
        if end > self.pos {
            return Err(EncodeError::BufferTooSmall);
        }
        self.buf
            .get_mut(at..end)
            .ok_or(EncodeError::BufferTooSmall)?
            .copy_from_slice(data);
        Ok(())
    }

    /// Appends one byte.
    pub fn put_u8(&mut self, v: u8) -> Result<(), EncodeError> {
        self.put_slice(&[v])
    }
    /// Appends a signed byte.
    pub fn put_i8(&mut self, v: i8) -> Result<(), EncodeError> {
        self.put_slice(&v.to_be_bytes())
    }
    /// Appends a big-endian `int16`.
    pub fn put_i16(&mut self, v: i16) -> Result<(), EncodeError> {
        self.put_slice(&v.to_be_bytes())
    }
    /// Appends a big-endian `int32`.
    pub fn put_i32(&mut self, v: i32) -> Result<(), EncodeError> {
        self.put_slice(&v.to_be_bytes())
    }
    /// Appends a big-endian `uint32`.
    pub fn put_u32(&mut self, v: u32) -> Result<(), EncodeError> {
        self.put_slice(&v.to_be_bytes())
    }
    /// Appends a big-endian `int64`.
    pub fn put_i64(&mut self, v: i64) -> Result<(), EncodeError> {
        self.put_slice(&v.to_be_bytes())
    }
    /// Appends a boolean as one byte, 0 or 1.
    pub fn put_bool(&mut self, v: bool) -> Result<(), EncodeError> {
        self.put_u8(u8::from(v))
    }
    /// Appends a 16-byte UUID.
    pub fn put_uuid(&mut self, v: &[u8; 16]) -> Result<(), EncodeError> {
        self.put_slice(v)
    }

    /// Appends an unsigned 64-bit varint (LEB128).
    pub fn put_unsigned_varlong(&mut self, mut v: u64) -> Result<(), EncodeError> {
        while v >= 0x80 {
            self.put_u8((v as u8 & 0x7f) | 0x80)?;
            v >>= 7;
        }
        self.put_u8(v as u8)
    }
    /// Appends an unsigned varint (LEB128), as used by compact lengths.
    pub fn put_unsigned_varint(&mut self, v: u32) -> Result<(), EncodeError> {
        self.put_unsigned_varlong(u64::from(v))
    }
    /// Appends a zigzag varint, as used inside records.
    pub fn put_varint(&mut self, v: i32) -> Result<(), EncodeError> {
        self.put_unsigned_varint(zigzag32(v))
    }
    /// Appends a zigzag varlong, as used inside records.
    pub fn put_varlong(&mut self, v: i64) -> Result<(), EncodeError> {
        self.put_unsigned_varlong(zigzag64(v))
    }

    /// Appends a length prefix: `int16` for classic strings, `int32` for
    /// classic bytes/arrays (selected by `wide`), or `len + 1` as an unsigned
    /// varint in compact form. `None` writes the null marker.
    fn put_len(
        &mut self,
        len: Option<usize>,
        compact: bool,
        wide: bool,
    ) -> Result<(), EncodeError> {
        if compact {
            let v = match len {
                None => 0,
                Some(n) => u32::try_from(n)
                    .ok()
                    .and_then(|n| n.checked_add(1))
                    .ok_or(EncodeError::ValueTooLarge)?,
            };
            self.put_unsigned_varint(v)
        } else if wide {
            let v = match len {
                None => -1,
                Some(n) => i32::try_from(n).map_err(|_| EncodeError::ValueTooLarge)?,
            };
            self.put_i32(v)
        } else {
            let v = match len {
                None => -1,
                Some(n) => i16::try_from(n).map_err(|_| EncodeError::ValueTooLarge)?,
            };
            self.put_i16(v)
        }
    }

    /// Appends a non-null string, compact (varint length) or classic (`int16`).
    pub fn put_string(&mut self, s: &str, compact: bool) -> Result<(), EncodeError> {
        self.put_len(Some(s.len()), compact, false)?;
        self.put_slice(s.as_bytes())
    }
    /// Appends a nullable string.
    pub fn put_nullable_string(
        &mut self,
        s: Option<&str>,
        compact: bool,
    ) -> Result<(), EncodeError> {
        self.put_len(s.map(str::len), compact, false)?;
        self.put_slice(s.unwrap_or("").as_bytes())
    }
    /// Appends a non-null byte array, compact or classic (`int32` length).
    pub fn put_bytes(&mut self, b: &[u8], compact: bool) -> Result<(), EncodeError> {
        self.put_len(Some(b.len()), compact, true)?;
        self.put_slice(b)
    }
    /// Appends a nullable byte array.
    pub fn put_nullable_bytes(
        &mut self,
        b: Option<&[u8]>,
        compact: bool,
    ) -> Result<(), EncodeError> {
        self.put_len(b.map(<[u8]>::len), compact, true)?;
        self.put_slice(b.unwrap_or(&[]))
    }
    /// Appends an array length prefix (`None` = null array).
    pub fn put_array_len(&mut self, len: Option<usize>, compact: bool) -> Result<(), EncodeError> {
        self.put_len(len, compact, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_small_is_an_error() {
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf);
        assert_eq!(w.put_i32(1), Err(EncodeError::BufferTooSmall));
        assert_eq!(w.position(), 0);
        w.put_i16(0x0102).unwrap();
        assert_eq!(w.written(), &[1, 2]);
        assert_eq!(w.patch(1, &[9, 9]), Err(EncodeError::BufferTooSmall));
    }

    #[test]
    fn counting_counts() {
        let mut w = Writer::counting();
        w.put_string("abc", true).unwrap();
        w.put_nullable_bytes(None, false).unwrap();
        w.put_unsigned_varint(300).unwrap();
        assert_eq!(w.position(), 4 + 4 + 2);
        assert!(w.written().is_empty());
    }

    #[test]
    fn varints() {
        let mut buf = [0u8; 16];
        let mut w = Writer::new(&mut buf);
        w.put_unsigned_varint(300).unwrap();
        w.put_varint(-1).unwrap();
        assert_eq!(w.written(), &[0xac, 0x02, 0x01]);
    }
}
