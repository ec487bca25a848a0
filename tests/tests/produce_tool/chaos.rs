//! The report stays true while a proxy cuts connections.

use super::*;

/// Through a proxy that cuts connections: whatever the outcomes, the report and summary
/// agree with each other and with the log (persisted: present once; not-persisted: absent;
/// possibly-persisted: at most once), and the exit code says whether all persisted. On
/// Kafka, each persisted line's offset is where the record is, and no fence needed a new
/// producer id.
#[test]
fn chaos_report_is_true_kafka() {
    chaos_report_is_true(BrokerKind::Kafka);
}

#[test]
fn chaos_report_is_true_tansu() {
    chaos_report_is_true(BrokerKind::Tansu);
}

fn chaos_report_is_true(kind: BrokerKind) {
    const N: usize = 5_000;
    // CHAOS_SEED replays a run's cuts (the timing still differs).
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!(
        "{}: seed {seed} (rerun with CHAOS_SEED={seed})",
        kind.name()
    );
    let broker_port = free_port();
    let proxy = ChaosProxy::start(([127, 0, 0, 1], broker_port).into(), ProxyMode::Pass, seed);
    let broker = Broker::start_on(kind, broker_port, proxy.port());
    broker.create_topic("tool-chaos", 3);
    // For exploration: CHAOS_CUT_PROBABILITY overrides the cut probability.
    let cut_probability = std::env::var("CHAOS_CUT_PROBABILITY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.1);
    proxy.set_mode(ProxyMode::Chaos { cut_probability });
    let report_path = temp_path("report");
    let input: String = (0..N).map(|i| format!("value:{i}\n")).collect();
    let address = proxy.address();
    let mut args = vec![
        "--bootstrap",
        &address,
        "--topic",
        "tool-chaos",
        "--deadline-ms",
        "2000",
        // Small batches, so the run has a few hundred requests: at one cut in ten, 1024-byte
        // batches (about 35 requests) left one run in fifty uncut.
        "--batch-bytes",
        "256",
        "--report",
        report_path.to_str().unwrap(),
    ];
    let grace = kind.grace_args();
    args.extend(grace.iter().map(String::as_str));
    let (output, elapsed) = produce(&args, &input);
    proxy.set_mode(ProxyMode::Pass);
    eprintln!(
        "produce: {:?} in {elapsed:?}; stdout {:?}; proxy {:?}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        proxy.stats()
    );
    let s = summary(&output);
    check_keys(&s);
    let lines = report(&report_path);
    let _ = std::fs::remove_file(&report_path);
    assert_eq!(lines.len(), N);
    let count = |o: &str| lines.iter().filter(|l| l.1 == o).count() as i64;
    assert_eq!(s["persisted"], count("persisted"));
    assert_eq!(s["not_persisted"], count("not-persisted"));
    assert_eq!(s["possibly_persisted"], count("possibly-persisted"));
    let all = s["persisted"] == N as i64;
    assert_eq!(output.status.code(), Some(if all { 0 } else { 2 }));
    let log = read_back(
        &proxy.address(),
        "tool-chaos",
        3,
        s["persisted"] as usize,
        Duration::from_secs(30),
    );
    // Line -> (partition, offset of its first copy, copies).
    let mut found: HashMap<usize, (i32, i64, usize)> = HashMap::new();
    for (p, records) in log.iter().enumerate() {
        for r in records {
            let v = String::from_utf8(r.value.clone().unwrap()).unwrap();
            let i: usize = v.strip_prefix("value:").unwrap().parse().unwrap();
            found.entry(i).or_insert((p as i32, r.offset, 0)).2 += 1;
        }
    }
    let mut offsets_unknown = 0usize;
    let mut offsets_off = 0usize;
    let mut possibly_present = 0usize;
    for (n, (index, outcome, partition, offset)) in lines.iter().enumerate() {
        assert_eq!(*index, n);
        let in_log = found.get(&n).copied();
        assert!(
            in_log.is_none_or(|(_, _, c)| c == 1),
            "line {n} is in the log {in_log:?} times"
        );
        match outcome.as_str() {
            "persisted" => {
                let (p, at, _) =
                    in_log.unwrap_or_else(|| panic!("line {n} persisted, not in the log"));
                assert_eq!(p, *partition, "line {n}: partition");
                // tansu: -1 after a DUPLICATE_SEQUENCE_NUMBER answer, and sometimes one off
                // after it; counted. Kafka: exact.
                if *offset < 0 {
                    offsets_unknown += 1;
                } else if *offset != at {
                    offsets_off += 1;
                }
                assert!(
                    !kind.exact_offsets() || *offset == at,
                    "line {n}: the report says offset {offset}, the log has it at {at}"
                );
            }
            "not-persisted" => assert!(in_log.is_none(), "line {n} not-persisted is in the log"),
            "possibly-persisted" => possibly_present += usize::from(in_log.is_some()),
            other => panic!("line {n}: outcome {other:?}"),
        }
    }
    eprintln!(
        "{}: seed {seed}: persisted lines with offset -1: {offsets_unknown}, with an offset not the log's: {offsets_off}; possibly-persisted lines in the log: {possibly_present} of {}",
        kind.name(),
        s["possibly_persisted"]
    );
    check_one_producer_id(&broker, &s, "tool-chaos");
    assert!(proxy.stats().cuts() > 0, "the proxy never cut");
}
