//! `cargo xtask demo`: 100,000 generated records through the `produce` tool into a tansu
//! broker on loopback, behind a proxy that cuts connections (before, inside and after requests
//! and responses), then the topic is read back by an independent consumer and checked.
//!
//! Usage: `demo PATH_TO_PRODUCE_BINARY`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use tests::{ChaosProxy, ProxyMode, Tansu, free_port, read_back};

const TOPIC: &str = "gateway-readings";
const PARTITIONS: i32 = 3;
const RECORDS: usize = 100_000;

fn main() -> ExitCode {
    let Some(produce) = std::env::args().nth(1) else {
        eprintln!("usage: demo PATH_TO_PRODUCE_BINARY");
        return ExitCode::from(1);
    };
    match run(&produce) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(produce: &str) -> Result<bool, String> {
    let seed: u64 = std::env::var("DEMO_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let broker_port = free_port();
    let proxy = ChaosProxy::start(([127, 0, 0, 1], broker_port).into(), ProxyMode::Pass, seed);
    let tansu = Tansu::start_on(broker_port, proxy.port());
    tansu.create_topic(TOPIC, PARTITIONS);
    println!(
        "tansu on 127.0.0.1:{broker_port}, reached through a chaos proxy on {} (seed {seed}); topic {TOPIC} with {PARTITIONS} partitions",
        proxy.address()
    );

    let dir = std::env::temp_dir().join(format!("gateway-producer-demo-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let input = dir.join("readings.txt");
    let report = dir.join("report.txt");
    let mut lines = String::with_capacity(RECORDS * 48);
    for i in 0..RECORDS {
        // A sensor id as the key (keys pick partitions as the Java client would), a reading
        // with its sequence number as the value, so the log can be checked record by record.
        let _ = writeln!(
            lines,
            "sensor-{:02}|{i:06} t={} v={:.2}",
            i % 40,
            1_700_000_000 + i,
            20.0 + (i % 97) as f64 / 10.0
        );
    }
    fs::write(&input, lines).map_err(|e| e.to_string())?;

    // Small batches make many requests, so the proxy has many places to cut.
    proxy.set_mode(ProxyMode::Chaos {
        cut_probability: 0.05,
    });
    println!(
        "$ produce --progress --key-separator '|' --batch-bytes 8192 --report … < {RECORDS} readings"
    );
    let started = Instant::now();
    let output = Command::new(produce)
        .args([
            "--bootstrap",
            &proxy.address(),
            "--topic",
            TOPIC,
            "--key-separator",
            "|",
            "--batch-bytes",
            "8192",
            "--deadline-ms",
            "30000",
            "--progress",
            "--report",
        ])
        .arg(&report)
        .stdin(fs::File::open(&input).map_err(|e| e.to_string())?)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {produce}: {e}"))?;
    let elapsed = started.elapsed();
    let summary = String::from_utf8_lossy(&output.stdout);
    println!("{}", summary.trim());
    proxy.set_mode(ProxyMode::Pass);
    let stats = proxy.stats();

    // What the producer said about each record.
    let report = fs::read_to_string(&report).map_err(|e| e.to_string())?;
    let mut said: Vec<&str> = vec!["missing"; RECORDS];
    for line in report.lines() {
        let mut f = line.split(' ');
        let (Some(i), Some(outcome)) = (f.next(), f.next()) else {
            return Err(format!("bad report line {line:?}"));
        };
        let i: usize = i.parse().map_err(|_| format!("bad report line {line:?}"))?;
        said[i] = outcome;
    }

    // What is in the log, read by a consumer no one here wrote.
    let log = read_back(
        &tansu.bootstrap(),
        TOPIC,
        PARTITIONS,
        RECORDS,
        Duration::from_secs(60),
    );
    let mut copies: HashMap<usize, usize> = HashMap::new();
    let mut out_of_order = 0;
    for partition in &log {
        let mut last = None;
        for r in partition {
            let value = r.value.as_deref().unwrap_or_default();
            let id: usize = std::str::from_utf8(&value[..6.min(value.len())])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("a record in the log that the demo did not write")?;
            *copies.entry(id).or_default() += 1;
            if last.is_some_and(|l| id <= l) {
                out_of_order += 1;
            }
            last = Some(id);
        }
    }
    let in_log = copies.len();
    let duplicates: usize = copies.values().map(|c| c - 1).sum();
    let count = |k: &str| said.iter().filter(|s| **s == k).count();
    let (persisted, not_persisted, possibly) = (
        count("persisted"),
        count("not-persisted"),
        count("possibly-persisted"),
    );
    let gaps = (0..RECORDS)
        .filter(|i| said[*i] == "persisted" && !copies.contains_key(i))
        .count();
    let false_not_persisted = (0..RECORDS)
        .filter(|i| said[*i] == "not-persisted" && copies.contains_key(i))
        .count();

    println!();
    println!("| check | value |");
    println!("|---|---|");
    println!("| records sent | {RECORDS} |");
    println!("| in the log (distinct) | {in_log} |");
    println!("| duplicates in the log | {duplicates} |");
    println!("| gaps (persisted but missing) | {gaps} |");
    println!("| out of order (per partition) | {out_of_order} |");
    println!("| outcomes: persisted | {persisted} |");
    println!(
        "| outcomes: not persisted | {not_persisted} (of which in the log: {false_not_persisted}) |"
    );
    println!("| outcomes: possibly persisted | {possibly} |");
    println!(
        "| connections cut by the proxy | {} ({} before a request, {} inside one, {} after it, {} inside a response) |",
        stats.cuts(),
        stats.cut_before_request,
        stats.cut_mid_request,
        stats.cut_after_request,
        stats.cut_mid_response
    );
    println!(
        "| requests through the proxy | {} ({} produce) |",
        stats.requests, stats.produce_requests
    );
    println!("| wall time of the run | {:.2} s |", elapsed.as_secs_f64());
    let _ = fs::remove_dir_all(&dir);

    let truthful = duplicates == 0 && gaps == 0 && out_of_order == 0 && false_not_persisted == 0;
    println!();
    println!(
        "{}",
        if truthful {
            "every record is in the log at most once, in order, and every outcome reported is true"
        } else {
            "VIOLATION: see the table above"
        }
    );
    Ok(truthful)
}
