//! Sequence numbers, the per-partition ledger, the in-flight window, acks, fencing and the
//! identity lifecycle. On a 32-bit target these exercise the i32/u32/i64 arithmetic the
//! broker's deduplication depends on.

use core::fmt::Write;
use core::time::Duration;

use producer_core::ErrorCode;
use producer_core::state::{
    BatchState, Config, ConfigError, EnqueueError, FatalReason, FenceReason, Identity,
    NotPersistedReason, Outcome, PartitionIndex, PartitionLedger, PossiblyPersistedReason,
    ProduceResult, ProducerEpoch, ProducerId, Sequence, Sequencer, TokenError, UnknownOutcome,
};

use super::{P0, P1, Seq, answered, at, ready};

pub fn sequence_wraps_at_i32_max_like_the_broker() {
    let near = Sequence::new(i32::MAX - 1).unwrap();
    assert_eq!(near.add(1).get(), i32::MAX);
    assert_eq!(near.add(2).get(), 0);
    assert_eq!(near.add(5).get(), 3);
    assert_eq!(near.last_of(3).get(), 0);
    assert_eq!(Sequence::ZERO.last_of(1), Sequence::ZERO);
    assert_eq!(Sequence::new(-1), None);
    assert_eq!(Sequence::new(i32::MIN), None);
    // The largest steps: computed modulo 2^31 in 64 bits, never overflowing on 32-bit targets.
    assert_eq!(Sequence::ZERO.add(i32::MAX as u32).get(), i32::MAX);
    assert_eq!(Sequence::new(5).unwrap().add(i32::MAX as u32).get(), 4);
    assert_eq!(
        Sequence::new(i32::MAX).unwrap().add(u32::MAX).get(),
        i32::MAX - 1
    );
}

pub fn ledger_hands_out_ranges_across_the_wrap() {
    let mut ledger = PartitionLedger {
        next_sequence: Sequence::new(i32::MAX - 9).unwrap(),
        ..Default::default()
    };
    assert_eq!(ledger.take_sequences(5).get(), i32::MAX - 9);
    assert_eq!(ledger.take_sequences(10).get(), i32::MAX - 4);
    assert_eq!(ledger.next_sequence.get(), 5);
    assert_eq!(ledger.take_sequences(1).get(), 5);
}

pub fn ledger_window_opens_after_the_first_success_and_closes_on_reset() {
    let mut ledger = PartitionLedger::default();
    assert_eq!(ledger.window(5), 1);
    ledger.acked_this_epoch = true;
    ledger.in_flight = 3;
    ledger.take_sequences(40);
    assert_eq!(ledger.window(5), 5);
    ledger.reset();
    assert_eq!(ledger.window(5), 1);
    assert_eq!(ledger.next_sequence, Sequence::ZERO);
    assert_eq!(ledger.last_acked, None);
    // Requests still out are still out after a reset.
    assert_eq!(ledger.in_flight, 3);
}

pub fn sequences_are_contiguous_and_the_window_opens_after_the_first_success() {
    let mut s = ready(UnknownOutcome::FailAndFence);
    let mut tokens = [None; 7];
    for (i, t) in tokens.iter_mut().enumerate() {
        *t = Some(s.enqueue(P0, i as u32 + 1, at(60_000)).unwrap());
    }
    let first = s.next_send(P0, at(1)).unwrap();
    assert_eq!(Some(first.token), tokens[0]);
    assert_eq!(first.stamp.base_sequence, Sequence::ZERO);
    assert_eq!(
        s.next_send(P0, at(1)),
        None,
        "one in flight before a success"
    );
    s.on_produce_result(first.token, at(2), answered(ErrorCode::NONE, 0))
        .unwrap();
    let mut expected = 1;
    let mut sent = 0;
    while let Some(p) = s.next_send(P0, at(3)) {
        assert_eq!(Some(p.token), tokens[sent + 1]);
        assert_eq!(p.stamp.base_sequence.get(), expected);
        expected += p.records as i32;
        sent += 1;
    }
    assert_eq!(sent, 5, "five in flight after a success");
    let counters = s.partition_counters(P0).unwrap();
    assert_eq!(counters.in_flight, 5);
    assert_eq!(counters.acked_sequence, Some(Sequence::ZERO));
    assert_eq!(counters.next_sequence.get(), 1 + 2 + 3 + 4 + 5 + 6);
    assert_eq!(counters.pending, 6);
    // Partitions are independent.
    let other = s.enqueue(P1, 2, at(60_000)).unwrap();
    let p = s.next_send(P1, at(3)).unwrap();
    assert_eq!((p.token, p.stamp.base_sequence), (other, Sequence::ZERO));
}

