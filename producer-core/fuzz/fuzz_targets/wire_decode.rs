//! Fuzzes every wire decoder. The first input byte selects what to decode;
//! the rest is the input. Decoders must never panic; whatever decodes must
//! re-encode and decode again to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use producer_core::wire::{
    self, ApiKey, Body, FrameDecoder, Reader, RecordBatch, RecordBatches, Writer,
    decode_any_response, decode_request,
};

/// Decodes `$data` as `$ty`; if that succeeds, re-encodes into exactly
/// `encoded_len` bytes and checks the result decodes to an equal value.
macro_rules! roundtrip {
    ($ty:ty, $data:expr, $version:expr) => {{
        let mut r = Reader::new($data);
        if let Ok(value) = <$ty>::decode(&mut r, $version) {
            let len = value
                .encoded_len($version)
                .expect("decoded value must be encodable");
            let mut buf = vec![0u8; len];
            value
                .encode(&mut Writer::new(&mut buf), $version)
                .expect("encode into exact size");
            let mut r2 = Reader::new(&buf);
            let again = <$ty>::decode(&mut r2, $version).expect("re-encoded value must decode");
            assert_eq!(again, value);
            assert_eq!(r2.remaining(), 0);
        }
    }};
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    // Bits 0-2: the API; bits 3-6: the version within its range; bit 7: request or response.
    let api = ApiKey::ALL[usize::from(selector & 7) % ApiKey::ALL.len()];
    let range = api.supported();
    let span = u8::try_from(range.max - range.min + 1).unwrap_or(1);
    let version = range.min + i16::from(((selector >> 3) & 15) % span);
    match selector >> 7 {
        0 => match api {
            ApiKey::ApiVersions => roundtrip!(wire::ApiVersionsRequest<'_>, data, version),
            ApiKey::Metadata => roundtrip!(wire::MetadataRequest<'_>, data, version),
            ApiKey::InitProducerId => roundtrip!(wire::InitProducerIdRequest<'_>, data, version),
            ApiKey::Produce => roundtrip!(wire::ProduceRequest<'_>, data, version),
            ApiKey::SaslHandshake => roundtrip!(wire::SaslHandshakeRequest<'_>, data, version),
            ApiKey::SaslAuthenticate => {
                roundtrip!(wire::SaslAuthenticateRequest<'_>, data, version)
            }
        },
        _ => match api {
            ApiKey::ApiVersions => roundtrip!(wire::ApiVersionsResponse<'_>, data, version),
            ApiKey::Metadata => roundtrip!(wire::MetadataResponse<'_>, data, version),
            ApiKey::InitProducerId => roundtrip!(wire::InitProducerIdResponse, data, version),
            ApiKey::Produce => roundtrip!(wire::ProduceResponse<'_>, data, version),
            ApiKey::SaslHandshake => roundtrip!(wire::SaslHandshakeResponse<'_>, data, version),
            ApiKey::SaslAuthenticate => {
                roundtrip!(wire::SaslAuthenticateResponse<'_>, data, version)
            }
        },
    }
    let _ = decode_request(data);
    let _ = decode_any_response(data, api, version);
    let _ = FrameDecoder::new(1 << 16).decode(data);
    let _ = RecordBatch::decode(data);
    for batch in RecordBatches::new(data).flatten() {
        for record in batch.records.iter() {
            let _ = record.headers.iter().count();
        }
    }
    let mut copy = data.to_vec();
    let _ = wire::stamp(&mut copy, 1, 2, 3);
});
