//! The `produce` tool against a broker that misbehaves on purpose (`tests::hostile`), each case
//! in a network namespace of its own (root needed, as CI has): 40 lines, 1.5 s deadlines (10 s
//! where every record is expected persisted: those end at the last acknowledgement),
//! 16 KiB batches, every other setting the tool's default (reconnect backoff 100 ms doubling
//! to 10 s, retry backoff 100 ms doubling to 1 s).
//!
//! Every case asserts: no panic and exit 0 or 2 (a broker's answer is never a usage error);
//! every line's outcome by its deadline + 1 s (the run is over by then); no false outcome
//! against the broker's ledger (`Persisted` only for what it acknowledged intact,
//! `NotPersisted` never for what it appended); the case's expectation of the outcomes; the
//! JSON summary agreeing with the report; connections accepted and `connect()` calls, produce
//! attempts per batch, InitProducerId and Metadata requests and epoch bumps within the
//! bounds of `tests::hostile::verdict::Bounds` (the formulas and their reasoning are there);
//! DNS queries for an unresolvable name within twice the reconnect schedule; the child's
//! peak RSS within `tests::hostile::tool_case::rss_bound_kib`. Each case prints one line with
//! what the broker counted (`--nocapture`).

use tests::hostile::tool_case::{Target, run_tool_case};
use tests::hostile::verdict::Expect;
use tests::hostile::{Api, Misbehaviour};

fn broker(name: &str, m: Misbehaviour, expect: Expect) {
    run_tool_case(name, Target::Broker(m), expect);
}

#[test]
fn healthy_broker_persists_everything() {
    broker("healthy", Misbehaviour::Healthy, Expect::AllPersisted);
}

#[test]
fn frame_length_2_31_minus_1_on_api_versions() {
    let m = Misbehaviour::FrameLength {
        api: Api::ApiVersions,
        length: i32::MAX,
    };
    broker("frame-length-2^31-1", m, Expect::NotSent);
}

#[test]
fn frame_length_minus_1_on_metadata() {
    let m = Misbehaviour::FrameLength {
        api: Api::Metadata,
        length: -1,
    };
    broker("frame-length--1", m, Expect::NotSent);
}

#[test]
fn frame_length_0_on_produce() {
    let m = Misbehaviour::FrameLength {
        api: Api::Produce,
        length: 0,
    };
    broker("frame-length-0", m, Expect::NonePersisted);
}

#[test]
fn truncated_init_producer_id_answers() {
    let m = Misbehaviour::Truncated {
        api: Api::InitProducerId,
    };
    broker("truncated-init-producer-id", m, Expect::NotSent);
}

#[test]
fn truncated_metadata_answers() {
    let m = Misbehaviour::Truncated { api: Api::Metadata };
    broker("truncated-metadata", m, Expect::NotSent);
}

#[test]
fn random_bytes_after_valid_produce_headers() {
    let m = Misbehaviour::GarbageAfterHeader { api: Api::Produce };
    broker("garbage-after-header", m, Expect::NonePersisted);
}

#[test]
fn unknown_correlation_ids_on_produce() {
    let m = Misbehaviour::UnknownCorrelation { api: Api::Produce };
    broker("unknown-correlation-id", m, Expect::NonePersisted);
}

#[test]
fn duplicated_correlation_ids_on_produce() {
    let m = Misbehaviour::DuplicateAnswer { api: Api::Produce };
    broker("duplicated-correlation-id", m, Expect::AllPersisted);
}

#[test]
fn metadata_with_10000_brokers() {
    broker(
        "10000-brokers",
        Misbehaviour::ManyBrokers(10_000),
        Expect::AllPersisted,
    );
}

#[test]
fn metadata_with_100000_partitions() {
    broker(
        "100000-partitions",
        Misbehaviour::ManyPartitions(100_000),
        Expect::Any,
    );
}

/// A topic whose partitions are not numbered 0..n (here -1, 0, -7, 1, 1) is not trusted: the
/// client keeps what it knew of the topic (nothing) and asks again with backoff, so nothing is
/// sent and every record is not persisted by its deadline, never refused with exit 1.
#[test]
fn metadata_with_negative_partition_ids() {
    broker(
        "negative-partition-ids",
        Misbehaviour::NegativePartitions,
        Expect::NotSent,
    );
}

#[test]
fn unknown_error_code_on_every_produce() {
    broker(
        "unknown-error-code",
        Misbehaviour::ProduceError(999),
        Expect::NonePersisted,
    );
}

#[test]
fn every_produce_answered_45() {
    broker(
        "out-of-order-sequence-45",
        Misbehaviour::ProduceError(45),
        Expect::NonePersisted,
    );
}

#[test]
fn answers_for_partitions_never_asked() {
    broker(
        "unasked-partitions",
        Misbehaviour::UnaskedPartitions,
        Expect::NonePersisted,
    );
}

#[test]
fn slow_dribbled_answers() {
    broker(
        "dribble",
        Misbehaviour::Dribble(std::time::Duration::from_millis(3)),
        Expect::Any,
    );
}

#[test]
fn broker_that_never_reads() {
    broker("never-reads", Misbehaviour::NeverReads, Expect::NotSent);
}

#[test]
fn broker_that_closes_on_accept() {
    broker(
        "closes-on-accept",
        Misbehaviour::CloseOnAccept,
        Expect::NotSent,
    );
}

#[test]
fn http_instead_of_kafka() {
    broker("http", Misbehaviour::Http, Expect::NotSent);
}

#[test]
fn topic_reported_missing_error_3() {
    broker(
        "topic-missing-3",
        Misbehaviour::TopicError(3),
        Expect::NotSent,
    );
}

#[test]
fn refused_port() {
    run_tool_case("refused-port", Target::Refused, Expect::NotSent);
}

#[test]
fn unresolvable_bootstrap_name() {
    run_tool_case("unresolvable-name", Target::Unresolvable, Expect::NotSent);
}
