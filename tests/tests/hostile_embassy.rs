//! transport-embassy (embassy-net on a TAP device in a namespace of the case's own; root
//! needed, as CI has) against the broker that misbehaves on purpose (`tests::hostile`): a subset
//! of `hostile_produce`'s cases, with the gateway's capacities (1 topic, 4 partitions, 16
//! batches, 2 connection slots), 20 records sharing one 1.5 s deadline (10 s where every record
//! is expected persisted), reconnect backoff 100 ms (its cap and the retry backoff are the
//! defaults: 10 s, and 100 ms doubling to 1 s).
//!
//! Each case asserts: no panic (the executor thread resumes it here), every record's outcome
//! no later than 1 s after the deadline, no false outcome against the broker's ledger, the
//! case's expectation, and the broker's counts within `tests::hostile::verdict::Bounds`; DNS
//! queries for an unresolvable name within twice the reconnect schedule.

use tests::hostile::embassy_case::run_embassy_case;
use tests::hostile::tool_case::Target;
use tests::hostile::verdict::Expect;
use tests::hostile::{Api, Misbehaviour};

fn broker(name: &str, m: Misbehaviour, expect: Expect) {
    run_embassy_case(name, Target::Broker(m), expect);
}

#[test]
fn embassy_healthy_broker_persists_everything() {
    broker("healthy", Misbehaviour::Healthy, Expect::AllPersisted);
}

#[test]
fn embassy_broker_that_closes_on_accept() {
    broker(
        "closes-on-accept",
        Misbehaviour::CloseOnAccept,
        Expect::NotSent,
    );
}

#[test]
fn embassy_frame_length_2_31_minus_1_on_api_versions() {
    let m = Misbehaviour::FrameLength {
        api: Api::ApiVersions,
        length: i32::MAX,
    };
    broker("frame-length-2^31-1", m, Expect::NotSent);
}

#[test]
fn embassy_truncated_metadata_answers() {
    let m = Misbehaviour::Truncated { api: Api::Metadata };
    broker("truncated-metadata", m, Expect::NotSent);
}

#[test]
fn embassy_every_produce_answered_45() {
    broker(
        "out-of-order-sequence-45",
        Misbehaviour::ProduceError(45),
        Expect::NonePersisted,
    );
}

#[test]
fn embassy_topic_reported_missing_error_3() {
    broker(
        "topic-missing-3",
        Misbehaviour::TopicError(3),
        Expect::NotSent,
    );
}

#[test]
fn embassy_broker_that_never_reads() {
    broker("never-reads", Misbehaviour::NeverReads, Expect::NotSent);
}

#[test]
fn embassy_http_instead_of_kafka() {
    broker("http", Misbehaviour::Http, Expect::NotSent);
}

#[test]
fn embassy_unresolvable_bootstrap_name() {
    run_embassy_case("unresolvable-name", Target::Unresolvable, Expect::NotSent);
}
