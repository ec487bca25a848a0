//! Every Produce error code of the classification table, on one partition and on a
//! multi-partition request.

use super::*;

/// What the classification table says an injected Produce error does to the batch and the
/// producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Not appended or maybe appended, retry with the same stamp: `Persisted`, no fence.
    Retried,
    /// Refused batch: `NotPersisted(Rejected)`, epoch bumped.
    Rejected,
    /// 45: epoch bumped, the batch restamped and `Persisted`.
    ResendAfterBump,
    /// 47/49/59/90: a new producer id, the batch restamped and `Persisted`.
    ResendNewId,
    /// 31/53: `NotPersisted(Rejected)`, the producer stops for good.
    Fatal,
    /// 46: `Persisted { offset: None }`.
    Duplicate,
    /// Any other code: `PossiblyPersisted(Unclassified)`, epoch bumped.
    Unclassified,
}

#[derive(Clone, Copy, Debug)]
struct ProduceCase {
    code: i32,
    times: usize,
    expect: Expect,
}

const fn pc(code: i32, times: usize, expect: Expect) -> ProduceCase {
    ProduceCase {
        code,
        times,
        expect,
    }
}

const PRODUCE_CASES: &[ProduceCase] = &[
    // not appended, retry after a metadata refresh
    pc(3, 1, Expect::Retried),
    pc(5, 1, Expect::Retried),
    pc(6, 1, Expect::Retried),
    pc(6, 3, Expect::Retried),
    pc(74, 1, Expect::Retried),
    pc(75, 1, Expect::Retried),
    // not appended, retry
    pc(2, 1, Expect::Retried),
    pc(19, 1, Expect::Retried),
    // maybe appended, retry (the mock never appends an injected attempt)
    pc(7, 1, Expect::Retried),
    pc(7, 3, Expect::Retried),
    pc(20, 1, Expect::Retried),
    pc(13, 1, Expect::Retried),
    pc(56, 1, Expect::Retried),
    // connection closed when the request arrived: lost after write, retry
    pc(TRANSPORT, 1, Expect::Retried),
    // refused batch: fail, bump the epoch
    pc(10, 1, Expect::Rejected),
    pc(17, 1, Expect::Rejected),
    pc(18, 1, Expect::Rejected),
    pc(21, 1, Expect::Rejected),
    pc(29, 1, Expect::Rejected),
    pc(32, 1, Expect::Rejected),
    pc(35, 1, Expect::Rejected),
    pc(43, 1, Expect::Rejected),
    pc(87, 1, Expect::Rejected),
    // sequence gap: bump, resend
    pc(45, 1, Expect::ResendAfterBump),
    pc(45, 2, Expect::ResendAfterBump),
    // identity lost: new producer id, resend
    pc(47, 1, Expect::ResendNewId),
    pc(49, 1, Expect::ResendNewId),
    pc(59, 1, Expect::ResendNewId),
    pc(90, 1, Expect::ResendNewId),
    // fatal
    pc(31, 1, Expect::Fatal),
    pc(53, 1, Expect::Fatal),
    // duplicate: persisted, offset unknown
    pc(46, 1, Expect::Duplicate),
    // anything else: possibly persisted, bump
    pc(-1, 1, Expect::Unclassified),
    pc(1, 1, Expect::Unclassified),
    pc(999, 1, Expect::Unclassified),
];

