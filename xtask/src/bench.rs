//! `cargo xtask bench [PART]`: the benchmark driver's parts, criterion on producer-core, the
//! firmware's sizes and SASL's costs, assembled into BENCHMARKS.md.

use std::time::Instant;

use crate::{
    BENCH_PACKAGES, capture, ensure_debian_packages, ensure_java_and_maven, ensure_packages,
    ensure_tansu, footprint, sasl_cost, step,
};

/// The parts of `cargo xtask bench`, in the order BENCHMARKS.md shows them.
const BENCH_PARTS: &[&str] = &[
    "latency",
    "throughput",
    "alloc",
    "core",
    "size",
    "sasl",
    "tls",
];

/// Each part's heading in BENCHMARKS.md (the first line its section file writes).
const BENCH_HEADINGS: &[&str] = &[
    "## Deadline honouring",
    "## Throughput",
    "## Steady-state allocations (transport-std)",
    "## Core cost (producer-core, criterion)",
    "## Sizes",
    "## SASL",
    "## TLS (transport-std)",
];

/// The section of `md` under the level-2 `heading`, up to the next level-2 heading.
fn previous_section<'a>(md: &'a str, heading: &str) -> Option<&'a str> {
    let start = md.find(&format!("\n{heading}\n"))? + 1;
    let rest = &md[start..];
    let end = rest[heading.len()..]
        .find("\n## ")
        .map_or(rest.len(), |i| i + heading.len() + 1);
    Some(&rest[..end])
}

/// Criterion benchmarks of producer-core the `core` part reports: (group/name, records per
/// iteration, what it is).
const CORE_BENCHES: &[(&str, u32, &str)] = &[
    (
        "record_batch/encode_100x100B",
        100,
        "batch encoding: 100 records of 100 B, finish and stamp (two CRC-32C passes)",
    ),
    (
        "record_batch/encode_100x100B_client",
        100,
        "batch encoding as the client does it: finish_for_stamp, then stamp (one CRC-32C pass)",
    ),
    (
        "record_batch/decode_100x100B",
        100,
        "batch decoding with CRC check (for reference)",
    ),
    (
        "crc32c/same_bytes_as_batch",
        100,
        "CRC-32C over one such batch's bytes (1 KiB table, the default)",
    ),
    (
        "crc32c/slice16_for_comparison",
        100,
        "CRC-32C, 16-slice table (feature `crc-slice16`)",
    ),
    (
        "sequencer/cycle_1",
        1,
        "sequencer, 1-record batches: enqueue, next_send, on_produce_result, poll_event",
    ),
    (
        "sequencer/cycle_100",
        100,
        "sequencer, 100-record batches: open, 99 × extend, seal, next_send, on_produce_result, poll_event",
    ),
];

