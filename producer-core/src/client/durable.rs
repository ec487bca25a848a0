//! The client's batches mirrored in durable storage, so that a restart neither loses nor
//! duplicates them.
//!
//! The client stays sans-IO: it hands out [`PersistOp`]s (a key and a value, or a tombstone)
//! and the transport writes each to a power-fail-safe key-value store (see the `flash`
//! module, over `sequential-storage`) before confirming it. Two items per batch slot `n`:
//!
//! | key | value | written |
//! |---|---|---|
//! | `B n` | [`BATCH_HEADER`] bytes of header, then the sealed batch | when the batch is sealed |
//! | `M n` | the header, then its stamp, or its outcome | before the stamp goes out; once decided |
//!
//! The order of the writes is what makes a restart safe, and the client keeps it:
//!
//! 1. A batch is stored before it is stamped, and its stamp is stored before any request
//!    carrying it leaves. So a restored batch with a stamp may be in the log, and one without
//!    is certainly not.
//! 2. An outcome is stored before it is handed out, and the items are erased only after: a
//!    restart hands a decided outcome out again rather than resend its batch.
//! 3. When a fence decides or unstamps batches, those writes come before any stamp under the
//!    new identity: a restored stamp is always of the newest identity.
//! 4. `B n` is erased before `M n`, and a slot is reused only once both are gone.
//!
//! At boot, the transport feeds every stored item to [`Client::restore_item`] (the last copy
//! of a key wins) and calls [`Client::finish_restore`]. Batches with a stamp are resent under
//! the same producer id, epoch and sequences, so the broker deduplicates those it already
//! appended; everything else follows under a new producer id.
//!
//! [`Client::restore_item`]: super::Client::restore_item
//! [`Client::finish_restore`]: super::Client::finish_restore

use core::fmt;
use core::time::Duration;

use crate::error_code::ErrorCode;
use crate::state::{
    FatalReason, FenceReason, NotPersistedReason, Outcome, PossiblyPersistedReason, ProducerEpoch,
    ProducerId, Sequence, Stamp,
};
use crate::time::Instant;
use crate::wire::{Reader, Writer};

/// Bytes of a storage key: a kind (`B` batch, `M` meta) and the slot, big-endian.
pub const KEY_LEN: usize = 3;

/// A storage key.
pub type StorageKey = [u8; KEY_LEN];

/// Layout version written first in every value; a store written by another version is
/// refused at restore rather than misread.
pub const FORMAT: u8 = 1;

/// Bytes of the header in front of every stored batch (and of every meta value): format,
/// topic index, CRC-32C of the topic name, partition, records, acceptance order, tag. The
/// client reserves this much in front of each batch in its storage, so a batch is stored
/// straight from there without a copy.
pub const BATCH_HEADER: usize = 1 + 1 + 4 + 4 + 4 + 8 + 8;

/// Bytes of a meta value: the header, a state byte and 14 bytes of stamp or outcome.
pub const META_LEN: usize = BATCH_HEADER + 1 + 14;

const KIND_BATCH: u8 = b'B';
const KIND_META: u8 = b'M';
const META_STAMPED: u8 = 1;
const META_DECIDED: u8 = 2;

/// One write for the durable store: `value` under `key`, or, when `value` is `None`, a
/// tombstone that erases the key. Apply it and confirm with
/// [`Client::on_persisted`](super::Client::on_persisted) before the next; the client moves on
/// only once the write is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PersistOp<'a> {
    /// The key.
    pub key: StorageKey,
    /// The value, or `None` to erase the key.
    pub value: Option<&'a [u8]>,
}

/// How batches read back after a restart are handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RestoreOptions {
    /// Deadline given to every restored batch that is not decided yet (instants do not
    /// survive a restart).
    pub deadline: Instant,
    /// The wall clock now, in ms since the Unix epoch, when the device knows it; with
    /// `producer_state_ttl` it decides whether a stamped batch may still be resent.
    pub now_ms: Option<i64>,
    /// How long after a batch's newest record timestamp the broker is trusted to still know
    /// the producer's sequence state. Kafka forgets an idle producer
    /// `producer.id.expiration.ms` (24 h by default) after the newest timestamp it appended,
    /// and then appends a resend as new data. A stamped batch older than this is reported
    /// `PossiblyPersisted(ProducerStateExpired)` instead of resent. Set it well below the
    /// broker's setting, to cover clock skew. `None` (or no `now_ms`) trusts the broker to
    /// remember forever.
    pub producer_state_ttl: Option<Duration>,
}

