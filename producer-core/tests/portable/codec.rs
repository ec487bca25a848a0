//! Codec known answers: CRC-32C, varints, a record batch built byte for byte like the one
//! librdkafka sent, and the frames captured between librdkafka and tansu (see
//! `tests/fixtures/README.md`) decoded to their known field values. Malformed input must give
//! an error, never a panic.

use producer_core::wire::{
    ApiKey, ApiVersionsResponse, Attributes, BatchBuilder, Compression, DecodeError, EncodeError,
    FrameDecoder, FrameStatus, InitProducerIdResponse, MetadataResponse, ProduceResponse, Reader,
    RecordBatch, RecordBatches, RecordHeader, Request, ResponseBody, TimestampType, VersionRange,
    Writer, crc32c, decode_any_response, decode_request, decode_response, encode_request,
    encode_response,
};
use producer_core::wire::{set_partition_leader_epoch, stamp};
use producer_core::wire::{unzigzag32, unzigzag64, zigzag32, zigzag64};

/// One captured frame, size prefix included.
struct Fixture {
    name: &'static str,
    request: bool,
    api: ApiKey,
    version: i16,
    bytes: &'static [u8],
}

macro_rules! fixture {
    ($name:literal, $request:literal, $api:ident, $version:literal) => {
        Fixture {
            name: $name,
            request: $request,
            api: ApiKey::$api,
            version: $version,
            bytes: include_bytes!(concat!("../fixtures/tansu-0.6.0/", $name, ".bin")),
        }
    };
}

const FIXTURES: [Fixture; 12] = [
    fixture!("conn1_1_api_versions_v3_request", true, ApiVersions, 3),
    fixture!("conn1_1_api_versions_v3_response", false, ApiVersions, 3),
    fixture!("conn1_2_metadata_v12_request", true, Metadata, 12),
    fixture!("conn1_2_metadata_v12_response", false, Metadata, 12),
    fixture!("conn2_1_api_versions_v3_request", true, ApiVersions, 3),
    fixture!("conn2_1_api_versions_v3_response", false, ApiVersions, 3),
    fixture!(
        "conn2_3_init_producer_id_v4_request",
        true,
        InitProducerId,
        4
    ),
    fixture!(
        "conn2_3_init_producer_id_v4_response",
        false,
        InitProducerId,
        4
    ),
    fixture!("conn2_4_produce_v10_request", true, Produce, 10),
    fixture!("conn2_4_produce_v10_response", false, Produce, 10),
    fixture!("raw_1_api_versions_v0_request", true, ApiVersions, 0),
    fixture!("raw_1_api_versions_v0_response", false, ApiVersions, 0),
];

const PRODUCE_REQUEST: &[u8] =
    include_bytes!("../fixtures/tansu-0.6.0/conn2_4_produce_v10_request.bin");
const TELEMETRY_REQUEST: &[u8] =
    include_bytes!("../fixtures/tansu-0.6.0/conn2_2_get_telemetry_subscriptions_v0_request.bin");

/// Where librdkafka's record batch sits in the produce request, and what it holds.
const BATCH_AT: core::ops::Range<usize> = 58..191;
const BATCH_TIMESTAMP: i64 = 1_795_553_672_965;
const BATCH_CRC: u32 = 0xEB98_E1CA;
const KEYS: [&[u8]; 3] = [b"key-0", b"key-1", b"key-2"];
const VALUES: [&[u8]; 3] = [b"value-0", b"value-1", b"value-2"];
const HEADER_VALUES: [&[u8]; 3] = [b"v0", b"v1", b"v2"];

/// Large enough for every fixture plus one byte.
const BUF: usize = 320;

fn frame(bytes: &[u8]) -> &[u8] {
    &bytes[4..]
}

fn decode_frame(fixture: &Fixture, frame: &[u8]) -> Result<(), DecodeError> {
    if fixture.request {
        decode_request(frame).map(|_| ())
    } else {
        decode_any_response(frame, fixture.api, fixture.version).map(|_| ())
    }
}