/// One Produce error case: a warm-up record (id, connection, first ack), then the error
/// injected `times` times on the request carrying a batch of 3 records, then 3 more records.
fn produce_case(case: ProduceCase) {
    let mock = Mock::new(1);
    let topic = format!("produce_{}_x{}", case.code, case.times);
    mock.topic(&topic, &[1]);
    let mut run = Run::new(mock.bootstrap_list(), &topic, |_| {});
    let warm = run.send_ok(0, LONG);
    run.settle(SETTLE);
    assert_eq!(run.outcome(warm), Outcome::Persisted { offset: Some(0) });
    let before = run.counters();
    assert_eq!(before.producer_ids, 1);
    assert_eq!(before.epoch.map(|e| e.0), Some(0));

    mock.inject(RDKafkaApiKey::Produce, 1, case.code, case.times);
    let batch: Vec<usize> = (0..3).map(|_| run.send_ok(0, LONG)).collect();
    let receipts: Vec<_> = batch
        .iter()
        .map(|&i| run.sent[i].receipt.expect("receipt").batch)
        .collect();
    assert!(
        receipts.iter().all(|&b| b == receipts[0]),
        "the 3 records should share one batch: {receipts:?}"
    );
    run.settle(SETTLE);
    let after = run.counters();
    let code = ErrorCode(case.code as i16);
    let outcomes: Vec<Outcome> = batch.iter().map(|&i| run.outcome(i)).collect();
    let offsets: Vec<Option<i64>> = batch
        .iter()
        .map(|&i| run.sent[i].outcome.expect("outcome").1)
        .collect();
    let expected = match case.expect {
        Expect::Retried | Expect::ResendAfterBump | Expect::ResendNewId => {
            Outcome::Persisted { offset: Some(1) }
        }
        Expect::Rejected | Expect::Fatal => {
            Outcome::NotPersisted(NotPersistedReason::Rejected(code))
        }
        Expect::Duplicate => Outcome::Persisted { offset: None },
        Expect::Unclassified => {
            Outcome::PossiblyPersisted(PossiblyPersistedReason::Unclassified(code))
        }
    };
    for (k, outcome) in outcomes.iter().enumerate() {
        assert_eq!(*outcome, expected, "record {k} of the batch");
    }
    if let Outcome::Persisted { offset: Some(base) } = expected {
        assert_eq!(offsets, vec![Some(base), Some(base + 1), Some(base + 2)]);
    } else {
        assert_eq!(offsets, vec![None; 3]);
    }

    // Counters, as deltas over the warm-up.
    let fences = after.fences - before.fences;
    let bumps = after.epoch_bumps - before.epoch_bumps;
    let ids = after.producer_ids - before.producer_ids;
    let retries = after.retries - before.retries;
    let times = case.times as u64;
    match case.expect {
        Expect::Retried => {
            assert_eq!((fences, bumps, ids), (0, 0, 0), "{after:?}");
            assert_eq!(retries, times, "one resend per refused attempt: {after:?}");
            assert_eq!(after.epoch, before.epoch);
        }
        Expect::Duplicate => {
            assert_eq!((fences, bumps, ids, retries), (0, 0, 0, 0), "{after:?}");
        }
        Expect::Rejected | Expect::Unclassified => {
            assert_eq!((fences, bumps, ids), (1, 1, 0), "{after:?}");
            assert_eq!(after.epoch.map(|e| e.0), Some(1), "{after:?}");
            assert_eq!(after.producer_id, before.producer_id);
        }
        Expect::ResendAfterBump => {
            assert_eq!((fences, bumps, ids), (times, times, 0), "{after:?}");
            assert_eq!(after.epoch.map(|e| e.0), Some(times as i16), "{after:?}");
            assert_eq!(after.producer_id, before.producer_id);
        }
        Expect::ResendNewId => {
            assert_eq!((fences, bumps, ids), (1, 0, 1), "{after:?}");
            assert_ne!(after.producer_id, before.producer_id, "{after:?}");
        }
        Expect::Fatal => {
            assert_eq!((bumps, ids), (0, 0), "{after:?}");
        }
    }
    assert_eq!(
        after.persisted.records - before.persisted.records,
        if matches!(expected, Outcome::Persisted { .. }) {
            3
        } else {
            0
        },
        "{after:?}"
    );

    // Later records.
    if case.expect == Expect::Fatal {
        for _ in 0..3 {
            let (_, error) = run.send(0, LONG);
            assert!(
                matches!(error, Some(Error::Stopped(FatalReason::Broker(_)))),
                "a fatal producer must refuse records with the reason, got {error:?}"
            );
        }
    } else {
        let later: Vec<usize> = (0..3).map(|_| run.send_ok(0, LONG)).collect();
        run.settle(SETTLE);
        for &i in &later {
            assert!(
                matches!(run.outcome(i), Outcome::Persisted { offset: Some(_) }),
                "record after the error: {:?}",
                run.sent[i]
            );
        }
    }

    let log = run.read_and_verify(&mock.bootstrap(), 1, case.expect == Expect::Duplicate);
    let values: Vec<&str> = log[&0].iter().map(|(_, v)| v.as_str()).collect();
    let want: Vec<&str> = match case.expect {
        Expect::Retried | Expect::ResendAfterBump | Expect::ResendNewId => {
            (0..7).map(|i| run.sent[i].value.as_str()).collect()
        }
        // The mock never appended the injected attempt.
        Expect::Rejected | Expect::Duplicate | Expect::Unclassified => [0, 4, 5, 6]
            .iter()
            .map(|&i| run.sent[i].value.as_str())
            .collect(),
        Expect::Fatal => vec![run.sent[0].value.as_str()],
    };
    assert_eq!(values, want, "log of {topic}");
}

/// Every code of the classification table the mock can inject, on Produce, one fresh cluster
/// per case.
#[test]
fn produce_errors_follow_the_classification_table() {
    run_cases(PRODUCE_CASES, produce_case);
}

