//! The `produce` tool with `--state-dir` survives being killed: 100,000 input lines, the tool
//! killed with SIGKILL at random moments and started again the same way (same state
//! directory, stdin from the same file) until it exits 0, against one broker that runs
//! throughout: one Apache Kafka 4.x node (`_kafka`) or tansu (`_tansu`), the same body each.
//! Only the producer is ever killed (tansu's memory storage forgets producer state if
//! restarted).
//!
//! Then, read back by an independent consumer (librdkafka):
//! - every input line is in the log exactly once, with its key and value intact;
//! - per partition, the lines are in input order; each key's lines all in one partition;
//! - the final `--report` has one line per input line, in input order, every one
//!   `persisted`, at the partition where the record really is and, when the offset is known
//!   (>= 0; a resend tansu answered DUPLICATE_SEQUENCE_NUMBER carries none), at its offset.
//!   On Kafka every offset is known (it answers a resend still among the producer's last five
//!   batches with NONE and the original offsets) and so checked;
//! - the final summary says all 100,000 persisted, and every run that ended by itself
//!   exited 0. On Kafka, which accepts a local epoch bump, a fence needs no new producer id:
//!   the summary's epoch is its epoch bumps (each run resends its restored batches under the
//!   identity they were stamped with, then takes one new producer id for the rest, by design).
//!
//! Knobs: `DURABLE_KILLS` (kills to deliver, default 20), `DURABLE_SEED` (kill-time RNG
//! seed, default a constant). Kill times are drawn from 50..1500 ms, narrowed from above so
//! that the kills spread over an uninterrupted run's duration, measured first on another
//! topic.
//!
//! The binary is built on first use with `cargo build -p examples --bin produce` (same
//! target directory as this test, optimised). On failure the working directory (input,
//! state directory, report, each run's stdout and stderr) is kept and its path printed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tests::kafka::Kafka;
use tests::{Broker, BrokerKind, ReadRecord, read_back};

/// Input lines.
const N: usize = 100_000;
/// Distinct keys (`k0` .. `k16`).
const KEYS: usize = 17;
const PARTITIONS: i32 = 3;
/// Length of each input line, without its newline.
const LINE_LEN: usize = 100;
const DEFAULT_KILLS: usize = 20;
const DEFAULT_SEED: u64 = 0x00D0_4AB1_E5EE_D001;
/// Kill times are drawn from `MIN_KILL..MAX_KILL`, narrowed for a fast tool.
const MIN_KILL: Duration = Duration::from_millis(50);
const MAX_KILL: Duration = Duration::from_millis(1500);
/// An uninterrupted run (the calibration and the last run) must end within this.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// Deadline per record: generous, so no deadline fires (this test is about crashes).
const DEADLINE_MS: &str = "120000";
/// Examples shown per kind of problem.
const EXAMPLES: usize = 10;

/// Path of the `produce` binary, built optimised once per test process: a debug build runs
/// the state store some forty times slower, and the kills should land all through a run, not
/// only in its first second.
fn produce_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            // target/<profile>/deps/durable_kill-HASH -> target/
            let exe = std::env::current_exe().expect("test executable path");
            let target_dir = exe
                .parent()
                .and_then(|deps| deps.parent())
                .and_then(|profile| profile.parent())
                .expect("target directory");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "examples", "--bin", "produce", "--release"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build");
            assert!(status.success(), "building produce failed");
            let binary = target_dir
                .join("release")
                .join(format!("produce{}", std::env::consts::EXE_SUFFIX));
            assert!(binary.exists(), "{} missing", binary.display());
            binary
        })
        .clone()
}

/// Input line `i`, without its newline: `k{i % 17}:v{i}-` padded with letters to 100 bytes.
fn line(i: usize) -> String {
    let mut s = format!("k{}:v{i}-", i % KEYS);
    let start = s.len();
    s.extend((start..LINE_LEN).map(|j| char::from(b'a' + ((i + j) % 26) as u8)));
    s
}