/// Decodes a response fixture and checks it re-encodes to the same bytes.
fn response_roundtrip<B: ResponseBody<'static>>(
    bytes: &'static [u8],
    version: i16,
    correlation_id: i32,
) -> B {
    let (header, body): (_, B) = decode_response(frame(bytes), version).unwrap();
    assert_eq!(header.correlation_id, correlation_id);
    let mut out = [0u8; BUF];
    // Exactly as large as the frame: the encoder needs no room to spare.
    let n = encode_response(&mut out[..bytes.len()], version, correlation_id, &body).unwrap();
    assert!(out[..n] == *bytes, "re-encoding differs");
    body
}

fn fixture(name: &str) -> &'static [u8] {
    FIXTURES.iter().find(|f| f.name == name).unwrap().bytes
}

pub fn crc32c_known_answers() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(b""), 0);
    // RFC 3720, B.4.
    assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
    let ascending: [u8; 32] = core::array::from_fn(|i| i as u8);
    assert_eq!(crc32c(&ascending), 0x46DD_794E);
    let descending: [u8; 32] = core::array::from_fn(|i| 31 - i as u8);
    assert_eq!(crc32c(&descending), 0x113F_DB5C);
    // The CRC librdkafka wrote into its batch covers bytes 21.. of it.
    assert_eq!(crc32c(&PRODUCE_REQUEST[BATCH_AT][21..]), BATCH_CRC);
}

