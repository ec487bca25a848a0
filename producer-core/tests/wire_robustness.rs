//! Every decoder, fed truncated, oversized, mutated or random input, returns
//! an error value and never panics (or hangs: inputs are small and every
//! decoder consumes at least one byte per element).
//!
//! The fixed cases that need neither `std` nor generated input (every strict prefix of a
//! fixture or a batch, a trailing byte, oversized frames, corrupt batches, every single-byte
//! mutation of a fixture) are portable bodies in `tests/portable/codec.rs`, run on the host by
//! `tests/portable.rs` and on a Cortex-M3 by `on-target/`. Here: generated input, body
//! decoders on their own (whatever decodes must re-encode), and what needs allocation.

use producer_core::wire::{
    self, ApiKey, Body, DecodeError, EncodeError, FrameDecoder, FrameStatus, List, Reader,
    RecordBatch, RecordBatches, Writer, decode_any_response, decode_request,
};
use proptest::prelude::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tansu-0.6.0/");

/// All captured frames, without their size prefix, with API and version.
fn fixture_frames() -> Vec<(bool, ApiKey, i16, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(DIR).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.ends_with(".bin") || name.contains("telemetry") {
            continue;
        }
        let api = if name.contains("api_versions") {
            ApiKey::ApiVersions
        } else if name.contains("metadata") {
            ApiKey::Metadata
        } else if name.contains("init_producer_id") {
            ApiKey::InitProducerId
        } else {
            ApiKey::Produce
        };
        let version: i16 = name
            .split('_')
            .find_map(|part| part.strip_prefix('v')?.parse().ok())
            .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        out.push((
            name.ends_with("_request.bin"),
            api,
            version,
            bytes[4..].to_vec(),
        ));
    }
    assert!(out.len() >= 10);
    out
}

/// Decodes a body; whatever decodes must re-encode (into exactly
/// `encoded_len` bytes) and decode again to an equal value.
fn decode_body<'a, B: Body<'a> + PartialEq + std::fmt::Debug>(
    bytes: &'a [u8],
    version: i16,
) -> Result<(), DecodeError> {
    let mut r = Reader::new(bytes);
    let value = B::decode(&mut r, version)?;
    let len = value.encoded_len(version).expect("decoded value encodes");
    let mut buf = vec![0u8; len];
    value
        .encode(&mut Writer::new(&mut buf), version)
        .expect("exact size suffices");
    let buf: &'a [u8] = Box::leak(buf.into_boxed_slice());
    let mut r2 = Reader::new(buf);
    assert_eq!(
        B::decode(&mut r2, version).expect("re-encoded value decodes"),
        value
    );
    assert_eq!(r2.remaining(), 0);
    r.expect_end()
}

/// Runs every body decoder of `api` at `version` on `bytes`.
fn decode_all_bodies(api: ApiKey, version: i16, bytes: &[u8]) -> [Result<(), DecodeError>; 2] {
    match api {
        ApiKey::ApiVersions => [
            decode_body::<wire::ApiVersionsRequest<'_>>(bytes, version),
            decode_body::<wire::ApiVersionsResponse<'_>>(bytes, version),
        ],
        ApiKey::Metadata => [
            decode_body::<wire::MetadataRequest<'_>>(bytes, version),
            decode_body::<wire::MetadataResponse<'_>>(bytes, version),
        ],
        ApiKey::InitProducerId => [
            decode_body::<wire::InitProducerIdRequest<'_>>(bytes, version),
            decode_body::<wire::InitProducerIdResponse>(bytes, version),
        ],
        ApiKey::Produce => [
            decode_body::<wire::ProduceRequest<'_>>(bytes, version),
            decode_body::<wire::ProduceResponse<'_>>(bytes, version),
        ],
        ApiKey::SaslHandshake => [
            decode_body::<wire::SaslHandshakeRequest<'_>>(bytes, version),
            decode_body::<wire::SaslHandshakeResponse<'_>>(bytes, version),
        ],
        ApiKey::SaslAuthenticate => [
            decode_body::<wire::SaslAuthenticateRequest<'_>>(bytes, version),
            decode_body::<wire::SaslAuthenticateResponse<'_>>(bytes, version),
        ],
    }
}