/// A batch of `i32::MAX` records takes the whole sequence space: the next batch starts at
/// `i32::MAX` and the one after it past the wrap.
pub fn sequencer_sequences_wrap_past_i32_max() {
    let mut s = ready(UnknownOutcome::FailAndFence);
    let huge = s.enqueue(P0, i32::MAX as u32, at(60_000)).unwrap();
    let p = s.next_send(P0, at(0)).unwrap();
    assert_eq!(
        (p.stamp.base_sequence, p.records),
        (Sequence::ZERO, i32::MAX as u32)
    );
    s.on_produce_result(huge, at(1), answered(ErrorCode::NONE, 0))
        .unwrap();
    let c = s.partition_counters(P0).unwrap();
    assert_eq!(c.next_sequence.get(), i32::MAX);
    assert_eq!(c.acked_sequence.map(Sequence::get), Some(i32::MAX - 1));

    let a = s.enqueue(P0, 3, at(60_000)).unwrap();
    let b = s.enqueue(P0, 2, at(60_000)).unwrap();
    let pa = s.next_send(P0, at(2)).unwrap();
    let pb = s.next_send(P0, at(2)).unwrap();
    assert_eq!(pa.stamp.base_sequence.get(), i32::MAX);
    assert_eq!(pb.stamp.base_sequence.get(), 2);
    // Offsets above 2^32 survive a 32-bit target.
    s.on_produce_result(a, at(3), answered(ErrorCode::NONE, 5_000_000_000))
        .unwrap();
    let c = s.partition_counters(P0).unwrap();
    assert_eq!(c.acked_sequence.map(Sequence::get), Some(1));
    assert_eq!(c.acked_offset, Some(5_000_000_000));
    s.on_produce_result(b, at(3), answered(ErrorCode::NONE, 5_000_000_003))
        .unwrap();
    assert_eq!(
        s.partition_counters(P0).unwrap().acked_sequence,
        Sequence::new(3)
    );
    let offsets = [Some(0), Some(5_000_000_000), Some(5_000_000_003)];
    for offset in offsets {
        assert_eq!(
            s.poll_event().map(|d| d.outcome),
            Some(Outcome::Persisted { offset })
        );
    }
    assert_eq!(s.poll_event(), None);
    let persisted = s.counters().persisted;
    assert_eq!(persisted.batches, 3);
    assert_eq!(persisted.records, i32::MAX as u64 + 5);
}

/// tansu answers an exact retry with DUPLICATE_SEQUENCE_NUMBER and offset -1: persisted, the
/// sequence acknowledged, the offset unknown.
pub fn a_duplicate_answer_acks_the_sequence_without_an_offset() {
    let mut s = ready(UnknownOutcome::Wait);
    let t = s.enqueue(P0, 4, at(60_000)).unwrap();
    let first = s.next_send(P0, at(0)).unwrap();
    s.on_produce_result(t, at(1), ProduceResult::LostAfterWrite)
        .unwrap();
    assert_eq!(s.next_send(P0, at(50)), None, "backing off");
    let resend = s.next_send(P0, at(101)).unwrap();
    assert_eq!((resend.stamp, resend.attempt), (first.stamp, 2));
    s.on_produce_result(
        t,
        at(102),
        answered(ErrorCode::DUPLICATE_SEQUENCE_NUMBER, -1),
    )
    .unwrap();
    let c = s.partition_counters(P0).unwrap();
    assert_eq!((c.acked_sequence, c.acked_offset), (Sequence::new(3), None));
    assert_eq!(
        s.poll_event().map(|d| d.outcome),
        Some(Outcome::Persisted { offset: None })
    );
    assert_eq!(s.counters().retries, 1);
}

