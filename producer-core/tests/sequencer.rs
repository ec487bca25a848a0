//! The sequencer's behaviour, row by row: the classification table, the cancel-eligibility
//! table, configuration checks, the identity lifecycle, fencing and the franz-go scenarios.

use core::time::Duration;

use producer_core::ErrorCode;
use producer_core::state::{
    Attempt, BatchState, BeforeNextSend, CancelDecision, Classification, Config, ConfigError,
    EnqueueError, FatalReason, Fence, FenceReason, Identity, Next, NotPersistedReason, Outcome,
    PartitionIndex, PossiblyPersistedReason, ProduceResult, ProducerEpoch, ProducerId, Sequence,
    Sequencer, Stamp, TokenError, UnknownOutcome, cancel_decision, classify,
};
use producer_core::time::Instant;

type Seq = Sequencer<4, 16>;

const P0: PartitionIndex = PartitionIndex(0);
const P1: PartitionIndex = PartitionIndex(1);

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn answered(code: ErrorCode, offset: i64) -> ProduceResult {
    ProduceResult::Answered {
        error: code,
        base_offset: offset,
    }
}

fn ready(policy: UnknownOutcome) -> Seq {
    ready_with(Config {
        unknown_outcome: policy,
        ..Config::default()
    })
}

fn ready_with(config: Config) -> Seq {
    let mut s = Seq::new(config).unwrap();
    assert!(s.poll_init_producer_id(at(0)));
    s.on_init_producer_id(at(0), Ok((ProducerId(7), ProducerEpoch(0))));
    assert_eq!(
        s.identity(),
        Identity::Ready {
            id: ProducerId(7),
            epoch: ProducerEpoch(0)
        }
    );
    s
}

fn drain(s: &mut Seq) -> Vec<Outcome> {
    core::iter::from_fn(|| s.poll_event().map(|d| d.outcome)).collect()
}

// --- the classification table -------------------------------------------------------------

fn row(code: i16) -> Classification {
    classify(answered(ErrorCode(code), 42))
}

#[test]
fn classification_success_and_duplicate_are_persisted() {
    let ok = row(0);
    assert_eq!(ok.attempt, Attempt::Appended { offset: Some(42) });
    assert_eq!((ok.next, ok.fence), (Next::Persisted, Fence::None));
    let dup = classify(answered(ErrorCode::DUPLICATE_SEQUENCE_NUMBER, -1));
    assert_eq!(dup.attempt, Attempt::Appended { offset: None });
    assert_eq!((dup.next, dup.fence), (Next::Persisted, Fence::None));
    assert!(!dup.refresh_metadata && !dup.drain_partition);
}

#[test]
fn classification_every_row() {
    use Attempt::{MaybeAppended as Maybe, NotAppended as Not};
    // (code, attempt, next, fence, refresh metadata, drain partition)
    let table: &[(i16, Attempt, Next, Fence, bool, bool)] = &[
        (2, Not, Next::Retry, Fence::None, false, true),
        (3, Not, Next::Retry, Fence::None, true, true),
        (5, Not, Next::Retry, Fence::None, true, true),
        (6, Not, Next::Retry, Fence::None, true, true),
        (7, Maybe, Next::Retry, Fence::None, false, true),
        (10, Not, Next::Fail, Fence::BumpEpoch, false, false),
        (13, Maybe, Next::Retry, Fence::None, true, true),
        (17, Not, Next::Fail, Fence::BumpEpoch, false, false),
        (18, Not, Next::Fail, Fence::BumpEpoch, false, false),
        (19, Not, Next::Retry, Fence::None, false, true),
        (20, Maybe, Next::Retry, Fence::None, false, true),
        (21, Not, Next::Fail, Fence::BumpEpoch, false, false),
        (29, Not, Next::Fail, Fence::BumpEpoch, false, false),
        (31, Not, Next::Fail, Fence::Fatal, false, false),
        (32, Not, Next::Fail, Fence::BumpEpoch, false, false),
        (35, Not, Next::Fail, Fence::BumpEpoch, false, false),
        (43, Not, Next::Fail, Fence::BumpEpoch, false, false),
        (45, Not, Next::Retry, Fence::BumpEpoch, false, false),
        (47, Not, Next::Retry, Fence::NewProducerId, false, false),
        (49, Not, Next::Retry, Fence::NewProducerId, false, false),
        (53, Not, Next::Fail, Fence::Fatal, false, false),
        (56, Maybe, Next::Retry, Fence::None, true, true),
        (59, Not, Next::Retry, Fence::NewProducerId, false, false),
        (74, Not, Next::Retry, Fence::None, true, true),
        (75, Not, Next::Retry, Fence::None, true, true),
        (87, Not, Next::Fail, Fence::BumpEpoch, false, false),
        (90, Not, Next::Retry, Fence::NewProducerId, false, false),
        // Codes we do not know: maybe appended, give up, fence.
        (-1, Maybe, Next::Fail, Fence::BumpEpoch, true, false),
        (1, Maybe, Next::Fail, Fence::BumpEpoch, true, false),
        (999, Maybe, Next::Fail, Fence::BumpEpoch, true, false),
        (i16::MIN, Maybe, Next::Fail, Fence::BumpEpoch, true, false),
    ];
    for &(code, attempt, next, fence, refresh, drain) in table {
        let got = row(code);
        let want = Classification {
            attempt,
            next,
            fence,
            refresh_metadata: refresh,
            drain_partition: drain,
        };
        assert_eq!(got, want, "code {code}");
    }
}

