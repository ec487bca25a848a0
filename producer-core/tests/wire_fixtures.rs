//! Known-answer tests against frames captured from a real client (librdkafka
//! 2.16.0 via confluent-kafka 2.16.1, idempotent producer) talking to a real
//! broker (tansu 0.6.0). See `tests/fixtures/README.md` for how they were
//! made.
//!
//! Each frame is decoded, checked field by field, and re-encoded by our
//! encoders to the identical bytes.

use producer_core::wire::{
    self, ApiKey, FrameDecoder, FrameStatus, RecordBatch, RecordBatches, Request, decode_request,
    decode_response, encode_request, encode_response,
};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tansu-0.6.0/");

fn load(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Runs the frame decoder over the file, byte by byte first (partial reads),
/// and returns the frame content.
fn frame_of(bytes: &[u8]) -> &[u8] {
    let d = FrameDecoder::new(1 << 20);
    for n in 0..bytes.len() {
        assert!(matches!(d.decode(&bytes[..n]), Ok(FrameStatus::NeedMore(m)) if m > 0));
    }
    match d.decode(bytes).unwrap() {
        FrameStatus::Complete { frame, consumed } => {
            assert_eq!(consumed, bytes.len());
            frame
        }
        other => panic!("incomplete: {other:?}"),
    }
}

/// Decodes a request fixture and checks our encoder reproduces it.
fn request_roundtrip(name: &str, check: impl FnOnce(&Request<'_>)) {
    let bytes = load(name);
    let frame = frame_of(&bytes);
    let (header, req) = decode_request(frame).unwrap();
    check(&req);
    let mut out = vec![0u8; bytes.len()];
    let n = match &req {
        Request::ApiVersions(b) => encode_request(
            &mut out,
            header.api_version,
            header.correlation_id,
            header.client_id,
            b,
        ),
        Request::Metadata(b) => encode_request(
            &mut out,
            header.api_version,
            header.correlation_id,
            header.client_id,
            b,
        ),
        Request::InitProducerId(b) => encode_request(
            &mut out,
            header.api_version,
            header.correlation_id,
            header.client_id,
            b,
        ),
        Request::Produce(b) => encode_request(
            &mut out,
            header.api_version,
            header.correlation_id,
            header.client_id,
            b,
        ),
    }
    .unwrap();
    assert_eq!(&out[..n], &bytes[..], "{name}: re-encoding differs");
}

fn response_roundtrip<'a, B: wire::ResponseBody<'a> + std::fmt::Debug>(
    bytes: &'a [u8],
    version: i16,
    corr: i32,
) -> B {
    let frame = frame_of(bytes);
    let (header, body): (_, B) = decode_response(frame, version).unwrap();
    assert_eq!(header.correlation_id, corr);
    let mut out = vec![0u8; bytes.len()];
    let n = encode_response(&mut out, version, corr, &body).unwrap();
    assert_eq!(&out[..n], bytes, "re-encoding differs");
    body
}

#[test]
fn api_versions_v3() {
    request_roundtrip("conn1_1_api_versions_v3_request.bin", |r| match r {
        Request::ApiVersions(b) => {
            assert_eq!(b.client_software_name, "confluent-kafka-python");
            assert!(b.client_software_version.starts_with("2.16.1"));
        }
        other => panic!("{other:?}"),
    });
    let bytes = load("conn1_1_api_versions_v3_response.bin");
    let (header, resp): (_, wire::ApiVersionsResponse<'_>) =
        decode_response(frame_of(&bytes), 3).unwrap();
    assert_eq!(header.correlation_id, 1);
    // tansu writes all four v3 tagged fields even at their defaults (empty
    // feature lists, epoch -1, false); the Java client, kafka-protocol and we
    // omit default tagged fields. So re-encoding is 19 bytes shorter but
    // must decode to the same value.
    assert!(resp.supported_features.is_empty() && resp.finalized_features.is_empty());
    assert_eq!(
        (resp.finalized_features_epoch, resp.zk_migration_ready),
        (-1, false)
    );
    let mut out = vec![0u8; bytes.len()];
    let n = encode_response(&mut out, 3, 1, &resp).unwrap();
    assert_eq!(n, bytes.len() - 19);
    assert_eq!(&out[4..n - 1], &bytes[4..n - 1]);
    let (_, again): (_, wire::ApiVersionsResponse<'_>) = decode_response(&out[4..n], 3).unwrap();
    assert_eq!(again, resp);
    assert_eq!(resp.error_code, 0);
    let n = resp.negotiate_all();
    assert_eq!(n.api_versions, Some(3));
    assert_eq!(n.metadata, Some(12));
    assert_eq!(n.init_producer_id, Some(5));
    assert_eq!(n.produce, Some(11));
    assert_eq!(
        resp.range_of(ApiKey::Produce),
        Some(wire::VersionRange::new(0, 11))
    );
}

#[test]
fn api_versions_v0() {
    request_roundtrip("raw_1_api_versions_v0_request.bin", |r| {
        assert!(matches!(r, Request::ApiVersions(_)))
    });
    let bytes = load("raw_1_api_versions_v0_response.bin");
    let resp: wire::ApiVersionsResponse<'_> = response_roundtrip(&bytes, 0, 7);
    assert_eq!(resp.error_code, 0);
    assert_eq!(resp.negotiate(ApiKey::Produce), Some(11));
}

#[test]
fn metadata_v12() {
    request_roundtrip("conn1_2_metadata_v12_request.bin", |r| match r {
        Request::Metadata(b) => {
            let names: Vec<_> = b.topics.unwrap().iter().map(|t| t.name).collect();
            assert_eq!(names, [Some("capture-test")]);
        }
        other => panic!("{other:?}"),
    });
    let bytes = load("conn1_2_metadata_v12_response.bin");
    let resp: wire::MetadataResponse<'_> = response_roundtrip(&bytes, 12, 2);
    let broker = resp.brokers.iter().next().unwrap();
    assert_eq!((broker.host, broker.port), ("127.0.0.1", 19093));
    let topic = resp.topic("capture-test").unwrap();
    assert_eq!(topic.error_code, 0);
    assert_eq!(topic.partitions.len(), 3);
    for p in topic.partitions.iter() {
        assert_eq!(p.error_code, 0);
        assert_eq!(p.leader_id, broker.node_id);
        assert!(resp.broker(p.leader_id).is_some());
    }
}

#[test]
fn init_producer_id_v4() {
    request_roundtrip("conn2_3_init_producer_id_v4_request.bin", |r| match r {
        Request::InitProducerId(b) => {
            assert_eq!(b.transactional_id, None);
            assert_eq!((b.producer_id, b.producer_epoch), (-1, -1));
        }
        other => panic!("{other:?}"),
    });
    let bytes = load("conn2_3_init_producer_id_v4_response.bin");
    let resp: wire::InitProducerIdResponse = response_roundtrip(&bytes, 4, 3);
    assert_eq!(resp.error_code, 0);
    assert_eq!((resp.producer_id, resp.producer_epoch), (1, 0));
}

#[test]
fn produce_v10() {
    let mut batch_bytes = Vec::new();
    request_roundtrip("conn2_4_produce_v10_request.bin", |r| match r {
        Request::Produce(b) => {
            assert_eq!(b.acks, -1);
            let topic = b.topics.iter().next().unwrap();
            assert_eq!(topic.name, "capture-test");
            let part = topic.partitions.iter().next().unwrap();
            assert_eq!(part.index, 0);
            batch_bytes = part.records.unwrap().to_vec();
        }
        other => panic!("{other:?}"),
    });
    let batches: Vec<RecordBatch<'_>> = RecordBatches::new(&batch_bytes)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(batches.len(), 1);
    let batch = batches[0];
    let h = batch.header;
    assert_eq!(
        (
            h.producer_id,
            h.producer_epoch,
            h.base_sequence,
            h.record_count
        ),
        (1, 0, 0, 3)
    );
    for (i, rec) in batch.records.iter().enumerate() {
        assert_eq!(rec.key, Some(format!("key-{i}").as_bytes()));
        assert_eq!(rec.value, Some(format!("value-{i}").as_bytes()));
        let hdr = rec.headers.iter().next().unwrap();
        assert_eq!(
            (hdr.key, hdr.value),
            ("h", Some(format!("v{i}").as_bytes()))
        );
        assert_eq!(batch.offset_of(&rec), i as i64);
    }

    // Rebuild the same batch with our builder and stamp it like librdkafka did.
    let mut buf = vec![0u8; 1024];
    let mut b = wire::BatchBuilder::new(&mut buf, h.attributes, h.base_timestamp).unwrap();
    for rec in batch.records.iter() {
        let headers: Vec<_> = rec.headers.iter().collect();
        b.append(batch.timestamp_of(&rec), rec.key, rec.value, &headers)
            .unwrap();
    }
    let built = b.finish().unwrap();
    wire::record_batch::stamp(built, 1, 0, 0).unwrap();
    // librdkafka sends partition leader epoch 0 where we send -1.
    wire::record_batch::set_partition_leader_epoch(built, h.partition_leader_epoch).unwrap();
    assert_eq!(&built[..], &batch_bytes[..]);

    let bytes = load("conn2_4_produce_v10_response.bin");
    let resp: wire::ProduceResponse<'_> = response_roundtrip(&bytes, 10, 4);
    let t = resp.topics.iter().next().unwrap();
    assert_eq!(t.name, "capture-test");
    let p = t.partitions.iter().next().unwrap();
    assert_eq!((p.index, p.error_code, p.base_offset), (0, 0, 0));
}

#[test]
fn unknown_api_is_reported() {
    let bytes = load("conn2_2_get_telemetry_subscriptions_v0_request.bin");
    let frame = frame_of(&bytes);
    assert_eq!(
        decode_request(frame).err(),
        Some(wire::DecodeError::UnknownApiKey(71))
    );
    // A model broker can still read the header to answer it.
    let h = wire::RequestHeader::peek(frame).unwrap();
    assert_eq!((h.api_key, h.api_version, h.correlation_id), (71, 0, 2));
    assert_eq!(h.client_id, Some("fixture-capture"));
}

/// The fixtures also decode with `kafka-protocol`, as a sanity check of the
/// fixtures themselves.
#[test]
fn fixtures_decode_with_kafka_protocol() {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Decodable;
    let mut b = bytes::Bytes::from(load("conn2_4_produce_v10_response.bin")).slice(4..);
    ResponseHeader::decode(&mut b, 1).unwrap();
    ProduceResponse::decode(&mut b, 10).unwrap();
    assert!(b.is_empty());
}