pub fn varint_and_zigzag_known_encodings() {
    for (v, z) in [(0, 0), (-1, 1), (1, 2), (-2, 3), (i32::MAX, u32::MAX - 1)] {
        assert_eq!(zigzag32(v), z);
        assert_eq!(unzigzag32(z), v);
    }
    assert_eq!(zigzag32(i32::MIN), u32::MAX);
    assert_eq!(zigzag64(i64::MIN), u64::MAX);
    assert_eq!(unzigzag64(u64::MAX - 1), i64::MAX);

    let unsigned: [(u32, &[u8]); 7] = [
        (0, &[0x00]),
        (1, &[0x01]),
        (127, &[0x7f]),
        (128, &[0x80, 0x01]),
        (300, &[0xac, 0x02]),
        (16_384, &[0x80, 0x80, 0x01]),
        (u32::MAX, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
    ];
    for (v, bytes) in unsigned {
        let mut buf = [0u8; 10];
        let mut w = Writer::new(&mut buf);
        w.put_unsigned_varint(v).unwrap();
        assert_eq!(w.written(), bytes, "{v}");
        assert_eq!(Reader::new(bytes).get_unsigned_varint(), Ok(v));
    }
    let signed: [(i32, &[u8]); 6] = [
        (0, &[0x00]),
        (-1, &[0x01]),
        (-64, &[0x7f]),
        (64, &[0x80, 0x01]),
        (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
        (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
    ];
    for (v, bytes) in signed {
        let mut buf = [0u8; 10];
        let mut w = Writer::new(&mut buf);
        w.put_varint(v).unwrap();
        assert_eq!(w.written(), bytes, "{v}");
        assert_eq!(Reader::new(bytes).get_varint(), Ok(v));
    }
    let longs: [(i64, &[u8]); 3] = [
        (-1, &[0x01]),
        (
            i64::MIN,
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        ),
        (
            i64::MAX,
            &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        ),
    ];
    for (v, bytes) in longs {
        let mut buf = [0u8; 10];
        let mut w = Writer::new(&mut buf);
        w.put_varlong(v).unwrap();
        assert_eq!(w.written(), bytes, "{v}");
        assert_eq!(Reader::new(bytes).get_varlong(), Ok(v));
    }
}

pub fn malformed_varints_are_errors() {
    assert_eq!(
        Reader::new(&[0x80]).get_unsigned_varint(),
        Err(DecodeError::Truncated)
    );
    assert_eq!(Reader::new(&[]).get_varint(), Err(DecodeError::Truncated));
    // Too long, or bits beyond the type's width.
    assert_eq!(
        Reader::new(&[0xff; 6]).get_unsigned_varint(),
        Err(DecodeError::InvalidVarint)
    );
    assert_eq!(
        Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x10]).get_unsigned_varint(),
        Err(DecodeError::InvalidVarint)
    );
    assert_eq!(
        Reader::new(&[0xff; 11]).get_varlong(),
        Err(DecodeError::InvalidVarint)
    );
    let mut over = [0xffu8; 10];
    over[9] = 0x02;
    assert_eq!(
        Reader::new(&over).get_unsigned_varlong(),
        Err(DecodeError::InvalidVarint)
    );
    // A full buffer is an error too.
    let mut buf = [0u8; 1];
    assert_eq!(
        Writer::new(&mut buf).put_varint(64),
        Err(EncodeError::BufferTooSmall)
    );
}

pub fn record_batch_built_and_stamped_matches_librdkafkas_byte_for_byte() {
    let want = &PRODUCE_REQUEST[BATCH_AT];
    let attributes = Attributes::new(Compression::None, TimestampType::CreateTime, false);
    for defer_crc in [false, true] {
        let mut buf = [0u8; 192];
        let mut b = BatchBuilder::new(&mut buf, attributes, BATCH_TIMESTAMP).unwrap();
        for i in 0..3 {
            let headers = [RecordHeader {
                key: "h",
                value: Some(HEADER_VALUES[i]),
            }];
            b.append(BATCH_TIMESTAMP, Some(KEYS[i]), Some(VALUES[i]), &headers)
                .unwrap();
        }
        let batch = if defer_crc {
            b.finish_for_stamp().unwrap()
        } else {
            b.finish().unwrap()
        };
        stamp(batch, 1, 0, 0).unwrap();
        // librdkafka sends partition leader epoch 0 where we send -1 (the broker sets it).
        set_partition_leader_epoch(batch, 0).unwrap();
        assert_eq!(batch.len(), want.len());
        assert!(*batch == *want, "batch differs from librdkafka's");
        assert_eq!(batch[17..21], BATCH_CRC.to_be_bytes());
    }
}

pub fn record_batch_decodes_to_its_known_fields() {
    let (batch, used) = RecordBatch::decode(&PRODUCE_REQUEST[BATCH_AT]).unwrap();
    assert_eq!(used, BATCH_AT.len());
    let h = batch.header;
    assert_eq!(
        (h.base_offset, h.partition_leader_epoch, h.magic, h.crc),
        (0, 0, 2, BATCH_CRC)
    );
    assert_eq!(
        (
            h.producer_id,
            h.producer_epoch,
            h.base_sequence,
            h.record_count
        ),
        (1, 0, 0, 3)
    );
    assert_eq!(
        (h.base_timestamp, h.max_timestamp),
        (BATCH_TIMESTAMP, BATCH_TIMESTAMP)
    );
    assert_eq!((h.last_offset_delta, h.batch_length), (2, 121));
    assert_eq!(h.attributes.compression(), Ok(Compression::None));
    assert!(!h.attributes.is_transactional());
    let mut n = 0;
    for (i, rec) in batch.records.iter().enumerate() {
        assert_eq!(rec.key, Some(KEYS[i]));
        assert_eq!(rec.value, Some(VALUES[i]));
        let mut headers = rec.headers.iter();
        assert_eq!(
            headers.next(),
            Some(RecordHeader {
                key: "h",
                value: Some(HEADER_VALUES[i])
            })
        );
        assert_eq!(headers.next(), None);
        assert_eq!(batch.offset_of(&rec), i as i64);
        assert_eq!(batch.timestamp_of(&rec), BATCH_TIMESTAMP);
        n += 1;
    }
    assert_eq!(n, 3);
}

pub fn record_batch_corruption_is_detected() {
    let mut copy = [0u8; 133];
    copy.copy_from_slice(&PRODUCE_REQUEST[BATCH_AT]);
    // A flipped record byte breaks the CRC.
    copy[100] ^= 0x01;
    assert!(matches!(
        RecordBatch::decode(&copy),
        Err(DecodeError::BadCrc {
            stored: BATCH_CRC,
            ..
        })
    ));
    copy[100] ^= 0x01;
    assert!(RecordBatch::decode(&copy).is_ok());
    // Another magic is refused before anything else is read.
    copy[16] = 1;
    assert_eq!(
        RecordBatch::decode(&copy).err(),
        Some(DecodeError::UnsupportedMagic(1))
    );
    copy[16] = 2;
    // A record count that disagrees with the records, with a valid CRC.
    for (count, error) in [
        (2, DecodeError::RecordCountMismatch),
        (4, DecodeError::Truncated),
        (1_000_000, DecodeError::RecordCountMismatch),
        (-1, DecodeError::LengthOutOfRange),
    ] {
        copy[57..61].copy_from_slice(&i32::to_be_bytes(count));
        stamp(&mut copy, 1, 0, 0).unwrap();
        assert_eq!(
            RecordBatch::decode(&copy).err(),
            Some(error),
            "count {count}"
        );
    }
    // A compressed batch is refused, not misread.
    copy[57..61].copy_from_slice(&3i32.to_be_bytes());
    copy[22] = 1;
    stamp(&mut copy, 1, 0, 0).unwrap();
    assert_eq!(
        RecordBatch::decode(&copy).err(),
        Some(DecodeError::UnsupportedCompression(1))
    );
    // A length beyond the input.
    let mut header = [0u8; 61];
    header[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    header[16] = 2;
    assert!(RecordBatch::decode(&header).is_err());
    // Stamping refuses what is not exactly one batch.
    assert!(stamp(&mut header, 1, 0, 0).is_err());
}

pub fn every_strict_prefix_of_a_batch_is_an_error() {
    // librdkafka's batch, and one of ours with a null header value, a null key and an empty
    // value.
    let mut buf = [0u8; 128];
    let mut b = BatchBuilder::new(&mut buf, Attributes::default(), 5).unwrap();
    let headers = [RecordHeader {
        key: "k",
        value: None,
    }];
    b.append(5, Some(b"key"), Some(b"value"), &headers).unwrap();
    b.append(9, None, Some(b""), &[]).unwrap();
    let ours = b.finish().unwrap();
    for batch in [&PRODUCE_REQUEST[BATCH_AT], &*ours] {
        assert!(RecordBatch::decode(batch).is_ok());
        for n in 0..batch.len() {
            assert!(RecordBatch::decode(&batch[..n]).is_err(), "prefix {n}");
            assert!(RecordBatches::new(&batch[..n]).all(|r| r.is_err()));
        }
    }
    // Two batches back to back are read one after the other.
    let batch = &PRODUCE_REQUEST[BATCH_AT];
    let mut two = [0u8; 266];
    two[..133].copy_from_slice(batch);
    two[133..].copy_from_slice(batch);
    let mut batches = RecordBatches::new(&two);
    assert!(batches.next().unwrap().is_ok());
    assert!(batches.next().unwrap().is_ok());
    assert!(batches.next().is_none());
}

pub fn frame_decoder_handles_partial_reads_and_refuses_oversized_frames() {
    let d = FrameDecoder::new(1024);
    for f in &FIXTURES {
        let len = f.bytes.len();
        for n in 0..len {
            let want = if n < 4 { 4 - n } else { len - n };
            assert_eq!(d.decode(&f.bytes[..n]), Ok(FrameStatus::NeedMore(want)));
        }
        assert_eq!(
            d.decode(f.bytes),
            Ok(FrameStatus::Complete {
                frame: frame(f.bytes),
                consumed: len
            })
        );
    }
    // Two frames in one read: the first, then the rest.
    let (a, b) = (FIXTURES[6].bytes, FIXTURES[7].bytes);
    let mut stream = [0u8; 128];
    stream[..a.len()].copy_from_slice(a);
    stream[a.len()..a.len() + b.len()].copy_from_slice(b);
    let stream = &stream[..a.len() + b.len()];
    let Ok(FrameStatus::Complete { consumed, .. }) = d.decode(stream) else {
        panic!("first frame");
    };
    assert_eq!(consumed, a.len());
    assert_eq!(
        d.decode(&stream[consumed..]),
        Ok(FrameStatus::Complete {
            frame: frame(b),
            consumed: b.len()
        })
    );
    // The size prefix alone decides: above the limit, or negative.
    assert_eq!(
        d.decode(&[0, 0, 4, 1]),
        Err(DecodeError::FrameTooLarge {
            size: 1025,
            max: 1024
        })
    );
    assert_eq!(
        d.decode(&[0x80, 0, 0, 0]),
        Err(DecodeError::LengthOutOfRange)
    );
    assert_eq!(
        FrameDecoder::new(u32::MAX).decode(&[0x7f, 0xff, 0xff, 0xff]),
        Ok(FrameStatus::NeedMore(0x7fff_ffff))
    );
}

pub fn every_strict_prefix_of_a_fixture_is_an_error_and_so_is_a_trailing_byte() {
    for f in &FIXTURES {
        let whole = frame(f.bytes);
        assert_eq!(decode_frame(f, whole), Ok(()), "{}", f.name);
        for n in 0..whole.len() {
            assert!(
                decode_frame(f, &whole[..n]).is_err(),
                "{} prefix {n}",
                f.name
            );
        }
        let mut long = [0u8; BUF];
        long[..whole.len()].copy_from_slice(whole);
        assert_eq!(
            decode_frame(f, &long[..whole.len() + 1]),
            Err(DecodeError::TrailingBytes),
            "{}",
            f.name
        );
    }
}

/// Every byte of every fixture replaced by a few values: the decoders return, whatever they
/// return.
pub fn mutated_fixtures_never_panic() {
    let mut decoded = 0u32;
    for f in &FIXTURES {
        let whole = frame(f.bytes);
        let mut buf = [0u8; BUF];
        for i in 0..whole.len() {
            for value in [whole[i] ^ 0xff, 0x00, 0x7f, 0x80, 0xff] {
                buf[..whole.len()].copy_from_slice(whole);
                buf[i] = value;
                let mutated = &buf[..whole.len()];
                if decode_frame(f, mutated).is_ok() {
                    decoded += 1;
                }
                if let Ok((_, Request::Produce(p))) = decode_request(mutated) {
                    for t in p.topics.iter() {
                        for part in t.partitions.iter() {
                            let _ = RecordBatches::new(part.records.unwrap_or(&[])).count();
                        }
                    }
                }
                let _ = RecordBatch::decode(mutated);
                let _ = FrameDecoder::new(256).decode(mutated);
            }
        }
    }
    // Some mutations only change values (ids, names, offsets) and still decode.
    assert!(decoded > 0);
}

pub fn requests_decode_to_their_known_fields_and_reencode_identically() {
    for f in FIXTURES.iter().filter(|f| f.request) {
        let (header, request) = decode_request(frame(f.bytes)).unwrap();
        assert_eq!(header.api_key, f.api.as_i16());
        assert_eq!(header.api_version, f.version);
        let mut buf = [0u8; BUF];
        // Exactly as large as the frame: the encoder needs no room to spare.
        let out = &mut buf[..f.bytes.len()];
        let (v, c, id) = (header.api_version, header.correlation_id, header.client_id);
        let n = match &request {
            Request::ApiVersions(b) => encode_request(out, v, c, id, b),
            Request::Metadata(b) => encode_request(out, v, c, id, b),
            Request::InitProducerId(b) => encode_request(out, v, c, id, b),
            Request::Produce(b) => encode_request(out, v, c, id, b),
            Request::SaslHandshake(b) => encode_request(out, v, c, id, b),
            Request::SaslAuthenticate(b) => encode_request(out, v, c, id, b),
        }
        .unwrap();
        assert!(out[..n] == *f.bytes, "{}: re-encoding differs", f.name);
        match request {
            Request::ApiVersions(b) if f.version == 3 => {
                assert_eq!(header.client_id, Some("fixture-capture"));
                assert_eq!(b.client_software_name, "confluent-kafka-python");
                assert!(b.client_software_version.starts_with("2.16.1"));
            }
            Request::ApiVersions(_) => {
                assert_eq!((header.client_id, header.correlation_id), (Some("test"), 7));
            }
            Request::Metadata(b) => {
                let mut topics = b.topics.unwrap().iter();
                assert_eq!(topics.next().map(|t| t.name), Some(Some("capture-test")));
                assert!(topics.next().is_none());
            }
            Request::InitProducerId(b) => {
                assert_eq!(b.transactional_id, None);
                assert_eq!((b.producer_id, b.producer_epoch), (-1, -1));
            }
            Request::Produce(b) => {
                assert_eq!((b.acks, b.transactional_id), (-1, None));
                let topic = b.topics.iter().next().unwrap();
                assert_eq!(topic.name, "capture-test");
                let part = topic.partitions.iter().next().unwrap();
                assert_eq!(part.index, 0);
                assert_eq!(part.records, Some(&PRODUCE_REQUEST[BATCH_AT]));
            }
            Request::SaslHandshake(_) | Request::SaslAuthenticate(_) => {
                panic!("{}: no SASL fixture was captured", f.name)
            }
        }
    }
}

pub fn api_versions_responses_negotiate_the_known_versions() {
    // tansu writes all four v3 tagged fields even at their defaults, which we omit: the
    // re-encoding is 19 bytes shorter and decodes to the same value.
    let v3 = fixture("conn1_1_api_versions_v3_response");
    let (header, resp): (_, ApiVersionsResponse<'_>) = decode_response(frame(v3), 3).unwrap();
    assert_eq!((header.correlation_id, resp.error_code), (1, 0));
    assert!(resp.supported_features.is_empty() && resp.finalized_features.is_empty());
    assert_eq!(
        (resp.finalized_features_epoch, resp.zk_migration_ready),
        (-1, false)
    );
    let mut out = [0u8; BUF];
    let n = encode_response(&mut out, 3, 1, &resp).unwrap();
    assert_eq!(n, v3.len() - 19);
    // The same bytes up to the tagged fields (the size prefix aside).
    assert!(out[4..n - 1] == v3[4..n - 1]);
    let (_, again): (_, ApiVersionsResponse<'_>) = decode_response(&out[4..n], 3).unwrap();
    assert_eq!(again, resp);
    let versions = resp.negotiate_all();
    assert_eq!(versions.api_versions, Some(3));
    assert_eq!(versions.metadata, Some(12));
    assert_eq!(versions.init_producer_id, Some(5));
    assert_eq!(versions.produce, Some(11));
    assert_eq!(
        resp.range_of(ApiKey::Produce),
        Some(VersionRange::new(0, 11))
    );

    let v0: ApiVersionsResponse<'_> =
        response_roundtrip(fixture("raw_1_api_versions_v0_response"), 0, 7);
    assert_eq!(v0.error_code, 0);
    assert_eq!(v0.negotiate(ApiKey::Produce), Some(11));
}

pub fn metadata_response_has_the_known_broker_and_partitions() {
    let resp: MetadataResponse<'_> =
        response_roundtrip(fixture("conn1_2_metadata_v12_response"), 12, 2);
    let mut brokers = resp.brokers.iter();
    let broker = brokers.next().unwrap();
    assert!(brokers.next().is_none());
    assert_eq!((broker.host, broker.port), ("127.0.0.1", 19093));
    let topic = resp.topic("capture-test").unwrap();
    assert_eq!(topic.error_code, 0);
    assert_eq!(topic.partitions.len(), 3);
    let mut indexes = [false; 3];
    for p in topic.partitions.iter() {
        assert_eq!((p.error_code, p.leader_id), (0, broker.node_id));
        assert_eq!(resp.broker(p.leader_id), Some(broker));
        indexes[p.partition_index as usize] = true;
    }
    assert_eq!(indexes, [true; 3]);
    assert!(resp.topic("other").is_none());
}

pub fn init_producer_id_response_grants_id_1_epoch_0() {
    let resp: InitProducerIdResponse =
        response_roundtrip(fixture("conn2_3_init_producer_id_v4_response"), 4, 3);
    assert_eq!(resp.error_code, 0);
    assert_eq!((resp.producer_id, resp.producer_epoch), (1, 0));
}

pub fn produce_response_acknowledges_offset_0() {
    let resp: ProduceResponse<'_> =
        response_roundtrip(fixture("conn2_4_produce_v10_response"), 10, 4);
    let mut topics = resp.topics.iter();
    let t = topics.next().unwrap();
    assert!(topics.next().is_none());
    assert_eq!(t.name, "capture-test");
    let p = t.partitions.iter().next().unwrap();
    assert_eq!((p.index, p.error_code, p.base_offset), (0, 0, 0));
    // A version this codec does not implement is refused, not guessed at.
    assert_eq!(
        decode_any_response(
            frame(fixture("conn2_4_produce_v10_response")),
            ApiKey::Produce,
            12
        )
        .err(),
        Some(DecodeError::UnsupportedVersion {
            api_key: 0,
            version: 12
        })
    );
}

pub fn unknown_api_is_reported_and_its_header_still_read() {
    let frame = frame(TELEMETRY_REQUEST);
    assert_eq!(
        decode_request(frame).err(),
        Some(DecodeError::UnknownApiKey(71))
    );
    let h = producer_core::wire::RequestHeader::peek(frame).unwrap();
    assert_eq!((h.api_key, h.api_version, h.correlation_id), (71, 0, 2));
    assert_eq!(h.client_id, Some("fixture-capture"));
}
