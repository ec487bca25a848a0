//! The error classification table: every listed code, unknown codes, transport failures, and
//! InitProducerId errors.

use producer_core::ErrorCode;
use producer_core::state::{
    Attempt, Classification, Fence, Next, NotPersistedReason, Outcome, PossiblyPersistedReason,
    ProduceResult, ProducerEpoch, Sequence, UnknownOutcome, classify,
};
use producer_core::state::{InitProducerIdNext, classify_init_producer_id};

use super::{P0, answered, at, ready};

fn row(code: i16) -> Classification {
    classify(answered(ErrorCode(code), 42))
}

pub fn classification_success_and_duplicate_are_persisted() {
    let ok = row(0);
    assert_eq!(ok.attempt, Attempt::Appended { offset: Some(42) });
    assert_eq!((ok.next, ok.fence), (Next::Persisted, Fence::None));
    assert!(!ok.refresh_metadata);
    let dup = classify(answered(ErrorCode::DUPLICATE_SEQUENCE_NUMBER, -1));
    assert_eq!(dup.attempt, Attempt::Appended { offset: None });
    assert_eq!((dup.next, dup.fence), (Next::Persisted, Fence::None));
    assert!(!dup.refresh_metadata);
    // An offset beyond 32 bits is kept whole.
    let far = classify(answered(ErrorCode::NONE, i64::MAX));
    assert_eq!(
        far.attempt,
        Attempt::Appended {
            offset: Some(i64::MAX)
        }
    );
}

pub fn classification_every_row() {
    use Attempt::{MaybeAppended as Maybe, NotAppended as Not};
    // (code, attempt, next, fence, refresh metadata)
    let table: [(i16, Attempt, Next, Fence, bool); 31] = [
        (2, Not, Next::Retry, Fence::None, false),
        // Kafka answers 3 and 6 after the append too (leadership moved, or the partition went,
        // while the request waited for its replicas).
        (3, Maybe, Next::Retry, Fence::None, true),
        (5, Not, Next::Retry, Fence::None, true),
        (6, Maybe, Next::Retry, Fence::None, true),
        (7, Maybe, Next::Retry, Fence::None, false),
        (10, Not, Next::Fail, Fence::BumpEpoch, false),
        (13, Maybe, Next::Retry, Fence::None, true),
        (17, Not, Next::Fail, Fence::BumpEpoch, false),
        (18, Not, Next::Fail, Fence::BumpEpoch, false),
        (19, Not, Next::Retry, Fence::None, false),
        (20, Maybe, Next::Retry, Fence::None, false),
        (21, Not, Next::Fail, Fence::BumpEpoch, false),
        (29, Not, Next::Fail, Fence::BumpEpoch, false),
        (31, Not, Next::Fail, Fence::Fatal, false),
        (32, Not, Next::Fail, Fence::BumpEpoch, false),
        (35, Not, Next::Fail, Fence::BumpEpoch, false),
        (43, Not, Next::Fail, Fence::BumpEpoch, false),
        (45, Not, Next::Retry, Fence::BumpEpoch, false),
        (47, Not, Next::Retry, Fence::NewProducerId, false),
        (49, Not, Next::Retry, Fence::NewProducerId, false),
        (53, Not, Next::Fail, Fence::Fatal, false),
        (56, Maybe, Next::Retry, Fence::None, true),
        (59, Not, Next::Retry, Fence::NewProducerId, false),
        (74, Not, Next::Retry, Fence::None, true),
        (75, Not, Next::Retry, Fence::None, true),
        (87, Not, Next::Fail, Fence::BumpEpoch, false),
        (90, Not, Next::Retry, Fence::NewProducerId, false),
        // Codes we do not know: maybe appended, give up, fence.
        (-1, Maybe, Next::Fail, Fence::BumpEpoch, true),
        (1, Maybe, Next::Fail, Fence::BumpEpoch, true),
        (999, Maybe, Next::Fail, Fence::BumpEpoch, true),
        (i16::MIN, Maybe, Next::Fail, Fence::BumpEpoch, true),
    ];
    for (code, attempt, next, fence, refresh) in table {
        let want = Classification {
            attempt,
            next,
            fence,
            refresh_metadata: refresh,
        };
        assert_eq!(row(code), want, "code {code}");
    }
}

pub fn classification_transport_failures() {
    let before = classify(ProduceResult::NotWritten);
    assert_eq!(
        (before.attempt, before.next, before.fence),
        (Attempt::NotAppended, Next::Retry, Fence::None)
    );
    assert!(before.refresh_metadata);
    let after = classify(ProduceResult::LostAfterWrite);
    assert_eq!(
        (after.attempt, after.next, after.fence),
        (Attempt::MaybeAppended, Next::Retry, Fence::None)
    );
    assert!(after.refresh_metadata);
}

pub fn init_producer_id_errors_retry_unless_the_cluster_refuses_for_good() {
    let fatal = [
        ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
        ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        ErrorCode::UNSUPPORTED_VERSION,
    ];
    for code in fatal {
        assert_eq!(
            classify_init_producer_id(Some(code)),
            InitProducerIdNext::Fatal,
            "{code:?}"
        );
    }
    let retry = [
        None,
        Some(ErrorCode::COORDINATOR_NOT_AVAILABLE),
        Some(ErrorCode::NOT_LEADER_OR_FOLLOWER),
        Some(ErrorCode(999)),
    ];
    for error in retry {
        assert_eq!(
            classify_init_producer_id(error),
            InitProducerIdNext::Retry,
            "{error:?}"
        );
    }
}

/// Through the sequencer: a refusal fails only its batch, an unknown code leaves its batch
/// unknown, and both fence so later batches restart at sequence 0 under the next epoch. Under
/// either policy: the policy decides only what a deadline does, not what an answer means.
pub fn refused_and_unknown_answers_decide_the_batch_and_fence() {
    for policy in [UnknownOutcome::Wait, UnknownOutcome::FailAndFence] {
        let mut s = ready(policy);
        let a = s.enqueue(P0, 1, at(60_000)).unwrap();
        let b = s.enqueue(P0, 1, at(60_000)).unwrap();
        s.next_send(P0, at(0)).unwrap();
        s.on_produce_result(a, at(1), answered(ErrorCode::MESSAGE_TOO_LARGE, -1))
            .unwrap();
        assert_eq!(
            s.poll_event().map(|d| d.outcome),
            Some(Outcome::NotPersisted(NotPersistedReason::Rejected(
                ErrorCode::MESSAGE_TOO_LARGE
            ))),
            "{policy:?}"
        );
        assert_eq!(s.poll_event(), None, "{policy:?}");
        let pb = s.next_send(P0, at(2)).unwrap();
        assert_eq!(
            (pb.token, pb.stamp.epoch, pb.stamp.base_sequence),
            (b, ProducerEpoch(1), Sequence::ZERO),
            "{policy:?}"
        );
        s.on_produce_result(b, at(3), answered(ErrorCode(12345), -1))
            .unwrap();
        assert_eq!(
            s.poll_event().map(|d| d.outcome),
            Some(Outcome::PossiblyPersisted(
                PossiblyPersistedReason::Unclassified(ErrorCode(12345))
            )),
            "{policy:?}"
        );
        assert_eq!(s.poll_event(), None, "{policy:?}");
        assert_eq!(s.counters().fences, 2, "{policy:?}");
        assert_eq!(
            s.identity().ready().map(|(_, e)| e),
            Some(ProducerEpoch(2)),
            "{policy:?}"
        );
    }
}
