//! `cargo xtask demo`: two producers into a three-node Apache Kafka cluster on loopback
//! (KRaft, replication factor 3, `min.insync.replicas=2`), every node behind a proxy that
//! cuts connections (before, inside and after requests and responses):
//!
//! 1. the `produce` tool with 100,000 generated records, while the node leading most of the
//!    topic's partitions is killed (SIGKILL) and later started again;
//! 2. the gateway firmware (`examples/gateway`) booted in QEMU, with 10,000 sensor readings
//!    into a second topic; its decoded defmt log is shown as it arrives.
//!
//! After each, its topic is read back by an independent consumer and checked with the same
//! code; the exit status is non-zero unless both parts pass. `DEMO_BROKER=tansu` runs both
//! parts against one tansu broker instead (no node is killed).
//!
//! Usage: `demo PATH_TO_PRODUCE_BINARY`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tests::kafka::Kafka;
use tests::qemu::{self, GatewayRun};
use tests::{ChaosProxy, ProxyMode, ProxyStats, ReadRecord, Tansu, free_port, read_back};

/// The `produce` tool's topic, partitions and records.
const TOPIC: &str = "gateway-readings";
const PARTITIONS: i32 = 3;
const RECORDS: usize = 100_000;

/// The firmware's topic; it tracks at most 4 partitions (`PARTITIONS` in its `main.rs`).
const FIRMWARE_TOPIC: &str = "gateway-firmware";
const FIRMWARE_PARTITIONS: i32 = 4;
const FIRMWARE_RECORDS: usize = 10_000;
/// Sensors the firmware simulates (`examples/gateway/src/readings.rs`): reading `seq` is
/// keyed `sensor-{seq % SENSORS}`.
const SENSORS: usize = 8;
/// Longest the firmware may run before QEMU is killed (a run takes a few seconds).
const FIRMWARE_TIMEOUT: Duration = Duration::from_secs(120);

/// What the proxy does while a producer runs. Small batches make many requests, so the
/// proxy has many places to cut.
const CHAOS: ProxyMode = ProxyMode::Chaos {
    cut_probability: 0.05,
};

/// Kafka nodes.
const NODES: usize = 3;
/// When, after the `produce` tool starts, the busiest leader is killed, and how long it
/// stays down.
const KILL_AFTER: Duration = Duration::from_millis(1500);
const DOWN_FOR: Duration = Duration::from_secs(5);

/// The broker under the demo, each of its nodes behind a chaos proxy that it advertises, so
/// every connection a producer makes goes through one.
struct Cluster {
    proxies: Vec<ChaosProxy>,
    broker: Running,
}

enum Running {
    Kafka(Kafka),
    Tansu(Tansu),
}

impl Cluster {
    /// `DEMO_BROKER=tansu`: one tansu broker; otherwise a three-node Kafka cluster.
    fn start(seed: u64) -> Result<Cluster, String> {
        let tansu = match std::env::var("DEMO_BROKER").as_deref() {
            Ok("tansu") => true,
            Ok("kafka") | Err(_) => false,
            Ok(other) => return Err(format!("DEMO_BROKER={other}: use kafka or tansu")),
        };
        let nodes = if tansu { 1 } else { NODES };
        let ports: Vec<u16> = (0..nodes).map(|_| free_port()).collect();
        let proxies: Vec<ChaosProxy> = ports
            .iter()
            .enumerate()
            .map(|(i, &port)| {
                ChaosProxy::start(
                    ([127, 0, 0, 1], port).into(),
                    ProxyMode::Pass,
                    seed.wrapping_add(i as u64),
                )
            })
            .collect();
        let broker = if tansu {
            Running::Tansu(Tansu::start_on(ports[0], proxies[0].port()))
        } else {
            Running::Kafka(
                Kafka::builder(nodes)
                    .client_ports(ports.clone())
                    .advertised(proxies.iter().map(ChaosProxy::address).collect())
                    .start(),
            )
        };
        let cluster = Cluster { proxies, broker };
        match &cluster.broker {
            Running::Tansu(_) => println!(
                "tansu on 127.0.0.1:{}, reached through a chaos proxy on {} (seed {seed})",
                ports[0],
                cluster.proxies[0].address()
            ),
            Running::Kafka(_) => println!(
                "Apache Kafka {} (KRaft), {nodes} nodes on 127.0.0.1:{}, each reached through a chaos proxy ({}; seed {seed})",
                tests::kafka::version(),
                ports
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                cluster.bootstrap()
            ),
        }
        Ok(cluster)
    }

