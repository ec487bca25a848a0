//! Record batch v2 (magic 2): building, stamping and reading.
//!
//! Layout (offsets in bytes):
//!
//! ```text
//!  0 base offset        i64   set by the broker
//!  8 batch length       i32   bytes after this field
//! 12 leader epoch       i32   set by the broker
//! 16 magic              i8    2
//! 17 crc                u32   CRC-32C of bytes 21..end
//! 21 attributes         i16
//! 23 last offset delta  i32
//! 27 base timestamp     i64
//! 35 max timestamp      i64
//! 43 producer id        i64
//! 51 producer epoch     i16
//! 53 base sequence      i32
//! 57 record count       i32
//! 61 records...
//! ```
//!
//! The producer builds a batch once, in place, with [`BatchBuilder`], while
//! the batch accumulates in its buffer; only when sending does it know the
//! producer id, epoch and base sequence, and after an epoch bump it must
//! send the same records again under the new epoch. [`stamp`] writes those
//! three fields into the finished batch and recomputes the CRC, without
//! re-encoding or copying the records.

use super::compression::Attributes;
use super::crc::crc32c;
use super::error::{DecodeError, EncodeError};
use super::list::{Item, List};
use super::reader::Reader;
use super::record::{Record, RecordHeader};
use super::writer::Writer;

/// Size of the batch header, before the first record.
pub const RECORD_BATCH_OVERHEAD: usize = 61;
/// Bytes before the batch length field's coverage begins (base offset + length).
pub const LOG_OVERHEAD: usize = 12;
/// The only supported magic.
pub const MAGIC: i8 = 2;
/// "No producer id / epoch / sequence" value (-1) of a batch not yet stamped.
pub const NO_PRODUCER_ID: i64 = -1;

const OFF_BASE_OFFSET: usize = 0;
const OFF_LENGTH: usize = 8;
const OFF_LEADER_EPOCH: usize = 12;
const OFF_MAGIC: usize = 16;
const OFF_CRC: usize = 17;
const OFF_ATTRIBUTES: usize = 21;
const OFF_PRODUCER_ID: usize = 43;

/// Fixed fields of a record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBatchHeader {
    /// Offset of the first record (assigned by the broker; 0 when sent).
    pub base_offset: i64,
    /// Bytes after the length field.
    pub batch_length: i32,
    /// Partition leader epoch (assigned by the broker; -1 when sent).
    pub partition_leader_epoch: i32,
    /// Format version, always [`MAGIC`] here.
    pub magic: i8,
    /// Stored CRC-32C.
    pub crc: u32,
    /// Compression, timestamp type and flags.
    pub attributes: Attributes,
    /// Offset delta of the last record.
    pub last_offset_delta: i32,
    /// Timestamp the record deltas are relative to.
    pub base_timestamp: i64,
    /// Largest record timestamp.
    pub max_timestamp: i64,
    /// Producer id (-1 if not idempotent or not yet stamped).
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence number of the first record.
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: i32,
}

impl RecordBatchHeader {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let base_offset = r.get_i64()?;
        let batch_length = r.get_i32()?;
        let partition_leader_epoch = r.get_i32()?;
        let magic = r.get_i8()?;
        if magic != MAGIC {
            return Err(DecodeError::UnsupportedMagic(magic));
        }
        Ok(RecordBatchHeader {
            base_offset,
            batch_length,
            partition_leader_epoch,
            magic,
            crc: r.get_u32()?,
            attributes: Attributes(r.get_i16()?),
            last_offset_delta: r.get_i32()?,
            base_timestamp: r.get_i64()?,
            max_timestamp: r.get_i64()?,
            producer_id: r.get_i64()?,
            producer_epoch: r.get_i16()?,
            base_sequence: r.get_i32()?,
            record_count: r.get_i32()?,
        })
    }
}

/// Total size (`LOG_OVERHEAD + batch length`) of the batch at the start of
/// `bytes`, checked against the slice; the magic byte is checked too.
fn batch_size(bytes: &[u8]) -> Result<usize, DecodeError> {
    let mut r = Reader::new(bytes);
    r.take(OFF_LENGTH)?;
    let len = r.get_i32()?;
    let len = usize::try_from(len).map_err(|_| DecodeError::LengthOutOfRange)?;
    if len < RECORD_BATCH_OVERHEAD - LOG_OVERHEAD {
        return Err(DecodeError::LengthOutOfRange);
    }
    let total = len
        .checked_add(LOG_OVERHEAD)
        .ok_or(DecodeError::LengthOutOfRange)?;
    if total > bytes.len() {
        return Err(DecodeError::Truncated);
    }
    let magic = bytes
        .get(OFF_MAGIC)
        .map(|m| m.cast_signed())
        .ok_or(DecodeError::Truncated)?;
    if magic != MAGIC {
        return Err(DecodeError::UnsupportedMagic(magic));
    }
    Ok(total)
}