#[test]
fn classification_transport_failures() {
    let before = classify(ProduceResult::NotWritten);
    assert_eq!(
        (before.attempt, before.next, before.fence),
        (Attempt::NotAppended, Next::Retry, Fence::None)
    );
    assert!(before.refresh_metadata && before.drain_partition);
    let after = classify(ProduceResult::LostAfterWrite);
    assert_eq!(
        (after.attempt, after.next, after.fence),
        (Attempt::MaybeAppended, Next::Retry, Fence::None)
    );
    assert!(after.refresh_metadata && after.drain_partition);
}

// --- the cancel-eligibility table ---------------------------------------------------------

#[test]
fn cancel_eligibility_table() {
    let stamp = Stamp {
        producer_id: ProducerId(1),
        epoch: ProducerEpoch(0),
        base_sequence: Sequence::ZERO,
    };
    let not_persisted = Outcome::NotPersisted(NotPersistedReason::Deadline);
    let possibly = Outcome::PossiblyPersisted(PossiblyPersistedReason::Deadline);
    let buffered = BatchState::Buffered;
    let refused = BatchState::Stamped {
        stamp,
        maybe_written: false,
        retry_at: at(0),
    };
    let unknown = BatchState::Stamped {
        stamp,
        maybe_written: true,
        retry_at: at(0),
    };
    let in_flight = BatchState::InFlight {
        stamp,
        maybe_written: false,
    };
    let decided = BatchState::Decided {
        outcome: not_persisted,
        outstanding: false,
    };
    let fail = |outcome, first| CancelDecision::Fail { outcome, first };
    use BeforeNextSend::{Fence, Nothing};
    use UnknownOutcome::{FailAndFence, Wait};
    let table = [
        (buffered, Wait, fail(not_persisted, Nothing)),
        (buffered, FailAndFence, fail(not_persisted, Nothing)),
        (refused, Wait, CancelDecision::Wait),
        (refused, FailAndFence, fail(not_persisted, Fence)),
        (unknown, Wait, CancelDecision::Wait),
        (unknown, FailAndFence, fail(possibly, Fence)),
        (in_flight, Wait, CancelDecision::Wait),
        (in_flight, FailAndFence, fail(possibly, Fence)),
        (decided, Wait, CancelDecision::AlreadyDecided),
        (decided, FailAndFence, CancelDecision::AlreadyDecided),
    ];
    for (state, policy, want) in table {
        assert_eq!(
            cancel_decision(&state, policy),
            want,
            "{state:?} under {policy:?}"
        );
    }
}

// --- configuration ------------------------------------------------------------------------

#[test]
fn bad_configuration_is_rejected_with_what_to_change() {
    let base = Config::default();
    let cases = [
        (
            Config {
                max_in_flight_per_partition: 0,
                ..base
            },
            ConfigError::MaxInFlight { given: 0 },
        ),
        (
            Config {
                max_in_flight_per_partition: 6,
                ..base
            },
            ConfigError::MaxInFlight { given: 6 },
        ),
        (
            Config {
                retry_backoff: Duration::ZERO,
                ..base
            },
            ConfigError::ZeroRetryBackoff,
        ),
        (
            Config {
                retry_backoff_max: Duration::from_millis(1),
                ..base
            },
            ConfigError::BackoffMaxBelowBackoff,
        ),
    ];
    for (config, want) in cases {
        assert_eq!(Seq::new(config).unwrap_err(), want);
        assert!(want.to_string().contains("set") || want.to_string().contains("raise"));
    }
    assert_eq!(
        Sequencer::<0, 4>::new(base).unwrap_err(),
        ConfigError::PartitionCapacity
    );
    assert_eq!(
        Sequencer::<4, 0>::new(base).unwrap_err(),
        ConfigError::BatchCapacity
    );
    assert!(
        ConfigError::MaxInFlight { given: 6 }
            .to_string()
            .contains("between 1 and 5")
    );
}