    fn is_kafka(&self) -> bool {
        matches!(self.broker, Running::Kafka(_))
    }

    /// Creates `name`: on Kafka replicated on every node with `min.insync.replicas=2`.
    fn create_topic(&self, name: &str, partitions: i32) {
        match &self.broker {
            Running::Tansu(t) => t.create_topic(name, partitions),
            Running::Kafka(k) => k.create_topic_with(
                name,
                partitions,
                NODES as i32,
                &[("min.insync.replicas", "2")],
            ),
        }
    }

    /// The proxies' addresses, as a producer's bootstrap list.
    fn bootstrap(&self) -> String {
        self.proxies
            .iter()
            .map(ChaosProxy::address)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn set_mode(&self, mode: ProxyMode) {
        for p in &self.proxies {
            p.set_mode(mode);
        }
    }

    /// What the proxies did so far, summed.
    fn stats(&self) -> ProxyStats {
        self.proxies.iter().fold(ProxyStats::default(), |a, p| {
            let s = p.stats();
            ProxyStats {
                connections: a.connections + s.connections,
                requests: a.requests + s.requests,
                produce_requests: a.produce_requests + s.produce_requests,
                cut_before_request: a.cut_before_request + s.cut_before_request,
                cut_mid_request: a.cut_mid_request + s.cut_mid_request,
                cut_after_request: a.cut_after_request + s.cut_after_request,
                cut_mid_response: a.cut_mid_response + s.cut_mid_response,
                responses_held: a.responses_held + s.responses_held,
                cut_bytes: a.cut_bytes + s.cut_bytes,
                cut_bytes_in_hello: a.cut_bytes_in_hello + s.cut_bytes_in_hello,
                cut_bytes_in_records: a.cut_bytes_in_records + s.cut_bytes_in_records,
            }
        })
    }

    /// Where the independent consumer bootstraps (through the proxies, which pass
    /// everything while it reads).
    fn read_bootstrap(&self) -> String {
        self.bootstrap()
    }

    /// Waits until every partition of `topic` has all its replicas in sync again.
    fn settle(&self, topic: &str) {
        if let Running::Kafka(k) = &self.broker
            && !k.wait_in_sync(topic, Duration::from_secs(60))
        {
            println!("(replicas of {topic} not back in sync after 60 s)");
        }
    }
}

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
    // Installs QEMU and defmt-print if missing and builds the firmware, before the demo's
    // own output starts.
    let elf = qemu::prepare();

    let cluster = Cluster::start(seed)?;
    cluster.create_topic(TOPIC, PARTITIONS);
    cluster.create_topic(FIRMWARE_TOPIC, FIRMWARE_PARTITIONS);
    println!("topic {TOPIC} with {PARTITIONS} partitions");

    let tool = produce_tool(produce, &cluster)?;
    println!();
    let firmware = gateway_firmware(&elf, &cluster, seed)?;
    if !(tool && firmware) {
        println!();
        println!(
            "FAILED: {}",
            match (tool, firmware) {
                (false, false) => "both parts",
                (false, true) => "the produce tool's part",
                _ => "the gateway firmware's part",
            }
        );
    }
    Ok(tool && firmware)
}

