//! The frames captured from a real client (librdkafka 2.16.0 via confluent-kafka 2.16.1,
//! idempotent producer) talking to a real broker (tansu 0.6.0) also decode with
//! `kafka-protocol`, as a sanity check of the fixtures themselves. See
//! `tests/fixtures/README.md` for how they were made.
//!
//! The known-answer tests against them (each frame decoded, checked field by field and
//! re-encoded to the identical bytes) are portable bodies in `tests/portable/codec.rs`, run
//! on the host by `tests/portable.rs` and on a Cortex-M3 by `on-target/`.

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tansu-0.6.0/");

fn load(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn fixtures_decode_with_kafka_protocol() {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Decodable;
    let mut b = bytes::Bytes::from(load("conn2_4_produce_v10_response.bin")).slice(4..);
    ResponseHeader::decode(&mut b, 1).unwrap();
    ProduceResponse::decode(&mut b, 10).unwrap();
    assert!(b.is_empty());
}
