//! The benchmark driver behind `cargo xtask bench`: this project against librdkafka (the
//! `rdkafka` crate) in the same run, on loopback only.
//!
//! `bench latency|throughput|alloc|size|tls` runs one part, prints its markdown section and writes
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
//! - `tls`: transport-std over TLS against plaintext (`BENCH_RECORDS`, 3 runs each) to one
//!   Apache Kafka node with a PLAINTEXT and two SSL listeners (RSA-2048, ECDSA P-256).

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
use transport_std::{
    Error, Pem, Producer, ProducerConfig, ProducerRecord, SecurityProtocol, TlsRoots,
};

mod alloc;
mod latency;
mod size;
mod throughput;
mod tls;

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
        "child" => return throughput::child(&args[1..]),
        "latency" => latency::run(),
        "throughput" => throughput::run(),
        "alloc" => alloc::run(),
        "size" => size::run(),
        "tls" => tls::run(),
        "all" => {
            latency::run();
            throughput::run();
            alloc::run();
            size::run();
            tls::run();
        }
        other => {
            eprintln!(
                "usage: bench [latency|throughput|alloc|size|tls|all]; unknown part `{other}`"
            );
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
