//! The `produce` command-line tool, run as a process: exit codes (0 all persisted, 2
//! otherwise, 1 on a usage or setup error), the report file (`INDEX OUTCOME PARTITION
//! OFFSET`, one line per input line, in input order), the JSON summary line, and returning
//! promptly after the last deadline when the broker refuses connections. Bounded behaviour:
//! records are sent and decided while stdin is idle; a line too long for a batch, bytes that
//! are not UTF-8 and a record the producer refuses each get their own outcome and the run goes
//! on; a 1 GiB line is read with bounded memory; a setting out of range exits 1 with the range,
//! allocating nothing for it.
//!
//! The tests with a broker run against one Apache Kafka 4.x node (`_kafka`) and tansu
//! (`_tansu`), the same body each. Against Kafka every offset in the report is where the
//! record is in the log, retried batches included, and a fence needs no new producer id
//! (Kafka accepts the local epoch bump): the summary's epoch is its epoch bumps, and every
//! batch in the log carries the summary's producer id (read from the segments,
//! `Kafka::stored_batches`). tansu's offsets after a DUPLICATE_SEQUENCE_NUMBER answer are not
//! trusted (-1, or one off), and it refuses the bump.
//!
//! The binary is built on first use with `cargo build -p examples --bin produce` (same
//! profile and target directory as this test).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod basics;
mod chaos;
mod input;

use tests::{
    Broker, BrokerKind, ChaosProxy, ProxyMode, free_port, produce_binary, read_back,
    refusing_address,
};

/// Starts `produce` with `args`, stdin, stdout and stderr piped.
fn spawn_produce(args: &[&str]) -> Child {
    Command::new(produce_binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn produce")
}

/// Runs `produce` with `args`, feeding `input` on stdin; returns its output and wall time.
fn produce(args: &[&str], input: impl AsRef<[u8]>) -> (Output, Duration) {
    let binary = produce_binary();
    let started = Instant::now();
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn produce");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.as_ref().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().expect("wait for produce");
    let elapsed = started.elapsed();
    writer.join().unwrap();
    (output, elapsed)
}

/// The JSON summary: the last stdout line, as a flat map of key to number text.
fn summary(output: &Output) -> HashMap<String, i64> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or("").trim();
    let inner = line
        .strip_prefix('{')
        .and_then(|l| l.strip_suffix('}'))
        .unwrap_or_else(|| panic!("no JSON summary line: {stdout:?}"));
    inner
        .split(',')
        .map(|kv| {
            let (k, v) = kv.split_once(':').expect("key:value");
            let k = k.trim().trim_matches('"').to_string();
            let v = v
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{k}: not a number: {v}"));
            (k, v)
        })
        .collect()
}

const SUMMARY_KEYS: [&str; 7] = [
    "persisted",
    "not_persisted",
    "possibly_persisted",
    "producer_id",
    "epoch",
    "epoch_bumps",
    "elapsed_ms",
];

fn check_keys(s: &HashMap<String, i64>) {
    for k in SUMMARY_KEYS {
        assert!(s.contains_key(k), "summary lacks {k}: {s:?}");
    }
    assert_eq!(
        s.len(),
        SUMMARY_KEYS.len(),
        "unexpected summary keys: {s:?}"
    );
}

/// Report lines: (index, outcome, partition, offset).
fn report(path: &PathBuf) -> Vec<(usize, String, i32, i64)> {
    std::fs::read_to_string(path)
        .expect("report file")
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 4, "report line {l:?}");
            (
                f[0].parse().unwrap(),
                f[1].to_string(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect()
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "produce-tool-{}-{}-{name}",
        std::process::id(),
        rand::random::<u32>()
    ))
}

/// On Kafka, which accepts a local epoch bump: the summary's epoch is its epoch bumps (a
/// new producer id would start again at epoch 0), and every batch of `topic` in the log
/// carries the summary's producer id. Prints the producers found in the log.
fn check_one_producer_id(broker: &Broker, s: &HashMap<String, i64>, topic: &str) {
    let Broker::Kafka(kafka) = broker else {
        return;
    };
    // Batches per (producer id, epoch) in the segments of the topic's three partitions.
    let mut producers: BTreeMap<(i64, i64), usize> = BTreeMap::new();
    for p in 0..3 {
        for b in kafka.stored_batches(topic, p) {
            *producers
                .entry((b.producer_id, b.producer_epoch))
                .or_default() += 1;
        }
    }
    eprintln!(
        "kafka: batches of {topic} per (producer id, epoch): {producers:?}; summary producer id {}, epoch {}, epoch bumps {}",
        s["producer_id"], s["epoch"], s["epoch_bumps"]
    );
    assert_eq!(
        s["epoch"], s["epoch_bumps"],
        "epoch {} after {} epoch bumps: a new producer id was needed; summary {s:?}",
        s["epoch"], s["epoch_bumps"]
    );
    for &(id, epoch) in producers.keys() {
        assert_eq!(
            id, s["producer_id"],
            "a batch of producer id {id} (epoch {epoch}) in the log, the summary says {}: {producers:?}",
            s["producer_id"]
        );
        assert!(
            epoch <= s["epoch"],
            "a batch of epoch {epoch} in the log, the summary says {}",
            s["epoch"]
        );
    }
}

/// Collects a child's stderr on a thread of its own, so the test can read what the tool has
/// said so far while it runs.
fn collect_stderr(child: &mut Child) -> Stderr {
    let collected = Arc::new(Mutex::new(Vec::new()));
    let mut stderr = child.stderr.take().expect("piped stderr");
    let sink = Arc::clone(&collected);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match std::io::Read::read(&mut stderr, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
            }
        }
    });
    Stderr { collected, reader }
}

/// The tool's stderr as it is read, by a thread of its own.
struct Stderr {
    collected: Arc<Mutex<Vec<u8>>>,
    reader: std::thread::JoinHandle<()>,
}

impl Stderr {
    /// What it has said so far (the tool still running).
    fn so_far(&self) -> String {
        String::from_utf8_lossy(&self.collected.lock().unwrap()).into_owned()
    }

    /// Everything it said, once it has exited: the reader is joined first, or its last
    /// lines could still be in the pipe (a CI run read an empty stderr so).
    fn all(self) -> String {
        let Stderr { collected, reader } = self;
        let _ = reader.join();
        String::from_utf8_lossy(&collected.lock().unwrap()).into_owned()
    }
}

/// The record at `partition`/`offset` of a read-back log.
fn record_at(log: &[Vec<tests::ReadRecord>], partition: i32, offset: i64) -> &tests::ReadRecord {
    log.get(partition as usize)
        .and_then(|p| p.iter().find(|r| r.offset == offset))
        .unwrap_or_else(|| panic!("nothing at partition {partition} offset {offset}"))
}