/// A decoded record batch, borrowing its input; its CRC was verified.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordBatch<'a> {
    /// Fixed fields.
    pub header: RecordBatchHeader,
    /// The records, validated.
    pub records: List<'a, Record<'a>>,
}

impl<'a> RecordBatch<'a> {
    /// Decodes the batch at the start of `input`, verifying magic, length,
    /// CRC, compression and record count. Returns the batch and the number of
    /// bytes it occupied (the input may hold further batches).
    pub fn decode(input: &'a [u8]) -> Result<(Self, usize), DecodeError> {
        let size = batch_size(input)?;
        let bytes = input.get(..size).ok_or(DecodeError::Truncated)?;
        let mut r = Reader::new(bytes);
        let header = RecordBatchHeader::decode(&mut r)?;
        let computed = crc32c(bytes.get(OFF_ATTRIBUTES..).unwrap_or(&[]));
        if computed != header.crc {
            return Err(DecodeError::BadCrc {
                stored: header.crc,
                computed,
            });
        }
        header.attributes.compression()?;
        let count =
            usize::try_from(header.record_count).map_err(|_| DecodeError::LengthOutOfRange)?;
        if count > r.remaining() {
            return Err(DecodeError::RecordCountMismatch);
        }
        let records = List::decode_counted(&mut r, count, 0)?;
        if r.remaining() != 0 {
            return Err(DecodeError::RecordCountMismatch);
        }
        Ok((RecordBatch { header, records }, size))
    }

    /// Absolute offset of a record of this batch.
    pub fn offset_of(&self, record: &Record<'_>) -> i64 {
        self.header
            .base_offset
            .wrapping_add(i64::from(record.offset_delta))
    }

    /// Absolute timestamp of a record of this batch.
    pub fn timestamp_of(&self, record: &Record<'_>) -> i64 {
        self.header
            .base_timestamp
            .wrapping_add(record.timestamp_delta)
    }
}

/// Iterator over the batches of a `records` field (e.g. of a produce
/// partition). Stops after the first error, which it yields.
#[derive(Debug, Clone)]
pub struct RecordBatches<'a> {
    rest: &'a [u8],
}

impl<'a> RecordBatches<'a> {
    /// Batches in `records`.
    pub fn new(records: &'a [u8]) -> Self {
        RecordBatches { rest: records }
    }
}

impl<'a> Iterator for RecordBatches<'a> {
    type Item = Result<RecordBatch<'a>, DecodeError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match RecordBatch::decode(self.rest) {
            Ok((batch, used)) => {
                self.rest = self.rest.get(used..).unwrap_or(&[]);
                Some(Ok(batch))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Builds a record batch in place in a caller buffer.
///
/// Records are encoded directly at their final position; the header is
/// filled in by [`finish`](Self::finish). The producer id, epoch and base
/// sequence are left at -1 for [`stamp`] to set at send time.
#[derive(Debug)]
pub struct BatchBuilder<'b> {
    buf: &'b mut [u8],
    len: usize,
    count: i32,
    attributes: Attributes,
    base_timestamp: i64,
    max_timestamp: i64,
}

/// A batch under construction, detached from its buffer: what an accumulator keeps between
/// appends while it owns the buffer itself ([`BatchBuilder::suspend`] and
/// [`BatchBuilder::resume`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OpenBatch {
    len: usize,
    count: i32,
    attributes: Attributes,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl OpenBatch {
    /// Bytes of the batch so far, header included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no record was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Records appended so far.
    pub fn record_count(&self) -> i32 {
        self.count
    }
}

impl<'b> BatchBuilder<'b> {
    /// Starts a batch in `buf`; record timestamps are stored relative to
    /// `base_timestamp` (usually the first record's). Fails if `buf` cannot
    /// hold the batch header.
    pub fn new(
        buf: &'b mut [u8],
        attributes: Attributes,
        base_timestamp: i64,
    ) -> Result<Self, EncodeError> {
        if buf.len() < RECORD_BATCH_OVERHEAD {
            return Err(EncodeError::BufferTooSmall);
        }
        Ok(BatchBuilder {
            buf,
            len: RECORD_BATCH_OVERHEAD,
            count: 0,
            attributes,
            base_timestamp,
            max_timestamp: i64::MIN,
        })
    }