// --- identity lifecycle -------------------------------------------------------------------

#[test]
fn producer_id_request_retries_with_backoff_and_stops_on_authorization_failure() {
    let mut s = Seq::new(Config::default()).unwrap();
    assert!(s.poll_init_producer_id(at(0)));
    assert_eq!(s.identity(), Identity::RequestingId);
    assert!(!s.poll_init_producer_id(at(0)), "one request at a time");
    s.on_init_producer_id(at(5), Err(Some(ErrorCode::COORDINATOR_NOT_AVAILABLE)));
    assert_eq!(s.identity(), Identity::NoId { retry_at: at(105) });
    assert!(!s.poll_init_producer_id(at(104)));
    assert!(s.poll_init_producer_id(at(105)));
    // A malformed grant is a failed request, not an identity.
    s.on_init_producer_id(at(110), Ok((ProducerId(-1), ProducerEpoch(0))));
    assert!(matches!(s.identity(), Identity::NoId { .. }));
    assert!(s.poll_init_producer_id(at(300)));
    let t = s.enqueue(P0, 1, at(10_000)).unwrap();
    s.on_init_producer_id(at(300), Err(Some(ErrorCode::CLUSTER_AUTHORIZATION_FAILED)));
    assert_eq!(
        s.identity(),
        Identity::Fatal(FatalReason::Broker(ErrorCode::CLUSTER_AUTHORIZATION_FAILED))
    );
    let d = s.poll_event().unwrap();
    assert_eq!(d.token, t);
    assert!(matches!(
        d.outcome,
        Outcome::NotPersisted(NotPersistedReason::ProducerFatal(_))
    ));
    assert!(matches!(
        s.enqueue(P0, 1, at(20_000)),
        Err(EnqueueError::Fatal(_))
    ));
}

#[test]
fn nothing_is_sent_without_an_identity() {
    let mut s = Seq::new(Config::default()).unwrap();
    s.enqueue(P0, 3, at(1000)).unwrap();
    assert_eq!(s.next_send(P0, at(1)), None);
    assert!(s.poll_init_producer_id(at(1)));
    assert_eq!(s.next_send(P0, at(2)), None);
}

#[test]
fn enqueue_rejects_what_it_cannot_hold() {
    let mut s = ready(UnknownOutcome::FailAndFence);
    assert_eq!(
        s.enqueue(PartitionIndex(4), 1, at(1)),
        Err(EnqueueError::NoSuchPartition)
    );
    assert_eq!(s.enqueue(P0, 0, at(1)), Err(EnqueueError::RecordCount));
    assert_eq!(
        s.enqueue(P0, i32::MAX as u32 + 1, at(1)),
        Err(EnqueueError::RecordCount)
    );
    for _ in 0..16 {
        s.enqueue(P0, 1, at(1000)).unwrap();
    }
    assert_eq!(s.enqueue(P0, 1, at(1000)), Err(EnqueueError::Full));
}

// --- sequences, window, resends -----------------------------------------------------------

#[test]
fn sequences_are_contiguous_and_the_window_opens_after_the_first_success() {
    let mut s = ready(UnknownOutcome::FailAndFence);
    let tokens: Vec<_> = (0..7)
        .map(|i| s.enqueue(P0, i + 1, at(60_000)).unwrap())
        .collect();
    let first = s.next_send(P0, at(1)).unwrap();
    assert_eq!(first.token, tokens[0]);
    assert_eq!(first.stamp.base_sequence, Sequence::ZERO);
    assert_eq!(
        s.next_send(P0, at(1)),
        None,
        "one in flight before a success"
    );
    s.on_produce_result(first.token, at(2), answered(ErrorCode::NONE, 0))
        .unwrap();
    let mut expected = 1;
    let mut permits = Vec::new();
    while let Some(p) = s.next_send(P0, at(3)) {
        assert_eq!(p.stamp.base_sequence.get(), expected);
        expected += p.records as i32;
        permits.push(p);
    }
    assert_eq!(permits.len(), 5, "five in flight after a success");
    assert_eq!(s.partition_counters(P0).unwrap().in_flight, 5);
    assert_eq!(
        s.partition_counters(P0).unwrap().acked_sequence,
        Some(Sequence::ZERO)
    );
    // Partitions are independent.
    let other = s.enqueue(P1, 2, at(60_000)).unwrap();
    assert_eq!(s.next_send(P1, at(3)).unwrap().token, other);
}