/// What [`Client::finish_restore`](super::Client::finish_restore) found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RestoreSummary {
    /// Batches restored in all (`buffered + stamped + decided`).
    pub batches: u32,
    /// Records in them.
    pub records: u32,
    /// Batches that had never been stamped: sent as new.
    pub buffered: u32,
    /// Batches to be resent with their stamp.
    pub stamped: u32,
    /// Batches whose outcome is decided, to be handed out (again): those decided before the
    /// restart, and the expired ones.
    pub decided: u32,
    /// Of the decided, stamped batches given `PossiblyPersisted(ProducerStateExpired)`
    /// rather than resent.
    pub expired: u32,
}

/// Why stored state could not be restored. Nothing was sent; the store is untouched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RestoreError {
    /// The client was not built with `durable` set.
    NotDurable,
    /// Restore must come before anything is sent or received.
    NotFresh,
    /// A key this client never writes.
    UnknownKey,
    /// A value written by another layout version (the first byte).
    Format(u8),
    /// A value too short, or with impossible fields.
    Malformed,
    /// The store holds batch slot `slot`: build the client with `BATCHES` above it.
    Slot {
        /// The slot found.
        slot: u16,
    },
    /// A stored batch of `len` bytes does not fit: raise `batch_bytes` to what it was.
    BatchBytes {
        /// The stored batch's length.
        len: usize,
    },
    /// The store holds batches for topic index `topic`, which is not the same topic (or not
    /// one) in this client: build it with the topic list the store was written with.
    Topic {
        /// The topic index found.
        topic: u8,
    },
    /// More distinct partitions stored than the `PARTITIONS` capacity.
    Partitions,
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::NotDurable => f.write_str("restore needs a client built with durable"),
            RestoreError::NotFresh => {
                f.write_str("restore must come before the client sends or receives anything")
            }
            RestoreError::UnknownKey => {
                f.write_str("the store holds a key this client never writes")
            }
            RestoreError::Format(v) => write!(
                f,
                "the store was written in layout {v}, this build reads {FORMAT}: erase it or use the matching build"
            ),
            RestoreError::Malformed => f.write_str("a stored value is malformed"),
            RestoreError::Slot { slot } => write!(
                f,
                "the store holds batch slot {slot}: raise BATCHES above it"
            ),
            RestoreError::BatchBytes { len } => write!(
                f,
                "a stored batch is {len} bytes: raise batch_bytes to what it was"
            ),
            RestoreError::Topic { topic } => write!(
                f,
                "the store holds batches for topic index {topic}, which is another topic here: \
                 use the topic list the store was written with"
            ),
            RestoreError::Partitions => {
                f.write_str("the store holds more partitions than PARTITIONS: raise it")
            }
        }
    }
}

/// What identifies a batch in storage, captured when it is sealed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BatchInfo {
    pub topic: u8,
    pub topic_crc: u32,
    pub partition: i32,
    pub records: u32,
    pub order: u64,
    pub tag: u64,
}

/// What the meta item of a slot holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum MetaState {
    #[default]
    Absent,
    Stamped(Stamp),
    Decided(Outcome),
}

/// What the store holds for one batch slot, as far as confirmed writes tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Mirror {
    /// `B n` is stored.
    pub batch: bool,
    /// `M n`.
    pub meta: MetaState,
    /// The batch waits for its stamp to be stored before it is sent.
    pub want_stamp: bool,
    /// The batch's identity in storage.
    pub info: BatchInfo,
    /// Read back after a restart.
    pub restored: bool,
}

impl Mirror {
    /// Anything of the slot is in the store.
    pub fn is_stored(&self) -> bool {
        self.batch || self.meta != MetaState::Absent
    }
}

/// A write handed out and not yet confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    StoreBatch(usize),
    StoreMeta(usize, MetaState),
    EraseBatch(usize),
    EraseMeta(usize),
}

pub(crate) fn key(kind_batch: bool, slot: usize) -> StorageKey {
    let slot = slot as u16;
    let [hi, lo] = slot.to_be_bytes();
    [if kind_batch { KIND_BATCH } else { KIND_META }, hi, lo]
}

