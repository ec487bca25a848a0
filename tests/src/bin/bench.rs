//! The benchmark driver behind `cargo xtask bench`: this project against librdkafka (the
//! `rdkafka` crate) in the same run, on loopback only.
//!
//! `bench latency|throughput|alloc|size` runs one part, prints its markdown section and writes
//! it to `target/bench/PART.md` (`cargo xtask bench` assembles BENCHMARKS.md from those, with
//! the `core` part it measures with criterion). `latency` also draws
//! `BENCHMARKS-latency.png` at the workspace root.
//!
//! - `latency`: deadline honouring. Three broker situations (refuses connections; accepts and
//!   never answers; answers, then stalls produce responses mid-stream), a 1 s deadline,
//!   `BENCH_TRIALS` trials each (default 20): the time from the deadline to the outcome
//!   reaching the caller, and the outcomes.
//! - `throughput`: `BENCH_RECORDS` (default 1,000,000) records of 100 bytes to a 3-partition
//!   topic on tansu and on librdkafka's mock cluster; each side runs in a child process of this
//!   binary (`bench child ours|rdkafka BOOTSTRAP TOPIC RECORDS`) so its CPU time and peak RSS
//!   are its own; the sides alternate, 3 runs each.
//! - `alloc`: heap allocations per record in transport-std after warm-up, counted by this
//!   binary's global allocator.
//! - `size`: `size_of` of the core's state.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Write as _;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use producer_core::capacity::Fixed;
use producer_core::client::Client;
use producer_core::state::{Outcome, PartitionLedger, Sequencer, UnknownOutcome};
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use tests::{ChaosProxy, ProxyMode, SilentListener, Tansu, free_port, refusing_address};
use transport_std::{Error, Producer, ProducerConfig, ProducerRecord};

// --- counting allocator --------------------------------------------------------------------

/// `System`, counting the allocations (alloc, alloc_zeroed, realloc) of threads that opted in.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);
/// Backtraces still to sample from counted allocations.
static SAMPLES_LEFT: AtomicU32 = AtomicU32::new(0);
/// Sampled allocation sites: (site, samples, bytes of those samples).
static SAMPLES: Mutex<Vec<(String, u64, u64)>> = Mutex::new(Vec::new());

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static SAMPLING: Cell<bool> = const { Cell::new(false) };
}

/// The first 64 counted allocations, then one in this many, are sampled (call site recorded).
const SAMPLE_EVERY: u64 = 97;

fn count(size: usize) {
    // The sampler's own allocations (symbolising a backtrace) are not counted.
    if !COUNTING.with(Cell::get) || SAMPLING.with(Cell::get) {
        return;
    }
    let n = ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    ALLOCATED_BYTES.fetch_add(size as u64, Ordering::Relaxed);
    if (n >= 64 && !n.is_multiple_of(SAMPLE_EVERY)) || SAMPLES_LEFT.load(Ordering::Relaxed) == 0 {
        return;
    }
    SAMPLING.with(|s| s.set(true));
    SAMPLES_LEFT.fetch_sub(1, Ordering::Relaxed);
    let trace = std::backtrace::Backtrace::force_capture().to_string();
    // Keep the frames of this workspace below the allocator: where the allocation was asked
    // for, innermost first, up to the benchmark's own code.
    let mut frames = Vec::new();
    let mut lines = trace.lines().peekable();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if line.contains("bench::alloc") || line.contains("bench::main") {
            break;
        }
        if ["transport_std::", "producer_core::"]
            .iter()
            .any(|m| line.contains(m))
        {
            let at = lines
                .peek()
                .map(|l| l.trim().trim_start_matches("at ./").to_string())
                .unwrap_or_default();
            let function = line.split_once(": ").map_or(line, |x| x.1);
            frames.push(format!("`{function}` ({at})"));
        }
    }
    let site = if frames.is_empty() {
        "outside this workspace's code".to_string()
    } else {
        frames.join(" <- ")
    };
    let mut samples = SAMPLES.lock().unwrap();
    match samples.iter_mut().find(|(s, _, _)| *s == site) {
        Some((_, hits, bytes)) => {
            *hits += 1;
            *bytes += size as u64;
        }
        None => samples.push((site, 1, size as u64)),
    }
    drop(samples);
    SAMPLING.with(|s| s.set(false));
}

