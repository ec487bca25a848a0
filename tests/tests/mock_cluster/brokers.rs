//! Brokers going down and up (with and without a request in flight), and leaders moving.

use super::*;

/// A partition's leader goes down while nothing is in flight, records keep coming for all
/// partitions; the other partitions keep flowing, a record on the down partition whose deadline
/// passes is `NotPersisted(Deadline)` (never sent), and once the broker is back everything else
/// is `Persisted`, once, in order.
#[test]
fn broker_down_and_up() {
    let mock = Mock::new(3);
    let topic = "down_up";
    mock.topic(topic, &[1, 2, 3]);
    let mut run = Run::new(mock.bootstrap_list(), topic, |_| {});
    for p in 0..3 {
        run.send_ok(p, LONG);
    }
    run.settle(SETTLE);

    mock.cluster().broker_down(2).expect("broker down");
    let down_at = Instant::now();
    let mut short = Vec::new();
    for round in 0..20 {
        for p in 0..3 {
            run.send_ok(p, LONG);
        }
        if round == 5 {
            // Alone in its batch (the previous one has sealed): it alone misses its deadline.
            run.pump(Duration::from_millis(20));
            short.push(run.send_ok(1, Duration::from_millis(300)));
        }
        run.pump(Duration::from_millis(50));
    }
    // While broker 2 is down: partitions 0 and 2 flowed, partition 1 waited, except the short
    // deadline record, given up at its deadline as never sent.
    let mut flowed = [0usize; 3];
    for s in &run.sent[3..] {
        if s.outcome.is_some() {
            flowed[s.partition as usize] += 1;
        }
    }
    assert!(
        flowed[0] >= 15 && flowed[2] >= 15,
        "partitions 0 and 2 must keep flowing while broker 2 is down: {flowed:?}"
    );
    assert_eq!(
        flowed[1],
        short.len(),
        "only the short deadline decided on p1"
    );
    for &i in &short {
        assert_eq!(
            run.outcome(i),
            Outcome::NotPersisted(NotPersistedReason::Deadline)
        );
        let late = run.latency(i);
        assert!(
            late < Duration::from_millis(450),
            "deadline outcome {late:?} after send"
        );
    }
    let down_for = down_at.elapsed();

    mock.cluster().broker_up(2).expect("broker up");
    run.settle(SETTLE);
    run.assert_persisted_except(&short);
    run.assert_identity((0, 0, 1));
    let log = run.read_and_verify(&mock.bootstrap(), 3, false);
    for p in 0..3 {
        // Warm-up and 20 rounds; the short deadline record is not there.
        assert_eq!(
            log[&p].len(),
            21,
            "p{p}, broker 2 down {down_for:?}: {log:?}"
        );
    }
}

/// A partition's leader goes down while its answer to a request it already appended is held
/// back: the request is lost after being written. Under fail-and-fence the record is
/// `PossiblyPersisted` at its deadline and never resent (the epoch is bumped instead); once the
/// broker is back, later records of that partition are `Persisted`. The log holds it once.
#[test]
fn broker_down_with_request_in_flight_fail_and_fence() {
    let (mock, run, x) = in_flight_when_down(UnknownOutcome::FailAndFence, "down_fence");
    assert_eq!(
        run.outcome(x),
        Outcome::PossiblyPersisted(PossiblyPersistedReason::Deadline)
    );
    let late = run.latency(x);
    assert!(
        late >= DEADLINE && late < DEADLINE + Duration::from_millis(150),
        "PossiblyPersisted {late:?} after send, deadline {DEADLINE:?}"
    );
    run.assert_identity((1, 1, 1));
    let log = run.read_and_verify(&mock.bootstrap(), 3, false);
    // Warm-up, the lost request's record (appended by the mock at once), the record after.
    assert_eq!(log[&1].len(), 3, "{log:?}");
}

/// The same under wait: the record waits past its deadline for the broker to come back, is
/// resent under its sequence and `Persisted`. The mock appends the resend again (a broker
/// would deduplicate it): the one duplicate the log may hold, explicitly allowed.
#[test]
fn broker_down_with_request_in_flight_wait() {
    let (mock, run, x) = in_flight_when_down(UnknownOutcome::Wait, "down_wait");
    assert!(
        matches!(run.outcome(x), Outcome::Persisted { offset: Some(_) }),
        "{:?}",
        run.sent[x]
    );
    assert!(
        run.latency(x) > DOWN_FOR,
        "decided while the broker was down"
    );
    run.assert_identity((0, 0, 1));
    let c = run.counters();
    assert!(c.retries >= 1, "{c:?}");
    let log = read_log(&mock.bootstrap(), &run.topic, 3);
    run.verify(&log, false, &[x]);
    assert_eq!(
        log[&1].len(),
        4,
        "warm-up, the record and its resend (the mock does not deduplicate), the record \
         after: {log:?}"
    );
}

