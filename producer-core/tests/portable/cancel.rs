//! The cancel-eligibility table, one row per function, both policies in each; the give-up
//! rules every path uses (`state::decide`); then the same decisions taken through the
//! sequencer by deadlines and cancels.

use producer_core::ErrorCode;
use producer_core::state::{
    BatchState, BeforeNextSend, CancelDecision, Config, FatalReason, FenceReason, Identity,
    NotPersistedReason, Outcome, PossiblyPersistedReason, ProduceResult, ProducerEpoch, ProducerId,
    Restored, Sequence, Stamp, UnknownOutcome, cancel_decision, expiry_decision,
};
use producer_core::state::{
    GiveUp, StampEnd, Stored, fatal_decision, give_up, restore_decision, stamp_ends,
};

use super::{P0, P1, Seq, answered, at, ready};

const STAMP: Stamp = Stamp {
    producer_id: ProducerId(1),
    epoch: ProducerEpoch(0),
    base_sequence: Sequence::ZERO,
};
const NOT_PERSISTED: Outcome = Outcome::NotPersisted(NotPersistedReason::Deadline);
const POSSIBLY: Outcome = Outcome::PossiblyPersisted(PossiblyPersistedReason::Deadline);

fn fail(outcome: Outcome, first: BeforeNextSend) -> CancelDecision {
    CancelDecision::Fail { outcome, first }
}

fn check(state: BatchState, wait: CancelDecision, fail_and_fence: CancelDecision) {
    assert_eq!(
        cancel_decision(&state, UnknownOutcome::Wait),
        wait,
        "{state:?}"
    );
    assert_eq!(
        cancel_decision(&state, UnknownOutcome::FailAndFence),
        fail_and_fence,
        "{state:?}"
    );
}

/// Never sent: nothing can be in the log, and no sequence was taken.
pub fn cancel_row_buffered() {
    let now = fail(NOT_PERSISTED, BeforeNextSend::Nothing);
    check(BatchState::Buffered, now, now);
}

/// Stamped, every attempt refused: certainly not in the log, but its sequence range is spent.
pub fn cancel_row_stamped_not_written() {
    let state = BatchState::Stamped {
        stamp: STAMP,
        maybe_written: false,
        retry_at: at(0),
    };
    check(
        state,
        CancelDecision::Wait,
        fail(NOT_PERSISTED, BeforeNextSend::Fence),
    );
}

/// Stamped after an attempt that may have been appended: unknown, never `NotPersisted`.
pub fn cancel_row_stamped_maybe_written() {
    let state = BatchState::Stamped {
        stamp: STAMP,
        maybe_written: true,
        retry_at: at(500),
    };
    check(
        state,
        CancelDecision::Wait,
        fail(POSSIBLY, BeforeNextSend::Fence),
    );
}

/// In flight, whatever earlier attempts did.
pub fn cancel_row_in_flight() {
    for maybe_written in [false, true] {
        let state = BatchState::InFlight {
            stamp: STAMP,
            maybe_written,
        };
        check(
            state,
            CancelDecision::Wait,
            fail(POSSIBLY, BeforeNextSend::Fence),
        );
    }
}

/// Decided: final, whatever the outcome and whether its request is still out.
pub fn cancel_row_decided() {
    let outcomes = [
        Outcome::Persisted { offset: Some(3) },
        Outcome::Persisted { offset: None },
        NOT_PERSISTED,
        Outcome::NotPersisted(NotPersistedReason::Rejected(ErrorCode::MESSAGE_TOO_LARGE)),
        POSSIBLY,
    ];
    for outcome in outcomes {
        for outstanding in [false, true] {
            let state = BatchState::Decided {
                outcome,
                outstanding,
            };
            check(
                state,
                CancelDecision::AlreadyDecided,
                CancelDecision::AlreadyDecided,
            );
        }
    }
}

/// The producer-state lifetime, per state, under both policies alike: only a batch waiting to
/// be resent after an attempt that may have been appended is given up.
pub fn expiry_rows() {
    let expired = fail(
        Outcome::PossiblyPersisted(PossiblyPersistedReason::ProducerStateExpired),
        BeforeNextSend::Fence,
    );
    let rows = [
        (BatchState::Buffered, CancelDecision::Wait),
        (
            BatchState::Stamped {
                stamp: STAMP,
                maybe_written: false,
                retry_at: at(0),
            },
            CancelDecision::Wait,
        ),
        (
            BatchState::Stamped {
                stamp: STAMP,
                maybe_written: true,
                retry_at: at(0),
            },
            expired,
        ),
        (
            BatchState::InFlight {
                stamp: STAMP,
                maybe_written: true,
            },
            CancelDecision::Wait,
        ),
        (
            BatchState::Decided {
                outcome: POSSIBLY,
                outstanding: false,
            },
            CancelDecision::AlreadyDecided,
        ),
    ];
    for (state, want) in rows {
        assert_eq!(expiry_decision(&state), want, "{state:?}");
    }
    // Through the sequencer: a lost attempt, then the records age past the lifetime; the
    // batch is given up and the producer fences, under `Wait` too.
    let mut s = ready(UnknownOutcome::Wait);
    let b = s.enqueue(P0, 1, at(60_000)).unwrap();
    s.next_send(P0, at(0)).unwrap();
    s.on_produce_result(b, at(1), ProduceResult::LostAfterWrite)
        .unwrap();
    assert_eq!(s.expire_producer_state(b, at(2)).unwrap(), expired);
    assert_eq!(
        s.poll_event().map(|d| d.outcome),
        Some(Outcome::PossiblyPersisted(
            PossiblyPersistedReason::ProducerStateExpired
        ))
    );
    assert_eq!(s.counters().fences, 1);
}