/// The line a record read back came from, if its value names one and key and value are
/// exactly that line's.
fn line_of(r: &ReadRecord) -> Result<usize, String> {
    let value = r.value.as_deref().ok_or("no value")?;
    let value = std::str::from_utf8(value).map_err(|_| "value not UTF-8")?;
    let i: usize = value
        .strip_prefix('v')
        .and_then(|v| v.split('-').next())
        .and_then(|n| n.parse().ok())
        .filter(|&i| i < N)
        .ok_or_else(|| format!("value {value:?} names no line"))?;
    let expected = line(i);
    let (key, rest) = expected.split_once(':').unwrap();
    if r.key.as_deref() != Some(key.as_bytes()) || value != rest {
        return Err(format!(
            "line {i}: key {:?} value {value:?}, expected {key:?} {rest:?}",
            r.key.as_deref().map(String::from_utf8_lossy)
        ));
    }
    Ok(i)
}

/// One run of the tool, killed (SIGKILL) and reaped if dropped while running.
struct Run {
    child: Child,
    started: Instant,
    stderr: PathBuf,
    stdout: PathBuf,
}

impl Run {
    /// Starts `produce` with `args`, stdin from `input`, stdout and stderr to
    /// `dir/NAME.stdout` and `dir/NAME.stderr`.
    fn start(args: &[String], input: &Path, dir: &Path, name: &str) -> Run {
        let stdout = dir.join(format!("{name}.stdout"));
        let stderr = dir.join(format!("{name}.stderr"));
        let started = Instant::now();
        let child = Command::new(produce_binary())
            .args(args)
            .stdin(Stdio::from(File::open(input).expect("open input")))
            .stdout(Stdio::from(File::create(&stdout).expect("stdout file")))
            .stderr(Stdio::from(File::create(&stderr).expect("stderr file")))
            .spawn()
            .expect("spawn produce");
        Run {
            child,
            started,
            stderr,
            stdout,
        }
    }