#[test]
fn a_retriable_refusal_resends_the_same_stamp_in_order_after_backoff() {
    let mut s = ready(UnknownOutcome::Wait);
    let a = s.enqueue(P0, 2, at(60_000)).unwrap();
    let first = s.next_send(P0, at(0)).unwrap();
    s.on_produce_result(a, at(1), answered(ErrorCode::NONE, 0))
        .unwrap();
    let b = s.enqueue(P0, 3, at(60_000)).unwrap();
    let c = s.enqueue(P0, 4, at(60_000)).unwrap();
    let pb = s.next_send(P0, at(2)).unwrap();
    let pc = s.next_send(P0, at(2)).unwrap();
    assert_eq!((pb.token, pc.token), (b, c));
    assert_eq!(pb.stamp.base_sequence.get(), 2);
    let class = s
        .on_produce_result(b, at(3), answered(ErrorCode::NOT_LEADER_OR_FOLLOWER, -1))
        .unwrap();
    assert!(class.refresh_metadata);
    // c is still out: b must not overtake it (drain to one in flight).
    assert_eq!(s.next_send(P0, at(500)), None);
    s.on_produce_result(c, at(4), answered(ErrorCode::NOT_LEADER_OR_FOLLOWER, -1))
        .unwrap();
    assert_eq!(s.next_send(P0, at(50)), None, "backing off");
    let rb = s.next_send(P0, at(103)).unwrap();
    assert_eq!((rb.token, rb.stamp, rb.attempt), (b, pb.stamp, 2));
    assert_eq!(s.next_send(P0, at(500)), None, "one resend at a time");
    s.on_produce_result(b, at(104), answered(ErrorCode::NONE, 2))
        .unwrap();
    let rc = s.next_send(P0, at(500)).unwrap();
    assert_eq!((rc.token, rc.stamp), (c, pc.stamp));
    assert_eq!(first.stamp.base_sequence, Sequence::ZERO);
    assert_eq!(s.counters().retries, 2);
}

// --- unknown is sticky; fencing ------------------------------------------------------------

