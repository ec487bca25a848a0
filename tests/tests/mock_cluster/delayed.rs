//! A response delayed past the caller's deadline, under both `UnknownOutcome` policies.

use super::*;

/// Two brokers, one partition each, a warm-up record on each; then one record to partition 0
/// whose request broker 1 appends at once but answers only after `DELAY`, with a `DEADLINE`
/// deadline (request timeout 10 s, above the delay). Returns the mock, the run and the delayed
/// record's index.
fn delayed(policy: UnknownOutcome, topic: &str) -> (Mock, Run, usize) {
    let mock = Mock::new(2);
    mock.topic(topic, &[1, 2]);
    let mut run = Run::new(mock.bootstrap_list(), topic, |c| {
        c.client.producer.unknown_outcome = policy;
        c.client = c.client.with_request_timeout(Duration::from_secs(10));
    });
    for p in 0..2 {
        let warm = run.send_ok(p, LONG);
        run.settle(SETTLE);
        assert_eq!(run.outcome(warm), Outcome::Persisted { offset: Some(0) });
    }
    mock.push_broker_error(1, RDKafkaApiKey::Produce, 0, DELAY);
    let x = run.send_ok(0, DEADLINE);
    (mock, run, x)
}

/// Fail-and-fence: `PossiblyPersisted` at the deadline. Records sent next, to the same
/// partition and to one on the other broker, wait for the old epoch to drain (the delayed
/// answer): the fence stops every partition. They go out under the bumped epoch and are
/// `Persisted`. The delayed record is in the log once.
#[test]
fn delayed_response_fail_and_fence() {
    let (mock, mut run, x) = delayed(UnknownOutcome::FailAndFence, "delayed_fence");
    let t0 = run.sent[x].sent_at;
    while run.sent[x].outcome.is_none() && t0.elapsed() < DELAY {
        run.pump(Duration::from_millis(5));
    }
    assert_eq!(
        run.outcome(x),
        Outcome::PossiblyPersisted(PossiblyPersistedReason::Deadline)
    );
    let late = run.latency(x);
    assert!(
        late >= DEADLINE && late < DEADLINE + Duration::from_millis(150),
        "PossiblyPersisted {late:?} after send, deadline {DEADLINE:?}"
    );
    // Sent while the fence waits for the delayed answer.
    let y0 = run.send_ok(0, LONG);
    let y1 = run.send_ok(1, LONG);
    run.settle(SETTLE);
    assert_eq!(run.outcome(y0), Outcome::Persisted { offset: Some(2) });
    assert_eq!(run.outcome(y1), Outcome::Persisted { offset: Some(1) });
    for y in [y0, y1] {
        let y_at = run.sent[y].outcome.expect("outcome").2.duration_since(t0);
        assert!(
            y_at >= DELAY - Duration::from_millis(100),
            "{:?} was answered {y_at:?} after the delayed record was sent: nothing may go \
             out before the old epoch drained ({DELAY:?})",
            run.sent[y].value
        );
    }
    run.assert_identity((1, 1, 1));
    assert_eq!(run.counters().epoch.map(|e| e.0), Some(1));
    let log = run.read_and_verify(&mock.bootstrap(), 2, false);
    assert_eq!(log[&0].len(), 3, "{log:?}");
    assert_eq!(log[&1].len(), 2, "{log:?}");
}

/// Wait: the deadline passes unheeded; the outcome arrives with the delayed answer and is
/// `Persisted`, with no fence. The record is in the log once.
#[test]
fn delayed_response_wait() {
    let (mock, mut run, x) = delayed(UnknownOutcome::Wait, "delayed_wait");
    run.settle(SETTLE);
    assert_eq!(run.outcome(x), Outcome::Persisted { offset: Some(1) });
    let late = run.latency(x);
    assert!(
        late >= DELAY - Duration::from_millis(100) && late < DELAY + Duration::from_secs(1),
        "outcome {late:?} after send; the answer was delayed {DELAY:?}"
    );
    let y = run.send_ok(0, LONG);
    run.settle(SETTLE);
    assert_eq!(run.outcome(y), Outcome::Persisted { offset: Some(2) });
    let c = run.counters();
    assert_eq!(
        (c.fences, c.epoch_bumps, c.producer_ids, c.retries),
        (0, 0, 1, 0),
        "{c:?}"
    );
    let log = run.read_and_verify(&mock.bootstrap(), 2, false);
    assert_eq!(log[&0].len(), 3, "{log:?}");
}

/// Fail-and-fence with the answer held back past the request timeout (2 s): the producer
/// closes the connection, which drains the old epoch; the next record goes out under the
/// bumped epoch on a new connection. The delayed record is never resent: in the log once.
#[test]
fn delayed_response_past_request_timeout_fail_and_fence() {
    let timeout = Duration::from_secs(2);
    let mock = Mock::new(1);
    let topic = "delayed_timeout";
    mock.topic(topic, &[1]);
    let mut run = Run::new(mock.bootstrap_list(), topic, |c| {
        c.client = c.client.with_request_timeout(timeout)
    });
    let warm = run.send_ok(0, LONG);
    run.settle(SETTLE);
    assert_eq!(run.outcome(warm), Outcome::Persisted { offset: Some(0) });
    mock.push_broker_error(1, RDKafkaApiKey::Produce, 0, DELAY);
    let x = run.send_ok(0, DEADLINE);
    let t0 = run.sent[x].sent_at;
    while run.sent[x].outcome.is_none() && t0.elapsed() < DELAY {
        run.pump(Duration::from_millis(5));
    }
    assert_eq!(
        run.outcome(x),
        Outcome::PossiblyPersisted(PossiblyPersistedReason::Deadline)
    );
    assert!(run.latency(x) < DEADLINE + Duration::from_millis(150));
    let y = run.send_ok(0, LONG);
    run.settle(SETTLE);
    assert_eq!(run.outcome(y), Outcome::Persisted { offset: Some(2) });
    let y_at = run.sent[y].outcome.expect("outcome").2.duration_since(t0);
    assert!(
        y_at >= timeout - Duration::from_millis(50) && y_at < DELAY,
        "the next record was answered {y_at:?} after the delayed one was sent: it must wait \
         for the request timeout ({timeout:?}) and not for the answer ({DELAY:?})"
    );
    let c = run.counters();
    assert_eq!(
        (c.fences, c.epoch_bumps, c.producer_ids, c.retries),
        (1, 1, 1, 0),
        "{c:?}"
    );
    let log = run.read_and_verify(&mock.bootstrap(), 1, false);
    assert_eq!(log[&0].len(), 3, "{log:?}");
}