pub fn a_retriable_refusal_resends_the_same_stamp_in_order_after_backoff() {
    let mut s = ready(UnknownOutcome::Wait);
    let a = s.enqueue(P0, 2, at(60_000)).unwrap();
    let pa = s.next_send(P0, at(0)).unwrap();
    assert_eq!(pa.stamp.base_sequence, Sequence::ZERO);
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
    assert_eq!(s.counters().retries, 2);
}

pub fn a_gap_fences_then_resends_under_the_bumped_epoch_from_sequence_zero() {
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

pub fn unknown_is_sticky_across_a_later_refusal() {
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
        s.poll_event().map(|d| d.outcome),
        Some(Outcome::PossiblyPersisted(PossiblyPersistedReason::Fenced(
            FenceReason::Broker(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
        )))
    );
    assert_eq!(s.poll_event(), None);
    assert_eq!(
        s.identity().ready(),
        Some((ProducerId(7), ProducerEpoch(1)))
    );
    assert_eq!(s.counters().epoch_bumps, 1);
}

pub fn epoch_exhaustion_gets_a_new_producer_id_instead_of_wrapping() {
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

pub fn each_batch_gets_exactly_one_outcome_and_stale_tokens_are_refused() {
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

pub fn enqueue_rejects_what_it_cannot_hold() {
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
    for _ in 0..8 {
        s.enqueue(P0, 1, at(1000)).unwrap();
    }
    assert_eq!(s.enqueue(P0, 1, at(1000)), Err(EnqueueError::Full));
}

pub fn bad_configuration_is_rejected_with_what_to_change() {
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
        let mut text = heapless::String::<256>::new();
        write!(text, "{want}").unwrap();
        assert!(text.contains("set") || text.contains("raise"), "{text}");
    }
    assert_eq!(
        Sequencer::<producer_core::capacity::Fixed<1, 0, 4, 1>>::new(base).unwrap_err(),
        ConfigError::PartitionCapacity
    );
    assert_eq!(
        Sequencer::<producer_core::capacity::Fixed<1, 4, 0, 1>>::new(base).unwrap_err(),
        ConfigError::BatchCapacity
    );
    let mut text = heapless::String::<256>::new();
    write!(text, "{}", ConfigError::MaxInFlight { given: 6 }).unwrap();
    assert!(text.contains("between 1 and 5"));
}

pub fn producer_id_request_retries_with_backoff_and_stops_on_authorization_failure() {
    let mut s = Seq::new(Config::default()).unwrap();
    assert!(s.poll_init_producer_id(at(0)));
    assert_eq!(s.identity(), Identity::RequestingId);
    assert!(!s.poll_init_producer_id(at(0)), "one request at a time");
    s.on_init_producer_id(at(5), Err(Some(ErrorCode::COORDINATOR_NOT_AVAILABLE)));
    // The retry backoff (100 ms), jittered down by at most a quarter.
    let Identity::NoId { retry_at } = s.identity() else {
        panic!("{:?}", s.identity())
    };
    assert!(at(80) <= retry_at && retry_at <= at(105), "{retry_at:?}");
    assert!(!s.poll_init_producer_id(at(79)));
    assert!(s.poll_init_producer_id(retry_at));
    // A malformed grant is a failed request, not an identity; the next wait doubles.
    s.on_init_producer_id(retry_at, Ok((ProducerId(-1), ProducerEpoch(0))));
    let Identity::NoId { retry_at: again } = s.identity() else {
        panic!("{:?}", s.identity())
    };
    let waited = again.as_micros() - retry_at.as_micros();
    assert!((150_000..=200_000).contains(&waited), "{waited} µs");
    assert!(s.poll_init_producer_id(at(400)));
    let t = s.enqueue(P0, 1, at(10_000)).unwrap();
    s.on_init_producer_id(at(400), Err(Some(ErrorCode::CLUSTER_AUTHORIZATION_FAILED)));
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
