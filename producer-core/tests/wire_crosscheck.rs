//! Cross-checks of the wire codec against the `kafka-protocol` crate.
//!
//! For every API and version we implement, proptest generates field values
//! (as `kafka-protocol` structs, normalised so that fields absent from the
//! version hold their defaults), then checks that:
//! 1. our encoding is byte-for-byte identical to `kafka-protocol`'s,
//! 2. we decode those bytes to the same field values,
//! 3. `kafka-protocol` decodes our bytes back to the original value,
//! 4. our encoder reports a one-byte-short buffer as an error,
//! 5. every strict prefix of the encoding fails to decode.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages as kp;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use producer_core::wire::{self, Body, EncodeError, List, Reader, Writer};
use proptest::collection::vec;
use proptest::prelude::*;

fn kp_encode<T: Encodable>(v: &T, version: i16) -> Vec<u8> {
    let mut b = BytesMut::new();
    v.encode(&mut b, version).expect("kafka-protocol encode");
    b.to_vec()
}

fn kp_decode<T: Decodable>(bytes: &[u8], version: i16) -> T {
    let mut b = Bytes::copy_from_slice(bytes);
    let v = T::decode(&mut b, version).expect("kafka-protocol decode");
    assert!(b.is_empty(), "kafka-protocol left {} bytes", b.len());
    v
}

fn our_encode<'a, B: Body<'a>>(v: &B, version: i16) -> Vec<u8> {
    let len = v.encoded_len(version).expect("size");
    let mut buf = vec![0u8; len];
    let mut w = Writer::new(&mut buf);
    v.encode(&mut w, version).expect("encode");
    assert_eq!(w.position(), len);
    if len > 0 {
        let mut short = vec![0u8; len - 1];
        assert_eq!(
            v.encode(&mut Writer::new(&mut short), version),
            Err(EncodeError::BufferTooSmall)
        );
    }
    buf
}

fn our_decode<'a, B: Body<'a>>(bytes: &'a [u8], version: i16) -> B {
    let mut r = Reader::new(bytes);
    let v = B::decode(&mut r, version).expect("decode");
    r.expect_end().expect("fully consumed");
    v
}

/// Encodes both ways and checks all four properties.
fn check<'a, K, O>(kp_value: &K, ours: &O, version: i16)
where
    K: Encodable + Decodable + PartialEq + std::fmt::Debug,
    O: Body<'a> + PartialEq + std::fmt::Debug,
{
    let theirs = kp_encode(kp_value, version);
    let mine = our_encode(ours, version);
    assert_eq!(mine, theirs, "encodings differ at v{version}");
    let back: K = kp_decode(&mine, version);
    assert_eq!(&back, kp_value);
    // Our decoded value borrows its input for as long as `ours` borrows
    // its data; leaking this small test buffer gives it that lifetime.
    let leaked: &'static [u8] = Box::leak(theirs.into_boxed_slice());
    let decoded: O = our_decode(leaked, version);
    assert_eq!(&decoded, ours);
    // Every strict prefix is an error (truncated input never decodes).
    for n in 0..leaked.len() {
        let mut r = Reader::new(&leaked[..n]);
        let res = O::decode(&mut r, version).and_then(|_| r.expect_end());
        assert!(res.is_err(), "prefix {n} of {} decoded", leaked.len());
    }
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_owned())
}

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

fn error_code() -> impl Strategy<Value = i16> {
    prop_oneof![Just(0i16), -1i16..120]
}

// ---------------------------------------------------------------- ApiVersions