#[test]
fn unknown_is_sticky_across_a_later_refusal() {
    let mut s = ready(UnknownOutcome::Wait);
    let t = s.enqueue(P0, 1, at(60_000)).unwrap();
    s.next_send(P0, at(0)).unwrap();
    s.on_produce_result(t, at(1), ProduceResult::LostAfterWrite)
        .unwrap();
    assert!(matches!(
        s.batch_state(t),
        Some(BatchState::Stamped {
            maybe_written: true,
            ..
        })
    ));
    s.next_send(P0, at(200)).unwrap();
    // The resend is refused with a gap: this attempt appended nothing, but the first may have.
    s.on_produce_result(
        t,
        at(201),
        answered(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, -1),
    )
    .unwrap();
    assert_eq!(
        drain(&mut s),
        vec![Outcome::PossiblyPersisted(PossiblyPersistedReason::Fenced(
            FenceReason::Broker(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        ))]
    );
    assert_eq!(
        s.identity(),
        Identity::Ready {
            id: ProducerId(7),
            epoch: ProducerEpoch(1)
        }
    );
    assert_eq!(s.counters().epoch_bumps, 1);
}

#[test]
fn a_gap_fences_then_resends_under_the_bumped_epoch_from_sequence_zero() {
    let mut s = ready(UnknownOutcome::FailAndFence);
    let a = s.enqueue(P0, 5, at(60_000)).unwrap();
    s.next_send(P0, at(0)).unwrap();
    s.on_produce_result(a, at(1), answered(ErrorCode::NONE, 0))
        .unwrap();
    let b = s.enqueue(P0, 2, at(60_000)).unwrap();
    let c = s.enqueue(P1, 1, at(60_000)).unwrap();
    assert_eq!(s.next_send(P0, at(2)).unwrap().stamp.base_sequence.get(), 5);
    let pc = s.next_send(P1, at(2)).unwrap();
    s.on_produce_result(
        b,
        at(3),
        answered(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, -1),
    )
    .unwrap();
    // Fencing: nothing more with epoch 0, and c of epoch 0 is still out.
    assert!(matches!(
        s.identity(),
        Identity::Fencing { new_id: false, .. }
    ));
    assert_eq!(s.next_send(P0, at(500)), None);
    s.on_produce_result(c, at(4), answered(ErrorCode::NONE, 0))
        .unwrap();
    // Drained: bumped, every partition back at sequence 0, b restamped.
    assert_eq!(
        s.identity(),
        Identity::Ready {
            id: ProducerId(7),
            epoch: ProducerEpoch(1)
        }
    );
    let rb = s.next_send(P0, at(5)).unwrap();
    assert_eq!(rb.token, b);
    assert_eq!(rb.stamp.epoch, ProducerEpoch(1));
    assert_eq!(rb.stamp.base_sequence, Sequence::ZERO);
    assert_eq!(rb.attempt, 1);
    assert_eq!(pc.stamp.epoch, ProducerEpoch(0));
    assert_eq!(
        s.partition_counters(P1).unwrap().next_sequence,
        Sequence::ZERO
    );
}

#[test]
fn a_rejected_bumped_epoch_asks_for_a_new_producer_id() {
    for code in [
        ErrorCode::PRODUCER_FENCED,
        ErrorCode::INVALID_PRODUCER_EPOCH,
    ] {
        let mut s = ready(UnknownOutcome::FailAndFence);
        let t = s.enqueue(P0, 1, at(60_000)).unwrap();
        s.next_send(P0, at(0)).unwrap();
        s.on_produce_result(t, at(1), answered(code, -1)).unwrap();
        assert!(matches!(s.identity(), Identity::NoId { .. }), "{code:?}");
        assert!(s.poll_init_producer_id(at(1)));
        s.on_init_producer_id(at(2), Ok((ProducerId(8), ProducerEpoch(0))));
        let p = s.next_send(P0, at(3)).unwrap();
        assert_eq!(p.token, t);
        assert_eq!(p.stamp.producer_id, ProducerId(8));
        assert_eq!(p.stamp.base_sequence, Sequence::ZERO);
    }
}

#[test]
fn epoch_exhaustion_gets_a_new_producer_id_instead_of_wrapping() {
    let mut s = Seq::new(Config::default()).unwrap();
    s.poll_init_producer_id(at(0));
    s.on_init_producer_id(at(0), Ok((ProducerId(3), ProducerEpoch(i16::MAX - 1))));
    let t = s.enqueue(P0, 1, at(60_000)).unwrap();
    s.next_send(P0, at(0)).unwrap();
    s.on_produce_result(
        t,
        at(1),
        answered(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, -1),
    )
    .unwrap();
    assert_eq!(
        s.identity(),
        Identity::Ready {
            id: ProducerId(3),
            epoch: ProducerEpoch(i16::MAX)
        }
    );
    s.next_send(P0, at(2)).unwrap();
    s.on_produce_result(
        t,
        at(3),
        answered(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, -1),
    )
    .unwrap();
    assert!(matches!(s.identity(), Identity::NoId { .. }));
    assert_eq!(s.counters().epoch_bumps, 1);
}

#[test]
fn a_refused_batch_fails_and_later_batches_continue_after_the_fence() {
    let mut s = ready(UnknownOutcome::FailAndFence);
    let a = s.enqueue(P0, 1, at(60_000)).unwrap();
    let b = s.enqueue(P0, 1, at(60_000)).unwrap();
    s.next_send(P0, at(0)).unwrap();
    s.on_produce_result(a, at(1), answered(ErrorCode::MESSAGE_TOO_LARGE, -1))
        .unwrap();
    assert_eq!(
        drain(&mut s),
        vec![Outcome::NotPersisted(NotPersistedReason::Rejected(
            ErrorCode::MESSAGE_TOO_LARGE
        ))]
    );
    let pb = s.next_send(P0, at(2)).unwrap();
    assert_eq!(
        (pb.token, pb.stamp.epoch, pb.stamp.base_sequence),
        (b, ProducerEpoch(1), Sequence::ZERO)
    );
}

#[test]
fn an_unknown_error_code_is_possibly_persisted_and_fences() {
    let mut s = ready(UnknownOutcome::Wait);
    let t = s.enqueue(P0, 1, at(60_000)).unwrap();
    s.next_send(P0, at(0)).unwrap();
    s.on_produce_result(t, at(1), answered(ErrorCode(12345), -1))
        .unwrap();
    assert_eq!(
        drain(&mut s),
        vec![Outcome::PossiblyPersisted(
            PossiblyPersistedReason::Unclassified(ErrorCode(12345))
        )]
    );
    assert_eq!(s.counters().fences, 1);
}

// --- outcomes and tokens ------------------------------------------------------------------

#[test]
fn each_batch_gets_exactly_one_outcome_and_stale_tokens_are_refused() {
    let mut s = ready(UnknownOutcome::FailAndFence);
    let t = s.enqueue(P0, 4, at(60_000)).unwrap();
    s.next_send(P0, at(0)).unwrap();
    s.on_produce_result(t, at(1), answered(ErrorCode::NONE, 17))
        .unwrap();
    let d = s.poll_event().unwrap();
    assert_eq!(
        (d.token, d.records, d.outcome),
        (t, 4, Outcome::Persisted { offset: Some(17) })
    );
    assert_eq!(s.poll_event(), None);
    assert!(s.is_empty());
    assert_eq!(
        s.on_produce_result(t, at(2), answered(ErrorCode::NONE, 17)),
        Err(TokenError::Unknown)
    );
    // The slot is reused with a new generation; the old token stays dead.
    let u = s.enqueue(P0, 1, at(60_000)).unwrap();
    assert_eq!(u.slot(), t.slot());
    assert_ne!(u, t);
    assert_eq!(s.cancel(t, at(3)), Err(TokenError::Unknown));
    assert_eq!(
        s.on_produce_result(u, at(3), answered(ErrorCode::NONE, 0)),
        Err(TokenError::NotInFlight)
    );
    let c = s.counters();
    assert_eq!((c.persisted.batches, c.persisted.records), (1, 4));
    assert_eq!(c.producer_id, Some(ProducerId(7)));
}

#[test]
fn a_late_answer_after_the_deadline_does_not_change_the_outcome() {
    let mut s = ready(UnknownOutcome::FailAndFence);
    let t = s.enqueue(P0, 1, at(1000)).unwrap();
    s.next_send(P0, at(0)).unwrap();
    assert_eq!(s.poll(at(999)), Some(at(1000)));
    assert_eq!(s.poll_event(), None);
    s.poll(at(1000));
    assert_eq!(
        drain(&mut s),
        vec![Outcome::PossiblyPersisted(
            PossiblyPersistedReason::Deadline
        )]
    );
    // The request is still out: the fence waits for it, then the late answer frees the slot.
    assert!(matches!(s.identity(), Identity::Fencing { .. }));
    assert!(!s.is_empty());
    s.on_produce_result(t, at(1500), answered(ErrorCode::NONE, 3))
        .unwrap();
    assert_eq!(s.poll_event(), None);
    assert!(s.is_empty());
    assert_eq!(
        s.identity(),
        Identity::Ready {
            id: ProducerId(7),
            epoch: ProducerEpoch(1)
        }
    );
}

#[test]
fn cancel_applies_the_same_decision_as_a_deadline() {
    let mut s = ready(UnknownOutcome::Wait);
    let buffered = s.enqueue(P0, 1, at(60_000)).unwrap();
    let sent = s.enqueue(P1, 1, at(60_000)).unwrap();
    s.next_send(P1, at(0)).unwrap();
    assert!(matches!(
        s.cancel(buffered, at(5)).unwrap(),
        CancelDecision::Fail { .. }
    ));
    assert_eq!(s.cancel(sent, at(5)).unwrap(), CancelDecision::Wait);
    assert_eq!(
        drain(&mut s),
        vec![Outcome::NotPersisted(NotPersistedReason::Deadline)]
    );
    s.on_produce_result(sent, at(6), answered(ErrorCode::NONE, 0))
        .unwrap();
    assert_eq!(drain(&mut s), vec![Outcome::Persisted { offset: Some(0) }]);
}

#[test]
fn a_fatal_answer_decides_everything_held() {
    let mut s = ready(UnknownOutcome::Wait);
    let a = s.enqueue(P0, 1, at(60_000)).unwrap();
    let b = s.enqueue(P1, 1, at(60_000)).unwrap();
    let c = s.enqueue(P1, 1, at(60_000)).unwrap();
    let d = s.enqueue(PartitionIndex(2), 1, at(60_000)).unwrap();
    s.next_send(P0, at(0)).unwrap();
    s.next_send(P1, at(0)).unwrap();
    s.next_send(PartitionIndex(2), at(0)).unwrap();
    s.on_produce_result(
        a,
        at(1),
        answered(ErrorCode::CLUSTER_AUTHORIZATION_FAILED, -1),
    )
    .unwrap();
    let fatal = FatalReason::Broker(ErrorCode::CLUSTER_AUTHORIZATION_FAILED);
    let rejected = NotPersistedReason::Rejected(ErrorCode::CLUSTER_AUTHORIZATION_FAILED);
    let mut got: Vec<_> = core::iter::from_fn(|| s.poll_event())
        .map(|d| (d.token, d.outcome))
        .collect();
    got.sort_by_key(|(t, _)| t.slot());
    // Buffered batches are decided at once; those in flight wait for their own answer.
    assert_eq!(
        got,
        vec![
            (a, Outcome::NotPersisted(rejected)),
            (
                c,
                Outcome::NotPersisted(NotPersistedReason::ProducerFatal(fatal))
            ),
        ]
    );
    // An answer in the same response is as definitive as the fatal one...
    s.on_produce_result(
        b,
        at(2),
        answered(ErrorCode::CLUSTER_AUTHORIZATION_FAILED, -1),
    )
    .unwrap();
    // ...and a lost one leaves the batch unknown, never to be resent.
    s.on_produce_result(d, at(2), ProduceResult::LostAfterWrite)
        .unwrap();
    let mut got: Vec<_> = core::iter::from_fn(|| s.poll_event())
        .map(|d| (d.token, d.outcome))
        .collect();
    got.sort_by_key(|(t, _)| t.slot());
    assert_eq!(
        got,
        vec![
            (b, Outcome::NotPersisted(rejected)),
            (
                d,
                Outcome::PossiblyPersisted(PossiblyPersistedReason::ProducerFatal(fatal))
            ),
        ]
    );
    assert!(s.is_empty());
}

#[test]
fn poll_reports_the_next_instant_that_matters() {
    let mut s = ready(UnknownOutcome::Wait);
    let sent = s.enqueue(P0, 1, at(500)).unwrap();
    s.next_send(P0, at(0)).unwrap();
    // Under Wait an in-flight batch's deadline does not matter; a buffered one's does.
    assert_eq!(s.poll(at(1)), None);
    s.enqueue(P1, 1, at(800)).unwrap();
    assert_eq!(s.poll(at(1)), Some(at(800)));
    s.on_produce_result(sent, at(2), ProduceResult::NotWritten)
        .unwrap();
    assert_eq!(s.poll(at(2)), Some(at(102)), "end of the resend backoff");
}

// --- the franz-go scenarios (issues 930 and 1217) -----------------------------------------

/// Broker unreachable before anything is written: the batch is never handed out, and the
/// caller hears `NotPersisted` exactly at its 1 s deadline, under both policies.
#[test]
fn franz_go_unreachable_broker_gives_not_persisted_at_the_deadline() {
    for policy in [UnknownOutcome::Wait, UnknownOutcome::FailAndFence] {
        let mut s = ready(policy);
        let t = s.enqueue(P0, 10, at(1000)).unwrap();
        // The client has no connection, so it never asks for a batch to send.
        assert_eq!(s.poll(at(0)), Some(at(1000)));
        s.poll(at(999));
        assert_eq!(s.poll_event(), None, "{policy:?}: not before the deadline");
        s.poll(at(1000));
        let d = s.poll_event().unwrap();
        assert_eq!(d.token, t);
        assert_eq!(
            d.outcome,
            Outcome::NotPersisted(NotPersistedReason::Deadline)
        );
        assert_eq!(
            s.counters().fences,
            0,
            "nothing was stamped, nothing to fence"
        );
    }
}

/// Written, then the connection died and the broker stays unreachable: under FailAndFence
/// `PossiblyPersisted` at exactly 1 s and a fence; under Wait no outcome at 1 s (nor long
/// after), and the truth once a resend is answered.
#[test]
fn franz_go_written_then_connection_died() {
    let mut s = ready(UnknownOutcome::FailAndFence);
    let t = s.enqueue(P0, 10, at(1000)).unwrap();
    s.next_send(P0, at(10)).unwrap();
    s.on_produce_result(t, at(20), ProduceResult::LostAfterWrite)
        .unwrap();
    s.poll(at(999));
    assert_eq!(s.poll_event(), None);
    s.poll(at(1000));
    assert_eq!(
        s.poll_event().unwrap().outcome,
        Outcome::PossiblyPersisted(PossiblyPersistedReason::Deadline)
    );
    assert_eq!(s.counters().fences, 1);
    assert_eq!(s.identity().ready().unwrap().1, ProducerEpoch(1));

    let mut s = ready(UnknownOutcome::Wait);
    let t = s.enqueue(P0, 10, at(1000)).unwrap();
    let first = s.next_send(P0, at(10)).unwrap();
    s.on_produce_result(t, at(20), ProduceResult::LostAfterWrite)
        .unwrap();
    for ms in [1000, 30_000, 600_000] {
        s.poll(at(ms));
        assert_eq!(s.poll_event(), None, "Wait keeps the batch at {ms} ms");
    }
    let resend = s.next_send(P0, at(600_001)).unwrap();
    assert_eq!(
        resend.stamp, first.stamp,
        "same sequence: the broker deduplicates"
    );
    s.on_produce_result(
        t,
        at(600_002),
        answered(ErrorCode::DUPLICATE_SEQUENCE_NUMBER, -1),
    )
    .unwrap();
    assert_eq!(
        s.poll_event().unwrap().outcome,
        Outcome::Persisted { offset: None }
    );
}

/// The silent broker: accepted, never answered. FailAndFence reports at the deadline.
#[test]
fn franz_go_silent_broker_fail_and_fence_reports_at_the_deadline() {
    let mut s = ready(UnknownOutcome::FailAndFence);
    s.enqueue(P0, 1, at(1000)).unwrap();
    s.next_send(P0, at(1)).unwrap();
    assert_eq!(s.poll(at(1)), Some(at(1000)));
    s.poll(at(1000));
    assert_eq!(
        s.poll_event().unwrap().outcome,
        Outcome::PossiblyPersisted(PossiblyPersistedReason::Deadline)
    );
}

/// franz-go 1217: a failed batch's sequences reused by a later batch get it "deduplicated"
/// against the old one. Here a later batch never reuses a sequence under the same epoch.
#[test]
fn franz_go_1217_sequences_are_never_reused_under_one_epoch() {
    let mut s = ready(UnknownOutcome::FailAndFence);
    let a = s.enqueue(P0, 3, at(100)).unwrap();
    let pa = s.next_send(P0, at(0)).unwrap();
    s.poll(at(100));
    assert_eq!(s.poll_event().unwrap().token, a);
    s.enqueue(P0, 3, at(60_000)).unwrap();
    // The old epoch must drain first: a is still out.
    assert_eq!(s.next_send(P0, at(101)), None);
    s.on_produce_result(a, at(102), ProduceResult::LostAfterWrite)
        .unwrap();
    let pb = s.next_send(P0, at(103)).unwrap();
    assert_ne!(
        (pb.stamp.epoch, pb.stamp.base_sequence),
        (pa.stamp.epoch, pa.stamp.base_sequence)
    );
    assert_eq!(pb.stamp.epoch, ProducerEpoch(1));
}

// --- open batches (records still lingering in an accumulator) -------------------------------

#[test]
fn an_open_batch_is_not_sent_until_sealed_and_takes_its_earliest_deadline() {
    let mut s = ready(UnknownOutcome::FailAndFence);
    let t = s.open(P0, 1, at(5000)).unwrap();
    s.extend(t, 2, at(3000)).unwrap();
    s.extend(t, 1, at(9000)).unwrap();
    assert_eq!(s.next_send(P0, at(1)), None, "still filling");
    assert_eq!(s.poll(at(1)), Some(at(3000)));
    s.seal(t).unwrap();
    assert_eq!(s.extend(t, 1, at(9000)), Err(TokenError::NotOpen));
    let p = s.next_send(P0, at(2)).unwrap();
    assert_eq!((p.token, p.records), (t, 4));
}

#[test]
fn an_open_batch_past_its_deadline_is_not_persisted_and_closed() {
    let mut s = ready(UnknownOutcome::Wait);
    let t = s.open(P0, 1, at(100)).unwrap();
    s.poll(at(100));
    let d = s.poll_event().unwrap();
    assert_eq!(
        (d.token, d.outcome),
        (t, Outcome::NotPersisted(NotPersistedReason::Deadline))
    );
    assert_eq!(s.extend(t, 1, at(900)), Err(TokenError::Unknown));
    // A sealed batch behind nothing open is sent as usual.
    let u = s.open(P0, 1, at(900)).unwrap();
    s.seal(u).unwrap();
    assert_eq!(s.next_send(P0, at(101)).unwrap().token, u);
}
