//! The gateway firmware (`examples/gateway`, Cortex-M4 on QEMU's mps2-an386 with a LAN9118)
//! against a real tansu broker on the host, read back by an independent consumer (librdkafka):
//!
//! - `gateway_records_arrive_exactly_once`: every reading the firmware produces lands in the
//!   log exactly once, each sensor's readings in one partition and in order, and the firmware
//!   reports every one persisted (exit status 0, summary line).
//! - `gateway_survives_connection_cuts`: the same through a proxy that cuts every connection
//!   a few times while records flow; the firmware reconnects, retries idempotently and still
//!   delivers each reading exactly once, in order.
//!
//! The firmware reaches the host's loopback at 10.0.2.2 (QEMU user networking). tansu
//! advertises a loopback address, which the firmware maps to 10.0.2.2 and the host-side
//! consumer can use as it is.
//!
//! QEMU and defmt-print are installed when missing (see `tests::qemu`); the firmware is built
//! once per run.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tests::qemu::{self, GatewayRun};
use tests::{ChaosProxy, ProxyMode, ReadRecord, Tansu, free_port, read_back};

const TOPIC: &str = "gateway-readings";
const PARTITIONS: i32 = 4;
/// Sensors the firmware simulates (`examples/gateway/src/readings.rs`).
const SENSORS: u64 = 8;
/// Longest a firmware run may take before QEMU is killed (a run takes a few seconds).
const RUN_TIMEOUT: Duration = Duration::from_secs(45);

/// Firmware arguments for `records` readings to the broker (or proxy) on `port`, with a
/// fresh TCP seed so local ports differ between runs.
fn gateway_args(port: u16, records: u64) -> Vec<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let seed: u64 = rand::random();
    vec![
        format!("port={port}"),
        format!("records={records}"),
        format!("topic={TOPIC}"),
        "deadline_ms=30000".to_string(),
        format!("seed={seed}"),
        format!("epoch_ms={}", now.as_millis()),
    ]
}

/// The `key=value` fields of the firmware's summary line.
fn summary(run: &GatewayRun) -> HashMap<String, u64> {
    let line = run.find("summary ").unwrap_or_else(|| {
        panic!(
            "no summary line in the firmware's log: {:#?}",
            run.log_lines
        )
    });
    line.split_whitespace()
        .filter_map(|field| {
            let (key, value) = field.split_once('=')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Asserts the run ended on its own with status 0 and a summary of `records` persisted.
fn assert_all_persisted(run: &GatewayRun, records: u64) {
    assert!(
        !run.timed_out,
        "the firmware did not finish within {RUN_TIMEOUT:?}"
    );
    assert_eq!(
        run.code(),
        Some(0),
        "firmware exit status {} (0: all persisted, 2: some not, 1: setup error, 101: panic)",
        run.status
    );
    let s = summary(run);
    for (key, want) in [
        ("records", records),
        ("persisted", records),
        ("not_persisted", 0),
        ("possibly_persisted", 0),
        ("undecided", 0),
    ] {
        assert_eq!(s.get(key), Some(&want), "summary field {key}: {s:?}");
    }
}

/// The sequence number in a reading's value (`{"sensor":"sensor-3","seq":11,...}`).
fn seq_of(record: &ReadRecord) -> u64 {
    let value = record.value.as_deref().expect("a reading has a value");
    let text = std::str::from_utf8(value).expect("UTF-8 value");
    let digits: String = text
        .split_once("\"seq\":")
        .unwrap_or_else(|| panic!("no seq in {text}"))
        .1
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("bad seq in {text}"))
}

/// Reads the topic back and checks that readings `0..records` are each in the log exactly
/// once, keyed by their sensor, with each sensor's readings in one partition and in
/// production order.
fn assert_exactly_once_in_order(bootstrap: &str, records: u64) {
    let partitions = read_back(
        bootstrap,
        TOPIC,
        PARTITIONS,
        records as usize,
        Duration::from_secs(30),
    );
    let mut seen = vec![0u32; records as usize];
    // Sensor -> (partition, last seq seen).
    let mut sensors: HashMap<Vec<u8>, (usize, u64)> = HashMap::new();
    let mut total = 0usize;
    for (partition, log) in partitions.iter().enumerate() {
        for record in log {
            total += 1;
            let seq = seq_of(record);
            assert!(
                seq < records,
                "unexpected reading {seq} in partition {partition}"
            );
            seen[seq as usize] += 1;
            let key = record.key.clone().expect("a reading has a key");
            let sensor = format!("sensor-{}", seq % SENSORS);
            assert_eq!(
                key,
                sensor.as_bytes(),
                "reading {seq} has key {}",
                String::from_utf8_lossy(&key)
            );
            let value = String::from_utf8_lossy(record.value.as_deref().unwrap_or_default());
            assert!(
                value.starts_with(&format!("{{\"sensor\":\"{sensor}\",\"seq\":{seq},")),
                "reading {seq} has value {value}"
            );
            match sensors.get_mut(&key) {
                None => {
                    sensors.insert(key, (partition, seq));
                }
                Some((p, last)) => {
                    assert_eq!(
                        *p, partition,
                        "{sensor} is in partitions {p} and {partition}"
                    );
                    assert!(
                        seq > *last,
                        "{sensor}: reading {seq} after reading {last} in partition {partition} \
                         (duplicate or out of order)"
                    );
                    *last = seq;
                }
            }
        }
    }
    let missing: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] == 0).collect();
    let duplicated: Vec<usize> = (0..seen.len()).filter(|&i| seen[i] > 1).collect();
    assert!(
        missing.is_empty(),
        "{} readings missing from the log, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        duplicated.is_empty(),
        "{} readings in the log more than once, first {:?}",
        duplicated.len(),
        &duplicated[..duplicated.len().min(10)]
    );
    assert_eq!(total, records as usize, "records in the log");
    assert_eq!(sensors.len() as u64, SENSORS.min(records), "sensors seen");
}