proptest! {
    #[test]
    fn api_versions_request(version in 0i16..=3, name in text(), ver in text()) {
        let mut k = kp::ApiVersionsRequest::default();
        if version >= 3 {
            k.client_software_name = s(&name);
            k.client_software_version = s(&ver);
        }
        let ours = wire::ApiVersionsRequest {
            client_software_name: &k.client_software_name,
            client_software_version: &k.client_software_version,
        };
        check(&k, &ours, version);
    }

    #[test]
    fn api_versions_response(
        version in 0i16..=3,
        error_code in error_code().prop_filter("35 selects the v0 fallback", |e| *e != 35),
        keys in vec((any::<i16>(), any::<i16>(), any::<i16>()), 0..6),
        throttle in any::<i32>(),
        supported in vec((text(), any::<i16>(), any::<i16>()), 0..3),
        epoch in prop_oneof![Just(-1i64), any::<i64>()],
        finalized in vec((text(), any::<i16>(), any::<i16>()), 0..3),
        zk in any::<bool>(),
    ) {
        let mut k = kp::ApiVersionsResponse::default();
        k.error_code = error_code;
        k.api_keys = keys.iter().map(|&(a, mn, mx)| {
            let mut v = kp::api_versions_response::ApiVersion::default();
            v.api_key = a; v.min_version = mn; v.max_version = mx; v
        }).collect();
        if version >= 1 { k.throttle_time_ms = throttle; }
        if version >= 3 {
            k.supported_features = supported.iter().map(|(n, mn, mx)| {
                let mut f = kp::api_versions_response::SupportedFeatureKey::default();
                f.name = s(n); f.min_version = *mn; f.max_version = *mx; f
            }).collect();
            k.finalized_features_epoch = epoch;
            k.finalized_features = finalized.iter().map(|(n, mx, mn)| {
                let mut f = kp::api_versions_response::FinalizedFeatureKey::default();
                f.name = s(n); f.max_version_level = *mx; f.min_version_level = *mn; f
            }).collect();
            k.zk_migration_ready = zk;
        }
        let api_keys: Vec<_> = k.api_keys.iter().map(|v| wire::ApiVersion {
            api_key: v.api_key, min_version: v.min_version, max_version: v.max_version,
        }).collect();
        let sf: Vec<_> = k.supported_features.iter().map(|f| wire::SupportedFeature {
            name: &f.name, min_version: f.min_version, max_version: f.max_version,
        }).collect();
        let ff: Vec<_> = k.finalized_features.iter().map(|f| wire::FinalizedFeature {
            name: &f.name, max_version_level: f.max_version_level, min_version_level: f.min_version_level,
        }).collect();
        let ours = wire::ApiVersionsResponse {
            error_code: k.error_code,
            api_keys: List::from_slice(&api_keys),
            throttle_time_ms: k.throttle_time_ms,
            supported_features: List::from_slice(&sf),
            finalized_features_epoch: k.finalized_features_epoch,
            finalized_features: List::from_slice(&ff),
            zk_migration_ready: k.zk_migration_ready,
        };
        check(&k, &ours, version);
    }
}

// ---------------------------------------------------------- InitProducerId

proptest! {
    #[test]
    fn init_producer_id_request(
        version in 0i16..=5,
        txn in opt_text(),
        timeout in any::<i32>(),
        pid in prop_oneof![Just(-1i64), any::<i64>()],
        epoch in prop_oneof![Just(-1i16), any::<i16>()],
    ) {
        let mut k = kp::InitProducerIdRequest::default();
        k.transactional_id = txn.as_deref().map(|t| kp::TransactionalId(s(t)));
        k.transaction_timeout_ms = timeout;
        if version >= 3 {
            k.producer_id = kp::ProducerId(pid);
            k.producer_epoch = epoch;
        }
        let ours = wire::InitProducerIdRequest {
            transactional_id: k.transactional_id.as_ref().map(|t| &*t.0),
            transaction_timeout_ms: timeout,
            producer_id: k.producer_id.0,
            producer_epoch: k.producer_epoch,
        };
        check(&k, &ours, version);
    }

    #[test]
    fn init_producer_id_response(
        version in 0i16..=5,
        throttle in any::<i32>(),
        error_code in error_code(),
        pid in any::<i64>(),
        epoch in any::<i16>(),
    ) {
        let mut k = kp::InitProducerIdResponse::default();
        k.throttle_time_ms = throttle;
        k.error_code = error_code;
        k.producer_id = kp::ProducerId(pid);
        k.producer_epoch = epoch;
        let ours = wire::InitProducerIdResponse {
            throttle_time_ms: throttle,
            error_code,
            producer_id: pid,
            producer_epoch: epoch,
        };
        check(&k, &ours, version);
    }
}

// ---------------------------------------------------------------- Metadata