// SAFETY: every call is passed on to `System` unchanged; counting touches only atomics and
// thread-locals (sampling allocates, guarded against re-entry).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// --- common --------------------------------------------------------------------------------

const VALUE_LEN: usize = 100;

fn out_dir() -> PathBuf {
    std::env::var_os("BENCH_OUT").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench")),
        PathBuf::from,
    )
}

fn workspace_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn write_section(part: &str, text: &str) {
    println!("{text}");
    let dir = out_dir();
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{part}.md"));
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("bench: cannot write {}: {e}", path.display());
    }
}

fn outcome_label(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Persisted { .. } => "Persisted".into(),
        other => format!("{other:?}"),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let part = args.first().map(String::as_str).unwrap_or("all");
    match part {
        "child" => return child(&args[1..]),
        "latency" => latency(),
        "throughput" => throughput(),
        "alloc" => alloc(),
        "size" => size(),
        "all" => {
            latency();
            throughput();
            alloc();
            size();
        }
        other => {
            eprintln!("usage: bench [latency|throughput|alloc|size|all]; unknown part `{other}`");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

// --- 1. deadline honouring -----------------------------------------------------------------

const DEADLINE: Duration = Duration::from_secs(1);
/// How long after the deadline a trial waits for an outcome before calling it "none by cap".
const CAP: Duration = Duration::from_secs(5);
const LATENCY_TOPIC: &str = "bench-latency";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Situation {
    Refuses,
    Silent,
    Stalls,
}

impl Situation {
    fn name(self) -> &'static str {
        match self {
            Situation::Refuses => "refuses connections",
            Situation::Silent => "accepts, never answers",
            Situation::Stalls => "answers, then stalls mid-stream",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Ours(UnknownOutcome),
    Librdkafka,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Ours(UnknownOutcome::FailAndFence) => "ours, FailAndFence",
            Side::Ours(_) => "ours, Wait",
            Side::Librdkafka => "librdkafka 2.12",
        }
    }
}

/// One trial: milliseconds from the deadline to the outcome (negative: before it), `None` when
/// no outcome came within the cap; and what the caller was told.
struct Trial {
    late_ms: Option<f64>,
    outcome: String,
}

fn ms_since(deadline: Instant, at: Instant) -> f64 {
    if at >= deadline {
        (at - deadline).as_secs_f64() * 1e3
    } else {
        -(deadline - at).as_secs_f64() * 1e3
    }
}

/// The broker of one situation, and how to reach it.
struct Fixture {
    situation: Situation,
    silent: Option<SilentListener>,
    stall: Option<(ChaosProxy, Tansu)>,
}

impl Fixture {
    fn start(situation: Situation) -> Fixture {
        let mut f = Fixture {
            situation,
            silent: None,
            stall: None,
        };
        match situation {
            Situation::Refuses => {}
            Situation::Silent => f.silent = Some(SilentListener::start()),
            Situation::Stalls => {
                let broker_port = free_port();
                let proxy = ChaosProxy::start(
                    SocketAddr::from(([127, 0, 0, 1], broker_port)),
                    ProxyMode::Pass,
                    1,
                );
                let tansu = Tansu::start_on(broker_port, proxy.port());
                tansu.create_topic(LATENCY_TOPIC, 1);
                f.stall = Some((proxy, tansu));
            }
        }
        f
    }

    fn bootstrap(&self) -> String {
        match (&self.silent, &self.stall) {
            (Some(s), _) => s.address(),
            (_, Some((proxy, _))) => proxy.address(),
            _ => refusing_address(),
        }
    }

    fn proxy(&self) -> Option<&ChaosProxy> {
        self.stall.as_ref().map(|(p, _)| p)
    }
}

fn ours_trial(fixture: &Fixture, policy: UnknownOutcome) -> Trial {
    let mut config = ProducerConfig::new([fixture.bootstrap()], [LATENCY_TOPIC]);
    config.client.producer.unknown_outcome = policy;
    let mut producer = Producer::new(config).expect("valid configuration");
    if let Some(proxy) = fixture.proxy() {
        // Warm up: the connection, the producer id and a few acknowledged batches.
        let until = Instant::now() + Duration::from_secs(10);
        for _ in 0..20 {
            let _ = producer.send(&ProducerRecord::value(LATENCY_TOPIC, b"warm-up"), until);
        }
        producer.flush(until);
        while producer.poll_delivery().is_some() {}
        proxy.set_mode(ProxyMode::StallProduce);
    }
    let deadline = Instant::now() + DEADLINE;
    let trial = match producer.send(
        &ProducerRecord::value(LATENCY_TOPIC, &[7; VALUE_LEN]),
        deadline,
    ) {
        Err(e) => Trial {
            late_ms: Some(ms_since(deadline, Instant::now())),
            outcome: match e {
                Error::Deadline(e) => format!("send returned Deadline({e:?})"),
                other => format!("send returned {other}"),
            },
        },
        Ok(_) => loop {
            if let Some(d) = producer.poll_delivery() {
                break Trial {
                    late_ms: Some(ms_since(deadline, Instant::now())),
                    outcome: outcome_label(&d.outcome),
                };
            }
            let left = (deadline + CAP).saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Trial {
                    late_ms: None,
                    outcome: "no outcome by the cap".into(),
                };
            }
            producer.poll(left.min(Duration::from_millis(20)));
        },
    };
    if let Some(proxy) = fixture.proxy() {
        proxy.set_mode(ProxyMode::Pass);
    }
    trial
}

/// Records when the (one) delivery report of interest reached the application.
#[derive(Default)]
struct LatencyContext {
    done: Mutex<Option<(Instant, String)>>,
}

impl ClientContext for LatencyContext {}

impl ProducerContext for LatencyContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let label = match result {
            Ok(_) => "Persisted".to_string(),
            Err((e, message)) => {
                // SAFETY: the message is alive for the duration of the callback.
                let status = unsafe { rdkafka::bindings::rd_kafka_message_status(message.ptr()) };
                let status = match status {
                    rdkafka::bindings::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED => {
                        "NotPersisted"
                    }
                    rdkafka::bindings::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_PERSISTED => {
                        "Persisted"
                    }
                    _ => "PossiblyPersisted",
                };
                format!("{} (status {status})", kafka_error_label(e))
            }
        };
        *self.done.lock().unwrap() = Some((Instant::now(), label));
    }
}

