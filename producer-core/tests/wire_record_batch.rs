//! Record batch v2 cross-checks against `kafka-protocol`'s batch encoder and
//! decoder, plus stamping properties.
//!
//! A batch built with our [`BatchBuilder`] and [`stamp`]ed must be
//! byte-identical to the batch `kafka-protocol` encodes from the same
//! records, each decoder must read the other's batch, and re-stamping must
//! equal stamping once with the final values.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KpCompression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KpTimestampType,
};
use producer_core::wire::{
    Attributes, BatchBuilder, Compression, RecordBatch, RecordHeader, TimestampType,
};
use producer_core::wire::{RECORD_BATCH_OVERHEAD, stamp};
use proptest::collection::vec;
use proptest::prelude::*;

type Rec = (
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
);

fn record() -> impl Strategy<Value = Rec> {
    (
        1_600_000_000_000i64..1_800_000_000_000,
        proptest::option::of(vec(any::<u8>(), 0..20)),
        proptest::option::of(vec(any::<u8>(), 0..200)),
        vec(
            ("\\PC{0,6}", proptest::option::of(vec(any::<u8>(), 0..8))),
            0..3,
        ),
    )
        .prop_map(|(ts, k, v, mut h)| {
            // kafka-protocol keeps headers in a map: keys must be unique.
            let mut seen = std::collections::HashSet::new();
            h.retain(|(k, _)| seen.insert(k.clone()));
            (ts, k, v, h)
        })
}

fn build_ours(records: &[Rec], transactional: bool, pid: i64, epoch: i16, seq: i32) -> Vec<u8> {
    let base_ts = records.iter().map(|r| r.0).min().unwrap();
    let attrs = Attributes::new(Compression::None, TimestampType::CreateTime, transactional);
    let mut buf = vec![0u8; 64 * 1024];
    let mut b = BatchBuilder::new(&mut buf, attrs, base_ts).unwrap();
    for (ts, k, v, h) in records {
        let headers: Vec<_> = h
            .iter()
            .map(|(k, v)| RecordHeader {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        let predicted = b.record_len(*ts, k.as_deref(), v.as_deref(), &headers);
        let before = b.len();
        b.append(*ts, k.as_deref(), v.as_deref(), &headers).unwrap();
        assert_eq!(b.len() - before, predicted, "record_len must be exact");
    }
    let batch = b.finish().unwrap();
    stamp(batch, pid, epoch, seq).unwrap();
    batch.to_vec()
}

fn build_kp(records: &[Rec], transactional: bool, pid: i64, epoch: i16, seq: i32) -> Vec<u8> {
    let recs: Vec<KpRecord> = records
        .iter()
        .enumerate()
        .map(|(i, (ts, k, v, h))| KpRecord {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: KpTimestampType::Creation,
            offset: i as i64,
            sequence: seq.wrapping_add(i as i32),
            timestamp: *ts,
            key: k.as_deref().map(Bytes::copy_from_slice),
            value: v.as_deref().map(Bytes::copy_from_slice),
            headers: h
                .iter()
                .map(|(k, v)| {
                    (
                        StrBytes::from_string(k.clone()),
                        v.as_deref().map(Bytes::copy_from_slice),
                    )
                })
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: KpCompression::None,
    };
    RecordBatchEncoder::encode(&mut out, recs.iter(), &options).unwrap();
    out.to_vec()
}

proptest! {
    #[test]
    fn batch_matches_kafka_protocol(
        records in vec(record(), 1..8),
        transactional in any::<bool>(),
        pid in any::<i64>(),
        epoch in any::<i16>(),
        seq in any::<i32>(),
    ) {
        let ours = build_ours(&records, transactional, pid, epoch, seq);
        let theirs = build_kp(&records, transactional, pid, epoch, seq);
        prop_assert_eq!(&ours, &theirs);

        // kafka-protocol reads ours back.
        let mut b = Bytes::from(ours.clone());
        let set = RecordBatchDecoder::decode(&mut b).unwrap();
        prop_assert_eq!(set.records.len(), records.len());
        for (i, (r, (ts, k, v, _))) in set.records.iter().zip(&records).enumerate() {
            prop_assert_eq!(r.offset, i as i64);
            prop_assert_eq!(r.timestamp, *ts);
            prop_assert_eq!(r.sequence, seq.wrapping_add(i as i32));
            prop_assert_eq!(r.producer_id, pid);
            prop_assert_eq!(r.key.as_deref(), k.as_deref());
            prop_assert_eq!(r.value.as_deref(), v.as_deref());
        }

        // We read theirs back.
        let (batch, used) = RecordBatch::decode(&theirs).unwrap();
        prop_assert_eq!(used, theirs.len());
        prop_assert_eq!(batch.header.producer_id, pid);
        prop_assert_eq!(batch.header.producer_epoch, epoch);
        prop_assert_eq!(batch.header.base_sequence, seq);
        prop_assert_eq!(batch.header.attributes.is_transactional(), transactional);
        prop_assert_eq!(batch.header.record_count as usize, records.len());
        for (rec, (ts, k, v, h)) in batch.records.iter().zip(&records) {
            prop_assert_eq!(batch.timestamp_of(&rec), *ts);
            prop_assert_eq!(rec.key, k.as_deref());
            prop_assert_eq!(rec.value, v.as_deref());
            let hs: Vec<_> = rec.headers.iter().map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec))).collect();
            prop_assert_eq!(&hs, h);
        }
    }

    #[test]
    fn restamping_equals_stamping_once(
        records in vec(record(), 1..4),
        first in (any::<i64>(), any::<i16>(), any::<i32>()),
        second in (any::<i64>(), any::<i16>(), any::<i32>()),
    ) {
        let mut once = build_ours(&records, false, first.0, first.1, first.2);
        stamp(&mut once, second.0, second.1, second.2).unwrap();
        let direct = build_ours(&records, false, second.0, second.1, second.2);
        prop_assert_eq!(&once, &direct);
        // Only the stamped fields and the CRC differ from the first stamping.
        let first_bytes = build_ours(&records, false, first.0, first.1, first.2);
        for (i, (a, b)) in first_bytes.iter().zip(&once).enumerate() {
            if a != b {
                prop_assert!((17..21).contains(&i) || (43..57).contains(&i), "byte {} changed", i);
            }
        }
        prop_assert!(once.len() > RECORD_BATCH_OVERHEAD);
    }
}

#[test]
fn buffer_full_is_reported_and_record_len_predicts_it() {
    let mut buf = [0u8; 100];
    let mut b = BatchBuilder::new(&mut buf, Attributes::default(), 0).unwrap();
    let value = [7u8; 10];
    let mut appended = 0;
    loop {
        let need = b.record_len(0, None, Some(&value), &[]);
        let fits = need <= b.remaining();
        let res = b.append(0, None, Some(&value), &[]);
        assert_eq!(res.is_ok(), fits);
        if !fits {
            break;
        }
        appended += 1;
    }
    assert_eq!(b.record_count(), appended);
    let batch = b.finish().unwrap();
    assert_eq!(
        RecordBatch::decode(batch).unwrap().0.records.len(),
        appended as usize
    );
}