proptest! {
    #[test]
    fn metadata_request(
        version in 1i16..=12,
        topics in proptest::option::of(vec((any::<[u8; 16]>(), opt_text()), 0..4)),
        auto in any::<bool>(),
        cluster_ops in any::<bool>(),
        topic_ops in any::<bool>(),
    ) {
        let mut k = kp::MetadataRequest::default();
        k.topics = topics.map(|ts| ts.into_iter().map(|(id, name)| {
            let mut t = kp::metadata_request::MetadataRequestTopic::default();
            if version >= 10 {
                t.topic_id = uuid::Uuid::from_bytes(id);
                t.name = name.map(|n| kp::TopicName(s(&n)));
            } else {
                t.name = Some(kp::TopicName(s(&name.unwrap_or_default())));
            }
            t
        }).collect());
        k.allow_auto_topic_creation = if version >= 4 { auto } else { true };
        if (8..=10).contains(&version) { k.include_cluster_authorized_operations = cluster_ops; }
        if version >= 8 { k.include_topic_authorized_operations = topic_ops; }

        let topics: Option<Vec<_>> = k.topics.as_ref().map(|ts| ts.iter().map(|t| wire::MetadataRequestTopic {
            topic_id: *t.topic_id.as_bytes(),
            name: t.name.as_ref().map(|n| &*n.0),
        }).collect());
        let ours = wire::MetadataRequest {
            topics: topics.as_deref().map(List::from_slice),
            allow_auto_topic_creation: k.allow_auto_topic_creation,
            include_cluster_authorized_operations: k.include_cluster_authorized_operations,
            include_topic_authorized_operations: k.include_topic_authorized_operations,
        };
        check(&k, &ours, version);
    }
}

type PartGen = (i16, i32, i32, i32, Vec<i32>, Vec<i32>, Vec<i32>);
type TopicGen = (i16, Option<String>, [u8; 16], bool, Vec<PartGen>, i32);

fn partition_gen() -> impl Strategy<Value = PartGen> {
    (
        error_code(),
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        vec(any::<i32>(), 0..4),
        vec(any::<i32>(), 0..4),
        vec(any::<i32>(), 0..3),
    )
}

fn topic_gen() -> impl Strategy<Value = TopicGen> {
    (
        error_code(),
        opt_text(),
        any::<[u8; 16]>(),
        any::<bool>(),
        vec(partition_gen(), 0..4),
        any::<i32>(),
    )
}

