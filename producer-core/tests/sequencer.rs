//! The sequencer's behaviour on the host, where the portable bodies (`tests/portable/`, run
//! here by `tests/portable.rs` and on a Cortex-M3 by `on-target/`) leave off: nothing sent
//! without an identity, a refused bumped epoch, a fatal answer, the next instant that matters,
//! franz-go 1217 and open batches. The classification and cancel-eligibility tables, configuration checks, sequences,
//! resends, fencing and the other franz-go scenarios are portable bodies.

// The portable bodies run from `tests/portable.rs`; this crate uses only the module's helpers
// (`ready`, `at`, `answered`, ...), so the bodies are dead code here.
#[allow(dead_code)]
#[path = "portable/mod.rs"]
mod portable;

use producer_core::ErrorCode;
use producer_core::state::{
    Config, FatalReason, Identity, NotPersistedReason, Outcome, PartitionIndex,
    PossiblyPersistedReason, ProduceResult, ProducerEpoch, ProducerId, Restored, Sequence, Stamp,
    TokenError, UnknownOutcome,
};

use portable::{P0, P1, Seq, answered, at, ready};

// --- identity lifecycle -------------------------------------------------------------------

#[test]
fn nothing_is_sent_without_an_identity() {
    let mut s = Seq::new(Config::default()).unwrap();
    s.enqueue(P0, 3, at(1000)).unwrap();
    assert_eq!(s.next_send(P0, at(1)), None);
    assert!(s.poll_init_producer_id(at(1)));
    assert_eq!(s.next_send(P0, at(2)), None);
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

/// After a restart the producer resumes the identity of its restored stamped batches, which
/// count as maybe written. A broker that refuses that epoch outright (PRODUCER_FENCED: it
/// never accepted it, as tansu refuses a local bump the gateway made just before it lost
/// power) has none of them: they are restamped under the new producer id, not given up.
#[test]
fn an_epoch_the_broker_never_accepted_leaves_its_batches_unwritten() {
    // The grace before a new producer id after a restart, shortened to keep times small.
    let config = Config {
        abandoned_request_grace: core::time::Duration::from_millis(10),
        ..Config::default()
    };
    let mut s = Seq::new(config).unwrap();
    let (id, epoch) = (ProducerId(5), ProducerEpoch(3));
    assert!(s.resume(id, epoch));
    let stamp = |base| Stamp {
        producer_id: id,
        epoch,
        base_sequence: Sequence::new(base).unwrap(),
    };
    let a = s
        .restore(0, P0, 2, 0, at(60_000), Restored::Stamped(stamp(0)))
        .unwrap();
    let b = s
        .restore(1, P0, 2, 1, at(60_000), Restored::Stamped(stamp(2)))
        .unwrap();
    let p = s.next_send(P0, at(0)).unwrap();
    assert_eq!((p.token, p.stamp), (a, stamp(0)));
    s.on_produce_result(a, at(1), answered(ErrorCode::PRODUCER_FENCED, -1))
        .unwrap();
    assert_eq!(s.poll_event(), None, "neither is given up");
    assert!(s.poll_init_producer_id(at(20)));
    s.on_init_producer_id(at(21), Ok((ProducerId(9), ProducerEpoch(0))));
    // The resumed identity's retirement is the first fence the broker caused (the restart's
    // own fence is not paced): sending resumes at once.
    assert_eq!(s.fences_without_progress(), 1);
    assert!(s.resume_sending_at() <= at(21));
    let p = s.next_send(P0, at(22)).unwrap();
    assert_eq!(p.token, a);
    assert_eq!(
        (p.stamp.producer_id, p.stamp.base_sequence),
        (ProducerId(9), Sequence::ZERO)
    );
    s.on_produce_result(a, at(123), answered(ErrorCode::NONE, 10))
        .unwrap();
    assert_eq!(
        s.fences_without_progress(),
        0,
        "an accepted batch ends the series"
    );
    let p = s.next_send(P0, at(124)).unwrap();
    assert_eq!((p.token, p.stamp.base_sequence.get()), (b, 2));
    // A restored batch refused with a code that does not say the epoch was never accepted
    // stays maybe written: given up at the fence.
    let mut s = Seq::new(config).unwrap();
    assert!(s.resume(id, epoch));
    let c = s
        .restore(0, P0, 2, 0, at(60_000), Restored::Stamped(stamp(0)))
        .unwrap();
    s.next_send(P0, at(0)).unwrap();
    s.on_produce_result(c, at(1), answered(ErrorCode::UNKNOWN_PRODUCER_ID, -1))
        .unwrap();
    assert!(matches!(
        s.poll_event().map(|d| d.outcome),
        Some(Outcome::PossiblyPersisted(PossiblyPersistedReason::Fenced(
            _
        )))
    ));
}

// --- pacing of fences ----------------------------------------------------------------------

/// Fences a deadline starts (`FailAndFence`) come once per expired batch, not from a loop
/// with the broker: they neither hold the sending back nor count towards the series a
/// refusing broker is paced by. Holding back after each let the next short deadlines expire
/// unsent, one fence feeding the next (the chaos test against Kafka sent 31 requests in 10 s).
#[test]
fn deadline_fences_do_not_hold_the_sending_back() {
    let mut s = ready(UnknownOutcome::FailAndFence);
    for round in 0..5u64 {
        let t0 = round * 1_000;
        let t = s.enqueue(P0, 1, at(t0 + 300)).unwrap();
        let p = s
            .next_send(P0, at(t0))
            .unwrap_or_else(|| panic!("round {round}: held back"));
        assert_eq!(p.token, t);
        // The deadline fires with the request written and unanswered; then it is lost.
        s.poll(at(t0 + 300));
        s.on_produce_result(t, at(t0 + 301), ProduceResult::LostAfterWrite)
            .unwrap();
        assert!(matches!(
            s.poll_event().map(|d| d.outcome),
            Some(Outcome::PossiblyPersisted(_))
        ));
        assert!(
            matches!(s.identity(), Identity::Ready { .. }),
            "round {round}"
        );
        assert_eq!(s.fences_without_progress(), 0, "round {round}");
    }
    let c = s.counters();
    assert_eq!((c.fences, c.epoch_bumps, c.paced_fences), (5, 5, 0));
}

/// A broker's refusal that joins a fence a deadline started makes it a paced one: a broker
/// refusing every batch is paced however its fences began.
#[test]
fn a_refusal_joining_a_deadline_fence_is_paced() {
    let mut s = ready(UnknownOutcome::FailAndFence);
    let b = s.enqueue(P1, 1, at(1_000_000)).unwrap();
    for round in 0..3u32 {
        let now = at(u64::from(round) * 10_000).max(s.resume_sending_at());
        let a = s
            .enqueue(P0, 1, now + core::time::Duration::from_millis(300))
            .unwrap();
        assert_eq!(
            s.next_send(P0, now).map(|p| p.token),
            Some(a),
            "round {round}"
        );
        assert_eq!(
            s.next_send(P1, now).map(|p| p.token),
            Some(b),
            "round {round}"
        );
        let later = |ms| now + core::time::Duration::from_millis(ms);
        // a's deadline starts a fence; the broker's refusal of b joins it; a is lost.
        s.poll(later(300));
        s.on_produce_result(
            b,
            later(301),
            answered(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, -1),
        )
        .unwrap();
        s.on_produce_result(a, later(302), ProduceResult::LostAfterWrite)
            .unwrap();
        assert_eq!(s.fences_without_progress(), round + 1, "round {round}");
        if round > 0 {
            assert!(
                s.resume_sending_at() > later(302),
                "round {round}: not held back"
            );
        }
        while s.poll_event().is_some() {}
    }
    assert_eq!(s.counters().paced_fences, 3);
}

// --- outcomes -----------------------------------------------------------------------------

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
    // The end of the resend backoff: 100 ms, jittered down by at most a quarter.
    let next = s.poll(at(2)).unwrap();
    assert!(at(77) <= next && next <= at(102), "{next:?}");
}

// --- the franz-go scenarios (issue 1217; 930 and the silent broker are portable) -----------

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