    /// Waits until it exits or `until`, polling; returns its status and when it was seen.
    fn wait_until(&mut self, until: Instant) -> Option<(ExitStatus, Duration)> {
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some((status, self.started.elapsed()));
            }
            if Instant::now() >= until {
                return None;
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Sends SIGKILL and reaps it. Returns its status (which says SIGKILL unless it had
    /// exited by itself just before) and when it was killed.
    fn kill(&mut self) -> (ExitStatus, Duration) {
        let at = self.started.elapsed();
        self.child.kill().expect("kill produce");
        (self.child.wait().expect("wait for produce"), at)
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// The last `n` lines of its stderr, joined with " | ".
    fn stderr_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..].join(" | ")
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The JSON summary: the last stdout line, as a flat map of key to number.
fn summary(stdout: &str) -> Result<HashMap<String, i64>, String> {
    let line = stdout.lines().last().unwrap_or("").trim();
    let inner = line
        .strip_prefix('{')
        .and_then(|l| l.strip_suffix('}'))
        .ok_or_else(|| format!("no JSON summary line in stdout {stdout:?}"))?;
    inner
        .split(',')
        .map(|kv| {
            let (k, v) = kv
                .split_once(':')
                .ok_or_else(|| format!("summary: {kv:?}"))?;
            let k = k.trim().trim_matches('"').to_string();
            let v = v
                .trim()
                .parse()
                .map_err(|_| format!("summary: {k}: not a number: {v}"))?;
            Ok((k, v))
        })
        .collect()
}

/// A report's outcome counts, and the first and last lines not `persisted`.
fn report_breakdown(path: &Path) -> String {
    let Ok(report) = std::fs::read_to_string(path) else {
        return format!("{} unreadable", path.display());
    };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut other: Vec<&str> = Vec::new();
    for l in report.lines() {
        let outcome = l.split(' ').nth(1).unwrap_or("(malformed)");
        *counts.entry(outcome).or_default() += 1;
        if outcome != "persisted" {
            other.push(l);
        }
    }
    let last = &other[other.len().saturating_sub(3)..];
    format!(
        "{} lines, outcomes {counts:?}; first not persisted {:?}, last {last:?}",
        report.lines().count(),
        &other[..other.len().min(3)]
    )
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(libc::SIGKILL)) => "SIGKILL".to_string(),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => format!("{status}"),
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?}: not a number")),
        Err(_) => default,
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// How many batches of each (producer id, epoch) the partitions `0..partitions` of `topic`
/// hold in `kafka`'s segment files ([`Kafka::try_stored_batches`]).
fn log_producers(
    kafka: &Kafka,
    topic: &str,
    partitions: i32,
) -> Result<BTreeMap<(i64, i64), usize>, String> {
    let mut producers = BTreeMap::new();
    for p in 0..partitions {
        for b in kafka.try_stored_batches(topic, p)? {
            *producers
                .entry((b.producer_id, b.producer_epoch))
                .or_default() += 1;
        }
    }
    Ok(producers)
}

#[test]
fn killed_and_restarted_every_line_exactly_once_kafka() {
    killed_and_restarted_every_line_exactly_once(BrokerKind::Kafka);
}

#[test]
fn killed_and_restarted_every_line_exactly_once_tansu() {
    killed_and_restarted_every_line_exactly_once(BrokerKind::Tansu);
}

fn killed_and_restarted_every_line_exactly_once(kind: BrokerKind) {
    let test_started = Instant::now();
    let kills_wanted: usize = env_or("DURABLE_KILLS", DEFAULT_KILLS);
    let seed: u64 = env_or("DURABLE_SEED", DEFAULT_SEED);
    eprintln!(
        "{}: seed {seed} (DURABLE_SEED), {kills_wanted} kills (DURABLE_KILLS)",
        kind.name()
    );
    let mut rng = StdRng::seed_from_u64(seed);

    let help = Command::new(produce_binary())
        .arg("--help")
        .output()
        .expect("run produce --help");
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("--state-dir"),
        "produce has no --state-dir option yet:\n{}",
        String::from_utf8_lossy(&help.stdout)
    );

    let work = std::env::temp_dir().join(format!(
        "durable-kill-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&work).expect("working directory");
    eprintln!("working directory {}", work.display());
    let input = work.join("input");
    let mut text = String::with_capacity(N * (LINE_LEN + 1));
    for i in 0..N {
        text.push_str(&line(i));
        text.push('\n');
    }
    std::fs::write(&input, text).expect("write input");

    let broker = Broker::start(kind);
    let bootstrap = broker.bootstrap();
    let args_for = |topic: &str, state: &Path, report: &Path| -> Vec<String> {
        [
            "--bootstrap",
            &bootstrap,
            "--topic",
            topic,
            "--key-separator",
            ":",
            "--linger-ms",
            "5",
            "--deadline-ms",
            DEADLINE_MS,
            "--state-dir",
            state.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ]
        .map(String::from)
        .into_iter()
        .chain(kind.grace_args())
        .collect()
    };

    // Calibration: one uninterrupted run on a topic of its own, to see how long a whole
    // run takes, so that the kills can be spread over it.
    broker.create_topic("durable-calibrate", PARTITIONS);
    let calibrate_args = args_for(
        "durable-calibrate",
        &work.join("calibrate-state"),
        &work.join("calibrate-report"),
    );
    let mut calibration = Run::start(&calibrate_args, &input, &work, "calibrate");
    let (status, full_run) = calibration
        .wait_until(Instant::now() + RUN_TIMEOUT)
        .unwrap_or_else(|| {
            calibration.kill();
            panic!(
                "an uninterrupted run did not end within {RUN_TIMEOUT:?}; stderr: {}",
                calibration.stderr_tail(5)
            )
        });
    eprintln!(
        "calibration: uninterrupted run {} in {} ms; stdout {:?}; stderr {:?}",
        describe(status),
        ms(full_run),
        calibration.stdout().trim(),
        calibration.stderr_tail(5)
    );
    assert_eq!(
        status.code(),
        Some(0),
        "an uninterrupted run (no kill) failed, so crashes cannot be tested (work dir {}): {}; stdout {:?}; report: {}; stderr: {}",
        work.display(),
        describe(status),
        calibration.stdout().trim(),
        report_breakdown(&work.join("calibrate-report")),
        calibration.stderr_tail(5)
    );
    let mut problems: Vec<String> = Vec::new();
    if let Ok(s) = summary(&calibration.stdout()) {
        let (epoch, bumps) = (s.get("epoch").copied(), s.get("epoch_bumps").copied());
        eprintln!(
            "calibration: producer id {:?}, epoch {epoch:?}, epoch bumps {bumps:?}",
            s.get("producer_id")
        );
        // A new producer id starts again at epoch 0: an epoch other than the bumps means a
        // fence needed one, which Kafka, accepting the bump, never should.
        if kind.accepts_epoch_bump() && epoch != bumps {
            problems.push(format!(
                "calibration: epoch {epoch:?} after {bumps:?} epoch bumps: a fence needed a new producer id; summary {s:?}"
            ));
        }
    }
    drop(calibration);
    // Kill times: MIN_KILL..MAX_KILL, the top lowered so the mean kill time is ~80% of a
    // whole run divided by the kills (most kills land mid-run, whatever the tool's speed).
    let max_kill = (full_run.mul_f64(1.6) / kills_wanted.max(1) as u32)
        .clamp(Duration::from_millis(20), MAX_KILL);
    let min_kill = MIN_KILL.min(max_kill / 2);
    eprintln!(
        "kill times drawn from {}..{} ms",
        ms(min_kill),
        ms(max_kill)
    );

    let topic = "durable-kill";
    broker.create_topic(topic, PARTITIONS);
    let state = work.join("state");
    let report_path = work.join("report");
    let args = args_for(topic, &state, &report_path);

    // Kill loop: start, wait a random time, SIGKILL, reap; again until `kills_wanted` kills
    // were delivered (or the iteration cap).
    let max_iterations = 3 * kills_wanted + 3;
    let mut kills = 0usize;
    let mut kills_before_done = 0usize;
    let mut self_exits = 0usize;
    let mut done = false; // a run exited 0 by itself: the whole input persisted
    let mut iterations = 0usize;
    let mut kill_times: Vec<u128> = Vec::new();
    while kills < kills_wanted && iterations < max_iterations {
        iterations += 1;
        let delay = rng.random_range(min_kill..=max_kill);
        let mut run = Run::start(&args, &input, &work, &format!("run-{iterations:02}"));
        let (status, at, by_itself) = match run.wait_until(run.started + delay) {
            Some((status, at)) => (status, at, true),
            None => {
                let (status, at) = run.kill();
                (status, at, status.signal() != Some(libc::SIGKILL))
            }
        };
        let resumed = run.stderr_tail(3);
        if by_itself {
            self_exits += 1;
            eprintln!(
                "run {iterations}: exited by itself after ~{} ms (kill planned at {} ms): {}; stdout {:?}; stderr {resumed:?}",
                ms(at),
                ms(delay),
                describe(status),
                run.stdout().trim()
            );
            if status.code() == Some(0) {
                done = true;
            } else {
                problems.push(format!(
                    "run {iterations} exited by itself with {} (no deadline can fire, so only 0 is right); stderr: {resumed}",
                    describe(status)
                ));
            }
        } else {
            kills += 1;
            kill_times.push(ms(at));
            if !done {
                kills_before_done += 1;
            }
            eprintln!(
                "run {iterations}: SIGKILL after {} ms{}; stderr {resumed:?}",
                ms(at),
                if done {
                    " (input already complete)"
                } else {
                    ""
                }
            );
        }
    }

    // The last run, not killed: must exit 0.
    let mut last = Run::start(&args, &input, &work, "run-last");
    let last_status = match last.wait_until(Instant::now() + RUN_TIMEOUT) {
        Some((status, at)) => {
            eprintln!(
                "last run: {} after {} ms; stdout {:?}; stderr {:?}",
                describe(status),
                ms(at),
                last.stdout().trim(),
                last.stderr_tail(3)
            );
            Some(status)
        }
        None => {
            let (_, at) = last.kill();
            problems.push(format!(
                "the last run did not end within {RUN_TIMEOUT:?} (killed at {} ms); stderr: {}",
                ms(at),
                last.stderr_tail(5)
            ));
            None
        }
    };
    if let Some(status) = last_status
        && status.code() != Some(0)
    {
        problems.push(format!(
            "the last run exited {}, not 0; stderr: {}",
            describe(status),
            last.stderr_tail(5)
        ));
    }
    let mut summary_persisted = None;
    let mut last_identity = None;
    if last_status.is_some() {
        match summary(&last.stdout()) {
            Ok(s) => {
                summary_persisted = s.get("persisted").copied();
                let (epoch, bumps) = (s.get("epoch").copied(), s.get("epoch_bumps").copied());
                last_identity = Some((s.get("producer_id").copied(), epoch, bumps));
                // A run that restored stamped batches resumes their identity and ends the
                // resume with an epoch bump, so its epoch also counts earlier runs' bumps: at
                // least its own. (Which producer ids wrote the log is checked below.)
                if kind.accepts_epoch_bump() && epoch < bumps {
                    problems.push(format!(
                        "the last run's epoch is {epoch:?} after {bumps:?} epoch bumps of its own; summary {s:?}"
                    ));
                }
                for (key, want) in [
                    ("persisted", N as i64),
                    ("not_persisted", 0),
                    ("possibly_persisted", 0),
                ] {
                    if s.get(key) != Some(&want) {
                        problems.push(format!(
                            "summary {key} = {:?}, expected {want}; summary {s:?}",
                            s.get(key)
                        ));
                    }
                }
            }
            Err(e) => problems.push(format!("the last run's summary: {e}")),
        }
    }
    drop(last);

    // The log, read back independently.
    let log = read_back(&bootstrap, topic, PARTITIONS, N, Duration::from_secs(60));
    let total: usize = log.iter().map(Vec::len).sum();
    // Line -> where it is in the log: (partition, offset) for each copy.
    let mut copies: Vec<Vec<(i32, i64)>> = vec![Vec::new(); N];
    let mut foreign: Vec<String> = Vec::new();
    let mut out_of_order: Vec<String> = Vec::new();
    let mut out_of_order_count = 0usize;
    let mut key_partitions: BTreeMap<usize, BTreeSet<i32>> = BTreeMap::new();
    for (p, records) in log.iter().enumerate() {
        let p = p as i32;
        let mut previous: Option<(usize, i64)> = None;
        for r in records {
            let i = match line_of(r) {
                Ok(i) => i,
                Err(e) => {
                    foreign.push(format!("partition {p} offset {}: {e}", r.offset));
                    continue;
                }
            };
            copies[i].push((p, r.offset));
            key_partitions.entry(i % KEYS).or_default().insert(p);
            if let Some((before, at)) = previous
                && i <= before
            {
                out_of_order_count += 1;
                if out_of_order.len() < EXAMPLES {
                    out_of_order.push(format!(
                        "partition {p}: line {i} at offset {} after line {before} at offset {at}",
                        r.offset
                    ));
                }
            }
            previous = Some((i, r.offset));
        }
    }
    let per_partition: Vec<usize> = log.iter().map(Vec::len).collect();
    eprintln!("log: {total} records, per partition {per_partition:?}");
    if !foreign.is_empty() {
        problems.push(format!(
            "{} records in the log are no input line (or corrupt): {:?}",
            foreign.len(),
            &foreign[..foreign.len().min(EXAMPLES)]
        ));
    }
    let missing: Vec<usize> = (0..N).filter(|&i| copies[i].is_empty()).collect();
    if !missing.is_empty() {
        problems.push(format!(
            "{} input lines are missing from the log, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(EXAMPLES)]
        ));
    }
    let duplicated: Vec<(usize, &Vec<(i32, i64)>)> = copies
        .iter()
        .enumerate()
        .filter(|(_, c)| c.len() > 1)
        .collect();
    if !duplicated.is_empty() {
        let mut examples = String::new();
        for (i, c) in duplicated.iter().take(EXAMPLES) {
            let _ = write!(examples, " line {i} at (partition, offset) {c:?};");
        }
        problems.push(format!(
            "{} input lines are in the log more than once ({} extra records):{examples}",
            duplicated.len(),
            duplicated.iter().map(|(_, c)| c.len() - 1).sum::<usize>()
        ));
    }
    if out_of_order_count > 0 {
        problems.push(format!(
            "{out_of_order_count} records out of input order within their partition: {out_of_order:?}"
        ));
    }
    for (key, partitions) in &key_partitions {
        if partitions.len() > 1 {
            problems.push(format!("key k{key} is in partitions {partitions:?}"));
        }
    }
    if per_partition.iter().filter(|&&n| n > 0).count() < 2 {
        problems.push(format!(
            "the keys did not spread over partitions: {per_partition:?}"
        ));
    }

    // The report of the last run: the whole input, every line persisted where it is.
    let mut report_offsets_unknown = 0usize;
    match std::fs::read_to_string(&report_path) {
        Err(e) => problems.push(format!("report {}: {e}", report_path.display())),
        Ok(report) => {
            let lines: Vec<&str> = report.lines().collect();
            if lines.len() != N {
                problems.push(format!("the report has {} lines, not {N}", lines.len()));
            }
            let mut wrong: Vec<String> = Vec::new();
            let mut wrong_count = 0usize;
            for (n, l) in lines.iter().enumerate() {
                let f: Vec<&str> = l.split(' ').collect();
                let parsed = match f[..] {
                    [index, outcome, partition, offset] => {
                        match (
                            index.parse::<usize>(),
                            partition.parse::<i32>(),
                            offset.parse::<i64>(),
                        ) {
                            (Ok(index), Ok(partition), Ok(offset)) => {
                                Some((index, outcome, partition, offset))
                            }
                            _ => None,
                        }
                    }
                    _ => None,
                };
                let error = match parsed {
                    None => Some("malformed".to_string()),
                    Some((index, _, _, _)) if index != n => {
                        Some(format!("index {index} at line {n} of the report"))
                    }
                    Some((_, outcome, _, _)) if outcome != "persisted" => {
                        Some(format!("outcome {outcome}"))
                    }
                    Some((_, _, partition, offset)) => {
                        let c = copies.get(n).map(Vec::as_slice).unwrap_or_default();
                        if offset < 0 {
                            report_offsets_unknown += 1;
                        }
                        if c.is_empty() {
                            Some("persisted, but not in the log".to_string())
                        } else if !c.iter().any(|&(p, _)| p == partition) {
                            Some(format!(
                                "partition {partition}, but the log has it at {c:?}"
                            ))
                        } else if offset >= 0 && !c.contains(&(partition, offset)) {
                            Some(format!(
                                "offset {offset}, but the log has it at (partition, offset) {c:?}"
                            ))
                        } else {
                            None
                        }
                    }
                };
                if let Some(e) = error {
                    wrong_count += 1;
                    if wrong.len() < EXAMPLES {
                        wrong.push(format!("report line {n} {l:?}: {e}"));
                    }
                }
            }
            if wrong_count > 0 {
                problems.push(format!(
                    "{wrong_count} report lines disagree with the contract or the log: {wrong:?}"
                ));
            }
        }
    }

    // Kafka answers every resend still among the producer's last five batches with its
    // original offsets: every offset in the report is known (and was checked above).
    if kind.exact_offsets() && report_offsets_unknown > 0 {
        problems.push(format!(
            "{report_offsets_unknown} report lines have offset -1; Kafka tells the offset of every batch it acknowledges"
        ));
    }
    // On Kafka, which producers wrote the log: a run that restored stamped batches resumes
    // their identity and then bumps its epoch (Kafka accepts it); one that restored none
    // takes a new producer id. So there are at most as many producer ids as runs, and
    // usually far fewer.
    let runs = iterations + 1;
    let producers = match &broker {
        Broker::Kafka(kafka) => match log_producers(kafka, topic, PARTITIONS) {
            Ok(p) => {
                let ids = p.keys().map(|(id, _)| id).collect::<BTreeSet<_>>().len();
                if ids > runs {
                    problems.push(format!(
                        "{ids} producer ids wrote the log in {runs} runs: some run needed more than one; batches per (producer id, epoch) {p:?}"
                    ));
                }
                format!("{ids} producer ids in the log, batches per (producer id, epoch) {p:?}")
            }
            Err(e) => {
                problems.push(e.clone());
                e
            }
        },
        Broker::Tansu(_) => "producer ids in the log not read on tansu".to_string(),
    };
    eprintln!(
        "{}: stats: seed {seed}; {iterations} interrupted runs: {kills} killed ({kills_before_done} before the input was complete), {self_exits} exited by themselves; kill times (ms) {kill_times:?}; uninterrupted run {} ms; summary persisted {summary_persisted:?}; last run (producer id, epoch, epoch bumps) {last_identity:?}; {producers}; report lines with offset -1: {report_offsets_unknown}; total wall time {} ms",
        kind.name(),
        ms(full_run),
        ms(test_started.elapsed())
    );
    if kills_wanted > 0 && kills_before_done == 0 {
        problems.push("no kill landed before the input was complete".to_string());
    }
    if problems.is_empty() {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        panic!(
            "{}: {} problems (seed {seed}; working directory kept: {}):\n- {}",
            kind.name(),
            problems.len(),
            work.display(),
            problems.join("\n- ")
        );
    }
}