fn decode_frame(
    is_request: bool,
    api: ApiKey,
    version: i16,
    frame: &[u8],
) -> Result<(), DecodeError> {
    if is_request {
        decode_request(frame).map(|_| ())
    } else {
        decode_any_response(frame, api, version).map(|_| ())
    }
}

#[test]
fn unsupported_versions_are_errors() {
    for api in ApiKey::ALL {
        let range = api.supported();
        for v in [range.min - 1, range.max + 1, i16::MIN, i16::MAX] {
            for res in decode_all_bodies(api, v, &[0; 64]) {
                assert_eq!(
                    res,
                    Err(DecodeError::UnsupportedVersion {
                        api_key: api.as_i16(),
                        version: v
                    })
                );
            }
        }
    }
    let mut buf = [0u8; 64];
    assert_eq!(
        wire::encode_request(&mut buf, 12, 1, None, &wire::ProduceRequest::default()),
        Err(EncodeError::UnsupportedVersion {
            api_key: 0,
            version: 12
        })
    );
}

/// Lengths that claim more than the input holds, inside a body. The frame size prefix and the
/// record batch's length, record count and compression are checked by the portable
/// `frame_decoder_handles_partial_reads_and_refuses_oversized_frames` and
/// `record_batch_corruption_is_detected`.
#[test]
fn oversized_lengths_are_errors() {
    // Produce v3 with a topic array claiming i32::MAX elements.
    let body = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff];
    assert_eq!(
        decode_body::<wire::ProduceRequest<'_>>(&body, 3),
        Err(DecodeError::LengthOutOfRange)
    );
    // Compact string longer than the input.
    assert_eq!(
        Reader::new(&[0x7f, b'a']).get_string(true),
        Err(DecodeError::LengthOutOfRange)
    );
}

#[test]
fn list_of_zero_count_is_fine_and_encodes_back() {
    let mut r = Reader::new(&[1]);
    let l: List<'_, i32> = List::decode(&mut r, 9, true).unwrap();
    assert!(l.is_empty());
    let mut buf = [0u8; 1];
    l.encode(&mut Writer::new(&mut buf), 9, true).unwrap();
    assert_eq!(buf, [1]);
}

fn api_and_version() -> impl Strategy<Value = (ApiKey, i16)> {
    prop::sample::select(ApiKey::ALL.to_vec())
        .prop_flat_map(|api| (Just(api), api.supported().min..=api.supported().max))
}

proptest! {
    #[test]
    fn random_bytes_never_panic((api, version) in api_and_version(), bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_all_bodies(api, version, &bytes);
        let _ = decode_request(&bytes);
        let _ = decode_any_response(&bytes, api, version);
        let _ = wire::RequestHeader::peek(&bytes);
        let _ = RecordBatch::decode(&bytes);
        let _ = RecordBatches::new(&bytes).count();
        let mut copy = bytes.clone();
        let _ = wire::stamp(&mut copy, 1, 2, 3);
        let _ = wire::set_base_offset(&mut copy, 1);
        match FrameDecoder::new(256).decode(&bytes) {
            Ok(FrameStatus::Complete { frame, consumed }) => {
                prop_assert_eq!(frame.len() + 4, consumed);
                prop_assert!(consumed <= bytes.len());
            }
            Ok(FrameStatus::NeedMore(n)) => prop_assert!(n > 0),
            Err(e) => {
                let expected = matches!(e, DecodeError::FrameTooLarge { .. } | DecodeError::LengthOutOfRange);
                prop_assert!(expected);
            }
        }
    }

    #[test]
    fn random_records_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..120)) {
        // A valid batch header around random record bytes, with a correct CRC,
        // so the record decoder itself is exercised.
        let mut buf = vec![0u8; 61 + bytes.len()];
        let b = wire::BatchBuilder::new(&mut buf, wire::Attributes::default(), 0).unwrap();
        let len = b.finish().unwrap().len();
        buf[61..].copy_from_slice(&bytes);
        let total = (len + bytes.len() - 12) as i32;
        buf[8..12].copy_from_slice(&total.to_be_bytes());
        for count in [1i32, 2, 3, bytes.len() as i32] {
            buf[57..61].copy_from_slice(&count.to_be_bytes());
            wire::stamp(&mut buf, 1, 1, 1).unwrap();
            if let Ok((batch, _)) = RecordBatch::decode(&buf) {
                prop_assert_eq!(batch.records.iter().count(), count as usize);
            }
        }
    }

    #[test]
    fn mutated_fixtures_never_panic(index in 0usize..64, flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let frames = fixture_frames();
        let (is_request, api, version, mut frame) = frames[index % frames.len()].clone();
        // Where the body starts, so body decoders see mutated bodies too.
        let body_at = if is_request {
            wire::decode_request_header(&frame).unwrap().1
        } else if api.response_header_version(version) == 1 {
            5
        } else {
            4
        };
        for (at, byte) in flips {
            let i = at.index(frame.len());
            frame[i] = byte;
        }
        let _ = decode_frame(is_request, api, version, &frame);
        let _ = decode_all_bodies(api, version, &frame[body_at..]);
        if let Ok((_, wire::Request::Produce(p))) = decode_request(&frame) {
            for t in p.topics.iter() {
                for part in t.partitions.iter() {
                    let _ = RecordBatches::new(part.records.unwrap_or(&[])).count();
                }
            }
        }
    }
}