/// `cargo xtask bench [PART]`: runs the benchmark driver (tests crate, `bench` binary) for
/// each part but `core`, which is criterion on producer-core; then assembles BENCHMARKS.md
/// from every part's latest section (`target/bench/PART.md`). A part that fails is reported
/// and left out; benchmarks never fail the run.
pub(crate) fn bench(part: Option<&str>) -> Result<(), String> {
    let parts: Vec<&str> = match part {
        None | Some("all") => BENCH_PARTS.to_vec(),
        Some(p) if BENCH_PARTS.contains(&p) => vec![p],
        Some(other) => {
            return Err(format!(
                "unknown bench part `{other}` (one of {})",
                BENCH_PARTS.join(", ")
            ));
        }
    };
    let started = Instant::now();
    ensure_packages()?;
    if let Err(e) = ensure_debian_packages(BENCH_PACKAGES) {
        println!("xtask: warning: {e}; the latency plot will be missing");
    }
    if parts
        .iter()
        .any(|p| matches!(*p, "latency" | "throughput" | "alloc" | "tls"))
    {
        ensure_java_and_maven()?;
        ensure_tansu()?;
    }
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = format!("{root}/target/bench");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {out}: {e}"))?;
    if parts.iter().any(|p| !matches!(*p, "core" | "sasl")) {
        step(
            "cargo",
            &["build", "--release", "-p", "tests", "--bin", "bench"],
            &[],
        )?;
    }
    let mut failed = Vec::new();
    for part in &parts {
        let section = format!("{out}/{part}.md");
        let _ = std::fs::remove_file(&section);
        let result = match *part {
            "core" => bench_core(&section),
            "size" => step(&format!("{root}/target/release/bench"), &[part], &[])
                .and_then(|()| footprint::report(&section)),
            "sasl" => sasl_cost::report(&section),
            _ => step(&format!("{root}/target/release/bench"), &[part], &[]),
        };
        if let Err(e) = result {
            println!("xtask: warning: bench {part} failed: {e}");
            failed.push(*part);
        }
    }
    let mut md = format!(
        "# Benchmarks\n\n{}\n\nEach section was measured by `cargo xtask bench` (`cargo xtask \
         bench PART` re-measures one section) at the time it gives. The table above is the \
         machine that assembled this file; a section kept from an earlier run was measured on \
         the machine of that run, which may differ. The machine is shared: compare figures \
         within a section (this project against its peer in the same run), not across runs.\n",
        machine_description()
    );
    // A part not measured on this machine yet keeps its section from the BENCHMARKS.md
    // there is, so that `cargo xtask bench PART` replaces that part's section alone.
    let path = format!("{root}/BENCHMARKS.md");
    let previous = std::fs::read_to_string(&path).unwrap_or_default();
    for (part, title) in BENCH_PARTS.iter().zip(BENCH_HEADINGS) {
        let section = format!("{out}/{part}.md");
        if let Ok(text) = std::fs::read_to_string(&section) {
            let when = capture("date", &["-u", "-r", &section, "+%Y-%m-%d %H:%M UTC"])
                .map(|d| d.trim().to_string())
                .unwrap_or_default();
            let mut lines = text.trim_end().splitn(2, '\n');
            let heading = lines.next().unwrap_or_default();
            let body = lines.next().unwrap_or_default();
            md.push_str(&format!("\n{heading}\n\n_Measured {when}._\n{body}\n"));
        } else if let Some(kept) = previous_section(&previous, title) {
            md.push_str(&format!("\n{}\n", kept.trim_end()));
        }
    }
    std::fs::write(&path, &md).map_err(|e| format!("cannot write {path}: {e}"))?;
    println!("\n{md}");
    println!(
        "xtask: benchmarks took {:.0} s; wrote BENCHMARKS.md{}",
        started.elapsed().as_secs_f64(),
        if parts.contains(&"latency") && !failed.contains(&"latency") {
            " and BENCHMARKS-latency.png"
        } else {
            ""
        }
    );
    if !failed.is_empty() {
        println!("xtask: warning: parts that failed: {}", failed.join(", "));
    }
    Ok(())
}

/// Date, CPU model, cores, memory and compiler, for the head of BENCHMARKS.md.
fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or("unknown CPU".to_string(), |(_, m)| m.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or("unknown".to_string(), |kib| {
            format!("{:.1} GiB", kib / 1024.0 / 1024.0)
        });
    let rustc = capture("rustc", &["--version"]).unwrap_or_default();
    let date = capture("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default();
    format!(
        "| | |\n|---|---|\n| assembled | {} |\n| CPU | {model} |\n| cores available | {cores} |\n\
         | memory | {memory} |\n| compiler | {} |",
        date.trim(),
        rustc.trim()
    )
}

/// The `core` part: producer-core's criterion benchmarks with short measurement times, their
/// mean per iteration turned into nanoseconds per record.
fn bench_core(section: &str) -> Result<(), String> {
    step(
        "cargo",
        &[
            "bench",
            "-p",
            "producer-core",
            "--bench",
            "codec",
            "--bench",
            "ledger",
            "--",
            "--warm-up-time",
            "1",
            "--measurement-time",
            "3",
            "--noplot",
        ],
        &[],
    )?;
    let criterion = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/criterion");
    let mut md = String::from(
        "## Core cost (producer-core, criterion)\n\n\
         Mean time per iteration from `cargo bench -p producer-core` (1 s warm-up, 3 s \
         measurement), divided by the records per iteration. The sequencer runs as \
         `Sequencer<Fixed<1, 4, 16, 1>>` cycling over its 4 partitions, each batch answered at once.\n\n\
         | operation | records | ns per iteration | ns per record |\n|---|---|---|---|\n",
    );
    for (name, records, what) in CORE_BENCHES {
        let path = format!("{criterion}/{name}/new/estimates.json");
        let mean = std::fs::read_to_string(&path)
            .ok()
            .and_then(|json| mean_estimate(&json));
        match mean {
            Some(ns) => md.push_str(&format!(
                "| {what} | {records} | {ns:.1} | {:.2} |\n",
                ns / f64::from(*records)
            )),
            None => md.push_str(&format!("| {what} | {records} | missing | |\n")),
        }
    }
    println!("{md}");
    std::fs::write(section, md).map_err(|e| format!("cannot write {section}: {e}"))
}

/// The mean's point estimate (ns) in a criterion `estimates.json`.
fn mean_estimate(json: &str) -> Option<f64> {
    let mean = &json[json.find("\"mean\"")?..];
    let value = &mean[mean.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find([',', '}'])?;
    value[..end].trim().parse().ok()
}