fn kafka_error_label(e: &KafkaError) -> String {
    e.rdkafka_error_code()
        .map_or_else(|| e.to_string(), |c| format!("{c:?}"))
}

fn librdkafka_trial(fixture: &Fixture) -> Trial {
    let producer: BaseProducer<LatencyContext> = ClientConfig::new()
        .set("bootstrap.servers", fixture.bootstrap())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "1000")
        .set("log_level", "0")
        .create_with_context(LatencyContext::default())
        .expect("librdkafka producer");
    let proxy = fixture.proxy();
    if let Some(proxy) = proxy {
        for _ in 0..20 {
            let _ = producer.send(BaseRecord::<(), [u8]>::to(LATENCY_TOPIC).payload(b"warm-up"));
        }
        let _ = producer.flush(Duration::from_secs(5));
        producer.context().done.lock().unwrap().take();
        proxy.set_mode(ProxyMode::StallProduce);
    }
    let value = [7u8; VALUE_LEN];
    let deadline = Instant::now() + DEADLINE;
    let trial = match producer.send(BaseRecord::<(), [u8]>::to(LATENCY_TOPIC).payload(&value)) {
        Err((e, _)) => Trial {
            late_ms: Some(ms_since(deadline, Instant::now())),
            outcome: format!("produce() returned {}", kafka_error_label(&e)),
        },
        Ok(()) => loop {
            producer.poll(Duration::from_millis(10));
            if let Some((at, label)) = producer.context().done.lock().unwrap().take() {
                break Trial {
                    late_ms: Some(ms_since(deadline, at)),
                    outcome: label,
                };
            }
            if Instant::now() >= deadline + CAP {
                break Trial {
                    late_ms: None,
                    outcome: "no outcome by the cap".into(),
                };
            }
        },
    };
    if let Some(proxy) = proxy {
        proxy.set_mode(ProxyMode::Pass);
    }
    trial
}