#[test]
fn request_of_another_api_is_reported() {
    let mut buf = [0u8; 64];
    let n = wire::encode_request(&mut buf, 12, 5, None, &wire::MetadataRequest::default()).unwrap();
    let res: Result<(wire::RequestHeader<'_>, wire::ProduceRequest<'_>), _> =
        wire::decode_request_as(&buf[4..n]);
    assert_eq!(
        res.err(),
        Some(DecodeError::WrongApiKey {
            expected: 0,
            found: 3
        })
    );
}

proptest! {
    /// A transport loop that receives a stream of frames in arbitrary chunks
    /// and uses only the frame decoder recovers exactly the frames sent.
    #[test]
    fn frame_decoder_reassembles_any_chunking(
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 0..6),
        chunks in prop::collection::vec(1usize..17, 1..20),
    ) {
        let mut stream = Vec::new();
        for f in &frames {
            stream.extend_from_slice(&(f.len() as i32).to_be_bytes());
            stream.extend_from_slice(f);
        }
        let decoder = FrameDecoder::new(64);
        let mut received: Vec<u8> = Vec::new();
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut sent = 0;
        let mut chunk_sizes = chunks.iter().cycle();
        while sent < stream.len() || !received.is_empty() {
            loop {
                match decoder.decode(&received).unwrap() {
                    FrameStatus::Complete { frame, consumed } => {
                        out.push(frame.to_vec());
                        received.drain(..consumed);
                    }
                    FrameStatus::NeedMore(n) => {
                        prop_assert!(n > 0);
                        break;
                    }
                }
            }
            if sent == stream.len() {
                break;
            }
            let n = (*chunk_sizes.next().unwrap()).min(stream.len() - sent);
            received.extend_from_slice(&stream[sent..sent + n]);
            sent += n;
        }
        prop_assert!(received.is_empty());
        prop_assert_eq!(out, frames);
    }
}

/// The lenient decoder a client uses reads the same body as the strict one and reports the
/// excess instead of failing (librdkafka's mock cluster sends one extra byte on flexible
/// Metadata responses); the strict one keeps refusing it.
#[test]
fn lenient_response_decoding_reports_trailing_bytes() {
    use producer_core::wire::{MetadataResponse, decode_response, decode_response_lenient};
    let mut checked = 0;
    for (is_request, api, version, frame) in fixture_frames() {
        if is_request || api != ApiKey::Metadata {
            continue;
        }
        let (h, exact) = decode_response::<MetadataResponse<'_>>(&frame, version).unwrap();
        let mut long = frame.clone();
        long.extend_from_slice(&[0, 0]);
        assert_eq!(
            decode_response::<MetadataResponse<'_>>(&long, version).err(),
            Some(DecodeError::TrailingBytes)
        );
        let (lh, lenient, trailing) =
            decode_response_lenient::<MetadataResponse<'_>>(&long, version).unwrap();
        assert_eq!((lh, trailing), (h, 2));
        assert_eq!(lenient, exact);
        // A truncated body is still an error.
        assert!(
            decode_response_lenient::<MetadataResponse<'_>>(&frame[..frame.len() - 1], version)
                .is_err()
        );
        checked += 1;
    }
    assert!(checked > 0, "no Metadata response fixture");
}