/// Which item a key names: (is batch, slot).
pub(crate) fn parse_key(key: &[u8]) -> Result<(bool, usize), RestoreError> {
    match key {
        [KIND_BATCH, hi, lo] => Ok((true, usize::from(u16::from_be_bytes([*hi, *lo])))),
        [KIND_META, hi, lo] => Ok((false, usize::from(u16::from_be_bytes([*hi, *lo])))),
        _ => Err(RestoreError::UnknownKey),
    }
}

pub(crate) fn write_header(out: &mut [u8], info: &BatchInfo) -> bool {
    let mut w = Writer::new(out);
    w.put_u8(FORMAT).is_ok()
        && w.put_u8(info.topic).is_ok()
        && w.put_u32(info.topic_crc).is_ok()
        && w.put_i32(info.partition).is_ok()
        && w.put_u32(info.records).is_ok()
        && w.put_i64(info.order as i64).is_ok()
        && w.put_i64(info.tag as i64).is_ok()
}

pub(crate) fn read_header(r: &mut Reader<'_>) -> Result<BatchInfo, RestoreError> {
    let format = r.get_u8().map_err(|_| RestoreError::Malformed)?;
    if format != FORMAT {
        return Err(RestoreError::Format(format));
    }
    let m = |_| RestoreError::Malformed;
    let info = BatchInfo {
        topic: r.get_u8().map_err(m)?,
        topic_crc: r.get_u32().map_err(m)?,
        partition: r.get_i32().map_err(m)?,
        records: r.get_u32().map_err(m)?,
        order: r.get_i64().map_err(m)? as u64,
        tag: r.get_i64().map_err(m)? as u64,
    };
    if info.partition < 0 || info.records == 0 || info.records > i32::MAX as u32 {
        return Err(RestoreError::Malformed);
    }
    Ok(info)
}

/// Encodes a meta value into `out`; returns its length.
pub(crate) fn write_meta(out: &mut [u8; META_LEN], info: &BatchInfo, meta: &MetaState) -> usize {
    if !write_header(out, info) {
        return 0;
    }
    let mut w = Writer::new(&mut out[BATCH_HEADER..]);
    let ok = match meta {
        MetaState::Absent => false,
        MetaState::Stamped(s) => {
            w.put_u8(META_STAMPED).is_ok()
                && w.put_i64(s.producer_id.0).is_ok()
                && w.put_i16(s.epoch.0).is_ok()
                && w.put_i32(s.base_sequence.get()).is_ok()
        }
        MetaState::Decided(o) => w.put_u8(META_DECIDED).is_ok() && write_outcome(&mut w, o),
    };
    if ok { META_LEN } else { 0 }
}

pub(crate) fn read_meta(value: &[u8]) -> Result<(BatchInfo, MetaState), RestoreError> {
    let mut r = Reader::new(value);
    let info = read_header(&mut r)?;
    let m = |_| RestoreError::Malformed;
    let state = match r.get_u8().map_err(m)? {
        META_STAMPED => {
            let producer_id = ProducerId(r.get_i64().map_err(m)?);
            let epoch = ProducerEpoch(r.get_i16().map_err(m)?);
            let base_sequence =
                Sequence::new(r.get_i32().map_err(m)?).ok_or(RestoreError::Malformed)?;
            if producer_id.0 < 0 || epoch.0 < 0 {
                return Err(RestoreError::Malformed);
            }
            MetaState::Stamped(Stamp {
                producer_id,
                epoch,
                base_sequence,
            })
        }
        META_DECIDED => MetaState::Decided(read_outcome(&mut r)?),
        _ => return Err(RestoreError::Malformed),
    };
    Ok((info, state))
}

// Outcomes: kind, reason, detail, error code, offset flag, offset (14 bytes).