proptest! {
    #[test]
    fn metadata_response(
        version in 1i16..=12,
        throttle in any::<i32>(),
        brokers in vec((any::<i32>(), text(), any::<i32>(), opt_text()), 0..4),
        cluster_id in opt_text(),
        controller in any::<i32>(),
        topics in vec(topic_gen(), 0..4),
        cluster_ops in any::<i32>(),
    ) {
        let mut k = kp::MetadataResponse::default();
        if version >= 3 { k.throttle_time_ms = throttle; }
        k.brokers = brokers.iter().map(|(id, host, port, rack)| {
            let mut b = kp::metadata_response::MetadataResponseBroker::default();
            b.node_id = kp::BrokerId(*id); b.host = s(host); b.port = *port;
            b.rack = rack.as_deref().map(s);
            b
        }).collect();
        if version >= 2 { k.cluster_id = cluster_id.as_deref().map(s); }
        k.controller_id = kp::BrokerId(controller);
        k.topics = topics.iter().map(|(err, name, id, internal, parts, ops)| {
            let mut t = kp::metadata_response::MetadataResponseTopic::default();
            t.error_code = *err;
            t.name = if version >= 12 {
                name.as_deref().map(|n| kp::TopicName(s(n)))
            } else {
                Some(kp::TopicName(s(name.as_deref().unwrap_or(""))))
            };
            if version >= 10 { t.topic_id = uuid::Uuid::from_bytes(*id); }
            t.is_internal = *internal;
            if version >= 8 { t.topic_authorized_operations = *ops; }
            t.partitions = parts.iter().map(|(e, idx, leader, epoch, rep, isr, off)| {
                let mut p = kp::metadata_response::MetadataResponsePartition::default();
                p.error_code = *e; p.partition_index = *idx; p.leader_id = kp::BrokerId(*leader);
                if version >= 7 { p.leader_epoch = *epoch; }
                p.replica_nodes = rep.iter().map(|&n| kp::BrokerId(n)).collect();
                p.isr_nodes = isr.iter().map(|&n| kp::BrokerId(n)).collect();
                if version >= 5 { p.offline_replicas = off.iter().map(|&n| kp::BrokerId(n)).collect(); }
                p
            }).collect();
            t
        }).collect();
        if (8..=10).contains(&version) { k.cluster_authorized_operations = cluster_ops; }

        let brokers: Vec<_> = k.brokers.iter().map(|b| wire::MetadataBroker {
            node_id: b.node_id.0, host: &b.host, port: b.port, rack: b.rack.as_deref(),
        }).collect();
        // Node id lists, then partitions, then topics: each level borrows the one before.
        let nodes: Vec<Vec<[Vec<i32>; 3]>> = k.topics.iter().map(|t| t.partitions.iter().map(|p| [
            p.replica_nodes.iter().map(|n| n.0).collect(),
            p.isr_nodes.iter().map(|n| n.0).collect(),
            p.offline_replicas.iter().map(|n| n.0).collect(),
        ]).collect()).collect();
        let parts: Vec<Vec<_>> = k.topics.iter().zip(&nodes).map(|(t, nodes)| t.partitions.iter().zip(nodes).map(|(p, n)| wire::MetadataPartition {
            error_code: p.error_code,
            partition_index: p.partition_index,
            leader_id: p.leader_id.0,
            leader_epoch: p.leader_epoch,
            replica_nodes: List::from_slice(&n[0]),
            isr_nodes: List::from_slice(&n[1]),
            offline_replicas: List::from_slice(&n[2]),
        }).collect()).collect();
        let topics: Vec<_> = k.topics.iter().zip(&parts).map(|(t, parts)| wire::MetadataTopic {
            error_code: t.error_code,
            name: t.name.as_ref().map(|n| &*n.0),
            topic_id: *t.topic_id.as_bytes(),
            is_internal: t.is_internal,
            partitions: List::from_slice(parts),
            topic_authorized_operations: t.topic_authorized_operations,
        }).collect();
        let ours = wire::MetadataResponse {
            throttle_time_ms: k.throttle_time_ms,
            brokers: List::from_slice(&brokers),
            cluster_id: k.cluster_id.as_deref(),
            controller_id: k.controller_id.0,
            topics: List::from_slice(&topics),
            cluster_authorized_operations: k.cluster_authorized_operations,
        };
        check(&k, &ours, version);
    }
}

// ----------------------------------------------------------------- Produce

proptest! {
    #[test]
    fn produce_request(
        version in 3i16..=11,
        txn in opt_text(),
        acks in prop_oneof![Just(-1i16), Just(0), Just(1), any::<i16>()],
        timeout in any::<i32>(),
        topics in vec((text(), vec((any::<i32>(), proptest::option::of(vec(any::<u8>(), 0..40))), 0..3)), 0..3),
    ) {
        let mut k = kp::ProduceRequest::default();
        k.transactional_id = txn.as_deref().map(|t| kp::TransactionalId(s(t)));
        k.acks = acks;
        k.timeout_ms = timeout;
        k.topic_data = topics.iter().map(|(name, parts)| {
            let mut t = kp::produce_request::TopicProduceData::default();
            t.name = kp::TopicName(s(name));
            t.partition_data = parts.iter().map(|(idx, recs)| {
                let mut p = kp::produce_request::PartitionProduceData::default();
                p.index = *idx;
                p.records = recs.as_ref().map(|r| Bytes::copy_from_slice(r));
                p
            }).collect();
            t
        }).collect();

        let parts: Vec<Vec<_>> = k.topic_data.iter().map(|t| t.partition_data.iter().map(|p| wire::ProducePartition {
            index: p.index,
            records: p.records.as_deref(),
        }).collect()).collect();
        let topics: Vec<_> = k.topic_data.iter().zip(&parts).map(|(t, parts)| wire::ProduceTopic {
            name: &t.name.0,
            partitions: List::from_slice(parts),
        }).collect();
        let ours = wire::ProduceRequest {
            transactional_id: k.transactional_id.as_ref().map(|t| &*t.0),
            acks,
            timeout_ms: timeout,
            topics: List::from_slice(&topics),
        };
        check(&k, &ours, version);
    }
}

