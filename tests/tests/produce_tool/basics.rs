//! The exit codes, the report and the summary against a healthy broker and one that refuses
//! connections; usage and setup errors.

use super::*;

#[test]
fn all_persisted_exit_0_report_and_log_agree_kafka() {
    all_persisted_exit_0_report_and_log_agree(BrokerKind::Kafka);
}

#[test]
fn all_persisted_exit_0_report_and_log_agree_tansu() {
    all_persisted_exit_0_report_and_log_agree(BrokerKind::Tansu);
}

fn all_persisted_exit_0_report_and_log_agree(kind: BrokerKind) {
    const N: usize = 2_000;
    let broker = Broker::start(kind);
    broker.create_topic("tool", 3);
    let report_path = temp_path("report");
    let input: String = (0..N)
        .map(|i| format!("key{}:value:{i}\n", i % 50))
        .collect();
    let (output, elapsed) = produce(
        &[
            "--bootstrap",
            &broker.bootstrap(),
            "--topic",
            "tool",
            "--key-separator",
            ":",
            "--deadline-ms",
            "10000",
            "--report",
            report_path.to_str().unwrap(),
        ],
        &input,
    );
    eprintln!(
        "produce: {:?} in {elapsed:?}; stdout {:?}; stderr {:?}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0));
    let s = summary(&output);
    check_keys(&s);
    assert_eq!(s["persisted"], N as i64);
    assert_eq!(s["not_persisted"], 0);
    assert_eq!(s["possibly_persisted"], 0);
    assert!(s["producer_id"] >= 0 && s["epoch"] >= 0);
    check_one_producer_id(&broker, &s, "tool");
    let lines = report(&report_path);
    let _ = std::fs::remove_file(&report_path);
    assert_eq!(lines.len(), N);
    // A healthy broker and no retry: the report's offsets are exact on either broker.
    let log = read_back(&broker.bootstrap(), "tool", 3, N, Duration::from_secs(30));
    assert_eq!(log.iter().map(Vec::len).sum::<usize>(), N);
    for (n, (index, outcome, partition, offset)) in lines.into_iter().enumerate() {
        assert_eq!(index, n, "report out of input order");
        assert_eq!(outcome, "persisted");
        let r = log
            .get(partition as usize)
            .and_then(|p| p.iter().find(|r| r.offset == offset))
            .unwrap_or_else(|| {
                panic!("line {n}: nothing at partition {partition} offset {offset}")
            });
        assert_eq!(r.key.as_deref(), Some(format!("key{}", n % 50).as_bytes()));
        assert_eq!(r.value.as_deref(), Some(format!("value:{n}").as_bytes()));
    }
}

#[test]
fn refused_broker_exit_2_promptly_after_last_deadline() {
    let report_path = temp_path("report");
    let (output, elapsed) = produce(
        &[
            "--bootstrap",
            &refusing_address(),
            "--topic",
            "t",
            "--deadline-ms",
            "300",
            "--report",
            report_path.to_str().unwrap(),
        ],
        "a\nb\nc\n",
    );
    eprintln!(
        "produce: {:?} in {elapsed:?}; stdout {:?}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(output.status.code(), Some(2));
    let s = summary(&output);
    check_keys(&s);
    assert_eq!(s["persisted"], 0);
    assert_eq!(s["not_persisted"], 3);
    assert_eq!(s["possibly_persisted"], 0);
    assert_eq!(s["producer_id"], -1);
    let lines = report(&report_path);
    let _ = std::fs::remove_file(&report_path);
    assert_eq!(
        lines,
        (0..3)
            .map(|i| (i, "not-persisted".to_string(), -1, -1))
            .collect::<Vec<_>>()
    );
    // Lines are read at once, each deadline counted from its reading: the last deadline is
    // ~300 ms in. The tool must be done within ~100 ms of it.
    let last_deadline_ms = 300;
    assert!(
        s["elapsed_ms"] <= last_deadline_ms + 100,
        "summary says {} ms",
        s["elapsed_ms"]
    );
    assert!(
        s["elapsed_ms"] >= last_deadline_ms - 20,
        "gave up before the deadline: {} ms",
        s["elapsed_ms"]
    );
    assert!(
        elapsed <= Duration::from_millis(last_deadline_ms as u64 + 200),
        "process took {elapsed:?}"
    );
}

#[test]
fn wait_policy_refused_broker_still_returns() {
    let (output, elapsed) = produce(
        &[
            "--bootstrap",
            &refusing_address(),
            "--topic",
            "t",
            "--deadline-ms",
            "500",
            "--unknown-outcome",
            "wait",
        ],
        "only\n",
    );
    assert_eq!(output.status.code(), Some(2));
    let s = summary(&output);
    assert_eq!(s["not_persisted"], 1);
    assert!(
        elapsed <= Duration::from_millis(700),
        "process took {elapsed:?}"
    );
}

#[test]
fn usage_and_setup_errors_exit_1() {
    for (args, what) in [
        (vec!["--bootstrap", "127.0.0.1:9"], "missing --topic"),
        (
            vec!["--bootstrap", "127.0.0.1:9", "--topic", "t", "--bogus"],
            "unknown flag",
        ),
        (
            vec![
                "--bootstrap",
                "127.0.0.1:9",
                "--topic",
                "t",
                "--deadline-ms",
                "soon",
            ],
            "bad number",
        ),
        (
            vec!["--bootstrap", "no-port", "--topic", "t"],
            "bad bootstrap",
        ),
        (
            vec![
                "--bootstrap",
                "127.0.0.1:9",
                "--topic",
                "t",
                "--batch-bytes",
                "1",
            ],
            "batch too small",
        ),
        (
            vec![
                "--bootstrap",
                "127.0.0.1:9",
                "--topic",
                "t",
                "--partition",
                "-1",
            ],
            "negative partition",
        ),
        (
            vec![
                "--bootstrap",
                "127.0.0.1:9",
                "--topic",
                "t",
                "--deadline-ms",
                "0",
            ],
            "zero deadline",
        ),
        (
            vec![
                "--bootstrap",
                "127.0.0.1:9",
                "--topic",
                "t",
                "--deadline-ms",
                "18446744073709551615",
            ],
            "deadline beyond what the producer counts",
        ),
        (
            vec![
                "--bootstrap",
                "127.0.0.1:9",
                "--topic",
                "t",
                "--key-separator",
                "",
            ],
            "empty key separator",
        ),
    ] {
        let (output, _) = produce(&args, "x\n");
        assert_eq!(
            output.status.code(),
            Some(1),
            "{what}: {args:?} exited {:?}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