fn write_outcome(w: &mut Writer<'_>, o: &Outcome) -> bool {
    let none = ErrorCode::NONE;
    let (kind, reason, detail, code, offset) = match *o {
        Outcome::Persisted { offset } => (1, 0, 0, none, offset),
        Outcome::NotPersisted(r) => match r {
            NotPersistedReason::Deadline => (2, 1, 0, none, None),
            NotPersistedReason::Rejected(c) => (2, 2, 0, c, None),
            NotPersistedReason::ProducerFatal(FatalReason::Broker(c)) => (2, 3, 0, c, None),
            NotPersistedReason::ProducerFatal(FatalReason::Authentication(e)) => {
                (2, 3, 1, auth_code(&e), None)
            }
            NotPersistedReason::ProducerFatal(FatalReason::Tls(f)) => {
                (2, 3, 2, ErrorCode(i16::from(f.code())), None)
            }
        },
        Outcome::PossiblyPersisted(r) => match r {
            PossiblyPersistedReason::Deadline => (3, 1, 0, none, None),
            PossiblyPersistedReason::Fenced(f) => match f {
                FenceReason::DeadlineAfterStamp => (3, 2, 1, none, None),
                FenceReason::Broker(c) => (3, 2, 2, c, None),
                FenceReason::Restarted => (3, 2, 3, none, None),
            },
            PossiblyPersistedReason::Unclassified(c) => (3, 3, 0, c, None),
            PossiblyPersistedReason::ProducerFatal(FatalReason::Broker(c)) => (3, 4, 0, c, None),
            PossiblyPersistedReason::ProducerFatal(FatalReason::Authentication(e)) => {
                (3, 4, 1, auth_code(&e), None)
            }
            PossiblyPersistedReason::ProducerFatal(FatalReason::Tls(f)) => {
                (3, 4, 2, ErrorCode(i16::from(f.code())), None)
            }
            PossiblyPersistedReason::ProducerStateExpired => (3, 5, 0, none, None),
        },
    };
    w.put_u8(kind).is_ok()
        && w.put_u8(reason).is_ok()
        && w.put_u8(detail).is_ok()
        && w.put_i16(code.0).is_ok()
        && w.put_bool(offset.is_some()).is_ok()
        && w.put_i64(offset.unwrap_or(-1)).is_ok()
}

fn read_outcome(r: &mut Reader<'_>) -> Result<Outcome, RestoreError> {
    let m = |_| RestoreError::Malformed;
    let kind = r.get_u8().map_err(m)?;
    let reason = r.get_u8().map_err(m)?;
    let detail = r.get_u8().map_err(m)?;
    let code = ErrorCode(r.get_i16().map_err(m)?);
    let has_offset = r.get_bool().map_err(m)?;
    let offset = r.get_i64().map_err(m)?;
    let outcome = match (kind, reason, detail) {
        (1, _, _) => Outcome::Persisted {
            offset: has_offset.then_some(offset),
        },
        (2, 1, _) => Outcome::NotPersisted(NotPersistedReason::Deadline),
        (2, 2, _) => Outcome::NotPersisted(NotPersistedReason::Rejected(code)),
        (2, 3, 1) => Outcome::NotPersisted(NotPersistedReason::ProducerFatal(
            FatalReason::Authentication(auth_error(code)),
        )),
        (2, 3, 2) => Outcome::NotPersisted(NotPersistedReason::ProducerFatal(FatalReason::Tls(
            tls_failure(code)?,
        ))),
        (2, 3, _) => {
            Outcome::NotPersisted(NotPersistedReason::ProducerFatal(FatalReason::Broker(code)))
        }
        (3, 1, _) => Outcome::PossiblyPersisted(PossiblyPersistedReason::Deadline),
        (3, 2, 1) => Outcome::PossiblyPersisted(PossiblyPersistedReason::Fenced(
            FenceReason::DeadlineAfterStamp,
        )),
        (3, 2, 2) => {
            Outcome::PossiblyPersisted(PossiblyPersistedReason::Fenced(FenceReason::Broker(code)))
        }
        (3, 2, 3) => {
            Outcome::PossiblyPersisted(PossiblyPersistedReason::Fenced(FenceReason::Restarted))
        }
        (3, 3, _) => Outcome::PossiblyPersisted(PossiblyPersistedReason::Unclassified(code)),
        (3, 4, 1) => Outcome::PossiblyPersisted(PossiblyPersistedReason::ProducerFatal(
            FatalReason::Authentication(auth_error(code)),
        )),
        (3, 4, 2) => Outcome::PossiblyPersisted(PossiblyPersistedReason::ProducerFatal(
            FatalReason::Tls(tls_failure(code)?),
        )),
        (3, 4, _) => Outcome::PossiblyPersisted(PossiblyPersistedReason::ProducerFatal(
            FatalReason::Broker(code),
        )),
        (3, 5, _) => Outcome::PossiblyPersisted(PossiblyPersistedReason::ProducerStateExpired),
        _ => return Err(RestoreError::Malformed),
    };
    Ok(outcome)
}