#[test]
fn gateway_records_arrive_exactly_once() {
    const RECORDS: u64 = 5_000;
    let elf = qemu::prepare();
    let tansu = Tansu::start();
    tansu.create_topic(TOPIC, PARTITIONS);

    let run = qemu::run_gateway(
        &elf,
        &gateway_args(tansu.addr().port(), RECORDS),
        RUN_TIMEOUT,
    );
    assert_all_persisted(&run, RECORDS);
    assert_exactly_once_in_order(&tansu.bootstrap(), RECORDS);
}

#[test]
fn gateway_survives_connection_cuts() {
    const RECORDS: u64 = 20_000;
    /// Cut every proxied connection when this many produce requests went through, then
    /// again after each further `CUT_SPACING` (all well before the run's last request).
    /// (A run takes about 750 produce requests.)
    const FIRST_CUT: u64 = 20;
    const CUT_SPACING: u64 = 150;
    const CUTS: u64 = 4;

    let elf = qemu::prepare();
    // Every connection, bootstrap included, goes through the proxy: tansu advertises it.
    let tansu_port = free_port();
    let seed: u64 = rand::random();
    eprintln!("proxy seed {seed}");
    let proxy = ChaosProxy::start(
        SocketAddr::from(([127, 0, 0, 1], tansu_port)),
        ProxyMode::Pass,
        seed,
    );
    let tansu = Tansu::start_on(tansu_port, proxy.port());
    tansu.create_topic(TOPIC, PARTITIONS);

    let done = AtomicBool::new(false);
    let cuts = AtomicU64::new(0);
    let run = thread::scope(|scope| {
        scope.spawn(|| {
            let mut next = FIRST_CUT;
            while !done.load(Ordering::Relaxed) && cuts.load(Ordering::Relaxed) < CUTS {
                let produced = proxy.stats().produce_requests;
                if produced >= next {
                    proxy.cut_all();
                    let n = cuts.fetch_add(1, Ordering::Relaxed) + 1;
                    eprintln!("cut {n}: every connection closed after {produced} produce requests");
                    next = produced + CUT_SPACING;
                }
                thread::sleep(Duration::from_millis(1));
            }
        });
        let started = Instant::now();
        let run = qemu::run_gateway(&elf, &gateway_args(proxy.port(), RECORDS), RUN_TIMEOUT);
        done.store(true, Ordering::Relaxed);
        eprintln!("firmware ran {:?}", started.elapsed());
        run
    });
    let stats = proxy.stats();
    eprintln!("proxy: {stats:?}, cuts {}", cuts.load(Ordering::Relaxed));
    assert!(
        cuts.load(Ordering::Relaxed) >= 1,
        "no cut happened while records flowed ({} produce requests in all)",
        stats.produce_requests
    );
    assert!(
        stats.connections > 1,
        "the firmware never reconnected: {stats:?}"
    );
    assert_all_persisted(&run, RECORDS);
    assert_exactly_once_in_order(&tansu.bootstrap(), RECORDS);
}
