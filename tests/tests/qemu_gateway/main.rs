//! The gateway firmware (`examples/gateway`, Cortex-M4 on QEMU's mps2-an386 with a LAN9118)
//! against a real broker on the host, one Apache Kafka 4.x node and tansu, each test body run
//! against both (`_kafka` and `_tansu`), read back by an independent consumer (librdkafka):
//!
//! - `gateway_records_arrive_exactly_once`: every reading the firmware produces lands in the
//!   log exactly once, each sensor's readings in one partition and in order, and the firmware
//!   reports every one persisted (exit status 0, summary line).
//! - `gateway_survives_connection_cuts`: the same through a proxy that cuts every connection
//!   a few times while records flow; the firmware reconnects, retries idempotently and still
//!   delivers each reading exactly once, in order.
//! - `gateway_authenticates_with_scram_sha_512_kafka`: Kafka only, through its SASL_PLAINTEXT
//!   SCRAM-SHA-512 listener (user created by the fixture, 4096 iterations): the readings
//!   arrive exactly once as above; and with a wrong password the firmware stops at once,
//!   having dialled once, and exits with status 3 and the authentication error in its log.
//! - `gateway_produces_over_tls_with_scram_kafka` (`tls.rs`): Kafka only, through a SASL_SSL
//!   listener (SCRAM-SHA-512 inside TLS 1.3, an ECDSA P-256 certificate from a CA made in the
//!   test): the readings arrive exactly once; and given another CA the firmware stops at the
//!   bootstrap handshake and exits with status 4, nothing persisted.
//!
//! The firmware reaches the host's loopback at 10.0.2.2 (QEMU user networking, which connects
//! to the host's 127.0.0.1: where Kafka's `CLIENT` listener and tansu bind). Both brokers
//! advertise a loopback address, which the firmware maps to 10.0.2.2 and the host-side
//! consumer can use as it is.
//!
//! Record timestamps are the firmware's: `epoch_ms` (the host's wall clock at boot) plus its
//! uptime. They must be real, since Kafka deletes segments and expires producer state by
//! record timestamp: against Kafka the topic refuses timestamps more than a few minutes off
//! the broker's clock (`message.timestamp.{before,after}.max.ms`), and against both brokers
//! every record read back must carry a timestamp within the run's wall-clock window. They lag
//! the host's clock (by QEMU's boot, and by the SysTick interrupts the guest loses when QEMU
//! is starved); the tests print by how much.
//!
//! The firmware reports no offsets (only counts), so against Kafka the exactness of offsets
//! is checked on the log: each partition holds offsets `0..n` with no gap. Kafka's own view is
//! read from its segment files (`Kafka::stored_batches`): every batch carries the one
//! producer id the firmware had (a fence is a local epoch bump, which Kafka accepts; the
//! summary's `producer_ids` must be 1), sequences are contiguous within an epoch, and epochs
//! only rise, by at most the summary's `epoch_bumps`.
//!
//! QEMU and defmt-print are installed when missing (see `tests::qemu`); the firmware is built
//! once per run.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tests::kafka::{Kafka, Sasl, SaslMechanism, StoredBatch};
use tests::qemu::{self, GatewayRun};
use tests::{Broker, BrokerKind, ChaosProxy, ProxyMode, ReadRecord, free_port, read_back};

mod tls;

const TOPIC: &str = "gateway-readings";
const PARTITIONS: i32 = 4;
/// Sensors the firmware simulates (`examples/gateway/src/readings.rs`).
const SENSORS: u64 = 8;
/// Longest a firmware run may take before QEMU is killed (a run takes a few seconds). Its
/// deadlines (30 s) are on the guest's clock, which counts SysTick interrupts and loses some
/// when QEMU is starved: seen at 55-65 % of the host's pace beside Kafka's JVMs on two cores.
/// A run that goes to its deadlines still ends (with its summary) well within this.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);
/// How far from the broker's clock Kafka lets a record timestamp be (topic configs
/// `message.timestamp.before.max.ms` and `message.timestamp.after.max.ms`): a firmware that
/// sent timestamps from 1970 (no `epoch_ms`) has its records refused with INVALID_TIMESTAMP.
/// (Kafka's refusal carries an error message per record, so the answer to a full 2 KB batch
/// can outgrow the firmware's 4 KB response frame: such a run also shows lost connections and
/// PossiblyPersisted outcomes.)
const KAFKA_TIMESTAMP_SLACK: Duration = Duration::from_secs(300);
/// How far past the host's wall clock at QEMU's exit a record timestamp may be (the guest
/// clock counts SysTick interrupts, so under load it runs slow, never fast).
const TIMESTAMP_AHEAD: Duration = Duration::from_secs(1);