/// Part 1: the `produce` tool sends [`RECORDS`] readings to [`TOPIC`] through the proxy;
/// returns whether the checks pass.
fn produce_tool(produce: &str, cluster: &Cluster) -> Result<bool, String> {
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

    let before = cluster.stats();
    cluster.set_mode(CHAOS);
    println!(
        "$ produce --progress --key-separator '|' --batch-bytes 8192 --report … < {RECORDS} readings"
    );
    let stdin = fs::File::open(&input).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let (output, restarted) = std::thread::scope(|scope| {
        // On Kafka, a node goes down while the tool runs.
        let breaker = match &cluster.broker {
            Running::Kafka(k) => Some(scope.spawn(|| kill_and_restart(k))),
            Running::Tansu(_) => None,
        };
        let output = Command::new(produce)
            .args([
                "--bootstrap",
                &cluster.bootstrap(),
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
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .output();
        let restarted = breaker.map(|b| {
            b.join()
                .map_err(|_| "the node could not be restarted (see above)".to_string())
        });
        (output, restarted)
    });
    let output = output.map_err(|e| format!("cannot run {produce}: {e}"))?;
    let elapsed = started.elapsed();
    let summary = String::from_utf8_lossy(&output.stdout);
    println!("{}", summary.trim());
    cluster.set_mode(ProxyMode::Pass);
    let stats = since(cluster.stats(), before);
    cluster.settle(TOPIC);

    // What the producer said about each record: its outcome, and the offset it reported.
    let report = fs::read_to_string(&report).map_err(|e| e.to_string())?;
    let mut said: Vec<&str> = vec!["missing"; RECORDS];
    let mut offsets: Vec<Option<(i32, i64)>> = vec![None; RECORDS];
    for line in report.lines() {
        let bad = || format!("bad report line {line:?}");
        let mut f = line.split(' ');
        let (Some(i), Some(outcome)) = (f.next(), f.next()) else {
            return Err(bad());
        };
        let i: usize = i.parse().map_err(|_| bad())?;
        *said.get_mut(i).ok_or_else(bad)? = outcome;
        if let (Some(Ok(p)), Some(Ok(o))) = (f.next().map(str::parse), f.next().map(str::parse))
            && o >= 0
        {
            offsets[i] = Some((p, o));
        }
    }

    // What is in the log, read by a consumer no one here wrote.
    let log = read_back(
        &cluster.read_bootstrap(),
        TOPIC,
        PARTITIONS,
        RECORDS,
        Duration::from_secs(60),
    );
    let _ = fs::remove_dir_all(&dir);
    let findings = examine(
        &log,
        RECORDS,
        |r| {
            // The value starts with the record's number.
            let value = r.value.as_deref()?;
            std::str::from_utf8(value.get(..6)?).ok()?.parse().ok()
        },
        Order::PerPartition,
        &Outcomes::PerRecord(said.clone()),
    )?;

    // Every offset reported against where the record is. Kafka's are exact, retries after a
    // cut included; tansu's after a DUPLICATE_SEQUENCE_NUMBER answer are not (-1, or seen
    // one off), so there they are only counted.
    let number = |r: &ReadRecord| -> Option<usize> {
        std::str::from_utf8(r.value.as_deref()?.get(..6)?)
            .ok()?
            .parse()
            .ok()
    };
    let mut wrong_offsets = 0;
    for (p, records) in log.iter().enumerate() {
        for r in records {
            if let Some(i) = number(r).filter(|i| *i < RECORDS)
                && let Some(told) = offsets[i]
                && told != (p as i32, r.offset)
            {
                wrong_offsets += 1;
            }
        }
    }
    let unknown_offsets = (0..RECORDS)
        .filter(|&i| said[i] == "persisted" && offsets[i].is_none())
        .count();

    let mut rows = findings.rows("records sent", RECORDS);
    rows.push((
        "offsets reported: not where the record is".into(),
        wrong_offsets.to_string(),
    ));
    rows.push((
        "offsets reported: unknown (persisted)".into(),
        unknown_offsets.to_string(),
    ));
    rows.extend(proxy_rows(&stats));
    if let Some(restarted) = restarted {
        rows.push(("broker killed and restarted".into(), restarted?));
    }
    rows.push((
        "wall time of the run".into(),
        format!("{:.2} s", elapsed.as_secs_f64()),
    ));
    println!();
    print_table(&rows);

    let exact = !cluster.is_kafka() || (wrong_offsets == 0 && unknown_offsets == 0);
    let ok = findings.truthful() && exact;
    println!();
    println!(
        "{}",
        if ok {
            "every record is in the log at most once, in order, and every outcome reported is true"
        } else {
            "VIOLATION: see the table above"
        }
    );
    Ok(ok)
}

/// Part 2: the gateway firmware, booted in QEMU, sends [`FIRMWARE_RECORDS`] readings to
/// [`FIRMWARE_TOPIC`] through the same proxy (QEMU's user network reaches the host's loopback
/// at 10.0.2.2); its log is shown as it arrives. Returns whether the checks pass.
fn gateway_firmware(elf: &Path, cluster: &Cluster, seed: u64) -> Result<bool, String> {
    let epoch_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis();
    let args = vec![
        format!("port={}", cluster.proxies[0].port()),
        format!("records={FIRMWARE_RECORDS}"),
        format!("topic={FIRMWARE_TOPIC}"),
        "deadline_ms=30000".to_string(),
        // The TCP stack's seed (local ports): a different one each run.
        format!("seed={}", seed ^ epoch_ms as u64),
        format!("epoch_ms={epoch_ms}"),
    ];
    println!(
        "the gateway firmware in QEMU (Cortex-M4F, LAN9118, user network: the host is 10.0.2.2); topic {FIRMWARE_TOPIC} with {FIRMWARE_PARTITIONS} partitions"
    );
    println!(
        "$ qemu-system-arm -M mps2-an386 -nic user,model=lan9118 -kernel gateway … | defmt-print -e gateway"
    );
    println!("  (firmware arguments: {})", args.join(" "));
    println!();

    let before = cluster.stats();
    cluster.set_mode(CHAOS);
    let run = qemu::run_gateway_with(elf, &args, FIRMWARE_TIMEOUT, |line| {
        println!("gateway | {line}");
    });
    cluster.set_mode(ProxyMode::Pass);
    let stats = since(cluster.stats(), before);
    cluster.settle(FIRMWARE_TOPIC);

    let log = read_back(
        &cluster.read_bootstrap(),
        FIRMWARE_TOPIC,
        FIRMWARE_PARTITIONS,
        FIRMWARE_RECORDS,
        Duration::from_secs(60),
    );
    let summary = run.summary().unwrap_or_default();
    let field = |key: &str| summary.get(key).map(|v| *v as usize);
    let outcomes = Outcomes::Totals {
        persisted: field("persisted").unwrap_or(0),
        not_persisted: field("not_persisted").unwrap_or(0),
        possibly_persisted: field("possibly_persisted").unwrap_or(0),
        undecided: field("undecided").unwrap_or(FIRMWARE_RECORDS),
    };
    let findings = examine(
        &log,
        FIRMWARE_RECORDS,
        |r| {
            // Key `sensor-N`, value `{"sensor":"sensor-N","seq":SEQ,...}` with N = SEQ % 8.
            let value = std::str::from_utf8(r.value.as_deref()?).ok()?;
            let rest = value.split_once("\"seq\":")?.1;
            let end = rest.find(|c: char| !c.is_ascii_digit())?;
            let seq: usize = rest[..end].parse().ok()?;
            let sensor = format!("sensor-{}", seq % SENSORS);
            let ours = r.key.as_deref() == Some(sensor.as_bytes())
                && value.starts_with(&format!("{{\"sensor\":\"{sensor}\",\"seq\":{seq},"));
            ours.then_some(seq)
        },
        Order::PerKey,
        &outcomes,
    )?;

    // The firmware's own account must hold together: a summary for every record, each one
    // decided, and the exit status it implies (0 every record persisted, 2 some not).
    let code = run.code();
    let summary_records = field("records");
    let expected_code = if findings.persisted == FIRMWARE_RECORDS {
        0
    } else {
        2
    };
    let consistent = !run.timed_out
        && summary_records == Some(FIRMWARE_RECORDS)
        && field("undecided") == Some(0)
        && code == Some(expected_code);

    let mut rows = findings.rows("records sent by the firmware", FIRMWARE_RECORDS);
    rows.extend(proxy_rows(&stats));
    rows.push(("QEMU exit status".into(), exit_status(&run)));
    rows.push((
        "wall time of the run".into(),
        format!(
            "{:.2} s from boot to exit ({} from the first record to the last outcome)",
            run.elapsed.as_secs_f64(),
            field("elapsed_ms").map_or("?".into(), |ms| format!("{:.2} s", ms as f64 / 1000.0))
        ),
    ));
    println!();
    if summary_records.is_none() {
        println!("(no summary line in the firmware's log)");
    }
    print_table(&rows);

    let ok = findings.truthful() && consistent;
    println!();
    println!(
        "{}",
        if ok && findings.in_log == FIRMWARE_RECORDS {
            "every reading is in the log exactly once, in order per sensor, as the firmware reported"
        } else if ok {
            "every reading is in the log at most once, in order per sensor, and every outcome reported is true"
        } else {
            "VIOLATION: see the table above"
        }
    );
    Ok(ok)
}

/// Kills the node leading most of [`TOPIC`]'s partitions [`KILL_AFTER`] from now and starts
/// it again [`DOWN_FOR`] later; says what happened.
fn kill_and_restart(kafka: &Kafka) -> String {
    let started = Instant::now();
    std::thread::sleep(KILL_AFTER);
    let node = kafka.busiest_leader(TOPIC);
    let led = kafka
        .partitions(TOPIC)
        .iter()
        .filter(|p| p.leader == node)
        .count();
    kafka.kill(node);
    let killed = started.elapsed();
    std::thread::sleep(DOWN_FOR);
    kafka.start(node);
    format!(
        "node {node} (leading {led} of {PARTITIONS} partitions): SIGKILL at {:.1} s, serving again at {:.1} s",
        killed.as_secs_f64(),
        started.elapsed().as_secs_f64()
    )
}

/// How a producer reported its records' outcomes.
enum Outcomes<'a> {
    /// One per record, by its number: `persisted`, `not-persisted`, `possibly-persisted`, or
    /// `missing` (the `produce` tool's report).
    PerRecord(Vec<&'a str>),
    /// Totals only (the firmware's summary line).
    Totals {
        persisted: usize,
        not_persisted: usize,
        possibly_persisted: usize,
        undecided: usize,
    },
}

/// Whose production order the log must keep.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Each partition's (the `produce` tool numbers records in the order it sends them).
    PerPartition,
    /// Each key's within its partition (the firmware's sensors).
    PerKey,
}

/// What the log holds, against what the producer said about it.
struct Findings {
    order: Order,
    /// Distinct records in the log.
    in_log: usize,
    /// Copies beyond the first.
    duplicates: usize,
    /// Records reported persisted that are not in the log.
    gaps: usize,
    /// Records in a lower or equal place than one before them in their order.
    out_of_order: usize,
    persisted: usize,
    not_persisted: usize,
    possibly_persisted: usize,
    /// With totals only, records neither persisted nor not nor possibly.
    undecided: Option<usize>,
    /// Records reported not persisted that are in the log.
    false_not_persisted: usize,
    /// `gaps` and `false_not_persisted` are exact; with totals only they can be lower bounds.
    exact: bool,
}

impl Findings {
    /// Nothing is duplicated, out of order or reported wrongly.
    fn truthful(&self) -> bool {
        self.duplicates == 0
            && self.gaps == 0
            && self.out_of_order == 0
            && self.false_not_persisted == 0
    }

    /// The table's rows about the log and the outcomes.
    fn rows(&self, sent: &str, records: usize) -> Vec<(String, String)> {
        let bound = |n: usize| {
            if self.exact {
                n.to_string()
            } else {
                format!("at least {n}")
            }
        };
        let mut rows = vec![
            (sent.to_string(), records.to_string()),
            ("in the log (distinct)".into(), self.in_log.to_string()),
            ("duplicates in the log".into(), self.duplicates.to_string()),
            ("gaps (persisted but missing)".into(), bound(self.gaps)),
            (
                match self.order {
                    Order::PerPartition => "out of order (per partition)",
                    Order::PerKey => "out of order (per sensor key)",
                }
                .into(),
                self.out_of_order.to_string(),
            ),
            ("outcomes: persisted".into(), self.persisted.to_string()),
            (
                "outcomes: not persisted".into(),
                format!(
                    "{} (of which in the log: {})",
                    self.not_persisted,
                    bound(self.false_not_persisted)
                ),
            ),
            (
                "outcomes: possibly persisted".into(),
                self.possibly_persisted.to_string(),
            ),
        ];
        if let Some(undecided) = self.undecided {
            rows.push(("outcomes: undecided".into(), undecided.to_string()));
        }
        rows
    }
}

/// Checks the log (per partition, in log order) of a producer that sent `records` records,
/// numbered `0..records` in the order it sent them: `number` reads a record's number (None
/// for a record the demo did not write).
fn examine(
    log: &[Vec<ReadRecord>],
    records: usize,
    number: impl Fn(&ReadRecord) -> Option<usize>,
    order: Order,
    outcomes: &Outcomes,
) -> Result<Findings, String> {
    let mut copies: HashMap<usize, usize> = HashMap::new();
    let mut out_of_order = 0;
    for (partition, records_in_partition) in log.iter().enumerate() {
        // The last number seen per key (one for the whole partition when ordered by it).
        let mut last: HashMap<Option<&[u8]>, usize> = HashMap::new();
        for r in records_in_partition {
            let id = number(r)
                .filter(|id| *id < records)
                .ok_or_else(|| {
                    format!(
                        "a record in the log that the demo did not write (partition {partition}, offset {})",
                        r.offset
                    )
                })?;
            *copies.entry(id).or_default() += 1;
            let scope = match order {
                Order::PerPartition => None,
                Order::PerKey => Some(r.key.as_deref().unwrap_or_default()),
            };
            if last.insert(scope, id).is_some_and(|l| id <= l) {
                out_of_order += 1;
            }
        }
    }
    let in_log = copies.len();
    let duplicates = copies.values().map(|c| c - 1).sum();
    Ok(match outcomes {
        Outcomes::PerRecord(said) => {
            let count = |k: &str| said.iter().filter(|s| **s == k).count();
            let with = |k: &str, in_log: bool| {
                (0..records)
                    .filter(|i| said[*i] == k && copies.contains_key(i) == in_log)
                    .count()
            };
            Findings {
                order,
                in_log,
                duplicates,
                gaps: with("persisted", false),
                out_of_order,
                persisted: count("persisted"),
                not_persisted: count("not-persisted"),
                possibly_persisted: count("possibly-persisted"),
                undecided: None,
                false_not_persisted: with("not-persisted", true),
                exact: true,
            }
        }
        &Outcomes::Totals {
            persisted,
            not_persisted,
            possibly_persisted,
            undecided,
        } => {
            // Which records had which outcome is not known: count what must be so. Exact when
            // every record (or none) had the outcome.
            let missing = records - in_log;
            Findings {
                order,
                in_log,
                duplicates,
                gaps: missing.saturating_sub(records.saturating_sub(persisted)),
                out_of_order,
                persisted,
                not_persisted,
                possibly_persisted,
                undecided: Some(undecided),
                false_not_persisted: in_log.saturating_sub(records.saturating_sub(not_persisted)),
                exact: [persisted, not_persisted]
                    .iter()
                    .all(|n| *n == 0 || *n == records),
            }
        }
    })
}

/// The proxy's rows of a table.
fn proxy_rows(stats: &ProxyStats) -> Vec<(String, String)> {
    vec![
        (
            "connections cut by the proxy".into(),
            format!(
                "{} ({} before a request, {} inside one, {} after it, {} inside a response)",
                stats.cuts(),
                stats.cut_before_request,
                stats.cut_mid_request,
                stats.cut_after_request,
                stats.cut_mid_response
            ),
        ),
        (
            "requests through the proxy".into(),
            format!("{} ({} produce)", stats.requests, stats.produce_requests),
        ),
    ]
}

/// What the proxy did between `before` and `after`.
fn since(after: ProxyStats, before: ProxyStats) -> ProxyStats {
    ProxyStats {
        connections: after.connections - before.connections,
        requests: after.requests - before.requests,
        produce_requests: after.produce_requests - before.produce_requests,
        cut_before_request: after.cut_before_request - before.cut_before_request,
        cut_mid_request: after.cut_mid_request - before.cut_mid_request,
        cut_after_request: after.cut_after_request - before.cut_after_request,
        cut_mid_response: after.cut_mid_response - before.cut_mid_response,
        responses_held: after.responses_held - before.responses_held,
        cut_bytes: after.cut_bytes - before.cut_bytes,
        cut_bytes_in_hello: after.cut_bytes_in_hello - before.cut_bytes_in_hello,
        cut_bytes_in_records: after.cut_bytes_in_records - before.cut_bytes_in_records,
    }
}

/// QEMU's exit status, which is the firmware's, with its meaning.
fn exit_status(run: &GatewayRun) -> String {
    if run.timed_out {
        return format!("killed after {FIRMWARE_TIMEOUT:?} ({})", run.status);
    }
    match run.code() {
        Some(0) => "0 (every record persisted)".into(),
        Some(2) => "2 (some record not or possibly persisted)".into(),
        Some(1) => "1 (bad arguments or setup failure)".into(),
        Some(101) => "101 (panic or hard fault)".into(),
        _ => run.status.to_string(),
    }
}

/// Prints a Markdown table of `rows`.
fn print_table(rows: &[(String, String)]) {
    println!("| check | value |");
    println!("|---|---|");
    for (check, value) in rows {
        println!("| {check} | {value} |");
    }
}