/// The give-up rule: `PossiblyPersisted` when an attempt may have been appended, otherwise
/// `NotPersisted`, each with its event's reason; a stamp that ends gives up only a batch
/// that may have been appended.
pub fn give_up_rules() {
    use NotPersistedReason as N;
    use PossiblyPersistedReason as P;
    let code = ErrorCode::MESSAGE_TOO_LARGE;
    let fatal = FatalReason::Broker(ErrorCode::CLUSTER_AUTHORIZATION_FAILED);
    let rows = [
        (GiveUp::Deadline, N::Deadline, P::Deadline),
        (
            GiveUp::Failed(code),
            N::Rejected(code),
            P::Unclassified(code),
        ),
        (
            GiveUp::Fatal(fatal),
            N::ProducerFatal(fatal),
            P::ProducerFatal(fatal),
        ),
    ];
    for (why, not, possibly) in rows {
        assert_eq!(give_up(false, why), Outcome::NotPersisted(not), "{why:?}");
        assert_eq!(
            give_up(true, why),
            Outcome::PossiblyPersisted(possibly),
            "{why:?}"
        );
    }
    let fenced = FenceReason::DeadlineAfterStamp;
    let ends = [
        (StampEnd::Fenced(fenced), P::Fenced(fenced)),
        (StampEnd::ProducerStateExpired, P::ProducerStateExpired),
    ];
    for (why, possibly) in ends {
        assert_eq!(stamp_ends(false, why), None, "{why:?}");
        assert_eq!(
            stamp_ends(true, why),
            Some(Outcome::PossiblyPersisted(possibly)),
            "{why:?}"
        );
    }
}

/// A fatal stop decides every batch but those with an outcome or a request out.
pub fn fatal_rows() {
    let fatal = FatalReason::Broker(ErrorCode::CLUSTER_AUTHORIZATION_FAILED);
    let stamped = |maybe_written| BatchState::Stamped {
        stamp: STAMP,
        maybe_written,
        retry_at: at(0),
    };
    let rows = [
        (
            BatchState::Buffered,
            Some(Outcome::NotPersisted(NotPersistedReason::ProducerFatal(
                fatal,
            ))),
        ),
        (
            stamped(false),
            Some(Outcome::NotPersisted(NotPersistedReason::ProducerFatal(
                fatal,
            ))),
        ),
        (
            stamped(true),
            Some(Outcome::PossiblyPersisted(
                PossiblyPersistedReason::ProducerFatal(fatal),
            )),
        ),
        (
            BatchState::InFlight {
                stamp: STAMP,
                maybe_written: false,
            },
            None,
        ),
        (
            BatchState::Decided {
                outcome: POSSIBLY,
                outstanding: false,
            },
            None,
        ),
    ];
    for (state, want) in rows {
        assert_eq!(fatal_decision(&state, fatal), want, "{state:?}");
    }
}

/// A restart: a stamped batch is resent with its stamp only under the resumed identity and
/// while the broker may still deduplicate it; an expired stamp ends first.
pub fn restore_rows() {
    use PossiblyPersistedReason as P;
    let resumed = Some((STAMP.producer_id, STAMP.epoch));
    let older = Some((STAMP.producer_id, ProducerEpoch(1)));
    let decided = |reason| Restored::Decided {
        outcome: Outcome::PossiblyPersisted(reason),
        delivered: false,
    };
    let stamped = |expired| Stored::Stamped {
        stamp: STAMP,
        expired,
    };
    let restarted = P::Fenced(FenceReason::Restarted);
    let rows = [
        (Stored::Buffered, resumed, Restored::Buffered),
        (
            Stored::Decided(NOT_PERSISTED),
            resumed,
            Restored::Decided {
                outcome: NOT_PERSISTED,
                delivered: false,
            },
        ),
        (stamped(false), resumed, Restored::Stamped(STAMP)),
        (stamped(true), resumed, decided(P::ProducerStateExpired)),
        (stamped(true), older, decided(P::ProducerStateExpired)),
        (stamped(false), older, decided(restarted)),
        (stamped(false), None, decided(restarted)),
        (
            Stored::Delivered,
            resumed,
            Restored::Decided {
                outcome: Outcome::PossiblyPersisted(restarted),
                delivered: true,
            },
        ),
    ];
    for (stored, resumed, want) in rows {
        assert_eq!(
            restore_decision(stored, resumed),
            want,
            "{stored:?} {resumed:?}"
        );
    }
    // Through the sequencer, which knows the identity it resumed.
    let mut s = Seq::new(Config::default()).unwrap();
    assert_eq!(s.decide_restored(stamped(false)), decided(restarted));
    assert!(s.resume(STAMP.producer_id, STAMP.epoch));
    assert_eq!(s.decide_restored(stamped(false)), Restored::Stamped(STAMP));
}