/// Milliseconds since the Unix epoch, now.
fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// Firmware arguments for `records` readings to the broker (or proxy) on `port`, with a
/// fresh TCP seed so local ports differ between runs, and the wall clock now as `epoch_ms`
/// (returned too: no record timestamp may be earlier). Boot right after.
fn gateway_args(port: u16, records: u64) -> (Vec<String>, u64) {
    let epoch_ms = wall_clock_ms();
    let seed: u64 = rand::random();
    let args = vec![
        format!("port={port}"),
        format!("records={records}"),
        format!("topic={TOPIC}"),
        "deadline_ms=30000".to_string(),
        format!("seed={seed}"),
        format!("epoch_ms={epoch_ms}"),
    ];
    (args, epoch_ms)
}

/// Creates the topic. On Kafka its configs refuse record timestamps more than
/// [`KAFKA_TIMESTAMP_SLACK`] off the broker's clock.
fn create_topic(broker: &Broker) {
    match broker {
        Broker::Kafka(k) => {
            let slack = KAFKA_TIMESTAMP_SLACK.as_millis().to_string();
            k.create_topic_with(
                TOPIC,
                PARTITIONS,
                1,
                &[
                    ("message.timestamp.type", "CreateTime"),
                    ("message.timestamp.before.max.ms", &slack),
                    ("message.timestamp.after.max.ms", &slack),
                ],
            );
            // The firmware maps only loopback addresses to 10.0.2.2; anything else Kafka
            // advertised would be dialled as it is, from inside the guest.
            let advertised = k.advertised(1);
            assert!(
                advertised.starts_with("127.0.0.1:"),
                "Kafka advertises {advertised}: the firmware cannot reach that"
            );
        }
        Broker::Tansu(_) => broker.create_topic(TOPIC, PARTITIONS),
    }
}

/// The `key=value` fields of the firmware's summary line.
fn summary(run: &GatewayRun) -> HashMap<String, u64> {
    run.summary().unwrap_or_else(|| {
        panic!(
            "no summary line in the firmware's log: {:#?}",
            run.log_lines
        )
    })
}

/// Asserts the run ended on its own with status 0 and a summary of `records` persisted,
/// and, against a broker that accepts a local epoch bump, with one producer id. Returns the
/// summary.
fn assert_all_persisted(run: &GatewayRun, records: u64, kind: BrokerKind) -> HashMap<String, u64> {
    assert!(
        !run.timed_out,
        "the firmware did not finish within {RUN_TIMEOUT:?}"
    );
    let s = summary(run);
    eprintln!(
        "{}: firmware ran {:?} (its own clock: {} ms): {} retries, {} epoch bumps, {} producer ids",
        kind.name(),
        run.elapsed,
        s.get("elapsed_ms").copied().unwrap_or_default(),
        s.get("retries").copied().unwrap_or_default(),
        s.get("epoch_bumps").copied().unwrap_or_default(),
        s.get("producer_ids").copied().unwrap_or_default(),
    );
    assert_eq!(
        run.code(),
        Some(0),
        "firmware exit status {} (0: all persisted, 2: some not, 1: setup error, 101: panic); \
         summary {s:?}",
        run.status
    );
    for (key, want) in [
        ("records", records),
        ("persisted", records),
        ("not_persisted", 0),
        ("possibly_persisted", 0),
        ("undecided", 0),
    ] {
        assert_eq!(s.get(key), Some(&want), "summary field {key}: {s:?}");
    }
    for key in ["retries", "epoch_bumps", "producer_ids"] {
        assert!(s.contains_key(key), "summary has no {key}: {s:?}");
    }
    if kind.accepts_epoch_bump() {
        assert_eq!(
            s["producer_ids"],
            1,
            "{} producer ids for {} epoch bumps; {} accepts a local bump: {s:?}",
            s["producer_ids"],
            s["epoch_bumps"],
            kind.name()
        );
    }
    assert!(
        run.log_lines
            .iter()
            .any(|l| l.contains("producer: connection") && l.contains("established")),
        "the firmware never connected: {:#?}",
        run.log_lines
    );
    s
}