    fn record<'r>(
        &self,
        timestamp: i64,
        key: Option<&'r [u8]>,
        value: Option<&'r [u8]>,
        headers: &'r [RecordHeader<'r>],
    ) -> Record<'r> {
        Record {
            attributes: 0,
            timestamp_delta: timestamp.wrapping_sub(self.base_timestamp),
            offset_delta: self.count,
            key,
            value,
            headers: List::from_slice(headers),
        }
    }

    /// Detaches the batch from its buffer, to be [resumed](Self::resume) later with the same
    /// buffer.
    pub fn suspend(self) -> OpenBatch {
        OpenBatch {
            len: self.len,
            count: self.count,
            attributes: self.attributes,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
        }
    }

    /// Reattaches a suspended batch to its buffer. The buffer must hold what the batch was
    /// suspended with (anything else encodes garbage, never panics); one shorter than the
    /// batch so far is an error.
    pub fn resume(buf: &'b mut [u8], open: OpenBatch) -> Result<Self, EncodeError> {
        if buf.len() < open.len || open.len < RECORD_BATCH_OVERHEAD {
            return Err(EncodeError::BufferTooSmall);
        }
        Ok(BatchBuilder {
            buf,
            len: open.len,
            count: open.count,
            attributes: open.attributes,
            base_timestamp: open.base_timestamp,
            max_timestamp: open.max_timestamp,
        })
    }

    /// Exact bytes the next record would add to the batch, so the caller
    /// can decide to close the batch before appending.
    pub fn record_len(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader<'_>],
    ) -> usize {
        self.record(timestamp, key, value, headers).encoded_len()
    }

    /// Appends a record. On error (buffer full) the batch is unchanged.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[RecordHeader<'_>],
    ) -> Result<(), EncodeError> {
        let next_count = self
            .count
            .checked_add(1)
            .ok_or(EncodeError::ValueTooLarge)?;
        let record = self.record(timestamp, key, value, headers);
        let size = record.encoded_len();
        let end = self
            .len
            .checked_add(size)
            .ok_or(EncodeError::BufferTooSmall)?;
        // The batch length field is an i32.
        i32::try_from(end - LOG_OVERHEAD).map_err(|_| EncodeError::ValueTooLarge)?;
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(EncodeError::BufferTooSmall)?;
        let mut w = Writer::new(dst);
        record.encode(&mut w, 0)?;
        self.len = end;
        self.count = next_count;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        Ok(())
    }

    /// Bytes of the batch so far, header included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no record was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Records appended so far.
    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// Buffer space left for records.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.len)
    }

    /// Writes the header and CRC; returns the finished batch, a prefix of
    /// the buffer. Producer id, epoch and base sequence are -1 until
    /// [`stamp`]ed. A batch without records is well-formed but brokers
    /// reject it, so callers should not send one.
    pub fn finish(self) -> Result<&'b mut [u8], EncodeError> {
        let batch = self.finish_for_stamp()?;
        update_crc(batch)?;
        Ok(batch)
    }

    /// Like [`finish`](Self::finish), but leaves the CRC to [`stamp`], which must run before
    /// the batch is sent: an idempotent producer stamps every batch at send time anyway, and
    /// the CRC is most of the cost of encoding a batch on a microcontroller, so computing it
    /// once instead of twice halves that cost. Until stamped, the CRC field holds 0.
    pub fn finish_for_stamp(self) -> Result<&'b mut [u8], EncodeError> {
        let len = self.len;
        let batch_length =
            i32::try_from(len - LOG_OVERHEAD).map_err(|_| EncodeError::ValueTooLarge)?;
        let batch = self.buf.get_mut(..len).ok_or(EncodeError::BufferTooSmall)?;
        {
            let mut w = Writer::new(batch);
            w.put_i64(0)?; // base offset
            w.put_i32(batch_length)?;
            w.put_i32(-1)?; // partition leader epoch
            w.put_i8(MAGIC)?;
            w.put_u32(0)?; // CRC: written by `finish` or `stamp`
            w.put_i16(self.attributes.0)?;
            w.put_i32(self.count.wrapping_sub(1))?;
            w.put_i64(self.base_timestamp)?;
            w.put_i64(if self.count == 0 {
                self.base_timestamp
            } else {
                self.max_timestamp
            })?;
            w.put_i64(NO_PRODUCER_ID)?;
            w.put_i16(-1)?;
            w.put_i32(-1)?;
            w.put_i32(self.count)?;
        }
        Ok(batch)
    }
}