/// An authentication failure as stored: its Kafka error code only (58 when the client, not
/// the broker, refused the exchange), which is all a restored outcome says of it.
fn auth_code(e: &crate::sasl::Error) -> ErrorCode {
    match *e {
        crate::sasl::Error::AuthenticationFailed { error_code } => ErrorCode(error_code),
        _ => ErrorCode::SASL_AUTHENTICATION_FAILED,
    }
}

fn auth_error(code: ErrorCode) -> crate::sasl::Error {
    crate::sasl::Error::AuthenticationFailed { error_code: code.0 }
}

/// A TLS failure as stored: its [`TlsFailure::code`] in the error code's place. A code this
/// build does not know is malformed state, not a guess.
///
/// [`TlsFailure::code`]: crate::tls::TlsFailure::code
fn tls_failure(code: ErrorCode) -> Result<crate::tls::TlsFailure, RestoreError> {
    u8::try_from(code.0)
        .ok()
        .and_then(crate::tls::TlsFailure::from_code)
        .ok_or(RestoreError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::Fixed;

    #[test]
    fn meta_round_trips_every_outcome() {
        let info = BatchInfo {
            topic: 2,
            topic_crc: 0xDEAD_BEEF,
            partition: 7,
            records: 12,
            order: 99,
            tag: u64::MAX,
        };
        let c = ErrorCode(59);
        let outcomes = [
            Outcome::Persisted { offset: Some(42) },
            Outcome::Persisted { offset: None },
            Outcome::NotPersisted(NotPersistedReason::Deadline),
            Outcome::NotPersisted(NotPersistedReason::Rejected(c)),
            Outcome::NotPersisted(NotPersistedReason::ProducerFatal(FatalReason::Broker(c))),
            Outcome::PossiblyPersisted(PossiblyPersistedReason::Deadline),
            Outcome::PossiblyPersisted(PossiblyPersistedReason::Fenced(
                FenceReason::DeadlineAfterStamp,
            )),
            Outcome::PossiblyPersisted(PossiblyPersistedReason::Fenced(FenceReason::Broker(c))),
            Outcome::PossiblyPersisted(PossiblyPersistedReason::Fenced(FenceReason::Restarted)),
            Outcome::PossiblyPersisted(PossiblyPersistedReason::Unclassified(c)),
            Outcome::PossiblyPersisted(PossiblyPersistedReason::ProducerFatal(
                FatalReason::Broker(c),
            )),
            Outcome::PossiblyPersisted(PossiblyPersistedReason::ProducerStateExpired),
            Outcome::NotPersisted(NotPersistedReason::ProducerFatal(
                FatalReason::Authentication(auth_error(ErrorCode(58))),
            )),
            Outcome::PossiblyPersisted(PossiblyPersistedReason::ProducerFatal(
                FatalReason::Authentication(auth_error(ErrorCode(33))),
            )),
        ]
        .into_iter()
        .chain(crate::tls::TlsFailure::ALL.into_iter().flat_map(|f| {
            [
                Outcome::NotPersisted(NotPersistedReason::ProducerFatal(FatalReason::Tls(f))),
                Outcome::PossiblyPersisted(PossiblyPersistedReason::ProducerFatal(
                    FatalReason::Tls(f),
                )),
            ]
        }))
        .collect::<heapless::Vec<_, 64>>();
        let stamp = Stamp {
            producer_id: ProducerId(1234),
            epoch: ProducerEpoch(3),
            base_sequence: Sequence::new(i32::MAX).unwrap(),
        };
        let states = outcomes
            .iter()
            .map(|o| MetaState::Decided(*o))
            .chain([MetaState::Stamped(stamp)]);
        for state in states {
            let mut buf = [0u8; META_LEN];
            let n = write_meta(&mut buf, &info, &state);
            assert_eq!(n, META_LEN);
            assert_eq!(read_meta(&buf[..n]), Ok((info, state)));
            // Every truncation is an error, never a panic.
            for cut in 0..n {
                assert!(read_meta(&buf[..cut]).is_err());
            }
        }
    }

    #[test]
    fn an_unknown_tls_failure_code_is_malformed() {
        let fatal = Outcome::NotPersisted(NotPersistedReason::ProducerFatal(FatalReason::Tls(
            crate::tls::TlsFailure::NotTls,
        )));
        let mut buf = [0u8; 14];
        let mut w = Writer::new(&mut buf);
        assert!(write_outcome(&mut w, &fatal));
        // The error code's place (after kind, reason, detail) holds the failure's code.
        buf[3..5].copy_from_slice(&99i16.to_be_bytes());
        assert_eq!(
            read_outcome(&mut Reader::new(&buf)),
            Err(RestoreError::Malformed)
        );
    }

    #[test]
    fn keys_round_trip_and_unknown_keys_are_refused() {
        assert_eq!(parse_key(&key(true, 300)), Ok((true, 300)));
        assert_eq!(parse_key(&key(false, 0)), Ok((false, 0)));
        assert_eq!(parse_key(b"X\0\0"), Err(RestoreError::UnknownKey));
        assert_eq!(parse_key(b"B\0"), Err(RestoreError::UnknownKey));
    }

    use crate::client::{Client, ClientConfig};
    use crate::state::{BatchState, Identity};
    use crate::wire::{Attributes, BatchBuilder};

    // No allocator here either: fixed storage and heapless vectors, as on a target.
    type TestClient = Client<[u8; 4 * 512], Fixed<1, 4, 4, 2>>;
    type Item = heapless::Vec<u8, 512>;

    fn client() -> TestClient {
        let mut config = ClientConfig::new("t");
        config.batch_bytes = 512;
        config.durable = true;
        Client::new(config, &["127.0.0.1:9092"], &["sensors"], [0u8; 4 * 512]).unwrap()
    }

    /// A stored batch item: header, then an unstamped batch of `records` records with
    /// timestamps from `ts`.
    fn batch_item(info: &BatchInfo, ts: i64) -> Item {
        let mut buf = [0u8; 400];
        let mut b = BatchBuilder::new(&mut buf, Attributes::default(), ts).unwrap();
        for i in 0..info.records {
            b.append(ts + i64::from(i), None, Some(b"21.5"), &[])
                .unwrap();
        }
        let len = b.finish_for_stamp().unwrap().len();
        let mut item = Item::new();
        item.resize(BATCH_HEADER, 0).unwrap();
        assert!(write_header(&mut item, info));
        item.extend_from_slice(&buf[..len]).unwrap();
        item
    }

    fn info(order: u64, tag: u64) -> BatchInfo {
        BatchInfo {
            topic: 0,
            topic_crc: crate::wire::crc32c(b"sensors"),
            partition: 2,
            records: 3,
            order,
            tag,
        }
    }

    fn stamp(base: i32) -> Stamp {
        Stamp {
            producer_id: ProducerId(7),
            epoch: ProducerEpoch(1),
            base_sequence: Sequence::new(base).unwrap(),
        }
    }

    fn options(now_ms: Option<i64>) -> RestoreOptions {
        RestoreOptions {
            deadline: Instant::from_millis(60_000),
            now_ms,
            producer_state_ttl: Some(Duration::from_secs(3600)),
        }
    }

    /// Feeds a stamped batch (slot 1), a buffered one (slot 0, accepted later) and an orphan
    /// meta (slot 3) whose batch was erased after its outcome was handed out.
    fn feed(c: &mut TestClient, ts: i64) {
        let mut meta = [0u8; META_LEN];
        let n = write_meta(&mut meta, &info(5, 100), &MetaState::Stamped(stamp(30)));
        c.restore_item(&key(true, 1), Some(&batch_item(&info(5, 100), ts)))
            .unwrap();
        c.restore_item(&key(false, 1), Some(&meta[..n])).unwrap();
        c.restore_item(&key(true, 0), Some(&batch_item(&info(6, 103), ts)))
            .unwrap();
        let mut orphan = [0u8; META_LEN];
        let n = write_meta(&mut orphan, &info(2, 90), &MetaState::Stamped(stamp(20)));
        c.restore_item(&key(false, 3), Some(&orphan[..n])).unwrap();
        c.restore_item(&key(true, 3), None).unwrap();
    }

    #[test]
    fn a_stamped_batch_is_resent_under_its_identity_then_a_new_one_follows() {
        let mut c = client();
        let now = 1_700_000_000_000;
        feed(&mut c, now - 1000);
        let summary = c.finish_restore(options(Some(now))).unwrap();
        assert_eq!(
            (
                summary.batches,
                summary.stamped,
                summary.buffered,
                summary.decided
            ),
            (2, 1, 1, 0)
        );
        assert_eq!(
            c.sequencer().identity(),
            Identity::Ready {
                id: ProducerId(7),
                epoch: ProducerEpoch(1)
            }
        );
        let h = c.sequencer().held(1).unwrap();
        assert!(matches!(
            h.state,
            BatchState::Stamped { stamp: s, maybe_written: true, .. } if s == stamp(30)
        ));
        assert_eq!(c.sequencer().held(0).unwrap().state, BatchState::Buffered);
        // Both restored batches are the application's to skip; the orphan is only erased.
        let mut restored: heapless::Vec<(u64, u32), 4> = c.restored_batches().collect();
        restored.sort();
        assert_eq!(restored, [(100, 3), (103, 3)]);
        // The orphan meta is erased before anything else can use its slot.
        let op = c.poll_persist().unwrap();
        assert_eq!((op.key, op.value), (key(false, 3), None));
    }

    #[test]
    fn a_stamped_batch_older_than_the_producer_state_ttl_is_not_resent() {
        let mut c = client();
        let now = 1_700_000_000_000;
        feed(&mut c, now - 2 * 3600 * 1000);
        let summary = c.finish_restore(options(Some(now))).unwrap();
        assert_eq!(
            (summary.stamped, summary.expired, summary.decided),
            (0, 1, 1)
        );
        // Its outcome is stored before it is handed out, then handed out without a send.
        while let Some(op) = c.poll_persist() {
            let _ = op;
            c.on_persisted();
        }
        let d = c.poll_delivery().unwrap();
        assert_eq!(
            (d.tag, d.records, d.restored, d.outcome),
            (
                100,
                3,
                true,
                Outcome::PossiblyPersisted(PossiblyPersistedReason::ProducerStateExpired)
            )
        );
        // Without a wall clock the broker is trusted to remember.
        let mut c = client();
        feed(&mut c, now - 2 * 3600 * 1000);
        assert_eq!(c.finish_restore(options(None)).unwrap().stamped, 1);
    }

    #[test]
    fn a_store_of_other_topics_or_capacities_is_refused() {
        let mut c = client();
        let mut other = info(1, 1);
        other.topic_crc ^= 1;
        c.restore_item(&key(true, 0), Some(&batch_item(&other, 0)))
            .unwrap();
        assert_eq!(
            c.finish_restore(options(None)),
            Err(RestoreError::Topic { topic: 0 })
        );
        let mut c = client();
        assert_eq!(
            c.restore_item(&key(true, 9), Some(&batch_item(&info(1, 1), 0))),
            Err(RestoreError::Slot { slot: 9 })
        );
        // A batch whose record count disagrees with its header is malformed.
        let mut lying = info(1, 1);
        lying.records = 3;
        let mut item = batch_item(&lying, 0);
        let mut fewer = lying;
        fewer.records = 2;
        assert!(write_header(&mut item[..BATCH_HEADER], &fewer));
        assert_eq!(
            c.restore_item(&key(true, 0), Some(&item)),
            Err(RestoreError::Malformed)
        );
        // Truncated batch items are errors, never panics.
        let good = batch_item(&info(1, 1), 0);
        for cut in 0..good.len() {
            assert!(c.restore_item(&key(true, 0), Some(&good[..cut])).is_err());
        }
    }

    #[test]
    fn another_format_is_named() {
        let mut buf = [0u8; META_LEN];
        let info = BatchInfo {
            records: 1,
            ..BatchInfo::default()
        };
        write_meta(
            &mut buf,
            &info,
            &MetaState::Decided(Outcome::Persisted { offset: None }),
        );
        buf[0] = 9;
        assert_eq!(read_meta(&buf), Err(RestoreError::Format(9)));
    }
}