/// The producer ids and epochs the firmware was granted (InitProducerId), from its log lines
/// `producer id ID epoch EPOCH`, in order.
fn granted_ids(run: &GatewayRun) -> Vec<(i64, i64)> {
    run.log_lines
        .iter()
        .filter_map(|line| {
            let rest = line.split_once("producer id ")?.1;
            if line.contains("resuming producer id") {
                return None;
            }
            let (id, epoch) = rest.split_once(" epoch ")?;
            Some((id.trim().parse().ok()?, epoch.trim().parse().ok()?))
        })
        .collect()
}

/// The sequence number in a reading's value (`{"sensor":"sensor-3","seq":11,...}`).
fn seq_of(value: &[u8]) -> u64 {
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

fn seq_of_record(record: &ReadRecord) -> u64 {
    seq_of(record.value.as_deref().expect("a reading has a value"))
}

/// Checks that the topic as read back (`partitions`, from [`read_back`]) holds readings
/// `0..records` each exactly once, keyed by their sensor, with each sensor's readings in one
/// partition and in production order. With `dense_offsets`, each partition's offsets must be
/// `0..n`.
fn assert_exactly_once_in_order(partitions: &[Vec<ReadRecord>], records: u64, dense_offsets: bool) {
    eprintln!(
        "read back {} records (per partition: {:?})",
        partitions.iter().map(Vec::len).sum::<usize>(),
        partitions.iter().map(Vec::len).collect::<Vec<_>>()
    );
    let mut seen = vec![0u32; records as usize];
    // Sensor -> (partition, last seq seen).
    let mut sensors: HashMap<Vec<u8>, (usize, u64)> = HashMap::new();
    let mut total = 0usize;
    for (partition, log) in partitions.iter().enumerate() {
        for (index, record) in log.iter().enumerate() {
            total += 1;
            let seq = seq_of_record(record);
            assert!(
                seq < records,
                "unexpected reading {seq} in partition {partition}"
            );
            if dense_offsets {
                assert_eq!(
                    record.offset, index as i64,
                    "partition {partition}: reading {seq} is record {index} of the log but at \
                     offset {}",
                    record.offset
                );
            }
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

/// Checks every record's timestamp (by reading number, in `partitions` as read back, where
/// [`assert_exactly_once_in_order`] found readings `0..records` each once) is a real
/// wall-clock time: a creation time no earlier than `epoch_ms` (the host's clock just before
/// boot) and no later than `ended_ms` (at QEMU's exit) plus [`TIMESTAMP_AHEAD`], rising with
/// the reading number within each sensor. Prints how far behind the host's clock the guest's
/// ran.
fn assert_real_timestamps(
    partitions: &[Vec<ReadRecord>],
    run: &GatewayRun,
    records: u64,
    epoch_ms: u64,
    ended_ms: u64,
) {
    // Reading number -> its creation time (`None` if it has none).
    let mut stamps: Vec<Option<i64>> = vec![None; records as usize];
    for record in partitions.iter().flatten() {
        stamps[seq_of_record(record) as usize] = record.timestamp;
    }
    let latest = ended_ms + TIMESTAMP_AHEAD.as_millis() as u64;
    let mut last_by_sensor = [0i64; SENSORS as usize];
    let (mut lowest, mut highest) = (i64::MAX, i64::MIN);
    for (seq, stamp) in stamps.iter().enumerate() {
        let Some(ms) = *stamp else {
            panic!("reading {seq}: no creation time (a log-append time, or none)");
        };
        assert!(
            ms >= epoch_ms as i64 && ms <= latest as i64,
            "reading {seq}: timestamp {ms} outside the run's wall clock, {epoch_ms}..={latest}"
        );
        let sensor = seq % SENSORS as usize;
        assert!(
            ms >= last_by_sensor[sensor],
            "reading {seq}: timestamp {ms} before the last reading of its sensor ({})",
            last_by_sensor[sensor]
        );
        last_by_sensor[sensor] = ms;
        lowest = lowest.min(ms);
        highest = highest.max(ms);
    }
    eprintln!(
        "timestamps: first {} ms after boot, last {} ms before QEMU's exit (the host's clock \
         ran {} ms from boot to exit)",
        lowest - epoch_ms as i64,
        ended_ms as i64 - highest,
        ended_ms - epoch_ms
    );
    // How the guest's clock kept up: the firmware logs `progress sent=N` right after sending
    // reading N - 1, so the line's arrival is (about) when that reading was stamped.
    let stamped = |sent: u64| {
        let i = run.log_lines.iter().position(|l| {
            l.split_once("progress sent=")
                .is_some_and(|(_, rest)| rest.split_whitespace().next() == Some(&sent.to_string()))
        })?;
        let arrived = run.log_arrivals[i]
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_millis() as i64;
        stamps[sent as usize - 1].map(|ms| (arrived, ms))
    };
    if let (Some(first), Some(last)) = (stamped(1000.min(records)), stamped(records))
        && last.0 > first.0
    {
        eprintln!(
            "guest clock: reading {} stamped {} ms behind the host's clock, reading {} {} ms \
             behind; {} ms of timestamps in {} ms of host time ({:.0} %)",
            1000.min(records) - 1,
            first.0 - first.1,
            records - 1,
            last.0 - last.1,
            last.1 - first.1,
            last.0 - first.0,
            100.0 * (last.1 - first.1) as f64 / (last.0 - first.0) as f64
        );
    }
}

/// Checks Kafka's own record of the run, from its segment files: `records` records in all,
/// offsets without gaps, every batch from the one producer id the firmware was `granted`
/// (so the firmware's records are what reached this Kafka), sequences contiguous within an
/// epoch and starting at 0 in each new one, epochs from the granted one up by at most
/// `epoch_bumps`, batch timestamps within `epoch_ms..=ended_ms` (plus [`TIMESTAMP_AHEAD`]).
fn assert_kafka_log(
    kafka: &Kafka,
    records: u64,
    granted: (i64, i64),
    epoch_bumps: u64,
    epoch_ms: u64,
    ended_ms: u64,
) {
    let mut producer_ids: Vec<i64> = Vec::new();
    let (mut lowest_epoch, mut highest_epoch) = (i64::MAX, i64::MIN);
    let mut total = 0i64;
    let mut batches = 0usize;
    let latest = (ended_ms + TIMESTAMP_AHEAD.as_millis() as u64) as i64;
    for p in 0..PARTITIONS {
        let stored = kafka.stored_batches(TOPIC, p);
        let mut next_offset = 0i64;
        let mut previous: Option<&StoredBatch> = None;
        for b in &stored {
            assert_eq!(
                b.base_offset,
                next_offset,
                "partition {p}: batch {b:?} after offset {}",
                next_offset - 1
            );
            next_offset = b.last_offset + 1;
            total += b.last_offset - b.base_offset + 1;
            assert_eq!(
                b.last_sequence - b.base_sequence,
                b.last_offset - b.base_offset,
                "partition {p}: batch {b:?}"
            );
            if !producer_ids.contains(&b.producer_id) {
                producer_ids.push(b.producer_id);
            }
            lowest_epoch = lowest_epoch.min(b.producer_epoch);
            highest_epoch = highest_epoch.max(b.producer_epoch);
            assert!(
                !b.log_append_time
                    && b.max_timestamp >= epoch_ms as i64
                    && b.max_timestamp <= latest,
                "partition {p}: batch {b:?} has a timestamp outside {epoch_ms}..={latest}"
            );
            if let Some(prev) = previous
                && prev.producer_id == b.producer_id
            {
                if prev.producer_epoch == b.producer_epoch {
                    assert_eq!(
                        b.base_sequence,
                        prev.last_sequence + 1,
                        "partition {p}: batch {b:?} after {prev:?}"
                    );
                } else {
                    assert!(
                        b.producer_epoch > prev.producer_epoch && b.base_sequence == 0,
                        "partition {p}: batch {b:?} after {prev:?}"
                    );
                }
            }
            previous = Some(b);
        }
        batches += stored.len();
    }
    eprintln!(
        "kafka's log: {total} records in {batches} batches, producer ids {producer_ids:?}, \
         epochs {lowest_epoch}..={highest_epoch}"
    );
    assert_eq!(total, records as i64, "records in Kafka's segments");
    assert_eq!(
        producer_ids,
        [granted.0],
        "batches from producer ids {producer_ids:?}, the firmware was granted {granted:?} \
         (Kafka accepts a local epoch bump: one id is enough)"
    );
    assert!(
        lowest_epoch >= granted.1 && highest_epoch <= granted.1 + epoch_bumps as i64,
        "epochs {lowest_epoch}..={highest_epoch} in the log, the firmware was granted epoch {} \
         and bumped it {epoch_bumps} times",
        granted.1
    );
}

/// The checks after a run: all persisted, exactly once and in order in the log, real
/// timestamps, and against Kafka dense offsets and Kafka's own record of the batches.
fn verify(
    broker: &Broker,
    bootstrap: &str,
    run: &GatewayRun,
    records: u64,
    epoch_ms: u64,
    ended_ms: u64,
) {
    let kind = broker.kind();
    let s = assert_all_persisted(run, records, kind);
    let partitions = read_back(
        bootstrap,
        TOPIC,
        PARTITIONS,
        records as usize,
        Duration::from_secs(30),
    );
    assert_exactly_once_in_order(&partitions, records, kind.exact_offsets());
    assert_real_timestamps(&partitions, run, records, epoch_ms, ended_ms);
    if let Broker::Kafka(k) = broker {
        let granted = granted_ids(run);
        assert_eq!(
            granted.len(),
            1,
            "the firmware logged these producer id grants: {granted:?}"
        );
        assert_kafka_log(k, records, granted[0], s["epoch_bumps"], epoch_ms, ended_ms);
    }
}

#[test]
fn gateway_records_arrive_exactly_once_kafka() {
    gateway_records_arrive_exactly_once(BrokerKind::Kafka);
}

#[test]
fn gateway_records_arrive_exactly_once_tansu() {
    gateway_records_arrive_exactly_once(BrokerKind::Tansu);
}

fn gateway_records_arrive_exactly_once(kind: BrokerKind) {
    const RECORDS: u64 = 5_000;
    let elf = qemu::prepare();
    let broker = Broker::start(kind);
    create_topic(&broker);

    let (args, epoch_ms) = gateway_args(broker.addr().port(), RECORDS);
    let run = qemu::run_gateway(&elf, &args, RUN_TIMEOUT);
    let ended_ms = wall_clock_ms();
    verify(
        &broker,
        &broker.bootstrap(),
        &run,
        RECORDS,
        epoch_ms,
        ended_ms,
    );
}

#[test]
fn gateway_survives_connection_cuts_kafka() {
    gateway_survives_connection_cuts(BrokerKind::Kafka);
}

#[test]
fn gateway_survives_connection_cuts_tansu() {
    gateway_survives_connection_cuts(BrokerKind::Tansu);
}

fn gateway_survives_connection_cuts(kind: BrokerKind) {
    const RECORDS: u64 = 20_000;
    /// Cut every proxied connection when this many produce requests went through, then
    /// again after each further `CUT_SPACING` (all well before the run's last request).
    /// (A run takes about 1,500 produce requests against tansu, 1,850 against Kafka.)
    const FIRST_CUT: u64 = 20;
    const CUT_SPACING: u64 = 150;
    const CUTS: u64 = 4;

    let elf = qemu::prepare();
    // Every connection, bootstrap included, goes through the proxy: the broker advertises it.
    let broker_port = free_port();
    let seed: u64 = rand::random();
    eprintln!("{}: proxy seed {seed}", kind.name());
    let proxy = ChaosProxy::start(
        SocketAddr::from(([127, 0, 0, 1], broker_port)),
        ProxyMode::Pass,
        seed,
    );
    let broker = Broker::start_on(kind, broker_port, proxy.port());
    create_topic(&broker);

    let done = AtomicBool::new(false);
    let cuts = AtomicU64::new(0);
    let (run, epoch_ms) = thread::scope(|scope| {
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
        let (args, epoch_ms) = gateway_args(proxy.port(), RECORDS);
        let run = qemu::run_gateway(&elf, &args, RUN_TIMEOUT);
        done.store(true, Ordering::Relaxed);
        eprintln!("firmware ran {:?}", started.elapsed());
        (run, epoch_ms)
    });
    let ended_ms = wall_clock_ms();
    let stats = proxy.stats();
    eprintln!(
        "{}: proxy: {stats:?}, cuts {}",
        kind.name(),
        cuts.load(Ordering::Relaxed)
    );
    assert!(
        cuts.load(Ordering::Relaxed) >= 1,
        "no cut happened while records flowed ({} produce requests in all)",
        stats.produce_requests
    );
    assert!(
        stats.connections > 1,
        "the firmware never reconnected: {stats:?}"
    );
    verify(
        &broker,
        &broker.bootstrap(),
        &run,
        RECORDS,
        epoch_ms,
        ended_ms,
    );
}

/// The SCRAM user the fixture creates for the firmware.
const SCRAM_USER: &str = "gateway";
const SCRAM_PASSWORD: &str = "gateway-secret";

/// The firmware's SASL arguments: SCRAM-SHA-512 as [`SCRAM_USER`] with `password`, and a
/// fresh random seed for its nonces' RNG (the board has no TRNG; a seed reused across boots
/// would repeat the nonces).
fn scram_args(password: &str) -> Vec<String> {
    let seed: [u8; 32] = rand::random();
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        "sasl=scram-sha-512".to_string(),
        format!("username={SCRAM_USER}"),
        format!("password={password}"),
        format!("entropy_seed={hex}"),
    ]
}

/// One test, to start Kafka once: a wrong password first (quick), then the readings.
#[test]
fn gateway_authenticates_with_scram_sha_512_kafka() {
    const RECORDS: u64 = 2_000;
    let elf = qemu::prepare();
    let sasl = Sasl::new().user(SaslMechanism::ScramSha512, SCRAM_USER, SCRAM_PASSWORD);
    let broker = Broker::Kafka(Kafka::builder(1).sasl(sasl).start());
    let Broker::Kafka(kafka) = &broker else {
        unreachable!()
    };
    create_topic(&broker);

    // A wrong password, through a counting proxy in front of the SCRAM listener: Kafka
    // refuses the proof (error 58); the firmware stops, dials no more, and says so.
    let listener = kafka.sasl_addr(1, SaslMechanism::ScramSha512);
    let proxy = ChaosProxy::start(listener, ProxyMode::Pass, rand::random());
    let (mut args, _) = gateway_args(proxy.port(), 100);
    args.extend(scram_args("not-the-password"));
    let run = qemu::run_gateway(&elf, &args, RUN_TIMEOUT);
    assert!(!run.timed_out, "a refused firmware went on until killed");
    assert_eq!(
        run.code(),
        Some(3),
        "exit status {} (3: authentication failed): {:#?}",
        run.status,
        run.log_lines
    );
    let refused = |needle: &str| run.log_lines.iter().any(|l| l.contains(needle));
    assert!(
        refused("authentication failed, exiting with status 3")
            && refused("AuthenticationFailed { error_code: 58 }"),
        "no authentication error in the log: {:#?}",
        run.log_lines
    );
    assert!(
        !run.log_lines.iter().any(|l| l.contains("not-the-password")),
        "the password is in the log"
    );
    let s = summary(&run);
    assert_eq!(
        (s.get("persisted"), s.get("not_persisted")),
        (Some(&0), Some(&100)),
        "{s:?}"
    );
    assert_eq!(
        proxy.stats().connections,
        1,
        "the firmware dialled again after its credentials were refused"
    );
    eprintln!(
        "scram: a wrong password refused, the firmware exited 3 after {:?}",
        run.elapsed
    );

    // The right one: every reading lands exactly once, as over PLAINTEXT. The SCRAM
    // listener is the only one the firmware is told of, and Kafka's SASL listeners
    // advertise only themselves, so every request went over an authenticated connection.
    let (mut args, epoch_ms) = gateway_args(listener.port(), RECORDS);
    args.extend(scram_args(SCRAM_PASSWORD));
    let run = qemu::run_gateway(&elf, &args, RUN_TIMEOUT);
    let ended_ms = wall_clock_ms();
    assert!(
        run.log_lines
            .iter()
            .any(|l| l.contains("sasl: SCRAM-SHA-512 as user gateway")),
        "the firmware did not configure SCRAM: {:#?}",
        run.log_lines
    );
    assert!(
        !run.log_lines.iter().any(|l| l.contains(SCRAM_PASSWORD)),
        "the password is in the log"
    );
    verify(
        &broker,
        &broker.bootstrap(),
        &run,
        RECORDS,
        epoch_ms,
        ended_ms,
    );
}