const DOWN_FOR: Duration = Duration::from_millis(1500);

/// Three brokers, one partition each. A record to partition 1 (deadline `DEADLINE`) whose
/// answer broker 2 holds back 3 s; 300 ms later broker 2 goes down (the mock appended the
/// request, the answer is lost), and comes back after `DOWN_FOR`, while records keep coming
/// for partitions 0 and 2. Then one more record for each partition; everything settles.
fn in_flight_when_down(policy: UnknownOutcome, topic: &str) -> (Mock, Run, usize) {
    let mock = Mock::new(3);
    mock.topic(topic, &[1, 2, 3]);
    let mut run = Run::new(mock.bootstrap_list(), topic, |c| {
        c.client.producer.unknown_outcome = policy
    });
    for p in 0..3 {
        run.send_ok(p, LONG);
    }
    run.settle(SETTLE);
    mock.push_broker_error(2, RDKafkaApiKey::Produce, 0, DELAY);
    let x = run.send_ok(1, DEADLINE);
    run.pump(Duration::from_millis(300));
    assert!(run.sent[x].outcome.is_none(), "{:?}", run.sent[x]);
    mock.cluster().broker_down(2).expect("broker down");
    let down_at = Instant::now();
    while down_at.elapsed() < DOWN_FOR {
        run.send_ok(0, LONG);
        run.send_ok(2, LONG);
        run.pump(Duration::from_millis(50));
    }
    mock.cluster().broker_up(2).expect("broker up");
    for p in 0..3 {
        run.send_ok(p, LONG);
    }
    run.settle(SETTLE);
    run.assert_persisted_except(&[x]);
    (mock, run, x)
}

// --- leader moves ----------------------------------------------------------------------------

/// Partition leaders move between brokers while records stream to every partition, several
/// requests in flight: the old leader answers NOT_LEADER_OR_FOLLOWER (never appending), the
/// producer refreshes metadata and resends to the new leader. Everything is `Persisted`, once,
/// in order.
#[test]
fn leader_moves() {
    let mock = Mock::new(3);
    let topic = "leader_moves";
    mock.topic(topic, &[1, 2, 3]);
    let mut run = Run::new(mock.bootstrap_list(), topic, |_| {});
    for p in 0..3 {
        run.send_ok(p, LONG);
    }
    run.settle(SETTLE);
    let moves: &[(usize, i32, i32)] = &[(10, 0, 2), (20, 1, 3), (30, 2, 1), (40, 0, 3), (50, 0, 1)];
    for round in 0..60 {
        if let Some(&(_, p, leader)) = moves.iter().find(|m| m.0 == round) {
            mock.cluster()
                .partition_leader(topic, p, Some(leader))
                .expect("move leader");
        }
        for p in 0..3 {
            run.send_ok(p, LONG);
        }
        run.pump(Duration::from_millis(15));
    }
    run.settle(SETTLE);
    run.assert_persisted_except(&[]);
    let c = run.counters();
    assert!(c.retries > 0, "no move was noticed: {c:?}");
    run.assert_identity((0, 0, 1));
    let log = run.read_and_verify(&mock.bootstrap(), 3, false);
    for p in 0..3 {
        assert_eq!(log[&p].len(), 61, "p{p}");
    }
}

/// Failover: a partition's leader goes down and its partition moves to another broker (the
/// mock does not move it by itself), then the broker comes back and leads again. The
/// producer follows, through the lost connection and the metadata refresh. Brokers go down
/// only while nothing is in flight (see the module notes).
#[test]
fn leader_fails_over_when_its_broker_goes_down() {
    let mock = Mock::new(3);
    let topic = "failover";
    mock.topic(topic, &[1, 2, 3]);
    let mut run = Run::new(mock.bootstrap_list(), topic, |_| {});
    for round in 0..40 {
        if round == 10 {
            run.settle(SETTLE);
            mock.cluster().broker_down(2).expect("broker down");
            mock.cluster()
                .partition_leader(topic, 1, Some(3))
                .expect("move leader");
        }
        if round == 25 {
            run.settle(SETTLE);
            mock.cluster().broker_up(2).expect("broker up");
            mock.cluster()
                .partition_leader(topic, 1, Some(2))
                .expect("move leader back");
        }
        for p in 0..3 {
            run.send_ok(p, LONG);
        }
        run.pump(Duration::from_millis(15));
    }
    run.settle(SETTLE);
    run.assert_persisted_except(&[]);
    run.assert_identity((0, 0, 1));
    let log = run.read_and_verify(&mock.bootstrap(), 3, false);
    for p in 0..3 {
        assert_eq!(log[&p].len(), 40, "p{p}");
    }
}