pub fn cancel_applies_the_same_decision_as_a_deadline() {
    let mut s = ready(UnknownOutcome::Wait);
    let buffered = s.enqueue(P0, 1, at(60_000)).unwrap();
    let sent = s.enqueue(P1, 1, at(60_000)).unwrap();
    s.next_send(P1, at(0)).unwrap();
    assert_eq!(
        s.cancel(buffered, at(5)).unwrap(),
        fail(NOT_PERSISTED, BeforeNextSend::Nothing)
    );
    assert_eq!(s.cancel(sent, at(5)).unwrap(), CancelDecision::Wait);
    assert_eq!(s.poll_event().map(|d| d.outcome), Some(NOT_PERSISTED));
    assert_eq!(s.poll_event(), None);
    s.on_produce_result(sent, at(6), answered(ErrorCode::NONE, 0))
        .unwrap();
    assert_eq!(
        s.poll_event().map(|d| d.outcome),
        Some(Outcome::Persisted { offset: Some(0) })
    );
    assert_eq!(s.poll_event(), None);
    assert_eq!(s.counters().fences, 0);
}

/// franz-go's silent broker: the request is accepted and never answered, so FailAndFence
/// reports `PossiblyPersisted` at exactly the deadline; the answer that comes later changes
/// nothing.
pub fn a_late_answer_after_the_deadline_does_not_change_the_outcome() {
    let mut s = ready(UnknownOutcome::FailAndFence);
    let t = s.enqueue(P0, 1, at(1000)).unwrap();
    s.next_send(P0, at(0)).unwrap();
    assert_eq!(s.poll(at(999)), Some(at(1000)));
    assert_eq!(s.poll_event(), None);
    s.poll(at(1000));
    assert_eq!(s.poll_event().map(|d| d.outcome), Some(POSSIBLY));
    // The request is still out: the fence waits for it, then the late answer frees the slot.
    assert!(matches!(s.identity(), Identity::Fencing { .. }));
    assert!(!s.is_empty());
    s.on_produce_result(t, at(1500), answered(ErrorCode::NONE, 3))
        .unwrap();
    assert_eq!(s.poll_event(), None);
    assert!(s.is_empty());
    assert_eq!(
        s.identity().ready(),
        Some((ProducerId(7), ProducerEpoch(1)))
    );
}

/// franz-go 930: broker unreachable before anything is written. The caller hears
/// `NotPersisted` exactly at its deadline under both policies, and nothing is fenced.
pub fn unreachable_broker_gives_not_persisted_at_the_deadline() {
    for policy in [UnknownOutcome::Wait, UnknownOutcome::FailAndFence] {
        let mut s = ready(policy);
        let t = s.enqueue(P0, 10, at(1000)).unwrap();
        assert_eq!(s.poll(at(0)), Some(at(1000)));
        s.poll(at(999));
        assert_eq!(s.poll_event(), None, "{policy:?}: not before the deadline");
        s.poll(at(1000));
        let d = s.poll_event().unwrap();
        assert_eq!((d.token, d.outcome), (t, NOT_PERSISTED));
        assert_eq!(
            s.counters().fences,
            0,
            "nothing was stamped, nothing to fence"
        );
    }
}

/// Written, then the connection died: under FailAndFence `PossiblyPersisted` at exactly the
/// deadline and a fence; under Wait no outcome (even ten minutes later) until a resend is
/// answered.
pub fn written_then_connection_died() {
    let mut s = ready(UnknownOutcome::FailAndFence);
    let t = s.enqueue(P0, 10, at(1000)).unwrap();
    s.next_send(P0, at(10)).unwrap();
    s.on_produce_result(t, at(20), ProduceResult::LostAfterWrite)
        .unwrap();
    s.poll(at(999));
    assert_eq!(s.poll_event(), None);
    s.poll(at(1000));
    assert_eq!(s.poll_event().map(|d| d.outcome), Some(POSSIBLY));
    assert_eq!(s.counters().fences, 1);
    assert_eq!(
        s.identity().ready(),
        Some((ProducerId(7), ProducerEpoch(1)))
    );

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
        s.poll_event().map(|d| d.outcome),
        Some(Outcome::Persisted { offset: None })
    );
}