/// Cases for one request carrying batches of three partitions, all answered with the code.
const MULTI_CASES: &[ProduceCase] = &[
    pc(6, 1, Expect::Retried),
    pc(7, 1, Expect::Retried),
    pc(TRANSPORT, 1, Expect::Retried),
    pc(10, 1, Expect::Rejected),
    pc(45, 1, Expect::ResendAfterBump),
    pc(47, 1, Expect::ResendNewId),
    pc(59, 1, Expect::ResendNewId),
    pc(31, 1, Expect::Fatal),
    pc(46, 1, Expect::Duplicate),
    pc(999, 1, Expect::Unclassified),
];

/// One request, three partitions' batches, one error code for all: each batch gets the
/// table's outcome, and the producer fences once, not once per batch.
fn multi_partition_case(case: ProduceCase) {
    let mock = Mock::new(1);
    let topic = format!("multi_{}", case.code);
    mock.topic(&topic, &[1, 1, 1]);
    // Batches seal only when `seal` says, so the three go out in one request.
    let mut run = Run::new(mock.bootstrap_list(), &topic, |c| {
        c.client.linger = Duration::from_secs(5);
    });
    for p in 0..3 {
        run.send_ok(p, LONG);
    }
    run.seal();
    run.settle(SETTLE);
    let before = run.counters();
    assert_eq!(before.persisted.batches, 3, "{before:?}");

    mock.inject(RDKafkaApiKey::Produce, 1, case.code, 1);
    let batch: Vec<usize> = (0..3).map(|p| run.send_ok(p, LONG)).collect();
    run.seal();
    run.settle(SETTLE);
    let after = run.counters();
    let code = ErrorCode(case.code as i16);
    let expected = match case.expect {
        Expect::Retried | Expect::ResendAfterBump | Expect::ResendNewId => {
            Outcome::Persisted { offset: Some(1) }
        }
        Expect::Rejected | Expect::Fatal => {
            Outcome::NotPersisted(NotPersistedReason::Rejected(code))
        }
        Expect::Duplicate => Outcome::Persisted { offset: None },
        Expect::Unclassified => {
            Outcome::PossiblyPersisted(PossiblyPersistedReason::Unclassified(code))
        }
    };
    let outcomes: Vec<Outcome> = batch.iter().map(|&i| run.outcome(i)).collect();
    assert_eq!(outcomes, vec![expected; 3], "partitions 0, 1, 2");
    let fences = after.fences - before.fences;
    let bumps = after.epoch_bumps - before.epoch_bumps;
    let ids = after.producer_ids - before.producer_ids;
    let retries = after.retries - before.retries;
    match case.expect {
        Expect::Retried => {
            assert_eq!((fences, bumps, ids, retries), (0, 0, 0, 3), "{after:?}")
        }
        Expect::Duplicate => assert_eq!((fences, bumps, ids, retries), (0, 0, 0, 0), "{after:?}"),
        Expect::Rejected | Expect::Unclassified | Expect::ResendAfterBump => {
            assert_eq!(
                (fences, bumps, ids),
                (1, 1, 0),
                "one fence for 3 batches: {after:?}"
            )
        }
        Expect::ResendNewId => {
            assert_eq!(
                (fences, bumps, ids),
                (1, 0, 1),
                "one new id for 3 batches: {after:?}"
            )
        }
        Expect::Fatal => assert_eq!((bumps, ids), (0, 0), "{after:?}"),
    }
    if case.expect == Expect::Fatal {
        let (_, error) = run.send(0, LONG);
        assert!(
            matches!(error, Some(Error::Stopped(FatalReason::Broker(_)))),
            "{error:?}"
        );
    } else {
        let later: Vec<usize> = (0..3).map(|p| run.send_ok(p, LONG)).collect();
        run.seal();
        run.settle(SETTLE);
        for &i in &later {
            assert!(
                matches!(run.outcome(i), Outcome::Persisted { offset: Some(_) }),
                "{:?}",
                run.sent[i]
            );
        }
    }
    let log = run.read_and_verify(&mock.bootstrap(), 3, case.expect == Expect::Duplicate);
    let appended = matches!(
        case.expect,
        Expect::Retried | Expect::ResendAfterBump | Expect::ResendNewId
    );
    let later = usize::from(case.expect != Expect::Fatal);
    for p in 0..3 {
        assert_eq!(
            log[&p].len(),
            1 + usize::from(appended) + later,
            "p{p}: {log:?}"
        );
    }
}

/// One Produce request carrying batches of three partitions, answered with one code for all.
#[test]
fn produce_errors_on_a_multi_partition_request() {
    run_cases(MULTI_CASES, multi_partition_case);
}
