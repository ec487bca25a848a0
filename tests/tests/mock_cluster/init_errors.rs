//! InitProducerId errors: retried, or fatal.

use super::*;

#[derive(Clone, Copy, Debug)]
struct InitCase {
    code: i32,
    times: usize,
    fatal: bool,
}

const fn ic(code: i32, times: usize, fatal: bool) -> InitCase {
    InitCase { code, times, fatal }
}

const INIT_CASES: &[InitCase] = &[
    ic(14, 1, false),
    ic(15, 1, false),
    ic(16, 1, false),
    ic(16, 3, false),
    ic(7, 1, false),
    ic(-1, 1, false),
    ic(999, 1, false),
    ic(TRANSPORT, 1, false),
    ic(31, 1, true),
    ic(53, 1, true),
    ic(35, 1, true),
];

/// One InitProducerId case: the error injected on the first request(s), then 3 records.
fn init_case(case: InitCase) {
    let mock = Mock::new(1);
    let topic = format!("init_{}_x{}", case.code, case.times);
    mock.topic(&topic, &[1]);
    mock.inject(RDKafkaApiKey::InitProducerId, 1, case.code, case.times);
    let mut run = Run::new(mock.bootstrap_list(), &topic, |_| {});
    let code = ErrorCode(case.code as i16);
    let fatal = NotPersistedReason::ProducerFatal(FatalReason::Broker(code));
    let mut accepted = Vec::new();
    for _ in 0..3 {
        let (i, error) = run.send(0, LONG);
        match error {
            None => accepted.push(i),
            // The fatal answer can beat the metadata the first send waits for.
            Some(Error::Stopped(FatalReason::Broker(r))) if case.fatal && r == code => {}
            Some(e) => panic!("send refused: {e}"),
        }
    }
    run.settle(SETTLE);
    let c = run.counters();
    if case.fatal {
        for &i in &accepted {
            assert_eq!(run.outcome(i), Outcome::NotPersisted(fatal));
        }
        let (_, error) = run.send(0, LONG);
        assert!(
            matches!(error, Some(Error::Stopped(FatalReason::Broker(r))) if r == code),
            "a fatal producer must refuse records with the reason, got {error:?}"
        );
        assert_eq!(c.producer_ids, 0, "{c:?}");
        assert_eq!(c.producer_id, None, "{c:?}");
    } else {
        assert_eq!(accepted.len(), 3);
        for (k, &i) in accepted.iter().enumerate() {
            assert_eq!(
                run.outcome(i),
                Outcome::Persisted { offset: Some(0) },
                "{k}"
            );
        }
        assert_eq!(
            (c.producer_ids, c.fences, c.epoch_bumps),
            (1, 0, 0),
            "{c:?}"
        );
    }
    let log = run.read_and_verify(&mock.bootstrap(), 1, false);
    let want = if case.fatal { 0 } else { 3 };
    assert_eq!(log[&0].len(), want, "log of {topic}: {log:?}");
}

/// InitProducerId errors: retriable ones end in an id and persisted records, fatal ones stop
/// the producer with every record `NotPersisted(ProducerFatal)`.
#[test]
fn init_producer_id_errors() {
    run_cases(INIT_CASES, init_case);
}