type ProducePartGen = (
    i32,
    i16,
    i64,
    i64,
    i64,
    Vec<(i32, Option<String>)>,
    Option<String>,
    (i32, i32),
);

fn produce_part_gen() -> impl Strategy<Value = ProducePartGen> {
    (
        any::<i32>(),
        error_code(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        vec((any::<i32>(), opt_text()), 0..3),
        opt_text(),
        prop_oneof![Just((-1, -1)), (any::<i32>(), any::<i32>())],
    )
}

proptest! {
    #[test]
    fn produce_response(
        version in 3i16..=11,
        topics in vec((text(), vec(produce_part_gen(), 0..3)), 0..3),
        throttle in any::<i32>(),
        endpoints in vec((any::<i32>(), text(), any::<i32>(), opt_text()), 0..3),
    ) {
        let mut k = kp::ProduceResponse::default();
        k.throttle_time_ms = throttle;
        k.responses = topics.iter().map(|(name, parts)| {
            let mut t = kp::produce_response::TopicProduceResponse::default();
            t.name = kp::TopicName(s(name));
            t.partition_responses = parts.iter().map(|(idx, err, base, append, start, rec_errs, msg, leader)| {
                let mut p = kp::produce_response::PartitionProduceResponse::default();
                p.index = *idx; p.error_code = *err; p.base_offset = *base; p.log_append_time_ms = *append;
                if version >= 5 { p.log_start_offset = *start; }
                if version >= 8 {
                    p.record_errors = rec_errs.iter().map(|(i, m)| {
                        let mut e = kp::produce_response::BatchIndexAndErrorMessage::default();
                        e.batch_index = *i; e.batch_index_error_message = m.as_deref().map(s); e
                    }).collect();
                    p.error_message = msg.as_deref().map(s);
                }
                if version >= 10 {
                    p.current_leader.leader_id = kp::BrokerId(leader.0);
                    p.current_leader.leader_epoch = leader.1;
                }
                p
            }).collect();
            t
        }).collect();
        if version >= 10 {
            k.node_endpoints = endpoints.iter().map(|(id, host, port, rack)| {
                let mut e = kp::produce_response::NodeEndpoint::default();
                e.node_id = kp::BrokerId(*id); e.host = s(host); e.port = *port; e.rack = rack.as_deref().map(s); e
            }).collect();
        }

        let errs: Vec<Vec<Vec<_>>> = k.responses.iter().map(|t| t.partition_responses.iter().map(|p| p.record_errors.iter().map(|e| wire::RecordError {
            batch_index: e.batch_index,
            batch_index_error_message: e.batch_index_error_message.as_deref(),
        }).collect()).collect()).collect();
        let parts: Vec<Vec<_>> = k.responses.iter().zip(&errs).map(|(t, errs)| t.partition_responses.iter().zip(errs).map(|(p, errs)| wire::ProducePartitionResponse {
            index: p.index,
            error_code: p.error_code,
            base_offset: p.base_offset,
            log_append_time_ms: p.log_append_time_ms,
            log_start_offset: p.log_start_offset,
            record_errors: List::from_slice(errs),
            error_message: p.error_message.as_deref(),
            current_leader: wire::LeaderIdAndEpoch {
                leader_id: p.current_leader.leader_id.0,
                leader_epoch: p.current_leader.leader_epoch,
            },
        }).collect()).collect();
        let topics: Vec<_> = k.responses.iter().zip(&parts).map(|(t, parts)| wire::ProduceTopicResponse {
            name: &t.name.0,
            partitions: List::from_slice(parts),
        }).collect();
        let endpoints: Vec<_> = k.node_endpoints.iter().map(|e| wire::NodeEndpoint {
            node_id: e.node_id.0, host: &e.host, port: e.port, rack: e.rack.as_deref(),
        }).collect();
        let ours = wire::ProduceResponse {
            topics: List::from_slice(&topics),
            throttle_time_ms: throttle,
            node_endpoints: List::from_slice(&endpoints),
        };
        check(&k, &ours, version);
    }
}

// ------------------------------------------------------------------- SASL

proptest! {
    #[test]
    fn sasl_handshake_request(mechanism in text()) {
        let mut k = kp::SaslHandshakeRequest::default();
        k.mechanism = s(&mechanism);
        let ours = wire::SaslHandshakeRequest { mechanism: &k.mechanism };
        check(&k, &ours, 1);
        // v0, which we do not negotiate, has the same layout.
        prop_assert_eq!(kp_encode(&k, 0), kp_encode(&k, 1));
    }

    #[test]
    fn sasl_handshake_response(error_code in error_code(), mechanisms in vec(text(), 0..5)) {
        let mut k = kp::SaslHandshakeResponse::default();
        k.error_code = error_code;
        k.mechanisms = mechanisms.iter().map(|m| s(m)).collect();
        let names: Vec<_> = k.mechanisms.iter().map(|m| wire::MechanismName(m)).collect();
        let ours = wire::SaslHandshakeResponse {
            error_code,
            mechanisms: List::from_slice(&names),
        };
        check(&k, &ours, 1);
        for m in &mechanisms {
            prop_assert!(ours.enables(m));
        }
    }

    #[test]
    fn sasl_authenticate_request(version in 0i16..=2, auth in vec(any::<u8>(), 0..80)) {
        let mut k = kp::SaslAuthenticateRequest::default();
        k.auth_bytes = Bytes::copy_from_slice(&auth);
        let ours = wire::SaslAuthenticateRequest { auth_bytes: &k.auth_bytes };
        check(&k, &ours, version);
    }

    #[test]
    fn sasl_authenticate_response(
        version in 0i16..=2,
        error_code in error_code(),
        message in opt_text(),
        auth in vec(any::<u8>(), 0..80),
        lifetime in prop_oneof![Just(0i64), any::<i64>()],
    ) {
        let mut k = kp::SaslAuthenticateResponse::default();
        k.error_code = error_code;
        k.error_message = message.as_deref().map(s);
        k.auth_bytes = Bytes::copy_from_slice(&auth);
        if version >= 1 { k.session_lifetime_ms = lifetime; }
        let ours = wire::SaslAuthenticateResponse {
            error_code,
            error_message: k.error_message.as_deref(),
            auth_bytes: &k.auth_bytes,
            session_lifetime_ms: k.session_lifetime_ms,
        };
        check(&k, &ours, version);
    }
}

// ------------------------------------------------------------------ Headers

proptest! {
    #[test]
    fn request_header(key in any::<i16>(), ver in any::<i16>(), corr in any::<i32>(), client in opt_text(), flexible in any::<bool>()) {
        let mut k = kp::RequestHeader::default();
        k.request_api_key = key; k.request_api_version = ver; k.correlation_id = corr;
        k.client_id = client.as_deref().map(s);
        let hv = if flexible { 2 } else { 1 };
        let theirs = kp_encode(&k, hv);
        let ours = wire::RequestHeader { api_key: key, api_version: ver, correlation_id: corr, client_id: client.as_deref() };
        let mut buf = vec![0u8; theirs.len()];
        let mut w = Writer::new(&mut buf);
        ours.encode(&mut w, flexible).unwrap();
        prop_assert_eq!(w.written(), &theirs[..]);
        let mut r = Reader::new(&theirs);
        prop_assert_eq!(wire::RequestHeader::decode(&mut r, flexible).unwrap(), ours);
        prop_assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn response_header(corr in any::<i32>(), flexible in any::<bool>()) {
        let mut k = kp::ResponseHeader::default();
        k.correlation_id = corr;
        let theirs = kp_encode(&k, if flexible { 1 } else { 0 });
        let mut buf = vec![0u8; theirs.len()];
        let mut w = Writer::new(&mut buf);
        wire::ResponseHeader { correlation_id: corr }.encode(&mut w, flexible).unwrap();
        prop_assert_eq!(w.written(), &theirs[..]);
        let mut r = Reader::new(&theirs);
        prop_assert_eq!(wire::ResponseHeader::decode(&mut r, flexible).unwrap().correlation_id, corr);
    }
}

// ------------------------------------------------------------ Whole frames

/// Our framed encoding must equal size prefix + `kafka-protocol`'s header
/// (at the header version *it* selects for the API and version) + body.
fn frame_check<K, O>(version: i16, corr: i32, client: Option<&str>, kp_body: &K, ours: &O)
where
    K: Encodable + kafka_protocol::protocol::HeaderVersion,
    O: wire::RequestBody<'static>,
{
    let mut h = kp::RequestHeader::default();
    h.request_api_key = O::API_KEY.as_i16();
    h.request_api_version = version;
    h.correlation_id = corr;
    h.client_id = client.map(s);
    let mut expected = kp_encode(&h, K::header_version(version));
    expected.extend(kp_encode(kp_body, version));
    let mut buf = vec![0u8; expected.len() + 4];
    let n = wire::encode_request(&mut buf, version, corr, client, ours).unwrap();
    assert_eq!(n, expected.len() + 4);
    assert_eq!(&buf[..4], &(expected.len() as i32).to_be_bytes());
    assert_eq!(&buf[4..n], &expected[..], "{:?} v{version}", O::API_KEY);
    // Too small a buffer is an error, not a panic.
    assert_eq!(
        wire::encode_request(&mut buf[..n - 1], version, corr, client, ours),
        Err(EncodeError::BufferTooSmall)
    );
    let leaked: &'static [u8] = Box::leak(buf[4..n].to_vec().into_boxed_slice());
    let (header, _): (_, O) = wire::decode_request_as(leaked).unwrap();
    assert_eq!((header.correlation_id, header.client_id), (corr, client));
}

fn response_frame_check<K, O>(version: i16, corr: i32, kp_body: &K, ours: &O)
where
    K: Encodable + kafka_protocol::protocol::HeaderVersion,
    O: wire::ResponseBody<'static>,
{
    let mut h = kp::ResponseHeader::default();
    h.correlation_id = corr;
    let mut expected = kp_encode(&h, K::header_version(version));
    expected.extend(kp_encode(kp_body, version));
    let mut buf = vec![0u8; expected.len() + 4];
    let n = wire::encode_response(&mut buf, version, corr, ours).unwrap();
    assert_eq!(&buf[4..n], &expected[..], "{:?} v{version}", O::API_KEY);
    let leaked: &'static [u8] = Box::leak(buf[4..n].to_vec().into_boxed_slice());
    let (header, _): (_, O) = wire::decode_response(leaked, version).unwrap();
    assert_eq!(header.correlation_id, corr);
}

proptest! {
    #[test]
    fn frames_and_header_versions(corr in any::<i32>(), client in opt_text()) {
        let client = client.as_deref();
        for v in 0..=3 {
            frame_check(v, corr, client, &kp::ApiVersionsRequest::default(), &wire::ApiVersionsRequest::default());
            response_frame_check(v, corr, &kp::ApiVersionsResponse::default(), &wire::ApiVersionsResponse::default());
        }
        for v in 1..=12 {
            frame_check(v, corr, client, &kp::MetadataRequest::default(), &wire::MetadataRequest::default());
            response_frame_check(v, corr, &kp::MetadataResponse::default(), &wire::MetadataResponse::default());
        }
        let mut ipid = kp::InitProducerIdRequest::default();
        ipid.transactional_id = None; // kafka-protocol defaults to Some("")
        let mut ipid_resp = kp::InitProducerIdResponse::default();
        ipid_resp.producer_epoch = -1;
        for v in 0..=5 {
            frame_check(v, corr, client, &ipid, &wire::InitProducerIdRequest::default());
            response_frame_check(v, corr, &ipid_resp, &wire::InitProducerIdResponse::default());
        }
        for v in 3..=11 {
            frame_check(v, corr, client, &kp::ProduceRequest::default(), &wire::ProduceRequest::default());
            response_frame_check(v, corr, &kp::ProduceResponse::default(), &wire::ProduceResponse::default());
        }
        frame_check(1, corr, client, &kp::SaslHandshakeRequest::default(), &wire::SaslHandshakeRequest::default());
        response_frame_check(1, corr, &kp::SaslHandshakeResponse::default(), &wire::SaslHandshakeResponse::default());
        let mut authenticated = kp::SaslAuthenticateResponse::default();
        authenticated.error_message = None; // kafka-protocol defaults to Some("")
        for v in 0..=2 {
            frame_check(v, corr, client, &kp::SaslAuthenticateRequest::default(), &wire::SaslAuthenticateRequest::default());
            response_frame_check(v, corr, &authenticated, &wire::SaslAuthenticateResponse::default());
        }
    }
}