struct Series {
    situation: Situation,
    side: Side,
    trials: Vec<Trial>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn latency() {
    let trials = env_usize("BENCH_TRIALS", 20);
    let sides = [
        Side::Ours(UnknownOutcome::FailAndFence),
        Side::Ours(UnknownOutcome::Wait),
        Side::Librdkafka,
    ];
    let mut all = Vec::new();
    for situation in [Situation::Refuses, Situation::Silent, Situation::Stalls] {
        let fixture = Fixture::start(situation);
        for side in sides {
            eprintln!(
                "bench latency: {} / {}: {trials} trials",
                situation.name(),
                side.name()
            );
            let results = (0..trials)
                .map(|_| match side {
                    Side::Ours(policy) => ours_trial(&fixture, policy),
                    Side::Librdkafka => librdkafka_trial(&fixture),
                })
                .collect();
            all.push(Series {
                situation: fixture.situation,
                side,
                trials: results,
            });
        }
    }
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Deadline honouring\n\n\
         Time from a record's 1 s deadline to its outcome reaching the caller (ms; negative: \
         before the deadline), {trials} trials per row, each with a fresh producer. A trial \
         waits at most {} s past the deadline; \"no outcome\" counts the trials that got none \
         by then (they are left out of the distribution). librdkafka: \
         `enable.idempotence=true`, `message.timeout.ms=1000`; its outcome is the delivery \
         report's error and `rd_kafka_message_status`. Ours under \"refuses\" and \"never \
         answers\": no metadata ever arrives, so `send` itself returns the deadline error \
         (the record was never accepted, so never sent). \"answers, then stalls\": tansu \
         behind a proxy that, after 20 acknowledged warm-up records, holds every produce \
         response. Percentiles are nearest-rank (with 20 trials p99 \
         is the maximum). Plot: `BENCHMARKS-latency.png` (log scale; outcomes within 0.1 ms \
         of the deadline are drawn at 0.1).\n",
        CAP.as_secs()
    );
    md.push_str(
        "| broker | producer | min | median | p99 | max | no outcome | outcomes reported |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for s in &all {
        let mut late: Vec<f64> = s.trials.iter().filter_map(|t| t.late_ms).collect();
        late.sort_by(f64::total_cmp);
        let none = s.trials.len() - late.len();
        let stat = |f: &dyn Fn(&[f64]) -> f64| {
            if late.is_empty() {
                "–".to_string()
            } else {
                format!("{:.2}", f(&late))
            }
        };
        let mut outcomes: Vec<(String, usize)> = Vec::new();
        for t in &s.trials {
            match outcomes.iter_mut().find(|(o, _)| *o == t.outcome) {
                Some((_, n)) => *n += 1,
                None => outcomes.push((t.outcome.clone(), 1)),
            }
        }
        let outcomes: Vec<String> = outcomes
            .iter()
            .map(|(o, n)| format!("{n}× `{o}`"))
            .collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {none} | {} |",
            s.situation.name(),
            s.side.name(),
            stat(&|v| v[0]),
            stat(&|v| percentile(v, 0.5)),
            stat(&|v| percentile(v, 0.99)),
            stat(&|v| v[v.len() - 1]),
            outcomes.join(", ")
        );
    }
    let png = workspace_root().join("BENCHMARKS-latency.png");
    match plot(&all, &png) {
        Ok(()) => eprintln!("bench latency: plot written to {}", png.display()),
        Err(e) => {
            eprintln!("bench latency: no plot: {e}");
            let _ = writeln!(md, "\n(no plot this run: {e})");
        }
    }
    write_section("latency", &md);
}

