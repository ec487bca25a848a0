//! Bounded behaviour on input: records sent while stdin is idle; bad lines and refused
//! records each with their own outcome; a 1 GiB line read with bounded memory; a setting out
//! of range refused with its range.

use super::*;

/// Records are sent while stdin is idle: 50 lines, then a pause three times the deadline,
/// then 50 more. While the pause lasts an independent consumer finds the first 50 in the log,
/// and the tool's progress line says they were acknowledged; in the end every record is
/// persisted (a tool that waits for the next line would send the first 50 after their
/// deadline, and report them not persisted).
#[test]
fn idle_stdin_records_are_sent_and_decided_during_the_pause_kafka() {
    idle_stdin_records_are_sent_and_decided_during_the_pause(BrokerKind::Kafka);
}

#[test]
fn idle_stdin_records_are_sent_and_decided_during_the_pause_tansu() {
    idle_stdin_records_are_sent_and_decided_during_the_pause(BrokerKind::Tansu);
}

fn idle_stdin_records_are_sent_and_decided_during_the_pause(kind: BrokerKind) {
    const HALF: usize = 50;
    const DEADLINE_MS: u64 = 2_000;
    const PAUSE: Duration = Duration::from_millis(3 * DEADLINE_MS);
    let broker = Broker::start(kind);
    broker.create_topic("tool-idle", 3);
    let report_path = temp_path("report");
    let deadline = DEADLINE_MS.to_string();
    let mut child = spawn_produce(&[
        "--bootstrap",
        &broker.bootstrap(),
        "--topic",
        "tool-idle",
        "--deadline-ms",
        &deadline,
        "--progress",
        "--report",
        report_path.to_str().unwrap(),
    ]);
    let stderr = collect_stderr(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    let first: String = (0..HALF).map(|i| format!("idle:{i}\n")).collect();
    stdin.write_all(first.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let pause_ends = Instant::now() + PAUSE;
    // During the pause, with stdin open and silent: the first half is in the log...
    let during = read_back(
        &broker.bootstrap(),
        "tool-idle",
        3,
        HALF,
        PAUSE - Duration::from_millis(500),
    );
    let in_log_during_pause = during.iter().map(Vec::len).sum::<usize>();
    // ...and the tool has been told so: its progress line counts them acknowledged.
    let acked_during_pause = loop {
        let said = stderr.so_far();
        let acked = said
            .split('\r')
            .filter_map(|l| l.split("acked ").nth(1)?.split(' ').next()?.parse().ok())
            .max()
            .unwrap_or(0usize);
        if acked >= HALF || Instant::now() + Duration::from_millis(100) >= pause_ends {
            break acked;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(Instant::now() < pause_ends, "the checks overran the pause");
    std::thread::sleep(pause_ends.saturating_duration_since(Instant::now()));
    let second: String = (HALF..2 * HALF).map(|i| format!("idle:{i}\n")).collect();
    stdin.write_all(second.as_bytes()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().expect("wait for produce");
    let stderr = stderr.all();
    eprintln!(
        "{}: produce {:?}; during the pause: {in_log_during_pause} records in the log, {acked_during_pause} acknowledged; stdout {:?}; stderr {:?}",
        kind.name(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        stderr.replace('\r', "\n")
    );
    assert_eq!(
        in_log_during_pause, HALF,
        "the first {HALF} lines were not all in the log while stdin was idle"
    );
    assert!(
        during.iter().flatten().all(|r| {
            let v = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
            v.strip_prefix("idle:")
                .and_then(|i| i.parse::<usize>().ok())
                .is_some_and(|i| i < HALF)
        }),
        "unexpected records in the log during the pause: {during:?}"
    );
    assert_eq!(
        acked_during_pause, HALF,
        "the tool had not taken the first {HALF} outcomes while stdin was idle"
    );
    assert_eq!(output.status.code(), Some(0));
    let s = summary(&output);
    check_keys(&s);
    assert_eq!(s["persisted"], 2 * HALF as i64);
    let lines = report(&report_path);
    let _ = std::fs::remove_file(&report_path);
    assert_eq!(lines.len(), 2 * HALF);
    let log = read_back(
        &broker.bootstrap(),
        "tool-idle",
        3,
        2 * HALF,
        Duration::from_secs(30),
    );
    assert_eq!(log.iter().map(Vec::len).sum::<usize>(), 2 * HALF);
    for (n, (index, outcome, partition, offset)) in lines.into_iter().enumerate() {
        assert_eq!(index, n, "report out of input order");
        assert_eq!(outcome, "persisted", "line {n}");
        let r = record_at(&log, partition, offset);
        assert_eq!(r.value.as_deref(), Some(format!("idle:{n}").as_bytes()));
    }
    check_one_producer_id(&broker, &s, "tool-idle");
}

/// Each line is its own record with its own outcome: among good lines, a 5 MB line (skipped
/// as it is read: no batch holds it), a line of exactly `--batch-bytes` (read, then refused
/// by the producer: the batch header leaves no room) and lines that are not UTF-8, in key and
/// value. The run goes on: exit 2, a summary, one report line per input line in input order,
/// the two long lines not persisted (reason on stderr: record too large), the binary records
/// read back byte for byte. Then a record the producer refuses (`--partition 7` of a
/// three-partition topic: NoSuchPartition) is that record's outcome, not the end of the run.
#[test]
fn bad_lines_and_refused_records_get_their_own_outcome_kafka() {
    bad_lines_and_refused_records_get_their_own_outcome(BrokerKind::Kafka);
}

#[test]
fn bad_lines_and_refused_records_get_their_own_outcome_tansu() {
    bad_lines_and_refused_records_get_their_own_outcome(BrokerKind::Tansu);
}

/// A record's key (if any) and value.
type KeyValue = (Option<Vec<u8>>, Vec<u8>);

fn bad_lines_and_refused_records_get_their_own_outcome(kind: BrokerKind) {
    const BATCH_BYTES: usize = 65_536;
    let broker = Broker::start(kind);
    broker.create_topic("tool-lines", 3);
    broker.create_topic("tool-refused", 3);
    // (key, value) each line should become; `None` for the lines too large.
    let mut expected: Vec<Option<KeyValue>> = Vec::new();
    let mut input: Vec<u8> = Vec::new();
    let good = |i: usize| {
        (
            format!("key{i}").into_bytes(),
            format!("value:{i}").into_bytes(),
        )
    };
    for i in 0..5 {
        let (k, v) = good(i);
        input.extend([&k[..], b":", &v[..], b"\n"].concat());
        expected.push(Some((Some(k), v)));
    }
    // 5 MB, far beyond any batch.
    input.extend(vec![b'x'; 5_000_000]);
    input.push(b'\n');
    expected.push(None);
    // Not UTF-8, in the key and in the value (a NUL and a CR inside too).
    let (k, v) = (
        b"\xff\xfe\x00k".to_vec(),
        b"\x80bin\x00\rary\xc3\x28\xf0".to_vec(),
    );
    input.extend([&k[..], b":", &v[..], b"\n"].concat());
    expected.push(Some((Some(k), v)));
    // Exactly a batch: read whole, refused by the producer.
    input.extend(vec![b'y'; BATCH_BYTES]);
    input.push(b'\n');
    expected.push(None);
    // Not UTF-8, no separator: a value without a key; CRLF ends it.
    let v = b"\xc0\xc1 \xf5\xff no key".to_vec();
    input.extend([&v[..], b"\r\n"].concat());
    expected.push(Some((None, v)));
    for i in 9..14 {
        let (k, v) = good(i);
        input.extend([&k[..], b":", &v[..], b"\n"].concat());
        expected.push(Some((Some(k), v)));
    }
    let report_path = temp_path("report");
    let batch_bytes = BATCH_BYTES.to_string();
    let (output, elapsed) = produce(
        &[
            "--bootstrap",
            &broker.bootstrap(),
            "--topic",
            "tool-lines",
            "--key-separator",
            ":",
            "--batch-bytes",
            &batch_bytes,
            "--deadline-ms",
            "10000",
            "--report",
            report_path.to_str().unwrap(),
        ],
        &input,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "{}: produce {:?} in {elapsed:?}; stdout {:?}; stderr {stderr:?}",
        kind.name(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
    );
    assert_eq!(output.status.code(), Some(2));
    let s = summary(&output);
    check_keys(&s);
    let too_large = expected.iter().filter(|e| e.is_none()).count();
    assert_eq!(s["persisted"], (expected.len() - too_large) as i64);
    assert_eq!(s["not_persisted"], too_large as i64);
    assert_eq!(s["possibly_persisted"], 0);
    for (n, e) in expected.iter().enumerate() {
        if e.is_none() {
            assert!(
                stderr.contains(&format!(
                    "line {n} not persisted: record refused: the record does not fit in a batch"
                )),
                "no reason given for line {n}: {stderr}"
            );
        }
    }
    let lines = report(&report_path);
    let _ = std::fs::remove_file(&report_path);
    assert_eq!(
        lines.len(),
        expected.len(),
        "one report line per input line"
    );
    let log = read_back(
        &broker.bootstrap(),
        "tool-lines",
        3,
        expected.len() - too_large,
        Duration::from_secs(30),
    );
    assert_eq!(
        log.iter().map(Vec::len).sum::<usize>(),
        expected.len() - too_large
    );
    for (n, ((index, outcome, partition, offset), e)) in
        lines.into_iter().zip(&expected).enumerate()
    {
        assert_eq!(index, n, "report out of input order");
        match e {
            None => assert_eq!(
                (outcome.as_str(), partition, offset),
                ("not-persisted", -1, -1),
                "line {n}"
            ),
            Some((key, value)) => {
                assert_eq!(outcome, "persisted", "line {n}");
                let r = record_at(&log, partition, offset);
                assert_eq!(r.key.as_ref(), key.as_ref(), "line {n}: key");
                assert_eq!(r.value.as_ref(), Some(value), "line {n}: value");
            }
        }
    }
    check_one_producer_id(&broker, &s, "tool-lines");

    // A record the producer refuses is that record's outcome.
    let report_path = temp_path("report");
    let (output, _) = produce(
        &[
            "--bootstrap",
            &broker.bootstrap(),
            "--topic",
            "tool-refused",
            "--partition",
            "7",
            "--deadline-ms",
            "10000",
            "--report",
            report_path.to_str().unwrap(),
        ],
        "a\nb\nc\n",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "{}: --partition 7: produce {:?}; stdout {:?}; stderr {stderr:?}",
        kind.name(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
    );
    assert_eq!(output.status.code(), Some(2));
    let s = summary(&output);
    check_keys(&s);
    assert_eq!(
        (s["persisted"], s["not_persisted"], s["possibly_persisted"]),
        (0, 3, 0)
    );
    assert!(
        stderr.contains("record refused: the partition does not exist in the topic"),
        "{stderr}"
    );
    let lines = report(&report_path);
    let _ = std::fs::remove_file(&report_path);
    assert_eq!(
        lines,
        (0..3)
            .map(|i| (i, "not-persisted".to_string(), 7, -1))
            .collect::<Vec<_>>()
    );
    let log = read_back(
        &broker.bootstrap(),
        "tool-refused",
        3,
        0,
        Duration::from_secs(30),
    );
    assert_eq!(log.iter().map(Vec::len).sum::<usize>(), 0);
}

/// A 1 GiB line without a newline, streamed in after good lines, is read with bounded
/// memory: the tool's peak RSS (VmHWM, read while it is still running, the whole line written
/// to its stdin but for what the pipe holds) stays under 64 MiB. The bound: of its input the
/// tool keeps at most its read-ahead (4 MiB) and one line buffer (`batch_bytes` and a byte,
/// 64 KiB here); the producer's buffers, all sized from the checked `batch_bytes`, are about
/// 17 MiB at their fullest (256 batch slots of 64 KiB, a 320 KiB send buffer) and a few
/// hundred KiB per connection; the binary and its libraries take a few MiB. A tool that
/// buffers the line needs more than 1 GiB. The line ends at the end of the input and is not
/// persisted; the lines before it are.
#[test]
fn one_gib_line_is_read_with_bounded_memory_kafka() {
    one_gib_line_is_read_with_bounded_memory(BrokerKind::Kafka);
}

#[test]
fn one_gib_line_is_read_with_bounded_memory_tansu() {
    one_gib_line_is_read_with_bounded_memory(BrokerKind::Tansu);
}

fn one_gib_line_is_read_with_bounded_memory(kind: BrokerKind) {
    const GOOD: usize = 20;
    const LINE: usize = 1 << 30;
    const BOUND_KIB: u64 = 64 * 1024;
    let broker = Broker::start(kind);
    broker.create_topic("tool-huge", 3);
    let report_path = temp_path("report");
    let mut child = spawn_produce(&[
        "--bootstrap",
        &broker.bootstrap(),
        "--topic",
        "tool-huge",
        "--deadline-ms",
        "10000",
        "--report",
        report_path.to_str().unwrap(),
    ]);
    let stderr = collect_stderr(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    let good: String = (0..GOOD).map(|i| format!("huge:{i}\n")).collect();
    stdin.write_all(good.as_bytes()).unwrap();
    let chunk = vec![b'z'; 1 << 20];
    let started = Instant::now();
    for _ in 0..LINE / chunk.len() {
        stdin.write_all(&chunk).unwrap();
    }
    stdin.flush().unwrap();
    let streamed = started.elapsed();
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .expect("the tool's /proc status while it runs");
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"));
    drop(stdin);
    let output = child.wait_with_output().expect("wait for produce");
    let stderr = stderr.all();
    eprintln!(
        "{}: {} MiB streamed in {streamed:?}; peak RSS {peak_kib} KiB; produce {:?}; stdout {:?}; stderr {stderr:?}",
        kind.name(),
        LINE >> 20,
        output.status,
        String::from_utf8_lossy(&output.stdout),
    );
    assert!(
        peak_kib < BOUND_KIB,
        "peak RSS {peak_kib} KiB with a {} MiB line: not bounded by {BOUND_KIB} KiB",
        LINE >> 20
    );
    assert_eq!(output.status.code(), Some(2));
    let s = summary(&output);
    check_keys(&s);
    assert_eq!(
        (s["persisted"], s["not_persisted"], s["possibly_persisted"]),
        (GOOD as i64, 1, 0)
    );
    assert!(
        stderr.contains(&format!(
            "line {GOOD} not persisted: record refused: the record does not fit in a batch of \
             batch_bytes: raise batch_bytes or send a smaller record (a line of {LINE} bytes"
        )),
        "{stderr}"
    );
    let lines = report(&report_path);
    let _ = std::fs::remove_file(&report_path);
    assert_eq!(lines.len(), GOOD + 1);
    assert!(
        lines[..GOOD].iter().all(|l| l.1 == "persisted"),
        "{lines:?}"
    );
    assert_eq!(lines[GOOD], (GOOD, "not-persisted".to_string(), -1, -1));
}

/// Bad `--batch-bytes` values exit 1 with the valid range, without allocating for them (the
/// tool runs with its address space capped at 2 GiB: storage for 256 batches of the refused
/// sizes would not fit, and a failed allocation aborts rather than exits 1) and, with
/// `--state-dir`, before the state directory is created. The range given is the one taken:
/// its ends are accepted, one past them refused.
#[test]
fn bad_batch_bytes_exit_1_with_the_valid_range() {
    fn run(batch_bytes: &str, state_dir: Option<&PathBuf>) -> Output {
        let binary = produce_binary();
        let mut args = vec![
            "--bootstrap".to_string(),
            refusing_address(),
            "--topic".into(),
            "t".into(),
            "--deadline-ms".into(),
            "200".into(),
            "--batch-bytes".into(),
            batch_bytes.into(),
        ];
        if let Some(dir) = state_dir {
            args.extend(["--state-dir".into(), dir.to_str().unwrap().into()]);
        }
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 2097152 && exec \"$0\" \"$@\"")
            .arg(binary)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn produce");
        // A refused setting ends the tool before it reads: the pipe may be closed already.
        let _ = child.stdin.take().unwrap().write_all(b"x\n");
        child.wait_with_output().expect("wait for produce")
    }
    /// The range in "set it between MIN and MAX".
    fn range(stderr: &str) -> Option<(usize, usize)> {
        let rest = stderr.split("set it between ").nth(1)?;
        let mut words = rest.split_whitespace();
        let min = words.next()?.parse().ok()?;
        (words.next()? == "and").then_some(())?;
        let max = words
            .next()?
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .ok()?;
        Some((min, max))
    }
    for durable in [false, true] {
        let dir = temp_path("state");
        let state_dir = durable.then_some(&dir);
        let mut ranges = Vec::new();
        for bad in ["0", "76", "100000000", "18446744073709551615"] {
            let output = run(bad, state_dir);
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            eprintln!(
                "--batch-bytes {bad} (durable: {durable}): {:?}: {stderr}",
                output.status
            );
            assert_eq!(output.status.code(), Some(1), "{bad}: {stderr}");
            assert!(
                output.stdout.is_empty(),
                "{bad}: a summary for a setup error"
            );
            let (min, max) =
                range(&stderr).unwrap_or_else(|| panic!("{bad}: no valid range in {stderr:?}"));
            assert!(min <= max && max <= transport_std::MAX_BATCH_BYTES);
            let given: u128 = bad.parse().unwrap();
            assert!(
                given < min as u128 || given > max as u128,
                "{bad} refused, but within the range {min}..={max} given"
            );
            assert!(!dir.exists(), "{bad}: the state directory was created");
            ranges.push((min, max));
        }
        ranges.dedup();
        assert_eq!(ranges.len(), 1, "different ranges given: {ranges:?}");
        let (min, max) = ranges[0];
        for (value, accepted) in [(min - 1, false), (min, true), (max, true), (max + 1, false)] {
            let output = run(&value.to_string(), state_dir);
            let stderr = String::from_utf8_lossy(&output.stderr);
            // Accepted: the refusing broker leaves the record not persisted (exit 2).
            assert_eq!(
                output.status.code(),
                Some(if accepted { 2 } else { 1 }),
                "--batch-bytes {value} (range {min}..={max}, durable: {durable}): {stderr}"
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
