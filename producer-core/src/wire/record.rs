//! A record inside a v2 record batch, and its headers.
//!
//! Records use zigzag varints for every length and for the timestamp and
//! offset deltas (relative to the batch's base timestamp and base offset),
//! which keeps small records small. A record starts with its own length so a
//! reader can skip it.

use super::error::{DecodeError, EncodeError};
use super::list::{Item, List};
use super::reader::Reader;
use super::varint::{varint_len, varlong_len};
use super::writer::Writer;

/// A record header: string key, nullable byte value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader<'a> {
    /// Header key.
    pub key: &'a str,
    /// Header value.
    pub value: Option<&'a [u8]>,
}

fn put_varbytes(w: &mut Writer<'_>, b: Option<&[u8]>) -> Result<(), EncodeError> {
    match b {
        None => w.put_varint(-1),
        Some(b) => {
            w.put_varint(i32::try_from(b.len()).map_err(|_| EncodeError::ValueTooLarge)?)?;
            w.put_slice(b)
        }
    }
}

fn get_varbytes<'a>(r: &mut Reader<'a>) -> Result<Option<&'a [u8]>, DecodeError> {
    match r.get_varint()? {
        -1 => Ok(None),
        n => {
            let n = usize::try_from(n).map_err(|_| DecodeError::LengthOutOfRange)?;
            if n > r.remaining() {
                return Err(DecodeError::LengthOutOfRange);
            }
            r.take(n).map(Some)
        }
    }
}

fn varbytes_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint_len(i32::try_from(b.len()).unwrap_or(i32::MAX)).saturating_add(b.len()),
    }
}

impl<'a> Item<'a> for RecordHeader<'a> {
    fn encode(&self, w: &mut Writer<'_>, _version: i16) -> Result<(), EncodeError> {
        put_varbytes(w, Some(self.key.as_bytes()))?;
        put_varbytes(w, self.value)
    }
    fn decode(r: &mut Reader<'a>, _version: i16) -> Result<Self, DecodeError> {
        let key = get_varbytes(r)?.ok_or(DecodeError::UnexpectedNull)?;
        let key = core::str::from_utf8(key).map_err(|_| DecodeError::InvalidUtf8)?;
        Ok(RecordHeader {
            key,
            value: get_varbytes(r)?,
        })
    }
}

/// A record of a v2 batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record<'a> {
    /// Record attributes (unused by Kafka so far; 0).
    pub attributes: i8,
    /// Timestamp minus the batch base timestamp.
    pub timestamp_delta: i64,
    /// Offset minus the batch base offset (the record's index in the batch).
    pub offset_delta: i32,
    /// Key (null for keyless records).
    pub key: Option<&'a [u8]>,
    /// Value (null is a tombstone).
    pub value: Option<&'a [u8]>,
    /// Headers.
    pub headers: List<'a, RecordHeader<'a>>,
}

impl<'a> Record<'a> {
    /// Bytes of the record after its length prefix.
    pub fn body_len(&self) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|h| varbytes_len(Some(h.key.as_bytes())).saturating_add(varbytes_len(h.value)))
            .fold(0, usize::saturating_add);
        1usize
            .saturating_add(varlong_len(self.timestamp_delta))
            .saturating_add(varint_len(self.offset_delta))
            .saturating_add(varbytes_len(self.key))
            .saturating_add(varbytes_len(self.value))
            .saturating_add(varint_len(
                i32::try_from(self.headers.len()).unwrap_or(i32::MAX),
            ))
            .saturating_add(headers)
    }

    /// Bytes of the whole record, length prefix included: what it adds to a
    /// batch.
    pub fn encoded_len(&self) -> usize {
        let body = self.body_len();
        varint_len(i32::try_from(body).unwrap_or(i32::MAX)).saturating_add(body)
    }
}

impl<'a> Item<'a> for Record<'a> {
    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        let body = i32::try_from(self.body_len()).map_err(|_| EncodeError::ValueTooLarge)?;
        w.put_varint(body)?;
        w.put_i8(self.attributes)?;
        w.put_varlong(self.timestamp_delta)?;
        w.put_varint(self.offset_delta)?;
        put_varbytes(w, self.key)?;
        put_varbytes(w, self.value)?;
        let count = i32::try_from(self.headers.len()).map_err(|_| EncodeError::ValueTooLarge)?;
        w.put_varint(count)?;
        for h in self.headers.iter() {
            h.encode(w, version)?;
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let len = usize::try_from(r.get_varint()?).map_err(|_| DecodeError::LengthOutOfRange)?;
        if len > r.remaining() {
            return Err(DecodeError::LengthOutOfRange);
        }
        let mut body = Reader::new(r.take(len)?);
        let attributes = body.get_i8()?;
        let timestamp_delta = body.get_varlong()?;
        let offset_delta = body.get_varint()?;
        let key = get_varbytes(&mut body)?;
        let value = get_varbytes(&mut body)?;
        let count =
            usize::try_from(body.get_varint()?).map_err(|_| DecodeError::LengthOutOfRange)?;
        if count > body.remaining() {
            return Err(DecodeError::LengthOutOfRange);
        }
        let headers = List::decode_counted(&mut body, count, version)?;
        body.expect_end()?;
        Ok(Record {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            headers,
        })
    }
}
