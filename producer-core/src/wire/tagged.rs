//! Tagged fields of flexible versions (KIP-482).
//!
//! Flexible message versions end every structure with a tag buffer: a varint
//! count, then `(tag, size, data)` triples in strictly ascending tag order.
//! Decoders hand known tags to the structure and skip unknown ones (that is
//! how the protocol stays forward compatible); encoders only write a tagged
//! field when its value differs from the default, as the Java client does,
//! so encodings are byte-identical to other implementations.

use super::error::{DecodeError, EncodeError};
use super::reader::Reader;
use super::writer::Writer;

/// Reads a tag buffer, calling `known(tag, reader)` for each field; `known`
/// returns `Ok(false)` for tags it does not know, which are skipped. A known
/// field must consume exactly its declared size.
pub fn read_tagged_fields<'a>(
    r: &mut Reader<'a>,
    mut known: impl FnMut(u32, &mut Reader<'a>) -> Result<bool, DecodeError>,
) -> Result<(), DecodeError> {
    let count = r.get_unsigned_varint()?;
    let mut last: Option<u32> = None;
    for _ in 0..count {
        let tag = r.get_unsigned_varint()?;
        if last.is_some_and(|l| tag <= l) {
            return Err(DecodeError::InvalidTaggedField);
        }
        last = Some(tag);
        let size =
            usize::try_from(r.get_unsigned_varint()?).map_err(|_| DecodeError::LengthOutOfRange)?;
        if size > r.remaining() {
            return Err(DecodeError::LengthOutOfRange);
        }
        let mut field = Reader::new(r.take(size)?);
        if known(tag, &mut field)? && field.remaining() != 0 {
            return Err(DecodeError::InvalidTaggedField);
        }
    }
    Ok(())
}

/// Skips a tag buffer whose fields are all unknown to the caller.
pub fn skip_tagged_fields(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    read_tagged_fields(r, |_, _| Ok(false))
}

/// Writes an empty tag buffer.
pub fn write_empty_tagged_fields(w: &mut Writer<'_>) -> Result<(), EncodeError> {
    w.put_unsigned_varint(0)
}

/// Writes one tagged field: tag, exact size (measured with a counting
/// writer), then the data produced by `body`.
pub fn write_tagged_field(
    w: &mut Writer<'_>,
    tag: u32,
    body: impl Fn(&mut Writer<'_>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let mut counter = Writer::counting();
    body(&mut counter)?;
    let size = u32::try_from(counter.position()).map_err(|_| EncodeError::ValueTooLarge)?;
    w.put_unsigned_varint(tag)?;
    w.put_unsigned_varint(size)?;
    body(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_tags_are_skipped_and_order_enforced() {
        let mut r = Reader::new(&[2, 0, 1, 0xaa, 5, 2, 0xbb, 0xcc, 0x77]);
        skip_tagged_fields(&mut r).unwrap();
        assert_eq!(r.rest(), &[0x77]);
        let mut r = Reader::new(&[2, 5, 0, 5, 0]);
        assert_eq!(
            skip_tagged_fields(&mut r),
            Err(DecodeError::InvalidTaggedField)
        );
        let mut r = Reader::new(&[1, 0, 9]);
        assert_eq!(
            skip_tagged_fields(&mut r),
            Err(DecodeError::LengthOutOfRange)
        );
    }

    #[test]
    fn known_tag_must_consume_its_size() {
        let mut r = Reader::new(&[1, 0, 2, 0xaa, 0xbb]);
        let res = read_tagged_fields(&mut r, |_, f| f.get_u8().map(|_| true));
        assert_eq!(res, Err(DecodeError::InvalidTaggedField));
    }
}