/// Draws one panel per situation: each trial a dot at its lateness (log scale, 0.1 ms to the
/// cap; earlier than 0.1 ms past the deadline is drawn at 0.1), one row per producer; trials
/// with no outcome by the cap are red crosses at the right edge.
fn plot(all: &[Series], path: &std::path::Path) -> Result<(), String> {
    use plotters::prelude::*;
    let font_path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    let font = std::fs::read(font_path).map_err(|e| format!("cannot read {font_path}: {e}"))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into()))
        .map_err(|_| "font not usable".to_string())?;
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = BitMapBackend::new(path, (1500, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root
        .titled(
            "Time from the 1 s deadline to the outcome (ms, log scale); red x: no outcome by the cap",
            ("sans-serif", 20),
        )
        .map_err(|e| err(&e))?;
    let panels = root.split_evenly((1, 3));
    let cap_ms = CAP.as_secs_f64() * 1e3;
    let colors = [BLUE, RGBColor(0, 150, 0), MAGENTA];
    for (panel, situation) in
        panels
            .iter()
            .zip([Situation::Refuses, Situation::Silent, Situation::Stalls])
    {
        let mut chart = ChartBuilder::on(panel)
            .caption(situation.name(), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(140)
            .build_cartesian_2d((0.1f64..cap_ms * 1.5).log_scale(), -0.5f64..2.5f64)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .y_labels(3)
            .disable_y_mesh()
            .y_label_formatter(&|y| {
                let i = y.round() as i64;
                if (y - i as f64).abs() > 0.01 {
                    return String::new();
                }
                match i {
                    0 => "librdkafka".into(),
                    1 => "ours, Wait".into(),
                    2 => "ours, FailAndFence".into(),
                    _ => String::new(),
                }
            })
            .x_desc("ms after the deadline")
            .x_label_formatter(&|x| format!("{x}"))
            .draw()
            .map_err(|e| err(&e))?;
        for s in all.iter().filter(|s| s.situation == situation) {
            let row = match s.side {
                Side::Ours(UnknownOutcome::FailAndFence) => 2.0,
                Side::Ours(_) => 1.0,
                Side::Librdkafka => 0.0,
            };
            let color = colors[row as usize];
            let n = s.trials.len().max(1) as f64;
            let dots = s.trials.iter().enumerate().filter_map(|(i, t)| {
                t.late_ms.map(|ms| {
                    let y = row - 0.3 + 0.6 * i as f64 / n;
                    Circle::new((ms.max(0.1), y), 4, color.filled())
                })
            });
            chart.draw_series(dots).map_err(|e| err(&e))?;
            let crosses = s
                .trials
                .iter()
                .enumerate()
                .filter(|(_, t)| t.late_ms.is_none())
                .map(|(i, _)| {
                    let y = row - 0.3 + 0.6 * i as f64 / n;
                    Cross::new((cap_ms * 1.2, y), 5, RED.stroke_width(2))
                });
            chart.draw_series(crosses).map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))
}

// --- 2. throughput -------------------------------------------------------------------------

/// What a child reports: records it got `Persisted`, others, seconds from first send to last
/// outcome.
struct ChildRun {
    persisted: u64,
    failed: u64,
    seconds: f64,
    cpu_seconds: f64,
    peak_rss_kib: i64,
}

/// `child ours|rdkafka BOOTSTRAP TOPIC RECORDS`: produces, prints `persisted failed seconds`.
fn child(args: &[String]) -> ExitCode {
    let [side, bootstrap, topic, records] = args else {
        eprintln!("usage: bench child ours|rdkafka BOOTSTRAP TOPIC RECORDS");
        return ExitCode::FAILURE;
    };
    let records: u64 = records.parse().expect("record count");
    let (persisted, failed, seconds) = match side.as_str() {
        "ours" => {
            let mut producer =
                Producer::new(ProducerConfig::new([bootstrap.as_str()], [topic.as_str()]))
                    .expect("valid configuration");
            let start = Instant::now();
            let (p, f) = pump_ours(
                &mut producer,
                topic,
                records,
                start + Duration::from_secs(600),
            );
            (p, f, start.elapsed().as_secs_f64())
        }
        "rdkafka" => pump_librdkafka(bootstrap, topic, records),
        other => {
            eprintln!("unknown side {other}");
            return ExitCode::FAILURE;
        }
    };
    println!("{persisted} {failed} {seconds}");
    ExitCode::SUCCESS
}

/// Sends `records` records of 100 bytes and takes outcomes as they come, the way the
/// `produce` tool drives the producer; then flushes. Returns (persisted, other outcomes).
fn pump_ours(producer: &mut Producer, topic: &str, records: u64, deadline: Instant) -> (u64, u64) {
    let (mut persisted, mut failed) = (0u64, 0u64);
    let value = [b'x'; VALUE_LEN];
    let mut tally = |producer: &mut Producer| {
        while let Some(d) = producer.poll_delivery() {
            match d.outcome {
                Outcome::Persisted { .. } => persisted += 1,
                _ => failed += 1,
            }
        }
    };
    for _ in 0..records {
        if producer
            .send(&ProducerRecord::value(topic, &value), deadline)
            .is_err()
        {
            break;
        }
        tally(producer);
    }
    producer.flush(deadline);
    tally(producer);
    (persisted, failed)
}

#[derive(Default)]
struct CountingContext {
    persisted: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.persisted.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn pump_librdkafka(bootstrap: &str, topic: &str, records: u64) -> (u64, u64, f64) {
    let producer: BaseProducer<CountingContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("log_level", "2")
        .create_with_context(CountingContext::default())
        .expect("librdkafka producer");
    let value = [b'x'; VALUE_LEN];
    let start = Instant::now();
    for i in 0..records {
        loop {
            match producer.send(BaseRecord::<(), [u8]>::to(topic).payload(&value)) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => panic!("produce: {e}"),
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    let _ = producer.flush(Duration::from_secs(600));
    let seconds = start.elapsed().as_secs_f64();
    let c = producer.context();
    (
        c.persisted.load(Ordering::Relaxed),
        c.failed.load(Ordering::Relaxed),
        seconds,
    )
}

/// Runs `bench child …` and takes its own resource usage when it exits.
fn run_child(side: &str, bootstrap: &str, topic: &str, records: u64) -> Result<ChildRun, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(["child", side, bootstrap, topic, &records.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the child: {e}"))?;
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `child` is our unreaped child; the pointers are to live locals.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    if pid <= 0 {
        return Err("wait4 failed".into());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("child {side} failed (status {status})"));
    }
    let fields: Vec<&str> = out.split_whitespace().collect();
    let [persisted, failed, seconds] = fields[..] else {
        return Err(format!("child {side} printed `{out}`"));
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(ChildRun {
        persisted: persisted.parse().map_err(|_| "bad count")?,
        failed: failed.parse().map_err(|_| "bad count")?,
        seconds: seconds.parse().map_err(|_| "bad seconds")?,
        cpu_seconds: tv(usage.ru_utime) + tv(usage.ru_stime),
        peak_rss_kib: usage.ru_maxrss,
    })
}

/// A broker for one throughput run: a fresh tansu or mock cluster, so no run pays for the
/// previous run's log.
struct Broker {
    _tansu: Option<Tansu>,
    _mock: Option<MockCluster<'static, rdkafka::producer::DefaultProducerContext>>,
}

fn start_broker(tansu: bool, topic: &str) -> Result<(Broker, String), String> {
    if tansu {
        let t = Tansu::start();
        t.create_topic(topic, 3);
        let bootstrap = t.bootstrap();
        Ok((
            Broker {
                _tansu: Some(t),
                _mock: None,
            },
            bootstrap,
        ))
    } else {
        let mock = MockCluster::new(1).map_err(|e| format!("mock cluster: {e}"))?;
        mock.create_topic(topic, 3, 1)
            .map_err(|e| format!("mock topic: {e}"))?;
        let bootstrap = mock.bootstrap_servers();
        Ok((
            Broker {
                _tansu: None,
                _mock: Some(mock),
            },
            bootstrap,
        ))
    }
}

fn throughput() {
    let records = env_usize("BENCH_RECORDS", 1_000_000) as u64;
    let runs = env_usize("BENCH_RUNS", 3);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Throughput\n\n\
         {records} records of {VALUE_LEN}-byte values (no key), idempotent, acks=all, one topic \
         with 3 partitions, linger 5 ms on both sides; each side in its own child process \
         (CPU time = user + system of that process, peak RSS its maximum resident set); the \
         sides alternate, {runs} runs each, a fresh broker per run. Figures are the median \
         run; the ratio is ours / librdkafka (>1: ours higher). MB/s counts value bytes only. \
         The mock cluster does not deduplicate without a transactional id, which does not \
         matter here.\n\n\
         | broker | producer | records/s | MB/s | CPU s | peak RSS MiB | persisted | runs (records/s) |\n\
         |---|---|---|---|---|---|---|---|"
    );
    let mut ratios = String::new();
    for (tansu, broker_name) in [(true, "tansu 0.6.0"), (false, "librdkafka mock")] {
        let mut results: [Vec<ChildRun>; 2] = [Vec::new(), Vec::new()];
        let mut errors = Vec::new();
        for run in 0..runs {
            for (i, side) in ["ours", "rdkafka"].into_iter().enumerate() {
                let topic = format!("throughput-{run}-{side}");
                eprintln!("bench throughput: {broker_name} run {} {side}", run + 1);
                let outcome = start_broker(tansu, &topic).and_then(|(broker, bootstrap)| {
                    let r = run_child(side, &bootstrap, &topic, records);
                    drop(broker);
                    r
                });
                match outcome {
                    Ok(r) => results[i].push(r),
                    Err(e) => {
                        eprintln!("bench throughput: {e}");
                        errors.push(e);
                    }
                }
            }
        }
        let mut medians = [None, None];
        for (i, name) in ["ours (transport-std)", "librdkafka 2.12"]
            .iter()
            .enumerate()
        {
            let rs = &mut results[i];
            if rs.is_empty() {
                let _ = writeln!(md, "| {broker_name} | {name} | failed | | | | | |");
                continue;
            }
            let all: Vec<String> = rs
                .iter()
                .map(|r| format!("{:.0}", r.persisted as f64 / r.seconds))
                .collect();
            rs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
            let m = &rs[rs.len() / 2];
            let rate = records as f64 / m.seconds;
            let _ = writeln!(
                md,
                "| {broker_name} | {name} | {rate:.0} | {:.1} | {:.2} | {:.1} | {} (+{} other) | {} |",
                rate * VALUE_LEN as f64 / 1e6,
                m.cpu_seconds,
                m.peak_rss_kib as f64 / 1024.0,
                m.persisted,
                m.failed,
                all.join(", ")
            );
            medians[i] = Some((rate, m.cpu_seconds, m.peak_rss_kib as f64));
        }
        if let [Some(o), Some(l)] = medians {
            let _ = writeln!(
                ratios,
                "| {broker_name} | {:.2} | {:.2} | {:.2} |",
                o.0 / l.0,
                o.1 / l.1,
                o.2 / l.2
            );
        }
        for e in errors {
            let _ = writeln!(md, "\n{broker_name}: a run failed: {e}");
        }
    }
    let _ = writeln!(
        md,
        "\nRatios, ours / librdkafka (median runs):\n\n\
         | broker | records/s | CPU time | peak RSS |\n|---|---|---|---|\n{ratios}"
    );
    write_section("throughput", &md);
}

// --- 3. allocations ------------------------------------------------------------------------

fn alloc() {
    let warm_up = env_usize("BENCH_ALLOC_WARMUP", 50_000) as u64;
    let measured = env_usize("BENCH_ALLOC_RECORDS", 200_000) as u64;
    let topic = "bench-alloc";
    let tansu = Tansu::start();
    tansu.create_topic(topic, 3);
    let mut producer = Producer::new(ProducerConfig::new([tansu.bootstrap()], [topic]))
        .expect("valid configuration");
    let deadline = Instant::now() + Duration::from_secs(600);
    let (warm_persisted, _) = pump_ours(&mut producer, topic, warm_up, deadline);
    // Keep the warm-up's flush out of the count: it is not steady state, and neither is the
    // final flush below, so the measured stretch is sends and outcome draining only.
    SAMPLES_LEFT.store(10_000, Ordering::Relaxed);
    let value = [b'x'; VALUE_LEN];
    let (mut persisted, mut failed) = (0u64, 0u64);
    ALLOCATIONS.store(0, Ordering::Relaxed);
    ALLOCATED_BYTES.store(0, Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    for _ in 0..measured {
        if producer
            .send(&ProducerRecord::value(topic, &value), deadline)
            .is_err()
        {
            break;
        }
        while let Some(d) = producer.poll_delivery() {
            match d.outcome {
                Outcome::Persisted { .. } => persisted += 1,
                _ => failed += 1,
            }
        }
    }
    COUNTING.with(|c| c.set(false));
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let bytes = ALLOCATED_BYTES.load(Ordering::Relaxed);
    producer.flush(deadline);
    while producer.poll_delivery().is_some() {}
    let mut samples = std::mem::take(&mut *SAMPLES.lock().unwrap());
    samples.sort_by_key(|s| std::cmp::Reverse(s.1));
    let sampled: u64 = samples.iter().map(|s| s.1).sum();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Steady-state allocations (transport-std)\n\n\
         A counting global allocator (alloc, alloc_zeroed and realloc on the producing thread) \
         around {measured} records of {VALUE_LEN} bytes to tansu (3 partitions), after a \
         warm-up of {warm_up} records ({warm_persisted} persisted) and its flush; the \
         measured stretch is `send` plus draining `poll_delivery` (outcomes taken during it: \
         {persisted} persisted, {failed} other).\n\n\
         | records | allocations | bytes allocated | allocations per record |\n|---|---|---|---|\n\
         | {measured} | {allocations} | {bytes} | {:.6} |",
        allocations as f64 / measured as f64
    );
    if !samples.is_empty() {
        let _ = writeln!(
            md,
            "\nWhere they are asked for (the first 64 counted allocations, then one in \
             {SAMPLE_EVERY}, sampled with a backtrace; {sampled} samples; share of samples, mean size):\n"
        );
        for (site, hits, bytes) in &samples {
            let _ = writeln!(
                md,
                "- {:.0}%, {} bytes: {site}",
                100.0 * *hits as f64 / sampled as f64,
                bytes / hits
            );
        }
    }
    write_section("alloc", &md);
}

// --- 5. sizes ------------------------------------------------------------------------------

fn size() {
    use std::mem::size_of;
    let ledger = size_of::<PartitionLedger>();
    let seq_4_16 = size_of::<Sequencer<Fixed<1, 4, 16, 1>>>();
    let slot = size_of::<Sequencer<Fixed<1, 4, 17, 1>>>() - seq_4_16;
    type Small = Client<&'static mut [u8], Fixed<1, 4, 16, 2>>;
    type Std = Client<Vec<u8>, Fixed<8, 256, 256, 16>>;
    let small = size_of::<Small>();
    let small_partition = size_of::<Client<&'static mut [u8], Fixed<1, 5, 16, 2>>>() - small;
    let small_slot = size_of::<Client<&'static mut [u8], Fixed<1, 4, 17, 2>>>() - small;
    let small_broker = size_of::<Client<&'static mut [u8], Fixed<1, 4, 16, 3>>>() - small;
    let md = format!(
        "## Sizes\n\n\
         `size_of` on this host (x86-64; a 32-bit target differs where pointers and `usize` are \
         involved). A batch slot and the per-partition/per-broker costs of the client are \
         measured as the difference one more makes. The client's batch bytes live in the \
         storage it is given (`BATCHES × batch_bytes`), not in these figures. Flash and static \
         RAM of the Cortex-M4 firmware follow below.\n\n\
         | item | bytes |\n|---|---|\n\
         | `PartitionLedger` (per partition) | {ledger} |\n\
         | batch slot in the sequencer (per batch) | {slot} |\n\
         | `Sequencer<Fixed<1, 4, 16, 1>>` | {seq_4_16} |\n\
         | `Client<&mut [u8], 1 topic, 4 partitions, 16 batches, 2 brokers>` | {small} |\n\
         | … per more partition / batch / broker | {small_partition} / {small_slot} / {small_broker} |\n\
         | `Client` as transport-std uses it (8, 256, 256, 16) | {} |",
        size_of::<Std>()
    );
    write_section("size", &md);
}