fn put_at(batch: &mut [u8], at: usize, data: &[u8]) -> Result<(), EncodeError> {
    let end = at
        .checked_add(data.len())
        .ok_or(EncodeError::BufferTooSmall)?;
    batch
        .get_mut(at..end)
        .ok_or(EncodeError::BufferTooSmall)?
        .copy_from_slice(data);
    Ok(())
}

fn update_crc(batch: &mut [u8]) -> Result<(), EncodeError> {
    let crc = crc32c(
        batch
            .get(OFF_ATTRIBUTES..)
            .ok_or(EncodeError::BufferTooSmall)?,
    );
    put_at(batch, OFF_CRC, &crc.to_be_bytes())
}

fn check_batch(batch: &[u8]) -> Result<(), EncodeError> {
    let size = batch_size(batch).map_err(EncodeError::InvalidBatch)?;
    if size != batch.len() {
        return Err(EncodeError::InvalidBatch(DecodeError::TrailingBytes));
    }
    Ok(())
}

/// Sets producer id, epoch and base sequence of a finished batch (exactly
/// one batch, as returned by [`BatchBuilder::finish`]) and recomputes its
/// CRC. Called at send time, and again after an epoch bump or sequence
/// reassignment; the records are not touched.
pub fn stamp(
    batch: &mut [u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Result<(), EncodeError> {
    check_batch(batch)?;
    let mut fields = [0u8; 14];
    {
        let mut w = Writer::new(&mut fields);
        w.put_i64(producer_id)?;
        w.put_i16(producer_epoch)?;
        w.put_i32(base_sequence)?;
    }
    put_at(batch, OFF_PRODUCER_ID, &fields)?;
    update_crc(batch)
}

/// The fixed fields of exactly one batch (as [`stamp`] takes it), without checking its CRC:
/// for a batch read back from the producer's own storage, which may not be stamped yet.
pub fn header_of(batch: &[u8]) -> Result<RecordBatchHeader, DecodeError> {
    let size = batch_size(batch)?;
    if size != batch.len() {
        return Err(DecodeError::TrailingBytes);
    }
    RecordBatchHeader::decode(&mut Reader::new(batch))
}

/// Sets the base offset of a batch (a broker does this on append). The
/// field is outside the CRC, so no recomputation is needed.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), EncodeError> {
    check_batch(batch)?;
    put_at(batch, OFF_BASE_OFFSET, &base_offset.to_be_bytes())
}

/// Sets the partition leader epoch of a batch (a broker does this on
/// append; outside the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), EncodeError> {
    check_batch(batch)?;
    put_at(batch, OFF_LEADER_EPOCH, &epoch.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::compression::{Compression, TimestampType};

    fn attrs() -> Attributes {
        Attributes::new(Compression::None, TimestampType::CreateTime, false)
    }

    #[test]
    fn finishing_for_stamp_then_stamping_equals_finishing_then_stamping() {
        let hdrs = [RecordHeader {
            key: "h",
            value: Some(b"v"),
        }];
        fn build<'b>(buf: &'b mut [u8; 256], hdrs: &[RecordHeader<'_>]) -> BatchBuilder<'b> {
            let mut b = BatchBuilder::new(buf, attrs(), 7).unwrap();
            b.append(7, Some(b"k"), Some(b"one"), hdrs).unwrap();
            b.append(9, None, Some(b"two"), &[]).unwrap();
            b
        }
        let (mut one, mut two) = ([0u8; 256], [0u8; 256]);
        let a = build(&mut one, &hdrs).finish().unwrap();
        stamp(a, 42, 3, 1000).unwrap();
        let b = build(&mut two, &hdrs).finish_for_stamp().unwrap();
        stamp(b, 42, 3, 1000).unwrap();
        assert_eq!(a, b);
        let (decoded, _) = RecordBatch::decode(b).unwrap();
        assert_eq!(decoded.header.base_sequence, 1000);
    }

    #[test]
    fn suspend_and_resume_give_the_same_batch() {
        let hdrs: [RecordHeader<'_>; 0] = [];
        let mut one = [0u8; 256];
        let mut b = BatchBuilder::new(&mut one, attrs(), 10).unwrap();
        b.append(10, Some(b"a"), Some(b"1"), &hdrs).unwrap();
        b.append(12, None, Some(b"2"), &hdrs).unwrap();
        let whole = b.finish().unwrap().to_vec();

        let mut two = [0u8; 256];
        let mut b = BatchBuilder::new(&mut two, attrs(), 10).unwrap();
        b.append(10, Some(b"a"), Some(b"1"), &hdrs).unwrap();
        let open = b.suspend();
        assert_eq!(open.record_count(), 1);
        let mut b = BatchBuilder::resume(&mut two, open).unwrap();
        b.append(12, None, Some(b"2"), &hdrs).unwrap();
        assert_eq!(b.finish().unwrap(), &whole[..]);
        assert_eq!(
            BatchBuilder::resume(&mut [0u8; 8], open).err(),
            Some(EncodeError::BufferTooSmall)
        );
    }

    #[test]
    fn build_stamp_decode() {
        let mut buf = [0u8; 512];
        let mut b = BatchBuilder::new(&mut buf, attrs(), 1_000).unwrap();
        let hdrs = [RecordHeader {
            key: "h",
            value: Some(b"v"),
        }];
        let predicted = b.record_len(1_005, Some(b"k"), Some(b"value"), &hdrs);
        let before = b.len();
        b.append(1_005, Some(b"k"), Some(b"value"), &hdrs).unwrap();
        assert_eq!(b.len() - before, predicted);
        b.append(999, None, None, &[]).unwrap();
        let batch = b.finish().unwrap();
        let (decoded, used) = RecordBatch::decode(batch).unwrap();
        assert_eq!(used, batch.len());
        assert_eq!(decoded.header.producer_id, -1);
        assert_eq!(decoded.header.record_count, 2);
        assert_eq!(decoded.header.last_offset_delta, 1);
        assert_eq!(decoded.header.max_timestamp, 1_005);
        let mut it = decoded.records.iter();
        let recs = [it.next().unwrap(), it.next().unwrap()];
        assert!(it.next().is_none());
        assert_eq!(recs[0].key, Some(&b"k"[..]));
        assert_eq!(decoded.timestamp_of(&recs[0]), 1_005);
        let h = recs[0].headers.iter().next().unwrap();
        assert_eq!((h.key, h.value), ("h", Some(&b"v"[..])));
        assert_eq!(recs[1].value, None);
        assert_eq!(decoded.timestamp_of(&recs[1]), 999);

        stamp(batch, 42, 3, 100).unwrap();
        let (d, _) = RecordBatch::decode(batch).unwrap();
        assert_eq!(
            (
                d.header.producer_id,
                d.header.producer_epoch,
                d.header.base_sequence
            ),
            (42, 3, 100)
        );
        stamp(batch, 42, 4, 0).unwrap();
        set_base_offset(batch, 77).unwrap();
        set_partition_leader_epoch(batch, 5).unwrap();
        let (d, _) = RecordBatch::decode(batch).unwrap();
        assert_eq!((d.header.producer_epoch, d.header.base_sequence), (4, 0));
        assert_eq!(d.offset_of(&d.records.iter().nth(1).unwrap()), 78);

        batch[70] ^= 1;
        assert!(matches!(
            RecordBatch::decode(batch),
            Err(DecodeError::BadCrc { .. })
        ));
    }

    #[test]
    fn full_buffer_leaves_batch_unchanged() {
        let mut buf = [0u8; 70];
        assert_eq!(
            BatchBuilder::new(&mut buf[..60], attrs(), 0).err(),
            Some(EncodeError::BufferTooSmall)
        );
        let mut b = BatchBuilder::new(&mut buf, attrs(), 0).unwrap();
        assert_eq!(
            b.append(0, None, Some(&[0; 20]), &[]),
            Err(EncodeError::BufferTooSmall)
        );
        assert_eq!(b.len(), RECORD_BATCH_OVERHEAD);
        b.append(0, None, Some(b"ab"), &[]).unwrap();
        let batch = b.finish().unwrap();
        assert_eq!(RecordBatch::decode(batch).unwrap().0.records.len(), 1);
        assert!(stamp(&mut buf[..20], 1, 1, 1).is_err());
    }
}
